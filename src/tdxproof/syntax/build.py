"""The lark Transformer from parse tree to surface AST: the only code that sees lark.Tree."""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer, v_args

from tdxproof.source import Span
from tdxproof.syntax import ast as A


def _unquote(tok: str) -> str:
    body = tok[1:-1]
    return body.replace('\\"', '"').replace("\\\\", "\\")


@v_args(meta=True)
class Build(Transformer):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    # ---- helpers ----
    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", False):
            return Span(self.path, 1, 1, 1, 1)
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        return Span(self.path, tok.line, tok.column, tok.end_line or tok.line,
                    tok.end_column or tok.column + len(tok))

    # ---- file ----
    def start(self, meta, items):
        return A.PolicyFile(self.path, tuple(items), self._span(meta))

    def import_decl(self, meta, c):
        return A.Import(_unquote(c[0]), self._span(meta))

    def cpus_decl(self, meta, c):
        return A.Cpus(int(c[0]), self._span(meta))

    def packages_decl(self, meta, c):
        return A.Packages(int(c[0]), self._span(meta))

    def const_decl(self, meta, c):
        return A.ConstDecl(str(c[0]), c[1], self._tspan(c[0]))

    def config_decl(self, meta, c):
        return A.ConfigDecl(str(c[0]), c[1], c[2], self._tspan(c[0]))

    def set_decl(self, meta, c):
        return A.SetDecl(str(c[0]), c[1], self._tspan(c[0]))

    def enum_decl(self, meta, c):
        return A.EnumDecl(str(c[0]), tuple(str(t) for t in c[1:]),
                          tuple(self._tspan(t) for t in c[1:]), self._tspan(c[0]))

    def ghost(self, meta, c):
        return True

    def var_decl(self, meta, c):
        ghost, name, index, type_, init, module = c
        return A.VarDecl(str(name), ghost is True, index, type_, init,
                         module.name if module is not None else None, self._tspan(name))

    def index_binder(self, meta, c):
        return A.IndexBinder(c[0], str(c[1]), self._span(meta))

    def predicate_decl(self, meta, c):
        return A.PredicateDecl(str(c[0]), c[1], self._tspan(c[0]))

    def module_tag(self, meta, c):
        return _Module(str(c[0]))

    # ---- types ----
    def type_name(self, meta, c):
        return A.TypeName(str(c[0]), self._span(meta))

    def bool_type(self, meta, c):
        return A.TypeName("bool", self._span(meta))

    def int_type(self, meta, c):
        return A.TypeName("int", self._span(meta))

    def cpu_type(self, meta, c):
        return A.TypeName("cpu", self._span(meta))

    def int_range_type(self, meta, c):
        return A.IntRange(c[0], c[1], self._span(meta))

    def signed_int(self, meta, c):
        return int(c[0])

    def neg_int(self, meta, c):
        return -int(c[0])

    def fn_type(self, meta, c):
        ret = c[-1] if c and isinstance(c[-1], _Ret) else None
        params = tuple(x for x in c if x is not None and not isinstance(x, _Ret))
        return A.FnTypeExpr(params, ret.type if ret else None, self._span(meta))

    def ret_type(self, meta, c):
        return _Ret(c[0])

    # ---- lock classes ----
    def lockclass_decl(self, meta, c):
        fields = tuple(x for x in c[1:] if isinstance(x, A.FieldDecl))
        fns = tuple(x for x in c[1:] if isinstance(x, A.FnDecl))
        return A.LockClassDecl(str(c[0]), fields, fns, self._tspan(c[0]))

    def field_decl(self, meta, c):
        return A.FieldDecl(str(c[0]), c[1], c[2], self._tspan(c[0]))

    def lock_decl(self, meta, c):
        name, index, cls, module = c
        return A.LockDecl(str(name), str(cls), module.name if module is not None else None, self._tspan(name),
                          index)

    # ---- functions ----
    def acquire(self, meta, c):
        return "acquire"

    def release(self, meta, c):
        return "release"

    def fn_role(self, meta, c):
        return _Role(c[0], str(c[1]) if c[1] is not None else None)

    def fn_decl(self, meta, c):
        role, name, *params, ret, module, body = c
        return A.FnDecl(str(name), role.role if role else None, role.mode if role else None,
                        tuple(p for p in params if p is not None), ret.type if ret else None,
                        module.name if module is not None else None, body, self._tspan(name))

    def param(self, meta, c):
        return A.Param(c[0], str(c[1]), self._tspan(c[1]))

    def self_param(self, meta, c):
        return A.Param(None, "self", self._span(meta))

    # ---- contexts ----
    def kthread_decl(self, meta, c):
        held = tuple(x for x in c[2:] if isinstance(x, str) and not isinstance(x, Token))
        return A.KthreadDecl(str(c[0]), str(c[1]), held, self._tspan(c[0]))

    def lockdep_held(self, meta, c):
        return str(c[0])

    def override_decl(self, meta, c):
        return A.Override(c[0], self._span(meta))

    def actor_decl(self, meta, c):
        name, index, title, *opts, body = c
        repeat: int | None = None
        on_cpu = None
        for opt in opts:
            if isinstance(opt, _Repeat):
                repeat = opt.count
            elif isinstance(opt, _OnCpu):
                on_cpu = opt.expr
        copies, per_cpu = index if index is not None else (1, None)
        return A.ActorDecl(str(name), copies, repeat, on_cpu, body,
                           _unquote(title) if title is not None else None, self._tspan(name), per_cpu)

    def copies_index(self, meta, c):
        return int(c[0]), None

    def per_cpu_index(self, meta, c):
        return 1, (str(c[0]), self._tspan(c[0]))

    def repeat_opt(self, meta, c):
        return _Repeat(int(c[0]) if c[0] is not None else 0)

    def on_cpu_opt(self, meta, c):
        return _OnCpu(c[0])

    # ---- properties ----
    def _prop(self, kind, meta, c, with_expr):
        name, doc = c[0], c[1]
        observe = c[2].where if with_expr and c[2] is not None else None
        expr = c[-1] if with_expr else None
        return A.PropertyDecl(kind, str(name), _unquote(doc) if doc is not None else None,
                              observe, expr, span=self._tspan(name))

    def invariant_decl(self, meta, c):
        return self._prop("invariant", meta, c, True)

    def cover_decl(self, meta, c):
        return self._prop("cover", meta, c, True)

    def cover_event_decl(self, meta, c):
        return self._prop("cover", meta, c, False)

    def event_decl(self, meta, c):
        return self._prop("event", meta, c, False)

    def deadlock_decl(self, meta, c):
        return self._prop("deadlock", meta, c, False)

    def lockdep_decl(self, meta, c):
        return self._prop("lockdep", meta, c, False)

    def static_decl(self, meta, c):
        name = c[0]
        doc = _unquote(c[1]) if c[1] is not None else None
        module = str(c[2])
        forbidden = tuple(str(x) for x in c[3:])
        return A.PropertyDecl("static", str(name), doc, None, None, module, forbidden,
                              self._tspan(name))

    def order_decl(self, meta, c):
        name, doc, first, second = c
        return A.PropertyDecl("order", str(name), _unquote(doc) if doc is not None else None, None, None,
                              None, (str(first), str(second)), self._tspan(name))

    def at_every(self, meta, c):
        return _Observe("every")

    def at_quiescent(self, meta, c):
        return _Observe("quiescent")

    def expect_decl(self, meta, c):
        return A.ExpectDecl(str(c[0]), c[1], self._tspan(c[0]))

    def holds(self, meta, c):
        return "holds"

    def violated(self, meta, c):
        return "violated"

    def covered(self, meta, c):
        return "covered"

    def unreachable(self, meta, c):
        return "unreachable"

    # ---- statements ----
    def block(self, meta, c):
        return tuple(c)

    def in_ctx(self, meta, c):
        return A.InCtx(str(c[0]), c[1], self._span(meta))

    def ghost_stmt(self, meta, c):
        return A.GhostStmt(c[0], self._span(meta))

    def let_stmt(self, meta, c):
        return A.Let(str(c[0]), c[1], c[2], c[3], self._span(meta))

    def assign_stmt(self, meta, c):
        return A.Assign(c[0], "=", c[1], c[2], self._span(meta))

    def aug_stmt(self, meta, c):
        return A.Assign(c[0], str(c[1]), c[2], None, self._span(meta))

    def incdec_stmt(self, meta, c):
        return A.Assign(c[0], str(c[1]), None, None, self._span(meta))

    def expr_stmt(self, meta, c):
        return A.ExprStmt(c[0], c[1], self._span(meta))

    def else_part(self, meta, c):
        return c[0] if isinstance(c[0], tuple) else (c[0],)

    def if_stmt(self, meta, c):
        return A.If(c[0], c[1], c[2], self._span(meta))

    def may_fail_stmt(self, meta, c):
        reason = _unquote(c[0]) if c[0] is not None else None
        return A.MayFail(reason, c[1], c[2], self._span(meta))

    def return_stmt(self, meta, c):
        return A.Return(c[0], self._span(meta))

    def await_stmt(self, meta, c):
        return A.Await(c[0], tuple(c[1:]), self._span(meta))

    def require_stmt(self, meta, c):
        return A.Require(c[0], self._span(meta))

    def atomic_stmt(self, meta, c):
        return A.Atomic(_unquote(c[0]), c[1], self._span(meta))

    def check_stmt(self, meta, c):
        return A.Check(str(c[0]), c[1], self._span(meta))

    def cover_stmt(self, meta, c):
        return A.Check(str(c[0]), c[1], self._span(meta), reach=True)

    def for_cpu_stmt(self, meta, c):
        return A.ForCpu(str(c[0]), c[1], c[2], self._span(meta))

    def for_range_stmt(self, meta, c):
        return A.ForRange(str(c[0]), str(c[1]), c[2], c[4], c[3] == "downto", c[5], self._span(meta))

    def upto(self, meta, c):
        return "upto"

    def downto(self, meta, c):
        return "downto"

    def pick_stmt(self, meta, c):
        return A.Pick(str(c[0]), c[1], c[2], self._span(meta))

    def either_stmt(self, meta, c):
        return A.Either(tuple(c), self._span(meta))

    def break_stmt(self, meta, c):
        return A.Break(self._span(meta))

    def ipi_stmt(self, meta, c):
        return A.Ipi(c[0], c[1], self._span(meta))

    def hold_stmt(self, meta, c):
        return A.Hold(False, c[0], str(c[1]) if c[1] is not None else None, self._span(meta))

    def unhold_stmt(self, meta, c):
        return A.Hold(True, c[0], str(c[1]) if c[1] is not None else None, self._span(meta))

    # ---- expressions ----
    def forall(self, meta, c):
        return "forall"

    def exists(self, meta, c):
        return "exists"

    def count(self, meta, c):
        return "count"

    def quant(self, meta, c):
        return A.Quant(c[0], str(c[1]), c[2], self._span(meta))

    def cond(self, meta, c):
        return A.Cond(c[0], c[1], c[2], self._span(meta))

    def implies(self, meta, c):
        return A.Binary("->", c[0], c[1], self._span(meta))

    def or_(self, meta, c):
        return A.Binary("||", c[0], c[1], self._span(meta))

    def and_(self, meta, c):
        return A.Binary("&&", c[0], c[1], self._span(meta))

    def compare(self, meta, c):
        return A.Binary(str(c[1]), c[0], c[2], self._span(meta))

    def arith(self, meta, c):
        return A.Binary(str(c[1]), c[0], c[2], self._span(meta))

    def not_(self, meta, c):
        return A.Unary("!", c[0], self._span(meta))

    def neg(self, meta, c):
        return A.Unary("-", c[0], self._span(meta))

    def index(self, meta, c):
        return A.Index(c[0], c[1], self._span(meta))

    def field(self, meta, c):
        return A.Field(c[0], str(c[1]), self._span(meta))

    def call(self, meta, c):
        args = tuple(x for x in c[1:] if x is not None)
        return A.Call(c[0], args, self._span(meta))

    def name(self, meta, c):
        return A.Name(str(c[0]), self._tspan(c[0]))

    def int_lit(self, meta, c):
        return A.IntLit(int(c[0]), self._tspan(c[0]))

    def true_lit(self, meta, c):
        return A.BoolLit(True, self._span(meta))

    def false_lit(self, meta, c):
        return A.BoolLit(False, self._span(meta))

    def null_lit(self, meta, c):
        return A.NullLit(self._span(meta))

    def any_lit(self, meta, c):
        return A.AnyLit(self._span(meta))

    def self_ref(self, meta, c):
        return A.SelfRef(self._span(meta))


class _Module:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Ret:
    __slots__ = ("type",)

    def __init__(self, type_: Any):
        self.type = type_


class _Role:
    __slots__ = ("role", "mode")

    def __init__(self, role: str, mode: str | None):
        self.role, self.mode = role, mode


class _Repeat:
    __slots__ = ("count",)

    def __init__(self, count: int):
        self.count = count


class _OnCpu:
    __slots__ = ("expr",)

    def __init__(self, expr: Any):
        self.expr = expr


class _Observe:
    __slots__ = ("where",)

    def __init__(self, where: str):
        self.where = where
