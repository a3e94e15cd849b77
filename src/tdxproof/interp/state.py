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
    return _finish(prog, globals_)


def _finish(prog: Program, globals_: list[list[int]]) -> list[State]:
    """The initial states with these variables: lock fields and contexts added."""
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


def _reads_state(e: ir.Expr) -> bool:
    from tdxproof.model.wellformed import sub_exprs
    return any(isinstance(x, (ir.VarRef, ir.FieldRef)) for x in sub_exprs(e))


class InitialIndex:
    """The index of an initial state in `initial_states`' order, and back, without
    listing them: at N CPUs a choice per CPU (`online[c] = c == 0 || any`) makes
    2^(N-1) initial states, which a schedule found at a small N and replayed at
    N=16 or 32 must not enumerate. The order is `initial_states`': variables in
    declaration order, a variable's cells in index order, the first cell most
    significant, each cell's values ascending. That is a mixed-radix number when
    no nondeterministic initialiser reads another variable (the number of
    values of a cell then does not depend on an earlier one); `usable` is False
    otherwise, and callers list the states instead."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.cells: list[tuple[ir.Var, int, list[int] | None]] = []     # values of a choice; None: computed
        self.usable = True
        env = _InitEnv(prog, [0] * prog.nglobals)
        for var in prog.model.vars:
            nd = _has_any(var.init)
            if nd and _reads_state(var.init):
                self.usable = False
            for i in range(prog.var_size[var.name]):
                if var.binder is not None:
                    env.q[var.binder.id] = i
                self.cells.append((var, i, _nd_values(prog, var.init, env) if nd else None))

    def count(self) -> int:
        total = 1
        for _, _, vals in self.cells:
            total *= len(vals) if vals is not None else 1
        return total

    def state(self, idx: int) -> State:
        """The initial state number `idx` (IndexError past the last)."""
        prog = self.prog
        if not 0 <= idx < self.count():
            raise IndexError(idx)
        digits = []
        for _, _, vals in reversed(self.cells):
            r = len(vals) if vals is not None else 1
            digits.append(idx % r)
            idx //= r
        digits.reverse()
        g = [0] * prog.nglobals
        env = _InitEnv(prog, g)
        for (var, i, vals), d in zip(self.cells, digits):
            if var.binder is not None:
                env.q[var.binder.id] = i
            g[prog.var_off[var.name] + i] = vals[d] if vals is not None else _nd_values(prog, var.init, env)[0]
        return _finish(prog, [g])[0]

    def index(self, g: tuple[int, ...]) -> int | None:
        """The index of the initial state with globals `g`, or None if no initial
        state has them (a value no choice gives; the rest is checked by replay)."""
        idx = 0
        for var, i, vals in self.cells:
            v = g[self.prog.var_off[var.name] + i]
            if vals is None:
                continue
            if v not in vals:
                return None
            idx = idx * len(vals) + vals.index(v)
        return idx


def embed_initial(small: Program, idx: int, prog: Program) -> int | None:
    """The initial state of `prog` (more CPUs) that is `small`'s initial state
    number `idx` on its CPUs, every further cell at its first value (the extra
    CPUs offline where `online[c] = c == 0 || any`): its index, or None. What a
    schedule of `small` then does at `prog` is for replay to show."""
    a, b = InitialIndex(small), InitialIndex(prog)
    if not (a.usable and b.usable):
        return None
    g0 = a.state(idx)[0]
    g = [0] * prog.nglobals
    for var, i, vals in b.cells:
        if vals is None:
            continue
        v = g0[small.var_off[var.name] + i] if i < small.var_size[var.name] else vals[0]
        g[prog.var_off[var.name] + i] = v
    return b.index(tuple(g))


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
