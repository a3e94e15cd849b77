"""Multi-instance cpuhp states (prelude/cpuhp_multi.tdx), on small hand-checked
cases: cpuhp_state_add_instance() runs the startup for the new instance on every
CPU already at the state and, when one CPU fails, undoes it on the CPUs before;
a hotplug walk runs the callback once per instance and, when one instance fails,
undoes the instances already done on that CPU (kernel/cpu.c)."""

from __future__ import annotations

from helpers import tdx, verdicts

from tdxproof.engines.explicit import verify_explicit
from tdxproof.engines.trace import attach_traces
from tdxproof.render.text import render_witness
from tdxproof.results import Verdict

CALLBACKS = """
    var up0[cpu c]: bool = false;       // node 0's per-CPU part is set up on c
    var up1[cpu c]: bool = false;
    fn start(cpu c, cpuhp_node n) -> int {
        if c == FAILING_CPU && n == CPUHP_NODE1 {
            if may fail "allocation" { return -ENOMEM; }
        }
        if n == CPUHP_NODE0 { up0[c] = true; } else { up1[c] = true; }
        return 0;
    }
    fn stop(cpu c, cpuhp_node n) -> int {
        if n == CPUHP_NODE0 { up0[c] = false; } else { up1[c] = false; }
        return 0;
    }
"""

ADD = 'import "cpuhp_multi.tdx";\ncpus 3;\nconst FAILING_CPU = 2;\n' + CALLBACKS + """
    var added: int[-128..1] = 1;        // what adding node 1 returned (1: not yet)
    actor drv "modprobe drv" {
        let s = cpuhp_setup_state_multi(CPUHP_AP_ONLINE_DYN, start, stop);
        let a = cpuhp_state_add_instance(s, CPUHP_NODE0);
        let b = cpuhp_state_add_instance(s, CPUHP_NODE1);
        added = b;
    }
    actor hotplug "echo 0|1 > cpu1/online" { cpu_down(1); cpu_up(1); }
    invariant node0-everywhere at quiescent:
        added != 1 -> forall cpu c: (online[c] && cpuhp_pos[c] == CPUHP_ONLINE) == up0[c];
    invariant node1-everywhere at quiescent:
        added == 0 -> forall cpu c: (online[c] && cpuhp_pos[c] == CPUHP_ONLINE) == up1[c];
    invariant failed-add-undone at quiescent: added < 0 -> forall cpu c: !up1[c];
    cover add-fails: added < 0;
    cover add-works-while-cpu1-is-down: added == 0 && !online[1];
"""


def _schedule_text(model, prop: str) -> str:
    run = attach_traces(model, verify_explicit(model, properties={prop}))
    return render_witness(run.results[0])


def test_an_added_instance_is_set_up_on_every_cpu_at_the_state_or_on_none():
    model = tdx(ADD)
    got = verdicts(model)
    for name in ("node0-everywhere", "node1-everywhere", "failed-add-undone", "no-kernel-bug",
                 "no-kernel-warn", "no-deadlock", "locks-asserted"):
        assert got[name].verdict is Verdict.HOLDS_EXHAUSTIVE, name
    assert got["add-fails"].verdict is Verdict.COVERED
    assert got["add-works-while-cpu1-is-down"].verdict is Verdict.COVERED
    # the add that fails on CPU 2 undid CPUs 0 and 1 first: both callbacks ran there
    text = _schedule_text(model, "add-fails")
    assert "stop(0, CPUHP_NODE1)" in text and "stop(1, CPUHP_NODE1)" in text


WALK = 'import "cpuhp_multi.tdx";\ncpus 2;\nconst FAILING_CPU = 1;\n' + CALLBACKS + """
    override var online[cpu c]: bool = c == 0;
    var added: bool = false;
    actor drv "modprobe drv" {
        let s = cpuhp_setup_state_multi(CPUHP_AP_ONLINE_DYN, start, stop);
        let a = cpuhp_state_add_instance(s, CPUHP_NODE0);
        let b = cpuhp_state_add_instance(s, CPUHP_NODE1);
        added = b == 0;
    }
    var up_ret: int[-128..1] = 1;
    actor hotplug "echo 1 > cpu1/online" { let r = cpu_up(1); up_ret = r; }
    invariant offline-means-undone at quiescent: !online[1] -> !up0[1] && !up1[1];
    invariant online-means-done at quiescent: added && online[1] -> up0[1] && up1[1];
    cover up-failed: added && up_ret < 0;
"""


def test_a_walk_that_fails_on_one_instance_undoes_the_others_on_that_cpu():
    model = tdx(WALK)
    got = verdicts(model)
    assert got["offline-means-undone"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["online-means-done"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert got["up-failed"].verdict is Verdict.COVERED
    text = _schedule_text(model, "up-failed")
    assert "start(1, CPUHP_NODE1)" in text and "stop(1, CPUHP_NODE0)" in text


PREPARE = 'import "cpuhp.tdx";\ncpus 2;\n' + """
    var prepared[cpu c]: bool = false;
    var bad: bool = false;               // a callback saw what the section forbids
    var refused: bool = false;
    fn prep(cpu c) -> int {
        if percpu_thread { bad = true; }   // the caller (cpu_up(), or the setup for a CPU up), never cpuhp/c
        if c == 1 {
            if may fail "allocation for CPU 1" { return -ENOMEM; }
        }
        prepared[c] = true;
        return 0;
    }
    fn dead(cpu c) -> int {
        if percpu_thread { bad = true; }   // cpu_down()'s task after the CPU is gone, or a failed setup's undo
        prepared[c] = false;
        return 0;
    }
    var set_up: bool = false;
    actor drv "modprobe drv" { let s = cpuhp_setup_state(CPUHP_BP_PREPARE_DYN, prep, dead); set_up = s > 0; }
    actor hotplug "echo 0|1 > cpu1/online" { cpu_down(1); let r = cpu_up(1); refused = r != 0; }
    invariant control-task-only: !bad;
    invariant prepared-while-up at quiescent: online[1] && set_up -> prepared[1];
    invariant refused-stays-down at quiescent: refused -> !online[1] && !prepared[1];
    cover dead-ran: !online[1] && !prepared[1] && set_up && cpuhp_busy == 0;
    cover up-refused: refused;
"""


def test_prepare_and_dead_callbacks_run_in_the_control_task_around_the_cpu_being_up():
    got = verdicts(tdx(PREPARE))
    for name in ("control-task-only", "prepared-while-up", "refused-stays-down", "no-deadlock", "no-kernel-warn"):
        assert got[name].verdict is Verdict.HOLDS_EXHAUSTIVE, name
    assert got["dead-ran"].verdict is Verdict.COVERED
    assert got["up-refused"].verdict is Verdict.COVERED
