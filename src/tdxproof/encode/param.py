"""One transition system for every number of CPUs (issue 9): the encoding of
system.py with N a symbolic constant instead of a number.

The per-N encoder makes a variable per CPU (`online[2]`, `pc[cpuhp/2]`) and
spells out per CPU whatever ranges over them. Here each such family is one
array indexed by the CPU (`online[*]`, `pc[cpuhp/*]`), N is the constant
`nr_cpus`, and what names "some CPU" becomes a constant of the step or a
quantifier over [0, N):

- a per-CPU task's block is taken by the task of the step's CPU `me[F/@]`;
- `for cpu k` enters at a fresh k: above the cursor, passing the filter, and
  with no CPU in between that passes it (a `forall`); it ends when no CPU
  above the cursor passes;
- `pick` and `any` of a CPU: a fresh constant below N;
- `forall`/`exists cpu` in an expression: a quantifier over [0, N);
- `holders(L) == 0`: no actor holds L and, for every CPU, neither does its task;
- "another task on this CPU keeps interrupts off": an `exists` over the CPUs.

The statement semantics is symbolic.Blocks' (ParamBlocks subclasses it): only
what names CPUs differs. Values stay 8-bit (CPUs 0..126), so a query over this
encoding decides N = 2..127 at once; docs/every-n.md says how the cutoff
theorem carries that to every N. Only docs/every-n.md's fragment is encoded
(no deadlock condition, no counting of CPUs or tasks): anything else raises
Unsupported with the reason.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import z3

from tdxproof.encode.flatten import flatten
from tdxproof.encode.liveness import forget_dead_locals
from tdxproof.encode.symbolic import TRUE, Blocks, Path, _PS, b2bv, truth
from tdxproof.encode.system import _NoFrame, _range, _subs, order_rules
from tdxproof.encode.vocab import IDLE, MODES, NO_PC, PCW, RET, RUN, W, Context, Vocab, bv
from tdxproof.model import ir

MAX_N = 127          # the largest N an 8-bit CPU value can name (CPUs 0..126)
CPU = z3.BitVecSort(W)


class Unsupported(Exception):
    """The policy uses something this encoding does not model; the message says what."""


@dataclass
class ParamVocab(Vocab):
    """The state variables for every N: scalars as in Vocab, and one array per
    per-CPU variable and per variable of a per-CPU task family."""
    N: z3.BitVecRef | None = None
    sorts: dict[str, z3.SortRef] = field(default_factory=dict)
    own_sorts: dict[str, z3.SortRef] = field(default_factory=dict)    # `pc[cpuhp/@]` -> its cell's sort
    arrays: dict[str, str] = field(default_factory=dict)             # per-CPU var -> array
    member: dict[str, str] = field(default_factory=dict)             # `pc[cpuhp/@]` -> `pc[cpuhp/*]`
    own_of: dict[str, list[str]] = field(default_factory=dict)        # family member context -> its names

    @staticmethod
    def build_param(model: ir.Model, contexts: list[Context]) -> "ParamVocab":
        v = ParamVocab(model, None, contexts, N=z3.BitVec("nr_cpus", W))
        for var in model.vars:
            if var.per_cpu:
                name = f"{var.name}[*]"
                v.arrays[var.name] = name
                v._add_sort(name, z3.ArraySort(CPU, z3.BitVecSort(W)))
                continue
            for i in range(len(var.dim.members) if var.dim is not None else 1):
                name = f"{var.name}[{i}]" if var.indexed else var.name
                v.cells[(var.name, i)] = name
                v._add_sort(name, z3.BitVecSort(W))
        classes = {c.name: c for c in model.lock_classes}
        for lock in model.locks:
            for f in classes[lock.cls].fields:
                name = f"{lock.name}.{f.name}"
                v.fields[(lock.index, f.name)] = name
                v._add_sort(name, z3.BitVecSort(W))
        for c in contexts:
            names = [(v.pc(c), PCW)] + [(n, W) for n in (v.status(c), v.aux(c), v.irqs(c), v.ipi(c), v.saved(c))]
            names += [(v.local(c, i), W) for i in range(c.auto.nlocals)]
            names += [(v.held(c, lock.index, mode), W) for lock in model.locks for mode in MODES.values()]
            if c.kthread is None:
                for n, w in names:
                    v._add_sort(n, z3.BitVecSort(w))
                continue
            mine = v.own_of.setdefault(c.name, [])
            for n, w in names:
                arr = n.replace(f"{c.kthread.name}/@", f"{c.kthread.name}/*")
                mine.append(n)
                v.member[n] = arr
                v.own_sorts[n] = z3.BitVecSort(w)
                v._add_sort(arr, z3.ArraySort(CPU, z3.BitVecSort(w)))
        return v

    def _add_sort(self, name: str, sort: z3.SortRef) -> None:
        assert name not in self.sorts, name
        self.names.append(name)
        self.sorts[name] = sort

    def var_cells(self, var: ir.Var) -> int:
        if var.per_cpu:
            raise Unsupported("a per-CPU variable read cell by cell")
        return super().var_cells(var)

    def at(self, k: int) -> dict[str, z3.ExprRef]:
        return {name: z3.Const(f"{name}@{k}", self.sorts[name]) for name in self.names}


def below_n(v: ParamVocab, x: z3.BitVecRef) -> z3.BoolRef:
    return z3.And(x >= bv(0), x < v.N)


class ParamBlocks(Blocks):
    """symbolic.Blocks for every N: what names a CPU is a term, not a number."""

    def __init__(self, vocab: ParamVocab, c: Context, prop_index: dict[str, int], order_rules: dict[int, list],
                 fresh: itertools.count):
        super().__init__(vocab, c, prop_index, order_rules)
        self.v: ParamVocab = vocab
        self.N = vocab.N
        self.fresh = fresh
        self.me = z3.BitVec(f"me[{c.name}]", W) if c.kthread is not None else None
        if self.model.packages != 1:
            raise Unsupported("more than one package")

    def _new(self, tag: str) -> z3.BitVecRef:
        return z3.BitVec(f"{tag}!{next(self.fresh)}", W)

    def below(self, x: z3.BitVecRef) -> z3.BoolRef:
        return below_n(self.v, x)

    def state(self, s: dict) -> dict:
        """The state a block starts from: for a per-CPU task, its own variables are
        scalars of the path (`pc[cpuhp/@]@0`, its cell at `me`), as in the per-N
        encoding, so that the dead-local analysis reads them alike; encode_param()
        folds them back into their arrays."""
        out = dict(s)
        for n in self.v.own_of.get(self.c.name, ()):
            out[n] = z3.Const(f"{n}@0", self.v.own_sorts[n])
        return out

    def _cell(self, cur: dict, name: str, d: z3.BitVecRef) -> z3.BitVecRef:
        """Variable `name` (a family member's, `irqs_off[cpuhp/@]`) of CPU d's task."""
        return z3.Select(dict.__getitem__(cur, self.v.member[name]), d)

    def _set_cell(self, cur: dict, name: str, d: z3.BitVecRef, value: z3.ExprRef) -> None:
        arr = self.v.member[name]
        dict.__setitem__(cur, arr, z3.Store(dict.__getitem__(cur, arr), d, value))

    # ------------------------------------------------------------ contexts
    def cpu(self, cur: dict, c: Context | None = None) -> z3.BitVecRef:
        c = c or self.c
        ipi = cur[self.v.ipi(c)]
        if c.kthread is not None:
            assert c is self.c, "another CPU's task is read through _cell()"
            home = self.me
        else:
            home = bv(c.home_cpu)
        return z3.If(ipi == bv(-1), home, ipi)

    def _irq_busy(self, cur: dict, target: z3.BitVecRef) -> z3.BoolRef:
        """Another running task on CPU `target` has interrupts off."""
        out = []
        for o in self.v.contexts:
            if o.kthread is None:
                if o is not self.c:
                    out.append(z3.And(cur[self.v.irqs(o)] == bv(1), cur[self.v.status(o)] == bv(RUN),
                                      self.cpu(cur, o) == target))
                continue
            d = self._new("d")
            ipi = self._cell(cur, self.v.ipi(o), d)
            on = z3.If(ipi == bv(-1), d, ipi)
            cond = [self.below(d), self._cell(cur, self.v.irqs(o), d) == bv(1),
                    self._cell(cur, self.v.status(o), d) == bv(RUN), on == target]
            if o is self.c:
                cond.insert(0, d != self.me)      # its own cell is the path's scalars (not busy: it runs)
            out.append(z3.Exists([d], z3.And(cond)))
        return z3.Or(out) if out else z3.BoolVal(False)

    def irq_excluded(self, cur: dict) -> z3.BoolRef:
        return self._irq_busy(cur, self.cpu(cur))

    def _nobody_holds(self, cur: dict, lock: z3.BitVecRef, mode: int | None) -> z3.BoolRef:
        parts = []
        for o in self.v.contexts:
            if o.kthread is None or o is self.c:
                parts.append(self.held_count(cur, o, lock, mode) == bv(0))
                if o.kthread is None:
                    continue
            d = self._new("d")
            known = lock.as_signed_long() if z3.is_bv_value(lock) else None
            cells = []
            for lk in self.model.locks:
                if known is not None and lk.index != known:
                    continue
                for md in MODES.values():
                    if mode is None or md == mode:
                        zero = self._cell(cur, self.v.held(o, lk.index, md), d) == bv(0)
                        cells.append(zero if known is not None else z3.Implies(lock == bv(lk.index), zero))
            dom = z3.And(self.below(d), d != self.me) if o is self.c else self.below(d)
            parts.append(z3.ForAll([d], z3.Implies(dom, z3.And(cells or [TRUE]))))
        return z3.And(parts)

    def blocked(self, s: dict):
        raise Unsupported("the deadlock condition (a per-CPU task waits on a condition naming another task)")

    # ------------------------------------------------------------ expressions
    def expr(self, e: ir.Expr, cur: dict, node, q: dict | None = None) -> z3.BitVecRef:
        q = q or {}
        match e:
            case ir.QVarRef(qvar=qv):
                x = q[qv.id]
                return x if isinstance(x, z3.ExprRef) else bv(x)
            case ir.Quant(kind=kind, qvar=qv, body=body):
                if kind is ir.QuantKind.COUNT:
                    raise Unsupported("`count cpu` counts the CPUs")
                x = self._new("q")
                b = truth(self.expr(body, cur, node, {**q, qv.id: x}))
                if kind is ir.QuantKind.FORALL:
                    return b2bv(z3.ForAll([x], z3.Implies(self.below(x), b)))
                return b2bv(z3.Exists([x], z3.And(self.below(x), b)))
            case ir.VarRef(var=var, index=idx) if var.per_cpu:
                return z3.Select(cur[self.v.arrays[var.name]], self.expr(idx, cur, node, q))
            case ir.Binary(op=op, left=a, right=b) if _is_holders(a) or _is_holders(b):
                if _is_holders(b):
                    a, b = b, a
                    op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
                if not (isinstance(b, ir.Lit) and b.value == 0 and op in ("==", "<=", "!=", ">")):
                    raise Unsupported("`holders()` compared with something other than 0 counts the tasks")
                lock = self.expr(a.args[0], cur, node, q)
                none = self._nobody_holds(cur, lock, MODES[a.mode] if a.mode is not None else None)
                return b2bv(none if op in ("==", "<=") else z3.Not(none))
            case ir.Builtin(op=ir.BuiltinOp.HOLDERS):
                raise Unsupported("`holders()` used as a number counts the tasks")
            case ir.Builtin(op=ir.BuiltinOp.NR_CPUS):
                return self.N
            case ir.Builtin(op=ir.BuiltinOp.PKG):
                return bv(0)
        return super().expr(e, cur, node, q)

    def check_range(self, ty: ir.Type, value: z3.BitVecRef, p: _PS) -> None:
        if isinstance(ty, ir.CpuType):
            if not (z3.is_bv_value(value) and value.as_signed_long() == 0):
                p.events.append((-1, self.below(value)))
            return
        super().check_range(ty, value, p)

    def write(self, lv: ir.LValue, value: z3.BitVecRef, p: _PS, node, frame: int | None = None) -> None:
        if isinstance(lv, ir.VarRef) and lv.var.per_cpu:
            self.check_range(lv.type, value, p)
            arr = self.v.arrays[lv.var.name]
            p.cur[arr] = z3.Store(p.cur[arr], self.expr(lv.index, p.cur, node), value)
            return
        super().write(lv, value, p, node, frame)

    # ------------------------------------------------------------ statements that name CPUs
    def _passes(self, p: _PS, slot: str, where, node, x: z3.BitVecRef) -> z3.BoolRef:
        if where is None:
            return TRUE
        tmp = p.cur.copy()
        tmp[slot] = x
        return truth(self.expr(where, tmp, node))

    def _exec(self, node, p: _PS, is_first: bool) -> list[_PS]:
        s, op = node.stmt, node.op
        if op == "any" and isinstance(s.value.type, ir.CpuType):
            x = self._new("any")
            p.guard.append(self.below(x))
            self.write(s.target, x, p, node)
            return self._go(p, node.succ[0])
        if op in ("for_first", "for_next"):
            slot = self.v.local(self.c, node.frame + s.var.slot)
            lo = None if op == "for_first" else p.cur[slot]

            def above(x):
                return self.below(x) if lo is None else z3.And(self.below(x), x > lo)
            k, j, j2 = self._new("k"), self._new("j"), self._new("j")
            enter = p.fork()
            enter.guard += [above(k), self._passes(p, slot, s.where, node, k),
                            z3.ForAll([j], z3.Implies(z3.And(above(j), j < k),
                                                      z3.Not(self._passes(p, slot, s.where, node, j))))]
            enter.cur[slot] = k
            p.guard.append(z3.ForAll([j2], z3.Implies(above(j2), z3.Not(self._passes(p, slot, s.where, node, j2)))))
            return self._go(enter, node.succ[0] if op == "for_first" else node.alt) + self._go(p, node.target)
        if op == "pick":
            slot = self.v.local(self.c, node.frame + s.var.slot)
            outs = []
            if not is_first and s.where is not None:
                j = self._new("j")
                stop = p.fork()
                stop.guard.append(z3.ForAll([j], z3.Implies(self.below(j),
                                                            z3.Not(self._passes(p, slot, s.where, node, j)))))
                stop.done = True
                outs.append(stop)
            k = self._new("pick")
            p.guard += [self.below(k), self._passes(p, slot, s.where, node, k)]
            p.cur[slot] = k
            return outs + self._go(p, node.succ[0])
        if op == "ipi_enter":
            target = self.expr(s.cpu, p.cur, node)
            outs = []
            for r in self._blocking(p, z3.Not(self._irq_busy(p.cur, target)), is_first):
                if r.done:
                    outs.append(r)
                    continue
                r.cur[self.v.saved(self.c)] = r.cur[self.v.irqs(self.c)]
                r.cur[self.v.ipi(self.c)] = self.expr(s.cpu, r.cur, node)
                r.cur[self.v.irqs(self.c)] = bv(1)
                outs.extend(self._go(r, node.succ[0]))
            return outs
        return super()._exec(node, p, is_first)

    def _family(self, name: str) -> Context:
        return next(o for o in self.v.contexts if o.kthread is not None and o.kthread.name == name)

    def _member_names(self, t: Context) -> list[str]:
        return [self.v.local(t, k) for k in range(t.auto.nlocals)]

    def _callin(self, node, p: _PS, is_first: bool) -> list[_PS]:
        s = node.stmt
        cur = p.cur
        kcpu = self.expr(s.kthread_cpu, cur, node)
        t = self._family(s.kthread.name)
        idle = z3.And(self.below(kcpu), self._cell(cur, self.v.status(t), kcpu) == bv(IDLE))
        fv = self.expr(s.callee, cur, node)
        args = [self.expr(a, cur, node) for a in s.args]
        out: list[_PS] = []
        for q in self._blocking(p, idle, is_first):
            if q.done:
                out.append(q)
                continue
            for idx, _family in node.work:
                r = q.fork() if len(node.work) > 1 else q
                r.guard.append(fv == bv(idx + 1))
                self._set_cell(r.cur, self.v.pc(t), kcpu, z3.BitVecVal(t.auto.entries[idx], PCW))
                self._set_cell(r.cur, self.v.status(t), kcpu, bv(RUN))
                self._set_cell(r.cur, self.v.aux(t), kcpu, bv(0))
                for k, name in enumerate(self._member_names(t)):
                    self._set_cell(r.cur, name, kcpu, args[k] if k < len(args) else bv(0))
                r.cur[self.v.local(self.c, node.frame + node.hidden)] = kcpu
                out.extend(self._go(r, node.succ[0]))
        return out

    def _callwait(self, node, p: _PS, is_first: bool) -> list[_PS]:
        s = node.stmt
        cur = p.cur
        kcpu = cur[self.v.local(self.c, node.frame + node.hidden)]
        t = self._family(s.kthread.name)
        ready = self._cell(cur, self.v.status(t), kcpu) == bv(RET)
        out = [r for r in self._blocking(p, ready, is_first) if r.done]
        value = self._cell(p.cur, self.v.aux(t), kcpu)
        self._set_cell(p.cur, self.v.status(t), kcpu, bv(IDLE))
        self._set_cell(p.cur, self.v.aux(t), kcpu, bv(0))
        self._set_cell(p.cur, self.v.pc(t), kcpu, z3.BitVecVal(NO_PC, PCW))
        for name in self._member_names(t):
            self._set_cell(p.cur, name, kcpu, bv(0))
        if s.result is not None:
            self.write(s.result, value, p, node)
        return out + self._go(p, node.succ[0])


def _nondet(e: ir.Expr) -> bool:
    return any(isinstance(x, ir.AnyValue) for x in _subs(e))


def _is_holders(e: ir.Expr) -> bool:
    return isinstance(e, ir.Builtin) and e.op is ir.BuiltinOp.HOLDERS


@dataclass
class ParamEncoding:
    model: ir.Model
    vocab: ParamVocab
    blocks: list[ParamBlocks]
    paths: list[tuple[int, Path]]
    s0: dict[str, z3.ExprRef]

    @property
    def N(self) -> z3.BitVecRef:
        return self.vocab.N

    def domain(self) -> z3.BoolRef:
        return z3.And(self.N >= bv(2), self.N <= bv(MAX_N))

    def state(self, k: int) -> dict[str, z3.ExprRef]:
        return self.vocab.at(k)

    def expr(self, e: ir.Expr, s: dict) -> z3.BoolRef:
        b = self.blocks[0]
        return truth(b.expr(e, s, _NoFrame()))

    def quiescent(self, s: dict) -> z3.BoolRef:
        q = self.model.predicate("quiescent")
        return self.expr(q.expr, s) if q is not None else TRUE

    def init(self, s: dict) -> z3.BoolRef:
        """The initial states of every N, in terms of state s."""
        v, b = self.vocab, self.blocks[0]
        node = _NoFrame()
        cs: list[z3.BoolRef] = []

        def in_type(x, ty):
            if isinstance(ty, ir.CpuType):
                return below_n(v, x)
            lo, hi = _range(ty, 1)
            return z3.And(x >= bv(lo), x <= bv(hi))

        fresh = itertools.count()

        def value(e: ir.Expr, q: dict, c: z3.BitVecRef | None) -> z3.BitVecRef:
            """e's value, each `any` in it a free choice: one per CPU (an array of
            choices read at c) in a per-CPU variable's initialiser."""
            match e:
                case ir.AnyValue(type=ty):
                    if c is None:
                        x = z3.BitVec(f"init_any{next(fresh)}", W)
                        cs.append(in_type(x, ty))
                        return x
                    a = z3.Array(f"init_any{next(fresh)}", CPU, z3.BitVecSort(W))
                    d = b._new("c")
                    cs.append(z3.ForAll([d], z3.Implies(below_n(v, d), in_type(z3.Select(a, d), ty))))
                    return z3.Select(a, c)
                case ir.Binary(op=op, left=l, right=r) if _nondet(e):
                    return b._binary(op, value(l, q, c), value(r, q, c))
                case ir.Unary(op="!", operand=x) if _nondet(e):
                    return b2bv(value(x, q, c) == bv(0))
                case ir.CondExpr(cond=k, then=t, other=o) if _nondet(e):
                    return z3.If(truth(value(k, q, c)), value(t, q, c), value(o, q, c))
            if _nondet(e):
                raise Unsupported(f"`any` inside {type(e).__name__} in an initial value")
            return b.expr(e, s, node, q)

        for var in self.model.vars:
            if var.per_cpu:
                c = b._new("c")
                q = {var.binder.id: c} if var.binder is not None else {}
                cs.append(s[v.arrays[var.name]] == z3.Lambda([c], value(var.init, q, c)))
                continue
            for i in range(v.var_cells(var)):
                q = {var.binder.id: i} if var.binder is not None else {}
                cs.append(s[v.cells[(var.name, i)]] == value(var.init, q, None))
        classes = {c.name: c for c in self.model.lock_classes}
        for lock in self.model.locks:
            for f in classes[lock.cls].fields:
                cs.append(s[v.fields[(lock.index, f.name)]] == b.expr(f.init, s, node))
        for c in v.contexts:
            actor = c.kthread is None
            vals = [(v.pc(c), z3.BitVecVal(c.auto.entry if actor else NO_PC, PCW)),
                    (v.status(c), bv(RUN if actor else IDLE)), (v.aux(c), bv(0)), (v.irqs(c), bv(0)),
                    (v.saved(c), bv(0)), (v.ipi(c), bv(-1))]
            vals += [(v.local(c, k), bv(0)) for k in range(c.auto.nlocals)]
            vals += [(v.held(c, lock.index, md), bv(0)) for lock in self.model.locks for md in MODES.values()]
            for name, x in vals:
                cs.append(s[name] == x if actor else s[v.member[name]] == z3.K(CPU, x))
        return z3.And(cs)


def encode_param(model: ir.Model, say=lambda msg: None) -> ParamEncoding:
    """The transition system of `model` for every N (its lowering at any N of the
    fragment: the fragment check makes the lowered programs the same)."""
    actors, kthreads = flatten(model)
    contexts: list[Context] = []
    if any(lk.per_cpu for lk in model.locks):
        raise Unsupported("an array of locks indexed by CPU has as many locks as CPUs")
    for a, auto in zip(model.actors, actors):
        if a.on_cpu is not None and not (isinstance(a.on_cpu, ir.Lit) and a.on_cpu.value == 0):
            raise Unsupported(f"actor `{a.name}` is pinned to a CPU other than the boot CPU")
        for i in range(a.copies):
            contexts.append(Context(len(contexts), a.name if a.copies == 1 else f"{a.name}#{i + 1}", auto, 0, actor=a))
    for k in model.kthreads:
        contexts.append(Context(len(contexts), f"{k.name}/@", kthreads[k.name], -1, kthread=k))
    vocab = ParamVocab.build_param(model, contexts)
    prop_index, order = order_rules(model)
    s0 = vocab.at(0)
    fresh = itertools.count()
    blocks = [ParamBlocks(vocab, c, prop_index, order, fresh) for c in contexts]
    raw: list[tuple[int, Path]] = []
    view = dict(s0)
    for b in blocks:
        state = b.state(s0)
        view.update(state)
        for start in b.starts():
            raw.extend((b.c.index, p) for p in b.paths_from(start, state))
            say(f"symbolic-N encoding: {b.c.name.replace('/@', '/c')}, {len(raw):,} block paths")
    # dead locals forgotten as the per-N encoding (and the interpreter) forget
    # them, by the same analysis over the same kind of paths: a per-CPU task's
    # own variables are still scalars here
    pre = ParamEncoding(model, vocab, blocks, [], s0)
    outside = [pre.quiescent(s0)] + [pre.expr(p.expr, s0) for p in model.properties
                                     if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER) and p.expr is not None]
    raw = forget_dead_locals(_View(vocab, list(view)), raw, view, outside)
    paths: list[tuple[int, Path]] = []
    say(f"symbolic-N encoding: {len(raw):,} block paths, folding each task's own variables into its arrays")
    for ci, p in raw:
        b = blocks[ci]
        guard, updates, events = list(p.guard), dict(p.updates), list(p.events)
        own = vocab.own_of.get(b.c.name)
        if own:
            # fold the task's scalars into their arrays: read its cell at `me`, write it back
            pairs = [(view[n], z3.Select(s0[vocab.member[n]], b.me)) for n in own]
            sub = (lambda t: z3.substitute(t, *pairs))
            guard = [b.below(b.me)] + [sub(g) for g in guard]
            events = [(prop, sub(c)) for prop, c in events]
            folded = {k: sub(t) for k, t in updates.items() if k not in vocab.member}
            for n in own:
                if n in updates:
                    arr = vocab.member[n]
                    folded[arr] = z3.Store(folded.get(arr, s0[arr]), b.me, sub(updates[n]))
            updates = folded
        paths.append((ci, Path(p.start, [z3.simplify(g) for g in guard], {k: z3.simplify(t) for k, t in updates.items()},
                               [(prop, z3.simplify(c)) for prop, c in events], p.labels)))
    return ParamEncoding(model, vocab, blocks, paths, s0)


class _View:
    """What forget_dead_locals reads of a vocabulary, with the per-CPU tasks'
    own scalars among the names."""

    def __init__(self, vocab: ParamVocab, names: list[str]):
        self.contexts, self.names = vocab.contexts, names
        self.local, self.pc = vocab.local, vocab.pc
