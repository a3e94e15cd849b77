"""Counter abstraction (engines/counting.py): one finite search for every N."""

from tdxproof.engines import counting
from tdxproof.interp.explore import explore
from tdxproof.interp.program import Program
from tdxproof.model import ir
from tdxproof.model.lower import lower_policy

LOOP = "benchmarks/models/loop-locks.tdx"


def _model():
    return lower_policy(LOOP, cpus=3)[0], lower_policy(LOOP, cpus=2)[0]


def _props(m):
    return [p for p in m.properties if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.DEADLOCK) or p.fires_in_steps]


def test_loop_model_in_fragment_and_proved_with_a_certificate_that_rechecks():
    m, m2 = _model()
    assert counting.fragment(m, m2) is None
    out = counting.search(m, _props(m))
    assert out.complete and not out.broken and out.why is None
    assert counting.recheck(m, _props(m), out.reached) is None
    # a certificate missing a state is refused
    smaller = set(out.reached)
    smaller.discard(max(smaller, key=repr))
    assert counting.recheck(m, _props(m), smaller) is not None


def test_every_concrete_state_of_small_n_is_in_the_abstraction():
    """The over-approximation, checked: each state the any-order semantics reaches
    at N = 2, 3, 4 abstracts to a state of the abstract search."""
    m, _ = _model()
    ab = counting.Abstraction(m)
    out = counting.search(m, _props(m), abstraction=ab)
    for n in (2, 3, 4):
        prog = Program(m, n, any_order=True)
        exp = explore(prog, keep_trail=True)
        assert exp.complete
        at = ab.at(n)
        for s in exp.trail[0]:
            a = ab.abstract(at, at.succ.canonical(s))
            assert (counting.ab_n(ab, a), a) in out.reached


def test_per_cpu_choice_of_initial_values_is_outside_the_fragment():
    m = lower_policy("policies/upstream-fixed.tdx", cpus=3)[0]
    m2 = lower_policy("policies/upstream-fixed.tdx", cpus=2)[0]
    assert "a choice per CPU" in counting.fragment(m, m2)
