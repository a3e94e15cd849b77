"""`lockdep NAME;` (engines/lockgraph.py): lockdep's circular-dependency check on
every code path -- no interleaving needed -- with lockdep's recursive-read rules,
and agreement with the exhaustive deadlock search where it finishes."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tdx, verdicts

from tdxproof.engines.lockgraph import LockGraph
from tdxproof.model.lower import lower_policy
from tdxproof.render.text import render_witness
from tdxproof.results import Verdict

ROOT = Path(__file__).resolve().parents[2]
HEAD = 'import "cpuhp.tdx";\ncpus 2;\n'


def _lockgraph(model):
    return verdicts(model)["lock-graph"]


def test_the_kvm_four_lock_cycle_is_reported_as_lockdep_does_and_the_fix_is_clean():
    buggy = lower_policy(str(ROOT / "examples" / "kvm-lock-cycle" / "kvm-6.10.tdx"))[0]
    got = verdicts(buggy)
    r = got["lock-graph"]
    assert r.verdict is Verdict.VIOLATED and r.static is not None
    text = render_witness(r)
    assert "WARNING: possible circular locking dependency detected" in text
    assert "which lock already depends on the new lock." in text
    for lock in ("kvm_lock", "slots_lock", "kvm_srcu", "cpu_hotplug_lock"):
        assert f"({lock})" in text, lock
    assert "Chain exists of:" in text and " *** DEADLOCK ***" in text
    # each dependency with the call chain that took it
    assert "set_nx_huge_pages" in text and "synchronize_srcu(kvm_srcu);" in text
    assert "static_branch_inc" in text and "hardware_enable_all" in text
    # the exhaustive search agrees: five tasks (a hotplug writer among them) deadlock
    assert got["no-deadlock"].verdict is Verdict.VIOLATED
    fixed = verdicts(lower_policy(str(ROOT / "examples" / "kvm-lock-cycle" / "kvm-6.10-fixed.tdx"))[0])
    assert fixed["lock-graph"].verdict is Verdict.HOLDS_STATIC
    assert fixed["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE


@pytest.mark.parametrize("example, buggy, fixed, words", [
    # lockdep's splat of the fix "padata: always acquire cpu_hotplug_lock before
    # pinst->lock": cpuhp/1 takes pinst->lock while holding cpuhp_state-down
    ("padata-cpumask", "padata-5.2.tdx", "padata-5.2-fixed.tdx", ("(pinst_lock)", "(cpu_hotplug_lock)", "by cpuhp/N")),
    # 4c1d2f56d685 ("perf/arm-dmc620: Fix dmc620_pmu_irqs_lock/cpu_hotplug_lock
    # circular lock dependency"): a multi-instance cpuhp user; the probe holds
    # dmc620_pmu_irqs_lock around cpuhp_state_add_instance_nocalls(), the instance's
    # teardown takes it in cpuhp/1; the search finds the three-task deadlock
    ("dmc620-pmu-irqs", "dmc620-6.5.tdx", "dmc620-6.6-fixed.tdx",
     ("(dmc620_pmu_irqs_lock)", "(cpu_hotplug_lock)", "cpuhp_state_add_instance_nocalls", "dmc620_pmu_cpu_teardown")),
])
def test_a_lock_taken_in_a_hotplug_callback_and_around_the_hotplug_lock(example, buggy, fixed, words):
    ex = ROOT / "examples" / example
    got = verdicts(lower_policy(str(ex / buggy))[0])
    r = got["lock-graph"]
    assert r.verdict is Verdict.VIOLATED
    text = render_witness(r)
    assert all(w in text for w in words), words
    assert got["no-deadlock"].verdict is Verdict.VIOLATED
    clean = verdicts(lower_policy(str(ex / fixed))[0])
    assert clean["lock-graph"].verdict is Verdict.HOLDS_STATIC
    assert clean["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_abba_is_a_cycle_and_one_order_is_not():
    text = HEAD + """
        lock a: mutex;
        lock b: mutex;
        actor one { mutex_lock(a); mutex_lock(b); mutex_unlock(b); mutex_unlock(a); }
        actor two { mutex_lock(b); mutex_lock(a); mutex_unlock(a); mutex_unlock(b); }
    """
    got = verdicts(tdx(text))
    assert got["lock-graph"].verdict is Verdict.VIOLATED
    assert got["no-deadlock"].verdict is Verdict.VIOLATED
    ordered = text.replace("actor two { mutex_lock(b); mutex_lock(a); mutex_unlock(a); mutex_unlock(b); }",
                           "actor two { mutex_lock(a); mutex_lock(b); mutex_unlock(b); mutex_unlock(a); }")
    got = verdicts(tdx(ordered))
    assert got["lock-graph"].verdict is Verdict.HOLDS_STATIC
    assert got["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_a_lock_passed_through_a_wrapper_is_the_lock_it_names():
    text = HEAD + """
        lock a: mutex;
        lock b: mutex;
        fn take(mutex m) { mutex_lock(m); }
        fn drop(mutex m) { mutex_unlock(m); }
        actor one { take(a); take(b); drop(b); drop(a); }
        actor two { take(b); take(a); drop(a); drop(b); }
    """
    g = LockGraph(tdx(text))
    cyc = g.cycle()
    assert cyc is not None and {e.lock for e in cyc} == {"a", "b"}


def test_an_srcu_reader_inside_a_mutex_and_a_mutex_inside_the_reader_is_no_cycle():
    # lockdep: srcu_read_lock() is a recursive read; -(*R)-> followed by -(S*)->
    # cannot deadlock (readers do not wait for readers), and nothing here waits
    # for the readers. The exhaustive search agrees.
    text = HEAD + """
        lock m: mutex;
        lock s: srcu_struct;
        actor one { srcu_read_lock(s); mutex_lock(m); mutex_unlock(m); srcu_read_unlock(s); }
        actor two { mutex_lock(m); srcu_read_lock(s); srcu_read_unlock(s); mutex_unlock(m); }
    """
    got = verdicts(tdx(text))
    assert got["lock-graph"].verdict is Verdict.HOLDS_STATIC
    assert got["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE
    # SRCU read sections nest (a recursive read inside a read): no report
    nested = HEAD + "lock s: srcu_struct;\nactor one { srcu_read_lock(s); srcu_read_lock(s); " \
        "srcu_read_unlock(s); srcu_read_unlock(s); }\n"
    assert verdicts(tdx(nested))["lock-graph"].verdict is Verdict.HOLDS_STATIC
    # synchronize_srcu() under the mutex waits for the reader that wants the mutex
    sync = text.replace("srcu_read_lock(s); srcu_read_unlock(s); mutex_unlock(m); }",
                        "synchronize_srcu(s); mutex_unlock(m); }")
    got = verdicts(tdx(sync))
    assert got["lock-graph"].verdict is Verdict.VIOLATED
    assert got["no-deadlock"].verdict is Verdict.VIOLATED


def test_a_cpuhp_callback_runs_under_the_hotplug_lock():
    # the callback takes m under cpu_hotplug_lock (held by the control task,
    # lockdep_held); a task holding m calls cpus_read_lock(): a cycle lockdep reports
    text = HEAD + """
        lock m: mutex;
        fn cb(cpu c) -> int { mutex_lock(m); mutex_unlock(m); return 0; }
        actor reg { cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, cb, null); }
        actor user { mutex_lock(m); cpus_read_lock(); cpus_read_unlock(); mutex_unlock(m); }
        actor hotplug { cpu_down(1); cpu_up(1); }
    """
    cyc = LockGraph(tdx(text)).cycle()
    assert cyc is not None and {e.lock for e in cyc} >= {"m", "cpu_hotplug_lock"}, cyc


def test_static_keys_take_the_hotplug_lock_and_the_cpuslocked_variant_asserts_it():
    # kernel/jump_label.c: static_key_slow_inc() takes cpus_read_lock(); under a
    # cpus_read_lock() already held that is a recursive read (lockdep complains,
    # the fix is static_branch_inc_cpuslocked()); the _cpuslocked variant asserts
    # the lock is held (lockdep_assert_cpus_held())
    text = 'import "jump_label.tdx";\ncpus 2;\nlock key: static_key;\n'
    nested = text + "actor a { cpus_read_lock(); static_branch_inc(key); cpus_read_unlock(); }\n"
    got = verdicts(tdx(nested))
    assert got["no-recursive-read"].verdict is Verdict.VIOLATED
    assert got["lock-graph"].verdict is Verdict.VIOLATED
    right = text + "actor a { cpus_read_lock(); static_branch_inc_cpuslocked(key); cpus_read_unlock(); }\n"
    got = verdicts(tdx(right))
    assert got["no-recursive-read"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["locks-asserted"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["lock-graph"].verdict is Verdict.HOLDS_STATIC
    bare = text + "actor a { static_branch_inc_cpuslocked(key); }\n"
    assert verdicts(tdx(bare))["locks-asserted"].verdict is Verdict.VIOLATED
    # the count: on, on again (no text patching), off, off
    twice = text + ("var seen: int[0..4] = 0;\nactor a { static_branch_inc(key); static_branch_inc(key); "
                    "seen = key.enabled; static_branch_dec(key); static_branch_dec(key); }\n"
                    "invariant balanced: seen == 0 || seen == 2;\ninvariant back: key.enabled <= 2;\n")
    got = verdicts(tdx(twice))
    assert got["balanced"].verdict is Verdict.HOLDS_EXHAUSTIVE and got["back"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_irq_saving_spinlocks_turn_interrupts_off_and_restore_them():
    # include/linux/spinlock_api_smp.h: __raw_spin_lock_irqsave() saves and
    # disables local interrupts before spinning, __raw_spin_unlock_irqrestore()
    # restores them; spin_lock_irq()/spin_unlock_irq() disable and enable. A
    # mutex (which may sleep) under spin_lock_irq() is a sleep in atomic context.
    text = 'import "x86.tdx";\ncpus 2;\nlock s: spinlock;\nlock m: mutex;\nvar after: bool = false;\n' + """
        actor a {
            let f = spin_lock_irqsave(s);
            lockdep_assert_irqs_disabled();
            spin_unlock_irqrestore(s, f);
            after = irqs_off;
            spin_lock_irq(s);
            mutex_lock(m);
            mutex_unlock(m);
            spin_unlock_irq(s);
        }
        invariant restored: !after;
    """
    got = verdicts(tdx(text))
    assert got["irqs-off-asserted"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["restored"].verdict is Verdict.HOLDS_EXHAUSTIVE
    bad = got["no-sleep-in-atomic"]
    assert bad.verdict is Verdict.VIOLATED and len(bad.schedule) == 6
    nested = text.replace("let f = spin_lock_irqsave(s);", "irqs_off = true; let f = spin_lock_irqsave(s);")
    nested = nested.replace("after = irqs_off;", "after = !irqs_off; irqs_off = false;")
    assert verdicts(tdx(nested))["restored"].verdict is Verdict.HOLDS_EXHAUSTIVE   # off stays off

