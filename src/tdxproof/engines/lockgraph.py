"""`lockdep NAME;`: lockdep's circular-dependency check, on every code path.

Like lockdep (kernel/locking/lockdep.c), this builds the graph of "held A while
acquiring B" dependencies and reports a cycle -- but over every path of the
code, statically, not only over the paths one run happened to take, and with
no interleaving needed: a cycle through four locks taken by four different
tasks is found on the call graph alone.

- An edge A -> B is recorded at every call of an `acquire` operation of B (and
  of an operation that waits for B's holders, such as `synchronize_srcu()`,
  which lockdep models as taking the SRCU domain exclusively) made while A is
  held: held locks come from `Model.held_at` (the held set before every
  statement, relative to its function's entry) plus what the callers hold.
- A kthread hand-off (`call f() in cpuhp[c]`) waits for the kthread: the caller
  "acquires" the kthread's work (lockdep's `cpuhp_state` lock maps), and the
  work runs holding it and the locks its kthread is declared to run under
  (`lockdep_held`: cpuhp callbacks run under the control task's
  `cpu_hotplug_lock`).
- Modes follow lockdep's rules for recursive reads (Boqun Feng's, v5.10): an
  edge is typed by how A is held (shared: a read hold; exclusive otherwise) and
  how B is taken (a recursive read -- `srcu_read_lock()` -- or not). A cycle is
  reported only if it is "strong": no edge taking a lock as a recursive read is
  followed by one that holds it shared. `down_read()` and `percpu_down_read()`
  are not recursive (lockdep: read=1), so a cycle through reader holds of
  `cpu_hotplug_lock` is reported, as lockdep does: a pending writer makes it real.

The report is lockdep's "possible circular locking dependency detected", the
chain in reverse order with the call chain that took each dependency, and the
unsafe scenario. What needs an interleaving (a deadlock through a completion or
a condition, not a lock) is the `no-deadlock` property's job (docs/language.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from tdxproof.engines.trace import source_text
from tdxproof.model import ir
from tdxproof.model.wellformed import CallGraph, children, walk_stmts
from tdxproof.results import PropertyResult, StaticWitness, Verdict
from tdxproof.source import Span

RECURSIVE_READ = {"srcu_struct"}     # lock classes whose read side lockdep tracks as read=2


@dataclass(frozen=True)
class Edge:
    held: str
    held_mode: str | None
    lock: str
    mode: str | None
    recursive: bool          # the acquire is a recursive read
    chain: tuple[str, ...]   # root first, the function that makes the call last
    span: Span               # the acquire (or wait) call
    entry: str               # who runs the root

    @property
    def shared(self) -> bool:
        return self.held_mode == "read"


@dataclass(frozen=True)
class _Visit:
    fn: str
    binding: tuple[tuple[int, str], ...]          # lock parameter slot -> lock name
    held: frozenset[tuple[str, str | None]]      # held at entry, by the callers
    consts: tuple[tuple[int, int], ...] = ()      # parameter slot -> the literal the caller passed


class LockGraph:
    def __init__(self, model: ir.Model):
        self.model = model
        self.graph = CallGraph(model)
        self.fns = {f.name: f for f in model.functions}
        # lockdep's classes: a lock, or every lock of an array (`a[0]`, `a[1]`: class `a`)
        self.classes = {lk.array or lk.name: lk.cls for lk in model.locks}
        self.class_of = {lk.name: lk.array or lk.name for lk in model.locks}
        self.held_at = {sid: alts for sid, alts in model.held_at}
        self._assigned: dict[str, set[int]] = {}    # per function: the local slots it writes
        # per (held, taken, held shared, taken as a recursive read): the edge with the shortest chain
        self.typed: dict[tuple[str, str, bool, bool], Edge] = {}
        # acquires whose lock, and held locks whose name, the walk could not resolve:
        # the graph leaves them out, a proof from it cannot (check_recursive_read)
        self.unresolved: list[Span] = []
        self._walk()

    # ---- what a call does to locks
    @staticmethod
    def _wait(f: ir.Function) -> tuple[bool, str | None]:
        """Whether a lock-class operation waits for holders of `self` without
        taking it (synchronize_srcu), and the mode lockdep takes it in then: a
        wait for readers is exclusive, a wait for writers a read."""
        if f.lock_class is None or f.role is not None:
            return False, None
        for s in walk_stmts(f.body):
            if isinstance(s, ir.Await):
                modes = [w.mode for w in s.waits if w.kind == "holders" and isinstance(w.lock, ir.LocalRef)]
                if modes:
                    return True, ("read" if all(m == "write" for m in modes) else None)
        return False, None

    def _walk(self) -> None:
        roots: deque[tuple[_Visit, tuple[str, ...], str]] = deque()
        seen: set[_Visit] = set()
        for a in self.model.actors:
            v = _Visit(f"actor {a.name}", (), frozenset())
            roots.append((v, (f"actor {a.name}",), a.title or a.name))
        while roots:
            v, chain, entry = roots.popleft()
            if v in seen:
                continue
            seen.add(v)
            body = self._body(v.fn)
            binding = dict(v.binding)
            for s in _live(body, dict(v.consts)):
                if not isinstance(s, ir.Call):
                    continue
                for rel in self.held_at.get(s.sid, ()):
                    held = set(v.held)
                    for name, mode in rel:
                        held.add((self._bind(name, v.fn, binding), mode))
                    if any(n is None for n, _ in held):
                        self.unresolved.append(s.span)
                    held = frozenset((n, m) for n, m in held if n is not None)
                    for callee in self.graph.targets(v.fn, s.callee):
                        self._call(s, callee, v, binding, held, chain, entry, roots)

    def _body(self, fn: str) -> tuple[ir.Stmt, ...]:
        if fn.startswith("actor "):
            return next(a.body for a in self.model.actors if f"actor {a.name}" == fn)
        return self.fns[fn].body

    def _bind(self, name: str, fn: str, binding: dict[int, str]) -> str | None:
        if name in self.class_of:
            return self.class_of[name]
        if name in self.classes:
            return name
        f = self.fns.get(fn)
        if f is not None:
            p = next((x for x in f.params if x.name == name), None)
            if p is not None:
                return binding.get(p.slot)
        return None

    def _arg_lock(self, e: ir.Expr, binding: dict[int, str]) -> str | None:
        if isinstance(e, ir.LockRef):
            return e.lock.array or e.lock.name
        if isinstance(e, ir.LockIndex):
            return e.array
        if isinstance(e, ir.LocalRef) and isinstance(e.local.type, ir.LockType):
            return binding.get(e.local.slot)
        return None

    def _call(self, s: ir.Call, callee: str, v: _Visit, binding: dict[int, str],
              held: frozenset, chain: tuple[str, ...], entry: str, roots: deque) -> None:
        g = self.fns.get(callee)
        if g is None:
            return
        if s.kthread is not None:
            work = f"{s.kthread.name}_work"
            self._edges(held, work, None, False, chain, s.span, entry)
            inside = {(work, None)} | {(n, "write") for n in s.kthread.lockdep_held}
            roots.append((_Visit(callee, (), frozenset(inside)), (f"{s.kthread.name}/N", callee),
                          f"{s.kthread.name}/N"))
            return
        waits, wait_mode = self._wait(g)
        if g.role == "acquire" or waits:
            lock = self._arg_lock(s.args[0], binding) if s.args else None
            if lock is not None:
                mode = g.mode if g.role == "acquire" else wait_mode
                recursive = mode == "read" and self.classes.get(lock) in RECURSIVE_READ
                self._edges(held, lock, mode, recursive, chain, s.span, entry)
            else:
                self.unresolved.append(s.span)
            return
        if g.role == "release":
            return
        sub = {p.slot: self._arg_lock(a, binding) for p, a in zip(g.params, s.args)
               if isinstance(p.type, ir.LockType)}
        b = tuple(sorted((k, n) for k, n in sub.items() if n is not None))
        # literal arguments (`invoke` false in the _nocalls variants) decide branches:
        # a path that no caller can take is no dependency (lockdep never sees it)
        if callee not in self._assigned:
            self._assigned[callee] = _assigned(g.body)
        fixed = self._assigned[callee]
        cs = tuple(sorted((p.slot, a.value) for p, a in zip(g.params, s.args)
                          if isinstance(a, ir.Lit) and not isinstance(p.type, ir.LockType)
                          and p.slot not in fixed))
        roots.appendleft((_Visit(callee, b, held, cs), chain + (callee,), entry))

    def _edges(self, held: frozenset, lock: str, mode: str | None, recursive: bool,
               chain: tuple[str, ...], span: Span, entry: str) -> None:
        for h, hm in sorted(held, key=lambda x: (x[0], x[1] or "")):
            e = Edge(h, hm, lock, mode, recursive, chain, span, entry)
            key = (h, lock, hm == "read", recursive)
            if key not in self.typed or len(chain) < len(self.typed[key].chain):
                self.typed[key] = e

    # ---- cycles
    def cycle(self) -> list[Edge] | None:
        """The shortest strong cycle (lockdep's rule), or None."""
        out: dict[str, list[Edge]] = {}
        for e in self.typed.values():
            out.setdefault(e.held, []).append(e)
        best: list[Edge] | None = None
        for start in sorted(out):
            # BFS over (lock, was the edge into it a recursive read)
            q: deque[tuple[str, bool, list[Edge]]] = deque([(start, False, [])])
            seen = {(start, False)}
            while q:
                node, rec, path = q.popleft()
                if best is not None and len(path) >= len(best):
                    break
                for e in sorted(out.get(node, []), key=lambda x: (x.lock, len(x.chain))):
                    if path and rec and e.shared:
                        continue        # -(*R)-> then -(S*)->: not a deadlock (lockdep)
                    if e.lock == start:
                        # the pair closing the cycle: this edge, then the first
                        # (itself, for one lock: a recursive read inside a read is fine)
                        if not (e.recursive and (path[0] if path else e).shared):
                            cand = path + [e]
                            if best is None or len(cand) < len(best):
                                best = cand
                        continue
                    key = (e.lock, e.recursive)
                    if key not in seen:
                        seen.add(key)
                        q.append((e.lock, e.recursive, path + [e]))
        return best


def _flags(e: Edge) -> str:
    return "{.+.+}" if e.mode == "read" else "{+.+.}"


def _frames(e: Edge) -> list[str]:
    """lockdep's stack, innermost first, in the policy's function names."""
    frames = [f for f in reversed(e.chain)]
    return ["       " + f.removeprefix("actor ") for f in frames]


def _recursive(e: Edge) -> tuple[str, ...]:
    """lockdep's report of a lock taken again by its holder (print_deadlock_bug())."""
    lines = ["============================================",
             "WARNING: possible recursive locking detected",
             "--------------------------------------------",
             f"{e.entry} is trying to acquire lock:",
             f" ({e.lock}){_flags(e)}, at: {e.chain[-1].removeprefix('actor ')} ({e.span})",
             "",
             "but task is already holding lock:",
             f" ({e.held}){'{++++}' if e.shared else '{+.+.}'}",
             "",
             "other info that might help us debug this:",
             " Possible unsafe locking scenario:",
             "",
             "       CPU0",
             "       ----",
             f"  lock({e.held});",
             f"  lock({e.lock});",
             "",
             " *** DEADLOCK ***",
             "",
             " May be due to missing lock nesting notation",
             "",
             "stack backtrace (the call chain that takes it again):"] + _frames(e)
    text = source_text(e.span)
    return tuple(lines + ([f"         {text}"] if text else []))


def report(cycle: list[Edge]) -> tuple[str, ...]:
    """lockdep's report of a circular dependency (kernel/locking/lockdep.c,
    print_circular_bug()): the new dependency that closes the cycle first, then
    the existing chain in reverse order with where each was taken, then the
    unsafe scenario. A cycle of one lock is lockdep's recursive-locking report."""
    if len(cycle) == 1:
        return _recursive(cycle[0])
    last = cycle[-1]          # held `last.held`, taking `last.lock`, which already leads back
    lines = ["======================================================",
             "WARNING: possible circular locking dependency detected",
             "------------------------------------------------------",
             f"{last.entry} is trying to acquire lock:",
             f" ({last.lock}){_flags(last)}, at: {last.chain[-1].removeprefix('actor ')} ({last.span})",
             "",
             "but task is already holding lock:",
             f" ({last.held}){'{++++}' if last.shared else '{+.+.}'}",
             "",
             "which lock already depends on the new lock.",
             "",
             "the existing dependency chain (in reverse order) is:"]
    order = [last] + list(reversed(cycle[:-1]))
    for i, e in enumerate(order):
        lines += ["", f"-> #{len(order) - 1 - i} ({e.lock}){_flags(e)}:",
                  f"       taken while holding {e.held}, by {e.entry}, at {e.span}:"] + _frames(e)
        text = source_text(e.span)
        if text:
            lines.append(f"         {text}")
    lines += ["", "other info that might help us debug this:", ""]
    if len(cycle) > 2:
        # lockdep: "Chain exists of: <the new lock> --> ... --> <the held lock>"
        names = [last.lock] + [e.lock for e in cycle[:-1]]
        lines += ["Chain exists of:", "  " + " --> ".join(names), ""]
    lines += [" Possible unsafe locking scenario:", ""]
    width = 26
    tasks = [e.entry for e in cycle]
    lines.append("       " + "".join(t[:width - 2].ljust(width) for t in tasks))
    lines.append("       " + "".join(("-" * min(len(t), width - 2)).ljust(width) for t in tasks))
    for i, e in enumerate(cycle):
        lines.append(" " * (7 + width * i) + f"lock({e.held});")
    for i, e in enumerate(cycle):
        lines.append(" " * (7 + width * i) + f"lock({e.lock});")
    lines += ["", " *** DEADLOCK ***"]
    return tuple(lines)


def check_lockdep(model: ir.Model, prop: ir.Property, cpus: int) -> PropertyResult:
    g = LockGraph(model)
    cyc = g.cycle()
    if cyc is None:
        return PropertyResult(prop.name, prop.kind.value, Verdict.HOLDS_STATIC, "static", cpus)
    last = cyc[-1]
    locks = " -> ".join([cyc[0].held] + [e.lock for e in cyc])
    what = (f"takes `{last.lock}` again while holding it" if len(cyc) == 1 else
            f"takes `{last.lock}` while holding `{last.held}`, closing the cycle {locks}")
    witness = StaticWitness(tuple(c.removeprefix("actor ") for c in last.chain), what,
                            last.span, (), (last.entry,), source_text(last.span), last.entry, report(cyc))
    return PropertyResult(prop.name, prop.kind.value, Verdict.VIOLATED, "static", cpus, static=witness)


def _assigned(body: tuple[ir.Stmt, ...]) -> set[int]:
    """Local slots the body writes (a parameter it reassigns has no fixed value)."""
    out: set[int] = set()
    for s in walk_stmts(body):
        target = s.target if isinstance(s, ir.Assign) else s.result if isinstance(s, ir.Call) else None
        if isinstance(target, ir.LocalRef):
            out.add(target.local.slot)
    return out


def _live(stmts: tuple[ir.Stmt, ...], consts: dict[int, int]):
    """The statements of a body, without the branches of an `if` whose condition
    the literal parameters decide."""
    for s in stmts:
        yield s
        if isinstance(s, ir.If):
            known = _value(s.cond, consts)
            if known is not None:
                yield from _live(s.then if known else s.other, consts)
                continue
        for sub in children(s):
            yield from _live(sub, consts)


def _value(e: ir.Expr, consts: dict[int, int]) -> int | None:
    match e:
        case ir.Lit(value=v):
            return v
        case ir.LocalRef(local=l):
            return consts.get(l.slot)
        case ir.Unary(op="!", operand=x):
            v = _value(x, consts)
            return None if v is None else int(not v)
        case ir.Binary(op="&&", left=a, right=b):
            va, vb = _value(a, consts), _value(b, consts)
            if va == 0 or vb == 0:
                return 0
            return 1 if va is not None and vb is not None else None
        case ir.Binary(op="||", left=a, right=b):
            va, vb = _value(a, consts), _value(b, consts)
            if (va is not None and va != 0) or (vb is not None and vb != 0):
                return 1
            return 0 if va == 0 and vb == 0 else None
    return None


# ---------------------------------------------------------------- lock rules on every path
def check_every_path(model: ir.Model, prop: ir.Property) -> PropertyResult | None:
    """A task-local lock rule decided for every N and every interleaving from
    the code alone (`no-recursive-read`, `no-lock-at-exit`), or None."""
    if prop.kind is not ir.PropKind.EVENT:
        return None
    if prop.name == ir.EXIT_EVENT:
        return check_lock_at_exit(model, prop)
    return check_recursive_read(model, prop) or check_asserted_held(model, prop)


def _analysis(model: ir.Model):
    """A fresh LockAnalysis with every function and actor body walked, so its
    `paths_at` has each statement's path states (held since its function's
    entry, released from the caller)."""
    from tdxproof.diagnostics import Diagnostics
    from tdxproof.model.wellformed import LockAnalysis

    la = LockAnalysis(model, CallGraph(model), Diagnostics())
    la._release_site = {}
    for f in model.functions:
        la.summary(f.name)
    for a in model.actors:
        la._body(a.body, f"actor {a.name}", ())
    return la


def _balanced(model: ir.Model) -> bool:
    """Whether the walks of a task's holds (LockAnalysis's `held_at` and path
    states, the lock graph's) are the task's holds on every code path, and every
    root -- an actor's body, a kthread's work (handed off by name or as a
    pointer) -- ends holding nothing it took and having released nothing it
    did not. The walks take a lock-class operation's role on trust (an acquire
    holds `self`, a release unholds it), do not enter its body, apply no effect
    for a call through a pointer, and name a held lock parameter by its name:
    so every operation must do just what its role says (one `hold self` or
    `unhold self` on every path, in its mode; calls only to code that touches
    no lock), every function reachable through a pointer must leave the holds
    as it found them, and no lock parameter may be named like a lock."""
    fns = {f.name: f for f in model.functions}
    graph = CallGraph(model)
    la = _analysis(model)
    lock_names = {lk.name for lk in model.locks} | {lk.array for lk in model.locks if lk.array}
    neutral: dict[str, bool] = {}

    def touches_no_lock(name: str) -> bool:
        if name not in neutral:
            neutral[name] = False       # recursion is rejected by the lowering; be safe anyway
            g = fns.get(name)
            neutral[name] = g is not None and g.role is None and g.lock_class is None and all(
                not isinstance(st, ir.Hold) and not (isinstance(st, ir.Call) and (
                    st.kthread is not None or not isinstance(st.callee, ir.FnRef)
                    or not touches_no_lock(st.callee.name)))
                for st in walk_stmts(g.body))
        return neutral[name]

    for f in model.functions:
        if any(isinstance(prm.type, ir.LockType) and prm.name in lock_names for prm in f.params):
            return False
        if f.lock_class is None:
            continue
        holds = [st for st in walk_stmts(f.body) if isinstance(st, ir.Hold)]
        if f.role is None:
            if holds:
                return False
        elif not (len(holds) == 1 and holds[0] in _straight(f.body) and holds[0].release == (f.role == "release")
                  and holds[0].mode == f.mode and isinstance(holds[0].lock, ir.LocalRef) and f.params
                  and holds[0].lock.local.slot == f.params[0].slot):
            return False
        for st in walk_stmts(f.body):
            if isinstance(st, ir.Call) and (st.kthread is not None or not isinstance(st.callee, ir.FnRef)
                                            or not touches_no_lock(st.callee.name)):
                return False
    for name in graph.address_taken:
        if name in fns and la.summary(name) != {((), ())}:
            return False
    return not any(h or r for name, g, _ in _roots(model, graph)
                   for h, r in la._body(g.body, name, g.params if isinstance(g, ir.Function) else ()))


def _roots(model: ir.Model, graph: CallGraph) -> list[tuple[str, ir.Actor | ir.Function, frozenset]]:
    """What runs on its own: each actor's body (holding nothing at its start)
    and each kthread work, handed off by name or as a pointer (holding what
    lockdep sees its kthread run under). (owner name, actor or function, held)."""
    fns = {f.name: f for f in model.functions}
    out: list = [(f"actor {a.name}", a, frozenset()) for a in model.actors]
    owners = [(f"actor {a.name}", a.body) for a in model.actors] + [(f.name, f.body) for f in model.functions]
    for owner, body in owners:
        for st in walk_stmts(body):
            if isinstance(st, ir.Call) and st.kthread is not None:
                for name in graph.targets(owner, st.callee):
                    out.append((name, fns[name], frozenset(st.kthread.lockdep_held)))
    return out


def _straight(body: tuple[ir.Stmt, ...]) -> list[ir.Stmt]:
    """The statements every path through `body` runs to, in order: its own and
    those of its `atomic` blocks, up to the first that may branch, loop or
    leave (an `await` or a false `require` may stop the task there, and then it
    never returns from the operation either)."""
    out: list[ir.Stmt] = []
    for st in body:
        if isinstance(st, ir.Atomic):
            inner = _straight(st.body)
            out += inner
            if len(inner) != len(st.body):
                return out
        elif not isinstance(st, (ir.Assign, ir.Call, ir.Await, ir.Require, ir.Check, ir.Hold)):
            return out
        out.append(st)
    return out


def check_lock_at_exit(model: ir.Model, prop: ir.Property) -> PropertyResult | None:
    """`no-lock-at-exit` (fired where a body or a work ends with its context
    holding a lock, interp/step.py): a context's holds are its own path's, a
    body or a work starts with none when every earlier one ended with none, so
    roots balanced on every path (`_balanced`) is the rule for every N."""
    if not _balanced(model):
        return None
    return PropertyResult(prop.name, prop.kind.value, Verdict.HOLDS_STATIC, "static", 0,
                          reason="every task body and kthread work releases what it takes, on every code path")


def check_recursive_read(model: ir.Model, prop: ir.Property) -> PropertyResult | None:
    """`no-recursive-read` for every N and every interleaving at once, from the
    lock graph's walk of every code path, or None when this check cannot say.

    The event fires at `check P: !held(self)` in a read acquire, when the
    acquiring task already holds `self`. A task's held locks change only by its
    own steps (an IPI handler runs in its sender's context, on its sender's
    holds), so they are those of its code path: the walk's held set at the call
    (the callers' holds and `held_at`, plus, for kthread work, the locks lockdep
    sees it run under, which `held()` counts too). No read acquire of a lock in
    that set on any path: no schedule fires the event, whatever N and whatever
    the data (every branch is taken as possible). Needed as well: the roots are
    balanced (`_balanced`: else a later iteration or work starts holding a
    lock) and every lock the walk meets has a name."""
    checked: set[str] = set()         # the lock classes whose read acquire checks the event
    for f in model.functions:
        for st in walk_stmts(f.body):
            if isinstance(st, ir.Check) and st.prop == prop.name:
                if not (f.role == "acquire" and f.mode == "read" and f.lock_class is not None and f.params
                        and _not_held_self(st.cond, f.params[0])):
                    return None
                checked.add(f.lock_class)
    if not checked or prop.name == ir.EXIT_EVENT:
        return None     # fired by something other than a `check` of that shape (no-lock-at-exit: by the engines)
    if not _balanced(model):
        return None
    g = LockGraph(model)
    if g.unresolved:
        return None
    for e in g.typed.values():
        if e.held == e.lock and e.mode == "read" and g.classes.get(e.lock) in checked:
            return None
    return PropertyResult(prop.name, prop.kind.value, Verdict.HOLDS_STATIC, "static", 0,
                          reason="no code path takes a read lock its task holds")


def _not_held_self(e: ir.Expr, self_param: ir.Local) -> bool:
    match e:
        case ir.Unary(op="!", operand=ir.Builtin(op=ir.BuiltinOp.HELD, args=(ir.LocalRef(local=loc),), mode=None)):
            return loc.slot == self_param.slot
    return False


def check_asserted_held(model: ir.Model, prop: ir.Property) -> PropertyResult | None:
    """An event whose every `check` is `held(L)` for a named lock L
    (`locks-asserted`, lockdep_assert_cpus_held()) for every N: at every such
    check, on every code path that reaches it, its task surely holds L. A
    must-walk from the roots (an actor's body holding nothing; a kthread's work
    holding what lockdep sees it run under, which `held()` counts): the locks
    surely held at a statement are those surely held at its function's entry,
    less what the path released from the caller (a lock of an array, or one
    passed through a parameter the walk cannot name, counts as releasing all of
    its kind), plus the named locks the path took. None when a check is not of
    that shape, a root is not balanced (`_balanced`), or a check may run
    without L."""
    locks = {lk.name for lk in model.locks if lk.array is None}
    asserted: dict[int, str] = {}
    for f in model.functions:
        for st in walk_stmts(f.body):
            if isinstance(st, ir.Check) and st.prop == prop.name:
                c = st.cond
                shaped = (isinstance(c, ir.Builtin) and c.op is ir.BuiltinOp.HELD and c.mode is None
                          and len(c.args) == 1 and isinstance(c.args[0], ir.LockRef) and c.args[0].lock.name in locks)
                if f.role is not None or not shaped:
                    return None         # (the walk below does not enter acquires and releases)
                asserted[st.sid] = c.args[0].lock.name
    for a in model.actors:
        if any(isinstance(st, ir.Check) and st.prop == prop.name for st in walk_stmts(a.body)):
            return None     # in an actor's own body: not walked below
    if not asserted or not _balanced(model):
        return None
    la = _analysis(model)
    graph = CallGraph(model)
    fns = {f.name: f for f in model.functions}
    class_of = {lk.name: lk.array or lk.name for lk in model.locks}

    def name_of(term, binding) -> str | None:
        kind, v = term
        if kind == "L":
            return str(v)
        if kind == "P":
            return binding.get(v)
        return None                      # an array's lock: which one is not known here

    def surely(entry: frozenset, state, binding) -> frozenset:
        h, r = state
        out = set(entry)
        for term, _ in r:
            n = name_of(term, binding)
            if n is not None:
                out.discard(n)
            elif term[0] == "A":
                out = {x for x in out if class_of.get(x) != term[1]}
            else:
                out = set()
        out |= {n for term, _ in h if (n := name_of(term, binding)) is not None}
        return frozenset(out)

    todo = [(name, root.body, held, ()) for name, root, held in _roots(model, graph)]
    seen: set = set()
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        owner, body, entry, bind_t = item
        binding = dict(bind_t)
        for st in walk_stmts(body):
            at = la.paths_at.get(st.sid)
            if at is None or at[0] != owner:
                continue                 # no path reaches it (after a `return`)
            states = at[1]
            if st.sid in asserted:
                if any(asserted[st.sid] not in surely(entry, x, binding) for x in states):
                    return None
                continue
            if not isinstance(st, ir.Call) or st.kthread is not None:
                continue
            for callee in graph.targets(owner, st.callee):
                g = fns.get(callee)
                if g is None or g.role is not None:
                    continue             # an acquire or release: in the path states already
                sub = []
                for prm, arg in zip(g.params, st.args):
                    if isinstance(prm.type, ir.LockType):
                        n = arg.lock.name if isinstance(arg, ir.LockRef) and arg.lock.array is None else \
                            binding.get(arg.local.slot) if isinstance(arg, ir.LocalRef) else None
                        if n is not None:
                            sub.append((prm.slot, n))
                for x in states:
                    todo.append((callee, g.body, surely(entry, x, binding), tuple(sorted(sub))))
    return PropertyResult(prop.name, prop.kind.value, Verdict.HOLDS_STATIC, "static", 0,
                          reason="every code path that asserts a lock holds it")
