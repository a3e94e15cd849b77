"""Engine `lift`: prove a property at a large N without enumerating that N's states.

1. Learn at a small N0 (`kind`, engines/induction.py): the reachable states of
   N0 and lemmas "never this cube" that make the properties inductive there.
2. Lift every lemma to a *template* over CPU letters: a variable that belongs
   to a non-boot CPU (`online[2]`, `pc[cpuhp/2]`) names a letter, and so does a
   non-boot CPU written as a value (a loop cursor, an IPI's target); a value
   set that holds every non-boot CPU becomes "any CPU". The boot CPU stays
   itself: the models treat it apart. Inlined functions share local slots, so
   whether a slot holds a CPU is read off its context's program counter
   (`Kinds`), and a cube over a slot of both kinds is split by program point.
3. Instantiate each template at N for every order-preserving choice of
   distinct non-boot CPUs (code that walks CPUs in order, `for cpu`, makes
   lemmas about "a CPU below the cursor"; renaming that keeps the order keeps
   them true).
4. At N, with Z3 on N's encoding (never its states): drop the instances an
   initial state breaks; then a state of the instances with a step that breaks
   some (a counterexample to induction) is first offered to step 5, and if
   nothing excludes it the broken instances are dropped (Houdini), until the
   rest is inductive. A property is proved when its own check follows.
5. Repair: the CTI is projected onto N0 (its CPUs renamed into N0's, order
   kept, a CPU value outside the choice left unknown); a projection N0 cannot
   reach is blocked by a cube generalised against N0's reachable states,
   exactly as `kind` does, and the new lemma is lifted and instantiated in
   turn. A CTI of a property nothing excludes is reported: *unknown*.
6. "Proved (N=…)" is printed only after `induction.recheck()` has re-checked
   the instances at N on the plain encoding, as for `kind`.

Whatever the lifting guesses, soundness rests on steps 4 and 6 alone: an
instance is kept only if Z3 shows it initial and inductive at N.
"""

from __future__ import annotations

import bisect
import itertools
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import z3

from tdxproof.encode.system import Encoding, encode
from tdxproof.encode.vocab import MODEL_ERROR
from tdxproof.engines.explicit import check_witness
from tdxproof.engines.induction import (Certificate, Lemma, Learned, _and, _bad, _failing_steps, _or, _prop,
                                        cpu_slots, learn, lemma_formula, only_undecided, path_steps, recheck, render_certificate)
from tdxproof.diagnostics import InternalError
from tdxproof.encode.solver import Sat, Unknown, check, make_solver, values
from tdxproof.interp.program import Program
from tdxproof.interp.state import embed_initial
from tdxproof.model import ir
from tdxproof.model.cfg import control_flow
from tdxproof.results import Proof, PropertyResult, RunResult, Verdict

MAX_REPAIRS = 400


# ---------------------------------------------------------------- what each variable holds

CPU, OTHER, MIXED = "cpu", "other", "mixed"


class Kinds:
    """Whether each state variable holds a CPU (a value the renaming of CPUs
    renames) or something else. Inlined functions share local slots, so a slot
    may hold a `cpu` at one program point and a lock or an int at another: its
    kind is then read off the context's program counter (`at`)."""

    def __init__(self, enc: Encoding):
        v, model = enc.vocab, enc.model
        self.of: dict[str, str] = {name: OTHER for name in v.names}
        types = {var.name: var.type for var in model.vars}
        for (var, i), name in v.cells.items():
            if isinstance(types[var], ir.CpuType):
                self.of[name] = CPU
        classes = {c.name: c for c in model.lock_classes}
        for lock in model.locks:
            for f in classes[lock.cls].fields:
                if isinstance(f.type, ir.CpuType):
                    self.of[v.fields[(lock.index, f.name)]] = CPU
        cfgs = control_flow(model)
        self.local: dict[str, tuple[str, int]] = {}     # local slot variable -> (pc variable, slot)
        self.by_pc: dict[str, list[dict[int, str]]] = {}  # pc variable -> per node: slot -> kind
        per_auto: dict[str, list[dict[int, str]]] = {}
        for c in v.contexts:
            self.of[v.ipi(c)] = CPU
            if c.auto.name not in per_auto:
                per_auto[c.auto.name] = _kinds_at_nodes(c.auto, cfgs)
            at = self.by_pc[v.pc(c)] = per_auto[c.auto.name]
            for k in range(c.auto.nlocals):
                got = {m[k] for m in at if k in m}
                self.of[v.local(c, k)] = MIXED if len(got) > 1 else (got.pop() if got else OTHER)
                self.local[v.local(c, k)] = (v.pc(c), k)
            if c.kthread is not None and any(isinstance(f.ret, ir.CpuType) for f in model.functions):
                self.of[v.aux(c)] = MIXED      # a kthread's result may be a CPU

    def at(self, var: str, pcs: Iterable[int] | None) -> str:
        """The kind of `var` where its context's program counter is in `pcs`
        (None: anywhere). A slot dead at a point holds 0 there: no kind."""
        kind = self.of[var]
        if kind != MIXED or pcs is None:
            return kind
        pcvar, k = self.local[var]
        nodes = self.by_pc[pcvar]
        got = {nodes[pc][k] for pc in pcs if pc < len(nodes) and k in nodes[pc]}
        return MIXED if len(got) > 1 else got.pop() if got else OTHER


def instance_starts(auto) -> dict[int, int]:
    """An inlined instance's first node -> the call node that inlined it (-1: the
    body itself). Instances are contiguous (flatten.py: a body's nodes, then its
    callees'); a call node names its callees' first nodes."""
    starts: dict[int, int] = {}
    for e in ([auto.entry] if auto.kind == "actor" else list(auto.entries.values())):
        starts[e] = -1
    for node in auto.nodes:
        for _, entry, _ in node.callees:
            starts[entry] = node.id
    return starts


def _kinds_at_nodes(auto, cfgs) -> list[dict[int, str]]:
    """For each node of an automaton, the kind of every slot its instance and
    the instances that called it own there."""
    starts = instance_starts(auto)
    first = sorted(starts)
    own: dict[int, dict[int, str]] = {}
    for e in first:
        node = auto.nodes[e]
        cfg = cfgs[node.owner]
        body = cfg.fn.locals if cfg.fn is not None else cfg.actor.locals
        typed = {l.slot: (CPU if isinstance(l.type, ir.CpuType) else OTHER) for l in body}
        own[e] = {node.frame + i: typed.get(i, CPU if label.endswith(" target>") else OTHER)
                  for i, label in enumerate(cfg.local_names)}
    chain: dict[int, dict[int, str]] = {}

    def of(e: int) -> dict[int, str]:
        if e not in chain:
            caller = starts[e]
            m = dict(of(_start_of(first, caller))) if caller >= 0 else {}
            m.update(own[e])
            chain[e] = m
        return chain[e]

    return [of(_start_of(first, node.id)) for node in auto.nodes]


def _start_of(first: list[int], node: int) -> int:
    return first[bisect.bisect_right(first, node) - 1]


# ---------------------------------------------------------------- templates

@dataclass(frozen=True)
class Values:
    """A literal's value set: plain values, and for a CPU-valued variable the
    letters it may equal and whether it may be any other non-boot CPU."""
    fixed: tuple[int, ...]
    letters: tuple[int, ...] = ()
    others: bool = False


@dataclass(frozen=True)
class Template:
    kind: str                                     # "in" | "never"
    lits: tuple[tuple[str, int | None, Values], ...]   # (variable or its template, letter, values)
    letters: int


class Lifter:
    """Lemmas of N0 to templates, templates to lemmas of any N (`at`)."""

    def __init__(self, enc0: Encoding):
        self.enc0 = enc0
        self.n0 = enc0.vocab.n
        self.slots0 = cpu_slots(enc0)
        self.kinds0 = Kinds(enc0)
        self.skipped = 0

    def templates(self, lm: Lemma) -> list[Template]:
        """The templates of a lemma. A cube reading a slot that holds a CPU at
        some program points and something else at others is first split by its
        context's program counter into one cube per kind (each excludes less
        than the cube, so each holds wherever the cube does)."""
        if lm.never:
            for var, vs in lm.never:
                if self.kinds0.of[var] != MIXED or var not in self.kinds0.local or \
                        not any(1 <= x < self.n0 for x in vs):
                    continue
                pcvar, k = self.kinds0.local[var]
                lits = dict(lm.never)
                nodes = self.kinds0.by_pc[pcvar]
                pcs = lits.get(pcvar, tuple(range(len(nodes))))
                if self.kinds0.at(var, pcs) != MIXED:
                    continue
                parts: dict[str, list[int]] = {CPU: [], OTHER: []}
                for pc in pcs:
                    parts[nodes[pc].get(k, OTHER) if pc < len(nodes) else OTHER].append(pc)
                out = []
                for part in parts.values():
                    if part:
                        lits[pcvar] = tuple(part)
                        out += self.templates(Lemma(never=tuple(sorted(lits.items()))))
                return out
        t = self.template(lm)
        return [t] if t is not None else []

    def template(self, lm: Lemma) -> Template | None:
        lits = lm.never if lm.never else ((lm.var, lm.values),)
        cpus: set[int] = set()
        for var, _ in lits:
            owner = self.slots0.get(var)
            if owner is not None and owner[1] != 0:
                cpus.add(owner[1])
        nonboot = set(range(1, self.n0))
        # CPUs written as values: named by letters, unless the set holds every
        # non-boot CPU ("any CPU"). Not "every CPU but the lemma's": at N0 = 3,
        # "the other CPU" is also "the CPU above", and code that walks CPUs in
        # order (a loop's cursor) means the latter.
        pcs = {var: vs for var, vs in lits if var.startswith("pc[")}
        kinds = [self.kinds0.at(var, pcs.get(self.kinds0.local[var][0]) if var in self.kinds0.local else None)
                 for var, _ in lits]
        as_others: set[int] = set()
        for k, (var, vs) in enumerate(lits):
            kind = kinds[k]
            cpu_vals = {x for x in vs if 1 <= x < self.n0}
            if kind == OTHER or not cpu_vals:
                continue
            if kind == MIXED:
                if not lm.never:
                    # "the slot holds one of these": at N, one of these or any CPU
                    # (wider is weaker, so this only loses strength)
                    return Template("in", ((var, None, Values(tuple(vs), (), True)),), 0)
                return self._skip()
            if cpu_vals >= nonboot:
                as_others.add(k)
            else:
                cpus |= cpu_vals
        letter = {c: i for i, c in enumerate(sorted(cpus))}
        out = []
        for k, (var, vs) in enumerate(lits):
            owner = self.slots0.get(var)
            name, who = (owner[0], letter[owner[1]]) if owner is not None and owner[1] != 0 else (var, None)
            if kinds[k] == CPU:
                fixed = tuple(x for x in vs if not 1 <= x < self.n0)
                named = tuple(sorted({letter[x] for x in vs if x in letter}))
                values = Values(fixed, named, k in as_others)
            else:
                values = Values(tuple(vs))
            out.append((name, who, values))
        return Template("never" if lm.never else "in", tuple(out), len(cpus))

    def _skip(self) -> None:
        self.skipped += 1
        return None

    def at(self, t: Template, n: int, names: dict[tuple[str, int], str]) -> list[Lemma]:
        """Every instance of `t` at N = n: one per increasing choice of CPUs."""
        out = []
        for pick in itertools.combinations(range(1, n), t.letters):
            lits = []
            for var, who, vals in t.lits:
                name = names[(var, pick[who])] if who is not None else var
                vs = set(vals.fixed) | {pick[i] for i in vals.letters}
                if vals.others:
                    vs |= set(range(1, n)) - set(pick)
                lits.append((name, tuple(sorted(vs))))
            if t.kind == "in":
                out.append(Lemma(lits[0][0], lits[0][1]))
            else:
                out.append(Lemma(never=tuple(sorted(lits))))
        return out


def slot_names(enc: Encoding) -> dict[tuple[str, int], str]:
    return {(tmpl, cpu): name for name, (tmpl, cpu) in cpu_slots(enc).items()}


class Projector:
    """States of N seen as states of N0 on a choice of CPUs (`of`)."""

    def __init__(self, enc: Encoding, enc0: Encoding, kinds: Kinds):
        self.n, self.kinds = enc.vocab.n, kinds
        self.vars = list(enc0.vocab.names)
        self.names, self.slots0 = slot_names(enc), cpu_slots(enc0)

    def _src(self, var: str, pick: tuple[int, ...]) -> str:
        owner = self.slots0.get(var)
        return self.names[(owner[0], pick[owner[1] - 1])] if owner is not None and owner[1] != 0 else var

    def of(self, state: dict[str, int], pick: tuple[int, ...]) -> tuple[int | None, ...]:
        """What `state` (of N) shows on the CPUs `pick`, as a state of N0 (its
        CPUs 1.. in order): a CPU value outside the choice is unknown (None), and
        so is the value of a slot that may or may not hold a CPU."""
        back = {c: i + 1 for i, c in enumerate(pick)}
        back[0] = 0
        kinds, out = self.kinds, []
        for var in self.vars:
            x: int | None = state[self._src(var, pick)]
            kind = kinds.of[var]
            if kind == MIXED and var in kinds.local:
                kind = kinds.at(var, [state[self._src(kinds.local[var][0], pick)]])
            if kind == MIXED and 1 <= x < self.n:
                x = None
            elif kind == CPU and 1 <= x < self.n:
                x = back.get(x)
            out.append(x)
        return tuple(out)


# ---------------------------------------------------------------- Houdini at N

class AtN:
    """The instances at N in one incremental solver: `a_i` makes instance i an
    assumption about state 0, `b_i` says it fails in state 1."""

    def __init__(self, enc: Encoding, timeout_s: float | None, say: Callable[[str], None] = lambda msg: None,
                 budget_s: float | None = None):
        from tdxproof.engines.param import BUDGET_S
        self.enc = enc
        self.say = say
        # the whole Houdini run at N, as on the symbolic route: past it, unknown
        self.budget_s = BUDGET_S if budget_s is None else budget_s
        self.deadline = time.monotonic() + self.budget_s
        self.s0, self.s1 = enc.state(0), enc.state(1)
        self.names0 = [f"{n}@0" for n in enc.vocab.names]
        self.solver = make_solver(timeout_s, logic=None)
        self.lemmas: list[Lemma] = []
        self.act: list[z3.BoolRef] = []
        self.broken: list[z3.BoolRef] = []
        self.alive: list[bool] = []
        self.formulas: list[tuple[z3.BoolRef, z3.BoolRef]] = []    # each instance over state 0 and 1
        self.index: dict[Lemma, int] = {}
        self.paths = path_steps(enc, self.s0, self.s1)
        self.writers: dict[str, set[int]] = {}
        for k, (_, p) in enumerate(enc.paths):
            for n in p.updates:
                self.writers.setdefault(n, set()).add(k)
        self.calls = 0
        self.solver_s = 0.0

    def add(self, lm: Lemma) -> None:
        if lm in self.index:
            return
        i = len(self.lemmas)
        self.index[lm] = i
        self.lemmas.append(lm)
        a, b = z3.Bool(f"act{i}"), z3.Bool(f"brk{i}")
        f0, f1 = lemma_formula(self.enc, lm, self.s0), lemma_formula(self.enc, lm, self.s1)
        self.formulas.append((f0, f1))      # built once: models are evaluated on them often
        self.solver.add(z3.Implies(a, f0))
        self.solver.add(z3.Implies(b, z3.Not(f1)))
        self.act.append(a)
        self.broken.append(b)
        self.alive.append(True)

    def _ask(self, query: z3.BoolRef) -> Sat | Unknown | z3.ModelRef:
        self.calls += 1
        t = time.monotonic()
        if t > self.deadline:
            return Unknown(f"Houdini at N={self.enc.vocab.n} passed its time budget of {self.budget_s:g} s "
                           f"after {self.calls - 1:,} solver calls")
        live = [a for a, ok in zip(self.act, self.alive) if ok]
        r = check(self.solver, query, *live)
        self.solver_s += time.monotonic() - t
        self.say(f"N={self.enc.vocab.n}: {len(live):,} instances live of {len(self.lemmas):,}, "
                 f"{self.calls:,} solver calls")
        return self.solver.model() if r is Sat.SAT else r

    def _vars(self, lm: Lemma) -> list[str]:
        if lm.prop is not None:
            return list(self.enc.vocab.names)
        return [v for v, _ in lm.never] if lm.never else [lm.var]

    def initiate(self, among: Iterable[int] | None = None) -> None:
        """Drop the instances (`among` them) some initial state breaks: ask for
        an initial state that breaks one, drop what it breaks, ask again."""
        init = self.enc.init(self.s0)
        among = list(among) if among is not None else list(range(len(self.lemmas)))
        while True:
            live = [i for i in among if self.alive[i]]
            if not live:
                return
            q = _and([init, _or([z3.Not(self.formulas[i][0]) for i in live])])
            s = make_solver(None, logic=None)
            s.add(q)
            r = check(s)
            if r is not Sat.SAT:
                if isinstance(r, Unknown):
                    raise _Undecided(r.reason)
                return
            if not self._drop(s.model(), self.s0, live):
                raise _Undecided("an initial state breaks a property at this N")

    def _drop(self, m: z3.ModelRef, s: dict, live: list[int]) -> bool:
        """Drop the live instances the model breaks in state `s`; False (and drop
        nothing) if one of them is a property's own lemma."""
        side = 0 if s is self.s0 else 1
        gone = [i for i in live if z3.is_false(m.eval(self.formulas[i][side], model_completion=True))]
        if not gone:
            raise InternalError("Houdini: the model breaks no instance")
        if any(self.lemmas[i].prop is not None for i in gone):
            return False
        for i in gone:
            self.alive[i] = False
        return True

    def _state(self, m: z3.ModelRef) -> dict[str, int]:
        return dict(zip(self.enc.vocab.names, values(m, self.names0)))

    def houdini(self, block: Callable[[dict[str, int]], bool], chunk: int = 8) -> tuple[dict[str, int], str] | None:
        """Make the live instances inductive. A state of them with a step that
        breaks some is first offered to `block` (which may add instances that
        exclude it); if it cannot, the broken instances are dropped (Houdini) --
        unless one is a property's own lemma: then that state is returned,
        (state, property), a counterexample to induction nothing excludes."""
        by_path: dict[int, list[int]] = {}
        while True:
            by_path.clear()
            live = [i for i, ok in enumerate(self.alive) if ok]
            for i in live:
                for v in self._vars(self.lemmas[i]):
                    for k in self.writers.get(v, ()):
                        by_path.setdefault(k, []).append(i)
            stable = True
            ks = sorted(by_path)
            for lo in range(0, len(ks), chunk):
                while True:
                    parts = []
                    for k in ks[lo:lo + chunk]:
                        hit = [i for i in by_path[k] if self.alive[i]]
                        if hit:
                            parts.append(_and([self.paths[k], _or([self.broken[i] for i in hit])]))
                    if not parts:
                        break
                    r = self._ask(_or(parts))
                    if isinstance(r, Unknown):
                        raise _Undecided(r.reason)
                    if r is Sat.UNSAT:
                        break
                    stable = False
                    state = self._state(r)
                    if block(state):
                        continue
                    if not self._drop(r, self.s1, [i for i in live if self.alive[i]]):
                        prop = next(lm.prop for i, lm in enumerate(self.lemmas) if self.alive[i] and
                                    lm.prop is not None and
                                    z3.is_false(r.eval(self.formulas[i][1], model_completion=True)))
                        return state, prop
            if stable:
                return None

    def bad_state(self, bad: z3.BoolRef) -> dict[str, int] | None:
        """A state of the live instances from which `bad` (a failing step, a
        deadlock) happens, or None."""
        r = self._ask(bad)
        if isinstance(r, Unknown):
            raise _Undecided(r.reason)
        if r is Sat.UNSAT:
            return None
        return self._state(r)

    def live(self) -> list[Lemma]:
        return [lm for lm, ok in zip(self.lemmas, self.alive) if ok]


class _Undecided(Exception):
    pass


# ---------------------------------------------------------------- the engine

def verify_lift(model: ir.Model, small_model: ir.Model, *, properties: set[str] | None = None,
                max_states: int = 2_000_000, timeout_s: float | None = None,
                progress: Callable[[str], None] | None = None,
                certificate_out: Callable[[Certificate], None] | None = None) -> RunResult:
    """`model` lowered for the N to prove at, `small_model` the same policy lowered
    for the N0 to learn at (types such as `int[0..nr_cpus]` depend on N)."""
    t0 = time.monotonic()
    say = progress or (lambda msg: None)
    n, n0 = model.cpus, small_model.cpus
    props = [p for p in model.properties if properties is None or p.name in properties]
    expects = {e.prop: e.verdict for e in model.expects}
    say(f"learning at N={n0}")
    small = learn(small_model, n0, properties, max_states, timeout_s, say)
    results: dict[str, PropertyResult] = {}
    prog = Program(model, n)
    for name, r in small.results.items():
        results[name] = _at_n(model, small_model, prog, r, n, n0)
    stats: dict = {"learned_at": n0, "states_at_base": len(small.exp.states), "paths": 0}
    todo = small.todo
    if todo and (not small.exp.complete or not hasattr(small.got, "lemmas")):
        why = (f"learning at N={n0}: {small.exp.stopped}" if not small.exp.complete
               else f"solver at N={n0}: {getattr(small.got, 'reason', '?')}")
        for p in todo:
            results[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "lift", n, reason=why)
        todo = []
    if todo:
        got = _symbolic_at(model, small_model, small, todo, timeout_s, say, stats, certificate_out)
        results.update(got)
        todo = [p for p in todo if p.name not in got]
    if todo:
        got = _prove_at(model, small, todo, n, timeout_s, say, stats, certificate_out)
        results.update(got)
    ordered = tuple(replace(results[p.name], expected=expects.get(p.name)) for p in props)
    stats["seconds"] = time.monotonic() - t0
    return RunResult(model.path, n, "lift", ordered, states=0, complete=True, stats=stats)


def verify_past_search(model: ir.Model, small_model: ir.Model, *, properties: set[str] | None = None,
                       max_states: int = 2_000_000, timeout_s: float | None = None,
                       memory_budget: int | None = None, progress: Callable[[str], None] | None = None,
                       certificate_out: Callable[[Certificate], None] | None = None) -> RunResult:
    """`--cpus N` past what an exhaustive search reaches (the default engine's
    route from N > cli.AUTO_EXPLICIT_CPUS): no state of N is listed. N0's
    exhaustive search on the reference interpreter decides what fails there,
    each schedule replayed at N (`_at_n`: N0's initial state on N0's CPUs, the
    others at their first value); what holds at N0 goes to `verify_lift`, which
    learns at N0 and proves at N with Z3 or says why it cannot."""
    from tdxproof.engines.explicit import verify_explicit
    from tdxproof.engines.lockgraph import check_every_path
    from tdxproof.engines.static import check_static

    t0 = time.monotonic()
    say = progress or (lambda msg: None)
    n, n0 = model.cpus, small_model.cpus
    props = [p for p in model.properties if properties is None or p.name in properties]
    expects = {e.prop: e.verdict for e in model.expects}
    say(f"searching N={n0} exhaustively")
    first = verify_explicit(small_model, cpus=n0, properties={p.name for p in props}, max_states=max_states,
                            memory_budget=memory_budget, timeout_s=timeout_s)
    prog = Program(model, n)
    results: dict[str, PropertyResult] = {}
    hold: set[str] = set()
    for r in first.results:
        p = _prop(model, r.name)
        if p.kind in ir.STATIC_KINDS:
            results[r.name] = check_static(model, p, n)
        elif r.verdict in (Verdict.VIOLATED, Verdict.COVERED):
            results[r.name] = _at_n(model, small_model, prog, r, n, n0)
        elif r.verdict in (Verdict.HOLDS_EXHAUSTIVE, Verdict.UNREACHABLE):
            static = check_every_path(model, p)
            if static is not None:      # every N, from every code path: nothing to prove at N
                results[r.name] = replace(static, cpus=n)
            else:
                hold.add(r.name)
        else:
            results[r.name] = PropertyResult(r.name, r.kind, Verdict.UNKNOWN, "lift", n,
                                             reason=f"N={n0} was not searched to the end: {r.reason}")
    stats: dict = {"searched_at": n0, "states_at_base": first.states}
    if hold:
        run = verify_lift(model, small_model, properties=hold, max_states=max_states, timeout_s=timeout_s,
                          progress=progress, certificate_out=certificate_out)
        results.update((r.name, r) for r in run.results)
        stats.update((k, v) for k, v in run.stats.items() if k != "seconds")
    ordered = tuple(replace(results[p.name], expected=expects.get(p.name)) for p in props)
    stats["seconds"] = time.monotonic() - t0
    return RunResult(model.path, n, "lift", ordered, states=0, complete=True, stats=stats)


def _symbolic_at(model: ir.Model, small_model: ir.Model, small: Learned, todo: list[ir.Property],
                 timeout_s: float | None, say: Callable[[str], None], stats: dict,
                 certificate_out: Callable[[Certificate], None] | None = None) -> dict[str, PropertyResult]:
    """First, without N's encoding: the templates checked once on the encoding
    of every N from 2 to 127 (engines/param.py), which holds N. The proved
    properties, re-checked there with nothing dropped. A certificate asked for
    is the templates' instances at N, re-checked on N's own encoding: the two
    encoders must agree, or it is an internal error."""
    from tdxproof.encode.param import MAX_N, Unsupported, encode_param
    from tdxproof.engines.cutoff import candidates, first_names, fragment, uniform
    from tdxproof.engines.param import Repair, Undecided, prove_symbolic

    n = model.cpus
    props = [p for p in todo if p.kind is not ir.PropKind.DEADLOCK]
    if n > MAX_N or not props or fragment(small_model, model).problems:
        return {}
    try:
        penc = encode_param(small_model, say)
    except Unsupported as exc:
        stats["symbolic_why"] = str(exc)
        return {}
    lifter, cands, closure, live, _ = candidates(small)
    names0 = first_names(lifter.slots0)
    seed = set(closure) | set(live)         # property-directed, as cutoff._symbolic
    repair = Repair(small.enc, small.reach, lifter.kinds0,
                    lambda lm: [t for t in lifter.templates(lm) if uniform(t, lifter.kinds0, names0)])
    say(f"N={n}: Houdini on the symbolic-N encoding ({len(penc.paths):,} block paths, {len(cands):,} templates)")
    try:
        got = prove_symbolic(penc, small.enc, cands, props, timeout_s, say, repair=repair, seed=seed.__contains__)
        kept = [t for t, ok in zip(got.templates, got.alive) if ok]
        proved = [p for p in props if p.name in got.proved]
        again = prove_symbolic(penc, small.enc, kept, proved, timeout_s, drop=False) if proved else None
    except Undecided as exc:
        stats["symbolic_why"] = f"solver: {exc}"
        return {}
    stats.update(symbolic_seconds=got.seconds, symbolic_paths=len(penc.paths), symbolic_templates=len(kept))
    if again is None:
        return {}
    if not all(again.alive) or again.unknown:
        raise InternalError("the symbolic-N lemmas do not re-check: " + "; ".join(again.unknown.values()))
    if certificate_out is not None:
        enc = encode(model, n)
        names = slot_names(enc)
        lifter = Lifter(small.enc)
        lemmas = list(dict.fromkeys(lm for t in kept for lm in lifter.at(t, n, names)))
        lemmas += [Lemma(prop=p.name) for p in proved if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER)]
        cert = Certificate(model.path, n, tuple(lemmas), tuple(p.name for p in proved))
        say(f"re-checking the {len(lemmas):,} instances at N={n} on N's own encoding")
        problems = recheck(model, cert, None, timeout_s, enc, model_errors=True)
        if problems and not only_undecided(problems):
            raise InternalError("the symbolic-N proof's instances do not re-check at N: " + "; ".join(problems))
        if not problems:
            certificate_out(cert)
    proof = Proof(k=1, lemmas=len(kept), text=())
    return {p.name: PropertyResult(p.name, p.kind.value, Verdict.UNREACHABLE if p.kind is ir.PropKind.COVER
                                   else Verdict.PROVED, "lift", n, proof=proof,
                                   reason=f"N={n}: one encoding for N=2..{MAX_N}, N symbolic; "
                                   f"{len(kept):,} lemma templates learned at N={small_model.cpus}")
            for p in proved}


def _at_n(model: ir.Model, small_model: ir.Model, prog: Program, r: PropertyResult, n: int, n0: int) -> PropertyResult:
    """A verdict found at N0 said at N: a schedule of N0 is one of N too (the
    extra CPUs' kthreads never run); it is replayed at N before it is shown."""
    if r.schedule is None or n == n0:
        return replace(r, engine="lift")
    p = _prop(model, r.name)
    # the same initial state on N0's CPUs, N's further CPUs at their first value
    init = embed_initial(Program(small_model, n0), r.schedule.init, prog)
    sched = replace(r.schedule, init=init) if init is not None else r.schedule
    try:
        check_witness(prog, p, sched)
    except (InternalError, ValueError, KeyError, IndexError):
        # e.g. a `for cpu` loop has more CPUs to walk at N: the schedule is not one of N
        return PropertyResult(r.name, r.kind, Verdict.UNKNOWN, "lift", n,
                              reason=f"{r.verdict.value} at N={n0} ({len(r.schedule)} steps; `--cpus {n0}` shows "
                              f"them); that schedule is not one of N={n}, and N={n} was not searched")
    return replace(r, engine="lift", cpus=n, schedule=sched,
                   reason=f"schedule found at N={n0}; a shorter one at N={n} is not excluded" if
                   r.verdict is Verdict.VIOLATED else None)


def _prove_at(model: ir.Model, small: Learned, todo: list[ir.Property], n: int, timeout_s: float | None,
              say: Callable[[str], None], stats: dict,
              certificate_out: Callable[[Certificate], None] | None = None) -> dict[str, PropertyResult]:
    enc0, reach = small.enc, small.reach
    assert reach is not None
    lifter = Lifter(enc0)
    templates: list[Template] = []
    seen: set[Template] = set()

    def lift(lm: Lemma) -> list[Template]:
        """The lemma's templates not lifted before."""
        new = [t for t in lifter.templates(lm) if t not in seen]
        seen.update(new)
        templates.extend(new)
        return new

    for lm in small.got.lemmas:
        if lm.prop is None:
            lift(lm)
    say(f"building the encoding at N={n}")
    enc = encode(model, n)
    stats["paths"] = len(enc.paths)
    names = slot_names(enc)
    projector = Projector(enc, enc0, lifter.kinds0)
    atn = AtN(enc, timeout_s, say)
    for t in templates:
        for lm in lifter.at(t, n, names):
            atn.add(lm)
    # every variable's values at N: the lifted `in` lemmas say it for the CPUs'
    # copies; the property lemmas are the properties themselves
    for p in todo:
        if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER) and not p.fires_in_steps:
            atn.add(Lemma(prop=p.name))
    stats.update(templates=len(templates), instances=len(atn.lemmas), unliftable=lifter.skipped)
    say(f"N={n}: {len(templates):,} templates, {len(atn.lemmas):,} instances")
    out: dict[str, PropertyResult] = {}
    bads = {p.name: _bad(enc, p) for p in todo}
    gave_up: dict[str, str] = {}     # property -> why this route has no proof of it
    everything = list(todo)
    repairs = [0]
    # why a CTI's projections did not block it: a state N0 reaches, a lemma
    # already lifted (dropped at N)
    why = {"reachable": 0, "known": 0}
    stats["unblocked"] = why

    def block(state: dict[str, int]) -> bool:
        """Exclude `state` by a lemma of N0: a projection of it onto N0's CPUs
        that N0 does not reach, generalised against N0's reachable states (as
        `kind` does), lifted and instantiated at N. False if there is none new."""
        if repairs[0] >= MAX_REPAIRS:
            return False
        for pick in itertools.combinations(range(1, n), enc0.vocab.n - 1):
            s0 = projector.of(state, pick)
            lm = reach.generalize(s0)
            if lm is None:
                why["reachable"] += 1
                continue
            new = lift(lm)
            if not new:
                why["known"] += 1
                continue
            before = len(atn.lemmas)
            for t in new:
                for inst in lifter.at(t, n, names):
                    atn.add(inst)
            atn.initiate(range(before, len(atn.lemmas)))
            repairs[0] += 1
            return True
        return False

    try:
        atn.initiate()
        while todo:
            say(f"N={n}: Houdini over {sum(atn.alive):,} instances ({repairs[0]:,} lemmas added)")
            cti = atn.houdini(block)
            if cti is None:
                for p in todo:
                    b = bads[p.name]
                    s = atn.bad_state(b) if b is not None else None
                    if s is not None:
                        cti = (s, p.name)
                        break
            if cti is None:
                break
            state, name = cti
            if not block(state):
                # this property has no proof by this route; the others may still
                gave_up[name] = (f"a state at N={n} with a step that breaks `{name}` that no lemma learned at "
                                 f"N={enc0.vocab.n} excludes (its projections onto {enc0.vocab.n} CPUs are "
                                 f"reachable there, or their lemmas are not inductive at N={n})")
                todo = [p for p in todo if p.name != name]
                i = atn.index.get(Lemma(prop=name))
                if i is not None:
                    atn.alive[i] = False
    except _Undecided as exc:
        out.update(_unknown(todo, n, f"solver: {exc}"))
        todo = []
    for p in everything:
        if p.name in gave_up:
            out[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "lift", n, reason=gave_up[p.name])
    if not todo:
        return out
    errors = _failing_steps(enc).get(MODEL_ERROR)
    if errors:
        try:
            s = atn.bad_state(_or(errors))
        except _Undecided as exc:
            out.update(_unknown(todo, n, f"solver: {exc}"))
            return out
        if s is not None:
            # N's reachable states were never built: a run-time model error is not excluded
            out.update(_unknown(todo, n, f"a state of the lifted lemmas at N={n} has a step with a run-time "
                                "model error (a value out of its range, a hold past its bound) that no lemma "
                                "excludes"))
            return out
    lemmas = atn.live()
    stats.update(lemmas=len(lemmas), repairs=repairs[0], calls=atn.calls, solver_s=round(atn.solver_s, 1))
    cert = Certificate(model.path, n, tuple(lemmas), tuple(p.name for p in todo))
    say(f"re-checking {len(lemmas):,} lemmas at N={n} on the plain encoding")
    problems = recheck(model, cert, None, timeout_s, enc, model_errors=True)
    if only_undecided(problems):
        out.update(_unknown(todo, n, "certificate re-check: " + "; ".join(problems)))
        return out
    if problems:
        raise InternalError("lifted certificate does not re-check: " + "; ".join(problems))
    if certificate_out is not None:
        certificate_out(cert)
    proof = Proof(k=1, lemmas=len(lemmas), text=render_certificate(enc, cert, limit=12))
    for p in todo:
        verdict = Verdict.UNREACHABLE if p.kind is ir.PropKind.COVER else Verdict.PROVED
        out[p.name] = PropertyResult(p.name, p.kind.value, verdict, "lift", n, proof=proof)
    return out


def _unknown(todo: list[ir.Property], n: int, why: str) -> dict[str, PropertyResult]:
    return {p.name: PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "lift", n, reason=why) for p in todo}
