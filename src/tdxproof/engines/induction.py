"""Engine `kind`: induction strengthened by lemmas, with a re-checked certificate.

1. Enumerate the states the encoding reaches at this N (encode/concrete.py).
   A property that fails there gets a shortest schedule, replayed on the
   reference interpreter like every other witness.
2. For the others, candidate lemmas are generated from the model and from those
   states: each variable's values, and for each pair of variables "x == a implies
   y is one of ...". Candidates are only guesses: Houdini keeps the largest
   subset that is inductive (init => L, L and one step => L'); a candidate is
   dropped when Z3 finds a state satisfying all of them whose successor breaks
   it, and concrete execution from that state drops the others it breaks.
3. A property is proved when it follows from the lemmas in one step
   (1-induction relative to them): an invariant, a check that no step from a
   lemma state fails, no deadlock in a lemma state, no reachable cover goal.
4. "Proved" is printed only after the certificate (the lemmas) is re-checked
   by `recheck()`: a second transition relation built independently of the
   optimised one (a plain disjunction of block paths with explicit frame
   conditions, no selector, no template renaming, Z3's default solver), and
   every reachable state of the encoding at this N.

The lemmas are facts about this N: a proof here holds for every depth, every
number of hotplug and VM cycles, at this number of CPUs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import z3
from z3.z3 import _to_ast_array

from tdxproof.diagnostics import InternalError
from tdxproof.encode.concrete import ConcreteSystem, Exploration, State
from tdxproof.encode.system import Encoding, encode
from tdxproof.engines.bmc import schedule_of
from tdxproof.engines.explicit import check_witness
from tdxproof.engines.solver import Sat, Unknown, check, make_solver
from tdxproof.engines.static import check_static
from tdxproof.interp.program import Program
from tdxproof.model import ir
from tdxproof.results import Proof, PropertyResult, RunResult, Schedule, Verdict

FORMAT = "tdxproof-certificate/1"


@dataclass(frozen=True)
class Lemma:
    """`var` is one of `values`, when `if_var == if_value` (if given); or the
    property `prop` holds (an invariant; for a cover, that its goal is never met)."""
    var: str = ""
    values: tuple[int, ...] = ()
    if_var: str | None = None
    if_value: int | None = None
    prop: str | None = None

    def to_json(self) -> dict:
        if self.prop is not None:
            return {"property": self.prop}
        d: dict = {"var": self.var, "in": list(self.values)}
        if self.if_var is not None:
            d["if"] = {"var": self.if_var, "eq": self.if_value}
        return d

    @staticmethod
    def from_json(d: dict) -> "Lemma":
        if "property" in d:
            return Lemma(prop=str(d["property"]))
        cond = d.get("if")
        return Lemma(str(d["var"]), tuple(int(x) for x in d["in"]),
                     str(cond["var"]) if cond else None, int(cond["eq"]) if cond else None)


@dataclass(frozen=True)
class Certificate:
    policy: str
    cpus: int
    lemmas: tuple[Lemma, ...]
    proves: tuple[str, ...]          # the properties it proves
    k: int = 1

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "policy": self.policy, "cpus": self.cpus, "k": self.k,
                           "proves": list(self.proves), "lemmas": [lm.to_json() for lm in self.lemmas]},
                          indent=1)

    @staticmethod
    def from_json(text: str) -> "Certificate":
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} certificate")
        return Certificate(d["policy"], int(d["cpus"]), tuple(Lemma.from_json(x) for x in d["lemmas"]),
                           tuple(d["proves"]), int(d.get("k", 1)))


# ---------------------------------------------------------------- lemma semantics

def _prop(model: ir.Model, name: str) -> ir.Property:
    for p in model.properties:
        if p.name == name:
            return p
    raise ValueError(f"the certificate names an unknown property `{name}`")


# z3.And/Or/== check and coerce every argument in Python; Houdini builds
# hundreds of thousands of these, so call the C API directly (same terms).
def _nary(mk, empty: bool, args: list[z3.BoolRef]) -> z3.BoolRef:
    if not args:
        return z3.BoolVal(empty)
    ctx = args[0].ctx
    arr, n = _to_ast_array(args)
    return z3.BoolRef(mk(ctx.ref(), n, arr), ctx)


def _or(args: list[z3.BoolRef]) -> z3.BoolRef:
    return _nary(z3.Z3_mk_or, False, args)


def _and(args: list[z3.BoolRef]) -> z3.BoolRef:
    return _nary(z3.Z3_mk_and, True, args)


def _eq(a: z3.ExprRef, b: z3.ExprRef) -> z3.BoolRef:
    return z3.BoolRef(z3.Z3_mk_eq(a.ctx.ref(), a.as_ast(), b.as_ast()), a.ctx)


def _val(x: z3.BitVecRef, v: int) -> z3.BoolRef:
    return _eq(x, z3.BitVecVal(v, x.size()))


def lemma_formula(enc: Encoding, lm: Lemma, s: dict) -> z3.BoolRef:
    if lm.prop is not None:
        p = _prop(enc.model, lm.prop)
        f = enc.expr(p.expr, s)
        if p.kind is ir.PropKind.COVER:
            f = z3.Not(f)
        return z3.Implies(enc.quiescent(s), f) if p.observe is ir.Observe.QUIESCENT else f
    if lm.var not in s or (lm.if_var is not None and lm.if_var not in s):
        raise ValueError(f"the certificate names an unknown state variable in {lm.to_json()}")
    body = _or([_val(s[lm.var], v) for v in lm.values])
    return body if lm.if_var is None else z3.Implies(_val(s[lm.if_var], lm.if_value), body)


class LemmaIndex:
    """Which lemmas a concrete state breaks, fast (Houdini asks for every state it simulates)."""

    def __init__(self, enc: Encoding, lemmas: list[Lemma], cs: ConcreteSystem | None):
        """Property lemmas are evaluated through `cs`; without it they are skipped."""
        pos = {n: i for i, n in enumerate(enc.vocab.names)}
        self.unary: list[tuple[int, int, frozenset[int]]] = []
        self.cond: dict[tuple[int, int], list[tuple[int, int, frozenset[int]]]] = {}
        self.preds: list[tuple[int, Callable[[State], bool]]] = []
        for i, lm in enumerate(lemmas):
            if lm.prop is not None:
                if cs is not None:
                    self.preds.append((i, cs.predicate(lemma_formula(enc, lm, enc.state(0)))))
            elif lm.if_var is None:
                self.unary.append((i, pos[lm.var], frozenset(lm.values)))
            else:
                self.cond.setdefault((pos[lm.if_var], lm.if_value), []).append(
                    (i, pos[lm.var], frozenset(lm.values)))
        self.cond_vars = sorted({j for j, _ in self.cond})

    def _broken(self, s: State, active: set[int] | None):
        for i, j, vs in self.unary:
            if s[j] not in vs and (active is None or i in active):
                yield i
        for j in self.cond_vars:
            for i, y, vs in self.cond.get((j, s[j]), ()):
                if s[y] not in vs and (active is None or i in active):
                    yield i
        for i, f in self.preds:
            if (active is None or i in active) and not f(s):
                yield i

    def satisfied(self, s: State, active: set[int] | None = None) -> bool:
        """No (active) lemma broken; stops at the first."""
        return next(self._broken(s, active), None) is None

    def broken(self, s: State, active: set[int] | None = None) -> set[int]:
        return set(self._broken(s, active))


def mine(enc: Encoding, states: list[State]) -> list[Lemma]:
    """Candidate lemmas that every given state satisfies: each variable's values,
    and for each pair, the values of y seen when x == a (when fewer than all)."""
    names = enc.vocab.names
    values: list[dict[int, int]] = []          # per variable: value -> bitmask of states
    for j in range(len(names)):
        d: dict[int, int] = {}
        for r, s in enumerate(states):
            d[s[j]] = d.get(s[j], 0) | (1 << r)
        values.append(d)
    out = [Lemma(names[j], tuple(sorted(values[j]))) for j in range(len(names))]
    varying = [j for j in range(len(names)) if len(values[j]) > 1]
    for x in varying:
        for a, rows in sorted(values[x].items()):
            for y in varying:
                if y == x:
                    continue
                seen = tuple(sorted(v for v, ry in values[y].items() if ry & rows))
                if len(seen) < len(values[y]):
                    out.append(Lemma(names[y], seen, names[x], a))
    return out


# ---------------------------------------------------------------- Houdini

@dataclass
class Houdini:
    survivors: list[int]
    iterations: int                  # solver calls
    solver: z3.Solver                # holds one step and `pre`
    pre: list[z3.BoolRef]            # assumption literal of each lemma at step 0
    stats: dict                      # seconds in the solver and in simulation, unsat calls


def _affected(enc: Encoding, lemmas: list[Lemma], active: set[int], updates: dict[str, z3.ExprRef],
              by_var: dict[str, list[int]], by_if: dict[str, list[int]], props: list[int]) -> list[int]:
    """The active lemmas a path may break: those over a variable it writes, except
    where the written value is a constant that makes the lemma hold regardless."""
    out = set(i for i in props if i in active)
    for name, term in updates.items():
        const = term.as_long() if z3.is_bv_value(term) else None
        for i in by_if.get(name, ()):
            if i in active and (const is None or lemmas[i].if_value == const):
                out.add(i)
        for i in by_var.get(name, ()):
            if i in active and (const is None or const not in lemmas[i].values):
                out.add(i)
    return sorted(out)


def houdini(enc: Encoding, cs: ConcreteSystem, lemmas: list[Lemma], timeout_s: float | None,
            simulate: int = 5000, chunk: int = 64, seeds: list[State] | None = None,
            progress: Callable[[int, int], None] | None = None) -> Houdini | Unknown:
    """The largest inductive subset of `lemmas`, one block path at a time: a step
    is the disjunction of its paths, so the lemmas are inductive when no single
    path from a state of the lemmas breaks one, and a path can only break a lemma
    over a variable it writes."""
    s0, s1 = enc.state(0), enc.state(1)
    solver = make_solver(timeout_s)
    pre = [z3.Bool(f"lemma{i}@0") for i in range(len(lemmas))]
    broken = [z3.Bool(f"broken{i}@1") for i in range(len(lemmas))]
    for i, lm in enumerate(lemmas):
        solver.add(z3.Implies(pre[i], lemma_formula(enc, lm, s0)))
        solver.add(z3.Implies(broken[i], z3.Not(lemma_formula(enc, lm, s1))))
    frame = {n: _eq(s1[n], s0[n]) for n in enc.vocab.names}
    by_var: dict[str, list[int]] = {}
    by_if: dict[str, list[int]] = {}
    props = []
    for i, lm in enumerate(lemmas):
        if lm.prop is not None:
            props.append(i)
        else:
            by_var.setdefault(lm.var, []).append(i)
            if lm.if_var is not None:
                by_if.setdefault(lm.if_var, []).append(i)
    index = LemmaIndex(enc, lemmas, cs)
    names = enc.vocab.names
    active = set(range(len(lemmas)))
    calls = 0
    stats = {"solver_s": 0.0, "simulate_s": 0.0, "unsat": 0}
    paths = []
    for _, p in enc.paths:
        updates = {n: z3.simplify(t) for n, t in p.updates.items()}
        step = p.guard + [_eq(s1[n], t) for n, t in updates.items()] + [f for n, f in frame.items() if n not in updates]
        paths.append((_and(step), updates))
    if seeds:
        _mutate(cs, index, active, seeds, lemmas)
    changed = True
    while changed:
        changed = False
        for lo in range(0, len(paths), chunk):
            group = paths[lo:lo + chunk]
            while True:
                parts = []
                for step, updates in group:
                    hit = _affected(enc, lemmas, active, updates, by_var, by_if, props)
                    if hit:
                        parts.append(_and([step, _or([broken[i] for i in hit])]))
                if not parts:
                    break
                calls += 1
                lit = z3.Bool(f"paths_break#{calls}")
                solver.add(z3.Implies(lit, _or(parts)))
                t_sat = time.monotonic()
                r = check(solver, lit, *[pre[i] for i in sorted(active)])
                stats["solver_s"] += time.monotonic() - t_sat
                if isinstance(r, Unknown):
                    return r
                if r is Sat.UNSAT:
                    stats["unsat"] += 1
                    break
                changed = True
                t_sim = time.monotonic()
                m = solver.model()
                cti = tuple(m.eval(s0[n], model_completion=True).as_long() for n in names)
                # the counterexample to induction, and every state it reaches inside
                # the lemmas, break what their successors break
                work, seen = [cti], {cti}
                while work and len(seen) < simulate:
                    s = work.pop()
                    for _, t in cs.successors(s):
                        active -= index.broken(t, active)
                        if t not in seen and index.satisfied(t, active):
                            seen.add(t)
                            work.append(t)
                stats["simulate_s"] += time.monotonic() - t_sim
                if progress is not None:
                    progress(len(active), calls)
    solver.add(enc.trans(0))
    return Houdini(sorted(active), calls, solver, pre, stats)


def _mutate(cs: ConcreteSystem, index: LemmaIndex, active: set[int], seeds: list[State],
            lemmas: list[Lemma], rounds: int = 2) -> None:
    """Cheap counterexamples to induction before any solver call: a reachable
    state with one variable changed to another value the lemmas allow is a state
    of the lemmas too (checked), so whatever its successors break is not
    inductive. Deterministic: the order of states and values is fixed."""
    pos = {n: i for i, n in enumerate(cs.enc.vocab.names)}
    domain: dict[int, tuple[int, ...]] = {}
    for lm in lemmas:
        if lm.prop is None and lm.if_var is None:
            domain[pos[lm.var]] = lm.values
    varying = sorted(j for j, vs in domain.items() if len(vs) > 1)
    for _ in range(rounds):
        before = len(active)
        for s in seeds:
            for j in varying:
                for v in domain[j]:
                    if v == s[j]:
                        continue
                    t = s[:j] + (v,) + s[j + 1:]
                    if not index.satisfied(t, active):
                        continue
                    for _, u in cs.successors(t):
                        active -= index.broken(u, active)
        if len(active) == before:
            return


# ---------------------------------------------------------------- re-check on a plain encoding

def plain_transition(enc: Encoding, s0: dict, s1: dict) -> tuple[z3.BoolRef, dict[int, z3.BoolRef]]:
    """One step as a plain disjunction of block paths, each with its full frame;
    and for each property, the steps whose check fails. Built over the
    encoding's step-0/1 names, then renamed to s0/s1 in one substitution."""
    names = enc.vocab.names
    a, b = enc.s0, enc.s1
    steps, events = [], {}
    for _, p in enc.paths:
        eqs = [_eq(b[n], p.updates[n] if n in p.updates else a[n]) for n in names]
        steps.append(_and(list(p.guard) + eqs))
        for prop, cond in p.events:
            events.setdefault(prop, []).append(z3.And(list(p.guard) + [z3.Not(cond)]))
    pairs = [(a[n], s0[n]) for n in names] + [(b[n], s1[n]) for n in names]
    return (z3.substitute(_or(steps), *pairs),
            {k: z3.substitute(z3.Or(v), *pairs) for k, v in events.items()})


def recheck(model: ir.Model, cert: Certificate, reachable: Iterable[State] | None = None,
            timeout_s: float | None = None) -> list[str]:
    """Every reason the certificate does not prove what it claims (empty: it does)."""
    problems: list[str] = []
    try:
        enc = encode(model, cert.cpus)
        a = {n: z3.BitVec(f"plain.{n}", enc.vocab.widths[n]) for n in enc.vocab.names}
        b = {n: z3.BitVec(f"plain.{n}'", enc.vocab.widths[n]) for n in enc.vocab.names}
        inv_a = _and([lemma_formula(enc, lm, a) for lm in cert.lemmas])
        inv_b = _and([lemma_formula(enc, lm, b) for lm in cert.lemmas])
    except ValueError as exc:
        return [str(exc)]
    step, events = plain_transition(enc, a, b)

    def unsat(what: str, *fs: z3.BoolRef) -> None:
        s = z3.Solver()
        if timeout_s is not None:
            s.set("timeout", int(timeout_s * 1000))
        s.add(*fs)
        r = s.check()
        if r != z3.unsat:
            problems.append(f"{what}: {'fails' if r == z3.sat else 'undecided (' + s.reason_unknown() + ')'}")

    unsat("initial states satisfy the lemmas", enc.init(a), z3.Not(inv_a))
    unsat("the lemmas are inductive", inv_a, step, z3.Not(inv_b))
    index = {p.name: i for i, p in enumerate(model.properties)}
    for name in cert.proves:
        p = _prop(model, name)
        match p.kind:
            case ir.PropKind.INVARIANT | ir.PropKind.COVER:
                unsat(f"the lemmas imply `{name}`", inv_a, z3.Not(lemma_formula(enc, Lemma(prop=name), a)))
            case ir.PropKind.EVENT | ir.PropKind.ORDER:
                bad = events.get(index[name])
                if bad is not None:
                    unsat(f"no step from the lemmas fails `{name}`", inv_a, bad)
            case ir.PropKind.DEADLOCK:
                unsat("no deadlock in a state of the lemmas", inv_a, enc.deadlock(a, "@plain"))
            case _:
                problems.append(f"`{name}` is not a property an inductive certificate proves")
    if reachable is not None:
        index = LemmaIndex(enc, list(cert.lemmas), None)
        bad = set()
        for s in reachable:
            bad |= index.broken(s)
        problems += [f"a reachable state breaks the lemma {cert.lemmas[i].to_json()}" for i in sorted(bad)]
    return problems


# ---------------------------------------------------------------- the engine

def _schedule(enc: Encoding, prog: Program, exp: Exploration, s: State, last: int | None) -> Schedule:
    init, path = exp.path_to(s)
    pos = {n: i for i, n in enumerate(enc.vocab.names)}
    return schedule_of(enc, prog, path + ([last] if last is not None else []),
                       lambda name: _signed(init[pos[name]]))


def _signed(v: int) -> int:
    return v - 256 if v >= 128 else v


def verify_kind(model: ir.Model, *, cpus: int | None = None, properties: set[str] | None = None,
                max_states: int = 2_000_000, timeout_s: float | None = None,
                certificate_out: Callable[[Certificate], None] | None = None,
                progress: Callable[[str], None] | None = None) -> RunResult:
    t0 = time.monotonic()
    n = cpus if cpus is not None else model.cpus
    say = progress or (lambda msg: None)
    enc = encode(model, n)
    prog = Program(model, n)
    say("compiling the encoding")
    cs = ConcreteSystem.build(enc)
    say("enumerating the encoding's states")
    exp = cs.explore(max_states)
    props = [p for p in model.properties if properties is None or p.name in properties]
    expects = {e.prop: e.verdict for e in model.expects}
    results: dict[str, PropertyResult] = {}
    todo: list[ir.Property] = []
    dead = cs.deadlock_fn()
    for p in props:
        if p.kind is ir.PropKind.STATIC:
            results[p.name] = check_static(model, p, n)
            continue
        found = _find(enc, cs, exp, p, dead)
        if found is not None:
            schedule = _schedule(enc, prog, exp, *found)
            check_witness(prog, p, schedule)
            verdict = Verdict.COVERED if p.kind is ir.PropKind.COVER else Verdict.VIOLATED
            results[p.name] = PropertyResult(p.name, p.kind.value, verdict, "kind", n, schedule=schedule,
                                             depth=len(schedule))
        else:
            todo.append(p)
    stats: dict = {"states": len(exp.states), "paths": len(enc.paths)}
    if todo and not exp.complete:
        for p in todo:
            results[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "kind", n,
                                             reason=f"more than {max_states} states to mine lemmas from")
        todo = []
    if todo:
        say("mining candidate lemmas")
        lemmas = mine(enc, exp.states)
        lemmas += [Lemma(prop=p.name) for p in todo if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER)]
        say(f"Houdini over {len(lemmas):,} candidates")
        h = houdini(enc, cs, lemmas, timeout_s, seeds=exp.states[::max(1, len(exp.states) // 2000)],
                    progress=lambda left, it: say(f"Houdini: {left:,} candidates left, solver call {it}"))
        stats.update(candidates=len(lemmas))
        if isinstance(h, Unknown):
            for p in todo:
                results[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "kind", n, reason=h.reason)
        else:
            stats.update(lemmas=len(h.survivors), houdini_iterations=h.iterations, **h.stats)
            kept = [lemmas[i] for i in h.survivors]
            proved, failed = _relative(enc, h, lemmas, todo)
            for p, why in failed.items():
                results[p] = PropertyResult(p, _prop(model, p).kind.value, Verdict.UNKNOWN, "kind", n, reason=why)
            if proved:
                cert = Certificate(model.path, n, tuple(kept), tuple(proved))
                say("re-checking the certificate on the plain encoding")
                problems = recheck(model, cert, exp.states, timeout_s)
                if problems and all("undecided" in p for p in problems):
                    # the solver gave up: no verdict, never a wrong one
                    for name in proved:
                        results[name] = PropertyResult(name, _prop(model, name).kind.value, Verdict.UNKNOWN, "kind",
                                                       n, reason="certificate re-check: " + "; ".join(problems))
                    proved = []
                elif problems:
                    raise InternalError("certificate does not re-check: " + "; ".join(problems))
                if certificate_out is not None and proved:
                    certificate_out(cert)
                proof = Proof(k=1, lemmas=len(kept), text=render_certificate(enc, cert, limit=12))
                for name in proved:
                    p = _prop(model, name)
                    verdict = Verdict.UNREACHABLE if p.kind is ir.PropKind.COVER else Verdict.PROVED
                    results[name] = PropertyResult(name, p.kind.value, verdict, "kind", n, proof=proof)
    ordered = tuple(replace(results[p.name], expected=expects.get(p.name)) for p in props)
    stats["seconds"] = time.monotonic() - t0
    return RunResult(model.path, n, "kind", ordered, states=len(exp.states), complete=exp.complete, stats=stats)


def _find(enc: Encoding, cs: ConcreteSystem, exp: Exploration, p: ir.Property,
          dead: Callable[[State], bool]) -> tuple[State, int | None] | None:
    """A shortest schedule to a violation (or to the cover goal): (state, last path)."""
    if p.kind in (ir.PropKind.EVENT, ir.PropKind.ORDER):
        idx = next(i for i, q in enumerate(enc.model.properties) if q.name == p.name)
        got = exp.first_event.get(idx)
        return got
    if p.kind is ir.PropKind.DEADLOCK:
        test = dead
    else:
        s0 = enc.state(0)
        f = enc.expr(p.expr, s0)
        if p.kind is not ir.PropKind.COVER:
            f = z3.Not(f)
        if p.observe is ir.Observe.QUIESCENT:
            f = z3.And(enc.quiescent(s0), f)
        test = cs.predicate(f)
    for s in exp.states:             # breadth-first order: the first is a shortest
        if test(s):
            return s, None
    return None


def _relative(enc: Encoding, h: Houdini, lemmas: list[Lemma], todo: list[ir.Property]
              ) -> tuple[list[str], dict[str, str]]:
    """Which properties follow from the lemmas in one step."""
    alive = [h.pre[i] for i in h.survivors]
    kept = {lemmas[i].prop for i in h.survivors if lemmas[i].prop is not None}
    proved, failed = [], {}
    s0 = enc.state(0)
    for k, p in enumerate(todo):
        if p.name in kept:
            proved.append(p.name)
            continue
        idx = next(i for i, q in enumerate(enc.model.properties) if q.name == p.name)
        match p.kind:
            case ir.PropKind.EVENT | ir.PropKind.ORDER:
                bad = enc.event_bad(idx, 0) if idx in enc.events else z3.BoolVal(False)
            case ir.PropKind.DEADLOCK:
                bad = enc.deadlock(s0, "@kind")
            case _:
                bad = z3.Not(lemma_formula(enc, Lemma(prop=p.name), s0))
        lit = z3.Bool(f"bad#{k}")
        h.solver.add(z3.Implies(lit, bad))
        r = check(h.solver, lit, *alive)
        if r is Sat.UNSAT:
            proved.append(p.name)
        else:
            failed[p.name] = ("the lemmas found are too weak to prove it" if r is Sat.SAT
                              else f"solver: {r.reason}")
    return proved, failed


# ---------------------------------------------------------------- rendering

def render_value(enc: Encoding, var: str, v: int) -> str:
    if var.startswith("pc["):
        ctx = next(c for c in enc.vocab.contexts if enc.vocab.pc(c) == var)
        if v >= len(ctx.auto.nodes):
            return "idle"
        node = ctx.auto.nodes[v]
        span = getattr(node.stmt, "span", None)
        return f"{node.owner}:{span.line}" if span is not None and getattr(node, "owner", None) else f"node {v}"
    return str(_signed(v))


def render_lemma(enc: Encoding, lm: Lemma) -> str:
    if lm.prop is not None:
        return f"the property `{lm.prop}`"
    vals = [render_value(enc, lm.var, v) for v in lm.values]
    body = f"{lm.var} == {vals[0]}" if len(vals) == 1 else f"{lm.var} in {{{', '.join(vals)}}}"
    if lm.if_var is None:
        return body
    return f"{lm.if_var} == {render_value(enc, lm.if_var, lm.if_value)}  =>  {body}"


def render_certificate(enc: Encoding, cert: Certificate, limit: int | None = None) -> tuple[str, ...]:
    lines = [render_lemma(enc, lm) for lm in cert.lemmas if lm.prop is not None or lm.if_var is not None
             or len(lm.values) > 1]
    if limit is not None and len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(cert.lemmas) - limit:,} more (--certificate writes them all)"]
    return tuple(lines)
