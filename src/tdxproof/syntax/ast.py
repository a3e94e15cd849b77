"""Surface AST: what the user wrote, names unresolved.

Every node is frozen and carries a `span` that is excluded from equality, so a
parsed tree compares equal to a hand-written one. The model stage lowers this
tree into the IR; nothing downstream of `model/` sees these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tdxproof.source import NO_SPAN, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)  # type: ignore[return-value]


# ---- types ----
@dataclass(frozen=True, slots=True)
class TypeName:
    name: str  # bool, int, cpu, or a declared enum / lock class
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class IntRange:
    lo: int
    hi: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FnTypeExpr:
    params: tuple["TypeExpr", ...]
    ret: "TypeExpr | None"
    span: Span = _span()


TypeExpr = TypeName | IntRange | FnTypeExpr


# ---- expressions ----
@dataclass(frozen=True, slots=True)
class Name:
    id: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BoolLit:
    value: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class NullLit:
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class AnyLit:
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SelfRef:
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Index:
    base: "Expr"
    index: "Expr"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Field:
    base: "Expr"
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    func: "Expr"
    args: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "!" or "-"
    operand: "Expr"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # -> || && == != < <= > >= + -
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Cond:
    cond: "Expr"
    then: "Expr"
    other: "Expr"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Quant:
    kind: str  # forall | exists | count
    var: str
    body: "Expr"
    span: Span = _span()


Expr = Name | IntLit | BoolLit | NullLit | AnyLit | SelfRef | Index | Field | Call | Unary | Binary | Cond | Quant


# ---- statements ----
@dataclass(frozen=True, slots=True)
class InCtx:
    kthread: str
    cpu: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Let:
    name: str
    type: TypeExpr | None
    value: Expr
    in_ctx: InCtx | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Assign:
    target: Expr
    op: str  # "=", "+=", "-=", "++", "--"
    value: Expr | None
    in_ctx: InCtx | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExprStmt:
    expr: Expr
    in_ctx: InCtx | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class If:
    cond: Expr
    then: tuple["Stmt", ...]
    other: tuple["Stmt", ...] | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class MayFail:
    reason: str | None
    then: tuple["Stmt", ...]
    other: tuple["Stmt", ...] | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Return:
    value: Expr | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Await:
    cond: Expr
    waits: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Require:
    cond: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Atomic:
    mechanism: str
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Check:
    prop: str
    cond: Expr
    span: Span = _span()
    reach: bool = False  # `cover NAME: cond;`: the cover goal is met where this runs with cond true


@dataclass(frozen=True, slots=True)
class ForCpu:
    var: str
    where: Expr | None
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ForRange:
    type: str
    var: str
    lo: Expr
    hi: Expr
    down: bool
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Pick:
    var: str
    where: Expr | None
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Either:
    branches: tuple[tuple["Stmt", ...], ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Break:
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Ipi:
    cpu: Expr
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Hold:
    release: bool  # False: hold, True: unhold
    lock: Expr
    mode: str | None
    span: Span = _span()


Stmt = (Let | Assign | ExprStmt | If | MayFail | Return | Await | Require | Atomic | Check
        | ForCpu | ForRange | Pick | Either | Break | Ipi | Hold)


@dataclass(frozen=True, slots=True)
class GhostStmt:
    """`ghost let x = e;` / `ghost x = e;`: ghost code, for the properties only."""
    stmt: "Let | Assign"
    span: Span = _span()


# ---- declarations ----
@dataclass(frozen=True, slots=True)
class Import:
    path: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Cpus:
    count: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Packages:
    count: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ConstDecl:
    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ConfigDecl:
    """`config NAME: TYPE = DEFAULT;` a build-time option (Kconfig, module parameter,
    fault injection) that the policy may change with `set NAME = VALUE;`."""
    name: str
    type: "TypeExpr"
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SetDecl:
    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EnumDecl:
    name: str
    members: tuple[str, ...]
    member_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class IndexBinder:
    type: TypeName
    var: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class VarDecl:
    name: str
    ghost: bool
    index: IndexBinder | None
    type: TypeExpr
    init: Expr | None
    module: str | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class PredicateDecl:
    name: str
    expr: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Param:
    type: TypeExpr | None  # None: `self`
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FnDecl:
    name: str
    role: str | None  # acquire | release
    mode: str | None  # read | write | None
    params: tuple[Param, ...]
    ret: TypeExpr | None
    module: str | None
    body: tuple[Stmt, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FieldDecl:
    name: str
    type: TypeExpr
    init: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LockClassDecl:
    name: str
    fields: tuple[FieldDecl, ...]
    fns: tuple[FnDecl, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LockDecl:
    name: str
    cls: str
    module: str | None
    span: Span = _span()
    index: "IndexBinder | None" = None   # an array of locks


@dataclass(frozen=True, slots=True)
class KthreadDecl:
    name: str
    var: str
    lockdep_held: tuple[str, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ActorDecl:
    name: str
    copies: int
    repeat: int | None  # None: run once; 0: forever; k: k times
    on_cpu: Expr | None
    body: tuple[Stmt, ...]
    title: str | None = None  # who runs, as a kernel developer names it: `modprobe kvm_intel`
    span: Span = _span()
    per_cpu: tuple[str, Span] | None = None   # `actor kworker[cpu c]`: the CPU's name, one actor per CPU


@dataclass(frozen=True, slots=True)
class PropertyDecl:
    kind: str  # invariant | cover | event | deadlock | lockdep | static | order
    name: str
    doc: str | None
    observe: str | None  # every | quiescent
    expr: Expr | None
    module: str | None = None  # static: the module whose code is checked
    forbidden: tuple[str, ...] = ()  # static: names it must not use; order: (first, second)
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExpectDecl:
    prop: str
    verdict: str  # holds | violated | covered | unreachable
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Override:
    """`override DECL`: DECL replaces the declaration of the same name in a file
    this one imports (model/variants.py)."""
    decl: "FnDecl | VarDecl | PredicateDecl | ActorDecl | PropertyDecl"
    span: Span = _span()


Decl = (Import | Cpus | Packages | ConstDecl | ConfigDecl | SetDecl | EnumDecl | VarDecl | PredicateDecl | FnDecl
        | LockClassDecl | LockDecl | KthreadDecl | ActorDecl | PropertyDecl | ExpectDecl | Override)


@dataclass(frozen=True, slots=True)
class PolicyFile:
    path: str
    items: tuple[Decl, ...]
    span: Span = _span()
