"""The IR lowered once to control flow, for every engine: one `Cfg` per function
and per actor body, a list of `Node`s with a typed `Op`.

What this layer fixes, so that the reference interpreter (interp/program.py) and
the encoder (encode/flatten.py) cannot drift apart:
- NOTE(steps): which statements are steps of their own, and the control glue
  (jumps, the end of an `ipi`, the end of a body) that runs with the step before;
- the hidden locals both need (the kthread a hand-off went to, a range loop's
  bound), numbered after the function's own locals;
- NOTE(blocks): each node's mover kind and whether it may block, from the one
  table in model/blocks.py: a hand-off is a non-mover, collecting its result a
  right mover, a loop advance starts a new block unless only invisible statements
  came before it (`cut`), and a repeating actor's restart always does (`restart`;
  the block it starts is as what the first statement is).
Each engine keeps its own *statement* semantics (evaluating and encoding the
nodes), so that replaying one engine's witness on the other still checks both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from tdxproof.model import ir


class Op(IntEnum):
    ASSIGN = 0
    ANY = 1          # an assignment of `any`: one outcome per value
    CALL = 2
    CALLIN = 3       # hand a call to a kthread (`f() in cpuhp[c]`)
    CALLWAIT = 4     # collect its result
    BRANCH = 5       # `if`: falls through to `then`, `target` is `else`
    CHOICE = 6       # `may fail`, `either`: `choices` are the branch entries
    RETURN = 7
    AWAIT = 8
    REQUIRE = 9
    ATOMIC = 10      # an `atomic` block, or a lone `hold`/`unhold`
    CHECK = 11       # `check`, and `cover` statements
    FOR_FIRST = 12   # a `for cpu` loop's first test: `target` is the exit
    FOR_NEXT = 13    # its advance: `alt` is the body, `target` the exit
    RANGE_FIRST = 14
    RANGE_NEXT = 15
    PICK = 16
    IPI_ENTER = 17
    IPI_EXIT = 18    # glue
    JUMP = 19        # glue
    END = 20         # glue: falling off the end of a body


GLUE = frozenset({Op.IPI_EXIT, Op.JUMP, Op.END})
BRANCHING = frozenset({Op.BRANCH, Op.FOR_FIRST, Op.FOR_NEXT, Op.RANGE_FIRST, Op.RANGE_NEXT, Op.JUMP})
MAY_BLOCK = frozenset({Op.AWAIT, Op.REQUIRE, Op.CALLIN, Op.CALLWAIT, Op.IPI_ENTER, Op.PICK})


@dataclass
class Node:
    op: Op
    stmt: ir.Stmt | None       # the statement (None for glue a statement does not own)
    span: object = None
    target: int = -1           # else / loop exit / jump target (jumps threaded away)
    alt: int = -1              # loop advance: the body's first node
    choices: tuple[int, ...] = ()   # CHOICE: the entry of each branch, in label order
    hidden: int = -1           # CALLIN/CALLWAIT: slot of the target context; RANGE_*: slot of the bound
    mover: str = "N"           # B | R | L | N | cut | restart (NOTE(blocks))
    first: str | None = None   # a "restart" starts a block as this mover (its statement's own)
    blocking: bool = False     # may block or idle: only ever the first statement of a block

    @property
    def sid(self) -> int:
        return self.stmt.sid if self.stmt is not None and self.op not in GLUE else 0


@dataclass
class Cfg:
    name: str                  # function name, or "actor NAME"
    fn: ir.Function | None
    actor: ir.Actor | None
    nodes: list[Node]
    nlocals: int               # the body's locals, then the hidden ones
    local_names: list[str] = field(default_factory=list)

    def successors(self, pc: int) -> list[int]:
        """The nodes control may reach next (within the body; calls not followed)."""
        n = self.nodes[pc]
        match n.op:
            case Op.RETURN | Op.END:
                return []
            case Op.JUMP:
                return [n.target]
            case Op.BRANCH | Op.FOR_FIRST | Op.RANGE_FIRST:
                return [pc + 1, n.target]
            case Op.FOR_NEXT | Op.RANGE_NEXT:
                return [n.alt, n.target]
            case Op.CHOICE:
                return list(n.choices)
        return [pc + 1]


def control_flow(model: ir.Model) -> dict[str, Cfg]:
    """Every function's and actor body's control flow, by name (`actor NAME`)."""
    movers = dict(model.movers)
    out: dict[str, Cfg] = {}
    for f in model.functions:
        out[f.name] = _Builder(f.name, f, None, f.locals, movers).build(f.body, f.span, repeats=False)
    for a in model.actors:
        name = f"actor {a.name}"
        out[name] = _Builder(name, None, a, a.locals, movers).build(a.body, None, repeats=a.repeat is not None)
    return out


def return_is_visible(mover: str, into_result_sid: int | None, model: ir.Model) -> bool:
    """NOTE(blocks): returning from kthread work (no caller in this context), or
    into a result that others can see, is a visible step even if the `return`
    itself touches nothing shared."""
    return mover != "B" or into_result_sid is None or into_result_sid not in model.invisible_results


class _Builder:
    def __init__(self, name: str, fn: ir.Function | None, actor: ir.Actor | None,
                 locals_: tuple[ir.Local, ...], movers: dict[int, str]):
        self.cfg = Cfg(name, fn, actor, [], len(locals_), [l.name for l in locals_])
        self.movers = movers
        self.breaks: list[list[Node]] = []

    def build(self, body: tuple[ir.Stmt, ...], end_span, *, repeats: bool) -> Cfg:
        self._block(body)
        self._emit(Op.END, None, end_span)
        nodes = self.cfg.nodes
        for n in nodes:
            self._kind(n)
        if repeats and nodes:
            nodes[0].first, nodes[0].mover = nodes[0].mover, "restart"
        self._thread_jumps()
        return self.cfg

    # ---- NOTE(blocks): the one place movers and blocking are decided per node
    def _kind(self, n: Node) -> None:
        n.mover = self.movers.get(n.sid, "N") if n.sid else "N"
        if n.op is Op.CALLIN:
            n.mover = "N"
        elif n.op is Op.CALLWAIT:
            n.mover = "R"          # collecting the work's result, like taking a lock
        elif n.op in (Op.FOR_NEXT, Op.RANGE_NEXT):
            n.mover = "cut"        # loop advances are boundaries: blocks are loop-free
        # an `atomic` whose first statement is `await` (blocks) or `require` (idles) is guarded
        guarded = isinstance(n.stmt, ir.Atomic) and bool(n.stmt.body) \
            and isinstance(n.stmt.body[0], (ir.Await, ir.Require))
        n.blocking = n.op in MAY_BLOCK or (n.op is Op.ATOMIC and guarded)

    # ---- layout
    def _emit(self, op: Op, stmt: ir.Stmt | None, span=None) -> Node:
        n = Node(op, stmt, span if span is not None or stmt is None else stmt.span)
        self.cfg.nodes.append(n)
        return n

    def _pc(self) -> int:
        return len(self.cfg.nodes)

    def _hidden(self, label: str) -> int:
        slot = self.cfg.nlocals
        self.cfg.nlocals += 1
        self.cfg.local_names.append(label)
        return slot

    def _block(self, stmts: tuple[ir.Stmt, ...]) -> None:
        for s in stmts:
            self._stmt(s)

    def _stmt(self, s: ir.Stmt) -> None:
        match s:
            case ir.Assign(value=ir.AnyValue()):
                self._emit(Op.ANY, s)
            case ir.Assign():
                self._emit(Op.ASSIGN, s)
            case ir.Call(kthread=None):
                self._emit(Op.CALL, s)
            case ir.Call(kthread=k):
                slot = self._hidden(f"<{k.name} target>")
                self._emit(Op.CALLIN, s).hidden = slot
                self._emit(Op.CALLWAIT, s).hidden = slot
            case ir.If(then=t, other=o):
                br = self._emit(Op.BRANCH, s)
                self._block(t)
                if o:
                    j = self._emit(Op.JUMP, None)
                    br.target = self._pc()
                    self._block(o)
                    j.target = self._pc()
                else:
                    br.target = self._pc()
            case ir.Choice(branches=branches):
                ch = self._emit(Op.CHOICE, s)
                entries, jumps = [], []
                for br in branches:
                    entries.append(self._pc())
                    self._block(br)
                    jumps.append(self._emit(Op.JUMP, None))
                ch.choices = tuple(entries)
                for j in jumps:
                    j.target = self._pc()
            case ir.Return():
                self._emit(Op.RETURN, s)
            case ir.Await():
                self._emit(Op.AWAIT, s)
            case ir.Require():
                self._emit(Op.REQUIRE, s)
            case ir.Atomic() | ir.Hold():
                self._emit(Op.ATOMIC, s)
            case ir.Check():
                self._emit(Op.CHECK, s)
            case ir.ForCpu(body=body):
                first = self._emit(Op.FOR_FIRST, s)
                self._loop(first, body, Op.FOR_NEXT, s)
            case ir.ForRange(var=var, body=body):
                first = self._emit(Op.RANGE_FIRST, s)
                first.hidden = self._hidden(f"<{var.name} bound>")
                self._loop(first, body, Op.RANGE_NEXT, s)
            case ir.Pick(body=body):
                self._emit(Op.PICK, s)
                self._block(body)
            case ir.Break():
                self.breaks[-1].append(self._emit(Op.JUMP, None, s.span))
            case ir.Ipi(body=body):
                self._emit(Op.IPI_ENTER, s)
                self._block(body)
                self._emit(Op.IPI_EXIT, s)
            case _:
                raise AssertionError(s)

    def _loop(self, first: Node, body: tuple[ir.Stmt, ...], op: Op, s: ir.Stmt) -> None:
        self.breaks.append([])
        body_start = self._pc()
        self._block(body)
        nxt = self._emit(op, s)
        nxt.hidden = first.hidden
        nxt.alt = body_start
        exit_pc = self._pc()
        first.target = nxt.target = exit_pc
        for j in self.breaks.pop():
            j.target = exit_pc

    def _thread_jumps(self) -> None:
        """Every target goes straight to the first node that is not a jump."""
        nodes = self.cfg.nodes

        def final(pc: int) -> int:
            seen = 0
            while nodes[pc].op is Op.JUMP and seen < len(nodes):
                pc = nodes[pc].target
                seen += 1
            return pc

        for n in nodes:
            if n.op in BRANCHING and n.target >= 0:
                n.target = final(n.target)
            if n.alt >= 0:
                n.alt = final(n.alt)
            if n.op is Op.CHOICE:
                n.choices = tuple(final(t) for t in n.choices)
