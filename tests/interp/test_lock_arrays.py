"""Arrays of locks (`lock inst_lock[inst i]: mutex;`, `lock cpu_lock[cpu c]`): each
element a lock of its own for the search and the encoder; one lockdep class for
the lock graph, so nesting two of them is lockdep's "possible recursive locking"
(kernel/locking/lockdep.c: instances of a class share its key)."""

from __future__ import annotations

import pytest
from helpers import tdx, verdicts

from tdxproof.diagnostics import PolicyError
from tdxproof.engines.bmc import verify_bmc
from tdxproof.render.text import render_witness
from tdxproof.results import Verdict

ABBA = """
    import "cpuhp.tdx";
    cpus 2;
    enum inst { INST_A, INST_B }
    lock inst_lock[inst i]: mutex;
    var hits[inst i]: int[0..3] = 0;
    fn bump(inst i) {
        mutex_lock(inst_lock[i]);
        hits[i]++;
        mutex_unlock(inst_lock[i]);
    }
    actor a "task a" { mutex_lock(inst_lock[INST_A]); bump(INST_B); mutex_unlock(inst_lock[INST_A]); }
    actor b "task b" { mutex_lock(inst_lock[INST_B]); bump(INST_A); mutex_unlock(inst_lock[INST_B]); }
"""


def test_two_locks_of_one_array_taken_in_both_orders_deadlock():
    model = tdx(ABBA)
    got = verdicts(model)
    dl = got["no-deadlock"]
    assert dl.verdict is Verdict.VIOLATED and len(dl.schedule) == 2
    # lockdep sees one class: nesting two of its locks is recursive locking
    text = render_witness(got["lock-graph"])
    assert "WARNING: possible recursive locking detected" in text and "(inst_lock)" in text
    bmc = {r.name: r for r in verify_bmc(model, properties={"no-deadlock"}, max_depth=4).results}
    assert bmc["no-deadlock"].verdict is Verdict.VIOLATED and len(bmc["no-deadlock"].schedule) == 2


def test_one_order_of_the_array_is_no_deadlock():
    one = ABBA.replace('mutex_lock(inst_lock[INST_B]); bump(INST_A); mutex_unlock(inst_lock[INST_B]);',
                       'mutex_lock(inst_lock[INST_A]); bump(INST_B); mutex_unlock(inst_lock[INST_A]);')
    assert verdicts(tdx(one))["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_a_lock_per_cpu_indexed_by_a_loop_is_the_lock_of_that_cpu():
    got = verdicts(tdx("""
        import "cpuhp.tdx";
        cpus 3;
        lock cpu_lock[cpu c]: mutex;
        var done[cpu c]: bool = false;
        event held-own "the loop holds the lock of the CPU it works on, and no other";
        actor walker {
            for cpu k {
                mutex_lock(cpu_lock[k]);
                check held-own: held(cpu_lock[k]) && holders(cpu_lock[k]) == 1
                    && (count cpu j: held(cpu_lock[j])) == 1;
                done[k] = true;
                mutex_unlock(cpu_lock[k]);
            }
        }
        actor worker[cpu k] "kworker/{cpu}" { mutex_lock(cpu_lock[k]); done[k] = false; mutex_unlock(cpu_lock[k]); }
        cover all-done: forall cpu c: done[c];
    """))
    assert got["held-own"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["all-done"].verdict is Verdict.COVERED


@pytest.mark.parametrize("body, code", [
    ("actor a { mutex_lock(inst_lock); }", "E325"),          # the array, not one of its locks
    ("actor a { mutex_lock(inst_lock[3]); }", "E328"),       # no such CPU
    ("var x: int[0..3] = 2;\nactor a { mutex_lock(inst_lock[x]); }", "E331"),   # an int could be any lock
])
def test_an_array_of_locks_is_indexed_within_its_range(body, code):
    with pytest.raises(PolicyError) as e:
        tdx('import "cpuhp.tdx";\ncpus 2;\nlock inst_lock[cpu c]: mutex;\n' + body + "\n")
    assert [d.code for d in e.value.diagnostics] == [code]


def test_an_ipi_that_spins_on_the_lock_of_the_task_it_interrupted_deadlocks():
    # 584c2a9184a3 (qbman's cgr_lock): a per-CPU spinlock held with interrupts on by
    # a task, and taken by an IPI handler on that CPU; the block reduction must not
    # merge the task's acquire with its release (NOTE(blocks)), and the fix
    # (spin_lock_irq()) keeps the IPI out while the lock is held
    from pathlib import Path

    from tdxproof.model.lower import lower_policy
    ex = Path(__file__).resolve().parents[2] / "examples" / "qbman-cgr-lock"
    buggy = lower_policy(str(ex / "qman-6.8.tdx"))[0]
    dl = verdicts(buggy)["no-deadlock"]
    assert dl.verdict is Verdict.VIOLATED and len(dl.schedule) == 4
    bmc = {r.name: r for r in verify_bmc(buggy, properties={"no-deadlock"}, max_depth=6).results}
    assert bmc["no-deadlock"].verdict is Verdict.VIOLATED and len(bmc["no-deadlock"].schedule) == 4
    fixed = lower_policy(str(ex / "qman-6.9-fixed.tdx"))[0]
    assert verdicts(fixed)["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_named_and_computed_locks_of_an_array_are_one_lock_for_the_static_analysis():
    # taken through a computed index, released by name (and inside a per-CPU actor,
    # where the CPU is a literal): balanced, no E403/E405
    got = verdicts(tdx("""
        import "locks.tdx";
        cpus 2;
        lock a[cpu c]: mutex;
        fn take(cpu k) { mutex_lock(a[k]); }
        actor t { take(0); mutex_unlock(a[0]); }
        actor w[cpu k] { for cpu j { if j == k { mutex_lock(a[j]); mutex_unlock(a[k]); } } }
        static s: module m never uses a;
    """))
    assert got["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["s"].verdict is Verdict.HOLDS_STATIC


def test_an_ipi_handler_spinning_between_a_bare_acquire_and_release_deadlocks():
    # nothing visible between spin_lock() and spin_unlock(): the block boundary must
    # still separate them, or the IPI could never come in while the lock is held
    model = tdx("""
        import "locks.tdx";
        cpus 2;
        lock l: spinlock;
        fn handler() { let flags = spin_lock_irqsave(l); spin_unlock_irqrestore(l, flags); }
        actor task on cpu 1 { spin_lock(l); spin_unlock(l); }
        actor sender { ipi 1 { handler(); } }
    """)
    assert verdicts(model)["no-deadlock"].verdict is Verdict.VIOLATED
    bmc = {r.name: r for r in verify_bmc(model, properties={"no-deadlock"}, max_depth=4).results}
    assert bmc["no-deadlock"].verdict is Verdict.VIOLATED
