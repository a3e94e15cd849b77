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


# CPUs that may start offline, as the thread's policies have them
# (policies/upstream.tdx:23): a walk over the online ones
ONLINE = open(LOOP).read().replace("    var done[cpu c]", "    var online[cpu c]: bool = c == 0 || any;\n    var done[cpu c]") \
    .replace("for cpu k {", "for cpu k where online[k] {") \
    + "    invariant online-done: all_done -> forall cpu c: online[c] -> done[c];\n"


def _online(tmp_path):
    path = tmp_path / "online.tdx"
    path.write_text(ONLINE)
    return lower_policy(str(path), cpus=3)[0], lower_policy(str(path), cpus=2)[0]


def test_initial_values_chosen_per_cpu_give_every_mix_of_initial_classes(tmp_path):
    m, m2 = _online(tmp_path)
    assert counting.fragment(m, m2) is None
    out = counting.search(m, _props(m))
    assert out.complete and out.why is None
    # what holds is not broken; what fails once a CPU starts offline is
    assert "online-done" not in out.broken and "every-cpu-done" in out.broken
    proved = [p for p in _props(m) if p.name != "every-cpu-done"]
    assert counting.recheck(m, proved, out.reached) is None
    # every state of N = 2..4 (one CPU online and one offline among them) is covered
    ab = counting.Abstraction(m)
    out = counting.search(m, proved, abstraction=ab)
    for n in (2, 3, 4):
        exp = explore(Program(m, n, any_order=True), keep_trail=True)
        at = ab.at(n)
        for s in exp.trail[0]:
            a = ab.abstract(at, at.succ.canonical(s))
            assert (counting.ab_n(ab, a), a) in out.reached
    # a certificate without the initial mix of an online and an offline CPU is refused
    mixed = [key for key in counting.initial(ab) if key[0] > 2]
    assert mixed and "initial" in counting.recheck(m, proved, out.reached - set(mixed))


def test_too_many_initial_classes_is_a_reason_not_a_proof(tmp_path):
    path = tmp_path / "many.tdx"
    path.write_text(open(LOOP).read().replace("    var done[cpu c]", "    var level[cpu c]: int[0..7] = any;\n"
                                                                  "    var done[cpu c]"))
    m = lower_policy(str(path), cpus=3)[0]
    out = counting.search(m, _props(m))
    assert not out.complete and "classes" in out.why
    assert "classes" in counting.recheck(m, _props(m), set())
