"""Every tests/bad/*.tdx: exit 2, no traceback, and exactly the diagnostics its
`// expect-error: LINE:COL: CODE text` lines announce. A few full renderings are
snapshotted next to them (`.err`); --update-goldens rewrites those."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tdxproof.cli import cli

BAD = Path(__file__).parent.parent / "bad"
EXPECT = re.compile(r"//\s*expect-error:\s*(?:([\w.-]+\.tdx):)?(\d+):(\d+):\s*(E\d+)\s+(.*)$")
SNAPSHOTS = ["missing_semicolon", "unknown_name", "release_not_held", "call_cycle", "several_errors",
             "counter_overflow_at_run_time"]


def _cases():
    for path in sorted(BAD.glob("*.tdx")):
        expects = [EXPECT.match(line) for line in path.read_text().splitlines()]
        expects = [m.groups() for m in expects if m]
        if expects:
            yield pytest.param(path, expects, id=path.stem)


def _run(path: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", path], catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("path,expects", list(_cases()))
def test_bad_input_is_reported_precisely(path, expects):
    rel = os.path.relpath(path)
    code, err = _run(rel)
    assert code == 2, err
    assert "Traceback" not in err
    heads = [line for line in err.splitlines() if ": error[" in line]
    assert len(heads) == len(expects), err
    for other, line, col, ecode, text in expects:
        where = os.path.relpath(BAD / other) if other else rel
        head = f"{where}:{line}:{col}: error[{ecode}]:"
        block = err.split("\n")
        match = [i for i, h in enumerate(block) if h.startswith(head)]
        assert match, f"missing {head}\n{err}"
        i = match[0]
        following = "\n".join(block[i:i + 6])
        assert text.strip() in following, f"{text!r} not in\n{following}"


def test_there_are_at_least_twenty_kinds_of_bad_input():
    codes = {e[3] for c in _cases() for e in c.values[1]}
    assert len(list(_cases())) >= 20 and len(codes) >= 20


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_rendering_snapshots(name, update_goldens):
    rel = os.path.relpath(BAD / f"{name}.tdx")
    _, err = _run(rel)
    snap = BAD / f"{name}.err"
    if update_goldens or not snap.exists():
        snap.write_text(err)
    assert err == snap.read_text()


@pytest.mark.parametrize("data,code", [(b"\x00\x01\x02binary", "E504"), (b"var x: int = 0; // \xff\xfe\n", "E505"),
                                       (b"x" * 2_100_000, "E503")])
def test_files_that_are_not_policies(tmp_path, data, code):
    f = tmp_path / "junk.tdx"
    f.write_bytes(data)
    exit_code, err = _run(str(f))
    assert exit_code == 2 and f"error[{code}]" in err and "Traceback" not in err


def test_a_missing_file_is_bad_input(tmp_path):
    exit_code, err = _run(str(tmp_path / "nope.tdx"))
    assert exit_code == 2 and "error[E501]" in err


DEEP_STMT = 'import "locks.tdx";\nvar x: bool = false;\nactor a {\n' + "if x {\n" * 5000 + "x = true;\n" + "}\n" * 5000 + "}\n"
DEEP_EXPR = 'import "locks.tdx";\nvar x: bool = false;\nactor a { x = ' + "!(" * 5000 + "x" + ")" * 5000 + "; }\n"


@pytest.mark.parametrize("text,code,where", [
    (DEEP_STMT, "E105", ":67:6:"),                       # 5,000 nested blocks: refused at level 65
    (DEEP_EXPR, "E105", ":3:142:"),                      # 5,000 nested parentheses
    ('import "locks.tdx";\nvar x: bool = false;\nactor a {\n    x = tr', "E102", ":4:11:"),   # truncated
    ('import "locks.tdx";\ncpus 0;\nvar x: bool = false;\nactor a { x = true; }\n', "E412", ":2:1:"),
    ('import "locks.tdx";\ncpus 1000000;\nvar x: bool = false;\nactor a { x = true; }\n', "E412", ":2:1:"),
])
def test_generated_bad_input(tmp_path, text, code, where):
    f = tmp_path / "bad.tdx"
    f.write_text(text)
    exit_code, err = _run(str(f))
    assert exit_code == 2 and f"{where} error[{code}]" in err and "Traceback" not in err, err[:500]
    assert err.count("error[") == 1          # one mistake, one error


@pytest.mark.parametrize("args", [["--cpus", "0"], ["--cpus", "1000000"]])
def test_cpu_counts_out_of_range_on_the_command_line(args):
    res = CliRunner().invoke(cli, ["verify", str(BAD / "unknown_name.tdx"), *args])
    assert res.exit_code == 2 and "is not in the range 1..64" in res.output


def test_a_directory_is_bad_input(tmp_path):
    d = tmp_path / "policy.tdx"
    d.mkdir()
    res = CliRunner().invoke(cli, ["verify", str(d)])
    assert res.exit_code == 2 and "is a directory" in res.output
