"""Differential testing: every engine on random small policies (policies.py) must
agree with the exhaustive explicit search of the same policy.

- `bmc` (depth D): a violation or cover the explicit search found within D steps is
  found with a schedule of the same length (both shortest); nothing else is.
- `kind`: a violation has the explicit engine's length; "proved" only for what the
  explicit search found to hold; cover goals the same.
- `lift` (a policy of N=2: learned there, proved at N=3): "proved" only for what
  the explicit search at N=3 found to hold; a violation or cover it reports is one
  at N=3 too.
- a run-time model error: the same message after the same number of steps.

Every witness an engine returns was replayed on the interpreter on its way out
(engines/explicit.check_witness); a mismatch raises InternalError and fails here.

CI runs the "ci" profile's fixed-seed budget (DIFF_EXAMPLES, 8 by default: about a minute);
`DIFF_EXAMPLES=2000 HYPOTHESIS_PROFILE=fuzz DIFF_LOG=diff.log pytest
tests/property/test_differential.py` is the long run (a kernel policy takes seconds
to a minute: plan hours; the log gives its figures).
A shrunk failure becomes a case in tests/engines/ before it is fixed.
"""

from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, assume, given, note, settings
from policies import policies

from tdxproof.engines.bmc import verify_bmc
from tdxproof.engines.explicit import ModelErrorAt, verify_explicit
from tdxproof.engines.induction import verify_kind
from tdxproof.engines.lift import verify_lift
from tdxproof.model.lower import lower_policy
from tdxproof.results import HOLDING, Verdict

EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "8"))
DEPTH = 8
LIMIT = 5_000      # explicit states: bigger random policies are skipped, not compared
QUICK = "DIFF_EXAMPLES" not in os.environ   # CI's budget: lift only on the small policies
LOG = os.environ.get("DIFF_LOG")              # a file: one line (seconds, flavour) per policy


def _run(engine, *args, **kw):
    try:
        return engine(*args, **kw), None
    except ModelErrorAt as exc:
        return None, (exc.error.message, len(exc.schedule))


def _by_name(run):
    return {r.name: r for r in run.results}


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(policies())
def test_every_engine_agrees_with_the_exhaustive_search(text):
    note(text)
    t0 = time.monotonic()
    try:
        _compare(text)
    finally:
        if LOG:   # the long run's figures: one line per generated policy
            with open(LOG, "a") as f:
                f.write(f"{time.monotonic() - t0:.1f}s {'kernel' if 'x86.tdx' in text else 'locks'}\n")


def _static(r, e) -> bool:
    """Properties decided on the code (module boundary, lock graph): the same
    verdict from every engine, no schedule to compare."""
    if r.kind not in ("static", "lockdep"):
        return False
    assert r.verdict is e.verdict, r.name
    return True


def _compare(text: str) -> None:
    model = lower_policy("generated.tdx", text=text)[0]
    explicit, error = _run(verify_explicit, model, max_states=LIMIT)
    if error is None:
        assume(explicit.complete)
    bmc, bmc_error = _run(verify_bmc, model, max_depth=DEPTH)
    kind, kind_error = _run(verify_kind, model, max_states=4 * LIMIT)
    if error is not None:
        # BFS order: the explicit engine's error is a shortest one; bmc's is shortest too
        assert bmc_error is not None and bmc_error[1] == error[1] or bmc_error is None and error[1] > DEPTH, \
            (error, bmc_error)
        assert kind_error == error, (error, kind_error)
        return
    assert bmc_error is None and kind_error is None, (bmc_error, kind_error)
    truth = _by_name(explicit)
    for r in bmc.results:
        e = truth[r.name]
        note(f"bmc {r.name}: {r.verdict} vs {e.verdict}")
        if _static(r, e):
            continue
        if e.verdict in (Verdict.VIOLATED, Verdict.COVERED) and len(e.schedule) <= DEPTH:
            assert r.verdict is e.verdict and len(r.schedule) == len(e.schedule), r.name
        elif e.verdict is not Verdict.HOLDS_STATIC:
            assert r.verdict not in (Verdict.VIOLATED, Verdict.COVERED), r.name
    for r in kind.results:
        e = truth[r.name]
        note(f"kind {r.name}: {r.verdict} vs {e.verdict}")
        if _static(r, e):
            continue
        if r.verdict in (Verdict.VIOLATED, Verdict.COVERED):
            assert r.verdict is e.verdict and len(r.schedule) == len(e.schedule), r.name
        elif r.verdict is Verdict.PROVED:
            assert e.verdict in HOLDING, r.name
        elif r.verdict is Verdict.UNREACHABLE:
            assert e.verdict is Verdict.UNREACHABLE, r.name
        else:
            # kind decides every property of a policy this small
            assert e.verdict is Verdict.HOLDS_STATIC or r.verdict is not Verdict.UNKNOWN, (r.name, r.reason)
    if model.cpus == 2 and (not QUICK or "x86.tdx" not in text):
        # lift: lemmas learned at N=2, made inductive at N=3; "proved" only for what
        # the exhaustive search at N=3 finds to hold
        big = lower_policy("generated.tdx", text=text, cpus=3)[0]
        at3, error3 = _run(verify_explicit, big, max_states=LIMIT)
        if error3 is not None or not at3.complete:
            return
        lifted, lift_error = _run(verify_lift, big, model, timeout_s=10)
        assert lift_error is None, lift_error
        truth3 = _by_name(at3)
        for r in lifted.results:
            e = truth3[r.name]
            note(f"lift {r.name}: {r.verdict} vs {e.verdict}")
            if r.verdict is Verdict.PROVED:
                assert e.verdict in HOLDING, r.name
            elif r.verdict in (Verdict.VIOLATED, Verdict.COVERED):
                assert r.verdict is e.verdict, r.name
            elif r.verdict is Verdict.UNREACHABLE:
                assert e.verdict is Verdict.UNREACHABLE, r.name
