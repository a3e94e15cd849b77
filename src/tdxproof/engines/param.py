"""Proofs over the one encoding for every N (encode/param.py).

The lemma templates of engines/cutoff.py ("for all distinct non-boot CPUs
c < d: ...") are read as quantified formulas over the symbolic-N encoding and
checked there once, instead of instantiated and checked at each N up to the
cutoff:

- initiation: every initial state of every N satisfies every template;
- consecution: a state of the templates (and of the invariant properties
  assumed) with a step of any block path satisfies them again;
- each property: its invariant is among them, or no step of such a state
  fails its check;
- no step of such a state is a run-time model error.

Templates that fail initiation or consecution are dropped (Houdini), unless a
repair (`Repair`) finds a lemma of N0 that excludes the counterexample, until
the rest is inductive. Each query is over one block path; its quantifiers are
instantiated over the CPUs the query names (`Ground`), which can only make
the query weaker: an unsatisfiable answer is a proof, a satisfiable one may
cost a lemma. The result holds for N = 2..127 (the CPUs an 8-bit value can
name); docs/every-n.md carries it to every N.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import z3

from tdxproof.encode.param import ParamEncoding
from tdxproof.encode.solver import Sat, Unknown, check, make_solver
from tdxproof.encode.vocab import MODEL_ERROR, bv
from tdxproof.engines.induction import cpu_slots
from tdxproof.engines.lift import CPU, MIXED, Template
from tdxproof.model import ir


JOIN = 2              # templates a property-directed counterexample brings in at a time
BUDGET_S = 900.0      # a Houdini run past this gives up (unknown), rather than run for hours


class Undecided(Exception):
    """The solver gave no answer (a timeout, or a quantifier it gave up on)."""


class Names:
    """The per-N encoding's variables (as templates name them, from N0's
    encoding) as terms of the symbolic-N state."""

    def __init__(self, enc0):
        self.slots0 = cpu_slots(enc0)

    def cell(self, var0: str) -> tuple[str, int | None]:
        """A variable of N0 (`online[2]`, `pc[cpuhp/0]`, `all_done`): the symbolic
        state's variable and the CPU whose cell it is (None for a scalar)."""
        owner = self.slots0.get(var0)
        if owner is None:
            return var0, None
        tmpl, cpu = owner
        return tmpl.replace("{}", "*"), cpu

    def resolve(self, var: str, who: int | None) -> tuple[str, int | None]:
        """A template's variable: (the symbolic state's variable, the letter
        indexing it or -1 for the boot CPU's cell; None for a scalar)."""
        if who is not None:
            return var.replace("{}", "*"), who
        arr, cpu = self.cell(var)
        assert cpu in (None, 0), var
        return arr, None if cpu is None else -1


def _lit(term: z3.ExprRef, vals, xs: list[z3.BitVecRef], N: z3.BitVecRef) -> z3.BoolRef:
    w = term.size()
    opts = [term == z3.BitVecVal(v, w) for v in vals.fixed]
    opts += [term == xs[i] for i in vals.letters]
    if vals.others:
        opts.append(z3.And([term >= bv(1), term < N] + [term != x for x in xs]))
    return z3.Or(opts) if opts else z3.BoolVal(False)


def template_instance(t: Template, names: Names, s: dict, N: z3.BitVecRef, xs: list) -> z3.BoolRef:
    """The template at the CPUs `xs` (terms): "if they are distinct non-boot CPUs
    in increasing order, then ..."."""
    lits = []
    for var, who, vals in t.lits:
        arr, idx = names.resolve(var, who)
        term = s[arr] if idx is None else z3.Select(s[arr], bv(0) if idx == -1 else xs[idx])
        lits.append(_lit(term, vals, xs, N))
    body = lits[0] if t.kind == "in" else z3.Not(z3.And(lits))
    if not xs:
        return body
    dom = [z3.And(x >= bv(1), x < N) for x in xs] + [a < b for a, b in zip(xs, xs[1:])]
    return z3.Implies(z3.And(dom), body)


def template_formula(t: Template, names: Names, s: dict, N: z3.BitVecRef, tag: str) -> z3.BoolRef:
    xs = [z3.BitVec(f"{tag}_{i}", 8) for i in range(t.letters)]
    f = template_instance(t, names, s, N, xs)
    return z3.ForAll(xs, f) if xs else f


def pinned(t: Template) -> dict[int, tuple[str, int | None]]:
    """Letters a `never` template can only use at one CPU: a literal "slot is
    letter l" (nothing else) is false unless l is the slot's value, so the one
    instance that says something puts the slot's value there. letter -> the
    literal's (variable, letter indexing it)."""
    out: dict[int, tuple[str, int | None]] = {}
    if t.kind != "never":
        return out
    for var, who, vals in t.lits:
        if not vals.fixed and not vals.others and len(vals.letters) == 1 and vals.letters[0] != who:
            out.setdefault(vals.letters[0], (var, who))
    return out


def _combos(t: Template, names: Names, s: dict, terms: list, must: set[int] | None = None):
    """The choices of terms for t's letters worth instantiating: pinned letters
    get their slot's value; with `must` (ids of terms), only choices using one."""
    pins = pinned(t)
    order = [l for l in range(t.letters) if l not in pins] + [l for l in range(t.letters) if l in pins]

    def go(k: int, xs: dict):
        if k == len(order):
            pick = [xs[l] for l in range(t.letters)]
            if must is None or any(x.get_id() in must for x in pick):
                yield pick
            return
        l = order[k]
        if l in pins:
            var, who = pins[l]
            if who is not None and who not in xs:
                return          # a slot indexed by a letter pinned later: no such chain here
            arr, idx = names.resolve(var, who)
            yield from go(k + 1, {**xs, l: s[arr] if idx is None else z3.Select(
                s[arr], bv(0) if idx == -1 else xs[who])})
            return
        for x in terms:
            yield from go(k + 1, {**xs, l: x})
    yield from go(0, {})


def template_vars(t: Template, names: Names) -> set[str]:
    return {names.resolve(var, who)[0] for var, who, _ in t.lits}


@dataclass
class Outcome:
    alive: list[bool]                                   # per template (the given ones, then a repair's)
    proved: list[str]
    unknown: dict[str, str] = field(default_factory=dict)   # property -> why
    calls: int = 0
    seconds: float = 0.0
    templates: list = field(default_factory=list)


class Repair:
    """A counterexample to induction on the symbolic encoding, seen on N0's CPUs
    (as cutoff.py's repair does at a concrete N): the model's CPUs that the
    query names are chosen `n0 - 1` at a time in increasing order, the state is
    read off the model on them (a CPU value outside the choice unknown), and a
    view N0 cannot reach is blocked by a cube generalised against N0's
    reachable states, lifted to templates. `lift(lemma)` gives the templates."""

    def __init__(self, enc0, reach, kinds0, lift: Callable, limit: int = 200):
        self.n0, self.reach, self.kinds, self.lift = enc0.vocab.n, reach, kinds0, lift
        self.vars = list(enc0.vocab.names)
        self.names = Names(enc0)
        self.limit, self.done = limit, 0

    def _term(self, s: dict, var: str, pick: tuple[int, ...]) -> z3.ExprRef:
        arr, cpu = self.names.cell(var)
        return s[arr] if cpu is None else z3.Select(s[arr], bv(0 if cpu == 0 else pick[cpu - 1]))

    def view(self, m: z3.ModelRef, s: dict, n: int, pick: tuple[int, ...]) -> tuple[int | None, ...]:
        back = {c: i + 1 for i, c in enumerate(pick)}
        back[0] = 0
        got = {var: m.eval(self._term(s, var, pick), model_completion=True).as_long() for var in self.vars}
        out: list[int | None] = []
        for var in self.vars:
            x: int | None = got[var]
            kind = self.kinds.of[var]
            if kind == MIXED and var in self.kinds.local:
                kind = self.kinds.at(var, [got[self.kinds.local[var][0]]])
            if kind == MIXED and 1 <= x < n:
                x = None
            elif kind == CPU and 1 <= x < n:
                x = back.get(x)
            out.append(x)
        return tuple(out)

    def __call__(self, m: z3.ModelRef, s: dict, N: z3.BitVecRef, terms: list) -> list[Template]:
        if self.done >= self.limit:
            return []
        n = m.eval(N, model_completion=True).as_long()
        cpus = sorted({v for t in terms if 1 <= (v := m.eval(t, model_completion=True).as_long()) < n})
        for pick in itertools.combinations(cpus, self.n0 - 1):
            lm = self.reach.generalize(self.view(m, s, n, pick))
            if lm is None:
                continue
            new = self.lift(lm)
            if new:
                self.done += 1
                return new
        return []


_EXTRA = itertools.count()


class _Pool:
    """CPU constants handed out to existential quantifiers in turn (`take`);
    past the pool's size, fresh ones that are not among the instantiation terms."""

    def __init__(self, tag: str, size: int):
        self.tag, self.consts, self.at = tag, [z3.BitVec(f"{tag}{i}", 8) for i in range(size)], 0

    def take(self) -> z3.BitVecRef:
        if self.at < len(self.consts):
            self.at += 1
            return self.consts[self.at - 1]
        # one counter for every pool: two existentials asserted side by side must
        # never share a witness (that would be a stronger, unsound hypothesis)
        return z3.BitVec(f"{self.tag}+{next(_EXTRA)}", 8)

    def reset(self, at: int = 0) -> "_Pool":
        self.at = at
        return self


class Ground:
    """Quantifiers instantiated over a fixed set of CPU terms: in a formula that
    is asserted (positive), a `forall` (a negated `exists`) becomes the
    conjunction of its instances over `terms`, an `exists` a constant. Each step
    is sound for refutation (a model of the formula gives one of the result), so
    an unsatisfiable result proves the query; a satisfiable one may be an
    artefact of too few terms, which only costs a lemma. `terms` are the CPUs
    docs/every-n.md's set S is made of: the boot CPU, the stepping CPU, the CPUs
    the step picks, and those of the lemma it would break. A quantifier under
    an equivalence or an `If` condition is left to Z3."""

    def __init__(self, terms: list[z3.BitVecRef]):
        self.terms = terms
        self._q: dict[int, bool] = {}
        self.fresh = _Pool("sk", 0)

    def _has_q(self, f: z3.ExprRef) -> bool:
        k = f.get_id()
        got = self._q.get(k)
        if got is None:
            got = z3.is_quantifier(f) or any(self._has_q(a) for a in f.children())
            self._q[k] = got
        return got

    def __call__(self, f: z3.BoolRef, pos: bool = True, pool: _Pool | None = None) -> z3.BoolRef:
        if not self._has_q(f):
            return f
        pool = pool or self.fresh
        if z3.is_quantifier(f):
            if f.is_lambda():
                return f
            n, body = f.num_vars(), f.body()
            if f.is_forall() == pos:
                parts = [self(z3.substitute_vars(body, *combo), pos, pool)
                         for combo in itertools.product(self.terms, repeat=n)]
                return z3.And(parts) if pos else z3.Or(parts)
            return self(z3.substitute_vars(body, *[pool.take() for _ in range(n)]), pos, pool)
        if z3.is_not(f):
            return z3.Not(self(f.arg(0), not pos, pool))
        if z3.is_and(f):
            return z3.And([self(a, pos, pool) for a in f.children()])
        if z3.is_or(f):
            return z3.Or([self(a, pos, pool) for a in f.children()])
        if z3.is_implies(f):
            return z3.Implies(self(f.arg(0), not pos, pool), self(f.arg(1), pos, pool))
        return f


def _consts(terms: list[z3.ExprRef]) -> dict[str, z3.ExprRef]:
    """The uninterpreted constants in `terms`, also under quantifiers, by name."""
    out: dict[str, z3.ExprRef] = {}
    seen: set[int] = set()
    work = list(terms)
    while work:
        e = work.pop()
        k = e.get_id()
        if k in seen:
            continue
        seen.add(k)
        if z3.is_quantifier(e):
            work.append(e.body())
        elif z3.is_const(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out[e.decl().name()] = e
        else:
            work.extend(e.children())
    return out


def _step_consts(got: dict[str, z3.ExprRef]) -> list[z3.ExprRef]:
    """Of a path's constants (`_consts`), the CPUs it names besides the state: the
    stepping task's `me`, and the fresh CPUs of its loops, picks and choices
    (encode/param.py)."""
    return [got[n] for n in sorted(got) if ("!" in n and not n.startswith("init_any")) or n.startswith("me[")]


class Checker:
    """Houdini over the templates and the properties' invariants, on the
    symbolic-N encoding, in one incremental solver: `a_i` assumes item i of
    state 0, `b_i` says it fails in state 1. Every path's own CPUs are renamed
    onto one set of constants (the stepping CPU `me`, then e0, e1, ...), and a
    broken item's CPUs are g0, g1, ...: so the quantifiers are instantiated once,
    over those and the boot CPU (`Ground`), for every path."""

    def __init__(self, penc: ParamEncoding, enc0, templates: list[Template], props: list[ir.Property],
                 timeout_s: float | None, say: Callable[[str], None] = lambda m: None,
                 global_slots: list[str] = (), seed: Callable[[Template], bool] | None = None):
        self.penc, self.say = penc, say
        # `seed`: property-directed (see `houdini`): only the properties and the
        # templates `seed` picks are assumed and checked at first; another one
        # joins when a counterexample's state breaks it
        self.seed = seed
        self._shape: dict[Template, tuple] = {}      # a template's letters and cells, for `_broken_at`
        self.names = Names(enc0)
        self.s0, self.s1 = penc.state(0), penc.state(1)
        self.solver = make_solver(timeout_s, logic=None)
        self.solver.add(penc.domain())
        self.scoped: int | None = None     # the path whose step is asserted in a scope (`_on`)
        self.timeout_s = timeout_s
        self.items: list[tuple[str, object]] = []        # ("t", template) | ("p", property)
        self.vars: list[set[str] | None] = []
        self.a: list[z3.BoolRef] = []
        self.b: list[z3.BoolRef] = []
        self.alive: list[bool] = []
        self.active: list[bool] = []     # assumed and checked (every item unless `seed`)
        self.index: dict[Template, int] = {}
        self.calls = 0
        forms: list = []
        for t in templates:
            self._item(("t", t), template_vars(t, self.names))
            forms.append(lambda s, tag, t=t: template_formula(t, self.names, s, penc.N, tag))
        self.props = {p.name: p for p in props}
        for p in props:
            if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER) and not p.fires_in_steps:
                self._item(("p", p.name), None)
                forms.append(lambda s, tag, p=p: z3.simplify(self._prop_formula(p, s)))
        # the paths with their CPUs renamed onto shared constants
        me = z3.BitVec("me", 8)
        raw = []
        most = 0
        for _, path in penc.paths:
            got = _consts(list(path.guard) + list(path.updates.values()) + [c for _, c in path.events])
            own = _step_consts(got)
            mes = [c for c in own if c.decl().name().startswith("me[")]
            rest = [c for c in own if not c.decl().name().startswith("me[")]
            most = max(most, len(rest))
            # the state variables it reads, by name (`x@0` is x in state 0)
            raw.append((mes, rest, path, {n[:-2] for n in got if n.endswith("@0")}))
        self.e = _Pool("e", most + 2)
        self.g = _Pool("g", max([t.letters for t in templates] + [2]) + 1)
        self.me = me
        self.base = [me] + self.e.consts + self.g.consts       # the non-boot CPUs every query may name
        self.ground = Ground([bv(0)] + self.base)
        # global CPU slots (an actor's cursor, a target CPU): instances at their
        # values are added when a path that reads them is asked about
        slots = {n for n in global_slots if n in self.s0}
        self.slot_terms = {n: self.s0[n] for n in slots}
        self.steps: list[z3.BoolRef] = []
        # `use_x` switches on the instances at the shared constant x (`_instances`):
        # fewer instances can only weaken a query's hypothesis, never prove more
        self.use = {x.get_id(): z3.Bool(f"use_{x}") for x in [me] + self.e.consts}
        self.uses: list[list[z3.BoolRef]] = []
        self.cur_uses: list[z3.BoolRef] = []
        self.reads: list[list[z3.ExprRef]] = []
        self.events_of: list[list[tuple[int, z3.BoolRef]]] = []
        for k, (mes, rest, path, names) in enumerate(raw):
            if k % 100 == 0:
                say(f"every N (symbolic): the block paths, {k:,} of {len(raw):,}")
            pairs = [(c, me) for c in mes] + list(zip(rest, self.e.consts))
            ren = (lambda t: z3.substitute(t, *pairs)) if pairs else (lambda t: t)
            reads = [self.slot_terms[n] for n in sorted(names & slots)]
            self.reads.append(reads)
            local = Ground([bv(0)] + self.base + reads)
            eqs = [self.s1[n] == ren(path.updates[n]) if n in path.updates else self.s1[n] == self.s0[n]
                   for n in penc.vocab.names]
            pool = self.e.reset(len(rest))
            self.steps.append(z3.And([local(ren(g), True, pool) for g in path.guard] + eqs))
            self.events_of.append([(prop, ren(c)) for prop, c in path.events])
            # the shared CPU constants this path names: only the lemmas' instances at
            # those (and at g0, g1, ... and the slots) are switched on for its queries
            names_it = ([me] if mes else []) + self.e.consts[:min(pool.at, len(self.e.consts))]
            self.uses.append([self.use[x.get_id()] for x in names_it])
        self.forms = forms
        self.known = set(templates)
        self.budget_s = BUDGET_S
        self.deadline: float | None = None
        self.init_solver: z3.Solver | None = None
        self.repair: Callable | None = None
        self.have: set[int] = set()          # ids of the slot terms whose instances are in
        self.inst: dict[int, list[z3.BoolRef]] = {}   # item -> its instances asserted
        self.dead_since = 0
        self.not0: list[z3.BoolRef] = []
        self.not1: list[z3.BoolRef] = []      # item i fails in state 1 (at the CPUs g0, g1, ...)
        for i, form in enumerate(forms):
            if i % 50 == 0:
                say(f"every N (symbolic): the lemmas' negations, {i:,} of {len(forms):,}")
            f0 = form(self.s0, f"x{i}a")
            self.not0.append(self.ground(z3.Not(f0), True, self.g.reset()))
            self.not1.append(self.ground(z3.Not(form(self.s1, f"x{i}b")), True, self.g.reset()))
            if self.active[i]:
                self._add(z3.Implies(self.b[i], self.not1[i]))
        self._instances(self.base, None)
        self.proven: list[set[int]] = [set() for _ in penc.paths]   # items no step of the path breaks

    def add_templates(self, new: list[Template], out: "Outcome") -> None:
        """More templates (a repair's): each item's formulas, its instances at
        every term so far, and the initial-state check of the new ones."""
        first = len(self.items)
        for t in new:
            i = len(self.items)
            self._item(("t", t), template_vars(t, self.names))
            form = (lambda s, tag, t=t: template_formula(t, self.names, s, self.penc.N, tag))
            self.forms.append(form)
            self.not0.append(self.ground(z3.Not(form(self.s0, f"x{i}a")), True, self.g.reset()))
            self.not1.append(self.ground(z3.Not(form(self.s1, f"x{i}b")), True, self.g.reset()))
            self.active[i] = True
            self._add(z3.Implies(self.b[i], self.not1[i]))
        self._instances(self._all_terms(), None, range(first, len(self.items)))
        self.initiate(out, range(first, len(self.items)))

    def _instances(self, terms: list, must: set[int] | None, among: Iterable[int] | None = None) -> None:
        """Assume every item (`among` them) at the choices of `terms` (using one of `must`)."""
        for k, i in enumerate(among if among is not None else range(len(self.items))):
            if k % 50 == 0:
                self.say(f"every N (symbolic): instantiating the lemmas, {k:,} of {len(self.items):,}")
            if not self.alive[i] or not self.active[i]:
                continue          # dropped for good, or not assumed yet: its instances would only weigh
            kind, what = self.items[i]
            if kind == "t":
                t = what
                for xs in _combos(t, self.names, self.s0, terms, must):
                    on = {x.get_id(): self.use[x.get_id()] for x in xs if x.get_id() in self.use}
                    self._assume(i, template_instance(t, self.names, self.s0, self.penc.N, xs), list(on.values()))
            elif must is None or terms:
                # a property: its quantifiers over every term (a repeat is harmless)
                g = Ground([bv(0)] + terms)
                self._assume(i, g(self.forms[i](self.s0, f"x{i}a")))

    def _assume(self, i: int, f: z3.BoolRef, on: list[z3.BoolRef] = ()) -> None:
        f = z3.Implies(z3.And(on), f) if on else f
        self.inst.setdefault(i, []).append(f)
        self._add(z3.Implies(self.a[i], f))

    def _compact(self) -> None:
        """A fresh solver with the live items only: the incremental one keeps every
        dropped item's instances, and its checks slow down as they pile up."""
        live = [i for i, ok in enumerate(self.alive) if ok and self.active[i]]
        self.scoped = None
        self.solver = make_solver(self.timeout_s, logic=None)
        self.solver.add(self.penc.domain())
        for i in live:
            self.solver.add(z3.Implies(self.b[i], self.not1[i]))
            for f in self.inst.get(i, ()):
                self.solver.add(z3.Implies(self.a[i], f))
        self.dead_since = 0

    def _with_slots(self, k: int) -> None:
        new = [x for x in self.reads[k] if x.get_id() not in self.have]
        if new:
            self.have |= {x.get_id() for x in new}
            self._instances(self.base + [self.slot_terms[n] for n in self.slot_terms
                                         if self.slot_terms[n].get_id() in self.have], {x.get_id() for x in new})

    def _prop_formula(self, p: ir.Property, s: dict) -> z3.BoolRef:
        f = self.penc.expr(p.expr, s)
        if p.kind is ir.PropKind.COVER:
            f = z3.Not(f)
        return z3.Implies(self.penc.quiescent(s), f) if p.observe is ir.Observe.QUIESCENT else f

    def _item(self, item, vars_) -> None:
        i = len(self.items)
        self.items.append(item)
        self.vars.append(vars_)
        self.a.append(z3.Bool(f"act{i}"))
        self.b.append(z3.Bool(f"brk{i}"))
        self.alive.append(True)
        self.active.append(self.seed is None or item[0] == "p" or self.seed(item[1]))
        if item[0] == "t":
            self.index.setdefault(item[1], i)

    def _add(self, f: z3.BoolRef) -> None:
        """Assert for good (outside any path's scope)."""
        if self.scoped is not None:
            self.solver.pop()
            self.scoped = None
        self.solver.add(f)

    def _on(self, k: int) -> None:
        """Path k's step asserted in a scope of its own, popped when another path
        is asked about: a formula passed as an assumption instead is
        internalised for good, and thousands of paths would pile up in the
        incremental solver. The queries switch on only the instances at the
        shared CPUs this path names (`uses`)."""
        self.cur_uses = self.uses[k]
        if self.scoped != k:
            if self.scoped is not None:
                self.solver.pop()
            self.solver.push()
            self.solver.add(self.steps[k])
            self.scoped = k

    def _ask(self, *query) -> z3.ModelRef | None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Undecided(f"the symbolic route's time budget of {self.budget_s:.0f} s is spent "
                            f"({self.calls:,} solver calls)")
        self.calls += 1
        live = [a for a, ok, on in zip(self.a, self.alive, self.active) if ok and on]
        r = check(self.solver, *query, *live, *self.cur_uses)
        if isinstance(r, Unknown):
            raise Undecided(r.reason)
        return self.solver.model() if r is Sat.SAT else None

    def _kill(self, i: int, why: str, out: Outcome) -> None:
        self.alive[i] = False
        self.dead_since += 1
        if self.active[i]:
            # an assumption is gone: what the paths were shown to keep must be shown again
            for got in self.proven:
                got.clear()
        if self.dead_since > max(50, sum(self.alive) // 5):
            self._compact()
        kind, what = self.items[i]
        if kind == "p":
            out.unknown.setdefault(what, why)

    def initiate(self, out: Outcome, among: Iterable[int] | None = None) -> None:
        among = list(among) if among is not None else list(range(len(self.items)))
        if self.init_solver is None:
            # one solver for every initial-state check (a repair's templates come later)
            self.init_solver = make_solver(self.timeout_s, logic=None)
            self.init_solver.add(self.penc.domain(), self.ground(self.penc.init(self.s0)))
        s = self.init_solver
        c = {i: z3.Bool(f"init{i}") for i in among}
        for i in among:
            s.add(z3.Implies(c[i], self.not0[i]))
        while True:
            live = [i for i in among if self.alive[i]]
            self.calls += 1
            self.say(f"every N (symbolic): initial states, {len(live):,} lemmas live")
            r = check(s, z3.Or([c[i] for i in live] or [z3.BoolVal(False)]))
            if isinstance(r, Unknown):
                raise Undecided(r.reason)
            if r is Sat.UNSAT:
                return
            m = s.model()
            for i in live:
                if z3.is_true(m.eval(c[i])):
                    self._kill(i, "an initial state of some N breaks it", out)

    def houdini(self, out: Outcome) -> None:
        """Drop (or repair) the items some step breaks until none is broken. A
        path's query asks only for the items it was not yet shown to keep
        (`proven`, cleared when an assumption is dropped). Property-directed
        (`seed`), a counterexample whose state breaks a template not yet
        assumed makes that template join (`_join`): it is assumed and checked
        from then on, which excludes this counterexample, so the loop moves on;
        only a counterexample the whole pool admits drops an item. What is
        proved is then proved from the items that joined, and the certificate
        holds just those."""
        while True:
            changed = False
            for k, (_, path) in enumerate(self.penc.paths):
                written = set(path.updates)
                while True:
                    done = self.proven[k]
                    cands = [i for i, ok in enumerate(self.alive)
                             if ok and self.active[i] and i not in done
                             and (self.vars[i] is None or self.vars[i] & written)]
                    if not cands:
                        break
                    self._with_slots(k)
                    self._on(k)
                    m = self._ask(z3.Or([self.b[i] for i in cands]))
                    if self.calls % 20 == 0 or m is not None:
                        self.say(f"every N (symbolic): path {k + 1}/{len(self.penc.paths)}, "
                                 f"{self.assumed():,} lemmas assumed, "
                                 f"{self.calls:,} solver calls")
                    if m is None:
                        done.update(cands)
                        break
                    if self._join(m, k):
                        changed = True
                        continue
                    # every item the model's step breaks, not only the one it chose (Houdini's
                    # usual shortcut: one counterexample drops all it refutes)
                    gone = [i for i in cands if z3.is_true(m.eval(self.b[i])) or
                            z3.is_true(m.eval(self.not1[i], model_completion=True))]
                    assert gone, "the model breaks no lemma"
                    if self.repair is not None:
                        got = self.repair(m, self.s0, self.penc.N, self._terms_on(k))
                        new = [t for t in got if t not in self.known]
                        # a repair may name a template of the pool still waiting: it joins
                        wake = [i for t in got if (i := self.index.get(t)) is not None
                                and self.alive[i] and not self.active[i]]
                        if new or wake:
                            self.known |= set(new)
                            if wake:
                                self._activate(wake)
                            if new:
                                self.add_templates(new, out)
                            self.say(f"every N (symbolic): repaired, {len(new) + len(wake)} templates")
                            changed = True
                            continue
                    for i in gone:
                        self._kill(i, f"a state of the lemmas has a step ({_where(self.penc, k)}) that breaks it",
                                   out)
                    changed = True
            if not changed:
                return

    def _join(self, m: z3.ModelRef, k: int) -> bool:
        """Property-directed: the live templates not yet assumed that the
        model's state 0 breaks at the CPUs the query instantiates them at
        (exactly the instances `_instances` would assert, evaluated here in
        Python); they join. False if there are none."""
        if self.seed is None:
            return False
        waiting = [i for i, ok in enumerate(self.alive) if ok and not self.active[i]]
        if not waiting:
            return False
        n = m.eval(self.penc.N, model_completion=True).as_long()
        terms = self._terms_on(k)
        cpus = sorted({v for t in terms if 1 <= (v := m.eval(t, model_completion=True).as_long()) < n})
        cells: dict[tuple[str, int | None], int] = {}

        def cell(arr: str, c: int | None) -> int:
            key = (arr, c)
            got = cells.get(key)
            if got is None:
                t = self.s0[arr] if c is None else z3.Select(self.s0[arr], bv(c))
                got = cells[key] = m.eval(t, model_completion=True).as_long()
            return got

        broken = [i for i in waiting if self._broken_at(self.items[i][1], cell, cpus, n)]
        if not broken:
            return False
        # Z3's model is arbitrary wherever nothing constrains it, so it breaks
        # many templates at once; taking them all would soon assume the whole
        # pool (Houdini's cost). Take the few nearest to what the step would
        # break (most variables shared with it, then the shortest), and ask again.
        near: set[str] = set()
        for i, ok in enumerate(self.alive):
            if ok and self.active[i] and self.vars[i] is not None and z3.is_true(m.eval(self.b[i])):
                near |= self.vars[i]
        near |= set(self.penc.paths[k][1].updates)
        broken.sort(key=lambda i: (-len(self.vars[i] & near), len(self.items[i][1].lits)))
        self._activate(broken[:JOIN])
        return True

    def _all_terms(self) -> list[z3.ExprRef]:
        """Every CPU term an item is instantiated at: the shared constants and
        the slots brought in so far."""
        return self.base + [x for x in self.slot_terms.values() if x.get_id() in self.have]

    def _terms_on(self, k: int) -> list[z3.ExprRef]:
        """Of those, the ones whose instances path k's queries have switched on."""
        on = {a.get_id() for a in self.uses[k]}
        return [x for x in self._all_terms() if x.get_id() not in self.use or self.use[x.get_id()].get_id() in on]

    def _activate(self, items: list[int]) -> None:
        """Waiting templates join: checked from now on, and assumed at every
        shared constant, as the other items are (later paths name others)."""
        for i in items:
            self.active[i] = True
            self._add(z3.Implies(self.b[i], self.not1[i]))
        self._instances(self._all_terms(), None, items)

    def _broken_at(self, t: Template, cell, cpus: list[int], n: int) -> bool:
        """Whether an instance of `t` at increasing CPUs among `cpus` (a pinned
        letter at its slot's value) is false in the state `cell` reads."""
        got = self._shape.get(t)
        if got is None:
            pins = pinned(t)
            got = self._shape[t] = (pins, [l for l in range(t.letters) if l not in pins],
                                    [self.names.resolve(var, who) + (vals,) for var, who, vals in t.lits],
                                    {l: self.names.resolve(*pins[l]) for l in pins})
        pins, free, res, pin_cells = got
        # without pins only increasing choices are in the instances' domain
        picks = itertools.combinations(cpus, len(free)) if not pins else itertools.permutations(cpus, len(free))
        for pick in picks:
            xs: dict[int, int] = dict(zip(free, pick))
            for l in range(t.letters):
                if l in pins:
                    who = pins[l][1]
                    if who is not None and who not in xs:
                        break
                    arr, idx = pin_cells[l]
                    xs[l] = cell(arr, None if idx is None else 0 if idx == -1 else xs[who])
            if len(xs) < t.letters:
                continue
            vs = [xs[l] for l in range(t.letters)]
            if not all(1 <= x < n for x in vs) or any(a >= b for a, b in zip(vs, vs[1:])):
                continue          # outside the instance's domain: true there
            truths = []
            for arr, idx, vals in res:
                v = cell(arr, None if idx is None else 0 if idx == -1 else vs[idx])
                truths.append(v in vals.fixed or any(v == vs[j] for j in vals.letters) or
                              (vals.others and 1 <= v < n and v not in vs))
            if not (truths[0] if t.kind == "in" else not all(truths)):
                return True
        return False

    def events(self, out: Outcome) -> bool:
        """Each step property's checks, and run-time model errors; False if a
        model error is not excluded (then nothing is proved). Property-directed,
        a counterexample may make templates join (then `houdini` runs again)."""
        index = {p.name: i for i, p in enumerate(self.penc.model.properties)}
        want = {index[name]: name for name, p in self.props.items() if p.fires_in_steps}
        for k, evs in enumerate(self.events_of):
            for prop, ok in evs:
                if prop != MODEL_ERROR and (prop not in want or want[prop] in out.unknown):
                    continue
                while True:
                    self._with_slots(k)
                    self._on(k)
                    m = self._ask(self.ground(z3.Not(ok), True, self.g.reset()))
                    if m is None or not self._join(m, k):
                        break
                if m is None:
                    continue
                if prop == MODEL_ERROR:
                    return False
                out.unknown[want[prop]] = f"a state of the lemmas has a step ({_where(self.penc, k)}) that fails it"
        return True

    def assumed(self) -> int:
        return sum(a and b for a, b in zip(self.alive, self.active))


def _where(penc: ParamEncoding, k: int) -> str:
    from tdxproof.engines.cutoff import point_names
    ci, path = penc.paths[k]
    c = penc.vocab.contexts[ci]
    return f"{c.name.replace('/@', '/c')} at {point_names(penc.model, c.auto)[path.start]}"


def prove_symbolic(penc: ParamEncoding, enc0, templates: list[Template], props: list[ir.Property],
                   timeout_s: float | None, say: Callable[[str], None] = lambda m: None,
                   drop: bool = True, repair: Repair | None = None,
                   budget_s: float | None = BUDGET_S, seed: Callable[[Template], bool] | None = None) -> Outcome:
    """Houdini (drop=True), or a re-check that drops nothing (every template and
    property must hold: `alive` says which failed). With `seed`, property-directed
    (Checker.houdini): `alive` then marks the templates that joined and survived."""
    t0 = time.monotonic()
    from tdxproof.engines.cutoff import global_cpu_slots
    from tdxproof.engines.lift import Kinds
    chk = Checker(penc, enc0, templates, props, timeout_s, say, global_cpu_slots(enc0, Kinds(enc0)),
                  seed=seed if drop else None)
    chk.repair = repair if drop else None
    if budget_s is not None:
        chk.budget_s, chk.deadline = budget_s, time.monotonic() + budget_s
    out = Outcome([], [])
    # a re-check (drop=False) runs the same steps: whatever fails is reported,
    # and the steps after it are checked against what is left
    if not drop:
        # every slot's instances from the start: a path of the proof may have had
        # those that later paths brought in, and the re-check must not have fewer
        for k in range(len(penc.paths)):
            chk._with_slots(k)
    chk.initiate(out)
    while True:
        chk.houdini(out)
        before = chk.assumed()
        errors_free = chk.events(out)
        if chk.assumed() == before:
            break
    out.templates = [what for kind, what in chk.items if kind == "t"]
    out.alive = [ok and on for (kind, _), ok, on in zip(chk.items, chk.alive, chk.active) if kind == "t"]
    if not errors_free:
        for p in props:
            out.unknown.setdefault(p.name, "a state of the lemmas has a step with a run-time model error")
    supported = {p.name for p in props if p.kind is not ir.PropKind.DEADLOCK}
    for p in props:
        if p.name not in supported:
            out.unknown.setdefault(p.name, "the symbolic encoding has no deadlock condition yet")
    out.proved = [p.name for p in props if p.name not in out.unknown]
    out.calls, out.seconds = chk.calls, round(time.monotonic() - t0, 1)
    return out



