"""The reference interpreter on small hand-checked cases (issue 3's list)."""

from helpers import program, tdx, verdicts

from tdxproof.interp.explore import explore
from tdxproof.interp.replay import replay
from tdxproof.interp.state import initial_states
from tdxproof.results import Verdict

BASE = 'import "kernel-6.16.tdx";\ncpus 2;\n'


def test_recursive_cpus_read_lock_deadlocks_when_a_writer_arrives_in_between():
    m = tdx(BASE + """
        actor reader { cpus_read_lock(); cpus_read_lock(); cpus_read_unlock(); cpus_read_unlock(); }
        actor writer { cpus_write_lock(); cpus_write_unlock(); }
    """)
    v = verdicts(m)
    assert v["no-deadlock"].verdict is Verdict.VIOLATED
    assert v["no-recursive-read"].verdict is Verdict.VIOLATED
    # shortest: the reader takes the read lock and heads for the second; the writer becomes pending
    steps = [s.context for s in v["no-deadlock"].schedule.steps]
    assert steps == ["reader", "writer"]  # each transition runs up to the next visible statement


def test_recursive_cpus_read_lock_without_a_writer_only_breaks_the_lockdep_rule():
    m = tdx(BASE + """
        actor reader { cpus_read_lock(); cpus_read_lock(); cpus_read_unlock(); cpus_read_unlock(); }
    """)
    v = verdicts(m)
    assert v["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert v["no-recursive-read"].verdict is Verdict.VIOLATED


def test_failing_startup_rolls_back_the_states_already_passed_not_its_own_and_leaves_the_cpu_offline():
    m = tdx(BASE + """
        ghost var a_down: int[0..3] = 0;
        ghost var b_down: int[0..3] = 0;
        ghost var refused: bool = false;
        event rollback "rollback as kernel/cpu.c does it";
        fn a_up(cpu c) -> int { return 0; }
        fn a_teardown(cpu c) -> int { a_down++; return 0; }
        fn b_up(cpu c) -> int { return -EIO; }
        fn b_teardown(cpu c) -> int { b_down++; return 0; }
        actor t {
            let r = cpuhp_setup_state_nocalls(CPUHP_AP_KVM_ONLINE, a_up, a_teardown);
            r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, b_up, b_teardown);
            r = cpu_down(1);
            a_down = 0;
            b_down = 0;
            r = cpu_up(1);
            refused = r != 0;
            check rollback: r == -EIO && !online[1] && !active[1] && cpuhp_pos[1] == CPUHP_OFFLINE
                && a_down == 1 && b_down == 0;
        }
        cover reached: refused;
    """)
    v = verdicts(m)
    assert v["rollback"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert v["reached"].verdict is Verdict.COVERED


def test_refused_teardown_reruns_the_startups_already_undone_and_the_cpu_stays_online():
    m = tdx(BASE + """
        ghost var a_up_runs: int[0..3] = 0;
        ghost var done: bool = false;
        event rollback "cpu_down rollback";
        fn a_up(cpu c) -> int { a_up_runs++; return 0; }
        fn a_teardown(cpu c) -> int { return 0; }
        fn b_up(cpu c) -> int { return 0; }
        fn b_teardown(cpu c) -> int { return -EBUSY; }
        actor t {
            let r = cpuhp_setup_state_nocalls(CPUHP_AP_KVM_ONLINE, b_up, b_teardown);
            r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, a_up, a_teardown);
            r = cpu_down(1);
            done = true;
            // the DYN state (after KVM's) was undone first and its startup re-runs;
            // the refusing state's own startup does not; ACTIVE comes back
            check rollback: r == -EBUSY && online[1] && active[1] && cpuhp_pos[1] == CPUHP_ONLINE
                && a_up_runs == 1;
        }
        cover reached: done;
    """)
    v = verdicts(m)
    assert v["rollback"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert v["reached"].verdict is Verdict.COVERED


def test_cpuhp_setup_state_runs_the_startup_on_every_online_cpu_in_its_cpuhp_thread():
    m = tdx('import "kernel-6.16.tdx";\ncpus 3;\n' + """
        var ran[cpu c]: bool = false;
        var ran_in_kthread: bool = true;
        ghost var done: bool = false;
        event all-ran "every online CPU ran the startup, on itself";
        fn up(cpu c) -> int {
            ran[c] = true;
            if this_cpu != c { ran_in_kthread = false; }
            return 0;
        }
        actor t {
            let r = cpu_down(2);
            r = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, up, null);
            done = true;
            check all-ran: r == ORD_DYN && ran[0] && ran[1] && !ran[2] && ran_in_kthread
                && cpuhp_registered[CPUHP_AP_ONLINE_DYN];
        }
        const ORD_DYN = 8;   // CPUHP_AP_ONLINE_DYN's ordinal in cpuhp.tdx
        cover reached: done;
    """)
    v = verdicts(m)
    assert v["all-ran"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert v["reached"].verdict is Verdict.COVERED


def test_cpuhp_setup_state_rolls_back_and_unregisters_when_a_startup_fails():
    m = tdx('import "kernel-6.16.tdx";\ncpus 3;\n' + """
        var up_on[cpu c]: bool = false;
        ghost var done: bool = false;
        event unregistered "a failed setup leaves nothing behind";
        fn up(cpu c) -> int {
            if c == 1 { return -EIO; }
            up_on[c] = true;
            return 0;
        }
        fn down(cpu c) -> int { up_on[c] = false; return 0; }
        actor t {
            let r = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, up, down);
            done = true;
            check unregistered: r == -EIO && !cpuhp_registered[CPUHP_AP_ONLINE_DYN]
                && cpuhp_startup[CPUHP_AP_ONLINE_DYN] == null && !up_on[0] && !up_on[2];
        }
        cover reached: done;
    """)
    v = verdicts(m)
    assert v["unregistered"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert v["reached"].verdict is Verdict.COVERED


def test_cpuslocked_variants_require_the_read_lock():
    bad = tdx(BASE + """
        fn up(cpu c) -> int { return 0; }
        actor t { let r = cpuhp_setup_state_cpuslocked(CPUHP_AP_ONLINE_DYN, up, null); }
    """)
    assert verdicts(bad)["locks-asserted"].verdict is Verdict.VIOLATED
    good = tdx(BASE + """
        fn up(cpu c) -> int { return 0; }
        actor t {
            cpus_read_lock();
            let r = cpuhp_setup_state_cpuslocked(CPUHP_AP_ONLINE_DYN, up, null);
            cpus_read_unlock();
        }
    """)
    assert verdicts(good)["locks-asserted"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_lockdep_treats_cpu_hotplug_lock_as_held_inside_hotplug_callbacks():
    m = tdx(BASE + """
        fn up(cpu c) -> int { lockdep_assert_cpus_held(); return 0; }
        actor t {
            let r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, up, null);
            r = cpu_down(1);
            r = cpu_up(1);
        }
    """)
    assert verdicts(m)["locks-asserted"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_a_mutex_held_by_the_caller_of_cpu_up_and_taken_in_an_online_callback_deadlocks():
    m = tdx(BASE + """
        lock m: mutex;
        fn up(cpu c) -> int { mutex_lock(m); mutex_unlock(m); return 0; }
        actor t {
            let r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, up, null);
            r = cpu_down(1);
            mutex_lock(m);
            r = cpu_up(1);
            mutex_unlock(m);
        }
    """)
    r = verdicts(m)["no-deadlock"]
    assert r.verdict is Verdict.VIOLATED
    assert r.schedule.steps[-1].context in ("t", "cpuhp/1")


def test_tdx_cpu_enable_with_interrupts_on_violates_the_interrupts_off_rule():
    m = tdx(BASE + """
        actor t { let r = tdx_cpu_enable(); }
    """)
    assert verdicts(m)["irqs-off-asserted"].verdict is Verdict.VIOLATED
    ok = tdx(BASE + """
        actor t { let f = local_irq_save(); let r = tdx_cpu_enable(); local_irq_restore(f); }
    """)
    assert verdicts(ok)["irqs-off-asserted"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_mutex_in_an_ipi_is_sleeping_in_atomic_context():
    m = tdx(BASE + """
        lock m: mutex;
        fn f() { mutex_lock(m); mutex_unlock(m); }
        actor t { on_each_cpu(f); }
    """)
    assert verdicts(m)["no-sleep-in-atomic"].verdict is Verdict.VIOLATED


def test_on_each_cpu_runs_on_every_online_cpu_including_the_callers_with_interrupts_off():
    m = tdx('import "kernel-6.16.tdx";\ncpus 3;\n' + """
        var hit[cpu c]: bool = false;
        ghost var done: bool = false;
        event everywhere "ran on each online CPU with interrupts off, as an IPI";
        fn f() { check everywhere: irqs_off && in_ipi; hit[this_cpu] = true; }
        actor t { on_each_cpu(f); done = true; check everywhere: hit[0] && hit[1] && hit[2]; }
        cover reached: done;
    """)
    v = verdicts(m)
    assert v["everywhere"].verdict is Verdict.HOLDS_EXHAUSTIVE
    assert v["reached"].verdict is Verdict.COVERED


def test_interrupts_off_exclude_only_their_own_cpu():
    # With interrupts off on CPU 0, an IPI to CPU 0 waits; the other actor on CPU 1 runs.
    m = tdx(BASE + """
        var x: int[0..3] = 0;
        var seen_inside: bool = false;
        fn bump() { x++; }
        actor a {
            let f = local_irq_save();
            let before = x;
            seen_inside = x != before;
            local_irq_restore(f);
        }
        actor b { ipi 0 { x++; } }
        invariant stable: !seen_inside;
    """)
    assert verdicts(m)["stable"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_may_fail_explores_both_outcomes():
    m = tdx(BASE + """
        var r: int = 0;
        actor t { if may fail "hardware" { r = -EIO; } else { r = 1; } }
        cover failed: r == -EIO;
        cover succeeded: r == 1;
    """)
    v = verdicts(m)
    assert v["failed"].verdict is Verdict.COVERED and v["succeeded"].verdict is Verdict.COVERED


def test_any_initial_values_give_every_initial_state_and_witnesses_name_theirs():
    m = tdx(BASE + """
        var x[cpu c]: bool = c == 0 || any;
        invariant boot-cpu: x[0];
        invariant all-set: forall cpu c: x[c];
    """)
    prog = program(m)
    assert len(initial_states(prog)) == 2
    v = verdicts(m)
    assert v["boot-cpu"].verdict is Verdict.HOLDS_EXHAUSTIVE
    bad = v["all-set"]
    assert bad.verdict is Verdict.VIOLATED and len(bad.schedule) == 0
    assert replay(prog, bad.schedule).states[0][0][prog.var_off["x"] + 1] == 0


def test_every_witness_replays_and_ends_in_its_violation():
    m = tdx(BASE + """
        actor reader { cpus_read_lock(); cpus_read_lock(); cpus_read_unlock(); cpus_read_unlock(); }
        actor hp repeat 2 { online_store(); }
    """)
    prog = program(m)
    exp = explore(prog)
    assert exp.complete
    for name, found in exp.violations.items():
        rep = replay(prog, found.schedule)
        assert len(rep.states) == len(found.schedule) + 1, name


def test_shortest_witness_is_found_first():
    m = tdx(BASE + """
        var x: int[0..5] = 0;
        actor a repeat { x++; if x == 4 { x = 0; } }
        invariant below-three: x < 3;
    """)
    r = verdicts(m)["below-three"]
    # x is private to `a`: each `x++` and the `if` after it form one block
    assert r.verdict is Verdict.VIOLATED and len(r.schedule) == 3
