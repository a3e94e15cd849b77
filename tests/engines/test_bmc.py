"""BMC against the explicit engine on small models with known answers: the same
violations, shortest witnesses of the same length (in blocks), every witness
replayed; a clean run says "holds up to depth k", never "proved"."""

from __future__ import annotations

import pytest
from helpers import tdx, verdicts

from tdxproof.engines.bmc import verify_bmc
from tdxproof.results import Verdict

BASE = 'import "kernel-6.16.tdx";\ncpus 2;\n'
CATALOGUE = {
    "recursive-read-with-writer": BASE + """
        actor reader { cpus_read_lock(); cpus_read_lock(); cpus_read_unlock(); cpus_read_unlock(); }
        actor writer { cpus_write_lock(); cpus_write_unlock(); }""",
    "counter-wraps": BASE + """
        var x: int[0..5] = 0;
        actor a repeat { x++; if x == 4 { x = 0; } }
        invariant below-three: x < 3;
        cover reaches-two: x == 2;""",
    "tdx-cpu-enable-with-irqs-on": BASE + "actor t { let r = tdx_cpu_enable(); }",
    "cpuslocked-without-the-lock": BASE + """
        fn up(cpu c) -> int { return 0; }
        actor t { let r = cpuhp_setup_state_cpuslocked(CPUHP_AP_ONLINE_DYN, up, null); }""",
    "lock-inversion": BASE + """
        actor bad { cpus_read_lock(); mutex_lock(kvm_usage_lock); mutex_unlock(kvm_usage_lock); cpus_read_unlock(); }""",
    "machine-check": BASE + """
        var mce_result: int = 0;
        actor mce { pick cpu c where online[c] { ipi c { mce_result = seamcall_lp(this_cpu); } } }
        cover mce-fails: mce_result != 0;""",
    # a repeating actor's first block ends before a pick (it may block): the encoder
    # must start blocks there too (it once did not, and lost every later step)
    "pick-after-restart": BASE + """
        var x: int[0..3] = 0;
        fn one() { pick cpu c where c != 0 { x++; } }
        actor a repeat 2 { one(); }
        invariant x-small: x < 2;""",
    # cover goals met by `cover` statements, on values ghost code sampled a step
    # earlier (NOTE(ghost)), and a ghost variable an invariant reads
    "ghost-and-cover-statements": BASE + """
        var x: int[0..3] = 0;
        ghost var last: int[0..3] = 0;
        cover saw-two "b saw x at 2, and x moved on";
        cover saw-three "b saw x at 3";
        actor a repeat 2 { x++; }
        actor b {
            ghost let v = x;
            let d = cpu_down(1);
            ghost last = x;
            cover saw-two: v == 2 && x == 2;
            cover saw-three: v == 3;
        }
        invariant last-small: last < 2;""",
    "mutex-across-cpu-up": BASE + """
        lock m: mutex;
        fn up(cpu c) -> int { mutex_lock(m); mutex_unlock(m); return 0; }
        actor t {
            let r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, up, null);
            mutex_lock(m);
            r = cpu_down(1);
            mutex_unlock(m);
        }""",
}
# the properties each case exercises (and one that holds)
PROPS = {
    "recursive-read-with-writer": {"no-deadlock", "no-recursive-read", "locks-asserted"},
    "counter-wraps": {"below-three", "reaches-two", "no-deadlock"},
    "tdx-cpu-enable-with-irqs-on": {"irqs-off-asserted", "seamcall-in-vmx", "no-sleep-in-atomic"},
    "cpuslocked-without-the-lock": {"locks-asserted", "no-deadlock"},
    "lock-inversion": {"kvm-usage-lock-outside-cpus-lock", "no-recursive-read"},
    "machine-check": {"mce-fails", "seamcall-in-vmx"},
    "mutex-across-cpu-up": {"no-deadlock", "locks-asserted"},
    "pick-after-restart": {"x-small", "no-deadlock"},
    "ghost-and-cover-statements": {"saw-two", "saw-three", "last-small"},
}
DEPTH = 12


SLOW = {"mutex-across-cpu-up"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(CATALOGUE)])
def test_bmc_agrees_with_the_explicit_engine(name):
    model = tdx(CATALOGUE[name])
    explicit = verdicts(model)
    run = verify_bmc(model, max_depth=DEPTH, properties=PROPS[name])
    for r in run.results:
        e = explicit[r.name]
        if r.verdict in (Verdict.VIOLATED, Verdict.COVERED):
            assert e.verdict is r.verdict, r.name
            assert len(r.schedule) == len(e.schedule), r.name   # both shortest, in blocks
        elif e.verdict in (Verdict.VIOLATED, Verdict.COVERED):
            assert len(e.schedule) > DEPTH, f"{r.name}: explicit found a witness of {len(e.schedule)} blocks"
        else:
            assert r.verdict in (Verdict.HOLDS_UP_TO_DEPTH, Verdict.HOLDS_STATIC), r.name
            assert r.verdict is not Verdict.PROVED
