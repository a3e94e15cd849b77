"""Witnesses as kernel developers write them: the call chain of each step, the
failing statement last with its chain, lockdep-style reports, condensed views
that keep what the finding needs and fold the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tdx

from tdxproof.engines.explicit import verify_explicit
from tdxproof.engines.trace import attach_traces
from tdxproof.model.lower import lower_policy
from tdxproof.render.report import render_report
from tdxproof.render.table import leaves, render_table
from tdxproof.render.text import render_witness

ROOT = Path(__file__).parent.parent.parent


def _witness(policy: str, prop: str):
    model, _, _ = lower_policy(str(ROOT / "policies" / policy), cpus=2)
    run = attach_traces(model, verify_explicit(model, cpus=2, properties={prop}))
    [r] = run.results
    return r


@pytest.fixture(scope="module")
def option2_irqs():
    return _witness("option2.tdx", "irqs-off-asserted")


def test_the_failing_statement_comes_last_with_its_call_chain(option2_irqs):
    trace = option2_irqs.trace
    context, chain, notes = leaves(trace)[-1]
    assert trace.title(context) == "cpuhp/1"
    assert chain[-4:] == ("kvm_arch_hardware_enable()", "vt_hardware_enable()", "tdx_cpu_enable()",
                          "lockdep_assert_irqs_disabled()")
    assert "kvm_online_cpu(1)" in chain
    assert notes == ["!! irqs-off-asserted: `irqs_off` is false"]


def test_an_interrupt_state_finding_reads_like_a_kernel_warning(option2_irqs):
    lines = render_report(option2_irqs.trace.report)
    assert "WARNING: CPU: 1 at tdx_cpu_enable(): lockdep_assert_irqs_disabled()" in lines
    assert "CPU: 1 Comm: cpuhp/1" in lines
    # the assertion is a macro: the trace starts in the function that asserts
    trace = lines[lines.index("Call Trace:") + 1:]
    assert trace[:3] == [" tdx_cpu_enable()", " vt_hardware_enable()", " kvm_arch_hardware_enable()"]


def test_columns_say_who_runs_and_chains_are_indented_by_depth(option2_irqs):
    text = render_table(option2_irqs.trace)
    assert "modprobe kvm_intel (CPU0)" in text and "KVM_CREATE_VM (CPU0)" in text
    assert "\n     kvm_x86_vendor_init(...)\n      vt_hardware_setup()\n" in text


def test_recursive_read_is_reported_as_lockdep_does():
    r = _witness("option4.tdx", "no-recursive-read")
    text = "\n".join(render_report(r.trace.report))
    assert "WARNING: possible recursive locking detected" in text
    assert "is trying to acquire lock:\n  (cpu_hotplug_lock), read, at: cpuhp_setup_state_nocalls()" in text
    assert "but task is already holding lock:\n  (cpu_hotplug_lock), read, at: tdx_hardware_setup()" in text
    # the condensed view keeps the lock story: nothing about the spinlock inside tdx_enable()
    table = render_table(r.trace)
    assert "sysinit_lock" not in table and "cpus_read_lock()  <- takes cpu_hotplug_lock (read)" in table
    assert "sysinit_lock" in render_witness(r, verbose=True)


def test_a_deadlock_shows_every_blocked_task_with_its_locks():
    r = _witness("option4.tdx", "no-deadlock")
    text = "\n".join(render_report(r.trace.report))
    assert "INFO: task modprobe kvm_intel (CPU0) blocked forever in percpu_down_read()\n" \
           "  waiting to acquire (cpu_hotplug_lock), read, at: cpuhp_setup_state_nocalls()" in text
    assert "a pending writer: new readers of cpu_hotplug_lock wait" in text
    assert "Showing all locks held in the system:" in text and " #1: (cpu_add_remove_lock), at: cpu_" in text
    assert "rlock(cpu_hotplug_lock);  <- waits" in text and "*** DEADLOCK ***" in text


def test_a_lock_order_violation_is_a_circular_dependency():
    model = tdx('import "kernel-6.16.tdx";\ncpus 2;\nactor bad { cpus_read_lock(); mutex_lock(kvm_usage_lock); '
                "mutex_unlock(kvm_usage_lock); cpus_read_unlock(); }")
    run = attach_traces(model, verify_explicit(model, properties={"kvm-usage-lock-outside-cpus-lock"}))
    text = "\n".join(render_report(run.results[0].trace.report))
    assert "WARNING: possible circular locking dependency detected" in text
    assert "kvm_usage_lock --> cpu_hotplug_lock" in text


def test_a_module_boundary_finding_names_who_runs_the_code_and_the_registration():
    r = _witness("option3.tdx", "module-boundary")
    text = render_witness(r)
    assert "tdx_online_cpu() uses `kvm_lock`" in text and "run by: cpuhp/N" in text
    # the shortest chain from an actor goes through the registration (the hotplug
    # walk's is one call longer, through cpuhp_invoke_callback())
    assert "registered as a callback here, not called: " \
           "r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, tdx_online_cpu, null);" in text


def test_an_invariant_broken_before_it_is_observed_says_both(tmp_path):
    r = _witness("upstream.tdx", "all-online-capable")
    notes = [n for _, _, ns in leaves(r.trace) for n in ns if n.startswith("!!")]
    assert notes == ["!! all-online-capable is false from here (observed once quiescent, below)",
                     "!! all-online-capable is false at this quiescent state"]
    # the 6.16 exit taken with r == 0 is the decision shown
    assert any("may fail" in n and "fails" in n for _, _, ns in leaves(r.trace) for n in ns)
