"""Bounded model checking on the Z3 encoding (encode/system.py).

Incremental: one solver; the transition of step k is added on top of steps
0..k-1, and each property's bad states at depth k are checked under an
assumption literal, so nothing is popped. Depths are tried in increasing order,
so the first violation found is a shortest one (in blocks, as for the explicit
engine). Every schedule is replayed on the reference interpreter before it is
returned; one that does not replay is an internal error. A clean run to depth k
is "no violation up to depth k", never "proved".
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import z3

from tdxproof.diagnostics import InternalError
from tdxproof.encode.system import Encoding, encode
from tdxproof.encode.vocab import MODEL_ERROR
from tdxproof.engines.explicit import check_witness, model_error_at
from tdxproof.encode.solver import Sat, Unknown, check, make_solver
from tdxproof.engines.static import check_static
from tdxproof.interp.program import Program
from tdxproof.interp.state import InitialIndex, initial_states
from tdxproof.model import ir
from tdxproof.results import PropertyResult, RunResult, Schedule, Step, Verdict


def _bad(enc: Encoding, p: ir.Property, k: int) -> z3.BoolRef | None:
    s = enc.state(k)
    if p.fires_in_steps:
        idx = next(i for i, q in enumerate(enc.model.properties) if q.name == p.name)
        if k == 0 or idx not in enc.events:
            return None
        return enc.event_bad(idx, k - 1)
    match p.kind:
        case ir.PropKind.INVARIANT:
            bad = z3.Not(enc.expr(p.expr, s))
            return z3.And(enc.quiescent(s), bad) if p.observe is ir.Observe.QUIESCENT else bad
        case ir.PropKind.COVER:
            good = enc.expr(p.expr, s)
            return z3.And(enc.quiescent(s), good) if p.observe is ir.Observe.QUIESCENT else good
        case ir.PropKind.DEADLOCK:
            return enc.deadlock(s, f"@{k}")
        case ir.PropKind.EVENT | ir.PropKind.ORDER:
            idx = next(i for i, q in enumerate(enc.model.properties) if q.name == p.name)
            if k == 0 or idx not in enc.events:
                return None
            return enc.event_bad(idx, k - 1)
    return None


def schedule_of(enc: Encoding, prog: Program, paths: list[int], init_value: Callable[[str], int]) -> Schedule:
    """The schedule that takes block paths `paths` (indexes into enc.paths) from
    the initial state whose variables have `init_value(name)` (signed)."""
    steps = []
    for i in paths:
        ci, path = enc.paths[i]
        steps.append(Step(enc.vocab.contexts[ci].name, ", ".join(path.labels) if path.labels else None))
    values = [init_value(enc.vocab.cells[(var.name, i)])
              for var in enc.model.vars for i in range(enc.vocab.var_cells(var))]
    codec = InitialIndex(prog)
    if codec.usable:      # computed, not listed (2^(N-1) initial states at N CPUs)
        init = codec.index(tuple(values) + (0,) * (prog.nglobals - len(values)))
        if init is not None and list(codec.state(init)[0][:len(values)]) != values:
            init = None
    else:
        init = next((j for j, st in enumerate(initial_states(prog)) if list(st[0][:len(values)]) == values), None)
    if init is None:
        raise InternalError("an initial state of the encoding is not one of the reference semantics")
    return Schedule(init, tuple(steps))


def decode(enc: Encoding, prog: Program, m: z3.ModelRef, k: int) -> Schedule:
    s0 = enc.state(0)
    return schedule_of(enc, prog, [m.eval(enc.sel(i), model_completion=True).as_long() for i in range(k)],
                       lambda name: m.eval(s0[name], model_completion=True).as_signed_long())


def verify_bmc(model: ir.Model, *, cpus: int | None = None, properties: set[str] | None = None,
               max_depth: int = 60, timeout_s: float | None = None,
               progress: Callable[[str, int], None] | None = None) -> RunResult:
    t0 = time.monotonic()
    n = cpus if cpus is not None else model.cpus
    enc = encode(model, n)
    prog = Program(model, n)
    encode_seconds = time.monotonic() - t0
    props = [p for p in model.properties if properties is None or p.name in properties]
    expects = {e.prop: e.verdict for e in model.expects}
    results: dict[str, PropertyResult] = {}
    for p in props:
        if p.kind in ir.STATIC_KINDS:
            results[p.name] = check_static(model, p, n)
    pending = [p for p in props if p.kind not in ir.STATIC_KINDS]
    solver = make_solver(timeout_s)
    solver.add(enc.init(enc.state(0)))
    depth = 0
    unknown: dict[str, str] = {}
    for k in range(max_depth + 1):
        depth = k
        if k > 0 and MODEL_ERROR in enc.events:
            # a run-time model error is bad input, whatever the properties say (as in
            # the explicit engine): look for it at every depth searched
            error_lit = z3.Bool(f"model-error@{k}")
            solver.add(z3.Implies(error_lit, enc.event_bad(MODEL_ERROR, k - 1)))
            r = check(solver, error_lit)
            if r is Sat.SAT:
                raise model_error_at(prog, decode(enc, prog, solver.model(), k))
        for p in list(pending):
            bad = _bad(enc, p, k)
            if bad is None:
                continue
            lit = z3.Bool(f"bad[{p.name}]@{k}")
            solver.add(z3.Implies(lit, bad))
            r = check(solver, lit)
            if isinstance(r, Unknown):
                unknown[p.name] = r.reason
                pending.remove(p)
                continue
            if r is Sat.SAT:
                schedule = decode(enc, prog, solver.model(), k)
                check_witness(prog, p, schedule)
                verdict = Verdict.COVERED if p.kind is ir.PropKind.COVER else Verdict.VIOLATED
                results[p.name] = PropertyResult(p.name, p.kind.value, verdict, "bmc", n, schedule=schedule,
                                                 depth=k)
                pending.remove(p)
        if progress is not None:
            progress(", ".join(p.name for p in pending), k)
        if not pending or k == max_depth:
            break
        solver.add(enc.trans(k))
    for p in pending:
        results[p.name] = PropertyResult(p.name, p.kind.value, Verdict.HOLDS_UP_TO_DEPTH, "bmc", n, depth=depth)
    for name, reason in unknown.items():
        p = next(x for x in props if x.name == name)
        results[name] = PropertyResult(name, p.kind.value, Verdict.UNKNOWN, "bmc", n, reason=reason)
    ordered = tuple(replace(results[p.name], expected=expects.get(p.name)) for p in props)
    return RunResult(model.path, n, "bmc", ordered, complete=False,
                     stats={"seconds": time.monotonic() - t0, "depth": depth, "encode_seconds": encode_seconds,
                            "paths": len(enc.paths)})
