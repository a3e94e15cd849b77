"""View abstraction (engines/views.py): one finite fixpoint of (named part,
one class) views for every N."""

from tdxproof.engines import views
from tdxproof.engines.every_n import verify_every_n
from tdxproof.interp.explore import explore
from tdxproof.interp.program import Program
from tdxproof.model import ir
from tdxproof.model.lower import lower_policy
from tdxproof.results import Verdict

LOOP = "benchmarks/models/loop-locks.tdx"
# CPUs that may start offline (policies/upstream.tdx:23): a walk over the online ones
ONLINE = open(LOOP).read().replace("    var done[cpu c]", "    var online[cpu c]: bool = c == 0 || any;\n    var done[cpu c]") \
    .replace("for cpu k {", "for cpu k where online[k] {") \
    + "    invariant online-done: all_done -> forall cpu c: online[c] -> done[c];\n"


def _props(m):
    return [p for p in m.properties if p.kind is ir.PropKind.INVARIANT or p.fires_in_steps]


def _lower(path):
    return lower_policy(str(path), cpus=3)[0], lower_policy(str(path), cpus=2)[0]


def _search(m, m2, props=None):
    props = props if props is not None else _props(m)
    w, why = views.width(m, m2, props)
    assert why is None, why
    return w, views.search(m, props, w)


def test_the_loop_is_proved_and_its_certificate_rechecks_and_a_smaller_one_does_not():
    m, m2 = _lower(LOOP)
    w, out = _search(m, m2)
    assert out.complete and out.why is None and not out.broken
    assert views.recheck(m, _props(m), w, out.table) is None
    cut = {g: set(cs) for g, cs in out.table.items()}
    g = max(cut, key=lambda k: len(cut[k]))
    cut[g].pop()
    assert views.recheck(m, _props(m), w, cut) is not None
    del cut[g]
    assert views.recheck(m, _props(m), w, cut) is not None


def test_every_view_of_every_state_of_small_n_is_in_the_fixpoint(tmp_path):
    """The over-approximation, checked: each state the any-order semantics
    reaches at N = 2, 3, 4 has all its views in the fixpoint -- with CPUs that
    start online or offline, so that several classes mix."""
    path = tmp_path / "online.tdx"
    path.write_text(ONLINE)
    m, m2 = _lower(path)
    w, out = _search(m, m2)
    assert out.complete
    vw = views._Views(m, w)
    for n in (2, 3, 4):
        exp = explore(Program(m, n, any_order=True), keep_trail=True)
        assert exp.complete
        at = vw.ab.at(n)
        for s in exp.trail[0]:
            gkey, classes = vw.split(n, at.succ.canonical(s))
            assert gkey in out.table and classes <= out.table[gkey]


def test_what_fails_at_some_n_is_broken_in_the_views_and_never_proved(tmp_path):
    path = tmp_path / "online.tdx"
    path.write_text(ONLINE)
    m, m2 = _lower(path)
    w, out = _search(m, m2)
    # every-cpu-done fails once a CPU starts offline; online-done holds
    assert "every-cpu-done" in out.broken and "online-done" not in out.broken
    proved = [p for p in _props(m) if p.name != "every-cpu-done"]
    assert views.recheck(m, proved, w, out.table) is None
    assert "every-cpu-done" in views.recheck(m, _props(m), w, out.table)


# two CPUs of different classes witness one step: the mix exists from N=3 on
TWO = 'import "locks.tdx";\ncpus 3;\n' + """
    var up[cpu c]: bool = c == 0 || any;
    var both: bool = false;
    actor look { if (exists cpu c: c != 0 && up[c]) && (exists cpu d: !up[d]) { both = true; } }
    invariant never-both: !both;
"""
# the same with a `forall` that fails on one CPU while another is picked
FAILS = 'import "locks.tdx";\ncpus 3;\n' + """
    var up[cpu c]: bool = c == 0 || any;
    var mixed: bool = false;
    actor look { pick cpu k where k != 0 && up[k] { if !(forall cpu c: up[c]) { mixed = true; } } }
    invariant never-mixed: !mixed;
"""


def test_a_step_with_two_witnesses_of_different_classes_is_stepped_with_both(tmp_path):
    for name, text, prop in (("two.tdx", TWO, "never-both"), ("fails.tdx", FAILS, "never-mixed")):
        path = tmp_path / name
        path.write_text(text)
        m, m2 = _lower(path)
        w, out = _search(m, m2)
        assert w.k >= 3 and out.complete
        assert prop in out.broken, (name, out.broken)
        # as the search does, from N=3 on
        r = verify_every_n(str(path), 3, properties={prop}, prove=False).results[0]
        assert r.verdict is Verdict.VIOLATED and r.reason == "smallest N=3"
        # with room for one witness only, the views would miss it
        narrow = views.search(m, _props(m), views.Width(0, 1, {}))
        assert narrow.complete and prop not in narrow.broken


def test_cpus_any_proves_by_views_first_and_views_needs_cpus_any():
    from click.testing import CliRunner

    from tdxproof.cli import cli
    r = CliRunner().invoke(cli, ["verify", LOOP, "--cpus", "any", "--engine", "views"])
    assert r.exit_code == 0, r.output
    for name in ("every-cpu-done", "no-deadlock"):
        line = next(ln for ln in r.output.splitlines() if ln.startswith(f"  {name} "))
        assert "proved (every N >= 2: views of one CPU, " in line, line
    assert "the view fixpoint closed after" in r.output and "re-checked in" in r.output
    r = CliRunner().invoke(cli, ["verify", LOOP, "--cpus", "3", "--engine", "views"])
    assert r.exit_code == 2 and "use it with --cpus any" in r.output, r.output


# two tasks taking two mutexes in opposite orders, while a walk passes every CPU
ABBA = 'import "locks.tdx";\ncpus 3;\n' + """
    var done[cpu c]: bool = false;
    lock a: mutex;
    lock b: mutex;
    actor one { mutex_lock(a); mutex_lock(b); for cpu k { done[k] = true; } mutex_unlock(b); mutex_unlock(a); }
    actor two { mutex_lock(b); mutex_lock(a); mutex_unlock(a); mutex_unlock(b); }
"""


def test_a_deadlock_is_broken_in_the_views_and_a_clean_model_is_not(tmp_path):
    path = tmp_path / "abba.tdx"
    path.write_text(ABBA)
    m, m2 = _lower(path)
    dead = [p for p in m.properties if p.kind is ir.PropKind.DEADLOCK]
    w, out = _search(m, m2, dead)
    assert w.deadlock and out.complete and "no-deadlock" in out.broken
    path.write_text(ABBA.replace("mutex_lock(b); mutex_lock(a); mutex_unlock(a); mutex_unlock(b);",
                                 "mutex_lock(a); mutex_lock(b); mutex_unlock(b); mutex_unlock(a);"))
    m, m2 = _lower(path)
    w, out = _search(m, m2, dead)
    assert out.complete and not out.broken
    assert views.recheck(m, dead, w, out.table) is None


def test_a_counter_of_cpus_is_unknown_with_the_views_reason_never_proved(tmp_path):
    # holds at N = 2, 3 and fails at 4: the views meet the counter's overflow
    from click.testing import CliRunner

    from tdxproof.cli import cli
    path = tmp_path / "count.tdx"
    path.write_text('import "locks.tdx";\ncpus 3;\n    var seen: int[0..3] = 0;\n'
                    '    actor walk { for cpu k where k != 0 { seen = seen + 1; } }\n    invariant few: seen <= 2;\n')
    r = CliRunner().invoke(cli, ["verify", str(path), "--cpus", "any", "--engine", "views", "--property", "few"])
    assert r.exit_code == 3 and "proved" not in r.output, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("  few "))
    assert "no proof for every N: the view fixpoint did not close" in line and "outside int[0..3]" in line, line
