"""Proofs over the one encoding for every N (encode/param.py).

The lemma templates of engines/cutoff.py ("for all distinct non-boot CPUs
c < d: ...") are read as quantified formulas over the symbolic-N encoding, and
checked there once, with Z3's quantifier reasoning, instead of instantiated
and checked at each N up to the cutoff:

- initiation: every initial state of every N satisfies every template;
- consecution: a state of the templates (and of the invariant properties
  assumed) with a step of any block path satisfies them again;
- each property: its invariant is among them, or no step of such a state
  fails its check;
- no step of such a state is a run-time model error.

Templates that fail initiation or consecution are dropped (Houdini) until the
rest is inductive. Each query is over one block path (the CPU of a per-CPU
task's step, a loop's next CPU and a picked CPU are constants of the path),
so the solver sees the hypotheses as universal formulas and the negated goal
as one existential: the ∃*∀* shape for which Z3's model-based instantiation is
a decision procedure on this finite CPU domain. The result holds for N = 2..127
(the CPUs an 8-bit value can name); docs/every-n.md carries it to every N.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import z3

from tdxproof.encode.param import ParamEncoding, below_n
from tdxproof.encode.solver import Sat, Unknown, check, make_solver
from tdxproof.encode.vocab import MODEL_ERROR, bv
from tdxproof.engines.induction import _prop, cpu_slots
from tdxproof.engines.lift import Template
from tdxproof.model import ir


class Undecided(Exception):
    """The solver gave no answer (a timeout, or a quantifier it gave up on)."""


class Names:
    """The per-N encoding's variables (as templates name them, from N0's
    encoding) as terms of the symbolic-N state."""

    def __init__(self, enc0):
        self.slots0 = cpu_slots(enc0)

    def resolve(self, var: str, who: int | None) -> tuple[str, int | None]:
        """(the symbolic state's variable, the letter indexing it or -1 for the
        boot CPU's cell; None for a scalar)."""
        if who is not None:
            return var.replace("{}", "*"), who
        owner = self.slots0.get(var)
        if owner is not None:
            tmpl, cpu = owner
            assert cpu == 0, var
            return tmpl.replace("{}", "*"), -1
        return var, None


def _lit(term: z3.ExprRef, vals, xs: list[z3.BitVecRef], N: z3.BitVecRef) -> z3.BoolRef:
    w = term.size()
    opts = [term == z3.BitVecVal(v, w) for v in vals.fixed]
    opts += [term == xs[i] for i in vals.letters]
    if vals.others:
        opts.append(z3.And([term >= bv(1), term < N] + [term != x for x in xs]))
    return z3.Or(opts) if opts else z3.BoolVal(False)


def template_formula(t: Template, names: Names, s: dict, N: z3.BitVecRef, tag: str) -> z3.BoolRef:
    xs = [z3.BitVec(f"{tag}_{i}", 8) for i in range(t.letters)]
    lits = []
    for var, who, vals in t.lits:
        arr, idx = names.resolve(var, who)
        if idx is None:
            term = s[arr]
        else:
            term = z3.Select(s[arr], bv(0) if idx == -1 else xs[idx])
        lits.append(_lit(term, vals, xs, N))
    body = lits[0] if t.kind == "in" else z3.Not(z3.And(lits))
    if not xs:
        return body
    dom = [z3.And(x >= bv(1), x < N) for x in xs] + [a < b for a, b in zip(xs, xs[1:])]
    return z3.ForAll(xs, z3.Implies(z3.And(dom), body))


def template_vars(t: Template, names: Names) -> set[str]:
    return {names.resolve(var, who)[0] for var, who, _ in t.lits}


@dataclass
class Outcome:
    alive: list[bool]                                   # per template
    proved: list[str]
    unknown: dict[str, str] = field(default_factory=dict)   # property -> why
    calls: int = 0
    seconds: float = 0.0


class Checker:
    """Houdini over the templates and the properties' invariants, on the
    symbolic-N encoding, in one incremental solver: `a_i` assumes item i of
    state 0, `b_i` says it fails in state 1."""

    def __init__(self, penc: ParamEncoding, enc0, templates: list[Template], props: list[ir.Property],
                 timeout_s: float | None, say: Callable[[str], None] = lambda m: None):
        self.penc, self.say = penc, say
        self.names = Names(enc0)
        self.s0, self.s1 = penc.state(0), penc.state(1)
        self.solver = make_solver(timeout_s, logic=None)
        self.solver.add(penc.domain())
        self.timeout_s = timeout_s
        self.items: list[tuple[str, object]] = []        # ("t", template) | ("p", property)
        self.f0: list[z3.BoolRef] = []
        self.vars: list[set[str] | None] = []
        self.a: list[z3.BoolRef] = []
        self.b: list[z3.BoolRef] = []
        self.alive: list[bool] = []
        self.calls = 0
        for t in templates:
            self._add(("t", t), lambda s, tag, t=t: template_formula(t, self.names, s, penc.N, tag),
                      template_vars(t, self.names))
        self.props = {p.name: p for p in props}
        for p in props:
            if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER) and not p.fires_in_steps:
                self._add(("p", p.name), lambda s, tag, p=p: self._prop_formula(p, s), None)
        self.steps = []
        for _, path in penc.paths:
            eqs = [self.s1[n] == path.updates.get(n, self.s0[n]) for n in penc.vocab.names]
            self.steps.append(z3.And(list(path.guard) + eqs))

    def _prop_formula(self, p: ir.Property, s: dict) -> z3.BoolRef:
        f = self.penc.expr(p.expr, s)
        if p.kind is ir.PropKind.COVER:
            f = z3.Not(f)
        return z3.Implies(self.penc.quiescent(s), f) if p.observe is ir.Observe.QUIESCENT else f

    def _add(self, item, formula, vars_) -> None:
        i = len(self.items)
        self.items.append(item)
        f0, f1 = formula(self.s0, f"x{i}a"), formula(self.s1, f"x{i}b")
        self.f0.append(f0)
        self.vars.append(vars_)
        a, b = z3.Bool(f"act{i}"), z3.Bool(f"brk{i}")
        self.solver.add(z3.Implies(a, f0), z3.Implies(b, z3.Not(f1)))
        self.a.append(a)
        self.b.append(b)
        self.alive.append(True)

    def _ask(self, *query) -> z3.ModelRef | None:
        self.calls += 1
        live = [a for a, ok in zip(self.a, self.alive) if ok]
        r = check(self.solver, *query, *live)
        if isinstance(r, Unknown):
            raise Undecided(r.reason)
        return self.solver.model() if r is Sat.SAT else None

    def _kill(self, i: int, why: str, out: Outcome) -> None:
        self.alive[i] = False
        kind, what = self.items[i]
        if kind == "p":
            out.unknown.setdefault(what, why)

    def initiate(self, out: Outcome) -> None:
        s = make_solver(self.timeout_s, logic=None)
        s.add(self.penc.domain(), self.penc.init(self.s0))
        c = [z3.Bool(f"init{i}") for i in range(len(self.items))]
        for i, f in enumerate(self.f0):
            s.add(z3.Implies(c[i], z3.Not(f)))
        while True:
            live = [i for i, ok in enumerate(self.alive) if ok]
            self.calls += 1
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
        while True:
            changed = False
            for k, (_, path) in enumerate(self.penc.paths):
                written = set(path.updates)
                while True:
                    cands = [i for i, ok in enumerate(self.alive)
                             if ok and (self.vars[i] is None or self.vars[i] & written)]
                    if not cands:
                        break
                    m = self._ask(self.steps[k], z3.Or([self.b[i] for i in cands]))
                    self.say(f"every N (symbolic): path {k + 1}/{len(self.penc.paths)}, "
                             f"{sum(self.alive):,} lemmas live, {self.calls:,} solver calls")
                    if m is None:
                        break
                    gone = [i for i in cands if z3.is_true(m.eval(self.b[i]))]
                    assert gone, "the model breaks no lemma"
                    for i in gone:
                        self._kill(i, f"a state of the lemmas has a step ({_where(self.penc, k)}) that breaks it",
                                   out)
                    changed = True
            if not changed:
                return

    def events(self, out: Outcome) -> bool:
        """Each step property's checks, and run-time model errors; False if a
        model error is not excluded (then nothing is proved)."""
        index = {p.name: i for i, p in enumerate(self.penc.model.properties)}
        want = {index[name]: name for name, p in self.props.items() if p.fires_in_steps}
        for k, (_, path) in enumerate(self.penc.paths):
            for prop, ok in path.events:
                if prop != MODEL_ERROR and (prop not in want or want[prop] in out.unknown):
                    continue
                if self._ask(self.steps[k], z3.Not(ok)) is None:
                    continue
                if prop == MODEL_ERROR:
                    return False
                out.unknown[want[prop]] = f"a state of the lemmas has a step ({_where(self.penc, k)}) that fails it"
        return True


def _where(penc: ParamEncoding, k: int) -> str:
    from tdxproof.engines.cutoff import point_names
    ci, path = penc.paths[k]
    c = penc.vocab.contexts[ci]
    return f"{c.name.replace('/@', '/c')} at {point_names(penc.model, c.auto)[path.start]}"


def prove_symbolic(penc: ParamEncoding, enc0, templates: list[Template], props: list[ir.Property],
                   timeout_s: float | None, say: Callable[[str], None] = lambda m: None,
                   drop: bool = True) -> Outcome:
    """Houdini (drop=True), or a re-check that drops nothing (every template and
    property must hold: `alive` says which failed)."""
    t0 = time.monotonic()
    chk = Checker(penc, enc0, templates, props, timeout_s, say)
    out = Outcome([], [])
    # a re-check (drop=False) runs the same steps: whatever fails is reported,
    # and the steps after it are checked against what is left
    chk.initiate(out)
    chk.houdini(out)
    errors_free = chk.events(out)
    out.alive = [ok for (kind, _), ok in zip(chk.items, chk.alive) if kind == "t"]
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



