"""`--engine compiled`: the exhaustive search over the encoding compiled to Python
gives the explicit engine's verdicts, with shortest schedules of the same length
(each one replayed on the reference interpreter before it is returned). Its
limits and early answers are tested with the explicit engine's (test_explicit.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_explicit import COUNTER

from tdxproof.cli import cli
from tdxproof.engines.compiled import verify_compiled
from tdxproof.engines.explicit import verify_explicit
from tdxproof.model.lower import lower_policy
from tdxproof.results import Verdict


def _same(model, cpus=None):
    a = verify_explicit(model, cpus=cpus)
    b = verify_compiled(model, cpus=cpus)
    assert a.complete and b.complete and a.states == b.states
    for x, y in zip(a.results, b.results, strict=True):
        assert (x.name, x.verdict) == (y.name, y.verdict), (x, y)
        assert (x.schedule is None) == (y.schedule is None), x.name
        if x.schedule is not None and x.verdict is not Verdict.HOLDS_STATIC:
            assert len(x.schedule) == len(y.schedule), x.name
    return b


@pytest.mark.parametrize("path", ["benchmarks/models/loop-locks.tdx", "examples/kvm-lock-cycle/kvm-6.10.tdx",
                                  "examples/padata-cpumask/padata-5.2-fixed.tdx",
                                  # the encoder's side of work queues, per-CPU actors, lock arrays,
                                  # require-guarded claims, the DEAD section and IPI preemption
                                  "examples/therm-throt-poll-work/therm_throt-5.5.tdx",
                                  "examples/padata-dead-callback/padata-6.18.tdx",
                                  "examples/qbman-cgr-lock/qman-6.8.tdx"])
def test_the_compiled_search_gives_the_explicit_engines_verdicts(path):
    _same(lower_policy(path)[0])


def test_a_thread_policy_at_two_cpus_gives_the_same_verdicts_and_lengths():
    run = _same(lower_policy("policies/option4.tdx", cpus=2)[0])
    assert {r.verdict for r in run.results} >= {Verdict.VIOLATED, Verdict.COVERED, Verdict.HOLDS_EXHAUSTIVE}


def test_the_cli_names_the_engine_and_exits_as_the_explicit_engine_does(tmp_path):
    f = tmp_path / "counter.tdx"
    f.write_text(COUNTER)
    res = CliRunner().invoke(cli, ["verify", str(f), "--engine", "compiled"])
    assert res.exit_code == 1, res.output
    assert "engine compiled (the encoding compiled to Python, exhaustive search)" in res.output
    assert "x-small" in res.output and "violated (2 steps)" in res.output

