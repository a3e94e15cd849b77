"""Every shipped policy: the engine's verdicts against its `expect` clauses, and
the committed records (proofs/, the README table) against what they are now.

The expectation is the claim; the verdict comes from the explicit engine. The
thread's policies are verified once, at N=2 (the records' N), in a process pool;
every test below reads that one run. N=3 for two policies is marked slow; all of
them: `tdxproof check policies --cpus 3`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tdxproof.cli import _check_one, _records, cli
from tdxproof.model.lower import lower_policy
from tdxproof.render.ci import render_check_text
from tdxproof.results import ExitCode, Verdict, exit_code

ROOT = Path(__file__).parent.parent.parent
POLICIES = sorted((ROOT / "policies").glob("*.tdx"))
EXAMPLES = sorted((ROOT / "examples").rglob("*.tdx"))
FLIP = {"holds": "violated", "violated": "holds", "covered": "unreachable", "unreachable": "covered"}
COMMAND = "tdxproof check policies --cpus 2 --write-proofs"


@pytest.fixture(scope="module")
def thread_runs():
    """(outcome of `tdxproof check`'s worker) for every policy, at N=2, run from
    the repository root as the records' paths are."""
    from concurrent.futures import ProcessPoolExecutor

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        files = [f"policies/{p.name}" for p in POLICIES]
        with ProcessPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
            outcomes = list(pool.map(_check_one, files, [2] * len(files), [6_000_000] * len(files),
                                     [True] * len(files)))
    finally:
        os.chdir(here)
    assert all(o[0] == "ok" for o in outcomes), [o for o in outcomes if o[0] != "ok"]
    return outcomes


@pytest.mark.parametrize("path", POLICIES + EXAMPLES, ids=lambda p: p.stem)
def test_every_property_of_a_shipped_policy_has_an_expectation(path):
    model, _, _ = lower_policy(str(path), cpus=2)
    assert {e.prop for e in model.expects} == {p.name for p in model.properties}


def test_the_thread_policies_meet_every_expectation(thread_runs):
    bad = [f"{o[1].policy}: {r.name}: expected {r.expected}, the engine says {r.verdict.value}"
           for o in thread_runs for r in o[1].results if r.meets_expectation is not True]
    assert not bad, "\n".join(bad)
    for o in thread_runs:
        assert o[1].complete, o[1].policy
        for r in o[1].results:
            if r.verdict in (Verdict.VIOLATED, Verdict.COVERED):
                assert r.trace is not None or r.static is not None


def test_flipping_any_expectation_fails_the_check_and_names_it(thread_runs):
    """`tdxproof check` exits 1 for a verdict that differs from its `expect`, and
    its report names the policy and the property (every expectation of every
    policy, flipped one at a time, on the verdicts of the one run)."""
    for o in thread_runs:
        run = o[1]
        for i, r in enumerate(run.results):
            flipped = replace(r, expected=FLIP[r.expected])
            results = run.results[:i] + (flipped,) + run.results[i + 1:]
            assert exit_code(results, check_expectations=True) is ExitCode.VIOLATED
            line = next(x for x in render_check_text([replace(run, results=results)]).splitlines()
                        if x.strip().startswith(r.name + " "))
            assert line.rstrip().endswith("MISMATCH"), line


def test_a_flipped_expect_clause_fails_tdxproof_check(tmp_path):
    """End to end: one clause edited in a copy of a policy and its base."""
    for p in ("setup-only.tdx", "option3.tdx", "option4.tdx"):
        (tmp_path / p).write_text((ROOT / "policies" / p).read_text())
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "thread.tdx").write_text((ROOT / "policies" / "lib" / "thread.tdx").read_text())
    target = tmp_path / "option4.tdx"
    target.write_text(target.read_text().replace("expect hotplug-available violated;",
                                                 "expect hotplug-available holds;"))
    res = CliRunner().invoke(cli, ["check", str(target), "--cpus", "2"])
    assert res.exit_code == 1, res.output
    line = next(x for x in res.output.splitlines() if x.strip().startswith("hotplug-available"))
    assert "expect holds" in line and line.rstrip().endswith("MISMATCH")
    assert "option4.tdx" in res.output


def test_the_committed_records_and_readme_table_are_current(thread_runs):
    """proofs/*.md and the README table are what `tdxproof check --write-proofs`
    writes now (regenerate: see COMMAND)."""
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        stale = _records(thread_runs, "proofs", "README.md", COMMAND, write=False)
    finally:
        os.chdir(here)
    assert not stale, f"stale: {stale}; run `{COMMAND} --readme README.md`"


def test_every_cover_goal_is_reachable_or_the_policy_says_why(thread_runs):
    for o in thread_runs:
        text = (ROOT / o[1].policy).read_text()
        for r in o[1].results:
            if r.kind == "cover" and r.verdict is Verdict.UNREACHABLE:
                assert f"expect {r.name} unreachable;" in text, f"{o[1].policy}: {r.name}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_meet_their_expectations(path):
    outcome = _check_one(str(path), 2, 6_000_000, False)
    assert outcome[0] == "ok"
    bad = [r.name for r in outcome[1].results if r.meets_expectation is not True]
    assert not bad


@pytest.mark.slow
def test_thread_policies_at_three_cpus():
    """Two policies at N=3, side by side (all of them: `tdxproof check policies --cpus 3`,
    ~6 min on 2 cores): option 4, whose findings are lock findings, and the fixed
    6.16, where everything but the #MC lookup holds."""
    from concurrent.futures import ProcessPoolExecutor

    files = [str(ROOT / "policies" / f"{n}.tdx") for n in ("option4", "upstream-fixed")]
    with ProcessPoolExecutor(2) as pool:
        outcomes = list(pool.map(_check_one, files, [3] * 2, [6_000_000] * 2, [False] * 2))
    for o in outcomes:
        assert o[0] == "ok" and o[1].complete
        bad = [f"{r.name}: {r.verdict.value}" for r in o[1].results if r.meets_expectation is not True]
        assert not bad, o[1].policy
