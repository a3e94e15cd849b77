"""Static properties, decided on the call graph without executing anything.

`static NAME: module M never uses X, Y;` is violated by any statement in code
tagged `@M` that names X or Y (reads or writes a variable, passes or takes a
lock, calls a function). The witness is the shortest call chain from an actor
to that statement, callbacks included (a function passed as a value is
"registered" by the code that passes it).
"""

from __future__ import annotations

from collections import deque

from tdxproof.model import ir
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
                    out.add(lk.name)
                case ir.FnRef(name=n):
                    out.add(n)
    return out


def check_static(model: ir.Model, prop: ir.Property, cpus: int) -> PropertyResult:
    graph = CallGraph(model)
    forbidden = set(prop.forbidden)
    offenders: list[tuple[str, ir.Stmt, str]] = []
    for f in model.functions:
        if f.module != prop.module:
            continue
        for s in walk_stmts(f.body):
            hit = sorted(_names(s) & forbidden)
            if hit:
                offenders.append((f.name, s, hit[0]))
    if not offenders:
        return PropertyResult(prop.name, prop.kind.value, Verdict.HOLDS_STATIC, "static", cpus)
    # shortest chain from any actor (BFS over calls and callback registrations)
    parent: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for a in model.actors:
        node = f"actor {a.name}"
        parent[node] = None
        queue.append(node)
    while queue:
        node = queue.popleft()
        for callee, _ in graph.calls(node) + graph.registers.get(node, []):
            if callee not in parent:
                parent[callee] = node
                queue.append(callee)
    best = None
    for fname, stmt, name in offenders:
        if fname not in parent:
            continue
        chain = [fname]
        while parent[chain[-1]] is not None:
            chain.append(parent[chain[-1]])  # type: ignore[arg-type]
        chain.reverse()
        if best is None or len(chain) < len(best[0]):
            best = (chain, stmt, name)
    if best is None:  # offending code that no actor reaches still breaks the rule
        fname, stmt, name = offenders[0]
        best = ([fname], stmt, name)
    chain, stmt, name = best
    witness = StaticWitness(tuple(c.removeprefix("actor ") for c in chain), f"uses `{name}`", stmt.span)
    return PropertyResult(prop.name, prop.kind.value, Verdict.VIOLATED, "static", cpus, static=witness)
