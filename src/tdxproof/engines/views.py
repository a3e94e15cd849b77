"""`--cpus any` by view abstraction: one finite fixpoint over *views* -- the
named part of a state and at most one CPU nothing names -- that covers every N
(docs/every-n.md, "Views of one CPU").

engines/counting.py abstracts a state of any N into its named CPUs and the
*set* of classes of the others; on the thread's policies that set is what
does not close (every mix of classes comes with every interleaving). A view
forgets the mix as well: a state's views are `(g, c)` for each class c of its
unnamed CPUs, `g` its named part (the boot CPU, the named CPUs, every global,
every actor, as counting names them), and `(g, -)` when it has none. The
abstract state is the set of views, kept as a map g -> classes.

The step (Abdulla, Haziza, Holik, "Parameterized verification through view
abstraction", VMCAI 2016, with the restriction argument of docs/every-n.md):
for each g and each set S of at most K of its classes (non-empty when g names
the boot CPU alone: N >= 2), the counting state (g, S) -- every class of S
present, in any number -- is stepped by counting's own step, and the views of
its successors are added. K = 1 + the most witnesses among the unnamed CPUs
one block needs (`width`: the cutoff route's walk of the CPUs it chooses and
the witnesses of its conditions, a lock's holder counted as named and a
blocked step as needing none), at least the witnesses of a property's
failure; a context steps in (g, S) only if a block that starts in its current
function may need |S| - 1. `no-deadlock` is checked at every item of at most
one class when no wait needs an unnamed CPU (docs/every-n.md).

Why this covers every N. Claim: for every reachable state s of any N, every
view of s is in the fixpoint. A step s -> s' at N has at most K - 1 witnesses
among s's unnamed CPUs (the CPUs it chooses, the one an `exists` finds or a
`forall` fails on). For a view of s', keep of s its named CPUs, the
witnesses and, for a view (g', c'), the CPU c' (an unnamed one of s, or named
in s and so kept already): the restriction r of s to those CPUs. r is a
state of the family (counting's `named` keeps every CPU a kept slot holds;
one unnamed CPU is kept when g names the boot CPU alone), its counting
abstraction is (g, S) with S the classes of its unnamed CPUs -- at most K, and
views of s, so in the fixpoint by induction -- and the step restricted to r is
a step of r (universal conditions survive a restriction; existential ones keep
their witnesses; what a step does to a CPU it does not choose depends on that
CPU and the kept ones only). Counting's step of (g, S) contains r's successor's
abstraction, whose views include the one of s' we started from (c' is
changed in r as in s). A property broken at s, or by the step, is broken at
such a restriction, which the fixpoint steps or observes. So if no (g, S)
breaks a property, none breaks at any N: "proved (every N >= 2)". The converse
does not hold: views forget which classes occur together, so a property
broken in the fixpoint may still hold; it is then left to the other routes.

The certificate is the map g -> classes: `recheck()` checks with fresh
objects that it contains the initial views, is closed under the step and
breaks nothing.
"""

from __future__ import annotations

import collections
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable

from tdxproof.encode.flatten import flatten
from tdxproof.engines import counting, cutoff
from tdxproof.engines.counting import Abstraction, Counted, _TooMany, choices
from tdxproof.interp.state import RUN
from tdxproof.interp.step import deadlocked
from tdxproof.interp.evaluate import compile_expr
from tdxproof.interp.explore import StateEnv, no_cyclic_gc, rss_bytes
from tdxproof.interp.program import ModelError
from tdxproof.interp.symmetry import OrderSeen
from tdxproof.diagnostics import InternalError
from tdxproof.model import ir
from tdxproof.model.wellformed import sub_exprs, walk_exprs
from tdxproof.results import Proof, PropertyResult, Verdict

MAX_ITEMS = 50_000_000


class Unsupported(Exception):
    pass


@dataclass
class Width:
    """How many classes the items of the fixpoint need (the module docstring)."""
    step: int                      # the most witnesses of one block (cutoff.fragment)
    prop: int                      # the most witnesses of a property's failure
    by_owner: dict = field(default_factory=dict)   # (automaton, function) -> witnesses of a block there
    # no task waits on a condition whose falsity an unnamed CPU witnesses: a
    # deadlock then shows at the named part alone (`search`)
    deadlock: bool = False

    @property
    def k(self) -> int:
        return max(self.step + 1, self.prop)


def width(model: ir.Model, other: ir.Model, props: list[ir.Property]) -> tuple[Width | None, str | None]:
    """The widths of the fixpoint's items; or why views do not apply."""
    why = counting.fragment(model, other)
    if why is not None:
        return None, why
    frag = cutoff.fragment(model, other)
    if frag.problems:
        span, why = frag.problems[0]
        return None, f"{span}: {why}" if span is not None else why
    wit = _UnnamedWitness(model, frag)
    actors, kthreads = flatten(model)
    step, by_owner, waits = 0, {}, 0
    for auto in actors + list(kthreads.values()):
        weight: dict[int, int] = {}
        for node in auto.nodes:
            s = node.stmt
            if s is None:
                weight[node.id] = 0
                continue
            waits = max(waits, cutoff._blocked_witnesses(node, s, wit) or 0)
            # a blocked step has no successor: what "cannot run yet" names is not needed
            w = cutoff._node_witnesses(node, s, wit, frag) - int(bool(node.blocking))
            # `any` of a CPU chooses one
            w += sum(1 for e in walk_exprs(s) for x in sub_exprs(e)
                     if isinstance(x, ir.AnyValue) and isinstance(x.type, ir.CpuType))
            weight[node.id] = max(w, 0)
        per_node: dict[int, int] = {}
        step = max(step, cutoff._heaviest_block(auto, weight, per_node))
        for node in auto.nodes:
            key = (auto.name, node.owner)
            by_owner[key] = max(by_owner.get(key, 0), per_node[node.id])
    prop = max([1] + [frag.prop_neg.get(p.name, 0) for p in props])
    return Width(step, prop, by_owner, deadlock=frag.deadlock is not None or waits == 0), None


class _UnnamedWitness(cutoff._Witness):
    """Witnesses among the CPUs nothing names: a lock's holder is a task that
    holds something, so its CPU is named already (`holders(L)` needs none, in
    either polarity)."""

    def __call__(self, e, positive, under_forall=frozenset()):
        if isinstance(e, ir.Binary) and self._holders(e) is not None:
            return 0
        return super().__call__(e, positive, under_forall)


@dataclass
class Viewed:
    complete: bool = False
    broken: dict[str, str] = field(default_factory=dict)
    why: str | None = None
    views: int = 0          # (g, class) pairs and (g, -)
    named_parts: int = 0
    items: int = 0          # (g, S) stepped
    width: int = 0
    seconds: float = 0.0
    table: dict = field(default_factory=dict, repr=False)


class _Views:
    def __init__(self, model: ir.Model, w: Width):
        self.ab = Abstraction(model)
        self.k = choices(model) + 1
        self.w = w
        prog = self.ab.at(counting.FIRST).prog
        self.autos = [c.actor.name for c in prog.contexts if c.kind == "actor"]
        self.codes = [c.name for c in prog.codes]
        self._need_g: dict[tuple, int] = {}
        self._seen: dict[tuple, tuple] = {}
        self.deadlocks = tuple(p.name for p in model.properties if p.kind is ir.PropKind.DEADLOCK) \
            if w.deadlock else ()

    def need(self, n: int, ci: int, ctx: tuple) -> int:
        """The most witnesses a block of context `ci` (of a state of n CPUs) needs
        from where it is: a block that starts in a function's code stays in its
        automaton's blocks from there (cutoff.fragment's `by_owner`)."""
        na = self.ab.nactors
        auto = self.autos[ci] if ci < na else self.ab.kinds[(ci - na) // n]
        by = self.w.by_owner
        return max((by.get((auto, self.codes[f[0]]), self.w.step) for f in ctx[0]), default=0)

    def need_g(self, gkey: tuple) -> int:
        hit = self._need_g.get(gkey)
        if hit is None:
            n1, (_, ctxs) = gkey
            hit = self._need_g[gkey] = max((self.need(n1, ci, c) for ci, c in enumerate(ctxs)
                                            if c[3] == RUN and c[0]), default=0)
        return hit

    def step(self, gkey: tuple, sub: tuple, broken: Counted, prop_names: list[str], names: set[str],
             observe: Callable[[int, tuple], None] | None) -> list[tuple[tuple, set]]:
        """Step the item (gkey, sub): the contexts whose blocks may need as many
        classes (a block with w witnesses needs at most w + 1: they and the CPU
        whose view is taken), and the properties when their failure may."""
        r = len(sub)
        look = observe is not None and r <= self.w.prop
        if r > 1 + self.need_g(gkey) and not look:
            return []
        # materialised at once: a property reads a class's copies alike (counting's
        # fragment), so it is observed there too
        n, s = self.build(gkey, sub, self.k)
        if look:
            observe(n, s)
        # a deadlock at any N is one of its restriction to the named part (no
        # wait's falsity needs an unnamed CPU, Width.deadlock; the blocked tasks,
        # whom they wait for and the finished ones are all named): every context
        # steps at r <= 1
        dead = tuple(p for p in self.deadlocks if p in names) if r <= 1 else ()
        return self.successors(n, s, r, broken, prop_names, names, dead)

    def split(self, n: int, a: tuple) -> tuple[tuple[int, tuple], set]:
        """The named part of state `a` (of n CPUs) and the classes of its other CPUs."""
        ab = self.ab
        at = ab.at(n)
        named = ab.named(at, a)
        return self._gkey(at, a, named), set(ab.sigs(at, a, [c for c in range(1, n) if c not in named]).values())

    def _gkey(self, at, a: tuple, named: set[int]) -> tuple[int, tuple]:
        ab = self.ab
        for ctx in a[1][ab.nactors:]:
            for f in ctx[0]:
                cm = at.canon.code_map[f[0]]
                if cm is not None and cm[2]:
                    # `sigs` reads loop sets in context order, which renaming changes
                    raise Unsupported("a kthread's work runs a CPU loop: its loop set is not part of a view")
        keep = [0] + sorted(named - {0})
        t = ab.project(at, a, keep)
        if len(keep) >= 2:
            t = ab.at(len(keep)).canon.canonical(t)
        return len(keep), t

    def successors(self, n: int, m: tuple, r: int, broken: Counted, prop_names: list[str],
                   names: set[str], deadlocks: tuple[str, ...] = ()) -> list[tuple[tuple, set]]:
        """The views of the successors of `m` (n CPUs, each class materialised as
        in counting): (named part, classes) per successor.
        Counting's variants (a class had exactly the CPUs chosen) are not needed:
        their views are those of the successor with the copies kept, but for
        (g', -), which every named part of two CPUs or more has anyway."""
        ab = self.ab
        mat = ab.at(n)
        succs, blocked = counting.stepped(mat, m, broken.broken, prop_names, names,
                                          "a state built from the views,",
                                          lambda ci, ctx: r > 1 + self.need(mat.n, ci, ctx))
        out = []
        for t in succs:
            hit = self._seen.get(t)
            if hit is None:
                hit = self.split(mat.n, t)
                if len(self._seen) > 200_000:      # a bounded memo: successors repeat nearby
                    self._seen.clear()
                self._seen[t] = hit
            out.append(hit)
        if deadlocks and blocked and deadlocked(m, blocked):
            for p in deadlocks:
                broken.broken.setdefault(p, f"a state built from the views, with {mat.n} CPUs, deadlocks")
        return out

    def build(self, gkey: tuple[int, tuple], classes: tuple, copies: int = 1) -> tuple[int, tuple]:
        """The counting state with named part `gkey` and one CPU of each class;
        with `copies`, that state materialised (counting's `materialise`: each
        class `copies` times), not reduced by symmetry."""
        ab = self.ab
        n1, (g, ctxs) = gkey
        if copies > 1:
            classes = tuple(sig for sig in classes for _ in range(copies))
        n2 = n1 + len(classes)
        at1, to = ab.at(n1), ab.at(n2)
        p1, p2 = at1.prog, to.prog
        g2 = [0] * p2.nglobals
        for name, _ in ab.plain:
            o1, o2 = p1.var_off[name], p2.var_off[name]
            g2[o2:o2 + p1.var_size[name]] = g[o1:o1 + p1.var_size[name]]
        for j, (name, is_cpu) in enumerate(ab.percpu):
            o1, o2 = p1.var_off[name], p2.var_off[name]
            g2[o2:o2 + n1] = g[o1:o1 + n1]
            for i, sig in enumerate(classes):
                v = sig[0][j]
                g2[o2 + n1 + i] = ((n1 + i) if v else 0) if is_cpu else v
        for lk, f, _ in ab.fields:
            g2[p2.field_off[(lk, f)]] = g[p1.field_off[(lk, f)]]
        ident = {c: c for c in range(n1)}
        pairs = [(c, c) for c in range(n1)]
        out = [ab._ctx(at1, ctxs[i], ident, n1, n2, pairs) for i in range(ab.nactors)]
        for kk, base1 in enumerate(at1.canon.kbases):
            for c in range(n1):
                out.append(ab._ctx(at1, ctxs[base1 + c], ident, n1, n2, pairs))
            for sig in classes:
                out.append(sig[1][kk])
        # the loop sets, in the order `sigs` reads them, with each new CPU's bits
        j = 0
        for ci in range(len(out)):
            ctx = out[ci]
            if not ctx[0]:
                continue
            frames = list(ctx[0])
            changed = False
            for fi, fr in enumerate(frames):
                cm = to.canon.code_map[fr[0]]
                if cm is None or not cm[2]:
                    continue
                loc = list(fr[2])
                for sl in cm[2]:
                    b = loc[sl]
                    for i, sig in enumerate(classes):
                        m = sig[2][j]
                        for grp in range(3):
                            if (m >> grp) & 1:
                                b |= 1 << (grp * n2 + n1 + i)
                    loc[sl] = b
                    j += 1
                frames[fi] = (fr[0], fr[1], tuple(loc)) + tuple(fr[3:])
                changed = True
            if changed:
                out[ci] = (tuple(frames),) + ctx[1:]
        s = to.succ.canonical((tuple(g2), tuple(out)))
        return n2, to.canon.canonical(s) if copies == 1 else s


def search(model: ir.Model, props: list[ir.Property], w: Width, *, max_items: int = MAX_ITEMS,
           timeout_s: float | None = None, progress: Callable | None = None) -> Viewed:
    out = Viewed(width=w.k)
    t0 = time.monotonic()
    vw = _Views(model, w)
    ab = vw.ab
    k_width = w.k
    names = {p.name for p in props}
    prop_names = [p.name for p in model.properties]
    look = _observer(model, props, ab)
    broken = Counted()

    def observe(n: int, s: tuple) -> None:
        for name in look(n, s):
            out.broken.setdefault(name, f"a state built from the views, with {n} CPUs, breaks it")

    table: dict[tuple, set] = {}
    queue: collections.deque[tuple[tuple, tuple]] = collections.deque()
    queued = 0

    def add(gkey: tuple, classes: set) -> None:
        nonlocal queued
        have = table.get(gkey)
        if have is None:
            have = table[gkey] = set()
            if gkey[0] >= 2:
                queue.append((gkey, ()))
                queued += 1
        for c in classes:
            if c in have:
                continue
            old = sorted(have)
            have.add(c)
            for r in range(0, k_width):
                for rest in itertools.combinations(old, r):
                    queue.append((gkey, tuple(sorted(rest + (c,)))))
                    queued += 1

    try:
        first = counting.initial(ab)
    except _TooMany as exc:
        out.why = str(exc)
        return out
    head = 0
    last = t0
    try:
        with no_cyclic_gc():
            for n, a in first:
                add(*vw.split(n, a))
            while queue:
                if head > max_items:
                    out.why = f"more than {max_items:,} (named part, classes) to step"
                    break
                now = time.monotonic()
                if timeout_s is not None and now - t0 > timeout_s:
                    out.why = f"timeout of {timeout_s:g} s reached"
                    break
                if progress is not None and now - last > 0.5:
                    last = now
                    progress(head, queued, len(table), sum(map(len, table.values())), now - t0, rss_bytes())
                gkey, sub = queue.popleft()
                head += 1
                for g2, classes in vw.step(gkey, sub, broken, prop_names, names, observe):
                    add(g2, classes)
                for p, why in broken.broken.items():
                    out.broken.setdefault(p, why)
            else:
                out.complete = True
    except Unsupported as exc:
        out.why = str(exc)
    except OrderSeen:
        out.why = "a CPU loop's condition changed while it ran: the any-order reading does not stand for the kernel's order"
    except ModelError as exc:
        out.why = f"a state built from the views meets a run-time model error: {exc.message}"
    out.items = head
    out.named_parts = len(table)
    out.views = sum(len(v) + (k[0] >= 2) for k, v in table.items())
    out.seconds = time.monotonic() - t0
    out.table = table
    return out


def _observer(model: ir.Model, props: list[ir.Property], ab: Abstraction) -> Callable[[int, tuple], list[str]]:
    """The invariants a state breaks (`at quiescent` ones only when quiescent)."""
    invariants = [(p, p.expr) for p in props if p.kind is ir.PropKind.INVARIANT and p.expr is not None]
    quiescent = model.predicate("quiescent")
    compiled: dict[int, tuple] = {}

    def look(n: int, s: tuple) -> list[str]:
        at = ab.at(n)
        hit = compiled.get(n)
        if hit is None:
            q = compile_expr(at.prog, quiescent.expr) if quiescent is not None else None
            hit = compiled[n] = (q, [(p, compile_expr(at.prog, e)) for p, e in invariants])
        q, inv = hit
        env = StateEnv(at.prog, s)
        quiet = None
        bad = []
        for p, fn in inv:
            if p.observe is ir.Observe.QUIESCENT:
                if quiet is None:
                    quiet = bool(q(env)) if q else True
                if not quiet:
                    continue
            if not fn(env):
                bad.append(p.name)
        return bad

    return look


def _items(table: dict[tuple, set], k_width: int):
    """Every (named part, classes) the fixpoint steps: at most `k_width` classes,
    at least one when the named part is the boot CPU alone."""
    for gkey, have in table.items():
        cs = sorted(have)
        for r in range(0 if gkey[0] >= 2 else 1, k_width + 1):
            for sub in itertools.combinations(cs, r):
                yield gkey, sub


def recheck(model: ir.Model, props: list[ir.Property], w: Width, table: dict[tuple, set]) -> str | None:
    """Check a map named part -> classes with fresh objects: it holds the initial
    views, is closed under the step, and nothing in it breaks a property. None,
    or what fails."""
    vw = _Views(model, w)
    ab = vw.ab
    try:
        first = counting.initial(ab)
    except _TooMany as exc:
        return str(exc)

    def inside(n: int, a: tuple) -> bool:
        gkey, classes = vw.split(n, a)
        return gkey in table and classes <= table[gkey]

    look = _observer(model, props, ab)
    bad: list[str] = []

    def observe(n: int, s: tuple) -> None:
        bad.extend(look(n, s))

    try:
        if not all(inside(n, a) for n, a in first):
            return "an initial state's views are not in the certificate"
        names = {p.name for p in props}
        prop_names = [p.name for p in model.properties]
        broken = Counted()
        with no_cyclic_gc():
            for gkey, sub in _items(table, w.k):
                for g2, classes in vw.step(gkey, sub, broken, prop_names, names, observe):
                    if g2 not in table or not classes <= table[g2]:
                        return "the certificate is not closed under the step"
                if bad:
                    return f"a state of the certificate breaks `{bad[0]}`"
                if broken.broken:
                    return f"a step of the certificate breaks `{next(iter(broken.broken))}`"
    except (Unsupported, OrderSeen, ModelError) as exc:
        return f"the certificate meets what views do not cover: {exc}"
    return None


BUDGET_S = 600.0     # --cpus any without --timeout: the fixpoint's share of the run, then the other routes


def prove(models, props: list[ir.Property], *, timeout_s: float | None, say: Callable[[str], None],
          stats: dict, learn_at: int = 3) -> dict[str, PropertyResult]:
    """The properties (invariants and step events; not deadlock) the view
    fixpoint proves for every N >= 2, with its certificate re-checked."""
    props = [p for p in props if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.DEADLOCK) or
             (p.fires_in_steps and p.kind not in ir.STATIC_KINDS)]
    if not props:
        return {}
    m, other = models[learn_at], models[counting.FIRST]
    w, why = width(m, other, props)
    if w is None:
        stats["views_why"] = why
        return {}
    if not w.deadlock:
        # left to the cutoff route, with its reason
        props = [p for p in props if p.kind is not ir.PropKind.DEADLOCK]
    budget = BUDGET_S if timeout_s is None else timeout_s     # --timeout gives the fixpoint more time

    def progress(head, queued, parts, nviews, seconds, rss) -> None:
        say(f"every N: views: {head:,} of {queued:,} items stepped, {parts:,} named parts, {nviews:,} views, "
            f"{seconds:.0f} s, {rss >> 20} MiB")

    out = search(m, props, w, timeout_s=budget, progress=progress)
    stats.update(views_items=out.items, views_parts=out.named_parts, views=out.views,
                 views_seconds=round(out.seconds, 1), views_width=w.k)
    if not out.complete:
        stats["views_why"] = f"the view fixpoint did not close: {out.why}"
        return {}
    ok = [p for p in props if p.name not in out.broken]
    if not ok:
        stats["views_why"] = "the view fixpoint breaks every property tried"
        return {}
    say("every N: views: re-checking the fixpoint with fresh objects")
    t0 = time.monotonic()
    err = recheck(m, ok, w, out.table)
    if err is not None:
        raise InternalError(f"the view fixpoint does not re-check: {err}")
    stats["views_recheck_seconds"] = round(time.monotonic() - t0, 1)
    text = tuple(describe(out.table, m)[:12])
    proof = Proof(k=1, lemmas=out.views, text=text,
                  rechecked="every item of the fixpoint re-stepped with fresh objects")
    reason = (f"views of one CPU, {out.named_parts:,} named parts, {out.views:,} views, "
              f"at most {w.k} classes a step")
    res = {}
    for p in ok:
        verdict = Verdict.UNREACHABLE if p.kind is ir.PropKind.COVER else Verdict.PROVED
        res[p.name] = PropertyResult(p.name, p.kind.value, verdict, "views", 0, proof=proof, reason=reason)
    return res


def describe(table: dict[tuple, set], model: ir.Model) -> list[str]:
    """The certificate's weakest reading in the policy's words: the states a CPU
    nothing names is in (its per-CPU variables), whatever the named part."""
    names = [v.name for v in model.vars if v.per_cpu]
    seen = sorted({sig[0] for cs in table.values() for sig in cs})
    lines = ["for every CPU c that nothing names (no global, lock, task or hand-off holds it, "
             "its kthreads idle), one of:"]
    for vals in seen:
        lines.append("  " + ", ".join(f"{n}[c] == {'c' if v == 1 and _is_cpu(model, n) else v}"
                                      for n, v in zip(names, vals)))
    return lines


def _is_cpu(model: ir.Model, name: str) -> bool:
    return any(v.name == name and isinstance(v.type, ir.CpuType) for v in model.vars)
