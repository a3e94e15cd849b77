"""`--engine compiled`: the exhaustive search, over the encoding compiled to Python.

The block paths the encoder gives Z3 are compiled once per run into Python
functions of a state (encode/concrete.py), and their reachable states are
enumerated breadth-first, each packed into bytes. That is the same search `kind`
starts with (engines/induction.py `learn()`, without its lemmas), so the verdicts
are the explicit engine's: a shortest violation or cover per property (breadth-
first order), or "holds (exhaustive, N=…)" once every state was seen.

Why a second exhaustive engine: it takes the encoder's semantics, not the
reference interpreter's (it was also 2-3x faster per state, benchmarks/RESULTS.md
run 8, until the interpreter's memoised steps of run 11 made it the slower one). The two semantics are kept equal by the differential tests; every
schedule this engine prints is replayed on the reference interpreter first
(check_witness), as in every engine.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

from tdxproof.engines.induction import learn
from tdxproof.model import ir
from tdxproof.results import PropertyResult, RunResult, Verdict


def verify_compiled(model: ir.Model, *, cpus: int | None = None, properties: set[str] | None = None,
                    max_states: int = 5_000_000, timeout_s: float | None = None,
                    memory_budget: int | None = None,
                    progress: Callable[[str], None] | None = None) -> RunResult:
    t0 = time.monotonic()
    n = cpus if cpus is not None else model.cpus
    got = learn(model, n, properties, max_states, timeout_s, progress or (lambda msg: None),
                strengthen_lemmas=False, engine="compiled", memory_budget=memory_budget)
    exp, results = got.exp, got.results
    for p in got.todo:
        if exp.complete:
            verdict = Verdict.UNREACHABLE if p.kind is ir.PropKind.COVER else Verdict.HOLDS_EXHAUSTIVE
            results[p.name] = PropertyResult(p.name, p.kind.value, verdict, "compiled", n, states=len(exp.states))
        else:
            memory = got.limit < max_states and exp.stopped.startswith("state limit")
            results[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "compiled", n,
                                             states=len(exp.states),
                                             reason=(f"memory budget reached after {len(exp.states):,} states"
                                                     if memory else exp.stopped))
    expects = {e.prop: e.verdict for e in model.expects}
    ordered = tuple(replace(results[p.name], expected=expects.get(p.name))
                    for p in model.properties if properties is None or p.name in properties)
    stats = {"states": len(exp.states), "paths": len(got.enc.paths), "seconds": time.monotonic() - t0,
             "stopped": exp.stopped}
    return RunResult(model.path, n, "compiled", ordered, states=len(exp.states), complete=exp.complete,
                     stats=stats)
