"""A run-time model error (a value outside its type, a call through a null
pointer, a hold past ir.MAX_HOLDS) is bad input in every engine: exit 2 with the
reference interpreter's message, at the same statement, after the same number of
steps. So is a policy with nothing to verify."""

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
    # a read hold leaked on an error path under `repeat`: a bounded count in every
    # engine (once `kind` "proved" this over a wrapped 8-bit count; `explicit` ran forever)
    "read-hold-leaked-under-repeat": """
        import "locks.tdx";
        lock s: rw_semaphore;
        var y: int[0..3] = 0;
        actor a repeat {
            down_read(s);
            if may fail "an error path" { return; }
            up_read(s);
        }
        actor b { down_write(s); y = 1; up_write(s); }
        invariant small: y < 2;
    """,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_engine_reports_the_same_model_error(tmp_path, name):
    f = tmp_path / f"{name}.tdx"
    f.write_text(CASES[name])
    outputs = {}
    for engine in ("explicit", "compiled", "bmc", "kind"):
        res = CliRunner().invoke(cli, ["verify", str(f), "--engine", engine, "--depth", "8"])
        assert res.exit_code == 2, (engine, res.output)
        assert "error[E420]" in res.stderr and "Traceback" not in res.stderr, (engine, res.stderr)
        outputs[engine] = res.stderr
    assert outputs["bmc"] == outputs["explicit"] == outputs["kind"]


def test_a_leaked_hold_names_its_call_chain(tmp_path):
    f = tmp_path / "leak.tdx"
    f.write_text(CASES["read-hold-leaked-under-repeat"])
    res = CliRunner().invoke(cli, ["verify", str(f)])
    assert "`s` (read) would be held 5 times by this context, past the bound of 4" in res.stderr
    assert f"in down_read(), called from actor a at {f}:6:13" in res.stderr


def test_nothing_to_verify_is_said_in_every_engine(tmp_path):
    f = tmp_path / "nothing.tdx"
    f.write_text("")
    for engine in ("explicit", "compiled", "bmc", "kind", "lift"):
        res = CliRunner().invoke(cli, ["verify", str(f), "--engine", engine])
        assert res.exit_code == 2 and f"{f}:1:1: error[E421]" in res.stderr, (engine, res.output)


def test_a_policy_without_actors_says_only_its_initial_states_are_checked(tmp_path):
    f = tmp_path / "still.tdx"
    f.write_text('import "locks.tdx";\nvar x: bool = false;\ninvariant off: !x;\n')
    res = CliRunner().invoke(cli, ["verify", str(f)])
    assert res.exit_code == 0 and f"{f}:1:1: warning[W422]: the policy has no actor" in res.stderr
