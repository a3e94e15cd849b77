"""A run-time model error (a value outside its type, a call through a null
pointer) is bad input in every engine: exit 2 with the reference interpreter's
message, at the same statement, after the same number of steps."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tdxproof.cli import cli

CASES = {
    "counter-past-its-range": """
        import "locks.tdx";
        var x: int[0..3] = 0;
        actor a repeat { x++; }
        invariant bounded: x <= 3;
    """,
    "call-through-null": """
        import "locks.tdx";
        var hook: fn() -> int = null;
        var y: int[0..3] = 0;
        fn real() -> int { return 1; }
        actor setter { y = 1; }
        actor caller { let r = hook(); }
        invariant small: y < 2;
    """,
    "enum-past-its-last-member": """
        import "locks.tdx";
        enum phase { A, B }
        var p: phase = A;
        actor a repeat { p = p + 1; }
    """,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_engine_reports_the_same_model_error(tmp_path, name):
    f = tmp_path / f"{name}.tdx"
    f.write_text(CASES[name])
    outputs = {}
    for engine in ("explicit", "bmc", "kind"):
        res = CliRunner().invoke(cli, ["verify", str(f), "--engine", engine, "--depth", "8"])
        assert res.exit_code == 2, (engine, res.output)
        assert "error[E420]" in res.stderr and "Traceback" not in res.stderr, (engine, res.stderr)
        outputs[engine] = res.stderr
    assert outputs["bmc"] == outputs["explicit"] == outputs["kind"]
