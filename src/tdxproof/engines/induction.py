"""Engine `kind`: an inductive invariant, learned and re-checked, proves a property at this N.

1. Enumerate the states the encoding reaches at this N (encode/concrete.py).
   A property that fails there gets a shortest schedule, replayed on the
   reference interpreter like every other witness.
2. For the others, start from lemmas every reachable state satisfies (each
   variable's values, the invariants, "the cover goal is never met") and let Z3
   look for a counterexample to induction: a state of the lemmas with a step
   that breaks one, or that fails a check, or that is deadlocked. Such a state
   is unreachable; it is excluded by a new lemma "never this cube", the cube
   generalised against the reachable states (as few variables as possible,
   each widened to every value that keeps it unreachable). This is IC3's
   blocking with the exact reachable set of this N as the oracle: a lemma is
   never wrong, so none is ever dropped, and the loop ends (the state space is
   finite) with lemmas that are inductive and exclude every bad state.
3. "Proved" is printed only after the certificate (the lemmas) is re-checked
   by `recheck()`: a second transition relation built independently of the
   one the search used (a plain disjunction of block paths with explicit frame
   conditions, no selector, no template renaming, Z3's default solver), and
   every reachable state of the encoding at this N.

The lemmas are facts about this N: a proof here holds for every depth, every
number of hotplug and VM cycles, at this number of CPUs. The search needs the
reachable states, so it costs at least an exhaustive search; what it adds is a
certificate anyone can re-check without trusting the search.
"""

from __future__ import annotations

import bisect
import itertools
import json
import operator
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import z3
from z3.z3 import _to_ast_array

from tdxproof.diagnostics import InternalError
from tdxproof.encode.concrete import ConcreteSystem, Exploration, Packed, State, compile_fn
from tdxproof.encode.system import Encoding, encode
from tdxproof.encode.vocab import MODEL_ERROR, MODES
from tdxproof.engines.bmc import schedule_of
from tdxproof.engines.explicit import check_witness, model_error_at
from tdxproof.encode.solver import Sat, Unknown, check, make_solver, values
from tdxproof.engines.static import check_static
from tdxproof.interp.program import Program
from tdxproof.interp.explore import no_cyclic_gc
from tdxproof.model import ir
from tdxproof.results import Proof, PropertyResult, RunResult, Schedule, Verdict

FORMAT = "tdxproof-certificate/2"
MEMORY_BUDGET = 10 << 30     # bytes for the reachable states of the encoding


@dataclass(frozen=True)
class Lemma:
    """`var` is one of `values`; or the property `prop` holds (an invariant; for
    a cover, that its goal is never met); or, with `never`, no state has every
    listed variable in its listed values."""
    var: str = ""
    values: tuple[int, ...] = ()
    prop: str | None = None
    never: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def to_json(self) -> dict:
        if self.prop is not None:
            return {"property": self.prop}
        if self.never:
            return {"never": [{"var": v, "in": list(vs)} for v, vs in self.never]}
        return {"var": self.var, "in": list(self.values)}

    @staticmethod
    def from_json(d: dict) -> "Lemma":
        if "property" in d:
            return Lemma(prop=str(d["property"]))
        if "never" in d:
            return Lemma(never=tuple((str(x["var"]), tuple(int(v) for v in x["in"])) for x in d["never"]))
        return Lemma(str(d["var"]), tuple(int(x) for x in d["in"]))


@dataclass(frozen=True)
class Certificate:
    policy: str
    cpus: int
    lemmas: tuple[Lemma, ...]
    proves: tuple[str, ...]          # the properties it proves
    k: int = 1

    def to_json(self) -> str:
        """One lemma per line: diffable, and a tenth of the size of indented JSON."""
        head = json.dumps({"format": FORMAT, "policy": self.policy, "cpus": self.cpus, "k": self.k,
                           "proves": list(self.proves)})
        body = ",\n".join(json.dumps(lm.to_json(), separators=(",", ":")) for lm in self.lemmas)
        return head[:-1] + ', "lemmas": [\n' + body + "\n]}"

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


# z3.And/Or/== check and coerce every argument in Python; the search builds
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


def _narrow(states: Sequence[State], j: int) -> bool:
    return all(s[j] < 256 for s in states)


def lemma_formula(enc: Encoding, lm: Lemma, s: dict) -> z3.BoolRef:
    if lm.prop is not None:
        p = _prop(enc.model, lm.prop)
        f = enc.expr(p.expr, s)
        if p.kind is ir.PropKind.COVER:
            f = z3.Not(f)
        return z3.Implies(enc.quiescent(s), f) if p.observe is ir.Observe.QUIESCENT else f
    if lm.never:
        if any(v not in s for v, _ in lm.never):
            raise ValueError(f"the certificate names an unknown state variable in {lm.to_json()}")
        return z3.Not(_and([_or([_val(s[v], a) for a in vs]) for v, vs in lm.never]))
    if lm.var not in s:
        raise ValueError(f"the certificate names an unknown state variable in {lm.to_json()}")
    return _or([_val(s[lm.var], v) for v in lm.values])


# ---------------------------------------------------------------- strengthening by blocking

class Reach:
    """The reachable states as bitmasks: for each variable and value, which states have it.
    A cube (each variable in a set of values) meets the reachable states when
    the AND of its literals' masks is not zero."""

    def __init__(self, names: list[str], states: Sequence[State]):
        self.names = names
        self.pos = {n: j for j, n in enumerate(names)}
        cols = states.columns() if isinstance(states, Packed) else \
            (bytes(map(operator.itemgetter(j), states)) if _narrow(states, j) else list(map(operator.itemgetter(j), states))
             for j in range(len(names)))
        self.mask: list[dict[int, int]] = [self._column(col) for col in cols]
        self.full = (1 << len(states)) - 1

    @staticmethod
    def _column(col) -> dict[int, int]:
        """value -> bitmask of the states (bit r: states[r]) for one variable's
        column, in C loops: one byte per state, translated to '0'/'1' per value,
        read base 2. Wider values (program counters) are coded 255 at a time."""
        values = sorted(set(col))
        if isinstance(col, bytes):
            return Reach._bits(col, {v: v for v in values})
        out = {}
        for lo in range(0, len(values), 255):
            code = {v: k + 1 for k, v in enumerate(values[lo:lo + 255])}
            out.update(Reach._bits(bytes(map(code.get, col, itertools.repeat(0))), code))
        return out

    @staticmethod
    def _bits(col: bytes, code: dict[int, int]) -> dict[int, int]:
        """value -> bitmask of the positions where `col` holds its byte code."""
        out = {}
        for v, c in code.items():
            table = bytearray(b"0" * 256)
            table[c] = ord("1")
            out[v] = int(col.translate(table)[::-1], 2)
        return out

    def lit(self, j: int, values) -> int:
        m = 0
        for v in values:
            m |= self.mask[j].get(v, 0)
        return m

    def meets(self, cube: list[tuple[int, set[int]]], skip: int | None = None) -> int:
        m = self.full
        for k, (j, vs) in enumerate(cube):
            if k != skip:
                m &= self.lit(j, vs)
                if not m:
                    return 0
        return m

    def generalize(self, s: State | tuple[int | None, ...]) -> Lemma | None:
        """A lemma "never this cube" that excludes `s` and no reachable state, with
        few literals, each widened to as many values as stay unreachable (None if
        `s` is reachable). Greedy: take the literal of `s` that keeps the fewest
        reachable states, until none is left; drop the literals not needed; widen."""
        rest, cube = self.full, []
        known = [j for j in range(len(s)) if s[j] is not None]     # None: any value (a partial state)
        while rest:
            j = min(known, key=lambda j: ((rest & self.mask[j].get(s[j], 0)).bit_count(), j))
            nxt = rest & self.mask[j].get(s[j], 0)
            if nxt == rest:
                return None
            rest = nxt
            cube.append((j, {s[j]}))
        k = len(cube) - 1
        while k >= 0 and len(cube) > 1:
            if not self.meets(cube, skip=k):
                del cube[k]
            k -= 1
        for k, (j, vs) in enumerate(cube):
            others = self.meets(cube, skip=k)
            for v in sorted(self.mask[j]):
                if v not in vs and not (others & self.mask[j][v]):
                    vs.add(v)
        cube.sort()
        return Lemma(never=tuple((self.names[j], tuple(sorted(vs))) for j, vs in cube))

    def breaks(self, lm: Lemma) -> bool:
        """Whether a reachable state breaks the (non-property) lemma."""
        if lm.never:
            return bool(self.meets([(self.pos[v], set(vs)) for v, vs in lm.never]))
        return self.lit(self.pos[lm.var], lm.values) != self.full


def _lemma_vars(lm: Lemma) -> list[tuple[str, tuple[int, ...] | None]]:
    """The variables a lemma reads, each with the values that can make it false
    when written as a constant (None: any value may)."""
    return list(lm.never) if lm.never else [(lm.var, None)]


def path_steps(enc: Encoding, s0: dict, s1: dict) -> list[z3.BoolRef]:
    """Each block path as one step from s0 to s1, with its frame (what it does
    not write keeps its value)."""
    frame = {n: _eq(s1[n], s0[n]) for n in enc.vocab.names}
    return [_and(p.guard + [_eq(s1[n], t) for n, t in p.updates.items()] +
                 [f for n, f in frame.items() if n not in p.updates]) for _, p in enc.paths]


@dataclass
class Strengthened:
    lemmas: list[Lemma]
    stats: dict


def strengthen(enc: Encoding, reach: Reach, lemmas: list[Lemma], bad: list[z3.BoolRef],
               timeout_s: float | None, chunk: int = 4,
               progress: Callable[[int, dict], None] | None = None) -> Strengthened | Unknown:
    """Add lemmas until their conjunction is inductive and excludes every `bad`
    state (formulas over step 0; a step's failing check, over steps 0 and 1).

    Every lemma holds in every reachable state, so the conjunction always
    contains them, and none ever has to be dropped: a state of the lemmas whose
    successor breaks one (a counterexample to induction) is unreachable, and is
    excluded by a cube generalised against the reachable states (IC3's blocking,
    with the exact reachable set of this N as the oracle instead of frames).
    Because the lemmas only grow, a (path, lemma) pair found unbreakable stays
    so: each pair is asked once, a few paths per query."""
    s0, s1 = enc.state(0), enc.state(1)
    names = enc.vocab.names
    names0 = [f"{n}@0" for n in names]
    # Z3's default solver: on these queries (a few thousand lemmas, incremental,
    # mostly sat) it was 10x faster than QF_FD, which wins for BMC
    solver = make_solver(timeout_s, logic=None)
    lemmas = list(lemmas)
    paths = path_steps(enc, s0, s1)
    writers: dict[str, list[tuple[int, int | None]]] = {}    # variable -> (path, constant written)
    for k, (_, p) in enumerate(enc.paths):
        for n, t in p.updates.items():
            writers.setdefault(n, []).append((k, t.as_long() if z3.is_bv_value(t) else None))
    groups = [range(lo, min(lo + chunk, len(paths))) for lo in range(0, len(paths), chunk)]
    upto = [0] * len(groups)
    breaks: list[list[int]] = [[] for _ in paths]    # path -> the lemmas it may break, ascending
    broken: list[z3.BoolRef] = []
    stats = {"calls": 0, "solver_s": 0.0, "generalize_s": 0.0, "unsat": 0, "blocked": 0}

    def add(lm: Lemma) -> None:
        i = len(broken)
        solver.add(lemma_formula(enc, lm, s0))
        b = z3.Bool(f"broken{i}@1")
        solver.add(z3.Implies(b, z3.Not(lemma_formula(enc, lm, s1))))
        broken.append(b)
        # a path can only break a lemma over a variable it writes, and not by
        # writing a constant that makes the lemma hold
        hit: set[int] = set()
        for v, vs in (_lemma_vars(lm) if lm.prop is None else [(n, None) for n in names]):
            hit.update(k for k, const in writers.get(v, ()) if vs is None or const is None or const in vs)
        for k in hit:
            breaks[k].append(i)

    for lm in lemmas:
        add(lm)

    def ask(query: z3.BoolRef) -> Sat | Unknown | State:
        stats["calls"] += 1
        lit = z3.Bool(f"query#{stats['calls']}")
        solver.add(z3.Implies(lit, query))
        t = time.monotonic()
        r = check(solver, lit)
        if r is Sat.SAT:
            m = solver.model()
            state = tuple(values(m, names0))
        stats["solver_s"] += time.monotonic() - t
        solver.add(z3.Not(lit))        # retire the query
        if r is not Sat.SAT:
            if r is Sat.UNSAT:
                stats["unsat"] += 1
            return r
        return state

    def block(s: State) -> None:
        t = time.monotonic()
        lm = reach.generalize(s)
        stats["generalize_s"] += time.monotonic() - t
        if lm is None:
            raise InternalError("a counterexample to induction is a reachable state: "
                                "the encoding and its concrete execution disagree")
        lemmas.append(lm)
        add(lm)
        stats["blocked"] += 1
        if progress is not None:
            progress(len(lemmas), stats)

    for q in bad:
        while True:
            r = ask(q)
            if isinstance(r, Unknown):
                return r
            if r is Sat.UNSAT:
                break
            block(r)
    while any(u < len(lemmas) for u in upto):
        for g, group in enumerate(groups):
            while upto[g] < len(lemmas):
                lo, hi = upto[g], len(lemmas)
                parts = []
                for k in group:
                    hit = breaks[k][bisect.bisect_left(breaks[k], lo):]
                    if hit:
                        parts.append(_and([paths[k], _or([broken[i] for i in hit])]))
                if not parts:
                    upto[g] = hi
                    break
                r = ask(_or(parts))
                if isinstance(r, Unknown):
                    return r
                if r is Sat.UNSAT:
                    upto[g] = hi
                else:
                    block(r)
    return Strengthened(lemmas, stats)


# ---------------------------------------------------------------- re-check on a plain encoding

def plain_transition(enc: Encoding, s0: dict, s1: dict) -> tuple[z3.BoolRef, dict[int, z3.BoolRef]]:
    """One step as a plain disjunction of block paths, each with its full frame;
    and for each property, the steps whose check fails. Built over the
    encoding's step-0/1 names, then renamed to s0/s1 in one substitution."""
    names = enc.vocab.names
    a, b = enc.s0, enc.s1
    same = [_eq(b[n], a[n]) for n in names]   # built once: most of a path's frame
    steps = []
    for _, p in enc.paths:
        eqs = [_eq(b[n], p.updates[n]) if n in p.updates else same[j] for j, n in enumerate(names)]
        steps.append(_and(list(p.guard) + eqs))
    pairs = [(a[n], s0[n]) for n in names] + [(b[n], s1[n]) for n in names]
    return (z3.substitute(_or(steps), *pairs),
            {k: z3.substitute(_or(v), *pairs) for k, v in _failing_steps(enc).items()})


def _failing_steps(enc: Encoding) -> dict[int, list[z3.BoolRef]]:
    """For each event/order property (by index), the block paths that fail its
    check, over the encoding's step-0/1 names."""
    out: dict[int, list[z3.BoolRef]] = {}
    for _, p in enc.paths:
        for prop, ok in p.events:
            out.setdefault(prop, []).append(_and(list(p.guard) + [z3.Not(ok)]))
    return out


def recheck(model: ir.Model, cert: Certificate, reachable: Iterable[State] | None = None,
            timeout_s: float | None = None, enc: Encoding | None = None, model_errors: bool = False) -> list[str]:
    """Every reason the certificate does not prove what it claims (empty: it does).
    `enc`: the model's encoding at the certificate's N, if the caller has it (the
    plain transition is built from its block paths either way). `model_errors`:
    also that no step from the lemmas is a run-time model error (what `kind`
    knows from N's reachable states, a proof that never built them must show)."""
    problems: list[str] = []
    try:
        enc = enc if enc is not None else encode(model, cert.cpus)
        a = {n: z3.BitVec(f"plain.{n}", enc.vocab.widths[n]) for n in enc.vocab.names}
        b = {n: z3.BitVec(f"plain.{n}'", enc.vocab.widths[n]) for n in enc.vocab.names}
        inv_a = _and([lemma_formula(enc, lm, a) for lm in cert.lemmas])
        inv_b = _and([lemma_formula(enc, lm, b) for lm in cert.lemmas])
    except ValueError as exc:
        return [str(exc)]
    step, events = plain_transition(enc, a, b)

    def unsat(what: str, *fs: z3.BoolRef) -> None:
        # Z3's default solver (not the search's QF_FD): a second opinion on other tactics
        s = make_solver(timeout_s, logic=None)
        s.add(*fs)
        r = check(s)
        if r is not Sat.UNSAT:
            problems.append(f"{what}: {'fails' if r is Sat.SAT else 'undecided (' + r.reason + ')'}")

    unsat("initial states satisfy the lemmas", enc.init(a), z3.Not(inv_a))
    unsat("the lemmas are inductive", inv_a, step, z3.Not(inv_b))
    if model_errors and events.get(MODEL_ERROR) is not None:
        unsat("no step from the lemmas is a run-time model error", inv_a, events[MODEL_ERROR])
    index = {p.name: i for i, p in enumerate(model.properties)}
    for name in cert.proves:
        try:
            p = _prop(model, name)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if p.fires_in_steps:
            bad = events.get(index[name])
            if bad is not None:
                unsat(f"no step from the lemmas fails `{name}`", inv_a, bad)
            continue
        match p.kind:
            case ir.PropKind.INVARIANT | ir.PropKind.COVER:
                unsat(f"the lemmas imply `{name}`", inv_a, z3.Not(lemma_formula(enc, Lemma(prop=name), a)))
            case ir.PropKind.DEADLOCK:
                unsat("no deadlock in a state of the lemmas", inv_a, enc.deadlock(a, "@plain"))
            case _:
                problems.append(f"`{name}` is not a property an inductive certificate proves")
    if reachable is not None:
        # property lemmas are the properties, which the search checked on these states
        reach = Reach(enc.vocab.names, reachable if isinstance(reachable, Packed) else list(reachable))
        problems += [f"a reachable state breaks the lemma {lm.to_json()}" for lm in cert.lemmas
                     if lm.prop is None and reach.breaks(lm)]
    return problems


def only_undecided(problems: list[str]) -> bool:
    """The re-check found nothing wrong but the solver gave up somewhere."""
    return bool(problems) and all("undecided" in p for p in problems)


# ---------------------------------------------------------------- the engine

def _schedule(enc: Encoding, prog: Program, exp: Exploration, s: State, last: int | None) -> Schedule:
    init, path = exp.path_to(s)
    pos = {n: i for i, n in enumerate(enc.vocab.names)}
    return schedule_of(enc, prog, path + ([last] if last is not None else []),
                       lambda name: _signed(init[pos[name]]))


def _signed(v: int) -> int:
    return v - 256 if v >= 128 else v


@dataclass
class Learned:
    """What `kind` knows about one N: the encoding, its reachable states, the
    verdicts found in them, and (for the rest) the strengthened lemmas."""
    enc: Encoding
    prog: Program
    exp: Exploration
    results: dict[str, PropertyResult]
    todo: list[ir.Property]
    reach: Reach | None = None
    got: Strengthened | Unknown | None = None
    limit: int = 0


def learn(model: ir.Model, n: int, properties: set[str] | None, max_states: int, timeout_s: float | None,
          say: Callable[[str], None], *, strengthen_lemmas: bool = True, engine: str = "kind",
          memory_budget: int | None = None) -> Learned:
    """Steps 1 and 2 of the module docstring at N = `n` (step 1 alone, an exhaustive
    search of the compiled encoding, without `strengthen_lemmas`)."""
    enc = encode(model, n)
    prog = Program(model, n)
    say("compiling the encoding")
    cs = ConcreteSystem.build(enc)
    say("enumerating the encoding's states")
    # each state is packed into bytes (encode/concrete.py Packed), plus ~200 bytes of
    # the search's bookkeeping: stay within a memory budget rather than be killed for it
    limit = min(max_states, (memory_budget or MEMORY_BUDGET) // (cs.packed_size() + 200))
    props = [p for p in model.properties if properties is None or p.name in properties]
    finder = _Finder(enc, cs, [p for p in props if p.kind not in ir.STATIC_KINDS])
    with no_cyclic_gc():
        exp = cs.explore(limit, timeout_s, progress=lambda k: say(f"enumerating the encoding's states: {k:,}"),
                         watch=finder.see)
    error = exp.first_event.get(MODEL_ERROR)
    if error is not None:
        # a run-time model error is bad input, as in the explicit engine
        raise model_error_at(prog, _schedule(enc, prog, exp, *error))
    out = Learned(enc, prog, exp, {}, [], limit=limit)
    found_at = finder.finish(exp)
    for p in props:
        if p.kind in ir.STATIC_KINDS:
            out.results[p.name] = check_static(model, p, n)
            continue
        found = found_at.get(p.name)
        if found is not None:
            schedule = _schedule(enc, prog, exp, *found)
            check_witness(prog, p, schedule)
            verdict = Verdict.COVERED if p.kind is ir.PropKind.COVER else Verdict.VIOLATED
            out.results[p.name] = PropertyResult(p.name, p.kind.value, verdict, engine, n, schedule=schedule,
                                                 depth=len(schedule))
        else:
            out.todo.append(p)
    if out.todo and exp.complete and strengthen_lemmas:
        say("strengthening: lemmas from the reachable states")
        out.reach = reach = Reach(enc.vocab.names, exp.states)
        lemmas = [Lemma(n, tuple(sorted(reach.mask[j]))) for j, n in enumerate(enc.vocab.names)]
        lemmas += [Lemma(prop=p.name) for p in out.todo if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER)
                   and not p.fires_in_steps]
        out.got = strengthen(enc, reach, lemmas, [b for p in out.todo if (b := _bad(enc, p)) is not None],
                             timeout_s, progress=lambda k, st: say(f"strengthening: {k:,} lemmas, "
                                                                   f"{st['calls']:,} solver calls"))
    return out


def verify_kind(model: ir.Model, *, cpus: int | None = None, properties: set[str] | None = None,
                max_states: int = 2_000_000, timeout_s: float | None = None,
                certificate_out: Callable[[Certificate], None] | None = None,
                progress: Callable[[str], None] | None = None) -> RunResult:
    t0 = time.monotonic()
    n = cpus if cpus is not None else model.cpus
    say = progress or (lambda msg: None)
    got = learn(model, n, properties, max_states, timeout_s, say)
    enc, exp, results, todo = got.enc, got.exp, got.results, got.todo
    props = [p for p in model.properties if properties is None or p.name in properties]
    expects = {e.prop: e.verdict for e in model.expects}
    stats: dict = {"states": len(exp.states), "paths": len(enc.paths)}
    if todo and not exp.complete:
        limit = got.limit
        for p in todo:
            results[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "kind", n,
                                             reason=exp.stopped + (" (memory bound)" if limit < max_states
                                                                   and exp.stopped.startswith("state limit") else ""))
    elif todo:
        if isinstance(got.got, Unknown):
            for p in todo:
                results[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "kind", n,
                                                 reason=f"solver: {got.got.reason}")
        else:
            assert got.got is not None
            lemmas = got.got.lemmas
            stats.update(lemmas=len(lemmas), **got.got.stats)
            proved = [p.name for p in todo]
            cert = Certificate(model.path, n, tuple(lemmas), tuple(proved))
            say(f"re-checking {len(lemmas):,} lemmas on the plain encoding")
            problems = recheck(model, cert, exp.states, timeout_s, enc)
            if only_undecided(problems):
                # the solver gave up: no verdict, never a wrong one
                for name in proved:
                    results[name] = PropertyResult(name, _prop(model, name).kind.value, Verdict.UNKNOWN, "kind",
                                                   n, reason="certificate re-check: " + "; ".join(problems))
                proved = []
            elif problems:
                raise InternalError("certificate does not re-check: " + "; ".join(problems))
            if certificate_out is not None and proved:
                certificate_out(cert)
            proof = Proof(k=1, lemmas=len(lemmas), text=render_certificate(enc, cert, limit=12))
            for name in proved:
                p = _prop(model, name)
                verdict = Verdict.UNREACHABLE if p.kind is ir.PropKind.COVER else Verdict.PROVED
                results[name] = PropertyResult(name, p.kind.value, verdict, "kind", n, proof=proof)
    ordered = tuple(replace(results[p.name], expected=expects.get(p.name)) for p in props)
    stats["seconds"] = time.monotonic() - t0
    return RunResult(model.path, n, "kind", ordered, states=len(exp.states), complete=exp.complete, stats=stats)


class _Finder:
    """For each property, a shortest schedule to a violation (or to the cover
    goal): (state, last path). It watches the search expand each state, in
    breadth-first order, so the first state found is a shortest; every state
    predicate is one compiled function (they share subterms)."""

    def __init__(self, enc: Encoding, cs: ConcreteSystem, props: list[ir.Property]):
        self.found: dict[str, tuple[State, int | None]] = {}
        self.events: dict[int, str] = {}
        formulas: list[tuple[str, z3.BoolRef]] = []
        self.deadlocks: list[str] = []
        s0 = enc.state(0)
        index = {q.name: i for i, q in enumerate(enc.model.properties)}
        for p in props:
            if p.fires_in_steps:
                self.events[index[p.name]] = p.name
            elif p.kind is ir.PropKind.DEADLOCK:
                self.deadlocks.append(p.name)
            else:
                f = enc.expr(p.expr, s0)
                if p.kind is not ir.PropKind.COVER:
                    f = z3.Not(f)
                if p.observe is ir.Observe.QUIESCENT:
                    f = z3.And(enc.quiescent(s0), f)
                formulas.append((p.name, f))
        self.names = [name for name, _ in formulas]
        self.fn = compile_fn("bad", cs.index, None, list(enumerate(f for _, f in formulas))) if formulas else None
        self.dead = cs.deadlock_fn() if self.deadlocks else None
        self.open = len(formulas) + len(self.deadlocks)

    def see(self, r: int, s: State, stuck: list[int] | None, first: dict) -> bool:
        """Look at state r; True once every property has its schedule."""
        if self.open:
            if self.fn is not None:
                for k, hit in self.fn(s):
                    if hit and self.names[k] not in self.found:
                        self.found[self.names[k]] = (s, None)
                        self.open -= 1
            if self.dead is not None and self.deadlocks[0] not in self.found and stuck != [] and \
                    self.dead(s, stuck):
                for name in self.deadlocks:
                    self.found[name] = (s, None)
                self.open -= len(self.deadlocks)
        return not self.open and all(i in first for i in self.events)

    def finish(self, exp: Exploration) -> dict[str, tuple[State, int | None]]:
        """The states the search did not expand (it stopped early), then the steps
        whose check failed."""
        for r in range(exp.states.expanded, len(exp.states)):
            if not self.open:
                break
            self.see(r, exp.states[r], None, {})
        for i, name in self.events.items():
            if i in exp.first_event:
                self.found[name] = exp.first_event[i]
        return self.found


def _bad(enc: Encoding, p: ir.Property) -> z3.BoolRef | None:
    """The states (and steps) a proof of `p` must exclude besides its lemma:
    a step whose check fails, or a deadlock. None for invariants and covers,
    whose lemma is the property itself."""
    if p.fires_in_steps:
        idx = next(i for i, q in enumerate(enc.model.properties) if q.name == p.name)
        fails = _failing_steps(enc).get(idx)
        return _or(fails) if fails else None
    if p.kind is ir.PropKind.DEADLOCK:
        return enc.deadlock(enc.state(0), "@kind")
    return None


# ---------------------------------------------------------------- rendering

def render_value(enc: Encoding, var: str, v: int) -> str:
    # looked up, not parsed: a policy may name a per-CPU variable `pc` (`pc[1]`)
    ctx = next((c for c in enc.vocab.contexts if enc.vocab.pc(c) == var), None) if var.startswith("pc[") else None
    if ctx is not None:
        if v >= len(ctx.auto.nodes):
            return "idle"
        return _point(ctx.auto, v)
    return str(_signed(v))


def _point(auto, v: int) -> str:
    """`function:line`, with `#node` when several program points share the line."""
    names, counts = _labels(auto)
    mine = names[v]
    if mine is None:
        return f"node {v}"
    return mine if counts[mine] == 1 else f"{mine}#{v}"


def _labels(auto) -> tuple[list[str | None], Counter]:
    """Each node's `function:line` and how many nodes share it, once per automaton
    (a certificate names thousands of program points: counting them per point was
    quadratic)."""
    got = getattr(auto, "_labels", None)
    if got is None or len(got[0]) != len(auto.nodes):
        def label(node) -> str | None:
            span = getattr(node.stmt, "span", None)
            return f"{node.owner}:{span.line}" if span is not None and getattr(node, "owner", None) else None
        names = [label(nd) for nd in auto.nodes]
        got = auto._labels = (names, Counter(names))
    return got


def cpu_slots(enc: Encoding) -> dict[str, tuple[str, int]]:
    """State variables that belong to one CPU: name -> (template with `{}` for the
    CPU, the CPU). Per-CPU cells (`online[1]`) and the variables of per-CPU
    kthreads (`pc[cpuhp/1]`, `held[cpuhp/1,cpu_hotplug_lock,1]`)."""
    v = enc.vocab
    out: dict[str, tuple[str, int]] = {}
    per_cpu = {var.name for var in v.model.vars if var.per_cpu}
    for (var, i), name in v.cells.items():
        if var in per_cpu:
            out[name] = (f"{var}[{{}}]", i)
    for c in v.contexts:
        if c.kthread is None:
            continue
        mine = [v.pc(c), v.status(c), v.aux(c), v.irqs(c), v.ipi(c), v.saved(c)]
        mine += [v.local(c, k) for k in range(c.auto.nlocals)]
        mine += [v.held(c, lock.index, mode) for lock in v.model.locks for mode in MODES.values()]
        for name in mine:
            out[name] = (name.replace(f"{c.kthread.name}/{c.home_cpu}", f"{c.kthread.name}/{{}}"), c.home_cpu)
    return out


def fold_cpus(enc: Encoding, lemmas: Iterable[Lemma]) -> list[str]:
    """The lemmas in the policy's words, with the copies of one lemma for every
    (distinct) choice of CPUs folded into one `for every CPU c: ...` line."""
    slots = cpu_slots(enc)
    letters = "cdefgh"
    groups: dict[tuple, list[tuple[int, ...]]] = {}
    order: list[tuple] = []
    for lm in lemmas:
        if lm.prop is not None:
            key: tuple = ("prop", lm.prop)
            cpus: tuple[int, ...] = ()
        else:
            lits = lm.never if lm.never else ((lm.var, lm.values),)
            seen: list[int] = []
            parts = []
            for var, vs in lits:
                if var in slots and len(seen) < len(letters):
                    tmpl, cpu = slots[var]
                    if cpu not in seen:
                        seen.append(cpu)
                    # values render the same for every CPU's copy (shared automaton)
                    parts.append((tmpl, seen.index(cpu), tuple(render_value(enc, var, x) for x in vs)))
                else:
                    parts.append((var, None, tuple(render_value(enc, var, x) for x in vs)))
            key, cpus = ("never" if lm.never else "in", tuple(parts)), tuple(seen)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(cpus)
    lines = []
    n = enc.vocab.n
    for key in order:
        if key[0] == "prop":
            lines.append(f"the property `{key[1]}`")
            continue
        kind, parts = key
        if kind == "in" and len(parts[0][2]) == 1:
            continue        # a constant of this policy: not worth a line
        got = set(groups[key])
        k = len(next(iter(got)))
        everyone = set(itertools.permutations(range(n), k))
        if k and got == everyone:
            names = [(tmpl.format(letters[i]) if i is not None else tmpl, vals) for tmpl, i, vals in parts]
            head = f"for every CPU {letters[0]}: " if k == 1 else \
                f"for all distinct CPUs {', '.join(letters[:k])}: "
            lines.append(head + _say_lemma(kind, names))
        else:
            for cpus in groups[key]:
                names = [(tmpl.format(cpus[i]) if i is not None else tmpl, vals) for tmpl, i, vals in parts]
                lines.append(_say_lemma(kind, names))
    return lines


def _say_lemma(kind: str, lits: list[tuple[str, tuple[str, ...]]]) -> str:
    said = [f"{var} == {vals[0]}" if len(vals) == 1 else f"{var} in {{{', '.join(vals)}}}" for var, vals in lits]
    return ("never " + " and ".join(said)) if kind == "never" else said[0]


def render_certificate(enc: Encoding, cert: Certificate, limit: int | None = None) -> tuple[str, ...]:
    lines = fold_cpus(enc, cert.lemmas)
    if limit is not None and len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit:,} more (--certificate FILE writes them all; "
                                 "`tdxproof recheck POLICY FILE --show` prints them)"]
    return tuple(lines)
