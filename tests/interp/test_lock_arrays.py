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
])
def test_an_array_of_locks_is_indexed_within_its_range(body, code):
    with pytest.raises(PolicyError) as e:
        tdx('import "cpuhp.tdx";\ncpus 2;\nlock inst_lock[cpu c]: mutex;\n' + body + "\n")
    assert [d.code for d in e.value.diagnostics] == [code]
