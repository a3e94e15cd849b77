"""`--cpus any` by counter abstraction: one finite search that covers every N
(docs/every-n.md, "Counting CPUs").

The non-boot CPUs that nothing names -- no global, lock field, actor local, IPI
or hand-off holds their number, their kthreads are idle and hold nothing -- are
passive: a step can read them only through a quantifier, a loop's condition or
a `pick`, and change them only by choosing one (a loop advance, a `pick`) or
all of a kind at once (a loop passing the CPUs whose condition fails). So
such a CPU is described by its *class*, its own state with CPU numbers read
"the boot CPU" / "itself" (per-CPU variables, its idle kthreads, its
membership in the loops' sets of docs/symmetry.md's semantics O), and a state
of any N by its *abstraction*: the boot CPU and the named CPUs as they are,
and the set of classes of the others -- how many CPUs each class has is
forgotten (0 or at least 1). Abstract states are finite in number, whatever N.

An abstract state is kept as a concrete state of the semantics O with one CPU
per class (so every engine part already written runs on it: the interpreter's
steps, `deadlocked()`, the properties' evaluation, the symmetry reduction of
the named CPUs). To step it, each class is *materialised* with k copies, k one
more than the most CPUs one block can choose (`choices()`): a step then leaves
at least one copy of a class that nothing chose, which shows what the class's
other members became. Its successors are abstracted again, once with each
class a step chose from kept (the class had more members) and once without
(it had exactly the ones chosen).

Why this over-approximates every N (the argument in docs/every-n.md): the
conditions of a step (`fragment()` checks the policy for it) read a CPU that
nothing names only through quantifiers and loop conditions over one CPU
variable at a time, compared only with named CPUs -- and such a condition has
the same value at a CPU and at any other CPU of its class, so it has the same
value on a state and on its materialisation. A step by a context of a
concrete state at any N is then a step of the materialised abstract state (the
CPUs it chooses mapped onto copies of their classes), and its successor's
abstraction is one of the successors computed. So the abstract search reaches
the abstraction of every state the semantics O reaches, at every N, and O
contains every run of the reference semantics unless it raises `OrderSeen`
(docs/symmetry.md), which the abstract search would then meet too (its
conditions are again one-CPU conditions). If no abstract state or step breaks
a property, no state of any N does: "proved (every N >= 2)". A property broken
in the abstraction may still hold (the abstraction forgets the counts): it is
then left to the other routes.

The certificate is the set of abstract states: `recheck()` checks, with fresh
objects, that it contains the initial abstraction, is closed under the
abstract step, and holds no bad state or step.

Where it stands: not yet called by `--cpus any` (engines/every_n.py). It
proves the loop models of benchmarks/models/ in well under a second; the
thread's policies are inside its fragment since initial values chosen per CPU
are (`initial()`), but upstream-fixed's abstraction passed 488,000 states in
240 s without closing: few named CPUs, many mixes of up to 5 classes
(docs/every-n.md; benchmarks/RESULTS.md, run 15).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tdxproof.encode.flatten import flatten
from tdxproof.interp.explore import StateEnv, no_cyclic_gc, rss_bytes
from tdxproof.interp.program import ModelError, Program
from tdxproof.interp.state import IDLE, RUN, initial_states
from tdxproof.interp.step import Blocked, Successors, deadlocked
from tdxproof.interp.evaluate import compile_expr
from tdxproof.interp.symmetry import Canon, NotSymmetric, OrderSeen, Symmetry, analyse, loop_orders
from tdxproof.model import ir
from tdxproof.model.blocks import model_bodies
from tdxproof.model.wellformed import sub_exprs, walk_exprs, walk_stmts

FIRST = 2
MAX_STATES = 3_000_000


# ---------------------------------------------------------------- the fragment
def _pos(span: Any) -> str:
    if span is None or not getattr(span, "line", 0):
        return ""
    return f" ({span.path}:{span.line}:{span.col})" if getattr(span, "path", None) else f" (line {span.line})"


def fragment(model: ir.Model, other: ir.Model) -> str | None:
    """Why counting does not apply to the policy (lowered at two N), or None.
    Beyond what the symmetry reduction needs (`symmetry.analyse`): nothing that
    counts CPUs or depends on N, one package, initial values that do not
    depend on N, and conditions over one chosen or quantified CPU at a time."""
    for a, b in zip(model.vars, other.vars):
        if a.type != b.type:
            return f"the type of `{a.name}` depends on the number of CPUs{_pos(a.span)}"
    for f, g in zip(model.functions, other.functions):
        for a, b in zip(f.locals + f.params, g.locals + g.params):
            if a.type != b.type:
                return f"the type of `{a.name}` in `{f.name}` depends on the number of CPUs{_pos(f.span)}"
    sym = analyse(Program(model, max(model.cpus, 3), any_order=True))
    if isinstance(sym, NotSymmetric):
        return sym.describe()
    if model.packages > 1:
        return f"`packages {model.packages}`: which CPUs share a package depends on N"
    allowed = {id(o.lt) for o in loop_orders(model).values() if o.lt is not None}
    for v in model.vars:
        for e in sub_exprs(v.init):
            if isinstance(e, ir.Quant) and isinstance(e.qvar.type, ir.CpuType):
                return f"the initial value of `{v.name}` reads other CPUs{_pos(v.span)}"
    tops: list[tuple[ir.Expr, frozenset]] = []
    for _, body in model_bodies(model):
        for s in walk_stmts(body):
            if isinstance(s, (ir.ForCpu, ir.Pick)) and isinstance(s.var.type, ir.CpuType):
                if s.where is not None:
                    tops.append((s.where, frozenset({("L", s.var.slot)})))
                continue
            tops.extend((e, frozenset()) for e in walk_exprs(s))
    tops += [(p.expr, frozenset()) for p in model.properties if p.expr is not None]
    tops += [(p.expr, frozenset()) for p in model.predicates]
    for e, bound in tops:
        why = _one_cpu_at_a_time(e, bound, allowed, set())
        if why is not None:
            return why
    return None


def _mentions(e: ir.Expr, bound: frozenset) -> set:
    out = set()
    for x in sub_exprs(e):
        if isinstance(x, ir.QVarRef) and ("Q", x.qvar.id) in bound:
            out.add(("Q", x.qvar.id))
        elif isinstance(x, ir.LocalRef) and ("L", x.local.slot) in bound:
            out.add(("L", x.local.slot))
        elif isinstance(x, ir.PredRef):
            out |= _mentions(x.pred.expr, bound)
    return out


def _one_cpu_at_a_time(e: ir.Expr, bound: frozenset, allowed: set[int], seen: set[str]) -> str | None:
    """NOTE(counting): a condition may compare a chosen or quantified CPU with a
    named one, never two of them with each other (`exists cpu d: d != c`): a
    class of one CPU and a class of many would differ there."""
    match e:
        case ir.Quant(kind=kind, qvar=q, body=body) if isinstance(q.type, ir.CpuType):
            if kind is ir.QuantKind.COUNT:
                return f"`count cpu` counts CPUs{_pos(e.span)}"
            return _one_cpu_at_a_time(body, bound | {("Q", q.id)}, allowed, seen)
        case ir.Builtin(op=ir.BuiltinOp.NR_CPUS):
            return f"`nr_cpus` names the number of CPUs{_pos(e.span)}"
        case ir.Binary(left=a, right=b) if (isinstance(getattr(a, "type", None), ir.CpuType)
                                            or isinstance(getattr(b, "type", None), ir.CpuType)):
            if id(e) in allowed:
                return None
            if all(isinstance(x, ir.Builtin) and x.op is ir.BuiltinOp.PKG for x in (a, b)):
                return None     # one package: true
            ma, mb = _mentions(a, bound), _mentions(b, bound)
            if ma and mb and not (ma == mb and len(ma) == 1):
                return f"compares two CPUs a condition chooses or quantifies{_pos(e.span)}"
            return None
        case ir.PredRef(pred=p):
            if p.name in seen:
                return None
            return _one_cpu_at_a_time(p.expr, bound, allowed, seen | {p.name})
    for sub in _children(e):
        why = _one_cpu_at_a_time(sub, bound, allowed, seen)
        if why is not None:
            return why
    return None


def _children(e: ir.Expr) -> list[ir.Expr]:
    direct: list[ir.Expr] = []
    for f in getattr(e, "__dataclass_fields__", {}):
        v = getattr(e, f)
        if isinstance(v, tuple):
            direct.extend(x for x in v if _is_expr(x))
        elif _is_expr(v):
            direct.append(v)
    return direct


def _is_expr(x: Any) -> bool:
    return type(x).__module__ == ir.__name__ and hasattr(x, "type") and not isinstance(
        x, (ir.Var, ir.Local, ir.QVar, ir.Function, ir.Lock, ir.Field, ir.Predicate))


def choices(model: ir.Model) -> int:
    """The most CPUs one block may choose (loop advances, `pick`s, `any` of a
    CPU), over every block path of every context."""
    from tdxproof.engines.cutoff import _heaviest_block
    actors, kthreads = flatten(model)
    top = 0
    for auto in actors + list(kthreads.values()):
        weight = {}
        for node in auto.nodes:
            s = node.stmt
            w = 0
            if node.op in ("for_first", "for_next", "pick") and s is not None and \
                    isinstance(getattr(getattr(s, "var", None), "type", None), ir.CpuType):
                w = 1
            elif s is not None:
                w = sum(1 for top_e in walk_exprs(s) for x in sub_exprs(top_e)
                        if isinstance(x, ir.AnyValue) and isinstance(x.type, ir.CpuType))
            weight[node.id] = w
        top = max(top, _heaviest_block(auto, weight))
    return top


# ---------------------------------------------------------------- states of any N
class _StableCanon(Canon):
    """Canon with the signatures compared as values, not as numbers given in
    the order first seen: the canonical state of an orbit is then the same in
    every run, so a certificate (a set of them) can be checked by another."""

    def _own(self, vals: tuple) -> tuple:
        return vals

    def _seen(self, cs: tuple) -> tuple:
        return cs

    @staticmethod
    def _join(a: tuple, b: tuple) -> tuple:
        return (a, b)


@dataclass
class _At:
    """What is needed of one N: the program, its memoised steps, renaming."""
    n: int
    prog: Program
    succ: Successors
    canon: Canon


class Abstraction:
    def __init__(self, model: ir.Model):
        self.model = model
        self._at: dict[int, _At] = {}
        p2 = self.at(FIRST).prog
        self.cpu_globals: list[int] = []        # non-per-CPU cells that hold a CPU
        self.percpu: list[tuple[str, bool]] = []   # per-CPU variables: (name, holds a CPU)
        self.plain: list[tuple[str, bool]] = []
        for v in model.vars:
            is_cpu = isinstance(v.type, ir.CpuType)
            (self.percpu if v.per_cpu else self.plain).append((v.name, is_cpu))
        self.fields = [(lk.index, f.name, isinstance(f.type, ir.CpuType))
                       for lk in model.locks for f in p2.classes[lk.cls].fields]
        self.nactors = sum(a.copies for a in model.actors)
        self.kinds = [k.name for k in model.kthreads]

    def at(self, n: int) -> _At:
        hit = self._at.get(n)
        if hit is None:
            prog = Program(self.model, n, any_order=True)
            succ = Successors(prog)
            sym = Symmetry((tuple(range(1, n)),)) if n > 2 else Symmetry(((1,),))
            canon = _StableCanon(prog, sym, succ.canonical)
            hit = self._at[n] = _At(n, prog, succ, canon)
        return hit

    # -- what a state names
    def named(self, at: _At, s: tuple) -> set[int]:
        prog, canon, n = at.prog, at.canon, at.n
        g, ctxs = s
        out = {0}
        for name, is_cpu in self.plain:
            if is_cpu:
                off = prog.var_off[name]
                out.update(g[off:off + prog.var_size[name]])
        for lk, f, is_cpu in self.fields:
            if is_cpu:
                out.add(g[prog.field_off[(lk, f)]])
        for name, is_cpu in self.percpu:
            if is_cpu:
                off = prog.var_off[name]
                for c in range(n):
                    v = g[off + c]
                    if v != 0 and v != c:
                        out.add(c)
                        out.add(v)
        kb = canon.kbases
        for i, ctx in enumerate(ctxs):
            own = None
            if i >= self.nactors:
                own = (i - self.nactors) % n
                if ctx[3] != IDLE or ctx[0] or ctx[1]:
                    out.add(own)
            for f in ctx[0]:
                if f[3] >= 0:
                    out.add(f[3])
                cm = canon.code_map[f[0]]
                if cm is None:
                    continue
                loc = f[2]
                for sl in cm[0]:
                    out.add(loc[sl])
                for sl in cm[1]:
                    t = loc[sl]
                    for base in kb:
                        if base <= t < base + n:
                            out.add(t - base)
        return out

    def sig(self, at: _At, s: tuple, c: int) -> tuple:
        """The class of a CPU nothing names: its own state, CPU numbers as
        0 (the boot CPU) or 1 (itself)."""
        return self.sigs(at, s, (c,))[c]

    def sigs(self, at: _At, s: tuple, cpus) -> dict[int, tuple]:
        """`sig` of each CPU of `cpus`, the state's loop sets read once."""
        prog, canon, n = at.prog, at.canon, at.n
        g, ctxs = s
        offs = [(prog.var_off[name], is_cpu) for name, is_cpu in self.percpu]
        sets = [f[2][sl] for ctx in ctxs for f in ctx[0] if (cm := canon.code_map[f[0]]) is not None
                for sl in cm[2]]
        kb = canon.kbases
        out = {}
        for c in cpus:
            vals = tuple(((0 if g[off + c] == 0 else 1) if is_cpu else g[off + c]) for off, is_cpu in offs)
            ks = tuple(ctxs[base + c] for base in kb)
            member = tuple((b >> c) & 1 | ((b >> (n + c)) & 1) << 1 | ((b >> (2 * n + c)) & 1) << 2 for b in sets)
            out[c] = (vals, ks, member)
        return out

    # -- moving between N
    def project(self, at: _At, s: tuple, keep: list[int]) -> tuple:
        """The state with CPU keep[i] as CPU i, at N = len(keep); a CPU number
        of a CPU not kept is an error (only unnamed CPUs are dropped)."""
        n2 = len(keep)
        to = self.at(n2)
        p1, p2 = at.prog, to.prog
        mp = {c: i for i, c in enumerate(keep)}
        g, ctxs = s
        g2 = [0] * p2.nglobals
        for name, is_cpu in self.plain:
            o1, o2 = p1.var_off[name], p2.var_off[name]
            for j in range(p1.var_size[name]):
                v = g[o1 + j]
                g2[o2 + j] = mp[v] if is_cpu else v
        for name, is_cpu in self.percpu:
            o1, o2 = p1.var_off[name], p2.var_off[name]
            for i, c in enumerate(keep):
                v = g[o1 + c]
                g2[o2 + i] = mp[v] if is_cpu else v
        for lk, f, is_cpu in self.fields:
            v = g[p1.field_off[(lk, f)]]
            g2[p2.field_off[(lk, f)]] = mp[v] if is_cpu else v
        n1 = at.n
        ctx_of = self._ctx
        out = [ctx_of(at, ctxs[i], mp, n1, n2) for i in range(self.nactors)]
        for base1 in at.canon.kbases:
            for c in keep:
                ctx = ctxs[base1 + c]
                out.append(ctx_of(at, ctx, mp, n1, n2) if ctx[0] else ctx)   # an idle kthread names no CPU
        return to.succ.canonical((tuple(g2), tuple(out)))

    def _ctx(self, at: _At, ctx: tuple, mp: dict, n1: int, n2: int, pairs: list | None = None) -> tuple:
        """A context with CPU c as mp[c]; a loop set's member c becomes i for
        each (c, i) of `pairs` (mp's, unless given: a copy joins its original)."""
        if not ctx[0]:
            return ctx
        frames = []
        for code, pc, loc, ipi, saved in ctx[0]:
            cm = at.canon.code_map[code]
            if cm is not None:
                loc = list(loc)
                cpu_slots, targets, bits = cm
                for sl in cpu_slots:
                    loc[sl] = mp[loc[sl]]
                for sl in targets:
                    t = loc[sl]
                    for k, base in enumerate(at.canon.kbases):
                        if base <= t < base + n1:
                            loc[sl] = self.nactors + k * n2 + mp[t - base]
                            break
                for sl in bits:
                    b, nb = loc[sl], 0
                    for grp in range(3):
                        for c, i in (pairs if pairs is not None else mp.items()):
                            if (b >> (grp * n1 + c)) & 1:
                                nb |= 1 << (grp * n2 + i)
                    loc[sl] = nb
                loc = tuple(loc)
            frames.append((code, pc, loc, mp[ipi] if ipi >= 0 else ipi, saved))
        return (tuple(frames),) + ctx[1:]

    def abstract(self, at: _At, s: tuple, drop: frozenset = frozenset(), named: set[int] | None = None,
                 sigs: dict[int, tuple] | None = None) -> tuple:
        """The abstract state of `s` (a canonical state of some N), without the
        unnamed CPUs in `drop` (`named` and `sigs` of `s`, if known)."""
        if named is None:
            named = self.named(at, s)
        if sigs is None:
            sigs = self.sigs(at, s, [c for c in range(1, at.n) if c not in named])
        reps: dict[tuple, int] = {}
        for c in range(1, at.n):
            if c not in named and c not in drop:
                reps.setdefault(sigs[c], c)
        keep = [0] + sorted(named - {0}) + [reps[k] for k in sorted(reps)]
        if len(keep) < FIRST:
            keep.append(next(c for c in range(1, at.n) if c not in keep))
        t = self.project(at, s, keep)
        return self.at(len(keep)).canon.canonical(t)

    def materialise(self, at: _At, a: tuple, k: int) -> tuple[_At, tuple, dict[int, list[int]]]:
        """`a` with each unnamed CPU (one per class) copied k times; and, per
        original CPU of a class, its copies."""
        named = self.named(at, a)
        reps = [c for c in range(1, at.n) if c not in named]
        if k <= 1 or not reps:
            return at, a, {c: [c] for c in reps}
        keep = list(range(at.n)) + [c for c in reps for _ in range(k - 1)]
        # project() maps a kept CPU's number through one table; the copies are
        # built by duplicating the CPU's own columns, which nothing else names
        n2 = len(keep)
        to = self.at(n2)
        p1, p2 = at.prog, to.prog
        g, ctxs = a
        g2 = [0] * p2.nglobals
        for name, is_cpu in self.plain:
            o1, o2 = p1.var_off[name], p2.var_off[name]
            g2[o2:o2 + p1.var_size[name]] = g[o1:o1 + p1.var_size[name]]
        for name, is_cpu in self.percpu:
            o1, o2 = p1.var_off[name], p2.var_off[name]
            for i, c in enumerate(keep):
                v = g[o1 + c]
                g2[o2 + i] = (i if v == c else v) if is_cpu else v
        for lk, f, is_cpu in self.fields:
            g2[p2.field_off[(lk, f)]] = g[p1.field_off[(lk, f)]]
        # CPU numbers as they were (the originals keep theirs); loop sets with
        # every copy where its original is
        ident = {c: c for c in range(at.n)}
        pairs = [(c, i) for i, c in enumerate(keep)]
        out = [self._ctx(at, ctxs[i], ident, at.n, n2, pairs) for i in range(self.nactors)]
        for base1 in at.canon.kbases:
            for i, c in enumerate(keep):
                out.append(self._ctx(at, ctxs[base1 + c], ident, at.n, n2, pairs))
        copies: dict[int, list[int]] = {c: [c] for c in reps}
        for i in range(at.n, n2):
            copies[keep[i]].append(i)
        return to, to.succ.canonical((tuple(g2), tuple(out))), copies

# ---------------------------------------------------------------- the search
@dataclass
class Counted:
    """The outcome of the abstract search."""
    complete: bool = False
    broken: dict[str, str] = field(default_factory=dict)    # property -> what breaks it in the abstraction
    why: str | None = None        # the search as a whole could not conclude
    states: int = 0
    seconds: float = 0.0
    copies: int = 1
    largest: int = 0              # the most CPUs of an abstract state
    digest: str = ""
    reached: set = field(default_factory=set, repr=False)


def search(model: ir.Model, props: list[ir.Property], *, max_states: int = MAX_STATES,
           timeout_s: float | None = None, progress: Callable | None = None,
           abstraction: Abstraction | None = None) -> Counted:
    out = Counted()
    t0 = time.monotonic()
    ab = abstraction or Abstraction(model)
    k = choices(model) + 1
    out.copies = k
    invariants = [(p, p.expr) for p in props if p.kind is ir.PropKind.INVARIANT and p.expr is not None]
    deadlocks = [p for p in props if p.kind is ir.PropKind.DEADLOCK]
    names = {p.name for p in props}
    prop_names = [p.name for p in model.properties]
    quiescent = model.predicate("quiescent")
    compiled: dict[int, tuple] = {}

    def checks(at: _At) -> tuple:
        hit = compiled.get(at.n)
        if hit is None:
            q = compile_expr(at.prog, quiescent.expr) if quiescent is not None else None
            hit = compiled[at.n] = (q, [(p, compile_expr(at.prog, e)) for p, e in invariants])
        return hit

    def observe(at: _At, s: tuple) -> None:
        q, inv = checks(at)
        env = StateEnv(at.prog, s)
        quiet = None
        for p, fn in inv:
            if p.name in out.broken:
                continue
            if p.observe is ir.Observe.QUIESCENT:
                if quiet is None:
                    quiet = bool(q(env)) if q else True
                if not quiet:
                    continue
            if not fn(env):
                out.broken[p.name] = f"a state of the abstraction with {at.n} CPUs breaks it"

    seen: dict[tuple, None] = {}
    queue: list[tuple[int, tuple]] = []
    try:
        first = initial(ab)
    except _TooMany as exc:
        out.why = str(exc)
        first = []
    for key in first:
        if key not in seen:
            seen[key] = None
            queue.append(key)
    head = 0
    last = t0
    try:
        with no_cyclic_gc():
            while head < len(queue) and out.why is None:
                if len(seen) > max_states:
                    out.why = f"the abstraction has more than {max_states:,} states"
                    break
                now = time.monotonic()
                if timeout_s is not None and now - t0 > timeout_s:
                    out.why = f"timeout of {timeout_s:g} s reached"
                    break
                if progress is not None and now - last > 0.5:
                    last = now
                    progress(len(seen), 0, now - t0, rss_bytes())
                n, a = queue[head]
                head += 1
                at = ab.at(n)
                observe(at, a)
                for key2 in successors(ab, at, a, k, out, prop_names, names, deadlocks):
                    if key2 not in seen:
                        seen[key2] = None
                        queue.append(key2)
                if out.why is not None:
                    break
            else:
                out.complete = out.why is None   # not when the initial states already failed
    except OrderSeen as exc:
        out.why = f"a CPU loop's condition changed while it ran{_pos(exc.span)}: the any-order reading " \
                  "does not stand for the kernel's order"
    except ModelError as exc:
        out.why = f"a state of the abstraction meets a run-time model error: {exc.message}{_pos(exc.span)}"
    out.states = len(seen)
    out.largest = max((n for n, _ in queue), default=0)
    out.seconds = time.monotonic() - t0
    out.reached = set(seen)
    out.digest = digest(out.reached)
    return out


class _TooMany(Exception):
    pass


MAX_INITIAL_CLASSES = 6


def initial(ab: Abstraction) -> list[tuple[int, tuple]]:
    """The abstractions of the initial states of every N. An initial value chosen
    per CPU (`online[c] = c == 0 || any`) gives a non-boot CPU one of a few
    initial classes C, each CPU its own choice (`fragment()`: an initial value
    reads no other CPU), so the initial states of every N abstract into the
    non-empty subsets of C (the set of classes a state has) -- all of which the
    initial states of N = 1 + |C| show, one CPU per class."""
    at2 = ab.at(FIRST)
    classes = {ab.sig(at2, at2.succ.canonical(s), 1) for s in initial_states(at2.prog)}
    if len(classes) > MAX_INITIAL_CLASSES:
        raise _TooMany(f"a non-boot CPU starts in one of {len(classes)} classes (more than {MAX_INITIAL_CLASSES})")
    out: dict[tuple[int, tuple], None] = {}
    for n in range(FIRST, FIRST + len(classes)):
        at = ab.at(n)
        for s in initial_states(at.prog):
            a = ab.abstract(at, at.succ.canonical(s))
            out[(ab_n(ab, a), a)] = None
    return list(out)


def ab_n(ab: Abstraction, a: tuple) -> int:
    """The N of an abstract state (its kthread contexts, or its per-CPU globals)."""
    nk = len(ab.kinds)
    if nk:
        return (len(a[1]) - ab.nactors) // nk
    for n, at in ab._at.items():
        if at.prog.nglobals == len(a[0]):
            return n
    raise AssertionError("an abstract state of no known N")


def stepped(mat: _At, m: tuple, broken: dict[str, str], prop_names: list[str], names: set[str], where: str,
            skip: Callable[[int, tuple], bool] | None = None) -> tuple[list[tuple], dict[int, Any]]:
    """Every running context's block from `m` (a state of `mat`): the successor
    states, and the blocked contexts' wait sets. A check of `names` a step
    fails goes to `broken` ("a step of {where} with n CPUs breaks it");
    `skip(ci, ctx)`: contexts not to step (engines/views.py)."""
    ctxs = m[1]
    blocked: dict[int, Any] = {}
    succs: list[tuple] = []
    for ci in range(len(ctxs)):
        ctx = ctxs[ci]
        if ctx[3] != RUN or not ctx[0] or (skip is not None and skip(ci, ctx)):
            continue
        res = mat.succ.step(m, ci)
        if type(res) is not list:
            if isinstance(res, Blocked):
                blocked[ci] = res.waits
            continue
        for _, t, events, _ in res:
            for ev in events or ():
                name = prop_names[ev]
                if name in names and name not in broken:
                    broken[name] = f"a step of {where} with {mat.n} CPUs breaks it"
            succs.append(t)
    return succs, blocked


def successors(ab: Abstraction, at: _At, a: tuple, k: int, out: Counted, prop_names: list[str],
               names: set[str], deadlocks: list) -> list[tuple[int, tuple]]:
    """The abstract successors of `a`; what they break goes to `out.broken`."""
    mat, m, copies = ab.materialise(at, a, k)
    succs, blocked = stepped(mat, m, out.broken, prop_names, names, "the abstraction")
    res_keys: list[tuple[int, tuple]] = []
    for t in succs:
        named = ab.named(mat, t)
        sigs = ab.sigs(mat, t, [c for c in range(1, mat.n) if c not in named])
        for drop in _variants(named, sigs, copies):
            a2 = ab.abstract(mat, t, drop, named, sigs)
            res_keys.append((ab_n(ab, a2), a2))
    if blocked and deadlocks:
        if deadlocked(m, blocked):
            for p in deadlocks:
                out.broken.setdefault(p.name, "a state of the abstraction deadlocks")
    return res_keys


def _variants(named: set[int], sigs: dict[int, tuple], copies: dict[int, list[int]]):
    """For each class a step chose from: its unchosen copies kept (the class
    had more CPUs), or dropped (it had exactly those chosen). The CPUs to drop
    from the successor (`named`, `sigs`: its named CPUs and classes), one set
    per variant."""
    options: list[list[frozenset]] = []
    for c, cs in copies.items():
        groups: dict[tuple, list[int]] = {}
        chosen = False
        for x in cs:
            if x in named:
                chosen = True
                continue
            groups.setdefault(sigs[x], []).append(x)
        if not chosen and len(groups) == 1:
            continue          # every copy alike: untouched, or all passed at once
        opts = [frozenset()]
        for grp in groups.values():
            opts.append(frozenset(grp))
        options.append(opts)
    if not options:
        yield frozenset()
        return
    for combo in itertools.product(*options):
        yield frozenset().union(*combo)


def digest(reached: set) -> str:
    h = hashlib.sha256()
    for key in sorted(repr(x) for x in reached):
        h.update(key.encode())
    return h.hexdigest()[:16]


def recheck(model: ir.Model, props: list[ir.Property], reached: set) -> str | None:
    """Check a set of abstract states with fresh objects: it holds the initial
    abstraction, is closed under the abstract step, and nothing in it breaks a
    property. None, or what fails."""
    ab = Abstraction(model)
    k = choices(model) + 1
    try:
        first = initial(ab)
    except _TooMany as exc:
        return str(exc)
    if any(key not in reached for key in first):
        return "an initial state's abstraction is not in the certificate"
    out = Counted()
    names = {p.name for p in props}
    prop_names = [p.name for p in model.properties]
    deadlocks = [p for p in props if p.kind is ir.PropKind.DEADLOCK]
    quiescent = model.predicate("quiescent")
    with no_cyclic_gc():
        for n, a in reached:
            at = ab.at(n)
            a = at.succ.canonical(a)
            env = StateEnv(at.prog, a)
            quiet = bool(compile_expr(at.prog, quiescent.expr)(env)) if quiescent is not None else True
            for p in props:
                if p.kind is ir.PropKind.INVARIANT and p.expr is not None:
                    if (p.observe is not ir.Observe.QUIESCENT or quiet) and not compile_expr(at.prog, p.expr)(env):
                        return f"a state of the certificate breaks `{p.name}`"
            for key in successors(ab, at, a, k, out, prop_names, names, deadlocks):
                if key not in reached:
                    return "the certificate is not closed under the abstract step"
            if out.broken:
                return f"a step of the certificate breaks `{next(iter(out.broken))}`"
    return None
