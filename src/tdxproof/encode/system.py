"""The transition system of a model with N CPUs, as Z3 formulas over one step.

  init(s)          the initial states (`any` ranges over its type)
  trans(s, s', k)  sel@k picks exactly one block path; it is enabled in s and
                   gives s' (every variable it does not write keeps its value)
  bad_*(...)       where each property is observed (NOTE(observation) in ir.py)

The template for one step is built once; `step(k)` renames it for step k.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from tdxproof.encode.flatten import flatten
from tdxproof.encode.liveness import forget_dead_locals
from tdxproof.encode.symbolic import Blocks, Path, b2bv, truth
from tdxproof.encode.vocab import DONE, IDLE, MODES, NO_PC, PCW, RUN, Context, Vocab, bv
from tdxproof.model import ir

SELW = 16


@dataclass
class Encoding:
    model: ir.Model
    n: int
    vocab: Vocab
    blocks: list[Blocks]
    paths: list[tuple[int, Path]]            # (context index, path)
    t_template: z3.BoolRef
    events: dict[int, z3.BoolRef]            # property index -> "violated during the step" (template)
    s0: dict[str, z3.ExprRef] = field(default_factory=dict)
    s1: dict[str, z3.ExprRef] = field(default_factory=dict)
    sel0: z3.BitVecRef | None = None

    # ------------------------------------------------------------ renaming
    def state(self, k: int) -> dict[str, z3.ExprRef]:
        return self.vocab.at(k)

    def sel(self, k: int) -> z3.BitVecRef:
        return z3.BitVec(f"sel@{k}", SELW)

    def _rename(self, f: z3.ExprRef, k: int) -> z3.ExprRef:
        a, b = self.state(k), self.state(k + 1)
        pairs = [(self.s0[n], a[n]) for n in self.vocab.names] + \
            [(self.s1[n], b[n]) for n in self.vocab.names] + [(self.sel0, self.sel(k))]
        return z3.substitute(f, *pairs)

    def trans(self, k: int) -> z3.BoolRef:
        return self._rename(self.t_template, k)

    def event_bad(self, prop_index: int, k: int) -> z3.BoolRef:
        return self._rename(self.events[prop_index], k)

    # ------------------------------------------------------------ state predicates
    def expr(self, e: ir.Expr, s: dict) -> z3.BoolRef:
        b = self.blocks[0]
        return truth(b.expr(e, s, b.auto.nodes[0] if b.auto.nodes else _NoFrame()))

    def quiescent(self, s: dict) -> z3.BoolRef:
        q = self.model.predicate("quiescent")
        return self.expr(q.expr, s) if q is not None else z3.BoolVal(True)

    def init(self, s: dict) -> z3.BoolRef:
        """The initial states, in terms of state s."""
        v, b = self.vocab, self.blocks[0]
        node = _NoFrame()
        cs: list[z3.BoolRef] = []
        fresh = [0]

        def value(e: ir.Expr, q: dict[int, int]) -> z3.BitVecRef:
            if not any(isinstance(x, ir.AnyValue) for x in _subs(e)):
                return b.expr(e, s, node, q)
            return _nd(e, q)

        def _nd(e: ir.Expr, q: dict[int, int]) -> z3.BitVecRef:
            match e:
                case ir.AnyValue(type=ty):
                    fresh[0] += 1
                    x = z3.BitVec(f"init_any{fresh[0]}", 8)
                    lo, hi = _range(ty, self.n)
                    cs.append(z3.And(x >= bv(lo), x <= bv(hi)))
                    return x
                case ir.Binary(op=op, left=l, right=r):
                    return b._binary(op, value(l, q), value(r, q))
                case ir.Unary(op="!", operand=x):
                    return b2bv(value(x, q) == bv(0))
                case ir.CondExpr(cond=c, then=t, other=o):
                    return z3.If(truth(value(c, q)), value(t, q), value(o, q))
            return b.expr(e, s, node, q)

        for var in self.model.vars:
            for i in range(v.var_cells(var)):
                q = {var.binder.id: i} if var.binder is not None else {}
                cs.append(s[v.cells[(var.name, i)]] == value(var.init, q))
        classes = {c.name: c for c in self.model.lock_classes}
        for lock in self.model.locks:
            for f in classes[lock.cls].fields:
                cs.append(s[v.fields[(lock.index, f.name)]] == b.expr(f.init, s, node))
        for c in v.contexts:
            actor = c.auto.kind == "actor"
            cs.append(s[v.pc(c)] == z3.BitVecVal(c.auto.entry if actor else NO_PC, PCW))
            cs.append(s[v.status(c)] == bv(RUN if actor else IDLE))
            for name in (v.aux(c), v.irqs(c), v.saved(c)):
                cs.append(s[name] == bv(0))
            cs.append(s[v.ipi(c)] == bv(-1))
            for k in range(c.auto.nlocals):
                cs.append(s[v.local(c, k)] == bv(0))
            for lock in self.model.locks:
                for md in MODES.values():
                    cs.append(s[v.held(c, lock.index, md)] == bv(0))
        return z3.And(cs)

    def deadlock(self, s: dict, tag: str) -> z3.BoolRef:
        """NOTE(deadlock): some non-empty set D of blocked contexts waits only on
        members of D or on finished actors."""
        v = self.vocab
        d = {c.index: z3.Bool(f"dead[{c.name}]{tag}") for c in v.contexts}
        finished = {c.index: s[v.status(c)] == bv(DONE) for c in v.contexts}
        parts = [z3.Or(list(d.values()))]
        for b in self.blocks:
            c = b.c
            blocked, waits = b.blocked(s)
            parts.append(z3.Implies(d[c.index], blocked))
            for o in v.contexts:
                w = waits.get(o.index)
                if w is not None:
                    parts.append(z3.Implies(z3.And(d[c.index], w), z3.Or(d[o.index], finished[o.index])))
        return z3.And(parts)


class _NoFrame:
    frame = 0


def _subs(e: ir.Expr):
    from tdxproof.model.wellformed import sub_exprs
    return sub_exprs(e)


def _range(ty: ir.Type, n: int) -> tuple[int, int]:
    match ty:
        case ir.BoolType():
            return 0, 1
        case ir.IntType(lo=lo, hi=hi):
            return lo, hi
        case ir.CpuType():
            return 0, n - 1
        case ir.EnumType(members=m):
            return 0, len(m) - 1
    return 0, 0


def contexts_of(model: ir.Model, n: int) -> list[Context]:
    """Context numbering and names, as the reference semantics has them: actor
    copies first, then one kthread per CPU for each kthread family."""
    actors, kthreads = flatten(model)
    out: list[Context] = []
    for a, auto in zip(model.actors, actors):
        home = 0
        if a.on_cpu is not None and isinstance(a.on_cpu, ir.Lit):
            home = a.on_cpu.value
        for i in range(a.copies):
            name = a.name if a.copies == 1 else f"{a.name}#{i + 1}"
            out.append(Context(len(out), name, auto, home, actor=a))
    for k in model.kthreads:
        for c in range(n):
            out.append(Context(len(out), f"{k.name}/{c}", kthreads[k.name], c, kthread=k))
    return out


def order_rules(model: ir.Model) -> tuple[dict[str, int], dict[int, list[tuple[int, int]]]]:
    """Each property's index, and for each lock the `order` rules that forbid
    taking it with another held: first lock -> [(second lock, property index)]."""
    prop_index = {p.name: i for i, p in enumerate(model.properties)}
    lock_index = {lk.name: lk.index for lk in model.locks}
    order: dict[int, list[tuple[int, int]]] = {}
    for p in model.properties:
        if p.kind is ir.PropKind.ORDER:
            first, second = (lock_index[x] for x in p.forbidden)
            order.setdefault(first, []).append((second, prop_index[p.name]))
    return prop_index, order


def encode(model: ir.Model, n: int | None = None) -> Encoding:
    n = n if n is not None else model.cpus
    contexts = contexts_of(model, n)
    vocab = Vocab.build(model, n, contexts)
    prop_index, order = order_rules(model)
    s0, s1 = vocab.at(0), vocab.at(1)
    sel0 = z3.BitVec("sel@0", SELW)
    blocks = [Blocks(vocab, c, prop_index, order) for c in contexts]
    paths: list[tuple[int, Path]] = []
    for b in blocks:
        for start in b.starts():
            for p in b.paths_from(start, s0):
                paths.append((b.c.index, p))
    # what no context's path shows: the properties. (The deadlock condition reads
    # a blocked context's locals at its blocking node, where the path that would
    # proceed reads them too, and waiting tasks' lock slots: see liveness.py.)
    pre = Encoding(model, n, vocab, blocks, paths, z3.BoolVal(True), {}, s0, s1, sel0)
    outside = [pre.quiescent(s0)]
    outside += [pre.expr(p.expr, s0) for p in model.properties
                if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER) and p.expr is not None]
    # simplify each path once, for every engine: constant-folded lock and pointer
    # arguments vanish from the template, the concrete code and the lemma search
    paths = [(ci, Path(p.start, [z3.simplify(g) for g in p.guard], {k: z3.simplify(t) for k, t in p.updates.items()},
                       [(prop, z3.simplify(cond)) for prop, cond in p.events], p.labels))
             for ci, p in forget_dead_locals(vocab, paths, s0, outside)]
    if len(paths) >= (1 << SELW):
        raise RuntimeError("too many block paths for the selector")
    writers: dict[str, list[int]] = {name: [] for name in vocab.names}
    parts: list[z3.BoolRef] = [z3.ULT(sel0, z3.BitVecVal(len(paths), SELW))]
    events: dict[int, list[z3.BoolRef]] = {}
    for i, (ci, p) in enumerate(paths):
        on = sel0 == z3.BitVecVal(i, SELW)
        body = list(p.guard) + [s1[name] == term for name, term in p.updates.items()]
        parts.append(z3.Implies(on, z3.And(body)))
        for name in p.updates:
            writers[name].append(i)
        for prop, cond in p.events:
            events.setdefault(prop, []).append(z3.And(on, z3.Not(cond)))
    for name in vocab.names:
        ws = writers[name]
        if not ws:
            parts.append(s1[name] == s0[name])
        else:
            parts.append(z3.Or(s1[name] == s0[name], *[sel0 == z3.BitVecVal(i, SELW) for i in ws]))
    enc = Encoding(model, n, vocab, blocks, paths, z3.And(parts),
                   {k: z3.Or(v) for k, v in events.items()}, s0, s1, sel0)
    return enc
