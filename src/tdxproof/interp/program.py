"""Compile a Model, for a given number of CPUs, into flat code the interpreter runs.

NOTE(steps): one atomic step per statement. Assignments, calls (pushing the
frame), `if` conditions, `may fail`/`either`/`pick` choices, `await`, `require`,
`check`, each `for` iteration's advance, `ipi` entry, `return` and each whole
`atomic` block are steps. Control-flow glue is not: jumps, `break`, the end of an
`ipi` block and falling off the end of a void function run as part of the step
before them (they touch only the context's own control state).

Values are ints: bool 0/1, cpu numbers, enum member indexes, locks by index,
functions by index + 1 (0 is null).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from tdxproof.model import ir
from tdxproof.model.wellformed import sub_exprs, walk_exprs, walk_stmts
from tdxproof.source import Span

# opcodes
ASSIGN, ANY, CALL, CALLIN, CALLWAIT, BRANCH, CHOICE, RETURN, AWAIT, REQUIRE, ATOMIC, CHECK, \
    FOR_FIRST, FOR_NEXT, RANGE_FIRST, RANGE_NEXT, PICK, IPI_ENTER, IPI_EXIT, JUMP, END = range(21)
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
    mover: str = "N"       # NOTE(blocks): B (invisible), R (acquire), L (release), N; "cut": always a boundary
    blocking: bool = False # may block or idle: only ever the first statement of a block
    first: str | None = None  # a "cut" that starts a block there as this mover (an actor's restart)


@dataclass
class Code:
    name: str              # function name, or "actor NAME"
    fn: ir.Function | None
    nlocals: int
    instrs: list[Instr] = field(default_factory=list)
    live: list[tuple[bool, ...]] = field(default_factory=list)  # live-in mask per pc
    local_names: list[str] = field(default_factory=list)
    module: str | None = None


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
    def __init__(self, model: ir.Model, cpus: int | None = None):
        self.model = model
        self.n = cpus if cpus is not None else model.cpus
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
        for f in model.functions:
            self.codes.append(self._compile(f.name, f, f.locals, f.body, f.module))
        # ---- contexts
        self.contexts: list[ContextSpec] = []
        for a in model.actors:
            code = len(self.codes)
            self.codes.append(self._compile(f"actor {a.name}", None, a.locals, a.body, None,
                                            repeats=a.repeat is not None))
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
    def _compile(self, name: str, fn: ir.Function | None, locals_: tuple[ir.Local, ...],
                 body: tuple[ir.Stmt, ...], module: str | None, repeats: bool = False) -> Code:
        code = Code(name, fn, len(locals_), local_names=[l.name for l in locals_], module=module)
        self._cur = code
        self._breaks: list[list[Instr]] = []
        self._block(body)
        code.instrs.append(Instr(END, fn.span if fn else None))
        movers = self.movers
        for ins in code.instrs:
            ins.mover = movers.get(ins.sid, "N") if ins.sid else "N"
            if ins.op == CALLIN:
                ins.mover = "N"
            elif ins.op == CALLWAIT:
                ins.mover = "R"        # collecting the work's result, like taking a lock
            elif ins.op in (FOR_NEXT, RANGE_NEXT):
                ins.mover = "cut"      # NOTE(blocks): loop advances are boundaries: blocks are loop-free
            ins.blocking = ins.op in (AWAIT, REQUIRE, CALLIN, CALLWAIT, IPI_ENTER, PICK) or (
                ins.op == ATOMIC and ins.a is not None)
        if repeats and code.instrs:
            # a repeating actor's body starts a new block, as what its first statement is
            code.instrs[0].first, code.instrs[0].mover = code.instrs[0].mover, "cut"
        self._resolve_jumps(code)
        self._liveness(code)
        return code

    def _hidden(self, label: str) -> int:
        slot = self._cur.nlocals
        self._cur.nlocals += 1
        self._cur.local_names.append(label)
        return slot

    def _emit(self, ins: Instr) -> Instr:
        self._cur.instrs.append(ins)
        return ins

    def _pc(self) -> int:
        return len(self._cur.instrs)

    def _block(self, stmts: tuple[ir.Stmt, ...]) -> None:
        for s in stmts:
            self._stmt(s)

    def _stmt(self, s: ir.Stmt) -> None:
        from tdxproof.interp.evaluate import compile_expr, compile_writer

        E = lambda e: compile_expr(self, e)  # noqa: E731
        uses = _uses(s)
        if isinstance(s, ir.Atomic):
            uses = frozenset().union(*(_uses(x) for x in walk_stmts(s.body)))
        match s:
            case ir.Assign(target=t, value=ir.AnyValue(type=ty)):
                self._emit(Instr(ANY, s.span, s.sid, a=compile_writer(self, t), b=_domain(self, ty),
                                 uses=uses, defs=_defs(t)))
            case ir.Assign(target=t, value=v):
                self._emit(Instr(ASSIGN, s.span, s.sid, a=compile_writer(self, t), b=E(v), uses=uses,
                                 defs=_defs(t)))
            case ir.Call(callee=callee, args=args, result=res, kthread=None):
                static = self.fn_code[callee.index] if isinstance(callee, ir.FnRef) else None
                self._emit(Instr(CALL, s.span, s.sid, a=static, b=E(callee), c=[E(x) for x in args],
                                 d=compile_writer(self, res) if res is not None else None, uses=uses,
                                 defs=_defs(res) if res is not None else frozenset(),
                                 result_local=s.sid in self.model.invisible_results))
            case ir.Call(callee=callee, args=args, result=res, kthread=k, kthread_cpu=kc):
                slot = self._hidden(f"<{k.name} target>")
                self._emit(Instr(CALLIN, s.span, s.sid, a=E(callee), b=[E(x) for x in args],
                                 c=(self.kthread_base[k.name], E(kc)), d=slot, uses=uses,
                                 defs=frozenset({slot})))
                self._emit(Instr(CALLWAIT, s.span, s.sid, a=slot,
                                 d=compile_writer(self, res) if res is not None else None,
                                 uses=frozenset({slot}), defs=_defs(res) if res is not None else frozenset()))
            case ir.If(cond=c, then=t, other=o):
                br = self._emit(Instr(BRANCH, s.span, s.sid, a=E(c), uses=uses))
                self._block(t)
                if o:
                    j = self._emit(Instr(JUMP, None))
                    br.target = self._pc()
                    self._block(o)
                    j.target = self._pc()
                else:
                    br.target = self._pc()
            case ir.Choice(labels=labels, branches=branches):
                ch = self._emit(Instr(CHOICE, s.span, s.sid, a=labels, b=[]))
                jumps = []
                for br in branches:
                    ch.b.append(self._pc())
                    self._block(br)
                    jumps.append(self._emit(Instr(JUMP, None)))
                for j in jumps:
                    j.target = self._pc()
            case ir.Return(value=v):
                self._emit(Instr(RETURN, s.span, s.sid, a=E(v) if v is not None else None, uses=uses))
            case ir.Await(cond=c, waits=waits):
                self._emit(Instr(AWAIT, s.span, s.sid, a=E(c), b=self._waits(waits), uses=uses))
            case ir.Require(cond=c):
                self._emit(Instr(REQUIRE, s.span, s.sid, a=E(c), uses=uses))
            case ir.Atomic(body=body):
                first = body[0] if body else None
                guard = None
                waits = None
                rest = body
                if isinstance(first, ir.Await):
                    guard, waits, rest = E(first.cond), self._waits(first.waits), body[1:]
                self._emit(Instr(ATOMIC, s.span, s.sid, a=guard, b=waits, c=self._atomic_body(rest),
                                 uses=uses, defs=frozenset().union(*(_defs_deep(x) for x in body))))
            case ir.Check(prop=p, cond=c):
                self._emit(Instr(CHECK, s.span, s.sid, a=self.prop_index[p], b=E(c), uses=uses))
            case ir.ForCpu(var=var, where=w, body=body):
                first = self._emit(Instr(FOR_FIRST, s.span, s.sid, a=var.slot, b=E(w) if w else None,
                                         uses=uses - {var.slot}, defs=frozenset({var.slot})))
                self._loop(first, body, Instr(FOR_NEXT, s.span, s.sid, a=var.slot, b=first.b,
                                              uses=uses | {var.slot}, defs=frozenset({var.slot})))
            case ir.ForRange(var=var, lo=lo, hi=hi, down=down, body=body):
                bound = self._hidden(f"<{var.name} bound>")
                first = self._emit(Instr(RANGE_FIRST, s.span, s.sid, a=var.slot, b=(E(lo), E(hi)), c=down,
                                         d=bound, uses=uses, defs=frozenset({var.slot, bound})))
                self._loop(first, body, Instr(RANGE_NEXT, s.span, s.sid, a=var.slot, c=down, d=bound,
                                              uses=frozenset({var.slot, bound}), defs=frozenset({var.slot})))
            case ir.Pick(var=var, where=w, body=body):
                self._emit(Instr(PICK, s.span, s.sid, a=var.slot, b=E(w) if w else None,
                                 uses=uses - {var.slot}, defs=frozenset({var.slot})))
                self._block(body)
            case ir.Break():
                self._breaks[-1].append(self._emit(Instr(JUMP, s.span)))
            case ir.Ipi(cpu=c, body=body):
                self._emit(Instr(IPI_ENTER, s.span, s.sid, a=E(c), uses=uses))
                self._block(body)
                self._emit(Instr(IPI_EXIT, s.span))
            case ir.Hold():
                self._emit(Instr(ATOMIC, s.span, s.sid, a=None, b=None, c=self._atomic_body((s,)), uses=uses))
            case _:
                raise AssertionError(s)

    def _loop(self, first: Instr, body: tuple[ir.Stmt, ...], nxt: Instr) -> None:
        self._breaks.append([])
        body_start = self._pc()
        self._block(body)
        self._emit(nxt)
        nxt.alt = body_start
        exit_pc = self._pc()
        first.target = nxt.target = exit_pc
        for j in self._breaks.pop():
            j.target = exit_pc

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

    def _resolve_jumps(self, code: Code) -> None:
        def final(pc: int) -> int:
            seen = 0
            while code.instrs[pc].op == JUMP and seen < len(code.instrs):
                pc = code.instrs[pc].target
                seen += 1
            return pc

        for ins in code.instrs:
            if ins.op in (BRANCH, FOR_FIRST, FOR_NEXT, RANGE_FIRST, RANGE_NEXT, JUMP) and ins.target >= 0:
                ins.target = final(ins.target)
            if ins.op == CHOICE:
                ins.b = [final(t) for t in ins.b]

    def successors(self, code: Code, pc: int) -> list[int]:
        ins = code.instrs[pc]
        match ins.op:
            case 7 | 20:  # RETURN, END
                return []
            case 19:  # JUMP
                return [ins.target]
            case 5 | 12 | 14:  # BRANCH, FOR_FIRST, RANGE_FIRST
                return [pc + 1, ins.target]
            case 13 | 15:  # FOR_NEXT, RANGE_NEXT
                return [ins.alt, ins.target]
            case 6:  # CHOICE
                return list(ins.b)
        return [pc + 1]

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
