"""Breadth-first exploration of every interleaving.

For each property: the shortest violating schedule (BFS order), or, when the
whole state space was explored, "holds (exhaustive, N=…)"; cover goals are
covered (with the shortest schedule) or unreachable. Where each property is
observed is fixed in NOTE(observation) of model/ir.py.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from tdxproof.interp.evaluate import compile_expr
from tdxproof.interp.program import ModelError, Program
from tdxproof.interp.state import State, StateEnv, initial_states
from tdxproof.interp.state import RUN
from tdxproof.interp.step import Blocked, Successors, deadlocked
from tdxproof.model import ir
from tdxproof.model.wellformed import sub_exprs
from tdxproof.results import Schedule, Step


@dataclass
class Found:
    schedule: Schedule
    detail: str = ""
    index: int = -1           # the state it was found at (or stepped from), in Exploration.trail


@dataclass
class Exploration:
    states: int
    complete: bool            # the whole state space was explored
    violations: dict[str, Found] = field(default_factory=dict)   # invariant/event/deadlock
    covered: dict[str, Found] = field(default_factory=dict)
    seconds: float = 0.0
    max_depth: int = 0
    model_error: tuple[ModelError, Schedule] | None = None
    stopped: str = ""         # why the search ended before the state space did: "decided", a limit
    open: dict[str, str] = field(default_factory=dict)   # undecided whatever `complete` says: why
    trail: tuple | None = None   # keep_trail: (states, parents) to map a witness back (engines/symmetric.py)


class _Search:
    def __init__(self, prog: Program):
        self.prog = prog
        self.index: dict[tuple[int, int], int] = {}   # (id()s of a canonical state's globals, contexts)
        self.parent: list[tuple[int, int, str | None]] = []
        self.depth: list[int] = []

    def schedule_to(self, idx: int, extra: Step | None = None) -> Schedule:
        steps: list[Step] = []
        while self.parent[idx][0] >= 0:
            p, ci, choice = self.parent[idx]
            steps.append(Step(self.prog.contexts[ci].name, choice))
            idx = p
        init = self.parent[idx][1]
        steps.reverse()
        if extra is not None:
            steps.append(extra)
        return Schedule(init, tuple(steps))


def rss_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def explore(prog: Program, *, max_states: int = 5_000_000, want: set[str] | None = None,
            progress: Callable[[int, int, float, int], None] | None = None,
            memory_budget: int | None = None, timeout_s: float | None = None,
            canon: Any = None, keep_trail: bool = False) -> Exploration:
    """Explore the reachable states of `prog` breadth-first, within `max_states`,
    `memory_budget` bytes and `timeout_s` seconds (past any, the verdicts still open
    are unknown),
    and stop as soon as every selected property has its verdict (all violated or
    covered, with their shortest schedules: breadth-first finds those first)."""
    with no_cyclic_gc():
        result = _explore(prog, max_states, want, progress, memory_budget, timeout_s, canon, keep_trail)
    return result


@contextlib.contextmanager
def no_cyclic_gc():
    """For an exhaustive search: it keeps every state it reaches (millions of
    tuples, and the containers holding them) and makes next to no reference
    cycles, so the cyclic collector's full passes over that growing heap cost
    about a third of the run (option4, N=3: 6 of 18 s), for nothing. Reference
    counting frees all the rest as before; the collector is back on after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _explore(prog: Program, max_states: int, want: set[str] | None,
             progress: Callable[[int, int, float, int], None] | None,
             memory_budget: int | None, timeout_s: float | None,
             canon: Any = None, keep_trail: bool = False) -> Exploration:
    t0 = time.monotonic()
    deadline = t0 + timeout_s if timeout_s is not None else None
    model = prog.model
    props = [p for p in model.properties if want is None or p.name in want]
    quiescent = model.predicate("quiescent")
    q_fn = compile_expr(prog, quiescent.expr) if quiescent is not None else None
    invariants = [(p, compile_expr(prog, p.expr)) for p in props
                  if p.kind is ir.PropKind.INVARIANT and p.expr is not None]
    covers = [(p, compile_expr(prog, p.expr)) for p in props if p.kind is ir.PropKind.COVER and p.expr is not None]
    deadlock_props = [p for p in props if p.kind is ir.PropKind.DEADLOCK]
    event_names = {p.name for p in props if p.fires_in_steps}
    goal_names = {p.name for p in props if p.fires_in_steps and p.kind is ir.PropKind.COVER}
    prop_names = [p.name for p in model.properties]

    search = _Search(prog)
    result = Exploration(states=0, complete=False)
    queue: deque[int] = deque()
    states: list[State] = []
    index, parent, depth = search.index, search.parent, search.depth
    # States are canonical (Successors: each globals vector and each vector of
    # contexts is one object, which states share), so the index keys a state by
    # the id()s of its two parts: no hashing of nested tuples, and equal states
    # are identical parts. When all that observe() evaluates reads only the
    # globals (_globals_only), a state with globals an earlier state had can
    # change no verdict -- observe() records only each property's first failure,
    # and that earlier state (observed before it, in BFS order) gave the same
    # values -- so observe() runs once per globals vector.
    successors = Successors(prog)
    observed_globals: set[int] = set()   # id()s of interned globals (they live as long as the search)
    observing = bool(invariants or covers)
    by_globals = all(_globals_only(e) for e in [p.expr for p, _ in invariants] + [p.expr for p, _ in covers]
                     + ([quiescent.expr] if quiescent is not None else []))
    to_orbit = None
    if canon is not None:   # symmetry.Canon: one state per orbit, interned here
        canon.intern = successors.canonical
        to_orbit = canon.canonical
    for k, s in enumerate(initial_states(prog)):
        s = successors.canonical(s)
        if to_orbit is not None:
            s = to_orbit(s)
        if (id(s[0]), id(s[1])) not in index:
            index[(id(s[0]), id(s[1]))] = len(states)
            states.append(s)
            parent.append((-1, k, None))
            depth.append(0)
            queue.append(len(states) - 1)


    def observe(idx: int, s: State) -> None:
        env = StateEnv(prog, s)
        quiet: list[bool] = []   # evaluated at most once per state

        def observed(p: ir.Property) -> bool:
            if p.observe is not ir.Observe.QUIESCENT:
                return True
            if not quiet:
                quiet.append(bool(q_fn(env)) if q_fn else True)
            return quiet[0]

        for p, fn in invariants:
            if p.name not in result.violations and observed(p) and not fn(env):
                result.violations[p.name] = Found(search.schedule_to(idx), index=idx)
        for p, fn in covers:
            if p.name not in result.covered and observed(p) and fn(env):
                result.covered[p.name] = Found(search.schedule_to(idx), index=idx)

    for idx in list(queue):
        g = states[idx][0]
        if observing and not (by_globals and id(g) in observed_globals):
            observed_globals.add(id(g))
            observe(idx, states[idx])
    wanted = len(props)

    def decided() -> bool:
        return len(result.violations) + len(result.covered) >= wanted

    ncontexts = len(prog.contexts)
    expand = successors.step
    names = [c.name for c in prog.contexts]
    popped = 0
    expanding = 0
    dead_memo: dict[tuple, frozenset[int]] = {}
    runnable: dict[int, list[int]] = {}   # per vector of contexts (kept by `states`): the running ones
    max_depth = 0
    try:
        while queue:
            if decided():
                result.stopped = "decided"
                break
            popped += 1
            if popped % 2_000 == 1:
                # a progress line, and the memory budget, checked every few thousand states
                rss = rss_bytes()
                if memory_budget is not None and rss > memory_budget:
                    result.stopped = f"memory budget of {memory_budget / 2**30:.1f} GiB reached"
                    raise _Limit
                if deadline is not None and time.monotonic() > deadline:
                    result.stopped = f"timeout of {timeout_s:g} s reached"
                    raise _Limit
                if progress is not None:
                    progress(len(states), depth[queue[0]], time.monotonic() - t0, rss)
            idx = queue.popleft()
            expanding = d = depth[idx]
            d += 1
            s = states[idx]
            ctxs = s[1]
            blocked: dict[int, frozenset[int] | None] = {}
            run = runnable.get(id(ctxs))
            if run is None:
                # what run_context() answers first for the others: idle (nothing to do)
                run = runnable[id(ctxs)] = [ci for ci in range(ncontexts) if ctxs[ci][3] == RUN and ctxs[ci][0]]
            for ci in run:
                try:
                    res = expand(s, ci)   # run_context(prog, s, ci), memoised
                except ModelError as exc:
                    step = Step(names[ci], None)
                    result.model_error = (exc, search.schedule_to(idx, step))
                    raise
                if type(res) is not list:
                    if isinstance(res, Blocked):
                        blocked[ci] = res.waits
                    continue
                for choice, ns, events, _ in res:    # Outcome's fields
                    if events:
                        for ev in events:
                            name = prop_names[ev]
                            found = result.covered if name in goal_names else result.violations
                            if name in event_names and name not in found:
                                found[name] = Found(search.schedule_to(idx, Step(names[ci], choice)), index=idx)
                    if to_orbit is not None:
                        ns = to_orbit(ns)
                    g0 = ns[0]
                    nidx = len(states)
                    if index.setdefault((id(g0), id(ns[1])), nidx) != nidx:
                        continue            # seen before (one hash of the state, not two)
                    if nidx >= max_states:
                        raise _Limit        # (the index is not used past this)
                    states.append(ns)
                    parent.append((idx, ci, choice))
                    depth.append(d)
                    if d > max_depth:
                        max_depth = d
                    queue.append(nidx)
                    if observing:
                        if not by_globals:
                            observe(nidx, ns)
                        elif id(g0) not in observed_globals:
                            observed_globals.add(id(g0))
                            observe(nidx, ns)
            if blocked and deadlock_props:
                # deadlocked() reads the contexts and the wait sets alone: once per such pair
                # (the vector, kept by `states`, is one object per value; see above)
                dkey = (id(ctxs), tuple(blocked.items()))
                dead = dead_memo.get(dkey)
                if dead is None:
                    dead = dead_memo[dkey] = deadlocked(s, blocked)
                if dead:
                    for p in deadlock_props:
                        if p.name not in result.violations:
                            stuck = ", ".join(names[j] for j in sorted(dead))
                            result.violations[p.name] = Found(search.schedule_to(idx), f"stuck: {stuck}", index=idx)
        result.complete = not queue and not result.stopped
    except _Limit:
        result.complete = False
        result.stopped = result.stopped or f"state limit of {max_states:,} reached"
        # how far it got: every state above the one being expanded was expanded
        result.stopped += f"; every schedule of up to {expanding} steps searched"
    except ModelError:
        result.complete = False
    except KeyboardInterrupt:
        # Ctrl-C: what was decided stands (violations found are shortest); the rest is unknown
        result.complete = False
        result.stopped = f"interrupted; every schedule of up to {expanding} steps searched"
    result.max_depth = max_depth
    result.states = len(states)
    if keep_trail:
        result.trail = (states, parent)
    result.seconds = time.monotonic() - t0
    return result


def _globals_only(e: ir.Expr) -> bool:
    """Whether a property's expression, evaluated by StateEnv, reads nothing of a
    state but its globals (held() is false there, this_cpu and the like fixed);
    holders() reads the contexts."""
    for x in sub_exprs(e):
        match x:
            case ir.PredRef(pred=p):
                if not _globals_only(p.expr):
                    return False
            case ir.Builtin(op=op):
                if op not in _STATIC_BUILTINS:
                    return False
            case ir.LocalRef():
                return False
            case (ir.Lit() | ir.FnRef() | ir.LockRef() | ir.LockIndex() | ir.VarRef() | ir.FieldRef()
                  | ir.QVarRef() | ir.Unary() | ir.Binary() | ir.CondExpr() | ir.Quant()):
                pass
            case _:
                return False
    return True


_STATIC_BUILTINS = frozenset({ir.BuiltinOp.HELD, ir.BuiltinOp.THIS_CPU, ir.BuiltinOp.IRQS_OFF,
                              ir.BuiltinOp.IN_IPI, ir.BuiltinOp.NR_CPUS, ir.BuiltinOp.PKG})


class _Limit(Exception):
    pass
