"""`no-recursive-read` on every code path (engines/lockgraph.py,
check_recursive_read): a verdict for every N and every interleaving, given only
where the lock graph's walk shows no read acquire of a lock its task holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tdx

from tdxproof.engines.explicit import verify_explicit
from tdxproof.engines.lockgraph import check_recursive_read
from tdxproof.model.lower import lower_policy
from tdxproof.results import Verdict

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "policies").glob("*.tdx"))


def _static(model):
    p = next(p for p in model.properties if p.name == "no-recursive-read")
    return check_recursive_read(model, p)


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_static_only_where_the_search_finds_no_recursive_read(path):
    # the policies' `expect` clauses are checked against the explicit engine by
    # `tdxproof check` (tests/test_cli.py, proofs/): static holds only where that
    # search holds, and on every thread policy where it holds
    model = lower_policy(str(path), cpus=2)[0]
    expected = next((e.verdict for e in model.expects if e.prop == "no-recursive-read"), "holds")
    r = _static(model)
    assert (r is not None) == (expected == "holds"), (path.stem, expected, r)
    if r is not None:
        assert r.verdict is Verdict.HOLDS_STATIC and "no code path takes a read lock its task holds" in r.reason


NESTED = 'import "kernel-6.16.tdx";\ncpus 2;\nactor a { cpus_read_lock(); cpus_read_lock(); cpus_read_unlock(); cpus_read_unlock(); }\n'
# each iteration leaves the lock held: the next one takes it again
LEAK = 'import "kernel-6.16.tdx";\ncpus 2;\nactor a repeat 2 { cpus_read_lock(); }\n'
CLEAN = 'import "kernel-6.16.tdx";\ncpus 2;\nactor a repeat 2 { cpus_read_lock(); cpus_read_unlock(); }\n'


@pytest.mark.parametrize("text,static,dynamic", [(NESTED, False, Verdict.VIOLATED), (LEAK, False, Verdict.VIOLATED),
                                                 (CLEAN, True, Verdict.HOLDS_EXHAUSTIVE)])
def test_a_recursive_read_or_a_leaked_hold_takes_the_static_verdict_away(text, static, dynamic):
    model = tdx(text)
    assert (_static(model) is not None) == static
    run = verify_explicit(model, cpus=2, properties={"no-recursive-read"})
    assert run.results[0].verdict is dynamic


def test_an_event_the_engines_fire_is_not_given_a_static_verdict():
    model = tdx(CLEAN)
    p = next(p for p in model.properties if p.name == "no-lock-at-exit")
    assert check_recursive_read(model, p) is None


def test_cpus_any_says_it_for_every_n(tmp_path):
    from click.testing import CliRunner

    from tdxproof.cli import cli

    p = tmp_path / "clean.tdx"
    p.write_text(CLEAN)
    r = CliRunner().invoke(cli, ["verify", str(p), "--cpus", "any", "--property", "no-recursive-read",
                                 "--property", "no-lock-at-exit"])
    lines = {ln.split()[0]: ln for ln in r.output.splitlines() if ln.startswith("  ")}
    assert "holds (static, every N: no code path takes a read lock its task holds)" in lines["no-recursive-read"]
    assert "static" not in lines["no-lock-at-exit"], r.output
