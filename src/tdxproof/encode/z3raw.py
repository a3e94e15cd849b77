"""Z3's C functions, called without the Python wrappers.

Walking a term DAG through z3.py costs a Python object, a reference count and an
error check per node; compiling a policy's block paths that way took 25 of 27 s
(option4, N=2). These are the C functions behind the z3core wrappers, without
the per-call error check: only for reading terms that are alive (an argument of
an AST is valid while its parent is), never for building them."""

from __future__ import annotations

import z3


def _raw(name: str):
    return getattr(z3.z3core, name).__defaults__[0].f


NUM_ARGS, ARG, DECL = _raw("Z3_get_app_num_args"), _raw("Z3_get_app_arg"), _raw("Z3_get_app_decl")
KIND, ID, AST_KIND = _raw("Z3_get_decl_kind"), _raw("Z3_get_ast_id"), _raw("Z3_get_ast_kind")
SORT, SORT_KIND, BV_SIZE = _raw("Z3_get_sort"), _raw("Z3_get_sort_kind"), _raw("Z3_get_bv_sort_size")
NUMERAL, DECL_NAME, SYMBOL = _raw("Z3_get_numeral_string"), _raw("Z3_get_decl_name"), _raw("Z3_get_symbol_string")
INT_PARAM, IS_NUMERAL = _raw("Z3_get_decl_int_parameter"), _raw("Z3_is_numeral_ast")
NUM_CONSTS, CONST_DECL = _raw("Z3_model_get_num_consts"), _raw("Z3_model_get_const_decl")
CONST_INTERP = _raw("Z3_model_get_const_interp")


def const_names(e: z3.ExprRef) -> set[str]:
    """The names of the uninterpreted constants in `e` (each shared subterm once)."""
    return const_names_raw(e.ctx_ref(), e.as_ast())


def name_of(ctx, a) -> str | None:
    """The name of an uninterpreted constant, None for any other term."""
    if AST_KIND(ctx, a) != z3.Z3_APP_AST or NUM_ARGS(ctx, a):
        return None
    d = DECL(ctx, a)
    return SYMBOL(ctx, DECL_NAME(ctx, d)).decode() if KIND(ctx, d) == z3.Z3_OP_UNINTERPRETED else None


def is_ite(ctx, a) -> bool:
    return AST_KIND(ctx, a) == z3.Z3_APP_AST and KIND(ctx, DECL(ctx, a)) == z3.Z3_OP_ITE


def const_names_raw(ctx, a) -> set[str]:
    out: set[str] = set()
    seen: set[int] = set()
    work = [a]
    while work:
        a = work.pop()
        k = ID(ctx, a)
        if k in seen or AST_KIND(ctx, a) != z3.Z3_APP_AST:
            continue
        seen.add(k)
        n = NUM_ARGS(ctx, a)
        if n:
            work.extend(ARG(ctx, a, i) for i in range(n))
            continue
        d = DECL(ctx, a)
        if KIND(ctx, d) == z3.Z3_OP_UNINTERPRETED:
            out.add(SYMBOL(ctx, DECL_NAME(ctx, d)).decode())
    return out
