"""Lowering: resolved names, types, first-class per-CPU state, lock analysis."""

from helpers import tdx

from tdxproof.model import ir
from tdxproof.model.wellformed import walk_stmts


def test_per_cpu_state_and_quantifiers_stay_first_class():
    m = tdx('import "kernel-6.16.tdx";\ncpus 3;\n'
            "invariant x: forall cpu c: online[c] -> tdx_lp_initialized[c];")
    online = next(v for v in m.vars if v.name == "online")
    assert online.per_cpu and online.type == ir.BOOL
    assert not any(v.name.startswith("online_") for v in m.vars)
    inv = m.property("x")
    assert isinstance(inv.expr, ir.Quant) and inv.expr.kind is ir.QuantKind.FORALL
    assert m.cpus == 3
    assert tdx('import "kernel-6.16.tdx";\ncpus 3;\n', cpus=5).cpus == 5


def test_every_expression_is_typed_and_names_are_resolved():
    m = tdx('import "kernel-6.16.tdx";\n'
            "fn f(cpu c) -> int @kvm_intel { let r = tdx_cpu_enable(); if r != 0 { return -EIO; } return 0; }")
    f = m.function("f")
    call = f.body[0]
    assert isinstance(call, ir.Call) and isinstance(call.callee, ir.FnRef)
    assert call.callee.name == "tdx_cpu_enable" and call.result.type == ir.INT
    cond = f.body[1].cond
    assert cond.type == ir.BOOL and cond.right == ir.Lit(0, ir.INT, "0")


def test_held_locks_are_known_at_every_statement():
    m = tdx('import "kernel-6.16.tdx";\n'
            "var x: int = 0;\n"
            "fn f() { cpus_read_lock(); mutex_lock(cpuhp_state_mutex); x = 1; "
            "mutex_unlock(cpuhp_state_mutex); cpus_read_unlock(); }")
    f = m.function("f")
    held = dict(m.held_at)
    assign = next(s for s in walk_stmts(f.body) if isinstance(s, ir.Assign))
    assert held[assign.sid] == ((("cpu_hotplug_lock", "read"), ("cpuhp_state_mutex", None)),)
    assert held[f.body[0].sid] == ((),)


def test_config_options_are_constants_the_policy_may_set():
    m = tdx('import "kernel-6.16.tdx";\nset inject_lp_init_failure = false;\n')
    f = m.function("tdx_cpu_enable")
    assert not any(isinstance(s, ir.Choice) for s in walk_stmts(f.body))
    m2 = tdx('import "kernel-6.16.tdx";\n')
    assert any(isinstance(s, ir.Choice) for s in walk_stmts(m2.function("tdx_cpu_enable").body))


def test_atomic_blocks_are_listed_with_their_mechanism():
    m = tdx('import "kernel-6.16.tdx";\n')
    mechs = [mech for mech, _ in m.atomics]
    assert any("sem->block" in x for x in mechs)
    assert all(x.strip() for x in mechs)


def test_indirect_calls_resolve_through_points_to_not_by_type():
    # hardware_disable_nolock() is an IPI function of type fn(); kvm_x86_disable_cpu is
    # also fn(); a type-based call graph would see a false recursion here.
    m = tdx('import "kernel-6.9.tdx";\n')
    assert m.function("hardware_disable_nolock")
