"""The explicit engine's search with symmetry reduction (docs/symmetry.md).

The search runs on the any-order semantics O (Program(any_order=True)), one
state per orbit under renaming the interchangeable CPUs (symmetry.Canon). What it
proves holds for the reference semantics A too (A's runs are O's). What it finds
violated is mapped back to A: the breadth-first O witness of length L is first made
a concrete run of O (one state of each orbit on its path, step by step); that run,
renamed as a whole by each renaming in turn, is followed by A's own steps,
matched exactly (a loop that O ran in another order is ascending under one of
them); failing that, a depth-first walk of A's steps through the path's orbits.
The schedule found has length L, is replayed and checked on the reference
interpreter, and L is A's shortest, since A's shortest is never shorter than O's.
A property whose O witness has no such A schedule, and every property when O
met a loop whose order mattered (OrderSeen) or a run-time model error, goes to
the plain search (the former here, the latter by the caller, engines/explicit.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tdxproof.diagnostics import InternalError
from tdxproof.interp.explore import Exploration, Found, explore, no_cyclic_gc
from tdxproof.interp.program import Program
from tdxproof.interp.state import initial_states
from tdxproof.interp.step import run_context
from tdxproof.interp.symmetry import Canon, NotSymmetric, OrderSeen, analyse
from tdxproof.model import ir
from tdxproof.results import Schedule, Step

DFS_BUDGET = 200_000   # A states tried while mapping one witness back


@dataclass
class SymmetricRun:
    exploration: Exploration | None     # None: the plain search must decide everything
                                        # (`states` counts orbits)
    note: str                           # what was reduced, or why not
    undecided: set[str] = field(default_factory=set)   # properties the plain search decided


def search_symmetric(prog: Program, model: ir.Model, want: set[str], **limits: Any) -> SymmetricRun:
    progo = Program(model, prog.n, any_order=True)
    sym = analyse(progo)
    if isinstance(sym, NotSymmetric):
        return SymmetricRun(None, sym.describe())
    canon = Canon(progo, sym)
    if not canon.closed(initial_states(progo)):
        return SymmetricRun(None, "not symmetric: the initial states are not closed under renaming CPUs")
    try:
        exp = explore(progo, want=want, canon=canon, keep_trail=True, **limits)
    except OrderSeen as exc:
        where = f" at {exc.span.path}:{exc.span.line}" if getattr(exc.span, "path", None) else ""
        return SymmetricRun(None, f"not applied: a CPU loop's condition changed while it ran{where}")
    if exp.model_error is not None:
        return SymmetricRun(None, "not applied: the any-order search met a run-time model error")
    mapper = _Mapper(prog, progo, canon, exp, limits.get("progress"))
    with no_cyclic_gc():    # the search's states are still alive: a full collection per few steps otherwise
        out, undecided = _map_all(model, mapper, exp)
    exp.trail = None
    note = sym.describe()
    if undecided:
        note += f"; searched without it: {', '.join(sorted(undecided))}"
        _decide_plainly(prog, out, undecided, limits)
    return SymmetricRun(out, note, undecided)


def _decide_plainly(prog: Program, out: Exploration, undecided: set[str], limits: dict) -> None:
    """O's witness of these has no reference schedule of its length: the plain
    search decides them (one timeout for both searches); what it leaves open is
    unknown, and only that."""
    if limits.get("timeout_s") is not None:
        limits = dict(limits, timeout_s=max(0.1, limits["timeout_s"] - out.seconds))
    plain = explore(prog, want=undecided, **limits)
    if plain.model_error is not None:
        out.model_error = plain.model_error
        return
    for name in undecided:
        for table, into in ((plain.violations, out.violations), (plain.covered, out.covered)):
            if name in table:
                into[name] = table[name]
        if name not in plain.violations and name not in plain.covered and not plain.complete:
            out.open[name] = plain.stopped or f"stopped after {plain.states:,} states"
    out.seconds += plain.seconds


def _map_all(model: ir.Model, mapper: "_Mapper", exp: Exploration) -> tuple[Exploration, set[str]]:
    out = Exploration(states=exp.states, complete=exp.complete, seconds=exp.seconds, max_depth=exp.max_depth,
                      stopped=exp.stopped)
    undecided: set[str] = set()
    for table, into in ((exp.violations, out.violations), (exp.covered, out.covered)):
        for name, found in table.items():
            sched = mapper.to_reference(model.property(name), found)
            if sched is None:
                undecided.add(name)
            else:
                into[name] = Found(sched, found.detail)
    return out, undecided


class _Mapper:
    def __init__(self, prog: Program, progo: Program, canon: Canon, exp: Exploration, progress: Any = None):
        self.prog, self.progo, self.canon, self.exp = prog, progo, canon, exp
        self.progress = progress   # the search's progress line, kept alive while witnesses are mapped
        self.extra = [o.nlocals - a.nlocals for a, o in zip(prog.codes, progo.codes)]
        self.kthreads = [j for j in range(len(prog.contexts)) if j not in set(canon.actors)]

    def _rough(self, s: tuple) -> tuple:
        """What renaming changes in no state, cheap: where each actor is, and the
        places of the kthreads as a multiset (a quick test before the orbit's)."""
        ctxs = s[1]
        actors = tuple((ctxs[i][3], tuple((f[0], f[1]) for f in ctxs[i][0])) for i in self.canon.actors)
        kth = sorted((ctxs[j][3], tuple((f[0], f[1]) for f in ctxs[j][0])) for j in self.kthreads)
        return actors, tuple(kth)

    def _forget(self, s: tuple) -> tuple:
        """An O state with the loops' hidden locals forgotten (0)."""
        codes = self.progo.codes
        return self._reshape(s, lambda code, pc: codes[code].bits, 0)

    def _shape(self, s: tuple) -> tuple:
        """An A state in O's shape: the hidden locals added (0) and the locals O
        has dead there forgotten (a loop's variable at its advance)."""
        codes = self.progo.codes
        return self._reshape(s, lambda code, pc: codes[code].dead[pc], 1)

    def _reshape(self, s: tuple, zero, grow: int) -> tuple:
        """Each frame's locals, `grow`n to O's count if asked, with zero(code, pc) zeroed."""
        ctxs = []
        for ctx in s[1]:
            frames = ctx[0]
            if frames:
                fr = []
                for f in frames:
                    code, pc = f[0], f[1]
                    slots = zero(code, pc)
                    if slots or (grow and self.extra[code]):
                        loc = list(f[2]) + [0] * (self.extra[code] * grow)
                        for i in slots:
                            loc[i] = 0
                        f = (code, pc, tuple(loc), f[3], f[4])
                    fr.append(f)
                ctx = (tuple(fr),) + ctx[1:]
            ctxs.append(ctx)
        return (s[0], tuple(ctxs))

    def _concrete(self, chain: list[int]) -> list[tuple] | None:
        """A run of O through the orbits of the search's path (renaming commutes
        with O's steps, so each orbit's state has a successor in the next orbit)."""
        states = self.exp.trail[0]
        o = states[chain[0]]
        out = [self._forget(o)]
        for i in chain[1:]:
            target, nxt = states[i], None
            rough = self._rough(target)
            for ci in range(len(self.progo.contexts)):
                res = run_context(self.progo, o, ci)
                if type(res) is list:
                    nxt = next((x.state for x in res
                                if self._rough(x.state) == rough and self.canon.least(x.state) == target), None)
                    if nxt is not None:
                        break
            if nxt is None:
                return None
            o = nxt
            out.append(self._forget(o))
        return out

    def to_reference(self, p: ir.Property, found: Found) -> Schedule | None:
        from tdxproof.engines.explicit import check_witness

        states, parent = self.exp.trail
        idx, chain = found.index, []
        while idx >= 0:
            chain.append(idx)
            idx = parent[idx][0]
        chain.reverse()
        event = len(found.schedule.steps) > len(chain) - 1   # ends in a step that fires it
        prog = self.prog
        names = [c.name for c in prog.contexts]
        budget = [DFS_BUDGET]
        last = len(chain) - 1
        # first: O's run renamed as a whole (by each renaming in turn), matched
        # exactly; then, if none is a run of A, A's steps through the orbits
        conc = self._concrete(chain)
        tries: list = []
        if conc is not None:
            for perm in self.canon.group():
                tries.append([self.canon.permute(c, perm) for c in conc])
        tries.append(None)
        rough = [self._rough(states[i]) for i in chain]
        keys: list = []

        def match(i: int, a: tuple, targets) -> bool:
            if targets is not None:
                return self._shape(a) == targets[i]
            if not keys:
                keys.extend(self.canon.least(self._forget(states[j])) for j in chain)
            return self._rough(a) == rough[i] and self.canon.least(self._shape(a)) == keys[i]

        def accept(init: int, steps: list[Step]) -> Schedule | None:
            sched = Schedule(init, tuple(steps))
            try:
                check_witness(prog, p, sched)
            except InternalError:
                return None
            return sched

        def moves(a: tuple):
            for ci in range(len(names)):
                res = run_context(prog, a, ci)
                if type(res) is list:
                    for o in res:
                        yield ci, o

        def dfs(i: int, a: tuple, init: int, steps: list[Step], targets) -> Schedule | None:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            if self.progress is not None and budget[0] % 500 == 0:
                self.progress(self.exp.states, i)
            if i == last:
                if not event:
                    return accept(init, steps)
                for ci, o in moves(a):
                    if o.events:
                        got = accept(init, steps + [Step(names[ci], o.choice)])
                        if got is not None:
                            return got
                return None
            for ci, o in moves(a):
                if match(i + 1, o.state, targets):
                    got = dfs(i + 1, o.state, init, steps + [Step(names[ci], o.choice)], targets)
                    if got is not None:
                        return got
            return None

        import sys
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 4 * len(chain) + 1000))
        try:
            for targets in tries:
                for k, a0 in enumerate(initial_states(prog)):
                    if match(0, a0, targets):
                        got = dfs(0, a0, k, [], targets)
                        if got is not None:
                            return got
        finally:
            sys.setrecursionlimit(limit)
        return None

