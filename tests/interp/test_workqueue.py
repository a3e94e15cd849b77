"""Work queues on per-CPU pools (prelude/workqueue.tdx), on small hand-checked
cases: a work item queued on a CPU runs on that CPU's bound worker, or, once the
CPU's pool is unbound by its going offline, on an unbound worker elsewhere -- and
never on the CPU after it went away; a pending item is not queued twice;
cancel_work_sync() returns with the item neither pending nor running, where
cancel_work() may return while it runs (kernel/workqueue.c)."""

from __future__ import annotations

import pytest
from helpers import tdx, verdicts

from tdxproof.diagnostics import PolicyError
from tdxproof.results import Verdict

BASE = """
    import "workqueue.tdx";
    cpus 2;
    lock w: work_struct;
    var ran_on[cpu c]: int[0..3] = 0;     // how often the work ran on each CPU
    var running: bool = false;
    var bound_runs: bool = true;          // every run on CPU 1 was in a per-CPU thread
    fn work_fn() {
        running = true;
        if this_cpu == 1 && !percpu_thread { bound_runs = false; }
        ran_on[this_cpu]++;
        running = false;
    }
    actor kworker[cpu c] "kworker/{cpu}:1" repeat { worker_claim(w, c); work_fn(); worker_done(w); }
    actor kworker_unbound "kworker/u4:1" repeat { worker_claim_unbound(w); work_fn(); worker_done(w); }
"""


def test_work_queued_on_a_cpu_that_goes_away_runs_on_an_unbound_worker_elsewhere():
    got = verdicts(tdx(BASE + """
        var after_down: int[0..3] = 0;     // runs on CPU 1 after it went offline
        actor driver "insmod" { let q = schedule_work_on(1, w); let again = schedule_work_on(1, w); }
        actor hotplug "echo 0 > cpu1/online" { cpu_down(1); }
        invariant not-on-a-dead-cpu: !online[1] && !pool_disassociated[1] -> ran_on[1] == 0;
        invariant at-most-twice: ran_on[0] + ran_on[1] <= 2;
        invariant bound-on-its-cpu: bound_runs;
        cover ran-on-its-cpu: ran_on[1] > 0;
        cover ran-elsewhere: ran_on[0] > 0 && !online[1];
        cover queued-once-ran-once: ran_on[0] + ran_on[1] == 1 && !w.pending && holders(w) == 0;
    """))
    for name in ("not-on-a-dead-cpu", "at-most-twice", "bound-on-its-cpu", "no-deadlock", "no-lock-at-exit"):
        assert got[name].verdict is Verdict.HOLDS_EXHAUSTIVE, name
    for name in ("ran-on-its-cpu", "ran-elsewhere", "queued-once-ran-once"):
        assert got[name].verdict is Verdict.COVERED, name


def test_cancel_work_sync_returns_with_the_item_idle_and_cancel_work_may_not():
    text = BASE + """
        event idle-after-cancel "the item is neither pending nor running after the cancel";
        actor driver "insmod" {
            let q = schedule_work_on(1, w);
            let was = CANCEL(w);
            check idle-after-cancel: !w.pending && !running;
        }
    """
    got = verdicts(tdx(text.replace("CANCEL", "cancel_work_sync")))
    assert got["idle-after-cancel"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE
    got = verdicts(tdx(text.replace("CANCEL", "cancel_work")))
    assert got["idle-after-cancel"].verdict is Verdict.VIOLATED


def test_a_self_requeue_during_cancel_work_sync_fails():
    got = verdicts(tdx(BASE.replace("ran_on[this_cpu]++;", "ran_on[this_cpu]++;\n"
                                  "if ran_on[0] + ran_on[1] < 3 { let q = queue_work_on(w, 1); }") + """
        event gone "after cancel_work_sync() nothing is queued, even by the work itself";
        actor driver "insmod" { let q = schedule_work_on(1, w); let was = cancel_work_sync(w);
                                check gone: !w.pending; }
    """))
    assert got["gone"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_a_per_cpu_actor_takes_no_cpu_of_its_own():
    with pytest.raises(PolicyError) as e:
        tdx('import "cpuhp.tdx";\ncpus 2;\nactor a[cpu c] on cpu 1 { }\n')
    assert [d.code for d in e.value.diagnostics] == ["E412"]     # one mistake, one error


def test_the_thermal_fix_needs_both_its_halves():
    # d364847eed89: "1. The thermal interrupt vector should be masked out before [...]
    # 2. [...] cancelling any pending work synchronously": either half alone still
    # lets the poll work run on an unbound worker after CPU 1 went away
    from pathlib import Path

    from tdxproof.model.lower import lower_policy
    ex = Path(__file__).resolve().parents[2] / "examples" / "therm-throt-poll-work"
    fixed = (ex / "therm_throt-5.6-fixed.tdx").read_text()
    fixed = "\n".join(line for line in fixed.splitlines() if not line.startswith("expect "))
    variants = {
        "both": fixed,
        "mask only": fixed.replace("cancel_delayed_work_sync(", "cancel_delayed_work("),
        "sync only": fixed.replace("    lvt_masked[c] = true;\n", ""),
    }
    got = {}
    for name, text in variants.items():
        model = lower_policy(str(ex / "variant.tdx"), text=text)[0]
        got[name] = verdicts(model)["no-smp-processor-id-preemptible"].verdict
    assert got == {"both": Verdict.HOLDS_EXHAUSTIVE, "mask only": Verdict.VIOLATED, "sync only": Verdict.VIOLATED}


FLUSH = BASE.replace("ran_on[this_cpu]++;", "ran_on[this_cpu]++;\n mutex_lock(m); mutex_unlock(m);") + """
    lock m: mutex;
    event ran-before-flush-returned "flush_work() returns after the queued work ran";
    actor driver "insmod" {
        let q = schedule_work(w);
        LOCK
        let was = flush_work(w);
        check ran-before-flush-returned: ran_on[0] + ran_on[1] == 1 && !running;
        UNLOCK
    }
"""


def test_flush_work_waits_for_the_queued_work_and_deadlocks_under_a_lock_it_takes():
    got = verdicts(tdx(FLUSH.replace("LOCK", "").replace("UN", "")))
    assert got["ran-before-flush-returned"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE
    # flush_work() under m, with the work taking m: the flusher waits for the
    # worker, the worker for m (lockdep: m --> (work_completion)(&w))
    got = verdicts(tdx(FLUSH.replace("UNLOCK", "mutex_unlock(m);").replace("LOCK", "mutex_lock(m);")))
    assert got["no-deadlock"].verdict is Verdict.VIOLATED
    assert got["lock-graph"].verdict is Verdict.VIOLATED
