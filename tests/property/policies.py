"""A hypothesis strategy for small, well-formed random policies (the differential
test's input): a few actors (once, `repeat`, `repeat 2`, copies), locks of every
class of the lock prelude taken in balanced blocks, global, per-CPU and bounded
integer state, `may fail`, `either`, `pick cpu`, ordered `for cpu` walks, a
blocking `await`, `check`ed events, invariants (at every step and at quiescent
points), cover goals, a lock order, and the prelude's deadlock property.

Small by construction: the explicit engine exhausts each in well under a second,
so every engine's answer can be compared with its exhaustive one.
"""

from __future__ import annotations

from hypothesis import strategies as st

# class -> (acquire, release) per mode; the mode is None for exclusive locks
CLASSES = {
    "mutex": {None: ("mutex_lock", "mutex_unlock")},
    "spinlock": {None: ("spin_lock", "spin_unlock")},
    "rw_semaphore": {"read": ("down_read", "up_read"), "write": ("down_write", "up_write")},
    "percpu_rw_semaphore": {"read": ("percpu_down_read", "percpu_up_read"),
                            "write": ("percpu_down_write", "percpu_up_write")},
    "srcu_struct": {"read": ("srcu_read_lock", "srcu_read_unlock")},
}
INTS = ("g0", "g1")           # int[0..3]
BOOLS = ("b0", "b1")


@st.composite
def conditions(draw, cpus: int, depth: int = 2) -> str:
    """A boolean expression over the policy's state."""
    atoms = [
        st.builds(lambda v, k: f"{v} == {k}", st.sampled_from(INTS), st.integers(0, 3)),
        st.builds(lambda v, k: f"{v} < {k}", st.sampled_from(INTS), st.integers(1, 3)),
        st.sampled_from(BOOLS),
        st.builds(lambda k: f"pc[{k}]", st.integers(0, cpus - 1)),
        st.sampled_from(["forall cpu c: pc[c]", "exists cpu c: pc[c]", "g0 + g1 < 5", "g0 != g1"]),
    ]
    if depth == 0:
        return draw(st.one_of(atoms))
    kind = draw(st.integers(0, 5))
    if kind <= 1:
        return draw(st.one_of(atoms))
    sub = conditions(cpus, depth - 1)
    if kind == 2:
        return f"!({draw(sub)})"
    op = draw(st.sampled_from(["&&", "||", "->"]))
    return f"({draw(sub)}) {op} ({draw(sub)})"


@st.composite
def statements(draw, ctx: dict, depth: int) -> list[str]:
    n = draw(st.integers(1, 3 if depth else 2))
    out: list[str] = []
    for _ in range(n):
        out.extend(draw(statement(ctx, depth)))
    return out


def _indent(lines: list[str]) -> list[str]:
    return ["    " + x for x in lines]


@st.composite
def statement(draw, ctx: dict, depth: int) -> list[str]:
    cpus, locks = ctx["cpus"], ctx["locks"]
    kinds = ["set", "inc", "dec", "bool", "pick", "check", "await"]
    if depth > 0:
        kinds += ["may_fail", "either", "if"] + (["lock", "lock"] if locks else [])
        if not ctx["in_lock"]:
            kinds.append("for")    # no lock blocks inside a walk (each iteration would hold one)
    if any(cls == "srcu_struct" for _, cls in locks):
        kinds.append("sync")
    if ctx["kernel"]:
        kinds += ["ipi", "irqsave", "handoff"] + (["cpuhp"] if not ctx["in_lock"] else [])
    kind = draw(st.sampled_from(kinds))
    v = draw(st.sampled_from(INTS))
    match kind:
        case "set":
            return [f"{v} = {draw(st.integers(0, 3))};"]
        case "inc":
            # mostly atomic: a racy bounded increment overflows (a model error, which
            # every engine must report alike; but then nothing else is compared)
            inc = f"if {v} < 3 {{ {v}++; }}"
            return [draw(st.sampled_from([f'atomic "test: cmpxchg" {{ {inc} }}'] * 4 + [inc]))]
        case "dec":
            dec = f"if {v} > 0 {{ {v}--; }}"
            return [draw(st.sampled_from([f'atomic "test: cmpxchg" {{ {dec} }}'] * 4 + [dec]))]
        case "bool":
            b = draw(st.sampled_from(BOOLS))
            return [draw(st.sampled_from([f"{b} = !{b};", f"{b} = true;", f"{b} = false;"]))]
        case "pick":
            where = draw(st.sampled_from(["", " where c != 0", " where !pc[c]"]))
            return [f"pick cpu c{where} {{ pc[c] = {draw(st.sampled_from(['true', 'false', '!pc[c]']))}; }}"]
        case "check":
            ctx["events"] = True
            return [f"check ev: {draw(conditions(cpus, 1))};"]
        case "await":
            return [f'atomic "test: wait" {{ await {draw(conditions(cpus, 1))}; }}']
        case "sync":
            name = draw(st.sampled_from([n for n, cls in locks if cls == "srcu_struct"]))
            if ctx["in_lock"]:
                return ["b1 = true;"]   # synchronize_srcu() inside a read section is a self-deadlock; keep it rare
            return [f"synchronize_srcu({name});"]
        case "lock":
            name, cls = draw(st.sampled_from(locks))
            mode = draw(st.sampled_from(sorted(CLASSES[cls], key=str)))
            acq, rel = CLASSES[cls][mode]
            was = ctx["in_lock"]
            ctx["in_lock"] = True
            body = draw(statements(ctx, depth - 1))
            ctx["in_lock"] = was
            return [f"{acq}({name});", *body, f"{rel}({name});"]
        case "may_fail":
            then = draw(statements(ctx, depth - 1))
            other = draw(st.one_of(st.just([]), statements(ctx, depth - 1)))
            tail = ["} else {", *_indent(other), "}"] if other else ["}"]
            return ['if may fail "test: an error path" {', *_indent(then), *tail]
        case "either":
            a, b = draw(statements(ctx, depth - 1)), draw(statements(ctx, depth - 1))
            return ["either {", *_indent(a), "} or {", *_indent(b), "}"]
        case "if":
            c = draw(conditions(cpus, 1))
            return [f"if {c} {{", *_indent(draw(statements(ctx, depth - 1))), "}"]
        case "for":
            where = draw(st.sampled_from(["", " where pc[k]", " where k != 0"]))
            val = draw(st.sampled_from(["true", "false", "!pc[k]", "b0"]))
            return [f"for cpu k{where} {{", f"    pc[k] = {val};", "}"]
        case "ipi":
            if draw(st.booleans()):
                return ["on_each_cpu(ipi_fn);"]
            return [f"ipi {draw(st.integers(0, cpus - 1))} {{ pc[this_cpu] = !pc[this_cpu]; }}"]
        case "irqsave":
            n = ctx["fresh"] = ctx["fresh"] + 1
            return [f"let flags{n} = local_irq_save();", *draw(statements({**ctx, "kernel": False}, 0)),
                    f"local_irq_restore(flags{n});"]
        case "handoff":
            n = ctx["fresh"] = ctx["fresh"] + 1
            return [f"let w{n} = work() in kworker[{draw(st.integers(0, cpus - 1))}];"]
        case "cpuhp":
            n = ctx["fresh"] = ctx["fresh"] + 1
            ctx["cpuhp"] = True
            return [f"let s{n} = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, cb_up, cb_down);",
                    f"if s{n} > 0 {{", f"    cpuhp_remove_state(s{n});", "}"]
    raise AssertionError(kind)


@st.composite
def policies(draw) -> str:
    """The text of one policy."""
    cpus = draw(st.integers(2, 3))
    nlocks = draw(st.integers(0, 2))
    locks = [(f"l{i}", draw(st.sampled_from(sorted(CLASSES)))) for i in range(nlocks)]
    # a quarter are "kernel" policies: IPIs, interrupts off, kworker hand-offs, a
    # cpuhp state whose startup callback may fail (the rollback runs), CPU hotplug
    kernel = draw(st.integers(0, 3)) == 0
    ctx = {"cpus": cpus, "locks": locks, "in_lock": False, "events": False, "kernel": kernel, "fresh": 0,
           "cpuhp": False}
    lines = ['import "x86.tdx";' if kernel else 'import "locks.tdx";', f"cpus {cpus};"]
    lines += [f"var {v}: int[0..3] = {draw(st.sampled_from(['0', '0', 'any']))};" for v in INTS]
    lines += [f"var {b}: bool = {draw(st.sampled_from(['false', 'false', 'true', 'any']))};" for b in BOOLS]
    lines.append("var pc[cpu c]: bool = false;")
    lines += [f"lock {n}: {cls};" for n, cls in locks]
    nactors = draw(st.integers(1, 3))
    body_lines: list[str] = []
    for i in range(nactors):
        copies = draw(st.sampled_from(["", "", "", "[2]"]))
        repeat = draw(st.sampled_from(["", "", " repeat", " repeat 2"]))
        on = draw(st.sampled_from(["", "", f" on cpu {cpus - 1}"]))
        body = draw(statements(ctx, 2))
        body_lines += [f"actor a{i}{copies}{repeat}{on} {{", *_indent(body), "}"]
    lines += body_lines
    if kernel:
        lines += ["fn ipi_fn() { pc[this_cpu] = true; }",
                  "fn work() -> int { if g1 < 3 { g1++; } return 0; }",
                  'fn cb_up(cpu c) -> int { if may fail "test: startup fails" { return -EBUSY; } pc[c] = true; '
                  "return 0; }",
                  "fn cb_down(cpu c) -> int { pc[c] = false; return 0; }"]
        if draw(st.booleans()):
            lines.append('actor hotplug repeat 2 { let up = online_store(); }')
    if ctx["events"]:
        lines.append('event ev "a checked condition";')
    for i in range(draw(st.integers(1, 2))):
        at = draw(st.sampled_from(["", "", " at quiescent"]))
        lines.append(f"invariant inv{i}{at}: {draw(conditions(cpus))};")
    if any(" at quiescent" in x for x in lines) and not kernel:   # cpuhp.tdx has its own
        lines.append(f"predicate quiescent: {draw(conditions(cpus, 1))};")
    if draw(st.booleans()):
        lines.append(f"cover cov: {draw(conditions(cpus))};")
    if len(locks) == 2 and draw(st.booleans()):
        lines.append("order lock-order: l0 before l1;")
    return "\n".join(lines) + "\n"
