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
