"""The explicit engine: exhaustive breadth-first search on the reference
interpreter. Verdicts: violated (shortest schedule, replayed), holds
(exhaustive, N=...) when the whole state space was explored, covered /
unreachable for cover goals, unknown when the state limit stopped the search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tdxproof.diagnostics import InternalError
from tdxproof.engines.static import check_static
from tdxproof.interp.evaluate import compile_expr
from tdxproof.interp.explore import Exploration, explore
from tdxproof.interp.program import ModelError, Program
from tdxproof.interp.replay import ReplayMismatch, replay
from tdxproof.interp.state import StateEnv
from tdxproof.interp.step import Blocked, deadlocked, run_context
from tdxproof.model import ir
from tdxproof.results import PropertyResult, RunResult, Schedule, Verdict


@dataclass
class ModelErrorAt(Exception):
    error: ModelError
    schedule: Schedule


def model_error_at(prog: Program, schedule: Schedule) -> ModelErrorAt:
    """Another engine found a run-time model error at the end of `schedule`: the
    reference interpreter must reproduce it, and its own message is the one shown
    (the same as the explicit engine's, whichever engine found it)."""
    try:
        replay(prog, schedule)
    except ModelError as exc:
        return ModelErrorAt(exc, schedule)
    except ReplayMismatch as exc:
        raise InternalError(f"a model error's schedule does not replay: {exc}") from exc
    raise InternalError("the encoding reaches a run-time model error that the interpreter does not")


def default_memory_budget() -> int:
    """Three quarters of the machine's memory (the search answers "unknown" past it,
    rather than being killed for it)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 * 3 // 4
    except (OSError, ValueError):
        pass
    return 8 * 2**30


def verify_explicit(model: ir.Model, *, cpus: int | None = None, properties: set[str] | None = None,
                    max_states: int = 5_000_000, memory_budget: int | None = None,
                    progress: Callable[[int, int, float, int], None] | None = None,
                    timeout_s: float | None = None, symmetry: bool = False) -> RunResult:
    prog = Program(model, cpus)
    n = prog.n
    props = [p for p in model.properties if properties is None or p.name in properties]
    expects = {e.prop: e.verdict for e in model.expects}
    dynamic = {p.name for p in props if p.kind not in ir.STATIC_KINDS}
    exp: Exploration | None = None
    stats: dict = {}
    limits = dict(max_states=max_states, progress=progress, timeout_s=timeout_s,
                  memory_budget=memory_budget if memory_budget is not None else default_memory_budget())
    if dynamic and symmetry:
        from tdxproof.engines.symmetric import search_symmetric
        sym = search_symmetric(prog, model, dynamic, **limits)
        stats["symmetry"] = sym.note
        exp = sym.exploration
        if exp is not None and exp.model_error is not None:
            raise ModelErrorAt(*exp.model_error)
    if dynamic and exp is None:
        exp = explore(prog, want=dynamic, **limits)
        if exp.model_error is not None:
            raise ModelErrorAt(*exp.model_error)
    results = []
    for p in props:
        if p.kind in ir.STATIC_KINDS:
            r = check_static(model, p, n)
        else:
            assert exp is not None
            r = _result(prog, p, exp)
        results.append(_with_expect(r, expects.get(p.name)))
    return RunResult(model.path, n, "explicit", tuple(results), states=exp.states if exp else 0,
                     complete=exp.complete if exp else True,
                     stats={"seconds": exp.seconds if exp else 0.0, "max_depth": exp.max_depth if exp else 0,
                            "stopped": exp.stopped if exp else "", **stats})


def _with_expect(r: PropertyResult, expected: str | None) -> PropertyResult:
    from dataclasses import replace
    return replace(r, expected=expected)


def _result(prog: Program, p: ir.Property, exp: Exploration) -> PropertyResult:
    kind, n = p.kind.value, prog.n
    if p.name in exp.open:
        return PropertyResult(p.name, kind, Verdict.UNKNOWN, "explicit", n, states=exp.states, reason=exp.open[p.name])
    if p.kind is ir.PropKind.COVER:
        found = exp.covered.get(p.name)
        if found is not None:
            check_witness(prog, p, found.schedule)
            return PropertyResult(p.name, kind, Verdict.COVERED, "explicit", n, schedule=found.schedule,
                                  states=exp.states, depth=len(found.schedule))
        if exp.complete:
            return PropertyResult(p.name, kind, Verdict.UNREACHABLE, "explicit", n, states=exp.states)
        return PropertyResult(p.name, kind, Verdict.UNKNOWN, "explicit", n, states=exp.states,
                              reason=exp.stopped or f"stopped after {exp.states:,} states")
    found = exp.violations.get(p.name)
    if found is not None:
        check_witness(prog, p, found.schedule)
        return PropertyResult(p.name, kind, Verdict.VIOLATED, "explicit", n, schedule=found.schedule,
                              states=exp.states, depth=len(found.schedule))
    if exp.complete:
        return PropertyResult(p.name, kind, Verdict.HOLDS_EXHAUSTIVE, "explicit", n, states=exp.states)
    return PropertyResult(p.name, kind, Verdict.UNKNOWN, "explicit", n, states=exp.states,
                          reason=exp.stopped or f"stopped after {exp.states:,} states")


def check_witness(prog: Program, p: ir.Property, schedule: Schedule) -> None:
    """Replay a schedule and confirm it shows what it claims; otherwise it is our bug."""
    try:
        rep = replay(prog, schedule)
    except ReplayMismatch as exc:
        raise InternalError(f"witness for `{p.name}` does not replay: {exc}") from exc
    last = rep.states[-1]
    env = StateEnv(prog, last)
    if p.fires_in_steps:
        idx = prog.prop_index[p.name]
        if not rep.outcomes or idx not in rep.outcomes[-1].events:
            raise InternalError(f"witness for `{p.name}` does not end in the failing check")
        return
    if p.kind is ir.PropKind.DEADLOCK:
        blocked = {}
        for ci in range(len(prog.contexts)):
            res = run_context(prog, last, ci)
            if isinstance(res, Blocked):
                blocked[ci] = res.waits
            elif isinstance(res, list):
                continue
        if not deadlocked(last, blocked):
            raise InternalError(f"witness for `{p.name}` does not end in a deadlock")
        return
    assert p.expr is not None
    value = compile_expr(prog, p.expr)(env)
    if p.observe is ir.Observe.QUIESCENT:
        q = prog.model.predicate("quiescent")
        if q is not None and not compile_expr(prog, q.expr)(env):
            raise InternalError(f"witness for `{p.name}` does not end in a quiescent state")
    want = 1 if p.kind is ir.PropKind.COVER else 0
    if bool(value) != bool(want):
        raise InternalError(f"witness for `{p.name}` does not reproduce it")
