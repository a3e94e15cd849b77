"""Symmetry reduction for the explicit engine (docs/symmetry.md).

Three parts:
- `loop_orders()`: the two places where the preludes observe the order of a
  `for cpu` loop (`j < k` in a rollback, "the first online CPU of a package"),
  recognised syntactically, with what the any-order semantics must watch there;
- `analyse()`: whether a program is symmetric under renaming its non-boot CPUs
  (within each package), or the reason it is not, with the place;
- `Canon`: states renamed by a permutation, and one canonical state per orbit.

The any-order semantics itself (Program(any_order=True)) is in program.py and
step.py (`_x_for_any`); the search and the way back to a concrete schedule of the
reference semantics are in engines/explicit.py.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from tdxproof.model import ir
from tdxproof.model.blocks import model_bodies
from tdxproof.model.cfg import Op
from tdxproof.model.wellformed import sub_exprs, walk_exprs, walk_stmts

_ORDER_OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class LoopOrder:
    """What the any-order semantics of one `for cpu` loop needs beyond its `where`."""
    stable: ir.Expr | None = None   # must keep its value at every CPU while the loop runs
    outer: int | None = None        # R1: the sid of the enclosing loop its `j < k` reads
    lt: ir.Binary | None = None     # the `j < k` read as "j was visited before k"


class OrderSeen(Exception):
    """The any-order semantics met a state where a loop's order could matter (a
    condition the argument of docs/symmetry.md needs stable changed): its
    verdicts cannot stand for the reference semantics'."""

    def __init__(self, span: Any):
        super().__init__("a CPU loop's condition changed while it ran")
        self.span = span


# ---------------------------------------------------------------- loop patterns
def _conj(e: ir.Expr | None) -> list[ir.Expr]:
    if e is None:
        return []
    if isinstance(e, ir.Binary) and e.op == "&&":
        return _conj(e.left) + _conj(e.right)
    return [e]


def _norm(e: Any, sub: dict) -> Any:
    """A span-free, hashable form of an IR expression, with the locals and bound
    variables in `sub` renamed (to compare `F(j)` with `F(k)`)."""
    if isinstance(e, ir.LocalRef):
        key = ("L", e.local.slot)
        return sub.get(key, key)
    if isinstance(e, ir.QVarRef):
        key = ("Q", e.qvar.id)
        return sub.get(key, key)
    if dataclasses.is_dataclass(e) and not isinstance(e, type) and type(e).__module__ == ir.__name__ \
            and not isinstance(e, (ir.Var, ir.Local, ir.QVar, ir.Function, ir.Lock, ir.Field, ir.Predicate)):
        return (type(e).__name__,) + tuple(_norm(getattr(e, f.name), sub) for f in dataclasses.fields(e)
                                           if f.name != "span")
    if isinstance(e, tuple):
        return tuple(_norm(x, sub) for x in e)
    if isinstance(e, ir.QVar):
        return sub.get(("Q", e.id), ("Q", e.id))
    if isinstance(e, ir.Var):
        return ("var", e.name)
    if isinstance(e, ir.Predicate):
        return ("pred", e.name)
    if isinstance(e, (ir.Lock, ir.Field, ir.Function)):
        return (type(e).__name__, e.name)
    return e


def _is_lt(e: ir.Expr, left: Any, right: ir.Local) -> bool:
    """`left < right`: left a LocalRef/QVarRef key, right the loop variable."""
    if not (isinstance(e, ir.Binary) and e.op == "<" and isinstance(e.right, ir.LocalRef)
            and e.right.local.slot == right.slot):
        return False
    a = e.left
    return (isinstance(a, ir.LocalRef) and ("L", a.local.slot) == left) or \
        (isinstance(a, ir.QVarRef) and ("Q", a.qvar.id) == left)


def _is_pkg_eq(e: ir.Expr, q: ir.QVar, k: ir.Local) -> bool:
    if not (isinstance(e, ir.Binary) and e.op == "=="):
        return False
    sides = []
    for x in (e.left, e.right):
        if not (isinstance(x, ir.Builtin) and x.op is ir.BuiltinOp.PKG and len(x.args) == 1):
            return False
        sides.append(_norm(x.args[0], {}))
    return sorted(map(str, sides)) == sorted(map(str, [("Q", q.id), ("L", k.slot)]))


def loop_orders(model: ir.Model) -> dict[int, LoopOrder]:
    """For each `for cpu` loop that reads `j < k` of its own or its enclosing
    loop's variable in one of the two shapes argued sound in docs/symmetry.md, what
    the any-order semantics needs:

    R1 (a rollback): `for cpu j where j < k && F(j)` in the body of
       `for cpu k where F(k)`: `j < k` means "the outer loop ran its body at j
       before k"; F must stay as it was at every CPU while the outer loop runs.
    R2 (the first CPU of each package): `for cpu k where A(k) && !(exists cpu j:
       j < k && A(j) && pkg(j) == pkg(k))`: `j < k` means "the loop ran its body
       at j"; A must stay as it was at every CPU while the loop runs.
    """
    out: dict[int, LoopOrder] = {}

    def visit(stmts: tuple[ir.Stmt, ...], stack: list[ir.ForCpu]) -> None:
        for s in stmts:
            if isinstance(s, ir.ForCpu):
                _classify(s, stack, out)
                visit(s.body, stack + [s])
                continue
            match s:
                case ir.If(then=t, other=o):
                    visit(t, stack)
                    visit(o, stack)
                case ir.Choice(branches=brs):
                    for b in brs:
                        visit(b, stack)
                case ir.Atomic(body=b) | ir.ForRange(body=b) | ir.Pick(body=b) | ir.Ipi(body=b):
                    visit(b, stack)

    for _, body in model_bodies(model):
        visit(body, [])
    return out


def _classify(s: ir.ForCpu, stack: list[ir.ForCpu], out: dict[int, LoopOrder]) -> None:
    conj = _conj(s.where)
    k = s.var
    for outer in reversed(stack):   # R1
        for i, c in enumerate(conj):
            if _is_lt(c, ("L", k.slot), outer.var):
                rest = [_norm(x, {}) for x in conj[:i] + conj[i + 1:]]
                want = [_norm(x, {("L", outer.var.slot): ("L", k.slot)}) for x in _conj(outer.where)]
                if rest and sorted(map(repr, rest)) == sorted(map(repr, want)):
                    out[s.sid] = LoopOrder(outer=outer.sid, lt=c)
                    prev = out.get(outer.sid, LoopOrder())
                    out[outer.sid] = dataclasses.replace(prev, stable=outer.where)
                    return
    # R2
    for i, c in enumerate(conj):
        if not (isinstance(c, ir.Unary) and c.op == "!" and isinstance(c.operand, ir.Quant)
                and c.operand.kind is ir.QuantKind.EXISTS):
            continue
        q = c.operand.qvar
        inner = _conj(c.operand.body)
        base = conj[:i] + conj[i + 1:]
        lts = [x for x in inner if _is_lt(x, ("Q", q.id), k)]
        pkgs = [x for x in inner if _is_pkg_eq(x, q, k)]
        if len(lts) != 1 or len(pkgs) != 1 or not base:
            continue
        rest = [_norm(x, {}) for x in inner if x is not lts[0] and x is not pkgs[0]]
        want = [_norm(x, {("L", k.slot): ("Q", q.id)}) for x in base]
        if sorted(map(repr, rest)) == sorted(map(repr, want)):
            stable = base[0]
            for x in base[1:]:
                stable = ir.Binary("&&", stable, x, ir.BOOL)
            prev = out.get(s.sid, LoopOrder())
            out[s.sid] = dataclasses.replace(prev, stable=stable, lt=lts[0])
            return


# ---------------------------------------------------------------- is it symmetric?
@dataclass(frozen=True)
class Symmetry:
    """The CPUs that may be renamed among themselves: each package's non-boot CPUs."""
    classes: tuple[tuple[int, ...], ...]

    @property
    def order(self) -> int:
        out = 1
        for c in self.classes:
            for i in range(2, len(c) + 1):
                out *= i
        return out

    def describe(self) -> str:
        parts = [f"CPUs {', '.join(map(str, c))}" for c in self.classes if len(c) > 1]
        return f"{self.order} renamings of {'; '.join(parts)}"


@dataclass(frozen=True)
class NotSymmetric:
    reason: str
    span: Any = None

    def describe(self) -> str:
        where = f" ({self.span.path}:{self.span.line})" if getattr(self.span, "path", None) else ""
        return f"not symmetric: {self.reason}{where}"


def _cpu(e: ir.Expr) -> bool:
    return isinstance(getattr(e, "type", None), ir.CpuType)


def analyse(prog: Any) -> Symmetry | NotSymmetric:
    """Whether renaming the non-boot CPUs of a package among themselves maps the
    any-order semantics onto itself (docs/symmetry.md): nothing may name a CPU but
    the boot CPU, compare CPUs by order (but the two loop patterns), compute with
    CPU numbers or store one where it is not a `cpu`; no per-CPU locks or actors
    (not supported yet), no actor pinned to a non-boot CPU; initial states closed
    under renaming (checked by Canon)."""
    model = prog.model
    n = prog.n
    allowed = {id(o.lt) for o in loop_orders(model).values() if o.lt is not None}
    for lk in model.locks:
        if lk.per_cpu:
            return NotSymmetric(f"per-CPU lock `{lk.array or lk.name}` (not supported yet)", lk.span)
    for a in model.actors:
        if a.per_cpu:
            return NotSymmetric(f"per-CPU actor `{a.name}` (not supported yet)", a.span)
        if a.on_cpu is not None and prog.const_eval(a.on_cpu) != 0:
            return NotSymmetric(f"actor `{a.name}` runs on a non-boot CPU", a.span)
    exprs: list[ir.Expr] = []
    rets = {f.name: f.ret for f in model.functions}
    for name, body in model_bodies(model):
        for s in walk_stmts(body):
            bad = _stmt_flow(s, rets.get(name))
            if bad is not None:
                return bad
            exprs.extend(walk_exprs(s))
            if isinstance(s, ir.ForRange) and isinstance(s.var.type, ir.CpuType):
                return NotSymmetric("a range loop over CPU numbers", s.span)
    exprs += [p.expr for p in model.properties if p.expr is not None]
    exprs += [p.expr for p in model.predicates]
    exprs += [v.init for v in model.vars]
    exprs += [f.init for c in model.lock_classes for f in c.fields]
    for top in exprs:
        for e in sub_exprs(top):
            bad = _expr_ok(e, allowed)
            if bad is not None:
                return bad
    pkg = prog.pkg
    classes = tuple(tuple(c for c in range(1, n) if pkg[c] == p) for p in sorted(set(pkg)))
    classes = tuple(c for c in classes if c)
    sym = Symmetry(classes)
    if sym.order < 2:
        return NotSymmetric("no two CPUs are interchangeable")
    return sym


def _expr_ok(e: ir.Expr, allowed: set[int]) -> NotSymmetric | None:
    match e:
        case ir.Lit(value=v, type=ir.CpuType()) if v != 0:
            return NotSymmetric(f"names CPU {v}", e.span)
        case ir.Binary(op=op, left=a, right=b) if _cpu(a) or _cpu(b):
            if op in ("==", "!="):
                for x, y in ((a, b), (b, a)):
                    if _cpu(x) and isinstance(y, ir.Lit) and y.value != 0:
                        return NotSymmetric(f"compares a CPU with {y.value}", e.span)
                    if _cpu(x) and not _cpu(y) and not isinstance(y, ir.Lit):
                        return NotSymmetric("compares a CPU with a value that is not a CPU", e.span)
            elif op in _ORDER_OPS:
                if id(e) not in allowed:
                    return NotSymmetric("compares CPUs by order", e.span)
            elif op in ("+", "-"):
                return NotSymmetric("computes with a CPU number", e.span)
        case ir.VarRef(var=var, index=i) if var.per_cpu and i is not None:
            if not _cpu_ok(i):
                if isinstance(i, ir.Lit):
                    return NotSymmetric(f"names CPU {i.value}", e.span)
                return NotSymmetric(f"indexes `{var.name}` by a value that is not a CPU", e.span)
        case ir.Unary(op="-", operand=x) if _cpu(x):
            return NotSymmetric("computes with a CPU number", e.span)
        case ir.CondExpr(then=t, other=o) if (_cpu(t) or _cpu(o)) and not (_cpu_ok(t) and _cpu_ok(o)):
            return NotSymmetric("mixes a CPU number with another value", e.span)
    return None


def _cpu_ok(e: ir.Expr) -> bool:
    """A value fit for a `cpu` place: a CPU (not a number made one), CPU 0, `any`."""
    match e:
        case ir.AnyValue():
            return True
        case ir.Lit(value=v):
            return v == 0
        case ir.CondExpr(then=t, other=o):
            return _cpu_ok(t) and _cpu_ok(o)
    return _cpu(e)


def _flow(want: ir.Type | None, value: ir.Expr | None, span: Any) -> NotSymmetric | None:
    """NOTE: renaming must find every copy of a CPU number: one flows only between
    `cpu` places, and no other number becomes one (a literal names a CPU)."""
    if want is None or value is None:
        return None
    if isinstance(want, ir.CpuType):
        if not _cpu_ok(value):
            if isinstance(value, ir.Lit):
                return NotSymmetric(f"names CPU {value.value}", span)
            return NotSymmetric("makes a CPU number of a value that is not a `cpu`", span)
    elif _cpu(value):
        return NotSymmetric("stores a CPU number where it is not a `cpu`", span)
    return None


def _stmt_flow(s: ir.Stmt, ret: ir.Type | None) -> NotSymmetric | None:
    """Every place a value moves into, against the type of the place."""
    match s:
        case ir.Assign(target=t, value=v):
            return _flow(t.type, v, s.span)
        case ir.Return(value=v) if v is not None:
            return _flow(ret, v, s.span)
        case ir.Ipi(cpu=c):
            return _flow(ir.CPU, c, s.span)
        case ir.Call(callee=c, args=args, result=res, kthread=k, kthread_cpu=kc):
            ft = getattr(c, "type", None)
            if isinstance(ft, ir.FnType):
                for pt, a in zip(ft.params, args):
                    bad = _flow(pt, a, s.span)
                    if bad is not None:
                        return bad
                if res is not None:
                    if isinstance(ft.ret, ir.CpuType) != isinstance(res.type, ir.CpuType):
                        return NotSymmetric("stores a CPU number where it is not a `cpu`" if isinstance(
                            ft.ret, ir.CpuType) else "makes a CPU number of a value that is not a `cpu`", s.span)
                if k is not None and isinstance(ft.ret, ir.CpuType):
                    return NotSymmetric("kthread work returns a CPU number (not supported yet)", s.span)
            if kc is not None:
                return _flow(ir.CPU, kc, s.span)
    return None


# ---------------------------------------------------------------- renaming, orbits
class Canon:
    """States renamed by a permutation of CPUs, and the orbit's canonical state:
    the least (as tuples) of the renamings that sort the CPUs of each class by a
    signature that renaming does not change; `intern` makes it the search's
    object (step.Successors.canonical)."""

    def __init__(self, prog: Any, sym: Symmetry, intern: Any = None):
        self.prog, self.sym, self.n = prog, sym, prog.n
        self.intern = intern or (lambda s: s)
        model = prog.model
        self.blocks: list[int] = []        # per-CPU variables: their offsets
        self.cpu_cells: list[int] = []     # globals holding a CPU number
        self.sig_vars: list[tuple[int, bool]] = []   # (offset, holds CPUs) of each per-CPU variable
        for v in model.vars:
            off, size = prog.var_off[v.name], prog.var_size[v.name]
            is_cpu = isinstance(v.type, ir.CpuType)
            if v.per_cpu:
                self.blocks.append(off)
                self.sig_vars.append((off, is_cpu))
            if is_cpu:
                self.cpu_cells.extend(range(off, off + size))
        for lk in model.locks:
            for f in prog.classes[lk.cls].fields:
                if isinstance(f.type, ir.CpuType):
                    self.cpu_cells.append(prog.field_off[(lk.index, f.name)])
        self.kbases = sorted(prog.kthread_base.values())
        nctx = len(prog.contexts)
        self.actors = [i for i in range(nctx) if prog.contexts[i].kthread is None]
        self.code_map: list[tuple | None] = []
        actor_locals = {spec.code: spec.actor.locals for spec in prog.contexts if spec.actor is not None}
        for cid, code in enumerate(prog.codes):
            if code.fn is not None:
                locs = code.fn.params + code.fn.locals
            else:
                locs = actor_locals.get(cid, ())
            cpu_slots = tuple(sorted({lc.slot for lc in locs if isinstance(lc.type, ir.CpuType)}))
            targets = tuple(nd.hidden for nd in code.cfg.nodes if nd.op is Op.CALLIN)
            bits = tuple(code.bits)
            self.code_map.append((cpu_slots, targets, bits) if cpu_slots or targets or bits else None)
        self.memo: dict[tuple[int, int], tuple] = {}
        self._gmemo: dict[int, tuple] = {}
        self.ident = tuple(range(self.n))
        self._ids: dict[tuple, int] = {}    # each signature seen, numbered (cheap to sort and compare)
        self._cmemo: dict[int, tuple] = {}
        self._pg: dict[tuple, tuple] = {}   # (id(globals), p) -> (globals, renamed)
        self._pc: dict[tuple, tuple] = {}   # (id(contexts), p) -> (contexts, renamed)

    # -- renaming
    def permute(self, state: tuple, p: tuple[int, ...]) -> tuple:
        """π(state): CPU c becomes p[c] everywhere."""
        g0, ctxs = state
        key = (id(g0), p)
        hit = self._pg.get(key)
        if hit is None or hit[0] is not g0:
            hit = self._pg[key] = (g0, self._globals(g0, p))
        key = (id(ctxs), p)
        hc = self._pc.get(key)
        if hc is None or hc[0] is not ctxs:
            hc = self._pc[key] = (ctxs, self._contexts(ctxs, p))
        return (hit[1], hc[1])

    def _globals(self, g0: tuple, p: tuple[int, ...]) -> tuple:
        n = self.n
        g = list(g0)
        for off in self.blocks:
            for c in range(n):
                g[off + p[c]] = g0[off + c]
        for i in self.cpu_cells:
            g[i] = p[g[i]]
        return tuple(g)

    def _contexts(self, ctxs: tuple, p: tuple[int, ...]) -> tuple:
        n = self.n
        out = list(ctxs)
        pctx = self._ctx
        for base in self.kbases:
            for c in range(n):
                out[base + p[c]] = pctx(ctxs[base + c], p)
        for i in self.actors:
            out[i] = pctx(ctxs[i], p)
        return tuple(out)

    def _ctx(self, ctx: tuple, p: tuple[int, ...]) -> tuple:
        frames = ctx[0]
        if not frames:
            return ctx
        new = tuple(self._frame(f, p) for f in frames)
        if all(a is b for a, b in zip(new, frames)):
            return ctx
        return (new,) + ctx[1:]

    def _frame(self, f: tuple, p: tuple[int, ...]) -> tuple:
        code, pc, loc, ipi, saved = f
        cm = self.code_map[code]
        if cm is None and ipi < 0:
            return f
        if cm is not None:
            n = self.n
            loc = list(loc)
            cpu_slots, targets, bits = cm
            for s in cpu_slots:
                loc[s] = p[loc[s]]
            for s in targets:
                t = loc[s]
                for base in self.kbases:
                    if base <= t < base + n:
                        loc[s] = base + p[t - base]
                        break
            for s in bits:
                b, nb = loc[s], 0
                if b:
                    for grp in range(3):
                        for c in range(n):
                            if (b >> (grp * n + c)) & 1:
                                nb |= 1 << (grp * n + p[c])
                loc[s] = nb
            loc = tuple(loc)
        return (code, pc, loc, p[ipi] if ipi >= 0 else ipi, saved)

    # -- orbits
    def _sigs(self, state: tuple) -> list[tuple]:
        """Per CPU, as a number, what renaming does not change: its per-CPU variables (a CPU
        number as 0 for the boot CPU, 1 for itself, 2 for another), the status,
        place, locks and CPU-typed locals (so seen) of its kthreads, and where the
        actors' CPU-typed locals name it. Memoised per globals vector and per
        vector of contexts (the search's interned objects; the memo keeps them
        alive, so an id() is never another object's)."""
        g, ctxs = state
        hit = self._gmemo.get(id(g))
        if hit is None or hit[0] is not g:
            n = self.n
            per = []
            for c in range(n):
                vals = []
                for off, is_cpu in self.sig_vars:
                    v = g[off + c]
                    vals.append((0 if v == 0 else 1 if v == c else 2) if is_cpu else v)
                per.append(self._own(tuple(vals)))
            hit = self._gmemo[id(g)] = (g, per)
        hc = self._cmemo.get(id(ctxs))
        if hc is None or hc[0] is not ctxs:
            n = self.n
            refs: list[list] = [[] for _ in range(n)]   # where the actors name each CPU
            for i in self.actors:
                for depth, f in enumerate(ctxs[i][0]):
                    cm = self.code_map[f[0]]
                    if f[3] > 0:
                        refs[f[3]].append((i, depth, -1))
                    if cm is not None:
                        for s in cm[0]:
                            v = f[2][s]
                            if v:
                                refs[v].append((i, depth, s))
                        for s in cm[2]:   # a loop's passed sets: which ones hold the CPU
                            b = f[2][s]
                            if b:
                                for c in range(1, n):
                                    m = (b >> c) & 1 | ((b >> (n + c)) & 1) << 1 | ((b >> (2 * n + c)) & 1) << 2
                                    if m:
                                        refs[c].append((i, depth, s, m))
            per = []
            for c in range(n):
                cs = []
                for base in self.kbases:
                    ctx = ctxs[base + c]
                    cs.append((ctx[3], ctx[2], ctx[1], tuple(self._frame_sig(f, c) for f in ctx[0])))
                cs.append(tuple(refs[c]))
                per.append(self._seen(tuple(cs)))
            hc = self._cmemo[id(ctxs)] = (ctxs, per)
        return [self._join(a, b) for a, b in zip(hit[1], hc[1])]

    # how the two halves of a signature are kept and joined: numbered in the order
    # first seen (cheap to sort); engines/counting.py keeps them as values
    def _own(self, vals: tuple) -> Any:
        return self._ids.setdefault(vals, len(self._ids)) << 32

    def _seen(self, cs: tuple) -> Any:
        return self._ids.setdefault(cs, len(self._ids))

    @staticmethod
    def _join(a: Any, b: Any) -> Any:
        return a | b

    def _frame_sig(self, f: tuple, c: int) -> tuple:
        """A kthread frame of CPU c, with the CPU numbers in it as seen from c."""
        cm = self.code_map[f[0]]
        if cm is None:
            return (f[0], f[1], f[3] == c)
        loc = f[2]
        cpus = tuple(0 if loc[s] == 0 else 1 if loc[s] == c else 2 for s in cm[0])
        return (f[0], f[1], f[3] == c, cpus)

    def candidates(self, state: tuple) -> list[tuple[int, ...]]:
        """The renamings that sort every class by signature. Tied CPUs that are
        interchangeable in this very state (swapping any two leaves it as it is)
        need one order; other ties, every order."""
        sigs = self._sigs(state)
        n = self.n
        if len(self.sym.classes) == 1:     # the common case: sorted already, no ties
            cls = self.sym.classes[0]
            for a, b in zip(cls, cls[1:]):
                if not sigs[a] < sigs[b]:
                    break
            else:
                return [self.ident]
        p = list(range(n))
        ties: list[tuple[list[int], tuple[int, ...]]] = []
        for cls in self.sym.classes:
            order = sorted(cls, key=sigs.__getitem__)
            # the CPU at sorted position i gets the class's i-th CPU number
            i = 0
            while i < len(order):
                j = i + 1
                while j < len(order) and sigs[order[j]] == sigs[order[i]]:
                    j += 1
                grp = order[i:j]
                if j - i > 1 and not self._interchangeable(state, sorted(grp)):
                    ties.append((grp, cls[i:j]))
                else:
                    for c, t in zip(sorted(grp), cls[i:j]):
                        p[c] = t
                i = j
        if not ties:
            return [tuple(p)]
        out = []
        for combo in itertools.product(*(itertools.permutations(grp) for grp, _ in ties)):
            q = list(p)
            for perm, (_, targets) in zip(combo, ties):
                for c, t in zip(perm, targets):
                    q[c] = t
            out.append(tuple(q))
        return out

    def _interchangeable(self, state: tuple, grp: list[int]) -> bool:
        """Every swap of two CPUs of `grp` fixes the state (the adjacent swaps
        generate them all)."""
        for a, b in zip(grp, grp[1:]):
            if self._twins(state, a, b):
                continue
            p = list(self.ident)
            p[a], p[b] = b, a
            if self.permute(state, tuple(p)) != state:
                return False
        return True

    def _twins(self, state: tuple, a: int, b: int) -> bool:
        """Swapping a and b fixes the state, seen cheaply on the raw values; False:
        it cannot tell (the caller renames and compares)."""
        g, ctxs = state
        for off in self.blocks:
            if g[off + a] != g[off + b]:
                return False
        for i in self.cpu_cells:
            if g[i] == a or g[i] == b:
                return False
        for base in self.kbases:
            ca = ctxs[base + a]
            if ca != ctxs[base + b]:
                return False
            for f in ca[0]:
                if self.code_map[f[0]] is not None or f[3] >= 0:
                    return False
        for ctx in ctxs:
            for f in ctx[0]:
                if self._mentions(f, a, b):
                    return False
        return True

    def _mentions(self, f: tuple, a: int, b: int) -> bool:
        """Whether swapping a and b changes this frame."""
        if f[3] == a or f[3] == b:
            return True
        cm = self.code_map[f[0]]
        if cm is None:
            return False
        loc = f[2]
        for s in cm[0]:
            if loc[s] == a or loc[s] == b:
                return True
        for s in cm[1]:
            t = loc[s]
            for base in self.kbases:
                if t == base + a or t == base + b:
                    return True
        n = self.n
        for s in cm[2]:
            v = loc[s]
            for grp in range(3):
                if (v >> (grp * n + a)) & 1 != (v >> (grp * n + b)) & 1:
                    return True
        return False

    def canonical(self, state: tuple) -> tuple:
        g, ctxs = state
        key = (id(g), id(ctxs))
        hit = self.memo.get(key)
        if hit is not None and hit[0] is g and hit[1] is ctxs:
            return hit[2]
        best = self.least(state)
        best = self.intern(best) if best is not state else state
        self.memo[key] = (g, ctxs, best)
        return best

    def least(self, state: tuple) -> tuple:
        """The orbit's canonical state (not interned)."""
        best = None
        ident = self.ident
        for p in self.candidates(state):
            s = state if p == ident else self.permute(state, p)
            if best is None or s < best:
                best = s
        return best

    def group(self) -> list[tuple[int, ...]]:
        """Every renaming, the identity first."""
        out = []
        for combo in itertools.product(*(itertools.permutations(c) for c in self.sym.classes)):
            p = list(self.ident)
            for cls, perm in zip(self.sym.classes, combo):
                for a, b in zip(cls, perm):
                    p[a] = b
            out.append(tuple(p))
        return out

    def closed(self, states: list[tuple]) -> bool:
        """Whether a set of states (the initial ones) is closed under renaming."""
        have = set(states)
        for cls in self.sym.classes:
            for a, b in zip(cls, cls[1:]):
                p = list(range(self.n))
                p[a], p[b] = b, a
                if any(self.permute(s, tuple(p)) not in have for s in states):
                    return False
        return True
