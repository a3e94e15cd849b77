"""Every policies/*.tdx: the engine's verdict against the policy's `expect`.

The expectation is the claim; the verdict comes from the explicit engine. N=2
runs in the default suite; N=3 (the policies' own default) is marked slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tdxproof.engines.explicit import verify_explicit
from tdxproof.model.lower import lower_policy
from tdxproof.results import Verdict

ROOT = Path(__file__).parent.parent.parent
POLICIES = sorted((ROOT / "policies").glob("*.tdx")) + sorted((ROOT / "examples").glob("*.tdx"))


def _check(path: Path, cpus: int) -> None:
    model, _, _ = lower_policy(str(path), cpus=cpus)
    run = verify_explicit(model, cpus=cpus)
    assert run.complete, f"{path.name}: the search did not finish"
    expects = {e.prop for e in model.expects}
    assert expects == {p.name for p in model.properties}, "every property of a shipped policy has an expect"
    mismatches = [f"{r.name}: expected {r.expected}, engine says {r.verdict.value}"
                  for r in run.results if r.meets_expectation is not True]
    assert not mismatches, "\n".join(mismatches)
    for r in run.results:
        if r.verdict in (Verdict.VIOLATED, Verdict.COVERED):
            assert r.schedule is not None or r.static is not None


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_policy_verdicts_match_expectations_at_two_cpus(path):
    _check(path, 2)


@pytest.mark.slow
@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_policy_verdicts_match_expectations_at_three_cpus(path):
    _check(path, 3)
