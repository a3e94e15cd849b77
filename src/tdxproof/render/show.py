"""`tdxproof show`: the model summary."""

from __future__ import annotations

from tdxproof.model import ir
from tdxproof.model.wellformed import walk_stmts


def _where(span) -> str:
    return f"{span.path}:{span.line}"


def render_model(m: ir.Model) -> str:
    out = [f"policy {m.path}: {m.cpus} CPUs, {m.packages} package{'s' if m.packages != 1 else ''}",
           "files: " + ", ".join(m.files), ""]
    if m.overrides:
        out.append("overrides (this policy's declaration <- the one it replaces):")
        for o in m.overrides:
            out.append(f"  {o.kind} {o.name}: {_where(o.span)} <- {_where(o.original)}")
        out.append("")
    out.append("state:")
    for v in m.vars:
        dim = "[cpu]" if v.per_cpu else (f"[{v.dim.name}]" if v.dim is not None else "")
        tags = " ".join(t for t in ("ghost" if v.ghost else "", f"@{v.module}" if v.module else "") if t)
        out.append(f"  {v.name}{dim}: {v.type}  {tags}".rstrip())
    out.append("")
    out.append("lock classes:")
    for c in m.lock_classes:
        ops = []
        for name in c.ops:
            f = m.function(name)
            role = f"{f.role}{'(' + f.mode + ')' if f.mode else ''}" if f.role else "op"
            ops.append(f"{name} [{role}]")
        fields = ", ".join(f"{f.name}: {f.type}" for f in c.fields)
        out.append(f"  {c.name}" + (f" {{{fields}}}" if fields else "") + ": " + ", ".join(ops))
    out.append("locks:")
    for lk in m.locks:
        out.append(f"  {lk.name}: {lk.cls}" + (f" @{lk.module}" if lk.module else ""))
    cpuhp = next((e for e in m.enums if e.name == "cpuhp_state"), None)
    if cpuhp is not None:
        out.append("")
        out.append("cpuhp states (in order): " + ", ".join(cpuhp.members))
    out.append("")
    out.append("contexts:")
    for a in m.actors:
        rep = {None: "once", 0: "repeats without bound"}.get(a.repeat, f"repeats {a.repeat} times")
        copies = f" x{a.copies}" if a.copies > 1 else ""
        title = f" \"{a.title}\"" if a.title else ""
        if a.on_cpu is None:
            where = "on CPU 0 (not pinned: every actor without `on cpu` runs on the boot CPU)"
        else:
            where = f"on CPU {a.on_cpu.value if isinstance(a.on_cpu, ir.Lit) else '(expr)'} (pinned)"
        out.append(f"  actor {a.name}{title}{copies}: {rep}, {where}, interrupts on")
    for k in m.kthreads:
        held = f"; lockdep treats {', '.join(k.lockdep_held)} as held" if k.lockdep_held else ""
        out.append(f"  kthread {k.name}/c for every CPU c: runs work handed to it, on CPU c, interrupts on{held}")
    out.append("")
    out.append("properties:")
    for p in m.properties:
        where = {ir.Observe.EVERY: "at every step", ir.Observe.QUIESCENT: "at quiescent states",
                 ir.Observe.EVENT: "where `check` runs", ir.Observe.STATIC: "on the call graph"}[p.observe]
        if p.kind is ir.PropKind.COVER and p.expr is None:
            where = "where `cover` statements run"
        if p.kind is ir.PropKind.DEADLOCK:
            where = "in every state (wait-for graph)"
        if p.kind is ir.PropKind.ORDER:
            where = f"where {p.forbidden[0]} is taken: never while holding {p.forbidden[1]}"
        expect = next((e.verdict for e in m.expects if e.prop == p.name), None)
        sites = ""
        if p.name == ir.EXIT_EVENT:
            where = "where a body ends or kthread work returns (fired by the engines)"
        elif p.kind is ir.PropKind.EVENT:
            n = sum(1 for f in m.functions for s in walk_stmts(f.body)
                    if isinstance(s, ir.Check) and s.prop == p.name)
            n += sum(1 for a in m.actors for s in walk_stmts(a.body) if isinstance(s, ir.Check) and s.prop == p.name)
            sites = f", {n} check site{'s' if n != 1 else ''}"
        out.append(f"  {p.name} ({p.kind.value}, {where}{sites})" + (f"  expect {expect}" if expect else ""))
        if p.doc:
            out.append(f"      {p.doc}")
    out.append("")
    out.append("atomic blocks (each is one step; the kernel mechanism that makes it atomic):")
    for mech, span in m.atomics:
        out.append(f"  {_where(span)}: {mech}")
    return "\n".join(out)
