"""States: compact hashable tuples, and the initial states of a program.

State   = (globals: tuple[int], contexts: tuple[Ctx])
Ctx     = (frames: tuple[Frame], held: tuple[(lock, mode)], irqs_off, status, aux)
Frame   = (code id, pc, locals: tuple[int], ipi cpu or -1, irqs_off saved by `ipi`)
status  RUN | DONE (an actor that finished) | IDLE (a kthread with no work) |
        RET (a kthread whose work returned `aux`, not yet collected)
aux     actors: iterations completed; kthreads: the returned value
"""

from __future__ import annotations

import itertools
from typing import Any

from tdxproof.interp.evaluate import compile_expr
from tdxproof.interp.program import Program
from tdxproof.model import ir

RUN, DONE, IDLE, RET = 0, 1, 2, 3

State = tuple[tuple[int, ...], tuple[tuple, ...]]


class _InitEnv:
    def __init__(self, prog: Program, g: list[int]):
        self.g, self.prog, self.q, self.locals = g, prog, {}, []
        self.cpu, self.irqs, self.in_ipi = 0, 0, 0


def _nd_values(prog: Program, e: ir.Expr, env: _InitEnv) -> list[int]:
    """All values of an initialiser; `any` ranges over its type."""
    match e:
        case ir.AnyValue(type=ty):
            from tdxproof.interp.program import _domain
            return [v for v, _ in _domain(prog, ty)]
        case ir.Binary(op=op, left=a, right=b) if _has_any(e):
            out: list[int] = []
            for x in _nd_values(prog, a, env):
                if op == "||" and x:
                    out.append(1)
                    continue
                if op == "&&" and not x:
                    out.append(0)
                    continue
                for y in _nd_values(prog, b, env):
                    fn = compile_expr(prog, ir.Binary(op, ir.Lit(x, a.type, ""), ir.Lit(y, b.type, ""), e.type))
                    out.append(fn(env))
            return sorted(set(out))
        case ir.Unary(op=op, operand=x) if _has_any(e):
            return sorted({(0 if v else 1) if op == "!" else -v for v in _nd_values(prog, x, env)})
        case ir.CondExpr(cond=c, then=t, other=o) if _has_any(e):
            out = []
            for cv in _nd_values(prog, c, env):
                out.extend(_nd_values(prog, t if cv else o, env))
            return sorted(set(out))
    return [compile_expr(prog, e)(env)]


def _has_any(e: ir.Expr) -> bool:
    from tdxproof.model.wellformed import sub_exprs
    return any(isinstance(x, ir.AnyValue) for x in sub_exprs(e))


def initial_states(prog: Program) -> list[State]:
    """Every initial state, in a canonical order (schedules name one by index)."""
    globals_: list[list[int]] = [[0] * prog.nglobals]
    for var in prog.model.vars:
        off, size = prog.var_off[var.name], prog.var_size[var.name]
        nxt: list[list[int]] = []
        for g in globals_:
            env = _InitEnv(prog, g)
            per_index: list[list[int]] = []
            for i in range(size):
                if var.binder is not None:
                    env.q[var.binder.id] = i
                per_index.append(_nd_values(prog, var.init, env))
            for combo in itertools.product(*per_index):
                g2 = list(g)
                g2[off:off + size] = combo
                nxt.append(g2)
        globals_ = nxt
    for lock in prog.model.locks:
        for f in prog.classes[lock.cls].fields:
            for g in globals_:
                g[prog.field_off[(lock.index, f.name)]] = compile_expr(prog, f.init)(_InitEnv(prog, g))
    ctxs: list[tuple] = []
    for spec in prog.contexts:
        if spec.kind == "actor":
            code = prog.codes[spec.code]
            frame = (spec.code, 0, (0,) * code.nlocals, -1, 0)
            ctxs.append(((frame,), (), 0, RUN, 0))
        else:
            ctxs.append(((), (), 0, IDLE, 0))
    return [(tuple(g), tuple(ctxs)) for g in globals_]


class StateEnv:
    """Evaluate a property over a state (no current context)."""

    def __init__(self, prog: Program, state: State):
        self.prog, self.g, self.q, self.locals = prog, state[0], {}, []
        self.state = state
        self.cpu, self.irqs, self.in_ipi = 0, 0, 0

    def held(self, lock: int, mode: Any) -> bool:
        return False

    def holders(self, lock: int, mode: Any) -> int:
        n = 0
        for ctx in self.state[1]:
            for lk, md in ctx[1]:
                if lk == lock and (mode is None or md == mode):
                    n += 1
        return n
