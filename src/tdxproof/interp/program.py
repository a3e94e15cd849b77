"""Compile a Model, for a given number of CPUs, into flat code the interpreter runs.

The control flow is the shared one (model/cfg.py, NOTE(steps) there): one node
per step (assignments, calls, `if` conditions, choices, `await`, `require`,
`check`, loop advances, `ipi` entry, `return`, whole `atomic` blocks) and the glue
that runs with the step before it (jumps, the end of an `ipi`, the end of a
body). This module compiles each node's statement to closures over the state.

Values are ints: bool 0/1, cpu numbers, enum member indexes, locks by index,
functions by index + 1 (0 is null).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from tdxproof.model import ir
from tdxproof.model.cfg import Cfg, Node, Op, control_flow
from tdxproof.model.wellformed import sub_exprs, walk_exprs, walk_stmts
from tdxproof.source import Span

# opcodes: the shared control flow's (model/cfg.py), as ints for the hot loop
ASSIGN, ANY, CALL, CALLIN, CALLWAIT, BRANCH, CHOICE, RETURN, AWAIT, REQUIRE, ATOMIC, CHECK, \
    FOR_FIRST, FOR_NEXT, RANGE_FIRST, RANGE_NEXT, PICK, IPI_ENTER, IPI_EXIT, JUMP, END = (int(o) for o in Op)
FREE = {IPI_EXIT, JUMP, END}
OPNAMES = ("assign", "any", "call", "callin", "callwait", "branch", "choice", "return", "await", "require",
           "atomic", "check", "for", "for-next", "range", "range-next", "pick", "ipi", "ipi-exit", "jump",
           "end")

MODE_CODE = {None: 0, "read": 1, "write": 2}
MODE_NAME = {0: None, 1: "read", 2: "write"}


class ModelError(Exception):
    """The policy did something the kernel could not (a value out of range, a call
    through a null pointer): a user mistake found only by running the model."""

    def __init__(self, message: str, span: Span | None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.chain: tuple[str, ...] = ()   # where it happened: the innermost function first


@dataclass
class Instr:
    op: int
    span: Span | None
    sid: int = 0
    a: Any = None          # op-specific payload
    b: Any = None
    c: Any = None
    d: Any = None
    target: int = -1       # jump / else / exit target
    alt: int = -1          # loop advance: the body's first pc
    uses: frozenset[int] = frozenset()
    defs: frozenset[int] = frozenset()
    result_local: bool = True  # CALL: the result (if any) goes to a local
    mover: str = "N"       # NOTE(blocks): B (invisible), R (acquire), L (release), N; "cut", "restart": boundaries
    blocking: bool = False # may block or idle: only ever the first statement of a block
    first: str | None = None  # a "restart" starts its block as this mover
    # NOTE(blocks) precomputed for the hot loop (Program._block_tables, from
    # model/blocks.py's rules): the phase of a block this statement starts, and
    # for each phase of a block it might join (LEAD, 0, 1 at index phase + 1)
    # the phase after it or None (it ends the block before it); the `_vis`
    # pair is for a `return` whose mover is B but that is visible
    # (step.Machine.visible_return())
    phase0: int = 0
    joins: tuple = (None, None, None)
    phase0_vis: int = 0
    joins_vis: tuple = (None, None, None)
    ret_b: bool = False    # RETURN with mover B: visible or not depends on the caller


@dataclass
class Code:
    name: str              # function name, or "actor NAME"
    fn: ir.Function | None
    nlocals: int
    instrs: list[Instr] = field(default_factory=list)
    live: list[tuple[bool, ...]] = field(default_factory=list)  # live-in mask per pc
    dead: list[tuple[int, ...]] = field(default_factory=list)   # the slots not live-in, per pc
    local_names: list[str] = field(default_factory=list)
    module: str | None = None
    cfg: Cfg | None = None     # the shared control flow it was compiled from
    bits: list[int] = field(default_factory=list)   # NOTE(any-order): the loops' hidden locals


@dataclass
class ContextSpec:
    name: str              # column name in witnesses: `vt_init`, `vm#2`, `cpuhp/1`
    kind: str              # actor | kthread
    index: int
    home_cpu: int
    actor: ir.Actor | None = None
    kthread: ir.Kthread | None = None
    code: int = -1         # actor body code id
    lockdep_held: tuple[int, ...] = ()


class Program:
    def __init__(self, model: ir.Model, cpus: int | None = None, any_order: bool = False):
        self.model = model
        self.n = cpus if cpus is not None else model.cpus
        # topology_physical_package_id() of each CPU (pkg(c)); past the policy's `cpus`
        # the packages are spread evenly
        self.pkg = [model.package_of(c) if c < model.cpus else c * model.packages // self.n for c in range(self.n)]
        # NOTE(any-order): docs/symmetry.md's semantics O, for the symmetric search
        # only: a `for cpu` loop visits its CPUs in any order, keeping the CPUs it
        # passed in a hidden local (interp/symmetry.py, step._x_for_any)
        self.any_order = any_order
        self.order_override: dict[int, Callable] = {}   # id() of a `j < k` -> its any-order reading
        self._bits: dict[int, int] = {}                  # `for cpu` sid -> its hidden local, in this body
        self._loop_stmt: dict[int, ir.ForCpu] = {}
        if any_order:
            from tdxproof.interp.symmetry import loop_orders
            self.orders = loop_orders(model)
        self.fn_by_index = {f.index: f for f in model.functions}
        self.fn_count = len(model.functions)
        # ---- global storage layout
        self.var_off: dict[str, int] = {}
        self.var_size: dict[str, int] = {}
        size = 0
        for v in model.vars:
            self.var_off[v.name] = size
            n = self.n if v.per_cpu else (len(v.dim.members) if v.dim is not None else 1)
            self.var_size[v.name] = n
            size += n
        self.field_off: dict[tuple[int, str], int] = {}
        self.classes = {c.name: c for c in model.lock_classes}
        for lock in model.locks:
            for f in self.classes[lock.cls].fields:
                self.field_off[(lock.index, f.name)] = size
                size += 1
        self.nglobals = size
        self.lock_names = [lk.name for lk in model.locks]
        self.lock_index = {lk.name: lk.index for lk in model.locks}
        self.prop_index = {p.name: i for i, p in enumerate(model.properties)}
        self.movers = dict(model.movers)
        # order rules: taking lock `first` while holding `second` breaks property `prop`
        self.order_rules: dict[int, list[tuple[int, int]]] = {}
        for p in model.properties:
            if p.kind is ir.PropKind.ORDER:
                first, second = (self.lock_index[n] for n in p.forbidden)
                self.order_rules.setdefault(first, []).append((second, self.prop_index[p.name]))
        # ---- context numbering: actor copies first, then one kthread per CPU
        self.kthread_base: dict[str, int] = {}
        base = sum(a.copies for a in model.actors)
        for k in model.kthreads:
            self.kthread_base[k.name] = base
            base += self.n
        # ---- code
        self.codes: list[Code] = []
        self.fn_code: dict[int, int] = {}
        for i, f in enumerate(model.functions):
            self.fn_code[f.index] = i
        cfgs = control_flow(model)
        for f in model.functions:
            self.codes.append(self._compile(cfgs[f.name], f.module))
        # ---- contexts
        self.contexts: list[ContextSpec] = []
        for a in model.actors:
            code = len(self.codes)
            self.codes.append(self._compile(cfgs[f"actor {a.name}"], None))
            home = 0
            if a.on_cpu is not None:
                home = self.const_eval(a.on_cpu)
            for i in range(a.copies):
                name = a.name if a.copies == 1 else f"{a.name}#{i + 1}"
                self.contexts.append(ContextSpec(name, "actor", len(self.contexts), home, actor=a, code=code))
        for k in model.kthreads:
            assert self.kthread_base[k.name] == len(self.contexts)
            held = tuple(self.lock_index[n] for n in k.lockdep_held)
            for c in range(self.n):
                self.contexts.append(ContextSpec(f"{k.name}/{c}", "kthread", len(self.contexts), c,
                                                 kthread=k, lockdep_held=held))
        # is_percpu_thread() of each context: kthreads and per-CPU actors are bound to their CPU;
        # any other actor is a task that may migrate (its CPU in the model is a choice)
        self.home_cpus = tuple(c.home_cpu for c in self.contexts)
        self.percpu = tuple(int(c.kthread is not None or (c.actor is not None and c.actor.per_cpu))
                            for c in self.contexts)
        self.acquire_codes: dict[int, tuple[int, int]] = {}  # code id -> (mode code) for acquirers()
        for f in model.functions:
            if f.role == "acquire":
                self.acquire_codes[self.fn_code[f.index]] = MODE_CODE[f.mode]

    # ------------------------------------------------------------ helpers
    def const_eval(self, e: ir.Expr) -> int:
        from tdxproof.interp.evaluate import compile_expr

        f = compile_expr(self, e)
        return f(_ConstEnv(self))

    def var_cell(self, name: str, index: int | None = None) -> int:
        return self.var_off[name] + (index or 0)

    # ------------------------------------------------------------ compilation
    def _compile(self, cfg: Cfg, module: str | None) -> Code:
        """The interpreter's code for one body: the shared control flow (model/cfg.py:
        steps, glue, hidden locals, movers, blocking), each node with its statement
        compiled to closures."""
        code = Code(cfg.name, cfg.fn, cfg.nlocals, local_names=list(cfg.local_names), module=module, cfg=cfg)
        if self.any_order:
            self._any_order_slots(code)
        for node in cfg.nodes:
            ins = self._instr(node)
            ins.target, ins.alt = node.target, node.alt
            ins.mover, ins.first, ins.blocking = node.mover, node.first, node.blocking
            code.instrs.append(ins)
        self._liveness(code)
        self._block_tables(code)
        return code

    def _any_order_slots(self, code: Code) -> None:
        """NOTE(any-order): one hidden local per `for cpu` loop of this body, P | X << n
        | S << 2n: the CPUs it ran its body at (P), those it passed because its
        condition failed (X), and the snapshot of its `stable` condition (S); and
        each `j < k` the loop patterns read as "j in P, j != k"."""
        from tdxproof.interp.evaluate import compile_expr

        self._bits, self._loop_stmt = {}, {}
        for node in code.cfg.nodes:
            if node.op is Op.FOR_FIRST:
                self._loop_stmt[node.stmt.sid] = node.stmt
                self._bits[node.stmt.sid] = code.nlocals
                code.bits.append(code.nlocals)
                code.nlocals += 1
                code.local_names.append(f"<{node.stmt.var.name} passed>")
        for node in code.cfg.nodes:
            if node.op is not Op.FOR_FIRST:
                continue
            order = self.orders.get(node.stmt.sid)
            if order is None or order.lt is None:
                continue
            bits = self._bits[order.outer if order.outer is not None else node.stmt.sid]
            fj, fk = compile_expr(self, order.lt.left), compile_expr(self, order.lt.right)

            def visited(m: Any, fj=fj, fk=fk, bits=bits) -> int:
                j = fj(m)
                return 1 if (m.locals[bits] >> j) & 1 and j != fk(m) else 0
            self.order_override[id(order.lt)] = visited

    def _for_any(self, op: int, span: Span | None, s: ir.ForCpu, where: Callable | None) -> Instr:
        """The any-order loop step's payload (step._x_for_any): its variable, its
        condition, its hidden local, and the conditions it must see unchanged (its
        own, and an R1 rollback's outer loop's): (bits, var, fn, snapshot?)."""
        from tdxproof.interp.evaluate import compile_expr

        var, bits = s.var.slot, self._bits[s.sid]
        order = self.orders.get(s.sid)
        stable = compile_expr(self, order.stable) if order is not None and order.stable is not None else None
        checks = [(bits, var, stable, True) if stable is not None else (bits, var, where, False)]
        if order is not None and order.outer is not None:
            outer = self.orders[order.outer]
            ostmt = self._loop_stmt[order.outer]
            checks.append((self._bits[order.outer], ostmt.var.slot, compile_expr(self, outer.stable), True))
        uses = _uses(s) - {var}
        if order is not None and order.outer is not None:   # its `j < k` and check read the outer loop's
            uses |= {self._bits[order.outer]}
        if op == FOR_NEXT:   # what it passed; its variable is not read (the body has it)
            uses |= {bits}
        return Instr(op, span, s.sid, a=var, b=where, c=bits, d=(stable, checks), uses=frozenset(uses),
                     defs=frozenset({var, bits}))

    @staticmethod
    def _block_tables(code: Code) -> None:
        """Each instruction's answers to phase_after() and continue_phase() (what
        Machine.first_kind() and next_kind() feed them), once, for the hot loop."""
        from tdxproof.model.blocks import LEAD, continue_phase, phase_after

        for ins in code.instrs:
            kind = ins.mover
            ins.phase0 = phase_after((ins.first or "N") if kind in ("cut", "restart") else kind)
            ins.joins = tuple(continue_phase(kind, ins.blocking, ph) for ph in (LEAD, 0, 1))
            ins.ret_b = ins.op == RETURN and kind == "B"
            ins.phase0_vis = phase_after("N")
            ins.joins_vis = tuple(continue_phase("N", False, ph) for ph in (LEAD, 0, 1))

    def _instr(self, node: Node) -> Instr:
        from tdxproof.interp.evaluate import compile_expr, compile_writer

        E = lambda e: compile_expr(self, e)  # noqa: E731
        s, op, span = node.stmt, int(node.op), node.span
        if node.op in (Op.JUMP, Op.END, Op.IPI_EXIT) or s is None:
            return Instr(op, span)
        uses = _uses(s)
        if isinstance(s, ir.Atomic):
            uses = frozenset().union(*(_uses(x) for x in walk_stmts(s.body)))
        match node.op, s:
            case Op.ANY, ir.Assign(target=t, value=ir.AnyValue(type=ty)):
                return Instr(op, span, s.sid, a=compile_writer(self, t), b=_domain(self, ty), uses=uses,
                             defs=_defs(t))
            case Op.ASSIGN, ir.Assign(target=t, value=v):
                return Instr(op, span, s.sid, a=compile_writer(self, t), b=E(v), uses=uses, defs=_defs(t))
            case Op.CALL, ir.Call(callee=callee, args=args, result=res):
                static = self.fn_code[callee.index] if isinstance(callee, ir.FnRef) else None
                return Instr(op, span, s.sid, a=static, b=E(callee), c=[E(x) for x in args],
                             d=compile_writer(self, res) if res is not None else None, uses=uses,
                             defs=_defs(res) if res is not None else frozenset(),
                             result_local=s.sid in self.model.invisible_results)
            case Op.CALLIN, ir.Call(callee=callee, args=args, kthread=k, kthread_cpu=kc):
                return Instr(op, span, s.sid, a=E(callee), b=[E(x) for x in args],
                             c=(self.kthread_base[k.name], E(kc)), d=node.hidden, uses=uses,
                             defs=frozenset({node.hidden}))
            case Op.CALLWAIT, ir.Call(result=res):
                return Instr(op, span, s.sid, a=node.hidden, d=compile_writer(self, res) if res is not None else None,
                             uses=frozenset({node.hidden}), defs=_defs(res) if res is not None else frozenset())
            case Op.BRANCH, ir.If(cond=c):
                return Instr(op, span, s.sid, a=E(c), uses=uses)
            case Op.CHOICE, ir.Choice(labels=labels):
                return Instr(op, span, s.sid, a=labels, b=list(node.choices))
            case Op.RETURN, ir.Return(value=v):
                return Instr(op, span, s.sid, a=E(v) if v is not None else None, uses=uses)
            case Op.AWAIT, ir.Await(cond=c, waits=waits):
                return Instr(op, span, s.sid, a=E(c), b=self._waits(waits), uses=uses)
            case Op.REQUIRE, ir.Require(cond=c):
                return Instr(op, span, s.sid, a=E(c), uses=uses)
            case Op.ATOMIC, ir.Atomic(body=body):
                first = body[0] if body else None
                guard = waits = None
                rest = body
                idles = False
                if isinstance(first, ir.Await):
                    guard, waits, rest = E(first.cond), self._waits(first.waits), body[1:]
                elif isinstance(first, ir.Require):   # idles until the guard holds: no wait-for edge
                    guard, idles, rest = E(first.cond), True, body[1:]
                return Instr(op, span, s.sid, a=guard, b=waits, c=self._atomic_body(rest), d=idles, uses=uses,
                             defs=frozenset().union(*(_defs_deep(x) for x in body)))
            case Op.ATOMIC, ir.Hold():
                return Instr(op, span, s.sid, a=None, b=None, c=self._atomic_body((s,)), uses=uses)
            case Op.CHECK, ir.Check(prop=p, cond=c):
                return Instr(op, span, s.sid, a=self.prop_index[p], b=E(c), uses=uses)
            case Op.FOR_FIRST | Op.FOR_NEXT, ir.ForCpu(where=w) if self.any_order:
                return self._for_any(op, span, s, E(w) if w else None)
            case Op.FOR_FIRST, ir.ForCpu(var=var, where=w):
                return Instr(op, span, s.sid, a=var.slot, b=E(w) if w else None, uses=uses - {var.slot},
                             defs=frozenset({var.slot}))
            case Op.FOR_NEXT, ir.ForCpu(var=var, where=w):
                return Instr(op, span, s.sid, a=var.slot, b=E(w) if w else None, uses=uses | {var.slot},
                             defs=frozenset({var.slot}))
            case Op.RANGE_FIRST, ir.ForRange(var=var, lo=lo, hi=hi, down=down):
                return Instr(op, span, s.sid, a=var.slot, b=(E(lo), E(hi)), c=down, d=node.hidden, uses=uses,
                             defs=frozenset({var.slot, node.hidden}))
            case Op.RANGE_NEXT, ir.ForRange(var=var, down=down):
                return Instr(op, span, s.sid, a=var.slot, c=down, d=node.hidden,
                             uses=frozenset({var.slot, node.hidden}), defs=frozenset({var.slot}))
            case Op.PICK, ir.Pick(var=var, where=w):
                return Instr(op, span, s.sid, a=var.slot, b=E(w) if w else None, uses=uses - {var.slot},
                             defs=frozenset({var.slot}))
            case Op.IPI_ENTER, ir.Ipi(cpu=c):
                return Instr(op, span, s.sid, a=E(c), uses=uses)
        raise AssertionError((node.op, s))

    def _waits(self, waits: tuple[ir.WaitFor, ...]) -> list[tuple[str, Callable, int]] | None:
        from tdxproof.interp.evaluate import compile_expr

        if not waits:
            return None
        return [(w.kind, compile_expr(self, w.lock), MODE_CODE[w.mode]) for w in waits]

    def _atomic_body(self, stmts: tuple[ir.Stmt, ...]) -> list[tuple]:
        from tdxproof.interp.evaluate import compile_expr, compile_writer

        out: list[tuple] = []
        for s in stmts:
            match s:
                case ir.Assign(target=t, value=v):
                    out.append(("assign", compile_writer(self, t), compile_expr(self, v)))
                case ir.If(cond=c, then=th, other=o):
                    out.append(("if", compile_expr(self, c), self._atomic_body(th), self._atomic_body(o)))
                case ir.Hold(release=rel, lock=lk, mode=m):
                    out.append(("unhold" if rel else "hold", compile_expr(self, lk), MODE_CODE[m], s.span))
                case ir.Check(prop=p, cond=c):
                    out.append(("check", self.prop_index[p], compile_expr(self, c)))
                case ir.Require(cond=c):
                    out.append(("require", compile_expr(self, c)))
                case _:
                    raise ModelError("only assignments, `if`, `hold`, `unhold` and `check` may follow the "
                                     "first `await` of an `atomic` block", s.span)
        return out

    def successors(self, code: Code, pc: int) -> list[int]:
        return code.cfg.successors(pc)

    def _liveness(self, code: Code) -> None:
        n = len(code.instrs)
        live: list[set[int]] = [set() for _ in range(n)]
        changed = True
        while changed:
            changed = False
            for pc in range(n - 1, -1, -1):
                ins = code.instrs[pc]
                out: set[int] = set()
                for succ in self.successors(code, pc):
                    out |= live[succ]
                new = (out - ins.defs) | ins.uses
                if new != live[pc]:
                    live[pc] = new
                    changed = True
        code.live = [tuple(i in live[pc] for i in range(code.nlocals)) for pc in range(n)]
        code.dead = [tuple(i for i, alive in enumerate(mask) if not alive) for mask in code.live]


class _ConstEnv:
    def __init__(self, prog: Program):
        self.g = [0] * prog.nglobals
        self.locals: list[int] = []
        self.q: dict[int, int] = {}
        self.prog = prog


def _domain(prog: Program, ty: ir.Type) -> list[tuple[int, str]]:
    match ty:
        case ir.BoolType():
            return [(0, "false"), (1, "true")]
        case ir.IntType(lo=lo, hi=hi):
            if hi - lo > 64:
                raise ModelError(f"`any` over {ty} has too many values; use a small range", None)
            return [(v, str(v)) for v in range(lo, hi + 1)]
        case ir.CpuType():
            return [(c, str(c)) for c in range(prog.n)]
        case ir.EnumType(members=members):
            return list(enumerate(members))
    raise ModelError(f"`any` is not supported for {ty}", None)


def _uses(s: ir.Stmt) -> frozenset[int]:
    out: set[int] = set()
    for top in walk_exprs(s):
        if isinstance(s, (ir.Assign, ir.Call)) and top is getattr(s, "target", None) and isinstance(top, ir.LocalRef):
            continue
        if isinstance(s, ir.Call) and top is s.result and isinstance(top, ir.LocalRef):
            continue
        for e in sub_exprs(top):
            if isinstance(e, ir.LocalRef):
                out.add(e.local.slot)
    return frozenset(out)


def _defs(t: ir.Expr | None) -> frozenset[int]:
    if isinstance(t, ir.LocalRef):
        return frozenset({t.local.slot})
    return frozenset()


def _defs_deep(s: ir.Stmt) -> frozenset[int]:
    if isinstance(s, ir.Assign):
        return _defs(s.target)
    if isinstance(s, ir.If):
        return frozenset().union(*(_defs_deep(x) for x in s.then + s.other))
    return frozenset()
