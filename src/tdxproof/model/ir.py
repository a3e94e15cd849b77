"""The typed model (IR) every engine consumes.

After `lower()` returns, every name is resolved, every expression typed, every
path's lock use balanced; later stages assert, they do not re-check.
Per-CPU state (`Var.per_cpu`) and quantifiers (`Quant`) stay first-class: the
number of CPUs is `Model.cpus`, a parameter, and nothing here is unrolled per CPU.

References to functions are by name and dense index (`FnRef`, `Call.callee`),
never by object, so that frozen equality and hashing never walk a call graph.

NOTE(observation): where each kind of property is observed, for every engine.
  invariant at every      every reachable state, the initial states included
  invariant at quiescent  every reachable state in which the `quiescent` predicate holds
  cover [at ...]          some reachable state (satisfying `quiescent` if so marked)
  event                   each execution of a `check NAME: cond` statement, in the state
                          before that step; violated when cond is false there
  deadlock                every reachable state (see NOTE(deadlock) in interp/step.py)
  order A before B        each step that takes A (any mode) in a context holding B
  static                  the call graph, without executing anything
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from tdxproof.source import NO_SPAN, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)  # type: ignore[return-value]


# ---------------------------------------------------------------- types
@dataclass(frozen=True, slots=True)
class BoolType:
    def __str__(self) -> str:
        return "bool"


@dataclass(frozen=True, slots=True)
class IntType:
    lo: int
    hi: int

    def __str__(self) -> str:
        return "int" if (self.lo, self.hi) == (INT_LO, INT_HI) else f"int[{self.lo}..{self.hi}]"


@dataclass(frozen=True, slots=True)
class CpuType:
    def __str__(self) -> str:
        return "cpu"


@dataclass(frozen=True, slots=True)
class EnumType:
    name: str
    members: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class FnType:
    params: tuple["Type", ...]
    ret: "Type"

    def __str__(self) -> str:
        ret = "" if isinstance(self.ret, VoidType) else f" -> {self.ret}"
        return f"fn({', '.join(map(str, self.params))}){ret}"


@dataclass(frozen=True, slots=True)
class NullType:
    """The type of `null`: compatible with every function type."""

    def __str__(self) -> str:
        return "null"


@dataclass(frozen=True, slots=True)
class LockType:
    cls: str

    def __str__(self) -> str:
        return self.cls


@dataclass(frozen=True, slots=True)
class VoidType:
    def __str__(self) -> str:
        return "void"


Type = BoolType | IntType | CpuType | EnumType | FnType | NullType | LockType | VoidType

# The plain `int`: return codes and errno values.
INT_LO, INT_HI = -128, 127
BOOL, INT, CPU, VOID, NULL = BoolType(), IntType(INT_LO, INT_HI), CpuType(), VoidType(), NullType()


def same_kind(a: Type, b: Type) -> bool:
    """Assignable / comparable: ints with ints (bounds are checked where values are
    written), cpus and enums with ints, null with function types, otherwise equal types."""
    if isinstance(a, (IntType, CpuType)) and isinstance(b, (IntType, CpuType)):
        return True
    # C semantics: an enumerator is an int (cpuhp state numbers are returned as ints)
    if isinstance(a, (IntType, EnumType)) and isinstance(b, (IntType, EnumType)):
        return not (isinstance(a, EnumType) and isinstance(b, EnumType)) or a == b
    if isinstance(a, (FnType, NullType)) and isinstance(b, (FnType, NullType)):
        return isinstance(a, NullType) or isinstance(b, NullType) or a == b
    return a == b


# ---------------------------------------------------------------- expressions
@dataclass(frozen=True, slots=True)
class QVar:
    """A bound CPU (or enum) variable of a quantifier or of a per-CPU initialiser."""
    name: str
    id: int
    type: Type


@dataclass(frozen=True, slots=True)
class Lit:
    value: int
    type: Type
    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FnRef:
    name: str
    index: int
    type: FnType
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LockRef:
    lock: "Lock"
    span: Span = _span()

    @property
    def type(self) -> Type:
        return LockType(self.lock.cls)


@dataclass(frozen=True, slots=True)
class VarRef:
    var: "Var"
    index: "Expr | None"
    span: Span = _span()

    @property
    def type(self) -> Type:
        return self.var.type


@dataclass(frozen=True, slots=True)
class FieldRef:
    lock: "Expr"
    cls: str
    field: "Field"
    span: Span = _span()

    @property
    def type(self) -> Type:
        return self.field.type


@dataclass(frozen=True, slots=True)
class LocalRef:
    local: "Local"
    span: Span = _span()

    @property
    def type(self) -> Type:
        return self.local.type


@dataclass(frozen=True, slots=True)
class QVarRef:
    qvar: QVar
    span: Span = _span()

    @property
    def type(self) -> Type:
        return self.qvar.type


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # ! -
    operand: "Expr"
    type: Type
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # -> || && == != < <= > >= + -
    left: "Expr"
    right: "Expr"
    type: Type
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CondExpr:
    cond: "Expr"
    then: "Expr"
    other: "Expr"
    type: Type
    span: Span = _span()


class QuantKind(Enum):
    FORALL = "forall"
    EXISTS = "exists"
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class Quant:
    kind: QuantKind
    qvar: QVar
    body: "Expr"
    type: Type
    span: Span = _span()


class BuiltinOp(Enum):
    HELD = "held"            # held(L[, mode]): the current context holds L (lockdep's view)
    HOLDERS = "holders"      # holders(L[, mode]): how many contexts hold L
    THIS_CPU = "this_cpu"    # smp_processor_id() of the current context
    IRQS_OFF = "irqs_off"    # irqs_disabled() of the current context
    IN_IPI = "in_ipi"        # running as an IPI handler
    PERCPU_THREAD = "percpu_thread"   # is_percpu_thread(): a kthread bound to its CPU (cpuhp/c, `actor a[cpu c]`)
    PKG = "pkg"              # topology_physical_package_id(c)
    NR_CPUS = "nr_cpus"      # number of CPUs of this run


@dataclass(frozen=True, slots=True)
class Builtin:
    op: BuiltinOp
    args: tuple["Expr", ...]
    mode: str | None
    type: Type
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class PredRef:
    pred: "Predicate"
    span: Span = _span()

    @property
    def type(self) -> Type:
        return BOOL


@dataclass(frozen=True, slots=True)
class AnyValue:
    """A nondeterministic value of `type` (initialisers, `x = any;`)."""
    type: Type
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LockIndex:
    """`a[e]` for an array of locks: the lock `locks[e]` (one lockdep class, `array`)."""
    array: str
    locks: tuple["Lock", ...]
    index: "Expr"
    span: Span = _span()

    @property
    def type(self) -> Type:
        return LockType(self.locks[0].cls)


Expr = (Lit | FnRef | LockRef | LockIndex | VarRef | FieldRef | LocalRef | QVarRef | Unary | Binary
        | CondExpr | Quant | Builtin | PredRef | AnyValue)
LValue = VarRef | FieldRef | LocalRef | Builtin  # Builtin: only IRQS_OFF


# ---------------------------------------------------------------- statements
@dataclass(frozen=True, slots=True)
class WaitFor:
    """Whom a blocked `await` waits for (an edge of the wait-for graph).
    kind: holders (contexts holding lock in mode) | acquirers (contexts inside an
    acquire operation of lock in mode, e.g. a pending writer)."""
    kind: str
    lock: Expr
    mode: str | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Assign:
    sid: int
    target: LValue
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a function (direct: `callee` is a FnRef; indirect: an expression of
    function type), optionally handed to a per-CPU kthread (`call f() in cpuhp[c]`)."""
    sid: int
    callee: Expr
    args: tuple[Expr, ...]
    result: LValue | None
    kthread: "Kthread | None" = None
    kthread_cpu: Expr | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class If:
    sid: int
    cond: Expr
    then: tuple["Stmt", ...]
    other: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Choice:
    """Nondeterministic branch: `if may fail` (labels succeeds/fails) or `either/or`."""
    sid: int
    kind: str  # may_fail | either
    reason: str | None
    labels: tuple[str, ...]
    branches: tuple[tuple["Stmt", ...], ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Return:
    sid: int
    value: Expr | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Await:
    sid: int
    cond: Expr
    waits: tuple[WaitFor, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Require:
    sid: int
    cond: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Atomic:
    sid: int
    mechanism: str
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Check:
    sid: int
    prop: str
    cond: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ForCpu:
    sid: int
    var: "Local"
    where: Expr | None
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ForRange:
    sid: int
    var: "Local"
    lo: Expr
    hi: Expr
    down: bool
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Pick:
    sid: int
    var: "Local"
    where: Expr | None
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Break:
    sid: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Ipi:
    sid: int
    cpu: Expr
    body: tuple["Stmt", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Hold:
    sid: int
    release: bool
    lock: Expr
    mode: str | None
    span: Span = _span()


Stmt = (Assign | Call | If | Choice | Return | Await | Require | Atomic | Check | ForCpu
        | ForRange | Pick | Break | Ipi | Hold)


# ---------------------------------------------------------------- declarations
@dataclass(frozen=True, slots=True)
class Var:
    name: str
    index: int
    type: Type
    per_cpu: bool
    dim: EnumType | None  # arrays indexed by an enum (e.g. cpuhp_state)
    binder: QVar | None  # the index variable of the initialiser
    init: Expr
    ghost: bool
    module: str | None
    span: Span = _span()

    @property
    def indexed(self) -> bool:
        return self.per_cpu or self.dim is not None


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    index: int
    type: Type
    init: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LockClass:
    name: str
    fields: tuple[Field, ...]
    ops: tuple[str, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Lock:
    name: str
    index: int
    cls: str
    module: str | None
    span: Span = _span()
    array: str | None = None   # one of `lock a[cpu c]` (named `a[1]`): lockdep's class is `a`
    per_cpu: bool = False      # of an array indexed by CPU: as many as there are CPUs


@dataclass(frozen=True, slots=True)
class Local:
    name: str
    slot: int
    type: Type


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    index: int
    params: tuple[Local, ...]
    ret: Type
    locals: tuple[Local, ...]
    body: tuple[Stmt, ...]
    module: str | None
    role: str | None  # acquire | release (lock-class operations)
    mode: str | None  # read | write | None (exclusive)
    lock_class: str | None
    span: Span = _span()

    @property
    def type(self) -> FnType:
        return FnType(tuple(p.type for p in self.params), self.ret)


@dataclass(frozen=True, slots=True)
class Kthread:
    """A per-CPU kernel thread (`cpuhp/c`, `kworker/c`) that runs calls handed to it."""
    name: str
    index: int
    lockdep_held: tuple[str, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    index: int
    copies: int
    repeat: int | None  # None: once; 0: forever; k: k times
    on_cpu: Expr | None
    locals: tuple[Local, ...]
    body: tuple[Stmt, ...]
    title: str | None = None   # who runs, in the kernel's words (`modprobe kvm_intel`): witness columns
    span: Span = _span()
    per_cpu: bool = False      # one of `actor a[cpu c]`: a per-CPU thread (is_percpu_thread())


@dataclass(frozen=True, slots=True)
class Predicate:
    name: str
    expr: Expr
    span: Span = _span()


class PropKind(Enum):
    INVARIANT = "invariant"
    COVER = "cover"
    EVENT = "event"
    DEADLOCK = "deadlock"
    STATIC = "static"
    ORDER = "order"      # `order P: A before B;` no context takes A while holding B (lockdep)
    LOCKDEP = "lockdep"  # `lockdep P;` no cycle in the lock-dependency graph of every code path


# decided on the code, without executing it (engines/static.py, engines/lockgraph.py)
STATIC_KINDS = frozenset({PropKind.STATIC, PropKind.LOCKDEP})


class Observe(Enum):
    EVERY = "every"
    QUIESCENT = "quiescent"
    EVENT = "event"
    STATIC = "static"


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    kind: PropKind
    doc: str | None
    observe: Observe
    expr: Expr | None
    module: str | None = None
    forbidden: tuple[str, ...] = ()
    span: Span = _span()

    @property
    def fires_in_steps(self) -> bool:
        """Decided by steps, not states: `check` events, lock orders, and covers
        met by `cover NAME: cond;` statements (lowered to a check of `!cond`)."""
        return self.kind in (PropKind.EVENT, PropKind.ORDER) or (self.kind is PropKind.COVER and self.expr is None)


@dataclass(frozen=True, slots=True)
class Expect:
    prop: str
    verdict: str  # holds | violated | covered | unreachable
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Override:
    """A declaration a policy replaced (`override`): for `tdxproof show`."""
    kind: str                  # fn | var | predicate | actor | property
    name: str
    span: Span                 # the override
    original: Span             # the declaration it replaces


@dataclass(frozen=True, slots=True)
class Model:
    path: str
    cpus: int
    packages: int
    enums: tuple[EnumType, ...]
    vars: tuple[Var, ...]
    predicates: tuple[Predicate, ...]
    lock_classes: tuple[LockClass, ...]
    locks: tuple[Lock, ...]
    functions: tuple[Function, ...]
    kthreads: tuple[Kthread, ...]
    actors: tuple[Actor, ...]
    properties: tuple[Property, ...]
    expects: tuple[Expect, ...]
    atomics: tuple[tuple[str, Span], ...]  # every `atomic` with its cited mechanism
    # held locks at every statement, relative to the entry of its function or actor:
    # (sid, possible held multisets as sorted tuples of (lock name, mode))
    held_at: tuple[tuple[int, tuple[tuple[tuple[str, str | None], ...], ...]], ...] = ()
    # NOTE(blocks): statements no other context can observe (model/blocks.py); a
    # transition runs them together with one statement that others can observe
    invisible: frozenset[int] = frozenset()
    invisible_results: frozenset[int] = frozenset()   # calls whose result write is invisible
    movers: tuple[tuple[int, str], ...] = ()          # (sid, B | R | L | N), see model/blocks.py
    files: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = ()
    ghost: frozenset[int] = frozenset()               # NOTE(ghost): sids of ghost statements

    def function(self, name: str) -> Function:
        return next(f for f in self.functions if f.name == name)

    def property(self, name: str) -> Property:
        return next(p for p in self.properties if p.name == name)

    def lock_class(self, name: str) -> LockClass:
        return next(c for c in self.lock_classes if c.name == name)

    def predicate(self, name: str) -> Predicate | None:
        return next((p for p in self.predicates if p.name == name), None)

    def package_of(self, cpu: int) -> int:
        """CPUs are split into `packages` contiguous groups (cpu 0.. in package 0)."""
        per = -(-self.cpus // self.packages)
        return cpu // per


# The event the engines fire where a context's body or work ends holding a lock
# (declared in locks.tdx; a policy without it gets no such check).
EXIT_EVENT = "no-lock-at-exit"

# How many times one context may hold one lock in one mode at once (recursive
# readers, nested acquires). Both engines keep a count per (context, lock, mode)
# with this bound; one more hold is a run-time model error, so a hold leaked
# under `repeat` is a finite state and an error, never unbounded growth or a wrap.
MAX_HOLDS = 4


def value_range(ty: Type, cpus: int, functions: int) -> tuple[int, int] | None:
    """The values a variable of type `ty` may hold with this many CPUs and functions
    (booleans 0/1, CPUs 0..N-1, enum members by index, functions by index + 1 and 0
    for null): both engines treat a write outside it as a run-time model error."""
    match ty:
        case BoolType():
            return (0, 1)
        case IntType(lo=lo, hi=hi):
            return (lo, hi)
        case CpuType():
            return (0, cpus - 1)
        case EnumType(members=members):
            return (0, len(members) - 1)
        case FnType() | NullType():
            return (0, functions)
    return None
