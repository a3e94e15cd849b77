"""Flatten each context's code into a control-flow automaton by inlining.

Built from the IR's shared control flow (model/cfg.py: the steps, the glue, the
hidden locals, every node's mover kind and whether it may block, the same as the
reference interpreter's by construction), one copy per inlined instance. Calls
are inlined (the call graph is acyclic); an indirect call has one inlined callee
per function its pointer may hold (points-to). Locals of inlined instances are
laid out like a stack, so sibling calls share slots. A kthread family's
automaton holds every function any caller may hand to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tdxproof.model import ir
from tdxproof.model.cfg import BRANCHING, Cfg, Op, control_flow, return_is_visible
from tdxproof.model.wellformed import CallGraph

OPS = {op: op.name.lower() for op in Op}   # the node kinds symbolic.py executes


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
    mover: str = "N"           # B | R | L | N | cut | restart (NOTE(blocks))
    first: str | None = None   # a "restart" starts its block as this mover
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
    # each node's `function:line` and how often it occurs (engines/induction.py _labels())
    _labels: tuple | None = field(default=None, repr=False, compare=False)


class Flattener:
    def __init__(self, model: ir.Model):
        self.model = model
        self.graph = CallGraph(model)
        self.fns = {f.name: f for f in model.functions}
        self.by_index = {f.index: f for f in model.functions}
        self.work: dict[str, set[int]] = {k.name: set() for k in model.kthreads}
        self.cfgs = control_flow(model)

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
        self._body(self.cfgs[f"actor {a.name}"], None, f"actor {a.name}", 0, None, entry_holder)
        return Automaton(a.name, "actor", self.nodes, self.max_local, entry=entry_holder[0], repeat=a.repeat,
                         local_names=self.names)

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
        self._body(self.cfgs[f.name], f, f.name, frame, ret, entry_holder, inherited, consts or {})

    def _body(self, cfg: Cfg, fn: ir.Function | None, owner: str, frame: int,
              ret: tuple[int, ir.LValue | None, int, int] | None, entry_holder: list[int],
              inherited: tuple[str | None, int] | None = None, consts: dict[int, int] | None = None) -> None:
        """Lay out one instance of a body: its control flow (model/cfg.py) copied at
        this frame, then its callees inlined above it."""
        start = len(self.nodes)
        consts = consts or {}
        for i, name in enumerate(cfg.local_names):
            self.names.setdefault(frame + i, name)
        acquire = inherited   # inside an acquire operation, callees (might_sleep()) count as inside it
        if fn is not None and fn.role == "acquire":
            acquire = (fn.mode, frame + 0)
        patch_calls: list[Node] = []
        for i, c in enumerate(cfg.nodes):
            n = Node(start + i, OPS[c.op], c.stmt, frame, fn, owner, acquire=acquire, consts=consts,
                     mover=c.mover, first=c.first, blocking=c.blocking, hidden=c.hidden)
            if c.op in BRANCHING and c.target >= 0:
                n.target = start + c.target
            if c.alt >= 0:
                n.alt = start + c.alt
            if c.op is Op.CHOICE:
                n.choices = [(label, start + t) for label, t in zip(c.stmt.labels, c.choices)]
            if c.op in (Op.RETURN, Op.END):
                n.ret = ret
            if c.op is Op.RETURN and n.mover == "B" and return_is_visible(n.mover, ret[3] if ret else None,
                                                                           self.model):
                n.mover = "N"
            if c.op is Op.CALL:
                patch_calls.append(n)
            if c.op is Op.CALLIN:
                k = c.stmt.kthread
                for callee in self.graph.targets(owner, c.stmt.callee):
                    idx = self.fns[callee].index
                    n.work.append((idx, k.name))
                    self.work[k.name].add(idx)
            self.nodes.append(n)
        entry_holder.append(start)
        self._resolve(start)
        self.max_local = max(self.max_local, frame + cfg.nlocals)
        # inline callees after this instance's nodes exist (their frames start above ours)
        for call in patch_calls:
            self._link_call(call, frame + cfg.nlocals)

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
            self._instance(f, callee_frame, ret, holder, call.acquire, consts)
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
        case ir.LockIndex(locks=elems, index=i):
            k = _const(i, consts)
            return elems[0].index + k if k is not None else None
        case ir.LocalRef(local=l):
            return consts.get(l.slot)
    return None


def _walk(body):
    from tdxproof.model.wellformed import walk_stmts
    return walk_stmts(body)


def flatten(model: ir.Model) -> tuple[list[Automaton], dict[str, Automaton]]:
    return Flattener(model).build_all()
