"""Well-formedness of a lowered model: unreachable code, call cycles, lock discipline.

Lock discipline is checked interprocedurally with per-function summaries: each
function's effect is a set of (locks released that its caller must hold, locks
it leaves held). A release of a lock not held on some path is an error at the
root (actor body, kthread work, or callback) where the path starts. The held
set before every statement is stored in `Model.held_at` for the engines.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Iterator

from tdxproof.diagnostics import Diagnostics, Note
from tdxproof.model import ir
from tdxproof.source import Span

Term = tuple[str, object]  # ("L", lock name) | ("P", parameter slot)
Item = tuple[Term, "str | None"]
Multiset = tuple[Item, ...]
PathState = tuple[Multiset, Multiset]  # (held since entry, released from the caller)


def walk_stmts(stmts: tuple[ir.Stmt, ...]) -> Iterator[ir.Stmt]:
    for s in stmts:
        yield s
        for sub in children(s):
            yield from walk_stmts(sub)


def children(s: ir.Stmt) -> tuple[tuple[ir.Stmt, ...], ...]:
    match s:
        case ir.If(then=t, other=o):
            return (t, o)
        case ir.Choice(branches=brs):
            return brs
        case ir.Atomic(body=b) | ir.ForCpu(body=b) | ir.ForRange(body=b) | ir.Pick(body=b) | ir.Ipi(body=b):
            return (b,)
    return ()


def walk_exprs(s: ir.Stmt) -> Iterator[ir.Expr]:
    """Expressions appearing directly in a statement (not in nested statements)."""
    match s:
        case ir.Assign(target=t, value=v):
            yield t
            yield v
        case ir.Call(callee=c, args=args, result=r, kthread_cpu=k):
            yield c
            yield from args
            if r is not None:
                yield r
            if k is not None:
                yield k
        case ir.If(cond=c) | ir.Await(cond=c) | ir.Require(cond=c) | ir.Check(cond=c):
            yield c
            if isinstance(s, ir.Await):
                for w in s.waits:
                    yield w.lock
        case ir.Return(value=v) if v is not None:
            yield v
        case ir.ForCpu(where=w) | ir.Pick(where=w) if w is not None:
            yield w
        case ir.ForRange(lo=lo, hi=hi):
            yield lo
            yield hi
        case ir.Ipi(cpu=c):
            yield c
        case ir.Hold(lock=lk):
            yield lk


def sub_exprs(e: ir.Expr) -> Iterator[ir.Expr]:
    yield e
    match e:
        case ir.VarRef(index=i) if i is not None:
            yield from sub_exprs(i)
        case ir.FieldRef(lock=lk):
            yield from sub_exprs(lk)
        case ir.LockIndex(index=i):
            yield from sub_exprs(i)
        case ir.Unary(operand=x):
            yield from sub_exprs(x)
        case ir.Binary(left=a, right=b):
            yield from sub_exprs(a)
            yield from sub_exprs(b)
        case ir.CondExpr(cond=c, then=t, other=o):
            yield from sub_exprs(c)
            yield from sub_exprs(t)
            yield from sub_exprs(o)
        case ir.Quant(body=b):
            yield from sub_exprs(b)
        case ir.Builtin(args=args):
            for a in args:
                yield from sub_exprs(a)


# ---------------------------------------------------------------- call graph
class CallGraph:
    """Who calls whom. Indirect calls resolve through a flow-insensitive points-to
    analysis of function pointers (globals, locals, parameters, results), so a
    call through `kvm_x86_ops` reaches only the functions ever stored there.
    Edges: (callee name, call statement) for direct, indirect and kthread calls;
    `registers` holds functions passed as values (callbacks), for call chains."""

    def __init__(self, model: ir.Model):
        self.model = model
        self.fns = {f.name: f for f in model.functions}
        self.bodies = [(f.name, f.body) for f in model.functions] + [(f"actor {a.name}", a.body)
                                                                      for a in model.actors]
        self.pts = self._points_to()
        self.address_taken = set().union(*self.pts.values()) if self.pts else set()
        self.edges: dict[str, list[tuple[str, ir.Stmt]]] = defaultdict(list)
        self.registers: dict[str, list[tuple[str, ir.Stmt]]] = defaultdict(list)
        for name, body in self.bodies:
            for s in walk_stmts(body):
                if isinstance(s, ir.Call):
                    for callee in self.targets(name, s.callee):
                        self.edges[name].append((callee, s))
                for top in walk_exprs(s):
                    if isinstance(s, ir.Call) and top is s.callee:
                        continue
                    for e in sub_exprs(top):
                        if isinstance(e, ir.FnRef):
                            self.registers[name].append((e.name, s))

    def targets(self, owner: str, callee: ir.Expr) -> list[str]:
        if isinstance(callee, ir.FnRef):
            return [callee.name]
        return sorted(self._expr_pts(owner, callee))

    def calls(self, name: str) -> list[tuple[str, ir.Stmt]]:
        return self.edges.get(name, [])

    # ---- points-to of function pointers
    def _loc(self, owner: str, e: ir.Expr) -> tuple | None:
        match e:
            case ir.VarRef(var=v):
                return ("G", v.name)
            case ir.LocalRef(local=l):
                return ("L", owner, l.slot)
            case ir.FieldRef(cls=c, field=f):
                return ("F", c, f.name)
        return None

    def _expr_pts(self, owner: str, e: ir.Expr) -> set[str]:
        match e:
            case ir.FnRef(name=n):
                return {n}
            case ir.CondExpr(then=t, other=o):
                return self._expr_pts(owner, t) | self._expr_pts(owner, o)
        loc = self._loc(owner, e)
        return set(self.pts.get(loc, ())) if loc is not None else set()

    def _points_to(self) -> dict[tuple, set[str]]:
        self.pts: dict[tuple, set[str]] = defaultdict(set)
        for var in self.model.vars:
            for e in sub_exprs(var.init):
                if isinstance(e, ir.FnRef):
                    self.pts[("G", var.name)].add(e.name)
        changed = True
        while changed:
            changed = False

            def flow(loc: tuple | None, names: set[str]) -> None:
                nonlocal changed
                if loc is not None and not names <= self.pts[loc]:
                    self.pts[loc] |= names
                    changed = True

            for owner, body in self.bodies:
                for s in walk_stmts(body):
                    match s:
                        case ir.Assign(target=t, value=v):
                            flow(self._loc(owner, t), self._expr_pts(owner, v))
                        case ir.Return(value=v) if v is not None:
                            flow(("R", owner), self._expr_pts(owner, v))
                        case ir.Call(callee=c, args=args, result=res):
                            callees = {c.name} if isinstance(c, ir.FnRef) else self._expr_pts(owner, c)
                            for name in callees:
                                f = self.fns.get(name)
                                if f is None:
                                    continue
                                for p, a in zip(f.params, args):
                                    flow(("L", name, p.slot), self._expr_pts(owner, a))
                                if res is not None:
                                    flow(self._loc(owner, res), set(self.pts.get(("R", name), ())))
        return self.pts


def _cycles(model: ir.Model, graph: CallGraph, d: Diagnostics) -> bool:
    state: dict[str, int] = {}
    stack: list[tuple[str, ir.Stmt | None]] = []
    found = False

    def visit(name: str, via: ir.Stmt | None) -> None:
        nonlocal found
        state[name] = 1
        stack.append((name, via))
        for callee, s in graph.calls(name):
            if state.get(callee) == 1:
                names = [n for n, _ in stack]
                chain = " -> ".join(names[names.index(callee):] + [callee])
                d.error("E402", f"call cycle: {chain}", s.span,
                        help="recursion makes the state space unbounded; unroll it by hand")
                found = True
            elif callee not in state:
                visit(callee, s)
        stack.pop()
        state[name] = 2

    for f in model.functions:
        if f.name not in state:
            visit(f.name, None)
    return found


# ---------------------------------------------------------------- unreachable code
def _unreachable(stmts: tuple[ir.Stmt, ...], d: Diagnostics) -> None:
    for i, s in enumerate(stmts):
        for sub in children(s):
            _unreachable(sub, d)
        if i + 1 < len(stmts) and _ends(s):
            d.error("E401", "unreachable statement", stmts[i + 1].span,
                    notes=(Note("control never gets past this", s.span),))
            return


def _ends(s: ir.Stmt) -> bool:
    match s:
        case ir.Return() | ir.Break():
            return True
        case ir.If(then=t, other=o):
            return _block_ends(t) and _block_ends(o)
        case ir.Choice(branches=brs):
            return all(_block_ends(b) for b in brs)
        case ir.Atomic(body=b) | ir.Ipi(body=b):
            return _block_ends(b)
    return False


def _block_ends(stmts: tuple[ir.Stmt, ...]) -> bool:
    return any(_ends(s) for s in stmts)


# ---------------------------------------------------------------- lock discipline
def _add(ms: Multiset, item: Item) -> Multiset:
    return tuple(sorted(ms + (item,), key=repr))


def _remove(ms: Multiset, item: Item) -> Multiset | None:
    if item not in ms:
        return None
    lst = list(ms)
    lst.remove(item)
    return tuple(lst)


class LockAnalysis:
    def __init__(self, model: ir.Model, graph: CallGraph, d: Diagnostics):
        self.model = model
        self.graph = graph
        self.d = d
        self.fns = {f.name: f for f in model.functions}
        self.summaries: dict[str, set[tuple[Multiset, Multiset]]] = {}
        self.held_at: dict[int, set[Multiset]] = defaultdict(set)
        # per statement: (owner, path states (held since entry, released from the caller))
        self.paths_at: dict[int, tuple[str, set[PathState]]] = {}
        self.param_names: dict[int, str] = {}

    def summary(self, name: str) -> set[tuple[Multiset, Multiset]]:
        if name in self.summaries:
            return self.summaries[name]
        f = self.fns[name]
        self.summaries[name] = {((), ())}  # provisional; cycles are rejected separately
        if f.role is not None:
            item: Item = (("P", 0), f.mode)
            eff = {((item,), ())} if f.role == "release" else {((), (item,))}
        else:
            exits = self._body(f.body, f.name, f.params)
            eff = {(r, h) for h, r in exits}
        self.summaries[name] = eff
        return eff

    def _body(self, body: tuple[ir.Stmt, ...], owner: str, params: tuple[ir.Local, ...]) -> set[PathState]:
        self.owner = owner
        self.params = params
        exits: set[PathState] = set()
        self._returns = exits
        self._breaks: list[set[PathState]] = []
        end = self._block(body, {((), ())})
        return exits | end

    def _term(self, e: ir.Expr) -> Term | None:
        if isinstance(e, ir.LockRef) and e.lock.array is not None or isinstance(e, ir.LockIndex):
            # a lock of an array, named or computed: one term, its lockdep class, for
            # the lock graph and for matching releases; it protects no variable
            # (must-held counts "L" terms only)
            return ("A", e.lock.array if isinstance(e, ir.LockRef) else e.array)
        if isinstance(e, ir.LockRef):
            return ("L", e.lock.name)
        if isinstance(e, ir.LocalRef) and isinstance(e.local.type, ir.LockType):
            return ("P", e.local.slot)
        return None

    def _block(self, stmts: tuple[ir.Stmt, ...], states: set[PathState]) -> set[PathState]:
        for s in stmts:
            if not states:
                break
            for h, _ in states:
                self.held_at[s.sid].add(tuple(self._name(t, m) for t, m in h))
            entry = self.paths_at.setdefault(s.sid, (self.owner, set()))
            entry[1].update(states)
            states = self._stmt(s, states)
        return states

    def _name(self, term: Term, mode: str | None) -> tuple[str, str | None]:
        kind, v = term
        if kind in ("L", "A"):
            return (str(v), mode)
        p = next((x for x in self.params if x.slot == v), None)
        return (p.name if p else f"param{v}", mode)

    def _stmt(self, s: ir.Stmt, states: set[PathState]) -> set[PathState]:
        match s:
            case ir.Call(callee=ir.FnRef(name=name), args=args, kthread=None):
                owner, params, returns, breaks = self.owner, self.params, self._returns, self._breaks
                effects = self.summary(name)
                self.owner, self.params, self._returns, self._breaks = owner, params, returns, breaks
                callee = self.fns[name]
                subst: dict[Term, Term | None] = {}
                for p, a in zip(callee.params, args):
                    if isinstance(p.type, ir.LockType):
                        subst[("P", p.slot)] = self._term(a)
                out: set[PathState] = set()
                for h, r in states:
                    for rel, acq in effects:
                        nh, nr = h, r
                        for t, m in rel:
                            term = subst.get(t) if t[0] == "P" else t
                            if term is None:
                                continue
                            removed = _remove(nh, (term, m))
                            if removed is None:
                                nr = _add(nr, (term, m))
                                self._release_site.setdefault((self.owner, term, m), s.span)
                            else:
                                nh = removed
                        for t, m in acq:
                            term = subst.get(t) if t[0] == "P" else t
                            if term is not None:
                                nh = _add(nh, (term, m))
                        out.add((nh, nr))
                return out
            case ir.If(then=t, other=o):
                return self._block(t, states) | self._block(o, states)
            case ir.Choice(branches=brs):
                out = set()
                for b in brs:
                    out |= self._block(b, states)
                return out
            case ir.Atomic(body=b) | ir.Ipi(body=b):
                return self._block(b, states)
            case ir.Pick(body=b):
                return self._block(b, states)
            case ir.ForCpu(body=b) | ir.ForRange(body=b):
                self._breaks.append(set())
                after = self._block(b, states)
                broke = self._breaks.pop()
                if any(h not in {x for x, _ in states} for h, _ in after):
                    self.d.error("E405", "this loop takes a lock in one iteration and does not release it",
                                 s.span)
                return states | after | broke
            case ir.Return():
                self._returns |= states
                return set()
            case ir.Break():
                if self._breaks:
                    self._breaks[-1] |= states
                return set()
        return states

    def check_root(self, name: str, body: tuple[ir.Stmt, ...], params: tuple[ir.Local, ...],
                   span: Span, what: str) -> None:
        exits = self._body(body, name, params)
        for h, r in sorted(exits):
            for term, mode in r:
                site = self._find_site(name, term, mode) or span
                lock = self._name(term, mode)[0]
                self.d.error("E403", f"releases `{lock}`{_mode(mode)}, which is not held on this path",
                             site, notes=(Note(f"in {what}"),))
                return

    def _find_site(self, owner: str, term: Term, mode: str | None) -> Span | None:
        return self._release_site.get((owner, term, mode))

    _release_site: dict = {}


def _mode(mode: str | None) -> str:
    return f" ({mode})" if mode else ""


def check_wellformed(model: ir.Model, d: Diagnostics) -> ir.Model:
    for f in model.functions:
        _unreachable(f.body, d)
    for a in model.actors:
        _unreachable(a.body, d)
    graph = CallGraph(model)
    if _cycles(model, graph, d):
        d.raise_if_errors()
    d.raise_if_errors()
    la = LockAnalysis(model, graph, d)
    la._release_site = {}
    for f in model.functions:
        la.summary(f.name)
    for a in model.actors:
        la.check_root(f"actor {a.name}", a.body, (), a.span, f"actor `{a.name}`")
    roots = set(graph.address_taken)
    for f in model.functions:
        for s in walk_stmts(f.body):
            if isinstance(s, ir.Call) and s.kthread is not None and isinstance(s.callee, ir.FnRef):
                roots.add(s.callee.name)
    for f in model.functions:
        if f.name in roots and f.role is None:
            la.check_root(f.name, f.body, f.params, f.span, f"`{f.name}`, which runs on its own (callback or "
                          "kthread work)")
    d.raise_if_errors()
    # nothing to verify is a mistake to say, not "explored 0 states" (after the
    # other mistakes: a file with those has them to fix first)
    top = Span(model.path, 1, 1, 1, 2)
    if not model.properties:
        d.error("E421", "the policy declares no property: there is nothing to verify", top,
                help="import a kernel prelude (e.g. `import \"kernel-6.16.tdx\";`) for the built-in "
                     "properties, or declare an `invariant`, `event` or `cover`")
    elif not model.actors and not any(p.kind is ir.PropKind.STATIC for p in model.properties):
        d.warning("W422", "the policy has no actor: nothing runs, so only the initial states are checked",
                  top, help="add an `actor` that calls the code under test")
    d.raise_if_errors()
    held = tuple(sorted((sid, tuple(sorted(v))) for sid, v in la.held_at.items()))
    from tdxproof.model.blocks import compute_blocks, movers

    invisible, quiet_results = compute_blocks(model, graph, la)
    return dataclasses.replace(model, held_at=held, invisible=invisible, invisible_results=quiet_results,
                               movers=movers(model, invisible, graph))
