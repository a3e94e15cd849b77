"""IR expressions compiled to Python closures over an environment `m` that offers:
m.g (the globals: a list, or a tuple not yet written -- writers copy it first), m.locals (the top frame's locals), m.q (quantifier bindings),
m.prog, and for context-dependent builtins m.cpu, m.irqs, m.in_ipi, m.held(),
m.holders()."""

from __future__ import annotations

from typing import Any, Callable

from tdxproof.model import ir

Fn = Callable[[Any], int]


def value_range(prog: Any, ty: ir.Type) -> tuple[int, int] | None:
    return ir.value_range(ty, prog.n, prog.fn_count)


def _check_range(prog: Any, ty: ir.Type, v: int, what: str, span: Any) -> None:
    rng = value_range(prog, ty)
    if rng is not None and not rng[0] <= v <= rng[1]:
        from tdxproof.interp.program import ModelError

        raise ModelError(f"{what} would be {v}, outside {ty}", span)


def compile_expr(prog: Any, e: ir.Expr) -> Fn:
    match e:
        case ir.Lit(value=v):
            return lambda m: v
        case ir.FnRef(index=i):
            return lambda m: i + 1
        case ir.LockRef(lock=lk):
            idx = lk.index
            return lambda m: idx
        case ir.LockIndex(locks=elems, index=i):
            first, fi = elems[0].index, compile_expr(prog, i)
            return lambda m: first + fi(m)    # in range: lowering requires the index's type (E330)
        case ir.VarRef(var=var, index=None):
            off = prog.var_off[var.name]
            return lambda m: m.g[off]
        case ir.VarRef(var=var, index=idx):
            off, size = prog.var_off[var.name], prog.var_size[var.name]
            fi = compile_expr(prog, idx)
            name, span = var.name, e.span

            def read_indexed(m: Any) -> int:
                i = fi(m)
                if not 0 <= i < size:
                    from tdxproof.interp.program import ModelError
                    raise ModelError(f"index {i} of `{name}` is out of range 0..{size - 1}", span)
                return m.g[off + i]
            return read_indexed
        case ir.FieldRef(lock=lk, field=f):
            fl = compile_expr(prog, lk)
            offs = {li: o for (li, fname), o in prog.field_off.items() if fname == f.name}
            return lambda m: m.g[offs[fl(m)]]
        case ir.LocalRef(local=l):
            slot = l.slot
            return lambda m: m.locals[slot]
        case ir.QVarRef(qvar=q):
            qid = q.id
            return lambda m: m.q[qid]
        case ir.Unary(op="!", operand=x):
            fx = compile_expr(prog, x)
            return lambda m: 0 if fx(m) else 1
        case ir.Unary(op="-", operand=x):
            fx = compile_expr(prog, x)
            return lambda m: -fx(m)
        case ir.Binary(op=op, left=a, right=b):
            ov = getattr(prog, "order_override", None)   # NOTE(any-order)
            if ov and id(e) in ov:
                return ov[id(e)]
            return _binary(prog, op, compile_expr(prog, a), compile_expr(prog, b), e)
        case ir.CondExpr(cond=c, then=t, other=o):
            fc, ft, fo = compile_expr(prog, c), compile_expr(prog, t), compile_expr(prog, o)
            return lambda m: ft(m) if fc(m) else fo(m)
        case ir.Quant(kind=kind, qvar=q, body=body):
            fb, qid, n = compile_expr(prog, body), q.id, prog.n

            def quant(m: Any) -> int:
                saved = m.q.get(qid)
                total = 0
                try:
                    for c in range(n):
                        m.q[qid] = c
                        v = fb(m)
                        if kind is ir.QuantKind.FORALL and not v:
                            return 0
                        if kind is ir.QuantKind.EXISTS and v:
                            return 1
                        total += 1 if v else 0
                finally:
                    if saved is None:
                        m.q.pop(qid, None)
                    else:
                        m.q[qid] = saved
                if kind is ir.QuantKind.FORALL:
                    return 1
                if kind is ir.QuantKind.EXISTS:
                    return 0
                return total
            return quant
        case ir.PredRef(pred=p):
            return compile_expr(prog, p.expr)
        case ir.Builtin(op=op, args=args, mode=mode):
            return _builtin(prog, op, [compile_expr(prog, a) for a in args], mode)
        case ir.AnyValue():
            raise AssertionError("`any` is handled by the caller")
    raise AssertionError(e)


def _binary(prog: Any, op: str, fa: Fn, fb: Fn, e: ir.Binary) -> Fn:
    match op:
        case "&&":
            return lambda m: 1 if fa(m) and fb(m) else 0
        case "||":
            return lambda m: 1 if fa(m) or fb(m) else 0
        case "->":
            return lambda m: 1 if (not fa(m)) or fb(m) else 0
        case "==":
            return lambda m: 1 if fa(m) == fb(m) else 0
        case "!=":
            return lambda m: 1 if fa(m) != fb(m) else 0
        case "<":
            return lambda m: 1 if fa(m) < fb(m) else 0
        case "<=":
            return lambda m: 1 if fa(m) <= fb(m) else 0
        case ">":
            return lambda m: 1 if fa(m) > fb(m) else 0
        case ">=":
            return lambda m: 1 if fa(m) >= fb(m) else 0
        case "+":
            return lambda m: fa(m) + fb(m)
        case "-":
            return lambda m: fa(m) - fb(m)
    raise AssertionError(op)


def _builtin(prog: Any, op: ir.BuiltinOp, args: list[Fn], mode: str | None) -> Fn:
    from tdxproof.interp.program import MODE_CODE

    mc = MODE_CODE[mode] if mode is not None else None
    match op:
        case ir.BuiltinOp.HELD:
            fl = args[0]
            return lambda m: 1 if m.held(fl(m), mc) else 0
        case ir.BuiltinOp.HOLDERS:
            fl = args[0]
            return lambda m: m.holders(fl(m), mc)
        case ir.BuiltinOp.THIS_CPU:
            return lambda m: m.cpu
        case ir.BuiltinOp.IRQS_OFF:
            return lambda m: m.irqs
        case ir.BuiltinOp.IN_IPI:
            return lambda m: m.in_ipi
        case ir.BuiltinOp.PERCPU_THREAD:
            return lambda m: m.prog.percpu[m.ci]
        case ir.BuiltinOp.NR_CPUS:
            n = prog.n
            return lambda m: n
        case ir.BuiltinOp.PKG:
            fc, pkg = args[0], prog.pkg
            return lambda m: pkg[fc(m)]
    raise AssertionError(op)


def compile_writer(prog: Any, t: ir.LValue) -> Callable[[Any, int], None]:
    ty = t.type
    span = t.span
    # the type's range is fixed once the program is (its CPUs and functions): computed
    # here, not at every write; out of it, _check_range() raises the model error
    rng = value_range(prog, ty)
    lo, hi = rng if rng is not None else (None, None)
    match t:
        case ir.VarRef(var=var, index=None):
            off = prog.var_off[var.name]
            name = var.name

            def write_var(m: Any, v: int) -> None:
                if lo is not None and not lo <= v <= hi:
                    _check_range(prog, ty, v, f"`{name}`", span)
                g = m.g
                if type(g) is tuple:   # copy on write: the machine still has the state's tuple
                    g = m.g = list(g)
                g[off] = v
            return write_var
        case ir.VarRef(var=var, index=idx):
            off, size = prog.var_off[var.name], prog.var_size[var.name]
            fi = compile_expr(prog, idx)
            name = var.name

            def write_indexed(m: Any, v: int) -> None:
                i = fi(m)
                if not 0 <= i < size:
                    from tdxproof.interp.program import ModelError
                    raise ModelError(f"index {i} of `{name}` is out of range 0..{size - 1}", span)
                if lo is not None and not lo <= v <= hi:
                    _check_range(prog, ty, v, f"`{name}[{i}]`", span)
                g = m.g
                if type(g) is tuple:
                    g = m.g = list(g)
                g[off + i] = v
            return write_indexed
        case ir.FieldRef(lock=lk, field=f):
            fl = compile_expr(prog, lk)
            offs = {li: o for (li, fname), o in prog.field_off.items() if fname == f.name}
            fname = f.name

            def write_field(m: Any, v: int) -> None:
                if lo is not None and not lo <= v <= hi:
                    _check_range(prog, ty, v, f"field `{fname}`", span)
                o = offs[fl(m)]
                g = m.g
                if type(g) is tuple:
                    g = m.g = list(g)
                g[o] = v
            return write_field
        case ir.LocalRef(local=l):
            slot, lname = l.slot, l.name

            def write_local(m: Any, v: int) -> None:
                if lo is not None and not lo <= v <= hi:
                    _check_range(prog, ty, v, f"`{lname}`", span)
                m.locals[slot] = v
            return write_local
        case ir.Builtin(op=ir.BuiltinOp.IRQS_OFF):
            def write_irqs(m: Any, v: int) -> None:
                m.irqs = 1 if v else 0
            return write_irqs
    raise AssertionError(t)
