"""Solver creation and the only call to `Solver.check` in tdxproof.

`check` returns SAT, UNSAT or Unknown(reason); "unknown" is never turned into
"no violation", and Ctrl-C inside Z3 becomes KeyboardInterrupt."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

import z3

from tdxproof.encode.z3raw import CONST_DECL, CONST_INTERP, DECL_NAME, IS_NUMERAL, NUM_CONSTS, NUMERAL, SYMBOL


class Sat(Enum):
    SAT = "sat"
    UNSAT = "unsat"


@dataclass(frozen=True)
class Unknown:
    reason: str


def make_solver(timeout_s: float | None = None, logic: str | None = "QF_FD") -> z3.Solver:
    """QF_FD (bit-blasting to SAT) by default; None for Z3's default solver."""
    s = z3.SolverFor(logic) if logic else z3.Solver()
    s.set("random_seed", 0)
    if timeout_s is not None:
        s.set("timeout", max(1, int(timeout_s * 1000)))
    s.tdx_timeout = timeout_s   # read by check(): Z3 also says "canceled" for some timeouts
    return s


def check(solver: z3.Solver, *assumptions: z3.BoolRef) -> Sat | Unknown:
    t0 = time.monotonic()
    r = solver.check(*assumptions)
    if r == z3.sat:
        return Sat.SAT
    if r == z3.unsat:
        return Sat.UNSAT
    reason = solver.reason_unknown()
    timeout = getattr(solver, "tdx_timeout", None)
    if "canceled" in reason and timeout is not None and time.monotonic() - t0 >= 0.5 * timeout:
        # a timeout that fired inside a tactic (the differential test's long run met
        # one): unknown, not a Ctrl-C
        return Unknown("timeout")
    if "interrupted" in reason or "canceled" in reason:
        raise KeyboardInterrupt
    if "timeout" in reason:
        return Unknown("timeout")
    return Unknown(reason or "unknown")


def values(model: z3.ModelRef, names: list[str]) -> list[int]:
    """The bit-vector constants `names` in `model`, unsigned, 0 for a constant the
    model leaves free (what eval() with model completion gives). One pass over the
    model's constants: eval() per state variable was most of a counterexample's cost."""
    ctx, m = model.ctx.ref(), model.model
    got: dict[str, int] = {}
    for i in range(NUM_CONSTS(ctx, m)):
        d = CONST_DECL(ctx, m, i)
        v = CONST_INTERP(ctx, m, d)
        if v and IS_NUMERAL(ctx, v):
            got[SYMBOL(ctx, DECL_NAME(ctx, d)).decode()] = int(NUMERAL(ctx, v).decode())
    return [got.get(n, 0) for n in names]
