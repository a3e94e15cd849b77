"""Solver creation and the only call to `Solver.check` in tdxproof.

`check` returns SAT, UNSAT or Unknown(reason); "unknown" is never turned into
"no violation", and Ctrl-C inside Z3 becomes KeyboardInterrupt."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

import z3


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


def _raw(name: str):
    # the C function behind a z3core wrapper, without its per-call error check
    return getattr(z3.z3core, name).__defaults__[0].f


_NUM_CONSTS, _CONST_DECL = _raw("Z3_model_get_num_consts"), _raw("Z3_model_get_const_decl")
_CONST_INTERP, _DECL_NAME = _raw("Z3_model_get_const_interp"), _raw("Z3_get_decl_name")
_SYMBOL, _NUMERAL, _IS_NUMERAL = _raw("Z3_get_symbol_string"), _raw("Z3_get_numeral_string"), _raw("Z3_is_numeral_ast")


def values(model: z3.ModelRef, names: list[str]) -> list[int]:
    """The bit-vector constants `names` in `model`, unsigned, 0 for a constant the
    model leaves free (what eval() with model completion gives). One pass over the
    model's constants: eval() per state variable was most of a counterexample's cost."""
    ctx, m = model.ctx.ref(), model.model
    got: dict[str, int] = {}
    for i in range(_NUM_CONSTS(ctx, m)):
        d = _CONST_DECL(ctx, m, i)
        v = _CONST_INTERP(ctx, m, d)
        if v and _IS_NUMERAL(ctx, v):
            got[_SYMBOL(ctx, _DECL_NAME(ctx, d)).decode()] = int(_NUMERAL(ctx, v).decode())
    return [got.get(n, 0) for n in names]
