"""Flatten each context's code into a control-flow automaton by inlining.

Built from the IR alone. One node per statement-level step, with the same step
and block rules as the reference semantics (NOTE(steps), NOTE(blocks)): control
glue (jumps, the end of an `ipi`, falling off a void function) has no node of its
own. Calls are inlined (the call graph is acyclic); an indirect call has one
inlined callee per function its pointer may hold (points-to). Locals of inlined
instances are laid out like a stack, so sibling calls share slots. A kthread
family's automaton holds every function any caller may hand to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tdxproof.model import ir
from tdxproof.model.wellformed import CallGraph

GLUE = ("ipi_exit", "end")


@dataclass
class Node:
    id: int
    op: str                    # assign any call callin callwait branch choice return await require atomic
                               # check for_first for_next range_first range_next pick ipi_enter ipi_exit end
    stmt: ir.Stmt | None
    frame: int                 # base of this instance's locals in the context's locals
    fn: ir.Function | None     # the inlined function (None: an actor body)
    owner: str                 # call-graph owner name (function name or "actor NAME")
    succ: list[int] = field(default_factory=list)     # fall-through / then / loop body ...
    target: int = -1           # else / loop exit
    alt: int = -1              # loop advance: the body's first node
    choices: list[tuple[str, int]] = field(default_factory=list)   # choice: (label, node)
    callees: list[tuple[int, int, int]] = field(default_factory=list)  # call: (fn index, entry node, frame)
    work: list[tuple[int, str]] = field(default_factory=list)      # callin: (fn index, kthread family)
    hidden: int = -1           # callin: slot remembering the target context; range: the bound slot
    ret: tuple[int, ir.LValue | None, int, int] | None = None  # return/end: (caller's next, result, caller frame, call sid)
    mover: str = "N"           # B | R | L | N | cut (NOTE(blocks))
    first: str | None = None   # a "cut" that starts a block there as this mover (an actor's restart)
    blocking: bool = False     # may block or idle: only the first statement of a block, or after invisible ones
    acquire: tuple[str | None, int] | None = None   # inside an acquire op: (mode, abs slot of `self`)
    consts: dict[int, int] = field(default_factory=dict)   # this instance's parameters known at flatten time


@dataclass
class Automaton:
    name: str
    kind: str                  # actor | kthread
    nodes: list[Node]
    nlocals: int
    entry: int = -1            # actor: first node of the body
    entries: dict[int, int] = field(default_factory=dict)   # kthread: fn index -> entry node
    repeat: int | None = None
    local_names: dict[int, str] = field(default_factory=dict)


class Flattener:
    def __init__(self, model: ir.Model):
        self.model = model
        self.graph = CallGraph(model)
        self.fns = {f.name: f for f in model.functions}
        self.by_index = {f.index: f for f in model.functions}
        self.work: dict[str, set[int]] = {k.name: set() for k in model.kthreads}
        self.movers = dict(model.movers)

    # ------------------------------------------------------------ per automaton
    def build_all(self) -> tuple[list[Automaton], dict[str, Automaton]]:
        actors = [self._actor(a) for a in self.model.actors]
        kthreads: dict[str, Automaton] = {}
        while True:
            pending = {k: ws for k, ws in self.work.items()
                       if k not in kthreads or set(kthreads[k].entries) != ws}
            if not pending:
                break
            for k, ws in pending.items():
                kthreads[k] = self._kthread(k, sorted(ws))
        return actors, kthreads

    def _actor(self, a: ir.Actor) -> Automaton:
        self.nodes: list[Node] = []
        self.max_local = len(a.locals)
        self.names: dict[int, str] = {l.slot: l.name for l in a.locals}
        entry_holder: list[int] = []
        self._body(a.body, None, f"actor {a.name}", 0, len(a.locals), None, entry_holder)
        auto = Automaton(a.name, "actor", self.nodes, self.max_local, entry=entry_holder[0], repeat=a.repeat,
                         local_names=self.names)
        if a.repeat is not None:
            # a repeating actor's body starts a new block, as what its first statement is
            entry = self.nodes[auto.entry]
            entry.first, entry.mover = entry.mover, "cut"
        return auto

    def _kthread(self, name: str, work: list[int]) -> Automaton:
        self.nodes = []
        self.max_local = 0
        self.names = {}
        entries = {}
        for idx in work:
            f = self.by_index[idx]
            holder: list[int] = []
            self._instance(f, 0, None, holder)
            entries[idx] = holder[0]
        return Automaton(name, "kthread", self.nodes, self.max_local, entries=entries, local_names=self.names)

    # ------------------------------------------------------------ instances
    def _instance(self, f: ir.Function, frame: int, ret: tuple[int, ir.LValue | None, int, int] | None,
                  entry_holder: list[int], inherited: tuple[str | None, int] | None = None,
                  consts: dict[int, int] | None = None) -> None:
        for l in f.locals:
            self.names.setdefault(frame + l.slot, l.name)
        self._body(f.body, f, f.name, frame, len(f.locals), ret, entry_holder, inherited, consts or {})

    def _body(self, body: tuple[ir.Stmt, ...], fn: ir.Function | None, owner: str, frame: int, nloc: int,
              ret: tuple[int, ir.LValue | None, int, int] | None, entry_holder: list[int],
              inherited: tuple[str | None, int] | None = None, consts: dict[int, int] | None = None) -> None:
        """Lay out one instance: its nodes, then an `end` node for falling off the end."""
        self.cur = _Inst(fn, owner, frame, nloc, ret)
        self.cur.consts = consts or {}
        start = len(self.nodes)
        acquire = inherited   # inside an acquire operation, callees (might_sleep()) count as inside it
        if fn is not None and fn.role == "acquire":
            acquire = (fn.mode, frame + 0)
        self.cur.acquire = acquire
        patch_calls: list[Node] = []
        self.cur.calls = patch_calls
        self._block(body)
        end = self._node("end", None)
        end.ret = ret
        entry_holder.append(start)
        self._resolve(start)
        inst = self.cur
        self.max_local = max(self.max_local, frame + inst.nloc)
        # inline callees after this instance's nodes exist (their frames start above ours)
        for call in patch_calls:
            self._link_call(call, frame + inst.nloc)

    def _node(self, op: str, stmt: ir.Stmt | None) -> Node:
        n = Node(len(self.nodes), op, stmt, self.cur.frame, self.cur.fn, self.cur.owner, acquire=self.cur.acquire,
                 consts=self.cur.consts)
        if stmt is not None and op not in GLUE:
            n.mover = self.movers.get(stmt.sid, "N")
            if op == "callin":
                n.mover = "N"
            elif op == "callwait":
                n.mover = "R"          # collecting the work's result, like taking a lock
            elif op in ("for_next", "range_next"):
                n.mover = "cut"        # loop advances are boundaries: blocks are loop-free
            first_await = isinstance(stmt, ir.Atomic) and stmt.body and isinstance(stmt.body[0], ir.Await)
            n.blocking = op in ("await", "require", "callin", "callwait", "ipi_enter", "pick") or (
                op == "atomic" and bool(first_await))
        self.nodes.append(n)
        return n

    def _hidden(self, label: str) -> int:
        slot = self.cur.nloc
        self.cur.nloc += 1
        self.names.setdefault(self.cur.frame + slot, label)
        return slot

    def _block(self, stmts: tuple[ir.Stmt, ...]) -> None:
        for s in stmts:
            self._stmt(s)

    def _stmt(self, s: ir.Stmt) -> None:
        match s:
            case ir.Assign(value=ir.AnyValue()):
                self._node("any", s)
            case ir.Assign():
                self._node("assign", s)
            case ir.Call(kthread=None):
                n = self._node("call", s)
                self.cur.calls.append(n)
            case ir.Call(kthread=k):
                n = self._node("callin", s)
                n.hidden = self._hidden(f"<{k.name} target>")
                for callee in self.graph.targets(self.cur.owner, s.callee):
                    idx = self.fns[callee].index
                    n.work.append((idx, k.name))
                    self.work[k.name].add(idx)
                w = self._node("callwait", s)
                w.hidden = n.hidden
            case ir.If(then=t, other=o):
                br = self._node("branch", s)
                self._block(t)
                if o:
                    j = self._jump()
                    br.target = len(self.nodes)
                    self._block(o)
                    j.target = len(self.nodes)
                else:
                    br.target = len(self.nodes)
            case ir.Choice(labels=labels, branches=branches):
                ch = self._node("choice", s)
                jumps = []
                for label, br in zip(labels, branches):
                    ch.choices.append((label, len(self.nodes)))
                    self._block(br)
                    jumps.append(self._jump())
                for j in jumps:
                    j.target = len(self.nodes)
            case ir.Return():
                r = self._node("return", s)
                r.ret = self.cur.ret
                # returning from kthread work, or into a visible result, is visible
                if r.mover == "B" and (r.ret is None or r.ret[3] not in self.model.invisible_results):
                    r.mover = "N"
            case ir.Await():
                self._node("await", s)
            case ir.Require():
                self._node("require", s)
            case ir.Atomic() | ir.Hold():
                self._node("atomic", s)
            case ir.Check():
                self._node("check", s)
            case ir.ForCpu(body=body):
                first = self._node("for_first", s)
                self._loop(first, body, "for_next", s)
            case ir.ForRange(body=body):
                first = self._node("range_first", s)
                first.hidden = self._hidden(f"<{s.var.name} bound>")
                self._loop(first, body, "range_next", s)
            case ir.Pick(body=body):
                self._node("pick", s)
                self._block(body)
            case ir.Break():
                self.cur.breaks[-1].append(self._jump())
            case ir.Ipi(body=body):
                self._node("ipi_enter", s)
                self._block(body)
                self._node("ipi_exit", s)
            case _:
                raise AssertionError(s)

    def _jump(self) -> Node:
        n = Node(len(self.nodes), "jump", None, self.cur.frame, self.cur.fn, self.cur.owner)
        self.nodes.append(n)
        return n

    def _loop(self, first: Node, body: tuple[ir.Stmt, ...], op: str, s: ir.Stmt) -> None:
        self.cur.breaks.append([])
        body_start = len(self.nodes)
        self._block(body)
        nxt = self._node(op, s)
        nxt.hidden = first.hidden
        nxt.alt = body_start
        exit_ = len(self.nodes)
        first.target = nxt.target = exit_
        for j in self.cur.breaks.pop():
            j.target = exit_

    def _resolve(self, start: int) -> None:
        """Fall-through successors, with jumps threaded away."""
        def final(i: int) -> int:
            while self.nodes[i].op == "jump":
                i = self.nodes[i].target
            return i

        for n in self.nodes[start:]:
            if n.op == "jump":
                continue
            if n.op not in ("return", "end"):
                n.succ = [final(n.id + 1)]
            if n.target >= 0:
                n.target = final(n.target)
            if n.alt >= 0:
                n.alt = final(n.alt)
            n.choices = [(label, final(t)) for label, t in n.choices]

    def _link_call(self, call: Node, callee_frame: int) -> None:
        s = call.stmt
        assert isinstance(s, ir.Call)
        ret = (call.succ[0], s.result, call.frame, s.sid)
        targets = self.graph.targets(call.owner, s.callee)
        known = _const(s.callee, call.consts)
        if known is not None:
            # partial evaluation: a call through a pointer known here has one target
            targets = [t for t in targets if self.fns[t].index + 1 == known]
        for callee in targets:
            f = self.fns[callee]
            assigned = {st.target.local.slot for st in _walk(f.body)
                        if isinstance(st, ir.Assign) and isinstance(st.target, ir.LocalRef)}
            consts = {p.slot: v for p, a in zip(f.params, s.args)
                      if p.slot not in assigned and (v := _const(a, call.consts)) is not None}
            holder: list[int] = []
            saved = self.cur
            self._instance(f, callee_frame, ret, holder, call.acquire, consts)
            self.cur = saved
            call.callees.append((f.index, holder[0], callee_frame))


def _const(e: ir.Expr, consts: dict[int, int]) -> int | None:
    """The value of an argument known when flattening: literals, functions, locks,
    and parameters the caller's instance knows."""
    match e:
        case ir.Lit(value=v):
            return v
        case ir.FnRef(index=i):
            return i + 1
        case ir.LockRef(lock=lk):
            return lk.index
        case ir.LocalRef(local=l):
            return consts.get(l.slot)
    return None


def _walk(body):
    from tdxproof.model.wellformed import walk_stmts
    return walk_stmts(body)


@dataclass
class _Inst:
    fn: ir.Function | None
    owner: str
    frame: int
    nloc: int
    ret: tuple[int, ir.LValue | None, int, int] | None
    acquire: tuple[str | None, int] | None = None
    calls: list[Node] = field(default_factory=list)
    breaks: list[list[Node]] = field(default_factory=list)
    consts: dict[int, int] = field(default_factory=dict)


def flatten(model: ir.Model) -> tuple[list[Automaton], dict[str, Automaton]]:
    return Flattener(model).build_all()
