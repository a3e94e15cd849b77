"""Every construct of the language, exercised on small policies."""

from helpers import program, tdx, verdicts

from tdxproof.interp.state import initial_states
from tdxproof.results import Verdict

BASE = 'import "kernel-6.16.tdx";\ncpus 2;\n'


def test_lock_order_rule_fires_on_the_inversion_only():
    m = tdx(BASE + """
        actor good { mutex_lock(kvm_usage_lock); cpus_read_lock(); cpus_read_unlock(); mutex_unlock(kvm_usage_lock); }
    """)
    assert verdicts(m)["kvm-usage-lock-outside-cpus-lock"].verdict is Verdict.HOLDS_EXHAUSTIVE
    bad = tdx(BASE + """
        actor bad { cpus_read_lock(); mutex_lock(kvm_usage_lock); mutex_unlock(kvm_usage_lock); cpus_read_unlock(); }
    """)
    assert verdicts(bad)["kvm-usage-lock-outside-cpus-lock"].verdict is Verdict.VIOLATED


def test_lock_order_sees_cpu_hotplug_lock_held_in_hotplug_callbacks_as_lockdep_does():
    m = tdx(BASE + """
        fn up(cpu c) -> int { mutex_lock(kvm_usage_lock); mutex_unlock(kvm_usage_lock); return 0; }
        actor t { let r = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, up, null); }
    """)
    assert verdicts(m)["kvm-usage-lock-outside-cpus-lock"].verdict is Verdict.VIOLATED


def test_module_boundary_is_checked_on_the_call_graph_with_the_chain():
    m = tdx('import "kernel-6.9.tdx";\ncpus 2;\n' + """
        fn tdx_online_cpu(cpu c) -> int @kvm_intel {
            mutex_lock(kvm_lock);
            let busy = kvm_usage_count > 0;
            mutex_unlock(kvm_lock);
            return 0;
        }
        fn setup() -> int @kvm_intel {
            let r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, tdx_online_cpu, null);
            return r;
        }
        actor load { let r = setup(); }
        static module-boundary: module kvm_intel never uses kvm_lock, kvm_usage_count;
    """)
    r = verdicts(m)["module-boundary"]
    assert r.verdict is Verdict.VIOLATED
    assert r.static.chain == ("load", "setup", "tdx_online_cpu")
    assert "kvm_lock" in r.static.what


def test_actor_copies_bound_what_is_live_at_once():
    m = tdx(BASE + """
        ghost var live: int[0..3] = 0;
        actor vm[2] repeat { live++; live--; }
        invariant at-most-two: live <= 2;
        cover two: live == 2;
    """)
    assert [c.name for c in program(m).contexts][:2] == ["vm#1", "vm#2"]
    v = verdicts(m)
    assert v["at-most-two"].verdict is Verdict.HOLDS_EXHAUSTIVE and v["two"].verdict is Verdict.COVERED


def test_repeat_with_a_count_bound_and_once():
    m = tdx(BASE + """
        var n: int[0..9] = 0;
        actor a repeat 3 { n++; }
        invariant at-most-three: n <= 3;
        cover three: n == 3;
    """)
    v = verdicts(m)
    assert v["at-most-three"].verdict is Verdict.HOLDS_EXHAUSTIVE and v["three"].verdict is Verdict.COVERED


def test_actors_run_on_the_cpu_they_name():
    m = tdx(BASE + """
        var where: int = -1;
        actor a on cpu 1 { where = this_cpu; }
        invariant never-zero: where != 0;
    """)
    assert verdicts(m)["never-zero"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_packages_group_cpus():
    m = tdx('import "kernel-6.16.tdx";\ncpus 4;\npackages 2;\n' + """
        invariant topology: pkg(0) == 0 && pkg(1) == 0 && pkg(2) == 1 && pkg(3) == 1;
    """)
    assert verdicts(m)["topology"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_either_explores_every_branch():
    m = tdx(BASE + """
        var x: int = 0;
        actor a { either { x = 1; } or { x = 2; } or { x = 3; } }
        cover three: x == 3;
    """)
    assert verdicts(m)["three"].verdict is Verdict.COVERED


def test_a_waiting_rw_semaphore_writer_blocks_new_readers():
    m = tdx(BASE + """
        lock sem: rw_semaphore;
        actor r1 { down_read(sem); down_read(sem); up_read(sem); up_read(sem); }
        actor w { down_write(sem); up_write(sem); }
    """)
    v = verdicts(m)
    assert v["no-deadlock"].verdict is Verdict.VIOLATED


def test_completions_and_srcu():
    m = tdx(BASE + """
        lock done: completion;
        lock ss: srcu_struct;
        var got: bool = false;
        actor waiter { wait_for_completion(done); got = true; }
        actor waker { srcu_read_lock(ss); srcu_read_unlock(ss); synchronize_srcu(ss); complete(done); }
        cover woken: got;
    """)
    v = verdicts(m)
    assert v["woken"].verdict is Verdict.COVERED and v["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE
    stuck = tdx(BASE + """
        lock done: completion;
        actor waiter { wait_for_completion(done); }
    """)
    assert verdicts(stuck)["no-deadlock"].verdict is Verdict.VIOLATED


def test_synchronize_srcu_inside_the_read_section_deadlocks():
    m = tdx(BASE + """
        lock ss: srcu_struct;
        actor a { srcu_read_lock(ss); synchronize_srcu(ss); srcu_read_unlock(ss); }
    """)
    assert verdicts(m)["no-deadlock"].verdict is Verdict.VIOLATED


def test_cpu_hotplug_disable_refuses_onlining_and_breaks_hotplug_available():
    m = tdx(BASE + """
        actor hp repeat 2 { online_store(); }
        actor init { cpu_hotplug_disable(); }
    """)
    assert verdicts(m)["hotplug-available"].verdict is Verdict.VIOLATED


def test_a_machine_check_runs_a_seamcall_in_exception_context_on_any_online_cpu():
    # Kai's defence of option 2: an #MC SEAMCALL on a CPU without TDH.SYS.LP.INIT fails.
    m = tdx(BASE + """
        var mce_result: int = 0;
        actor mce { pick cpu c where online[c] { ipi c { mce_result = seamcall_lp(this_cpu); } } }
        cover mce-fails: mce_result != 0;
    """)
    v = verdicts(m)
    assert v["mce-fails"].verdict is Verdict.COVERED
    assert v["seamcall-in-vmx"].verdict is Verdict.VIOLATED


def test_require_waits_without_counting_as_a_deadlock():
    m = tdx(BASE + """
        var go: bool = false;
        actor a { require go; }
    """)
    assert verdicts(m)["no-deadlock"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_any_assignment_and_kthread_handoff():
    m = tdx(BASE + """
        var x: int[0..3] = 0;
        fn work() -> int { x = any; return x; }
        var got: int = -1;
        actor a { got = work() in kworker[1]; }
        cover three: got == 3;
        invariant in-range: got <= 3;
    """)
    v = verdicts(m)
    assert v["three"].verdict is Verdict.COVERED and v["in-range"].verdict is Verdict.HOLDS_EXHAUSTIVE


def test_initial_states_can_be_nondeterministic_and_consistent():
    m = tdx(BASE + """
        var up[cpu c]: bool = c == 0 || any;
        var pos[cpu c]: cpuhp_state = up[c] ? CPUHP_ONLINE : CPUHP_OFFLINE;
        invariant consistent: forall cpu c: up[c] == (pos[c] == CPUHP_ONLINE);
    """)
    assert len(initial_states(program(m))) == 2
    assert verdicts(m)["consistent"].verdict is Verdict.HOLDS_EXHAUSTIVE
