"""lower(files) -> Model: name resolution, typing and IR construction.

Contract: after `lower_policy()` returns, every name is resolved, every expression
typed, every path's lock use balanced (see wellformed.py); later stages assert,
they do not re-check. Every user mistake of this stage is a Diagnostic with a
span; they are all collected and raised together as one PolicyError.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from tdxproof.diagnostics import Diagnostic, Diagnostics, Note, PolicyError, did_you_mean
from tdxproof.model import ir
from tdxproof.model.load import Loaded, load_policy
from tdxproof.model.variants import Resolved, resolve
from tdxproof.source import Span
from tdxproof.syntax import ast as A

MODES = ("read", "write")
ZERO_ARG_BUILTINS = {
    "this_cpu": (ir.BuiltinOp.THIS_CPU, ir.CPU),
    "irqs_off": (ir.BuiltinOp.IRQS_OFF, ir.BOOL),
    "in_ipi": (ir.BuiltinOp.IN_IPI, ir.BOOL),
    "percpu_thread": (ir.BuiltinOp.PERCPU_THREAD, ir.BOOL),
    "nr_cpus": (ir.BuiltinOp.NR_CPUS, ir.INT),
}
CALL_BUILTINS = ("held", "holders", "pkg")
WAIT_FORMS = ("holders", "acquirers")
VERDICTS = {
    ir.PropKind.INVARIANT: ("holds", "violated"),
    ir.PropKind.EVENT: ("holds", "violated"),
    ir.PropKind.DEADLOCK: ("holds", "violated"),
    ir.PropKind.STATIC: ("holds", "violated"),
    ir.PropKind.LOCKDEP: ("holds", "violated"),
    ir.PropKind.ORDER: ("holds", "violated"),
    ir.PropKind.COVER: ("covered", "unreachable"),
}


class _Skip(Exception):
    """An expression could not be lowered; its diagnostic is already recorded."""


@dataclass
class _FnSig:
    name: str
    index: int
    decl: A.FnDecl
    params: tuple[ir.Type, ...] = ()
    ret: ir.Type = ir.VOID
    lock_class: str | None = None


@dataclass
class _Body:
    """Per-function (or per-actor) lowering state."""
    name: str
    ret: ir.Type
    lock_class: str | None
    locals: list[ir.Local] = field(default_factory=list)
    scopes: list[dict[str, ir.Local]] = field(default_factory=lambda: [{}])
    loops: int = 0
    in_atomic: bool = False
    ghost_locals: set[int] = field(default_factory=set)   # slots of `ghost let` locals
    reading: str | None = None   # "ghost" in ghost code, "check" in a check: may read ghost locals
    is_actor: bool = False
    loop_vars: set[int] = field(default_factory=set)
    # names whose `let` had an error: a later use is no second error (one mistake, one error)
    poisoned: set[str] = field(default_factory=set)

    def lookup(self, name: str) -> ir.Local | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def declare(self, name: str, type_: ir.Type) -> ir.Local:
        local = ir.Local(name, len(self.locals), type_)
        self.locals.append(local)
        self.scopes[-1][name] = local
        return local


class Lowerer:
    def __init__(self, loaded: Loaded, cpus: int | None):
        self.loaded = loaded
        self.cli_cpus = cpus
        self.d = Diagnostics()
        self.decl_at: dict[str, Span] = {}  # first declaration of every global name
        self.types: dict[str, ir.Type] = {}
        self.enums: list[ir.EnumType] = []
        self.consts: dict[str, ir.Lit] = {}
        self.actor_cpu: dict[str, int] = {}
        self.lock_arrays: dict[str, tuple[ir.Type, tuple[ir.Lock, ...]]] = {}   # `lock a[cpu c]`   # `actor a[cpu c]`: c's CPU while one copy is lowered
        self.configs: set[str] = set()
        self.members: dict[str, ir.Lit] = {}
        self.vars: dict[str, ir.Var] = {}
        self.var_order: list[ir.Var] = []
        self.classes: dict[str, A.LockClassDecl] = {}
        self.class_ir: dict[str, ir.LockClass] = {}
        self.fields: dict[str, dict[str, ir.Field]] = {}
        self.locks: dict[str, ir.Lock] = {}
        self.sigs: dict[str, _FnSig] = {}
        self.preds: dict[str, ir.Predicate] = {}
        self.kthreads: dict[str, ir.Kthread] = {}
        self.props: dict[str, ir.Property] = {}
        self.prop_decls: dict[str, A.PropertyDecl] = {}
        self.modules: set[str] = set()
        self.sid = itertools.count(1)
        self.qid = itertools.count(1)
        self.atomics: list[tuple[str, Span]] = []
        self.ghost_sids: set[int] = set()
        self.qscope: list[dict[str, ir.QVar]] = []
        self.body: _Body | None = None
        self.cpus = 2
        self.packages = 1

    # ------------------------------------------------------------ entry
    def run(self) -> ir.Model:
        resolved = resolve(self.loaded, self.d)
        items = resolved.items
        main = self.loaded.main
        self._params(resolved)
        for _, it in items:
            self._declare_name(it)
        for _, it in items:
            if isinstance(it, A.EnumDecl):
                self._enum(it)
        for _, it in items:
            if isinstance(it, A.ConstDecl):
                self._const(it)
            elif isinstance(it, A.ConfigDecl):
                self._config(it, resolved.sets.get(it.name))
        for name, it in resolved.sets.items():
            if name not in self.configs:
                self.d.error("E201", f"unknown config option `{it.name}`", it.span,
                             help=did_you_mean(it.name, self.configs))
        for _, it in items:
            if isinstance(it, A.LockClassDecl):
                self.classes[it.name] = it
                self.types[it.name] = ir.LockType(it.name)
        for _, it in items:
            if isinstance(it, A.LockDecl):
                self._lock(it)
        for _, it in items:
            if isinstance(it, A.FnDecl):
                self._signature(it, None)
            elif isinstance(it, A.LockClassDecl):
                for fn in it.fns:
                    self._signature(fn, it.name)
        for _, it in items:
            if isinstance(it, A.LockClassDecl):
                self._lock_class(it)
        for _, it in items:
            if isinstance(it, A.VarDecl):
                self._var(it)
        for _, it in items:
            if isinstance(it, A.KthreadDecl):
                self._kthread(it)
        for _, it in items:
            if isinstance(it, A.PropertyDecl):
                self._property_head(it)
        for _, it in items:
            if isinstance(it, A.PredicateDecl):
                self._predicate(it)
        for _, it in items:
            if isinstance(it, A.PropertyDecl):
                self._property_body(it)
        functions: list[ir.Function | None] = [None] * len(self.sigs)
        for _, it in items:
            fns = [it] if isinstance(it, A.FnDecl) else list(it.fns) if isinstance(it, A.LockClassDecl) else []
            for fn in fns:
                sig = self.sigs.get(fn.name)
                if sig is not None and sig.decl is fn:
                    functions[sig.index] = self._function(fn, sig)
        actors: list[ir.Actor] = []
        for it in (x for _, x in items if isinstance(x, A.ActorDecl)):
            actors.extend(self._actors(it, len(actors)))
        self._ghost_reads([f for f in functions if f is not None], actors)
        expects = self._expects(resolved.expects)
        for prop in self.props.values():
            if prop.kind is ir.PropKind.STATIC and prop.module not in self.modules:
                self.d.warning("W210", f"no code is tagged `@{prop.module}`; `{prop.name}` checks nothing",
                               prop.span)
        self.d.raise_if_errors()
        return ir.Model(
            path=main.path, cpus=self.cpus, packages=self.packages, enums=tuple(self.enums),
            vars=tuple(self.var_order), predicates=tuple(self.preds.values()),
            lock_classes=tuple(self.class_ir.values()), locks=tuple(self.locks.values()),
            functions=tuple(f for f in functions if f is not None), kthreads=tuple(self.kthreads.values()),
            actors=tuple(actors), properties=tuple(self.props.values()), expects=tuple(expects),
            atomics=tuple(self.atomics), files=tuple(f.path for f in self.loaded.files),
            overrides=tuple(resolved.overrides), ghost=frozenset(self.ghost_sids))

    # ------------------------------------------------------------ parameters
    def _params(self, resolved: Resolved) -> None:
        cpus, pkgs = resolved.cpus, resolved.packages
        if cpus is not None:
            self.cpus = cpus.count
            if not 1 <= self.cpus <= 64:
                self.d.error("E412", f"`cpus {self.cpus}` is out of range 1..64", cpus.span)
        if self.cli_cpus is not None:
            self.cpus = self.cli_cpus
        if pkgs is not None:
            self.packages = pkgs.count
            if not 1 <= self.packages <= max(self.cpus, 1):
                self.d.error("E412", f"`packages {self.packages}` must be between 1 and the number of "
                             f"CPUs ({self.cpus})", pkgs.span)
                self.packages = 1

    # ------------------------------------------------------------ global names
    def _declare_name(self, it: Any) -> None:
        names: list[tuple[str, Span]] = []
        if isinstance(it, (A.ConstDecl, A.ConfigDecl, A.VarDecl, A.PredicateDecl, A.LockDecl, A.FnDecl,
                           A.KthreadDecl, A.LockClassDecl, A.EnumDecl)):
            names.append((it.name, it.span))
        if isinstance(it, A.EnumDecl):
            names.extend(zip(it.members, it.member_spans or [it.span] * len(it.members)))
        if isinstance(it, A.LockClassDecl):
            names.extend((fn.name, fn.span) for fn in it.fns)
        for name, span in names:
            if name in ("bool", "int", "cpu", "self", *ZERO_ARG_BUILTINS, *CALL_BUILTINS):
                self.d.error("E205", f"`{name}` is a built-in name and cannot be declared", span)
            elif name in self.decl_at:
                self.d.error("E202", f"`{name}` is declared twice", span,
                             notes=(Note(f"`{name}` is first declared here", self.decl_at[name]),))
            else:
                self.decl_at[name] = span
        if getattr(it, "module", None):
            self.modules.add(it.module)

    def _enum(self, it: A.EnumDecl) -> None:
        ty = ir.EnumType(it.name, it.members)
        self.enums.append(ty)
        self.types[it.name] = ty
        for i, m in enumerate(it.members):
            self.members.setdefault(m, ir.Lit(i, ty, m))

    def _const(self, it: A.ConstDecl) -> None:
        try:
            value = self._const_eval(it.value)
        except _Skip:
            return
        self.consts[it.name] = value

    def _config(self, it: A.ConfigDecl, setting: A.SetDecl | None) -> None:
        self.configs.add(it.name)
        try:
            ty = self._type(it.type)
            value = self._const_eval(setting.value if setting else it.value)
        except _Skip:
            return
        if not ir.same_kind(ty, value.type) or (
                isinstance(ty, ir.IntType) and not ty.lo <= value.value <= ty.hi):
            where = setting.span if setting else it.span
            self.d.error("E303", f"config option `{it.name}` is {_a(ty)}, not `{value.text}`", where)
            return
        self.consts[it.name] = ir.Lit(value.value, ty, value.text)

    def _const_eval(self, e: A.Expr) -> ir.Lit:
        match e:
            case A.IntLit(value=v):
                return ir.Lit(v, ir.INT, str(v))
            case A.BoolLit(value=v):
                return ir.Lit(int(v), ir.BOOL, "true" if v else "false")
            case A.Unary(op="-", operand=inner):
                lit = self._const_eval(inner)
                return ir.Lit(-lit.value, ir.INT, f"-{lit.text}")
            case A.Name(id=name) if name in self.consts:
                return self.consts[name]
        self.d.error("E308", "a constant must be a number, `true`, `false` or an earlier constant", e.span)
        raise _Skip

    def _type(self, t: A.TypeExpr | None, *, allow_lock: bool = False) -> ir.Type:
        if t is None:
            return ir.VOID
        match t:
            case A.TypeName(name="bool"):
                return ir.BOOL
            case A.TypeName(name="int"):
                return ir.INT
            case A.TypeName(name="cpu"):
                return ir.CPU
            case A.TypeName(name=name):
                ty = self.types.get(name)
                if ty is None:
                    self.d.error("E206", f"unknown type `{name}`", t.span,
                                 help=did_you_mean(name, [*self.types, "bool", "int", "cpu"]))
                    raise _Skip
                if isinstance(ty, ir.LockType) and not allow_lock:
                    self.d.error("E309", f"`{name}` is a lock class; declare locks with `lock NAME: {name};`",
                                 t.span)
                    raise _Skip
                return ty
            case A.IntRange(lo=lo, hi=hi):
                if lo > hi:
                    self.d.error("E310", f"empty range int[{lo}..{hi}]", t.span)
                    raise _Skip
                return ir.IntType(lo, hi)
            case A.FnTypeExpr(params=params, ret=ret):
                return ir.FnType(tuple(self._type(p) for p in params), self._type(ret))
        raise AssertionError(t)

    def _lock(self, it: A.LockDecl) -> None:
        if it.cls not in self.classes:
            self.d.error("E206", f"unknown lock class `{it.cls}`", it.span,
                         help=did_you_mean(it.cls, self.classes))
            return
        if it.index is None:
            self.locks[it.name] = ir.Lock(it.name, len(self.locks), it.cls, it.module, it.span)
            return
        try:
            ity = self._type(it.index.type)
        except _Skip:
            return
        if isinstance(ity, ir.CpuType):
            labels = [str(k) for k in range(self.cpus)]
        elif isinstance(ity, ir.EnumType):
            labels = list(ity.members)
        else:
            self.d.error("E311", f"arrays are indexed by `cpu` or by an enum, not by `{ity}`", it.index.span)
            return
        # each element a lock of its own, named as the kernel's lockdep class and instance are
        elems = []
        for label in labels:
            lk = ir.Lock(f"{it.name}[{label}]", len(self.locks), it.cls, it.module, it.span, array=it.name,
                         per_cpu=isinstance(ity, ir.CpuType))
            self.locks[lk.name] = lk
            elems.append(lk)
        self.lock_arrays[it.name] = (ity, tuple(elems))

    def _signature(self, fn: A.FnDecl, cls: str | None) -> None:
        if fn.name in self.sigs:
            return
        sig = _FnSig(fn.name, len(self.sigs), fn, lock_class=cls)
        self.sigs[fn.name] = sig
        params: list[ir.Type] = []
        for i, p in enumerate(fn.params):
            if p.type is None:
                if cls is None:
                    self.d.error("E413", "`self` is only allowed in the operations of a lock class", p.span)
                elif i != 0:
                    self.d.error("E413", "`self` must be the first parameter", p.span)
                params.append(ir.LockType(cls or "?"))
                continue
            try:
                params.append(self._type(p.type, allow_lock=True))
            except _Skip:
                params.append(ir.INT)
        sig.params = tuple(params)
        try:
            sig.ret = self._type(fn.ret)
        except _Skip:
            sig.ret = ir.INT
        if fn.role is not None:
            if cls is None:
                self.d.error("E414", f"`{fn.role}` operations belong inside a `lockclass`", fn.span)
            elif not fn.params or fn.params[0].type is not None:
                self.d.error("E414", f"lock operation `{fn.name}` must take `self` first", fn.span)
            if fn.mode is not None and fn.mode not in MODES:
                self.d.error("E415", f"unknown lock mode `{fn.mode}`", fn.span, help="modes are `read` and `write`")

    def _lock_class(self, it: A.LockClassDecl) -> None:
        fields: dict[str, ir.Field] = {}
        for f in it.fields:
            if f.name in fields:
                self.d.error("E202", f"field `{f.name}` is declared twice", f.span)
                continue
            try:
                ty = self._type(f.type)
                init = self._expr(f.init, expect=ty)
                self._check_assignable(ty, init, f.init.span, f"field `{f.name}`")
            except _Skip:
                continue
            fields[f.name] = ir.Field(f.name, len(fields), ty, init, f.span)
        self.fields[it.name] = fields
        self.class_ir[it.name] = ir.LockClass(it.name, tuple(fields.values()), tuple(fn.name for fn in it.fns),
                                              it.span)

    def _var(self, it: A.VarDecl) -> None:
        try:
            ty = self._type(it.type)
        except _Skip:
            return
        per_cpu, dim, binder = False, None, None
        if it.index is not None:
            try:
                ity = self._type(it.index.type)
            except _Skip:
                return
            if isinstance(ity, ir.CpuType):
                per_cpu = True
            elif isinstance(ity, ir.EnumType):
                dim = ity
            else:
                self.d.error("E311", f"arrays are indexed by `cpu` or by an enum, not by `{ity}`", it.index.span)
                return
            binder = ir.QVar(it.index.var, next(self.qid), ity)
        if it.init is None:
            init: ir.Expr = _default(ty)
        else:
            self.qscope.append({binder.name: binder} if binder else {})
            try:
                init = self._expr(it.init, expect=ty, allow_any=True)
                self._check_assignable(ty, init, it.init.span, f"`{it.name}`")
            except _Skip:
                return
            finally:
                self.qscope.pop()
        var = ir.Var(it.name, len(self.var_order), ty, per_cpu, dim, binder, init, it.ghost, it.module, it.span)
        self.vars[it.name] = var
        self.var_order.append(var)

    def _kthread(self, it: A.KthreadDecl) -> None:
        for name in it.lockdep_held:
            if name not in self.locks:
                self.d.error("E201", f"unknown lock `{name}`", it.span, help=did_you_mean(name, self.locks))
        self.kthreads[it.name] = ir.Kthread(it.name, len(self.kthreads), it.lockdep_held, it.span)

    def _predicate(self, it: A.PredicateDecl) -> None:
        try:
            e = self._expr(it.expr, expect=ir.BOOL)
            self._want(ir.BOOL, e, it.expr.span, "a predicate")
        except _Skip:
            e = ir.Lit(1, ir.BOOL, "true")
        self.preds[it.name] = ir.Predicate(it.name, e, it.span)

    def _property_head(self, it: A.PropertyDecl) -> None:
        if it.name in self.prop_decls:
            self.d.error("E202", f"property `{it.name}` is declared twice", it.span,
                         notes=(Note("first declared here", self.prop_decls[it.name].span),))
            return
        self.prop_decls[it.name] = it

    def _property_body(self, it: A.PropertyDecl) -> None:
        if self.prop_decls.get(it.name) is not it:
            return
        kind = ir.PropKind(it.kind)
        observe = {ir.PropKind.EVENT: ir.Observe.EVENT, ir.PropKind.STATIC: ir.Observe.STATIC,
                   ir.PropKind.LOCKDEP: ir.Observe.STATIC,
                   ir.PropKind.ORDER: ir.Observe.EVENT}.get(
            kind, ir.Observe(it.observe or ("every" if it.expr is not None else "event")))
        if observe is ir.Observe.QUIESCENT and "quiescent" not in self.preds:
            self.d.error("E207", "`at quiescent` needs a `predicate quiescent: ...;` (the kernel preludes "
                         "declare one)", it.span)
        expr = None
        if it.expr is not None:
            try:
                expr = self._expr(it.expr, expect=ir.BOOL)
                self._want(ir.BOOL, expr, it.expr.span, f"property `{it.name}`")
            except _Skip:
                pass
        for name in it.forbidden:
            if kind is ir.PropKind.ORDER and name in self.lock_arrays:
                self.d.error("E201", f"`{name}` is an array of locks; an `order` rule names one lock", it.span)
            elif kind is ir.PropKind.ORDER and name not in self.locks:
                self.d.error("E201", f"unknown lock `{name}`", it.span, help=did_you_mean(name, self.locks))
            elif name not in self.vars and name not in self.locks and name not in self.sigs \
                    and name not in self.lock_arrays:
                self.d.error("E201", f"unknown name `{name}`", it.span,
                             help=did_you_mean(name, [*self.vars, *self.locks, *self.sigs, *self.lock_arrays]))
        self.props[it.name] = ir.Property(it.name, kind, it.doc, observe, expr, it.module, it.forbidden, it.span)

    def _expects(self, items: list[A.ExpectDecl]) -> list[ir.Expect]:
        out: dict[str, ir.Expect] = {}
        for it in items:
            prop = self.props.get(it.prop)
            if prop is None:
                self.d.error("E207", f"unknown property `{it.prop}`", it.span, help=did_you_mean(it.prop, self.props))
                continue
            if it.verdict not in VERDICTS[prop.kind]:
                words = " or ".join(f"`{v}`" for v in VERDICTS[prop.kind])
                self.d.error("E312", f"a {prop.kind.value} property is expected to be {words}, not `{it.verdict}`",
                             it.span)
                continue
            out[it.prop] = ir.Expect(it.prop, it.verdict, it.span)
        return list(out.values())

    # ------------------------------------------------------------ bodies
    def _function(self, fn: A.FnDecl, sig: _FnSig) -> ir.Function:
        body = _Body(fn.name, sig.ret, sig.lock_class)
        if fn.module:
            self.modules.add(fn.module)
        self.body = body
        params = []
        for p, ty in zip(fn.params, sig.params):
            if body.lookup(p.name) is not None:
                self.d.error("E202", f"parameter `{p.name}` is declared twice", p.span)
            params.append(body.declare(p.name, ty))
        errors = self.d.error_count
        stmts = self._block(fn.body, new_scope=False)
        # a statement dropped for an error (`return tdx_enable();`) is no missing return
        if not isinstance(sig.ret, ir.VoidType) and _falls_through(stmts) and self.d.error_count == errors:
            self.d.error("E409", f"`{fn.name}` can reach its end without returning {_a(sig.ret)}", fn.span)
        self.body = None
        return ir.Function(fn.name, sig.index, tuple(params), sig.ret, tuple(body.locals), stmts, fn.module,
                           fn.role, fn.mode, sig.lock_class, fn.span)

    def _actors(self, it: A.ActorDecl, index: int) -> list[ir.Actor]:
        """`actor kworker[cpu c]` is one actor per CPU, `kworker/0` .. `kworker/N-1`,
        each pinned to its CPU with `c` naming it (the kernel's per-CPU kthreads that
        run by themselves: a worker pool's kworkers); any other actor is itself."""
        if it.per_cpu is None:
            return [self._actor(it, index)]
        name, span = it.per_cpu
        if it.on_cpu is not None or it.copies != 1:
            self.d.error("E412", f"a per-CPU actor runs on its CPU `{name}`: it takes no `on cpu` or copies",
                         it.span)
        if name in self.decl_at:
            self.d.error("E202", f"`{name}` is declared twice", span,
                         notes=(Note(f"`{name}` is first declared here", self.decl_at.get(name)),)
                         if name in self.decl_at else ())
        out = []
        for k in range(self.cpus):
            errors = self.d.error_count
            self.actor_cpu[name] = k
            title = it.title.replace("{cpu}", str(k)) if it.title is not None else None
            one = A.ActorDecl(f"{it.name}/{k}", 1, it.repeat, A.IntLit(k, span), it.body, title, it.span)
            out.append(replace(self._actor(one, index + k), per_cpu=True))
            del self.actor_cpu[name]
            if self.d.error_count > errors:
                break   # one mistake, one error: the body is the same for every CPU
        return out

    def _actor(self, it: A.ActorDecl, index: int) -> ir.Actor:
        body = _Body(it.name, ir.VOID, None, is_actor=True)
        self.body = body
        on_cpu = None
        if it.on_cpu is not None:
            try:
                on_cpu = self._expr(it.on_cpu, expect=ir.CPU)
                self._want(ir.CPU, on_cpu, it.on_cpu.span, "`on cpu`")
            except _Skip:
                pass
        stmts = self._block(it.body, new_scope=False)
        self.body = None
        if it.copies < 1:
            self.d.error("E412", "an actor needs at least one copy", it.span)
        return ir.Actor(it.name, index, max(it.copies, 1), it.repeat, on_cpu, tuple(body.locals), stmts, it.title,
                        it.span)

    def _block(self, stmts: tuple[A.Stmt, ...], *, new_scope: bool = True) -> tuple[ir.Stmt, ...]:
        assert self.body is not None
        if new_scope:
            self.body.scopes.append({})
        out: list[ir.Stmt] = []
        for s in stmts:
            try:
                out.extend(self._stmt(s))
            except _Skip:
                if isinstance(s, A.Let):
                    self.body.poisoned.add(s.name)
        if new_scope:
            self.body.scopes.pop()
        return tuple(out)

    def _stmt(self, s: A.Stmt) -> list[ir.Stmt]:
        b = self.body
        assert b is not None
        match s:
            case A.Let(name=name, type=t, value=value, in_ctx=in_ctx):
                if b.lookup(name) is not None:
                    self.d.error("E202", f"`{name}` is already declared in this function", s.span)
                    raise _Skip
                declared = self._type(t) if t is not None else None
                if _is_user_call(value, self):
                    call = self._call(value, in_ctx, s.span, want_value=True)
                    ty = declared or self._callee_ret(call)
                    if declared is not None:
                        self._check_assignable(declared, _Typed(self._callee_ret(call)), value.span, f"`{name}`")
                    local = b.declare(name, ty)
                    return [ir.Call(call.sid, call.callee, call.args, ir.LocalRef(local, s.span),
                                    call.kthread, call.kthread_cpu, s.span)]
                self._no_ctx(in_ctx)
                if isinstance(value, A.AnyLit) and declared is None:
                    self.d.error("E313", "`let x = any;` needs a type: `let x: int[0..3] = any;`", s.span)
                    raise _Skip
                e = self._expr(value, expect=declared, allow_any=isinstance(value, A.AnyLit))
                ty = declared or _widen(e.type)
                if isinstance(ty, (ir.VoidType, ir.NullType)):
                    self.d.error("E314", f"cannot infer the type of `{name}`; write `let {name}: TYPE = ...`",
                                 s.span)
                    raise _Skip
                self._check_assignable(ty, e, value.span, f"`{name}`")
                local = b.declare(name, ty)
                return [ir.Assign(next(self.sid), ir.LocalRef(local, s.span), e, s.span)]
            case A.Assign(target=target, op=op, value=value, in_ctx=in_ctx):
                lv = self._lvalue(target)
                if op == "=" and value is not None and _is_user_call(value, self):
                    call = self._call(value, in_ctx, s.span, want_value=True)
                    self._check_assignable(lv.type, _Typed(self._callee_ret(call)), value.span, _describe(target))
                    return [ir.Call(call.sid, call.callee, call.args, lv, call.kthread, call.kthread_cpu, s.span)]
                self._no_ctx(in_ctx)
                if op == "=":
                    assert value is not None
                    e = self._expr(value, expect=lv.type, allow_any=isinstance(value, A.AnyLit))
                else:
                    if not isinstance(lv.type, ir.IntType):
                        self.d.error("E315", f"`{op}` needs an int, and {_describe(target)} is `{lv.type}`", s.span)
                        raise _Skip
                    rhs = self._expr(value, expect=ir.INT) if value is not None else ir.Lit(1, ir.INT, "1")
                    if value is not None:
                        self._want(ir.INT, rhs, value.span, f"`{op}`")
                    e = ir.Binary("+" if op in ("+=", "++") else "-", lv, rhs, ir.INT, s.span)
                self._check_assignable(lv.type, e, s.span, _describe(target))
                return [ir.Assign(next(self.sid), lv, e, s.span)]
            case A.ExprStmt(expr=expr, in_ctx=in_ctx):
                if not isinstance(expr, A.Call):
                    self.d.error("E306", "this expression has no effect; only calls can be statements", s.span)
                    raise _Skip
                call = self._call(expr, in_ctx, s.span, want_value=False)
                return [call]
            case A.If(cond=cond, then=then, other=other):
                c = self._expr(cond, expect=ir.BOOL)
                self._want(ir.BOOL, c, cond.span, "`if`")
                if isinstance(c, ir.Lit) and isinstance(cond, A.Name) and cond.id in self.configs:
                    # `if CONFIG_OPTION { }` is decided at build time, like IS_ENABLED()
                    return list(self._block(then if c.value else (other or ())))
                return [ir.If(next(self.sid), c, self._block(then), self._block(other or ()), s.span)]
            case A.MayFail(reason=reason, then=then, other=other):
                # success first: of two shortest witnesses, the search keeps the one
                # without an injected failure that the finding does not need
                then_ir = self._block(then)
                return [ir.Choice(next(self.sid), "may_fail", reason, ("succeeds", "fails"),
                                  (self._block(other or ()), then_ir), s.span)]
            case A.Either(branches=branches):
                labels = tuple(f"branch {i + 1}" for i in range(len(branches)))
                return [ir.Choice(next(self.sid), "either", None, labels,
                                  tuple(self._block(br) for br in branches), s.span)]
            case A.Return(value=value):
                if value is None:
                    if not isinstance(b.ret, ir.VoidType):
                        self.d.error("E316", f"`{b.name}` must return {_a(b.ret)}", s.span)
                    return [ir.Return(next(self.sid), None, s.span)]
                if isinstance(b.ret, ir.VoidType):
                    self.d.error("E316", f"`{b.name}` returns nothing; write `return;`", s.span)
                    raise _Skip
                e = self._expr(value, expect=b.ret)
                self._check_assignable(b.ret, e, value.span, f"the result of `{b.name}`")
                return [ir.Return(next(self.sid), e, s.span)]
            case A.Await(cond=cond, waits=waits):
                c = self._expr(cond, expect=ir.BOOL)
                self._want(ir.BOOL, c, cond.span, "`await`")
                return [ir.Await(next(self.sid), c, tuple(self._wait(w) for w in waits), s.span)]
            case A.Require(cond=cond):
                c = self._expr(cond, expect=ir.BOOL)
                self._want(ir.BOOL, c, cond.span, "`require`")
                return [ir.Require(next(self.sid), c, s.span)]
            case A.Atomic(mechanism=mech, body=body):
                if b.in_atomic:
                    self.d.error("E408", "`atomic` blocks do not nest", s.span)
                    raise _Skip
                if not mech.strip():
                    self.d.error("E408", "`atomic` must cite the kernel mechanism that makes it atomic", s.span)
                b.in_atomic = True
                try:
                    inner = self._block(body)
                finally:
                    b.in_atomic = False
                for i, st in enumerate(inner):
                    if isinstance(st, ir.Await) and i != 0:
                        self.d.error("E408", "an `await` inside `atomic` must come first: it is the condition "
                                     "under which the block runs", st.span)
                self.atomics.append((mech, s.span))
                return [ir.Atomic(next(self.sid), mech, inner, s.span)]
            case A.Check(prop=prop, cond=cond, reach=reach):
                p = self.prop_decls.get(prop)
                stmt, want = ("cover", "cover NAME \"...\";") if reach else ("check", "event NAME \"...\";")
                if p is None:
                    self.d.error("E207", f"unknown property `{prop}`", s.span,
                                 help=did_you_mean(prop, self.prop_decls) or f"declare it: `{want}`")
                    raise _Skip
                if (p.kind, p.expr is None) != (("cover", True) if reach else ("event", True)):
                    what = "a cover goal declared without a condition" if reach else "an event property"
                    self.d.error("E317", f"`{stmt}` needs {what}, and `{prop}` is "
                                 + ("a cover goal with a condition" if p.kind == "cover" else _a_kind(p.kind)),
                                 s.span, notes=(Note(f"`{prop}` is declared here", p.span),),
                                 help=f"declare it: `{want}`")
                    raise _Skip
                b.reading = "check"
                try:
                    c = self._expr(cond, expect=ir.BOOL)
                finally:
                    b.reading = None
                self._want(ir.BOOL, c, cond.span, f"`{stmt}`")
                if reach:   # the goal is met where `!cond` fails, as an event's check does
                    c = ir.Unary("!", c, ir.BOOL, c.span)
                return [ir.Check(next(self.sid), prop, c, s.span)]
            case A.GhostStmt(stmt=inner):
                return [self._ghost(inner)]
            case A.ForCpu(var=var, where=where, body=body):
                return [self._loop(s, var, ir.CPU, where, body, lambda sid, local, w, stmts:
                                   ir.ForCpu(sid, local, w, stmts, s.span))]
            case A.Pick(var=var, where=where, body=body):
                return [self._loop(s, var, ir.CPU, where, body, lambda sid, local, w, stmts:
                                   ir.Pick(sid, local, w, stmts, s.span), loop=False)]
            case A.ForRange(type=tname, var=var, lo=lo, hi=hi, down=down, body=body):
                ty = self._type(A.TypeName(tname, s.span))
                if not isinstance(ty, (ir.EnumType, ir.CpuType)):
                    self.d.error("E311", f"`for` ranges over an enum or cpu, not `{ty}`", s.span)
                    raise _Skip
                lo_e = self._expr(lo, expect=ty)
                hi_e = self._expr(hi, expect=ty)
                self._want(ty, lo_e, lo.span, "the range")
                self._want(ty, hi_e, hi.span, "the range")
                return [self._loop(s, var, ty, None, body, lambda sid, local, w, stmts:
                                   ir.ForRange(sid, local, lo_e, hi_e, down, stmts, s.span))]
            case A.Break():
                if b.loops == 0:
                    self.d.error("E407", "`break` outside a loop", s.span)
                    raise _Skip
                return [ir.Break(next(self.sid), s.span)]
            case A.Ipi(cpu=cpu, body=body):
                c = self._expr(cpu, expect=ir.CPU)
                self._want(ir.CPU, c, cpu.span, "`ipi`")
                return [ir.Ipi(next(self.sid), c, self._block(body), s.span)]
            case A.Hold(release=release, lock=lock, mode=mode):
                if b.lock_class is None:
                    self.d.error("E406", f"`{'unhold' if release else 'hold'}` is only allowed in lock-class "
                                 "operations", s.span)
                    raise _Skip
                if mode is not None and mode not in MODES:
                    self.d.error("E415", f"unknown lock mode `{mode}`", s.span, help="modes are `read` and `write`")
                    raise _Skip
                e = self._expr(lock)
                if not isinstance(e.type, ir.LockType):
                    self.d.error("E318", f"`hold` needs a lock, not {_a(e.type)}", lock.span)
                    raise _Skip
                return [ir.Hold(next(self.sid), release, e, mode, s.span)]
        raise AssertionError(s)

    def _ghost(self, inner: A.Let | A.Assign) -> ir.Stmt:
        """NOTE(ghost): ghost code reads anything and writes only ghost state, so
        it cannot change what the kernel does; it is no scheduling point (model/
        blocks.py runs it with its context's adjacent step)."""
        b = self.body
        assert b is not None
        if inner.value is not None and _is_user_call(inner.value, self):
            self.d.error("E416", "ghost code cannot call functions", inner.span)
            raise _Skip
        b.reading = "ghost"
        try:
            [st] = self._stmt(inner)
        finally:
            b.reading = None
        assert isinstance(st, ir.Assign)
        target = st.target
        if isinstance(inner, A.Let):
            assert isinstance(target, ir.LocalRef)
            b.ghost_locals.add(target.local.slot)
        elif not ((isinstance(target, ir.VarRef) and target.var.ghost) or
                  (isinstance(target, ir.LocalRef) and target.local.slot in b.ghost_locals)):
            self.d.error("E417", f"ghost code can only write ghost state, and {_describe(inner.target)} is not "
                         "ghost", inner.span)
            raise _Skip
        self.ghost_sids.add(st.sid)
        return st

    def _ghost_reads(self, functions: list[ir.Function], actors: list[ir.Actor]) -> None:
        """NOTE(ghost): what ghost code writes, only ghost code and checks may read."""
        from tdxproof.model.wellformed import sub_exprs, walk_exprs, walk_stmts

        bodies = [f.body for f in functions] + [a.body for a in actors]
        written = {st.target.var.name for body in bodies for st in walk_stmts(body)
                   if st.sid in self.ghost_sids and isinstance(st, ir.Assign) and isinstance(st.target, ir.VarRef)}
        if not written:
            return
        for body in bodies:
            for st in walk_stmts(body):
                if st.sid in self.ghost_sids or isinstance(st, ir.Check):
                    continue
                for top in walk_exprs(st):
                    for e in sub_exprs(top):
                        if isinstance(e, ir.VarRef) and e.var.name in written:
                            self.d.error("E419", f"`{e.var.name}` is written by ghost code, so only ghost code "
                                         "and checks can read it", e.span or st.span)
                            written.discard(e.var.name)

    def _loop(self, s: Any, var: str, ty: ir.Type, where: A.Expr | None, body: tuple[A.Stmt, ...],
              make: Callable[..., ir.Stmt], loop: bool = True) -> ir.Stmt:
        b = self.body
        assert b is not None
        if b.lookup(var) is not None:
            self.d.error("E202", f"`{var}` is already declared in this function", s.span)
            raise _Skip
        b.scopes.append({})
        local = b.declare(var, ty)
        b.loop_vars.add(local.slot)
        w = None
        try:
            if where is not None:
                w = self._expr(where, expect=ir.BOOL)
                self._want(ir.BOOL, w, where.span, "`where`")
            if loop:
                b.loops += 1
            stmts = self._block(body)
        finally:
            if loop:
                b.loops -= 1
            b.scopes.pop()
        return make(next(self.sid), local, w, stmts)

    def _wait(self, w: A.Expr) -> ir.WaitFor:
        if (isinstance(w, A.Call) and isinstance(w.func, A.Name) and w.func.id in WAIT_FORMS
                and 1 <= len(w.args) <= 2):
            lock = self._expr(w.args[0])
            if not isinstance(lock.type, ir.LockType):
                self.d.error("E318", f"`{w.func.id}` needs a lock, not {_a(lock.type)}", w.args[0].span)
                raise _Skip
            mode = self._mode_arg(w.args[1]) if len(w.args) == 2 else None
            return ir.WaitFor(w.func.id, lock, mode, w.span)
        self.d.error("E319", "`waits for` takes `holders(LOCK[, MODE])` or `acquirers(LOCK[, MODE])`", w.span)
        raise _Skip

    def _mode_arg(self, e: A.Expr) -> str:
        if isinstance(e, A.Name) and e.id in MODES:
            return e.id
        self.d.error("E415", "a lock mode is `read` or `write`", e.span)
        raise _Skip

    def _no_ctx(self, in_ctx: A.InCtx | None) -> None:
        if in_ctx is not None:
            self.d.error("E320", "`in KTHREAD[cpu]` applies to a function call", in_ctx.span)
            raise _Skip

    def _callee_ret(self, call: ir.Call) -> ir.Type:
        ty = call.callee.type
        assert isinstance(ty, ir.FnType)
        return ty.ret

    def _call(self, e: A.Call, in_ctx: A.InCtx | None, span: Span, *, want_value: bool) -> ir.Call:
        b = self.body
        assert b is not None
        if isinstance(e.func, A.Name) and e.func.id in self.sigs and b.lookup(e.func.id) is None:
            sig = self.sigs[e.func.id]
            callee: ir.Expr = ir.FnRef(sig.name, sig.index, ir.FnType(sig.params, sig.ret), e.func.span)
        else:
            if isinstance(e.func, A.Name) and e.func.id in CALL_BUILTINS + WAIT_FORMS:
                self.d.error("E306", f"`{e.func.id}()` is a value; use it in an expression", e.span)
                raise _Skip
            callee = self._expr(e.func)
            if not isinstance(callee.type, ir.FnType):
                self.d.error("E321", f"{_describe(e.func)} is not a function", e.func.span)
                raise _Skip
        fty = callee.type
        assert isinstance(fty, ir.FnType)
        if b.in_atomic:
            self.d.error("E408", "no function calls inside `atomic`: a call is several steps", span)
            raise _Skip
        if len(e.args) != len(fty.params):
            self.d.error("E322", f"{_describe(e.func)} takes {len(fty.params)} argument"
                         f"{'s' if len(fty.params) != 1 else ''}, not {len(e.args)}", e.span)
            raise _Skip
        args = []
        for a, pty in zip(e.args, fty.params):
            arg = self._expr(a, expect=pty)
            self._check_assignable(pty, arg, a.span, "this argument")
            args.append(arg)
        if want_value and isinstance(fty.ret, ir.VoidType):
            self.d.error("E323", f"{_describe(e.func)} returns nothing", e.span)
            raise _Skip
        kthread, kcpu = None, None
        if in_ctx is not None:
            kthread = self.kthreads.get(in_ctx.kthread)
            if kthread is None:
                self.d.error("E201", f"unknown kthread `{in_ctx.kthread}`", in_ctx.span,
                             help=did_you_mean(in_ctx.kthread, self.kthreads))
                raise _Skip
            kcpu = self._expr(in_ctx.cpu, expect=ir.CPU)
            self._want(ir.CPU, kcpu, in_ctx.cpu.span, "the kthread's CPU")
        return ir.Call(next(self.sid), callee, tuple(args), None, kthread, kcpu, span)

    def _lvalue(self, t: A.Expr) -> ir.LValue:
        b = self.body
        assert b is not None
        match t:
            case A.Name(id=name):
                local = b.lookup(name)
                if local is not None:
                    if _is_loop_var(b, local):
                        self.d.error("E324", f"cannot assign to the loop variable `{name}`", t.span)
                        raise _Skip
                    return ir.LocalRef(local, t.span)
                if name == "irqs_off":
                    return ir.Builtin(ir.BuiltinOp.IRQS_OFF, (), None, ir.BOOL, t.span)
                if name in self.vars:
                    var = self.vars[name]
                    if var.indexed:
                        self.d.error("E325", f"`{name}` is an array; write `{name}[...]`", t.span)
                        raise _Skip
                    return ir.VarRef(var, None, t.span)
                if name in self.consts or name in self.members or name in self.sigs or name in self.locks:
                    self.d.error("E326", f"cannot assign to `{name}`: it is not a variable", t.span,
                                 notes=(Note(f"`{name}` is declared here", self.decl_at.get(name)),)
                                 if name in self.decl_at else ())
                    raise _Skip
                self._unknown(name, t.span)
            case A.Index() | A.Field():
                e = self._expr(t)
                if isinstance(e, (ir.VarRef, ir.FieldRef)):
                    return e
        self.d.error("E326", "the left side of `=` must be a variable", t.span)
        raise _Skip

    def _unknown(self, name: str, span: Span) -> None:
        if self.body is not None and name in self.body.poisoned:
            raise _Skip
        visible = [*self.consts, *self.members, *self.vars, *self.locks, *self.sigs, *self.preds,
                   *ZERO_ARG_BUILTINS]
        if self.body is not None:
            for scope in self.body.scopes:
                visible.extend(scope)
        for scope in self.qscope:
            visible.extend(scope)
        self.d.error("E201", f"unknown name `{name}`", span, help=did_you_mean(name, visible))
        raise _Skip

    # ------------------------------------------------------------ expressions
    def _expr(self, e: A.Expr, expect: ir.Type | None = None, allow_any: bool = False) -> ir.Expr:
        match e:
            case A.IntLit(value=v):
                return ir.Lit(v, ir.INT, str(v), e.span)
            case A.BoolLit(value=v):
                return ir.Lit(int(v), ir.BOOL, "true" if v else "false", e.span)
            case A.NullLit():
                return ir.Lit(0, ir.NULL, "null", e.span)
            case A.AnyLit():
                if not allow_any:
                    self.d.error("E307", "`any` is allowed only in initialisers and as `x = any;`", e.span)
                    raise _Skip
                if expect is None:
                    self.d.error("E313", "cannot tell which values `any` ranges over here", e.span)
                    raise _Skip
                return ir.AnyValue(expect, e.span)
            case A.SelfRef():
                local = self.body.lookup("self") if self.body else None
                if local is None:
                    self.d.error("E413", "`self` is only allowed in the operations of a lock class", e.span)
                    raise _Skip
                return ir.LocalRef(local, e.span)
            case A.Name(id=name):
                return self._name(name, e.span)
            case A.Index(base=A.Name(id=name), index=index) if name in self.lock_arrays and not (
                    self.body is not None and self.body.lookup(name) is not None):
                ity, elems = self.lock_arrays[name]
                idx = self._expr(index, expect=ity)
                self._want(ity, idx, index.span, f"the index of `{name}`")
                if not isinstance(idx, ir.Lit) and type(idx.type) is not type(ity) or (
                        isinstance(ity, ir.EnumType) and idx.type != ity):
                    # a `cpu` or enum value is in range by its type; an int could be any lock
                    self.d.error("E331", f"the index of `{name}` must be {_a(ity)}, not {_a(idx.type)}", index.span)
                    raise _Skip
                if isinstance(idx, ir.Lit):
                    if not 0 <= idx.value < len(elems):
                        self.d.error("E328", f"`{name}` has no lock {idx.value} (0..{len(elems) - 1})", index.span)
                        raise _Skip
                    return ir.LockRef(elems[idx.value], e.span)
                return ir.LockIndex(name, elems, idx, e.span)
            case A.Index(base=base, index=index):
                if not isinstance(base, A.Name) or base.id not in self.vars or (
                        self.body is not None and self.body.lookup(base.id) is not None):
                    self.d.error("E327", "only arrays (per-CPU or enum-indexed variables) can be indexed", base.span)
                    raise _Skip
                var = self.vars[base.id]
                if not var.indexed:
                    self.d.error("E327", f"`{var.name}` is not an array", base.span,
                                 notes=(Note(f"`{var.name}` is declared here", var.span),))
                    raise _Skip
                want = ir.CPU if var.per_cpu else var.dim
                assert want is not None
                idx = self._expr(index, expect=want)
                self._want(want, idx, index.span, f"the index of `{var.name}`")
                if isinstance(idx, ir.Lit) and var.per_cpu and not 0 <= idx.value < self.cpus:
                    self.d.error("E328", f"CPU {idx.value} does not exist: this run has {self.cpus} CPUs "
                                 f"(0..{self.cpus - 1})", index.span)
                    raise _Skip
                return ir.VarRef(var, idx, e.span)
            case A.Field(base=base, name=fname):
                lock = self._expr(base)
                if not isinstance(lock.type, ir.LockType):
                    self.d.error("E329", f"only locks have fields; this is {_a(lock.type)}", base.span)
                    raise _Skip
                fields = self.fields.get(lock.type.cls, {})
                if fname not in fields:
                    self.d.error("E201", f"lock class `{lock.type.cls}` has no field `{fname}`", e.span,
                                 help=did_you_mean(fname, fields))
                    raise _Skip
                return ir.FieldRef(lock, lock.type.cls, fields[fname], e.span)
            case A.Call(func=A.Name(id=fname), args=args) if fname in CALL_BUILTINS and (
                    self.body is None or self.body.lookup(fname) is None):
                return self._builtin_call(fname, args, e.span)
            case A.Call(func=func):
                if isinstance(func, A.Name) and func.id in self.sigs:
                    self.d.error("E304", f"`{func.id}` is called inside an expression; a call is its own step: "
                                 f"`let r = {func.id}(...);`", e.span)
                elif isinstance(func, A.Name) and func.id in WAIT_FORMS:
                    self.d.error("E319", f"`{func.id}(...)` names whom an `await` waits for; use it after "
                                 "`waits for`", e.span)
                else:
                    self.d.error("E304", "calls are statements, not values", e.span)
                raise _Skip
            case A.Unary(op="!", operand=x):
                v = self._expr(x, expect=ir.BOOL)
                self._want(ir.BOOL, v, x.span, "`!`")
                return ir.Unary("!", v, ir.BOOL, e.span)
            case A.Unary(op="-", operand=x):
                v = self._expr(x, expect=ir.INT)
                self._want(ir.INT, v, x.span, "`-`")
                if isinstance(v, ir.Lit):
                    return ir.Lit(-v.value, ir.INT, f"-{v.text}", e.span)
                return ir.Unary("-", v, ir.INT, e.span)
            case A.Binary(op=op, left=l, right=r):
                return self._binary(op, l, r, e.span, allow_any)
            case A.Cond(cond=c, then=t, other=o):
                ce = self._expr(c, expect=ir.BOOL)
                self._want(ir.BOOL, ce, c.span, "`?:`")
                te = self._expr(t, expect=expect, allow_any=allow_any)
                oe = self._expr(o, expect=expect or te.type, allow_any=allow_any)
                if not ir.same_kind(te.type, oe.type):
                    self.d.error("E301", f"the branches of `?:` have different types: `{te.type}` and `{oe.type}`",
                                 e.span)
                    raise _Skip
                ty = te.type if not isinstance(te.type, ir.NullType) else oe.type
                return ir.CondExpr(ce, te, oe, _widen(ty), e.span)
            case A.Quant(kind=kind, var=var, body=body):
                q = ir.QVar(var, next(self.qid), ir.CPU)
                self.qscope.append({var: q})
                try:
                    be = self._expr(body, expect=ir.BOOL)
                    self._want(ir.BOOL, be, body.span, f"`{kind}`")
                finally:
                    self.qscope.pop()
                ty = ir.IntType(0, self.cpus) if kind == "count" else ir.BOOL
                return ir.Quant(ir.QuantKind(kind), q, be, ty, e.span)
        raise AssertionError(e)

    def _name(self, name: str, span: Span) -> ir.Expr:
        for scope in reversed(self.qscope):
            if name in scope:
                return ir.QVarRef(scope[name], span)
        if self.body is not None:
            local = self.body.lookup(name)
            if local is not None:
                if local.slot in self.body.ghost_locals and self.body.reading is None:
                    self.d.error("E418", f"`{name}` is a ghost local: only ghost code and checks can read it",
                                 span)
                    raise _Skip
                return ir.LocalRef(local, span)
        if name in self.actor_cpu:
            return ir.Lit(self.actor_cpu[name], ir.CPU, str(self.actor_cpu[name]), span)
        if name in self.consts:
            c = self.consts[name]
            return ir.Lit(c.value, c.type, name, span)
        if name in self.members:
            m = self.members[name]
            return ir.Lit(m.value, m.type, name, span)
        if name in self.vars:
            var = self.vars[name]
            if var.indexed:
                self.d.error("E325", f"`{name}` is an array; write `{name}[...]`", span)
                raise _Skip
            return ir.VarRef(var, None, span)
        if name in self.locks:
            return ir.LockRef(self.locks[name], span)
        if name in self.lock_arrays:
            self.d.error("E325", f"`{name}` is an array of locks; write `{name}[...]`", span)
            raise _Skip
        if name in self.sigs:
            sig = self.sigs[name]
            return ir.FnRef(name, sig.index, ir.FnType(sig.params, sig.ret), span)
        if name in self.preds:
            return ir.PredRef(self.preds[name], span)
        if name in ZERO_ARG_BUILTINS:
            op, ty = ZERO_ARG_BUILTINS[name]
            return ir.Builtin(op, (), None, ty, span)
        if name in MODES:
            self.d.error("E415", f"the lock mode `{name}` is only meaningful as the second argument of "
                         "`held`, `holders` or `acquirers`", span)
            raise _Skip
        self._unknown(name, span)
        raise AssertionError

    def _builtin_call(self, fname: str, args: tuple[A.Expr, ...], span: Span) -> ir.Expr:
        if fname == "pkg":
            if len(args) != 1:
                self.d.error("E322", "`pkg` takes 1 argument (a CPU)", span)
                raise _Skip
            c = self._expr(args[0], expect=ir.CPU)
            self._want(ir.CPU, c, args[0].span, "`pkg`")
            return ir.Builtin(ir.BuiltinOp.PKG, (c,), None, ir.INT, span)
        if not 1 <= len(args) <= 2:
            self.d.error("E322", f"`{fname}` takes a lock and optionally a mode", span)
            raise _Skip
        lock = self._expr(args[0])
        if not isinstance(lock.type, ir.LockType):
            self.d.error("E318", f"`{fname}` needs a lock, not {_a(lock.type)}", args[0].span)
            raise _Skip
        mode = self._mode_arg(args[1]) if len(args) == 2 else None
        if fname == "held":
            return ir.Builtin(ir.BuiltinOp.HELD, (lock,), mode, ir.BOOL, span)
        return ir.Builtin(ir.BuiltinOp.HOLDERS, (lock,), mode, ir.IntType(0, 64), span)

    def _binary(self, op: str, l: A.Expr, r: A.Expr, span: Span, allow_any: bool) -> ir.Expr:
        if op in ("->", "||", "&&"):
            le = self._expr(l, expect=ir.BOOL, allow_any=allow_any)
            re_ = self._expr(r, expect=ir.BOOL, allow_any=allow_any)
            self._want(ir.BOOL, le, l.span, f"`{op}`")
            self._want(ir.BOOL, re_, r.span, f"`{op}`")
            return ir.Binary(op, le, re_, ir.BOOL, span)
        le = self._expr(l)
        re_ = self._expr(r, expect=le.type)
        if op in ("==", "!="):
            if not ir.same_kind(le.type, re_.type):
                self.d.error("E301", f"cannot compare `{le.type}` with `{re_.type}`", span)
                raise _Skip
            return ir.Binary(op, le, re_, ir.BOOL, span)
        if op in ("<", "<=", ">", ">="):
            ok = (isinstance(le.type, (ir.IntType, ir.CpuType)) and isinstance(re_.type, (ir.IntType, ir.CpuType))) \
                or (isinstance(le.type, ir.EnumType) and le.type == re_.type)
            if not ok:
                self.d.error("E301", f"cannot order `{le.type}` and `{re_.type}`", span)
                raise _Skip
            return ir.Binary(op, le, re_, ir.BOOL, span)
        # + -; an enumerator plus or minus an int stays in its enum (`s - 1`)
        if isinstance(le.type, ir.EnumType) and isinstance(re_.type, ir.IntType):
            return ir.Binary(op, le, re_, le.type, span)
        for x, src in ((le, l), (re_, r)):
            if not isinstance(x.type, (ir.IntType, ir.CpuType)):
                self.d.error("E302", f"`{op}` needs numbers, not `{x.type}`", src.span)
                raise _Skip
        return ir.Binary(op, le, re_, ir.INT, span)

    # ------------------------------------------------------------ type checks
    def _want(self, ty: ir.Type, e: ir.Expr, span: Span, where: str) -> None:
        if not ir.same_kind(ty, e.type):
            self.d.error("E303", f"{where} needs {_a(ty)}, but this is {_a(e.type)}", span)
            raise _Skip

    def _check_assignable(self, ty: ir.Type, e: "ir.Expr | _Typed", span: Span, what: str) -> None:
        ety = e.type
        if isinstance(ety, ir.VoidType):
            self.d.error("E323", "this returns nothing", span)
            raise _Skip
        if not ir.same_kind(ty, ety):
            self.d.error("E303", f"{what} is {_a(ty)}, but this is {_a(ety)}", span)
            raise _Skip
        if isinstance(e, ir.Lit) and isinstance(ty, ir.IntType) and isinstance(ety, ir.IntType) \
                and not ty.lo <= e.value <= ty.hi:
            self.d.error("E330", f"{e.value} is out of range for {what} ({ty})", span)
            raise _Skip
        if isinstance(e, ir.Lit) and isinstance(ty, ir.CpuType) and isinstance(ety, ir.IntType) \
                and not 0 <= e.value < self.cpus:
            self.d.error("E328", f"CPU {e.value} does not exist: this run has {self.cpus} CPUs", span)
            raise _Skip


@dataclass(frozen=True)
class _Typed:
    type: ir.Type


def _default(ty: ir.Type) -> ir.Expr:
    match ty:
        case ir.IntType(lo=lo, hi=hi):
            v = 0 if lo <= 0 <= hi else lo
            return ir.Lit(v, ty, str(v))
        case ir.EnumType(members=members):
            return ir.Lit(0, ty, members[0])
        case ir.FnType():
            return ir.Lit(0, ir.NULL, "null")
        case ir.BoolType():
            return ir.Lit(0, ty, "false")
        case _:
            return ir.Lit(0, ty, "0")


def _widen(ty: ir.Type) -> ir.Type:
    return ir.INT if isinstance(ty, ir.IntType) else ty


def _is_user_call(e: A.Expr, lw: Lowerer) -> bool:
    if not isinstance(e, A.Call):
        return False
    if isinstance(e.func, A.Name) and e.func.id in CALL_BUILTINS + WAIT_FORMS:
        return lw.body is not None and lw.body.lookup(e.func.id) is not None
    return True


def _is_loop_var(b: _Body, local: ir.Local) -> bool:
    return local.slot in b.loop_vars


def _falls_through(stmts: tuple[ir.Stmt, ...]) -> bool:
    """May control reach the end of this statement list?"""
    for s in stmts:
        if not _stmt_falls_through(s):
            return False
    return True


def _stmt_falls_through(s: ir.Stmt) -> bool:
    match s:
        case ir.Return():
            return False
        case ir.If(then=t, other=o):
            return _falls_through(t) or _falls_through(o)
        case ir.Choice(branches=brs):
            return any(_falls_through(b) for b in brs)
        case ir.Atomic(body=body) | ir.Ipi(body=body) | ir.Pick(body=body):
            return _falls_through(body)
    return True


def _describe(e: A.Expr) -> str:
    match e:
        case A.Name(id=name):
            return f"`{name}`"
        case A.Index(base=A.Name(id=name)):
            return f"`{name}[...]`"
        case A.Field(name=name):
            return f"field `{name}`"
    return "this"


def _a(ty: ir.Type) -> str:
    text = str(ty)
    if isinstance(ty, ir.VoidType):
        return "nothing"
    return f"{'an' if text[0] in 'aeiou' else 'a'} `{text}`"


def _a_kind(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def lower_policy(path: str, *, cpus: int | None = None, text: str | None = None,
                 texts: Mapping[str, str] | None = None) -> tuple[ir.Model, Loaded, tuple[Diagnostic, ...]]:
    """Load, resolve, type and check a policy; raise PolicyError with every diagnostic.
    Returns the model, the loaded sources (for rendering) and the warnings."""
    from tdxproof.model.wellformed import check_wellformed

    loaded = load_policy(path, text, texts)
    lowerer = Lowerer(loaded, cpus)
    try:
        model = check_wellformed(lowerer.run(), lowerer.d)
    except PolicyError as exc:
        exc.sources = loaded.sources  # type: ignore[attr-defined]
        raise
    return model, loaded, lowerer.d.warnings()
