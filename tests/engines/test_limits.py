"""Limits never lie: a timeout is `unknown` (exit 3) in every engine, never a
verdict; Ctrl-C stops with exit 130 and, in the explicit search, prints what was
decided before it; the same input gives byte-identical output across runs and
`check -j` values."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from tdxproof.cli import cli

# five independent counters: 16^5 states, and a violation 75 steps deep
BIG = 'import "locks.tdx";\ncpus 2;\n' + "".join(
    f'var {v}: int[0..15] = 0;\nactor t{v} repeat {{ atomic "test" {{ if {v} < 15 {{ {v}++; }} else {{ {v} = 0; }} }} }}\n'
    for v in "abcde") + "invariant not-all-full: !(a == 15 && b == 15 && c == 15 && d == 15 && e == 15);\n" \
    + "invariant early: a < 3;\n"


@pytest.fixture
def big(tmp_path):
    f = tmp_path / "big.tdx"
    f.write_text(BIG)
    return f


@pytest.mark.parametrize("engine", ["explicit", "bmc", "kind", "lift"])
def test_a_timeout_is_unknown_in_every_engine(big, engine):
    res = CliRunner().invoke(cli, ["verify", str(big), "--engine", engine, "--timeout", "0.1", "--depth", "70",
                                   "--property", "not-all-full"])
    assert res.exit_code == 3, res.output
    assert "not-all-full  unknown (" in res.output and "timeout" in res.output


def _interrupted(args: list[str], after: float) -> tuple[int, str, str]:
    # SIGINT back to its default in the child: a suite started in the background by
    # a shell without job control inherits it ignored, and the Ctrl-C would be lost
    p = subprocess.Popen([sys.executable, "-m", "tdxproof", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


def test_ctrl_c_keeps_what_the_explicit_search_decided(big):
    code, out, err = _interrupted(["verify", str(big)], 4.0)
    assert code == 130 and "Traceback" not in err
    assert "early               violated" in out            # found in the first steps, shortest
    assert "not-all-full        unknown (interrupted; every schedule of up to" in out


def test_ctrl_c_inside_z3_is_exit_130(big):
    code, _, err = _interrupted(["verify", str(big), "--engine", "bmc", "--depth", "200",
                                 "--property", "not-all-full"], 4.0)
    assert code == 130 and "interrupted" in err and "Traceback" not in err


def test_output_is_byte_identical_across_runs_and_jobs(tmp_path):
    for name, body in {"racy": "var x: int[0..3] = 0;\nactor a[2] { x = x + 1; }\ninvariant one: x < 2;\n",
                       "calm": "var x: bool = false;\nactor a { x = true; }\ninvariant fine: x || !x;\n",
                       "cover": "var x: int[0..3] = 0;\nactor a repeat { if x < 3 { x++; } }\ncover three: x == 3;\n"
                       }.items():
        (tmp_path / f"{name}.tdx").write_text('import "locks.tdx";\ncpus 2;\n' + body)
    outs = set()
    for jobs in ("1", "2", "1"):
        res = CliRunner().invoke(cli, ["check", str(tmp_path), "-j", jobs, "--format", "json"])
        outs.add(res.output)
    assert len(outs) == 1
    runs = {CliRunner().invoke(cli, ["verify", str(tmp_path / "racy.tdx"), "--format", fmt]).output
            for fmt in ("text", "text")}
    assert len(runs) == 1


def test_a_timeout_z3_reports_as_canceled_is_unknown_not_an_interrupt():
    """Found by the differential test's long run: a timeout inside some of Z3's
    tactics says "canceled", which check() took for Ctrl-C."""
    import z3

    from tdxproof.encode.solver import Unknown, check

    class Stub:
        tdx_timeout = 0.01

        def check(self, *a):
            time.sleep(0.02)
            return z3.unknown

        def reason_unknown(self):
            return "canceled"

    assert check(Stub()) == Unknown("timeout")
    Stub.tdx_timeout = None
    with pytest.raises(KeyboardInterrupt):
        check(Stub())
