"""`tdxproof mutate`: run every single mutant of a policy (model/mutants.py) on
the explicit engine and say which the properties kill.

A mutant is *killed* when a verdict differs from the policy's: first choice, a
property that holds is violated (the killing property and its shortest witness
are kept); else a met cover goal became unreachable (the mutant broke what the
design does: cover goals are the vacuity check); else a violation went away. It
is also killed when it runs into a run-time model error, and when a property
violated in both is violated by a shorter schedule (a design that already
deadlocks still notices a second, quicker deadlock; a longer one is not counted:
the mutant may only have removed steps' worth of the old path). *rejected*: the checker
refuses its text (it never ran); *unknown*: the search hit a limit first; else
it *survived*: it is equivalent to the policy, or a property is missing.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Callable

from tdxproof.diagnostics import PolicyError
from tdxproof.engines.explicit import ModelErrorAt, verify_explicit
from tdxproof.model.lower import lower_policy
from tdxproof.model.mutants import Mutant, mutants
from tdxproof.results import HOLDING, MutantResult, MutationReport, RunResult, Verdict


def _verdicts(run: RunResult) -> dict[str, tuple[Verdict, int]]:
    return {r.name: (r.verdict, len(r.schedule) if r.schedule is not None else 0) for r in run.results}


def _judge(index: int, m: Mutant, base: dict[str, tuple[Verdict, int]], path: str, cpus: int | None,
           max_states: int, timeout_s: float | None) -> MutantResult:
    def out(outcome: str, by: str = "", steps: int = 0, detail: str = "") -> MutantResult:
        return MutantResult(index, m.operator, m.span, m.what, outcome, by, steps, detail)

    try:
        model = lower_policy(path, cpus=cpus, texts={m.path: m.text})[0]
    except PolicyError as exc:
        d = exc.diagnostics[0]
        return out("rejected", f"{d.code} {d.message}")
    try:
        run = verify_explicit(model, cpus=cpus, max_states=max_states, timeout_s=timeout_s)
    except ModelErrorAt as exc:
        return out("error", exc.error.message, len(exc.schedule))
    got = _verdicts(run)
    killers = sorted(((got[name][1], name) for name, (v, _) in base.items()
                      if v in HOLDING and got.get(name, (v, 0))[0] is Verdict.VIOLATED))
    if killers:
        steps, name = killers[0]
        return out("killed", name, steps, "violated")
    if any(v is Verdict.UNKNOWN for v, _ in got.values()):
        return out("unknown", run.stats.get("stopped", ""))
    lost = [name for name, (v, _) in base.items() if v is Verdict.COVERED
            and got.get(name, (v, 0))[0] is Verdict.UNREACHABLE]
    if lost:
        return out("killed", lost[0], 0, "cover unreachable" + (f" (and {len(lost) - 1} more)" if len(lost) > 1
                                                                 else ""))
    gone = [name for name, (v, _) in base.items() if v is Verdict.VIOLATED and got.get(name, (v, 0))[0] in HOLDING]
    if gone:
        return out("killed", gone[0], 0, "now holds" + (f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""))
    moved = [name for name, (v, _) in got.items() if name in base and v is not base[name][0]]
    if moved:
        return out("killed", moved[0], 0, "verdict changed")
    sooner = sorted((got[name][1], name) for name, (v, n) in base.items() if v is Verdict.VIOLATED
                    and got.get(name, (v, n))[0] is Verdict.VIOLATED and got[name][1] < n)
    if sooner:
        steps, name = sooner[0]
        return out("killed", name, steps, f"violated sooner (was {base[name][1]} steps)")
    return out("survived")


def run_mutants(path: str, *, cpus: int | None = None, jobs: int = 1, operators: set[str] | None = None,
                max_states: int = 2_000_000, timeout_s: float | None = None,
                progress: Callable[[int, int], None] | None = None) -> MutationReport:
    model, loaded, _ = lower_policy(path, cpus=cpus)
    base_run = verify_explicit(model, cpus=cpus, max_states=max_states, timeout_s=timeout_s)
    base = _verdicts(base_run)
    todo = [m for m in mutants(loaded) if operators is None or m.operator in operators]
    results: list[MutantResult] = []
    args = [(i + 1, m, base, path, cpus, max_states, timeout_s) for i, m in enumerate(todo)]
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            for r in pool.map(_judge_star, args):
                results.append(r)
                if progress is not None:
                    progress(len(results), len(todo))
    else:
        for a in args:
            results.append(_judge(*a))
            if progress is not None:
                progress(len(results), len(todo))
    return MutationReport(path, base_run.cpus, tuple((n, v.value) for n, (v, _) in base.items()), tuple(results))


def _judge_star(a: tuple) -> MutantResult:
    return _judge(*a)
