"""Static properties, decided on the call graph without executing anything.

`static NAME: module M never uses X, Y;` is violated by any statement in code
tagged `@M` that names X or Y (reads or writes a variable, passes or takes a
lock, calls a function). The witness is the shortest call chain from an actor
to that statement, callbacks included (a function passed as a value is
"registered" by the code that passes it).
"""

from __future__ import annotations

import heapq

from tdxproof.model import ir
from tdxproof.engines.trace import source_text
from tdxproof.model.blocks import executors
from tdxproof.model.wellformed import CallGraph, sub_exprs, walk_exprs, walk_stmts
from tdxproof.results import PropertyResult, StaticWitness, Verdict


def _names(s: ir.Stmt) -> set[str]:
    out: set[str] = set()
    for top in walk_exprs(s):
        for e in sub_exprs(top):
            match e:
                case ir.VarRef(var=v):
                    out.add(v.name)
                case ir.LockRef(lock=lk):
                    out.add(lk.array or lk.name)
                case ir.LockIndex(array=a):
                    out.add(a)
                case ir.FnRef(name=n):
                    out.add(n)
    return out


def check_static(model: ir.Model, prop: ir.Property, cpus: int) -> PropertyResult:
    if prop.kind is ir.PropKind.LOCKDEP:
        from tdxproof.engines.lockgraph import check_lockdep
        return check_lockdep(model, prop, cpus)
    graph = CallGraph(model)
    forbidden = set(prop.forbidden)
    offenders: list[tuple[str, ir.Stmt, str]] = []
    for f in model.functions:
        if f.module != prop.module:
            continue
        for s in walk_stmts(f.body):
            for hit in sorted(_names(s) & forbidden):
                offenders.append((f.name, s, hit))
    if not offenders:
        return PropertyResult(prop.name, prop.kind.value, Verdict.HOLDS_STATIC, "static", cpus)
    # from any actor, the shortest chain, and of those the one with the fewest
    # registrations (Dijkstra over calls and callback registrations)
    parent: dict[str, tuple[str, str, ir.Stmt] | None] = {}
    cost: dict[str, tuple[int, int]] = {}
    heap: list[tuple[tuple[int, int], str]] = []
    for a in model.actors:
        node = f"actor {a.name}"
        parent[node], cost[node] = None, (0, 0)
        heapq.heappush(heap, ((0, 0), node))
    while heap:
        c, node = heapq.heappop(heap)
        if c > cost[node]:
            continue
        edges = [(t, "calls", st) for t, st in graph.calls(node)] + [(t, "registers", st) for t, st in
                                                                     graph.registers.get(node, [])]
        for callee, how, st in edges:
            nc = (c[0] + 1, c[1] + (how == "registers"))
            if callee not in cost or nc < cost[callee]:
                cost[callee], parent[callee] = nc, (node, how, st)
                heapq.heappush(heap, (nc, callee))
    best = None
    for fname, stmt, name in offenders:
        if fname not in parent:
            continue
        chain, links = [fname], []
        while parent[chain[-1]] is not None:
            up, how, st = parent[chain[-1]]  # type: ignore[misc]
            links.append(_link(graph, chain[-1], how, st))
            chain.append(up)
        chain.reverse()
        links.reverse()
        if best is None or len(chain) < len(best[0]):
            best = (chain, links, stmt, name)
    if best is None:  # offending code that no actor reaches still breaks the rule
        fname, stmt, name = offenders[0]
        best = ([fname], [], stmt, name)
    chain, links, stmt, name = best
    runs = tuple(sorted(_who(model, w) for w in executors(model, graph).get(chain[-1], set())))
    entry = chain[0].removeprefix("actor ")
    actor = next((a for a in model.actors if a.name == entry), None)
    names = sorted({n for f, _, n in offenders if f == chain[-1]}, key=lambda n: prop.forbidden.index(n))
    what = "uses " + ", ".join(f"`{n}`" for n in names)
    witness = StaticWitness(tuple(c.removeprefix("actor ") for c in chain), what, stmt.span,
                            tuple(links), runs, source_text(stmt.span), actor.title or actor.name if actor else entry)
    return PropertyResult(prop.name, prop.kind.value, Verdict.VIOLATED, "static", cpus, static=witness)


def _link(graph: CallGraph, callee: str, how: str, st: ir.Stmt) -> str:
    """How a chain reaches `callee` from the statement `st`, in words."""
    if how == "registers":
        return f"registered as a callback here, not called: {source_text(st.span)}"
    words = []
    if isinstance(st, ir.Call) and st.kthread is not None:
        words.append(f"handed to {st.kthread.name}/N")
    if isinstance(st, ir.Call) and not isinstance(st.callee, ir.FnRef):
        who = next(((body, reg) for body, regs in graph.registers.items() for target, reg in regs
                    if target == callee), None)
        where = f", registered by {who[0].removeprefix('actor ')}(): {source_text(who[1].span)}" if who else ""
        words.append("called through a function pointer" + where)
    return "; ".join(words) or "calls"


def _who(model: ir.Model, who: str) -> str:
    """`kthread cpuhp` -> `cpuhp/N`; `actor hotplug` -> its title."""
    kind, name = who.split(" ", 1)
    if kind == "kthread":
        return f"{name}/N"
    actor = next((a for a in model.actors if a.name == name), None)
    return (actor.title or name) if actor else name
