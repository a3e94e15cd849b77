"""Blocks, computed once for every engine: which statements no other context can observe.

NOTE(blocks): a statement is *invisible* when it cannot block and every shared
variable it touches is private to one context (only one single-copy actor, with
the IPIs it runs, ever touches it) or protected by a lock the executing context
holds at that point: a variable is protected by lock L if every statement that reads it holds
L (any mode) and every statement that writes it holds L exclusively (a mutex, or
the write side of a rw-semaphore). Work a kthread runs for a caller inherits the
locks the caller holds, since the caller is blocked waiting for it. An invisible
statement commutes with every step of every other context (no one else can
touch what it touches meanwhile), so a transition may run it together with one
visible statement without changing any verdict (Lipton reduction). Writes to a
variable a property observes (invariants, covers, the `quiescent` predicate)
stay visible, so every observed state is still reached.

Beyond invisible statements, lock operations are movers (Lipton): an acquire
(an `atomic` of an `acquire` operation) moves right, a release (of a `release`
operation) moves left -- except an acquire of a lock class some IPI handler also
takes (the IPI may come in on the holder's CPU between acquire and release and
spin on what the interrupted holder holds), and a claim guarded by `require`. A block is: its first statement (the only one that may
block), then statements while they are invisible, right movers before the
block's non-mover, at most one non-mover, or left movers: R* N? L* with
invisible statements anywhere. Non-movers that write observed variables are
the points where properties are observed, as before.

Two more boundaries keep every block loop-free (as large-block encoding needs):
the advance of a loop (`for` back edge) and the first statement of an actor's
body (a repeating actor restarts there) always start a new block.

Ghost statements (NOTE(ghost) in model/lower.py) are invisible by construction:
they write only ghost state, which no real statement reads, so running them with
the adjacent step changes nothing any context does; they only fix the instant at
which the properties' bookkeeping samples the state.

Locks held are *must* information: what every path to the statement holds,
from the entry of its root (actor body, kthread work) down the call graph.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from tdxproof.model import ir
from tdxproof.model.wellformed import sub_exprs, walk_exprs, walk_stmts

if TYPE_CHECKING:
    from tdxproof.model.wellformed import CallGraph, LockAnalysis

# lock -> 2 (held exclusively: a mutex, or the write side) or 1 (at least the read side)
Held = dict[str, int]
SYNC = (ir.Await, ir.Require, ir.Atomic, ir.Ipi, ir.Hold)


def model_bodies(model: ir.Model) -> list[tuple[str, tuple[ir.Stmt, ...]]]:
    return [(f.name, f.body) for f in model.functions] + [(f"actor {a.name}", a.body) for a in model.actors]


def _strength(mode: str | None) -> int:
    return 1 if mode == "read" else 2


def _meet(a: Held, b: Held) -> Held:
    """What both hold: the weaker mode of each lock held by both."""
    return {lk: min(m, b[lk]) for lk, m in a.items() if lk in b}


def _abs(entry: Held, paths: set) -> Held:
    """Locks held on every path at a statement: the entry's, minus what the path
    released from its caller, plus what it took itself."""
    out: Held | None = None
    for h, r in paths:
        now = dict(entry)
        for t, m in r:
            if t[0] == "L":
                now.pop(t[1], None)
        for t, m in h:
            if t[0] == "L":
                now[t[1]] = max(now.get(t[1], 0), _strength(m))
        out = now if out is None else _meet(out, now)
    return out if out is not None else dict(entry)


def must_held(model: ir.Model, graph: "CallGraph", la: "LockAnalysis") -> dict[int, Held]:
    """Absolute must-held locks before every statement reachable from an actor;
    statements of code no actor reaches are absent."""
    entry: dict[str, Held | None] = {name: None for name, _ in model_bodies(model)}
    for a in model.actors:
        entry[f"actor {a.name}"] = {}
    # callers before callees: the call graph is acyclic
    order: list[str] = []
    seen: set[str] = set()

    def visit(n: str) -> None:
        if n in seen:
            return
        seen.add(n)
        for callee, _ in graph.calls(n):
            visit(callee)
        order.append(n)

    for name, _ in model_bodies(model):
        visit(name)
    order.reverse()
    bodies = dict(model_bodies(model))
    held: dict[int, Held] = {}
    for owner in order:
        if owner not in bodies:
            continue
        ent = entry.get(owner)
        if ent is None:
            continue  # no actor reaches this code
        for s in walk_stmts(bodies[owner]):
            paths = la.paths_at.get(s.sid, (owner, set()))[1]
            now = _abs(ent, paths)
            held[s.sid] = now
            if isinstance(s, ir.Call):
                for callee in graph.targets(owner, s.callee):
                    if callee in entry:
                        prev = entry[callee]
                        entry[callee] = dict(now) if prev is None else _meet(prev, now)
    return held


def _access(s: ir.Stmt) -> tuple[set[str], set[str], bool]:
    """(variables read, variables written, touches something never invisible)."""
    reads: set[str] = set()
    writes: set[str] = set()
    special = isinstance(s, SYNC) or (isinstance(s, ir.Call) and s.kthread is not None)
    targets: list[ir.Expr] = []
    if isinstance(s, ir.Assign):
        targets.append(s.target)
    if isinstance(s, ir.Call) and s.result is not None:
        targets.append(s.result)
    for t in targets:
        if isinstance(t, ir.VarRef):
            writes.add(t.var.name)
        elif isinstance(t, (ir.FieldRef, ir.Builtin)):
            special = True  # lock internals; irqs_off changes who may run on this CPU
    for top in walk_exprs(s):
        for e in sub_exprs(top):
            if e is top and top in targets:
                continue
            match e:
                case ir.VarRef(var=v) if not any(e is t for t in targets):
                    reads.add(v.name)
                case ir.PredRef(pred=p):
                    reads |= {x.var.name for x in sub_exprs(p.expr) if isinstance(x, ir.VarRef)}
                case ir.FieldRef():
                    special = True
                case ir.Builtin(op=ir.BuiltinOp.HOLDERS):
                    special = True
    return reads, writes, special


def _sets(now: Held) -> tuple[set[str], set[str]]:
    """(locks held in any mode, locks held exclusively)"""
    return set(now), {lk for lk, m in now.items() if m == 2}


def observed(model: ir.Model) -> set[str]:
    names: set[str] = set()
    exprs = [p.expr for p in model.properties if p.expr is not None] + [p.expr for p in model.predicates]
    for e in exprs:
        for x in sub_exprs(e):
            if isinstance(x, ir.VarRef):
                names.add(x.var.name)
            elif isinstance(x, ir.PredRef):
                names |= {y.var.name for y in sub_exprs(x.pred.expr) if isinstance(y, ir.VarRef)}
    return names


LEAD = -1   # only invisible statements so far: a statement that may block can still join, if it can run


def phase_after(kind: str) -> int:
    """The phase of a block whose first statement has mover `kind`."""
    return LEAD if kind == "B" else (0 if kind == "R" else 1)


def continue_phase(kind: str | None, blocking: bool, phase: int) -> int | None:
    """NOTE(blocks), the one rule both engines use: may the next statement (of
    mover `kind`; "cut" for a loop advance, "restart" for a repeating actor's restart) join
    the block, and in which phase is the block then? Phases: LEAD (invisible
    statements only), 0 (before the non-mover), 1 (after it, or after a release).
    A block is B* [its one statement that may block] then R* N? L*, with
    invisible statements anywhere; None means the block ends before it."""
    if kind is None or kind == "restart":
        return None            # a block never runs an actor's body twice
    if phase == LEAD:
        return phase_after("N" if kind == "cut" else kind)
    if blocking or kind == "cut":
        return None
    if kind == "B":
        return phase
    if kind == "R" and phase == 0:
        return 0
    if kind in ("N", "L") and (phase == 0 or kind == "L"):
        return 1
    return None


def movers(model: ir.Model, invisible: frozenset[int], graph: "CallGraph") -> tuple[tuple[int, str], ...]:
    """Each statement's mover kind: B (invisible), R (acquire), L (release) or N."""
    out: list[tuple[int, str]] = []
    preempted = _ipi_classes(model, graph)
    for f in model.functions:
        for s in walk_stmts(f.body):
            kind = _mover(s, f, invisible)
            if kind in ("R", "L") and f.lock_class in preempted:
                # an IPI handler takes a lock of this class: it may come in on the
                # holder's CPU between the acquire and the release and spin for the
                # lock of the context it interrupted, which then cannot run to its
                # release (qbman's cgr_lock, 584c2a9184a3): neither moves, so a block
                # boundary separates them
                kind = "N"
            out.append((s.sid, kind))
    for a in model.actors:
        for s in walk_stmts(a.body):
            out.append((s.sid, _mover(s, None, invisible)))
    return tuple(sorted(out))


def _ipi_classes(model: ir.Model, graph: "CallGraph") -> set[str]:
    """The lock classes whose acquire operations IPI handlers (`ipi` bodies) reach."""
    fns = {f.name: f for f in model.functions}
    todo: list[str] = []
    for owner, body in model_bodies(model):
        for s in walk_stmts(body):
            if isinstance(s, ir.Ipi):
                for inner in walk_stmts(s.body):
                    if isinstance(inner, ir.Call):
                        todo.extend(graph.targets(owner, inner.callee))
    seen: set[str] = set()
    out: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in fns:
            continue
        seen.add(name)
        f = fns[name]
        if f.role == "acquire" and f.lock_class is not None:
            out.add(f.lock_class)
        todo.extend(callee for callee, _ in graph.calls(name))
    return out


def _mover(s: ir.Stmt, f: ir.Function | None, invisible: frozenset[int]) -> str:
    if s.sid in invisible:
        return "B"
    if isinstance(s, ir.Atomic) and s.body and isinstance(s.body[0], ir.Require):
        # a claim (a worker taking a queued work item, workqueue.tdx) changes what
        # others queue and cancel without holding anything: it commutes with neither
        # (a cancel after it finds nothing, before it takes the item away), so it is
        # no mover even in an acquire operation
        return "N"
    if isinstance(s, (ir.Atomic, ir.Hold)) and f is not None and f.role == "acquire":
        return "R"
    if isinstance(s, (ir.Atomic, ir.Hold)) and f is not None and f.role == "release":
        return "L"
    if isinstance(s, ir.Ipi):
        return "R"   # entering an IPI excludes the others on its CPU, like taking a lock
    return "N"


def executors(model: ir.Model, graph: "CallGraph") -> dict[str, set[str]]:
    """Which contexts may run each body: an actor runs its body and what it calls
    (IPIs included: they run inline); work handed to a kthread runs in that
    kthread family. A family, or an actor with several copies, is several contexts."""
    out: dict[str, set[str]] = defaultdict(set)
    roots: list[tuple[str, str]] = [(f"actor {a.name}", f"actor {a.name}") for a in model.actors]
    seen: set[tuple[str, str]] = set()
    while roots:
        body, who = roots.pop()
        if (body, who) in seen:
            continue
        seen.add((body, who))
        out[body].add(who)
        for callee, s in graph.calls(body):
            if isinstance(s, ir.Call) and s.kthread is not None and callee in graph.targets(body, s.callee):
                roots.append((callee, f"kthread {s.kthread.name}"))
            else:
                roots.append((callee, who))
    return out


def compute_blocks(model: ir.Model, graph: "CallGraph", la: "LockAnalysis") -> tuple[frozenset[int], frozenset[int]]:
    held = must_held(model, graph, la)
    # variables only one context ever touches need no lock to be invisible
    runs = executors(model, graph)
    single = {f"actor {a.name}" for a in model.actors if a.copies == 1}
    touched_by: dict[str, set[str]] = defaultdict(set)
    for owner, body in model_bodies(model):
        for st in walk_stmts(body):
            reads, writes, _ = _access(st)
            for v in reads | writes:
                touched_by[v] |= runs.get(owner, set())
    private = {v for v, who in touched_by.items() if len(who) == 1 and who <= single}
    stmts = [(owner, s) for owner, body in model_bodies(model) for s in walk_stmts(body)]
    # which locks protect each variable
    protect: dict[str, set[str] | None] = defaultdict(lambda: None)
    for _, s in stmts:
        if s.sid not in held:
            continue  # unreachable code never runs
        reads, writes, _ = _access(s)
        any_mode, excl = _sets(held[s.sid])
        for v in reads:
            protect[v] = set(any_mode) if protect[v] is None else protect[v] & any_mode
        for v in writes:
            protect[v] = set(excl) if protect[v] is None else protect[v] & excl
    watched = observed(model)

    def covered(v: str, locks: set[str]) -> bool:
        if v in private:
            return True
        p = protect[v]
        return bool(p and p & locks)

    invisible: set[int] = set()
    quiet_results: set[int] = set()
    for _, s in stmts:
        if s.sid not in held:
            continue
        reads, writes, special = _access(s)
        any_mode, excl = _sets(held[s.sid])
        if isinstance(s, ir.Call) and s.kthread is None:
            res = s.result
            if res is None or isinstance(res, ir.LocalRef) or (
                    isinstance(res, ir.VarRef) and res.var.name not in watched and covered(res.var.name, excl)):
                quiet_results.add(s.sid)
        if s.sid in model.ghost:
            invisible.add(s.sid)   # NOTE(ghost): it cannot change what any context does
            continue
        if special:
            continue
        if isinstance(s, ir.Call):
            writes = set()  # the result is written by the callee's return (quiet_results)
        if all(covered(v, any_mode) for v in reads) and \
                all(v not in watched and covered(v, excl) for v in writes):
            invisible.add(s.sid)
    return frozenset(invisible), frozenset(quiet_results)
