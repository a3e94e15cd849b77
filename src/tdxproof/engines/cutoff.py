"""`--cpus any`: a proof for every number of CPUs, by a cutoff (docs/every-n.md).

The lifted templates of engines/lift.py are read as universally quantified
lemmas ("for all distinct CPUs c < d: ..."). For a policy in the fragment
checked by `fragment()` -- CPUs compared only with each other and with the boot
CPU, no quantifier alternation a step or a blocked task needs, per-CPU tasks
holding no CPU but their own or the boot CPU -- the small-model property of
such ∃*∀* conditions gives a bound W: if the lemmas are initial, inductive and
imply the properties at every N from 2 to W, they are at every N. So the same
templates are checked with Z3 at each N ≤ W on that N's encoding (Houdini over
templates: an instance that fails at any N drops its template at every N), and
"proved (every N ≥ 2)" is printed only after `induction.recheck()` accepts the
instances at each of those N.

What makes W (`bound()`): the boot CPU; the CPUs the actors' slots can hold in
one state (what a step writes is built from those, the stepping CPU and the
witnesses); the stepping CPU; one per quantifier (or hidden quantifier: a lock
holder, a task with interrupts off) the step's conditions need a witness for;
the CPUs of the broken lemma. Everything the theorem needs of the policy is
checked here, and a policy outside the fragment is told why, with the source
position.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from tdxproof.diagnostics import InternalError
from tdxproof.encode.concrete import ConcreteSystem
from tdxproof.encode.param import MAX_N, Unsupported, encode_param
from tdxproof.encode.flatten import flatten
from tdxproof.encode.system import Encoding, encode
from tdxproof.encode.vocab import MODEL_ERROR, NO_PC
from tdxproof.engines.induction import (Certificate, Lemma, Reach, _bad, _failing_steps, _or, cpu_slots, learn,
                                        only_undecided, recheck, render_value)
from tdxproof.engines.lift import (CPU, MIXED, OTHER, AtN, Kinds, Lifter, Projector, Template, Values, _start_of,
                                   _Undecided, instance_starts, slot_names)
from tdxproof.engines.param import Repair, Undecided, prove_symbolic
from tdxproof.interp.explore import no_cyclic_gc
from tdxproof.model import ir
from tdxproof.model.blocks import continue_phase, phase_after
from tdxproof.results import Proof, PropertyResult, Verdict

FIRST = 2            # the smallest N of the family: the boot CPU and one that can go offline
MAX_CUTOFF = 12      # past this, checking every N up to the bound costs more than it is worth today
# repairs before giving up: each is a solver call at every N checked, and a
# property that fails at some larger N keeps offering counterexamples
MAX_REPAIRS_EVERY_N = 60
GARBAGE = 64         # a CPU slot's value at or above this is no CPU at any N (`cpus` is at most 64)
FORMAT = "tdxproof-every-n/1"
CUTOFF, SYMBOLIC = "cutoff", "symbolic"   # how a certificate is checked: per N up to the cutoff, or once for every N


class Alternation(Exception):
    """A quantifier whose witness would depend on a universally quantified CPU."""


# ---------------------------------------------------------------- the fragment

@dataclass
class Fragment:
    problems: list[tuple[object, str]] = field(default_factory=list)   # (span, why)
    step: int = 0             # witnesses one step's conditions need (max over tasks)
    deadlock: int | None = 0  # witnesses a deadlocked state needs (None: outside the fragment)
    prop_pos: dict[str, int] = field(default_factory=dict)   # a property assumed: its ∃ witnesses
    prop_neg: dict[str, int] = field(default_factory=dict)   # a property broken: its witnesses
    per_cpu_tasks: bool = False

    def say(self, span, why: str) -> None:
        if all(w != why for _, w in self.problems):
            self.problems.append((span, why))


def _pos(span) -> str:
    if span is None or not getattr(span, "line", 0):
        return ""
    return f"{span}: "


class _Witness:
    """How many CPUs an expression's truth (or falsity) needs named, in negation
    normal form: an `exists` (a `forall` under `!`) names one, a `forall` names
    none but may not contain one that does (∀∃ has no small model)."""

    def __init__(self, model: ir.Model, frag: Fragment):
        self.model, self.frag = model, frag

    def __call__(self, e: ir.Expr, positive: bool, under_forall: frozenset = frozenset()) -> int:
        """`under_forall`: the CPU variables bound by an enclosing `forall` (a
        quantifier's, or a loop's cursor where the CPUs it skips are meant)."""
        match e:
            case ir.Unary(op="!", operand=x):
                return self(x, not positive, under_forall)
            case ir.Unary(operand=x):
                self._no_cpu_arith(e, x)
                return self(x, positive, under_forall)
            case ir.Binary(op=op, left=a, right=b) if op in ("&&", "||"):
                return self(a, positive, under_forall) + self(b, positive, under_forall)
            case ir.Binary(op="->", left=a, right=b):
                return self(a, not positive, under_forall) + self(b, positive, under_forall)
            case ir.Binary(op=op, left=a, right=b):
                hidden = self._holders(e)
                if hidden is not None:
                    exists = hidden if positive else not hidden
                    if exists and under_forall:
                        raise Alternation(e)
                    return 1 if exists else 0
                self._cpu_compare(e)
                # both sides may be read in either polarity (`a == b` of bools)
                return sum(self(x, p, under_forall) for x in (a, b) for p in (True, False))
            case ir.CondExpr(cond=c, then=t, other=o):
                return (self(c, True, under_forall) + self(c, False, under_forall) +
                        self(t, positive, under_forall) + self(o, positive, under_forall))
            case ir.Quant(kind=kind, qvar=q, body=body):
                if not isinstance(q.type, ir.CpuType):
                    size = len(q.type.members) if isinstance(q.type, ir.EnumType) else 2
                    return size * self(body, positive, under_forall)
                if kind is ir.QuantKind.COUNT:
                    self.frag.say(e.span, "`count cpu` counts CPUs: no bound on N keeps the count")
                    return 0
                exists = (kind is ir.QuantKind.EXISTS) == positive
                if exists:
                    if under_forall:
                        return self._least(e, under_forall)
                    return 1 + self(body, positive)
                return self(body, positive, under_forall | {_key(q)})
            case ir.Builtin(op=ir.BuiltinOp.NR_CPUS):
                self.frag.say(e.span, "`nr_cpus` names the number of CPUs")
                return 0
            case ir.Builtin(op=ir.BuiltinOp.PKG) if self.model.packages > 1:
                self.frag.say(e.span, f"`pkg()` with `packages {self.model.packages}`: which CPUs share a "
                              "package depends on N")
                return 0
            case ir.Builtin(op=ir.BuiltinOp.HOLDERS):
                self.frag.say(e.span, "`holders()` used as a number (only `holders(L) == 0` and `!= 0` are "
                              "first-order over the tasks)")
                return 0
            case ir.Builtin(args=args):
                return sum(self(x, p, under_forall) for x in args for p in (True, False))
            case ir.PredRef(pred=p):
                return self(p.expr, positive, under_forall)
            case ir.VarRef(index=i) if i is not None:
                return self(i, True, under_forall) + self(i, False, under_forall)
            case ir.FieldRef(lock=lk):
                return self(lk, True, under_forall)
            case ir.Lit(value=v, type=ir.CpuType()) if v != 0:
                self.frag.say(e.span, f"the CPU literal `{v}` names a CPU other than the boot CPU")
                return 0
        return 0

    def _least(self, e: ir.Quant, bound: frozenset) -> int:
        """`exists cpu j: j < k && P(j)` under `forall k`, P not naming k: its
        witness can be the least j with P(j) (the greatest, for `j > k`), one
        CPU for every k -- defined by P(m) and `forall j < m: !P(j)`. Any other
        ∃ under a ∀ is an alternation."""
        if e.kind is not ir.QuantKind.EXISTS:
            raise Alternation(e)
        j = _key(e.qvar)
        rest, order = [], []
        for t in _conjuncts(e.body):
            if self._trivial(t):
                continue
            named = _names(t) & bound
            if not named:
                rest.append(t)
            elif isinstance(t, ir.Binary) and t.op in ("<", "<=", ">", ">=") and \
                    {_ref_key(t.left), _ref_key(t.right)} == {j} | named and len(named) == 1:
                order.append(t)
            else:
                raise Alternation(e)
        if len(order) > 1:
            raise Alternation(e)
        n = 1
        for t in rest:
            n += self(t, True) + self(t, False, frozenset({j}))
        return n

    def _trivial(self, t: ir.Expr) -> bool:
        """`pkg(a) == pkg(b)` with one package is true."""
        return (self.model.packages == 1 and isinstance(t, ir.Binary) and t.op == "==" and
                all(isinstance(x, ir.Builtin) and x.op is ir.BuiltinOp.PKG for x in (t.left, t.right)))

    def _holders(self, e: ir.Binary) -> bool | None:
        """`holders(L) == 0` is a `forall` over the tasks (False), `holders(L) != 0`
        or `> 0` an `exists` (True); None if `e` is not such a test."""
        a, b = e.left, e.right
        if isinstance(b, ir.Builtin) and b.op is ir.BuiltinOp.HOLDERS:
            a, b = b, a
            flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
            op = flip.get(e.op, e.op)
        else:
            op = e.op
        if not (isinstance(a, ir.Builtin) and a.op is ir.BuiltinOp.HOLDERS):
            return None
        if isinstance(b, ir.Lit) and b.value == 0 and op in ("==", "<="):
            return False
        if isinstance(b, ir.Lit) and b.value == 0 and op in ("!=", ">"):
            return True
        self.frag.say(e.span, "`holders()` compared with something other than 0 counts the tasks")
        return False

    def _no_cpu_arith(self, e, x) -> None:
        if isinstance(getattr(x, "type", None), ir.CpuType):
            self.frag.say(e.span, "arithmetic on a CPU: only comparisons keep the CPUs interchangeable")

    def _cpu_compare(self, e: ir.Binary) -> None:
        a, b = e.left, e.right
        ta, tb = getattr(a, "type", None), getattr(b, "type", None)
        cpu_a, cpu_b = isinstance(ta, ir.CpuType), isinstance(tb, ir.CpuType)
        if not (cpu_a or cpu_b):
            return
        if e.op in ("+", "-", "*", "/", "%"):
            self.frag.say(e.span, "arithmetic on a CPU: only comparisons keep the CPUs interchangeable")
            return
        other = b if cpu_a else a
        if cpu_a and cpu_b:
            return
        if isinstance(other, ir.Lit) and other.value == 0:
            return
        self.frag.say(e.span, "a CPU compared with a number other than 0 (the boot CPU)")


def _key(q: ir.QVar | ir.Local) -> tuple:
    return ("q", q.id) if isinstance(q, ir.QVar) else ("l", q.name, q.slot)


def _ref_key(e: ir.Expr) -> tuple | None:
    if isinstance(e, ir.QVarRef):
        return _key(e.qvar)
    if isinstance(e, ir.LocalRef):
        return _key(e.local)
    return None


def _conjuncts(e: ir.Expr) -> list[ir.Expr]:
    if isinstance(e, ir.Binary) and e.op == "&&":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _names(e) -> set:
    """The quantified CPUs and locals `e` reads."""
    out: set = set()
    stack = [e]
    while stack:
        x = stack.pop()
        k = _ref_key(x) if isinstance(x, (ir.QVarRef, ir.LocalRef)) else None
        if k is not None:
            out.add(k)
            continue
        if isinstance(x, ir.PredRef):
            stack.append(x.pred.expr)
            continue
        for f in getattr(x, "__slots__", ()):
            v = getattr(x, f, None)
            if isinstance(v, tuple):
                stack.extend(y for y in v if hasattr(y, "__slots__"))
            elif hasattr(v, "__slots__") and not isinstance(v, (ir.Var, ir.Lock, ir.Local, ir.Field)):
                stack.append(v)
    return out


def _exprs_of(s: ir.Stmt) -> list[ir.Expr]:
    match s:
        case ir.Assign(target=t, value=v):
            return [v] + ([t.index] if isinstance(t, ir.VarRef) and t.index is not None else [])
        case ir.Call(args=args, kthread_cpu=c):
            return list(args) + ([c] if c is not None else [])
        case ir.Return(value=v):
            return [v] if v is not None else []
        case ir.Ipi(cpu=c):
            return [c]
        case ir.Hold(lock=lk):
            return [lk]
    return []


def fragment(model: ir.Model, other: ir.Model) -> Fragment:
    """Whether the cutoff theorem of docs/every-n.md applies to `model` (lowered at
    one N; `other` is the same policy lowered at another N), and the witness
    counts the bound needs."""
    frag = Fragment()
    wit = _Witness(model, frag)
    for a, b in zip(model.vars, other.vars):
        if a.type != b.type:
            frag.say(a.span, f"the type of `{a.name}` depends on the number of CPUs")
    if any(lk.per_cpu for lk in model.locks):
        frag.say(None, "an array of locks indexed by CPU has as many locks as CPUs")
    for a in model.actors:
        pin = a.on_cpu
        if pin is not None and not (isinstance(pin, ir.Lit) and pin.value == 0):
            frag.say(a.span, f"actor `{a.name}` is pinned to a CPU other than the boot CPU")
    actors, kthreads = flatten(model)
    actors2, kthreads2 = flatten(other)
    autos, autos2 = actors + list(kthreads.values()), actors2 + list(kthreads2.values())
    shape = [[(n.op, n.mover, n.blocking) for n in x.nodes] for x in autos]
    if shape != [[(n.op, n.mover, n.blocking) for n in x.nodes] for x in autos2]:
        frag.say(None, "the program's blocks depend on the number of CPUs")
    for f, g in zip(model.functions, other.functions):
        for a, b in zip(f.locals, g.locals):
            if a.type != b.type:
                frag.say(f.span, f"the type of `{a.name}` in `{f.name}` depends on the number of CPUs")
    frag.per_cpu_tasks = any(x.kind == "kthread" for x in autos)
    dead_global = 0
    for auto in autos:
        weight, worst_block = {}, 0
        for node in auto.nodes:
            s = node.stmt
            weight[node.id] = 0
            if s is None:
                continue
            try:
                weight[node.id] = _node_witnesses(node, s, wit, frag)
                blocked = _blocked_witnesses(node, s, wit)
            except Alternation as exc:
                e = exc.args[0]
                frag.say(getattr(e, "span", None) or s.span,
                         "a quantifier whose witness depends on another CPU (∀∃: no small model)")
                continue
            if blocked is not None:
                if auto.kind == "kthread" and blocked > 0:
                    frag.deadlock = None      # ∀ per-CPU tasks ∃ a holder: no small model
                worst_block = max(worst_block, blocked)
        frag.step = max(frag.step, _heaviest_block(auto, weight))
        if auto.kind != "kthread":
            dead_global += worst_block       # what its blocked condition names
    if frag.deadlock is not None:
        # a member of the blocked set, and a task that keeps a blocked task's CPU's
        # interrupts off (NOTE(deadlock)): on CPU x that is an actor, or x's own
        # per-CPU task, or one of any CPU in an IPI to x -- and by the closure
        # lemmas a per-CPU task's IPI goes to its own CPU or the boot CPU, so one
        # witness (for the boot CPU) covers every blocked task
        frag.deadlock = 1 + dead_global + int(frag.per_cpu_tasks)
    quiescent = model.predicate("quiescent")
    for p in model.properties:
        if p.expr is None:
            continue
        try:
            # `at quiescent`: `quiescent -> expr`
            q = (wit(quiescent.expr, True) + wit(quiescent.expr, False)
                 if p.observe is ir.Observe.QUIESCENT and quiescent is not None else 0)
            frag.prop_pos[p.name] = q + wit(p.expr, True)
            frag.prop_neg[p.name] = q + wit(p.expr, False)
        except Alternation:
            frag.say(p.span, f"property `{p.name}` nests quantifiers of both kinds (∀∃: no small model)")
    return frag


def _heaviest_block(auto, weight: dict[int, int], per_node: dict[int, int] | None = None) -> int:
    """The most witnesses one block path of `auto` needs: the heaviest walk from
    any node that joins the statements after it by the rule the encoder's block
    paths follow (blocks.continue_phase, NOTE(blocks)). Every node is taken as a
    possible start, so this bounds every block."""
    nodes = auto.nodes
    memo: dict[tuple[int, int], int] = {}

    def succ(n) -> list[int]:
        out = list(n.succ) + [t for t in (n.target, n.alt) if t >= 0] + [c for _, c in n.choices]
        out += [entry for _, entry, _ in n.callees]
        if n.op == "end" and n.ret is not None:
            out.append(n.ret[0])
        return [x for x in out if 0 <= x < len(nodes)]

    def best(i: int, phase: int) -> int:
        key = (i, phase)
        if key in memo:
            if memo[key] < 0:
                raise InternalError(f"{auto.name}: a block path that never ends")
            return memo[key]
        memo[key] = -1
        more = 0
        for j in succ(nodes[i]):
            m = nodes[j]
            nxt = continue_phase(m.mover, m.blocking, phase)
            if nxt is not None:
                more = max(more, best(j, nxt))
        memo[key] = weight.get(i, 0) + more
        return memo[key]

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10 * len(nodes) + 1000))
    try:
        top = 0
        for n in nodes:
            kind = (n.first or "N") if n.mover in ("cut", "restart") else n.mover
            b = best(n.id, phase_after(kind))
            top = max(top, b)
            if per_node is not None:
                per_node[n.id] = b
        return top
    finally:
        sys.setrecursionlimit(old)


def _node_witnesses(node, s: ir.Stmt, wit: _Witness, frag: Fragment) -> int:
    """The witnesses a block path through `node` needs (either way it goes)."""
    # the CPU a loop advance or a `pick` chooses: named even when no slot keeps it
    n = 1 if node.op in ("for_first", "for_next", "pick") else 0
    if getattr(node, "blocking", False):
        # a block path may also stop here (the statement cannot run yet), its guard
        # then saying so -- perhaps because a task with interrupts off holds the CPU
        n += 1
    match s:
        case ir.If(cond=c) | ir.Check(cond=c) | ir.Await(cond=c) | ir.Require(cond=c):
            n += max(wit(c, True), wit(c, False))
        case ir.ForCpu(where=w, var=v) | ir.Pick(where=w, var=v) if w is not None:
            # the CPU chosen satisfies `where`; every CPU skipped (a loop) or,
            # when nothing can be picked, every CPU, does not: a `forall` of `!where`
            n += wit(w, True) + wit(w, False, frozenset({_key(v)}))
        case ir.Atomic(body=body):
            first = True
            for x in body:
                if isinstance(x, ir.Await) and first:
                    n += max(wit(x.cond, True), wit(x.cond, False))
                else:
                    n += _node_witnesses(node, x, wit, frag)
                first = False
        case ir.ForRange(var=v, lo=lo, hi=hi):
            if isinstance(v.type, ir.CpuType):
                frag.say(s.span, "a range loop over CPUs walks them by number")
            n += sum(wit(x, p) for x in (lo, hi) for p in (True, False))
    for e in _exprs_of(s):
        n += wit(e, True) + wit(e, False)
    return n


def _blocked_witnesses(node, s: ir.Stmt, wit: _Witness) -> int | None:
    """The witnesses "this task is blocked here" needs, or None if it cannot block here."""
    match s:
        case ir.Await(cond=c) | ir.Require(cond=c):
            return wit(c, False)
        case ir.Atomic(body=body) if body and isinstance(body[0], ir.Await):
            return wit(body[0].cond, False)
        case ir.Pick(where=w, var=v):
            return 0 if w is None else wit(w, False, frozenset({_key(v)}))
    return 0 if getattr(node, "blocking", False) else None


# ---------------------------------------------------------------- templates fit for every N

def uniform(t: Template, kinds: Kinds, names0: dict[str, str]) -> bool:
    """A template means the same thing at every N: its CPU values are CPU letters,
    the boot CPU, "any other CPU" or values no N makes a CPU; and no literal reads
    a slot that holds a CPU at some program points and a number at others through
    a value set (the number would be renamed with the CPUs)."""
    for var, who, vals in t.lits:
        name0 = var if who is None else names0.get(var)
        if name0 is None:
            return False
        kind = kinds.of.get(name0, OTHER)
        if kind == MIXED:
            return False
        if kind == CPU and any(0 < x < GARBAGE for x in vals.fixed):
            return False
    return True


def first_names(slots0: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Per-CPU template -> a variable of N0 it names (any CPU's copy: they share
    their kind)."""
    out: dict[str, str] = {}
    for name, (t, _) in slots0.items():
        out.setdefault(t, name)
    return out


def closure_templates(enc0: Encoding, kinds: Kinds) -> list[Template]:
    """For every slot of a per-CPU task that may hold a CPU: "it holds the boot CPU
    or its own" (the theorem needs these; Houdini decides if they hold)."""
    out, seen = [], set()
    for name, (tmpl, cpu) in cpu_slots(enc0).items():
        if cpu != 1 or tmpl in seen:
            continue
        seen.add(tmpl)
        kind = kinds.of.get(name, OTHER)
        if kind == CPU:
            out.append(Template("never", ((tmpl, 0, Values((), (), True)),), 1))
        elif kind == MIXED and name not in kinds.local:
            out.append(Template("never", ((tmpl, 0, Values((), (), True)),), 1))
        elif kind == MIXED:
            pcvar, k = kinds.local[name]
            nodes = kinds.by_pc[pcvar]
            pcs = tuple(i for i, m in enumerate(nodes) if m.get(k) == CPU)
            pct = cpu_slots(enc0)[pcvar][0]
            if pcs:
                out.append(Template("never", ((pct, 0, Values(pcs)), (tmpl, 0, Values((), (), True))), 1))
    return out


# ---------------------------------------------------------------- the bound

def _owners(enc: Encoding, slots: list[str]) -> dict[str | None, list[str]]:
    """The global CPU slots by the actor they belong to (None: shared variables)."""
    names = [c.name for c in enc.vocab.contexts if c.kthread is None]
    out: dict[str | None, list[str]] = {}
    for n in slots:
        owner = next((c for c in names if n.endswith(f"[{c}]")), None)
        out.setdefault(owner, []).append(n)
    return out


def busy_lower(enc: Encoding, states, slots: list[str]) -> tuple[int, set[str]]:
    """A lower bound on `busy_bound` of any certificate: in reachable states (which
    satisfy every invariant), the most non-boot CPUs each actor's slots hold at
    once, plus the shared slots that ever hold one."""
    at = {name: i for i, name in enumerate(enc.vocab.names)}
    busy: set[str] = set()
    total = 0
    for owner, mine in _owners(enc, slots).items():
        idx = [at[n] for n in mine]
        most = 0
        for st in states:
            k = sum(1 for i in idx if 0 < st[i] < GARBAGE)
            most = max(most, k)
            if k:
                busy.update(n for n, i in zip(mine, idx) if 0 < st[i] < GARBAGE)
        total += most if owner is not None else len([n for n in mine if n in busy])
    return total, busy


def liveness_templates(enc0: Encoding, kinds: Kinds, states, slots: list[str]) -> dict[Template, tuple[str, str, tuple]]:
    """For every global CPU slot: "at the program points where N0 never sees it
    hold a non-boot CPU, it holds none" -- what lets `busy_bound` count the
    slots live at one point instead of all of them. Template -> (slot, pc var, points)."""
    at = {name: i for i, name in enumerate(enc0.vocab.names)}
    by_name = {enc0.vocab.pc(c): c for c in enc0.vocab.contexts}
    out = {}
    for owner, mine in _owners(enc0, slots).items():
        if owner is None:
            continue
        pcvar = f"pc[{owner}]"
        ctx = by_name[pcvar]
        points = list(range(len(ctx.auto.nodes))) + [NO_PC]
        for n in mine:
            seen = {st[at[pcvar]] for st in states if 0 < st[at[n]] < GARBAGE}
            cpu_pts = [pc for pc in points if kinds.at(n, [pc]) == CPU or (pc == NO_PC and kinds.of[n] == CPU)]
            quiet = tuple(pc for pc in cpu_pts if pc not in seen)
            if quiet:
                out[Template("never", ((pcvar, None, Values(quiet)), (n, None, Values((), (), True))), 0)] = \
                    (n, pcvar, quiet)
    return out


def busy_bound(enc0: Encoding, kinds: Kinds, slots: list[str], alive: Callable[[Template], bool],
               live: dict[Template, tuple[str, str, tuple]], zero: set[str]) -> int:
    """How many non-boot CPUs the global slots of one state of the certificate can
    hold: per actor, the most of its slots that may hold one at a single program
    point (by the surviving liveness lemmas and its pc's value set), plus the
    shared slots."""
    quiet: dict[str, set[int]] = {}
    for t, (n, _, pts) in live.items():
        if alive(t):
            quiet.setdefault(n, set()).update(pts)
    total = 0
    by_name = {enc0.vocab.pc(c): c for c in enc0.vocab.contexts}
    for owner, mine in _owners(enc0, slots).items():
        mine = [n for n in mine if n not in zero]
        if owner is None:
            total += len(mine)
            continue
        ctx = by_name[f"pc[{owner}]"]
        points = list(range(len(ctx.auto.nodes))) + [NO_PC]
        most = 0
        for pc in points:
            k = sum(1 for n in mine if pc not in quiet.get(n, ()) and
                    (kinds.at(n, [pc]) != OTHER if pc != NO_PC else kinds.of[n] != OTHER))
            most = max(most, k)
        total += most
    return total


def global_cpu_slots(enc: Encoding, kinds: Kinds) -> list[str]:
    owned = cpu_slots(enc)
    return [n for n in enc.vocab.names if n not in owned and kinds.of.get(n, OTHER) != OTHER]


def bound(frag: Fragment, templates: list[Template], g: int, props: list[ir.Property]) -> tuple[int, dict]:
    """The cutoff W: the most CPUs a counterexample to one of the three checks
    needs named (docs/every-n.md). A step: the boot CPU, the CPUs the global
    slots hold before it (what it writes is made of those, the stepping CPU and
    its witnesses), the stepping CPU, its conditions' witnesses, the witnesses of
    the properties assumed and the CPUs of the lemma it breaks. An initial state:
    the boot CPU, the global slots, the broken lemma's CPUs. A deadlock: the boot
    CPU, the global slots, the properties assumed, the blocked tasks' witnesses.
    `g`: how many CPUs the global slots of one state can hold (`busy_bound`)."""
    # a lemma's letters, and for a literal "this per-CPU slot holds another CPU"
    # (a closure lemma broken) the CPU it holds
    letters = max([t.letters + sum(1 for _, who, v in t.lits if who is not None and v.others)
                   for t in templates] + [0])
    pos = sum(frag.prop_pos.get(p.name, 0) for p in props if p.kind is not ir.PropKind.DEADLOCK)
    broken = max([letters] + [frag.prop_neg.get(p.name, 0) for p in props])
    step = {"boot CPU": 1, "CPUs in global slots": g,
            "stepping CPU": int(frag.per_cpu_tasks), "witnesses of its conditions": frag.step,
            "witnesses of the properties assumed": pos, "CPUs of the lemma it breaks": broken}
    cases = [step, {"boot CPU": 1, "CPUs in global slots": g, "CPUs of the lemma it breaks": broken}]
    if any(p.kind is ir.PropKind.DEADLOCK for p in props) and frag.deadlock is not None:
        cases.append({"boot CPU": 1, "CPUs in global slots": g, "witnesses of the properties assumed": pos,
                      "witnesses of the blocked tasks": frag.deadlock})
    worst = max(cases, key=lambda c: sum(c.values()))
    return max(FIRST, sum(worst.values())), worst


# ---------------------------------------------------------------- program points by name

def _stmt_paths(body, prefix: str, out: dict[int, str]) -> None:
    for i, st in enumerate(body):
        here = f"{prefix}{i + 1}"
        out.setdefault(st.sid, here)
        for name in ("then", "other", "body"):
            sub = getattr(st, name, None)
            if isinstance(sub, tuple):
                _stmt_paths(sub, f"{here}.{name[0]}", out)
        for k, br in enumerate(getattr(st, "branches", ()) or ()):
            _stmt_paths(br, f"{here}.b{k + 1}.", out)


def point_names(model: ir.Model, auto) -> list[str]:
    """A name for every node of an automaton that an edit elsewhere does not
    change: the function, the statement's position in its body (`2.t1`: the first
    statement of the second one's `then`), the node kind, and the call sites it
    was inlined through. Certificates store these, never node numbers."""
    paths: dict[str, dict[int, str]] = {}
    for f in model.functions:
        paths[f.name] = {}
        _stmt_paths(f.body, "", paths[f.name])
    for a in model.actors:
        paths[f"actor {a.name}"] = {}
        _stmt_paths(a.body, "", paths[f"actor {a.name}"])
    starts = instance_starts(auto)
    first = sorted(starts)

    def here(node) -> str:
        sid = node.stmt.sid if node.stmt is not None and hasattr(node.stmt, "sid") else None
        where = paths.get(node.owner, {}).get(sid, "-") if sid is not None else "-"
        return f"{node.owner}/{where}"

    names, seen = [], {}
    for node in auto.nodes:
        chain = [f"{here(node)}:{node.op}"]
        c = starts.get(_start_of(first, node.id), -1) if first else -1
        while c >= 0:
            chain.append(here(auto.nodes[c]))
            c = starts.get(_start_of(first, c), -1)
        name = " < ".join(chain)
        k = seen.get(name, 0)
        seen[name] = k + 1
        names.append(name if k == 0 else f"{name} #{k + 1}")
    return names


class Points:
    """Program counter values <-> names, for every pc variable of an encoding."""

    def __init__(self, enc: Encoding):
        self.to: dict[str, list[str]] = {}
        per_auto: dict[str, list[str]] = {}
        for c in enc.vocab.contexts:
            if c.auto.name not in per_auto:
                per_auto[c.auto.name] = point_names(enc.model, c.auto)
            names = per_auto[c.auto.name]
            self.to[enc.vocab.pc(c)] = names
            tmpl = enc.vocab.pc(c).replace(f"{c.kthread.name}/{c.home_cpu}", f"{c.kthread.name}/{{}}") \
                if c.kthread is not None else None
            if tmpl is not None:
                self.to[tmpl] = names
        self.back = {var: {n: i for i, n in enumerate(names)} for var, names in self.to.items()}

    def name(self, var: str, v: int) -> str | int:
        names = self.to.get(var)
        if names is None:
            return v
        if v == NO_PC:
            return "done"
        return names[v] if 0 <= v < len(names) else v

    def value(self, var: str, x) -> int:
        if var not in self.back or isinstance(x, int):
            return int(x)
        if x == "done":
            return NO_PC
        got = self.back[var].get(x)
        if got is None:
            raise ValueError(f"the certificate names a program point that no longer exists: `{var}` at `{x}`")
        return got


# ---------------------------------------------------------------- the engine

@dataclass
class EveryN:
    policy: str
    cutoff: int
    templates: list[Template]
    proves: tuple[str, ...]
    parts: dict
    points: "Points | None" = None
    method: str = CUTOFF

    def to_json(self, points: "Points | None" = None) -> str:
        """One template per line; program points by name (`Points`)."""
        points = points or self.points
        assert points is not None
        head = {"format": FORMAT, "policy": self.policy, "method": self.method, "cutoff": self.cutoff,
                "proves": list(self.proves)}
        body = ",\n".join(json.dumps(_t_json(t, points), separators=(",", ":")) for t in self.templates)
        return json.dumps(head)[:-1] + ', "templates": [\n' + body + "\n]}"


def _t_json(t: Template, points: "Points") -> dict:
    return {"kind": t.kind, "letters": t.letters,
            "lits": [[var, who, [points.name(var, x) for x in v.fixed], list(v.letters), v.others]
                     for var, who, v in t.lits]}


def template_from_json(d: dict, points: "Points") -> Template:
    lits = tuple((str(var), who if who is None else int(who),
                  Values(tuple(sorted(points.value(var, x) for x in f)), tuple(map(int, ls)), bool(o)))
                 for var, who, f, ls, o in d["lits"])
    return Template(str(d["kind"]), lits, int(d["letters"]))


def load_every_n(text: str, points: "Points") -> EveryN:
    d = json.loads(text)
    if d.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} certificate")
    method = d.get("method", CUTOFF)
    if method not in (CUTOFF, SYMBOLIC):
        raise ValueError(f"unknown method {method!r}")
    return EveryN(d["policy"], int(d["cutoff"]), [template_from_json(x, points) for x in d["templates"]],
                  tuple(d["proves"]), {}, method=method)


def candidates(small) -> tuple[Lifter, list[Template], list[Template], dict, list[str]]:
    """The templates a proof for every N starts from: `small`'s lemmas lifted
    (those whose meaning does not change with N), the closure lemmas, the
    liveness lemmas of the global CPU slots. Returns (lifter, candidates,
    closure, liveness, global CPU slots)."""
    enc0 = small.enc
    lifter = Lifter(enc0)
    names0, kinds0 = first_names(lifter.slots0), lifter.kinds0
    closure = closure_templates(enc0, kinds0)
    cands: list[Template] = []
    for lm in small.got.lemmas:
        if lm.prop is None:
            for t in lifter.templates(lm):
                if t not in cands and uniform(t, kinds0, names0):
                    cands.append(t)
    for t in closure:
        if t not in cands:
            cands.append(t)
    gslots = global_cpu_slots(enc0, kinds0)
    live = liveness_templates(enc0, kinds0, small.exp.states, gslots)
    cands += [t for t in live if t not in cands]
    return lifter, cands, closure, live, gslots


def prove_every_n(path: str, models: dict[int, ir.Model], todo: list[ir.Property], *, learn_at: int,
                  max_states: int, timeout_s: float | None, say: Callable[[str], None],
                  stats: dict) -> tuple[dict[str, PropertyResult], EveryN | None]:
    """Try the cutoff proof of `todo` (properties that hold at every N searched)."""
    lower = models.__getitem__
    m2, m3 = lower(FIRST), lower(FIRST + 1)
    frag = fragment(m3, m2)
    out: dict[str, PropertyResult] = {}

    def unknown(names, why, shared=False):
        """`shared`: the reason every remaining property has no proof (said once)."""
        if shared:
            stats["every_n_why"] = why
        for p in names:
            out[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "lift", 0, reason=why)

    todo = [p for p in todo if p.kind not in ir.STATIC_KINDS]
    if frag.problems:
        span, why = frag.problems[0]
        more = f" (and {len(frag.problems) - 1} more)" if len(frag.problems) > 1 else ""
        unknown(todo, f"no proof for every N: {_pos(span)}{why}{more}", shared=True)
        stats["outside"] = [f"{_pos(s)}{w}" for s, w in frag.problems]
        return out, None
    if frag.deadlock is None:
        dl = [p for p in todo if p.kind is ir.PropKind.DEADLOCK]
        unknown(dl, "no proof for every N: a per-CPU task may block on a condition naming another task")
        todo = [p for p in todo if p not in dl]
    # a lower bound first, cheaply: a global slot that holds a CPU other than the
    # boot CPU in some reachable state of N=2 is named by every certificate
    enc2 = encode(m2, FIRST)
    kinds2 = Kinds(enc2)
    slots2 = global_cpu_slots(enc2, kinds2)
    say("every N: the reachable states of N=2, for a lower bound on the cutoff")
    with no_cyclic_gc():
        exp2 = ConcreteSystem.build(enc2).explore(max_states, timeout_s,
                                                  progress=lambda k: say(f"every N: the states of N=2: {k:,}"))
    per_n_why = None      # why the per-N route cannot take this policy (the symbolic one may)
    if exp2.complete:
        g_low, busy = busy_lower(enc2, exp2.states, slots2)
        low, parts = bound(frag, [], g_low, todo)
        if low > MAX_CUTOFF:
            stats.update(cutoff_low=low, cutoff_parts=parts)
            per_n_why = (f"no proof for every N: the cutoff is at least N={low} ({_parts(parts)}), past the "
                         f"{MAX_CUTOFF} this engine checks N by N; the global slots that hold a CPU at N=2: "
                         f"{', '.join(sorted(busy)[:4])}{', ...' if len(busy) > 4 else ''}")
    sym_why = None
    try:
        penc = encode_param(lower(learn_at), say)
    except Unsupported as exc:
        penc, sym_why = None, f"the symbolic-N encoding does not cover this policy: {exc}"
    if penc is None and per_n_why is not None:
        unknown(todo, per_n_why, shared=True)
        return out, None
    say(f"every N: learning at N={learn_at}")
    small = learn(lower(learn_at), learn_at, {p.name for p in todo}, max_states, timeout_s, say)
    if not small.exp.complete or not hasattr(small.got, "lemmas"):
        unknown(todo, f"no proof for every N: learning at N={learn_at} did not finish", shared=True)
        return out, None
    enc0 = small.enc
    lifter, cands, closure, live, gslots = candidates(small)
    names0, kinds0 = first_names(lifter.slots0), lifter.kinds0
    sym_out: dict[str, PropertyResult] = {}
    sym_cert = None
    if penc is not None:
        sym_stats: dict = {}
        sym_out, sym_cert, sym_why = _symbolic(path, models, penc, lifter, frag, cands, closure, live, gslots,
                                               todo, timeout_s, say, sym_stats, small.reach, enc2)
        sym_stats.update(learned_at=learn_at)
        if sym_cert is not None and (set(sym_cert.proves) >= {p.name for p in todo} or per_n_why is not None):
            stats.update(sym_stats)
            out.update(sym_out)
            rest = [p for p in todo if p.name not in sym_out]
            if rest:
                unknown(rest, sym_why, shared=True)
            return out, sym_cert
    if per_n_why is not None:
        unknown(todo, per_n_why + (f"; symbolic N: {sym_why}" if sym_why else ""), shared=True)
        return out, None
    alive = {t: True for t in cands}
    atns: dict[int, tuple[Encoding, AtN, dict[int, Template], dict]] = {}
    props_alive = {p.name: p for p in todo}
    t0 = time.monotonic()

    def zero_slots() -> set[str]:
        return {lits[0][0] for t in cands if alive[t] and t.kind == "in" and
                (lits := t.lits)[0][1] is None and all(x == 0 or x >= GARBAGE for x in lits[0][2].fixed)
                and not lits[0][2].letters and not lits[0][2].others}

    def at(n: int):
        if n not in atns:
            say(f"every N: building the encoding at N={n}")
            enc = encode(lower(n), n)
            atn = AtN(enc, timeout_s, say)
            owner: dict[int, Template] = {}
            instantiate(atn, owner, cands)
            for p in todo:
                if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.COVER) and not p.fires_in_steps:
                    atn.add(Lemma(prop=p.name))
            bads = {p.name: _bad(enc, p) for p in todo}
            errors = _failing_steps(enc).get(MODEL_ERROR)
            atns[n] = (enc, atn, owner, bads, _or(errors) if errors else None)
        return atns[n]

    def instantiate(atn: AtN, owner: dict[int, Template], ts: list[Template]) -> None:
        """Add every instance of `ts` at the solver's N, remembering each one's template."""
        names = slot_names(atn.enc)
        for t in ts:
            for lm in lifter.at(t, atn.enc.vocab.n, names):
                k = len(atn.lemmas)
                atn.add(lm)
                if len(atn.lemmas) > k:
                    owner[k] = t

    def sync(atn: AtN, owner: dict[int, Template]) -> None:
        for i, t in owner.items():
            if not alive[t]:
                atn.alive[i] = False
        for i, lm in enumerate(atn.lemmas):
            if lm.prop is not None and lm.prop not in props_alive:
                atn.alive[i] = False

    def cut() -> tuple[int, dict]:
        g = busy_bound(enc0, kinds0, gslots, alive.__getitem__, live, zero_slots())
        return bound(frag, [t for t in cands if alive[t]], g, list(props_alive.values()))

    # repair (as lift's): a counterexample to induction at N that a reachable set
    # we have excludes gives a new lemma, generalised against it, lifted, and
    # instantiated at every N -- N=2 and N0 directly, a larger N projected onto N0
    oracles = {learn_at: (small.reach, lifter, enc0, names0)}
    if exp2.complete and FIRST != learn_at:
        lifter2 = Lifter(enc2)
        oracles[FIRST] = (Reach(enc2.vocab.names, exp2.states), lifter2, enc2, first_names(lifter2.slots0))
    projectors: dict[int, Projector] = {}
    repairs = [0]

    def add(new: list[Template]) -> None:
        for t in new:
            cands.append(t)
            alive[t] = True
        for _, atn_, owner_, _, _ in atns.values():
            before = len(atn_.lemmas)
            instantiate(atn_, owner_, new)
            atn_.initiate(range(before, len(atn_.lemmas)))

    def block(n: int, state: dict[str, int]) -> bool:
        if repairs[0] >= MAX_REPAIRS_EVERY_N:
            return False
        if n in oracles:
            reach_, lifter_, enc_, names_ = oracles[n]
            views = [tuple(state[v] for v in enc_.vocab.names)]
        else:
            proj = projectors.setdefault(n, Projector(atns[n][0], enc0, kinds0))
            reach_, lifter_, names_ = small.reach, lifter, names0
            views = [proj.of(state, pick) for pick in itertools.combinations(range(1, n), learn_at - 1)]
        for view in views:
            lm = reach_.generalize(view)
            if lm is None:
                continue
            new = [t for t in lifter_.templates(lm) if t not in alive and
                   uniform(t, lifter_.kinds0, names_)]
            if new:
                add(new)
                repairs[0] += 1
                return True
        return False

    cutoff, parts = cut()
    try:
        while True:
            changed = False
            if cutoff > MAX_CUTOFF:
                break
            for n in range(FIRST, cutoff + 1):
                enc, atn, owner, bads, errors = at(n)
                sync(atn, owner)
                atn.initiate()
                while True:
                    cti = atn.houdini(lambda st, n=n: block(n, st))
                    if cti is None:
                        for name, b in bads.items():
                            st = atn.bad_state(b) if name in props_alive and b is not None else None
                            if st is not None:
                                cti = (st, name)
                                break
                    if cti is None:
                        break
                    st, name = cti
                    if block(n, st):
                        continue
                    unknown([props_alive.pop(name)], f"no proof for every N: at N={n} a state of the lifted "
                            f"lemmas has a step that breaks `{name}`")
                    changed = True
                    sync(atn, owner)
                dead = {t for i, t in owner.items() if not atn.alive[i] and alive[t]}
                for t in dead:
                    alive[t] = False
                if dead:
                    changed = True
                    sync(atn, owner)
                if not props_alive:
                    break
                if errors is not None and atn.bad_state(errors) is not None:
                    unknown(list(props_alive.values()), f"no proof for every N: at N={n} a state of the lifted "
                            "lemmas has a step with a run-time model error that no lemma excludes", shared=True)
                    props_alive.clear()
                    break
            new_cut, parts = cut()
            if new_cut != cutoff:
                cutoff, changed = new_cut, True
            if not changed or not props_alive:
                break
    except _Undecided as exc:
        unknown(list(props_alive.values()), f"no proof for every N: solver: {exc}", shared=True)
        return out, None
    stats.update(cutoff=cutoff, cutoff_parts=parts, learned_at=learn_at, templates=sum(alive.values()),
                 candidates=len(cands), repairs=repairs[0], seconds_every_n=round(time.monotonic() - t0, 1))
    if not props_alive:
        return out, None
    if cutoff > MAX_CUTOFF:
        unknown(list(props_alive.values()),
                f"no proof for every N: the cutoff is N={cutoff} ({_parts(parts)}), past the {MAX_CUTOFF} "
                "this engine checks", shared=True)
        return out, None
    lost = [t for t in closure if not alive[t]]
    if lost:
        unknown(list(props_alive.values()), "no proof for every N: a per-CPU task's slot "
                f"`{lost[0].lits[-1][0].format('c')}` may hold a CPU other than its own or the boot CPU", shared=True)
        return out, None
    cert = EveryN(path, cutoff, [t for t in cands if alive[t]], tuple(props_alive), parts, Points(enc0))
    _, problems = recheck_every_n(models, cert, timeout_s)
    if only_undecided(problems):
        unknown(list(props_alive.values()), "certificate re-check: " + "; ".join(problems), shared=True)
        return out, None
    if problems:
        raise InternalError("every-N certificate does not re-check: " + "; ".join(problems))
    if sym_cert is not None and len(sym_cert.proves) > len(cert.proves):
        stats.update(sym_stats)
        out.update(sym_out)
        return out, sym_cert
    lines = render_every_n(cert, at(FIRST)[0])
    proof = Proof(k=1, lemmas=len(cert.templates), text=tuple(lines[:12]))
    for name, p in props_alive.items():
        verdict = Verdict.UNREACHABLE if p.kind is ir.PropKind.COVER else Verdict.PROVED
        out[name] = PropertyResult(name, p.kind.value, verdict, "lift", 0, proof=proof,
                                   reason=f"checked at N={FIRST}..{cutoff}, the cutoff")
    return out, cert


def _symbolic(path: str, models, penc, lifter: Lifter, frag: Fragment, cands: list[Template],
              closure: list[Template], live: dict, gslots: list[str], todo: list[ir.Property],
              timeout_s: float | None, say: Callable[[str], None], stats: dict,
              reach: Reach, enc2: Encoding) -> tuple[dict[str, PropertyResult], "EveryN | None", str | None]:
    """The symbolic-N route (engines/param.py): Houdini over the templates on one
    encoding for N = 2..127, then the cutoff of the surviving templates, which
    must be at most 127 for the result to carry to every N. Returns the
    properties it proved, its re-checked certificate, and why the rest are not."""
    enc0, kinds0 = lifter.enc0, lifter.kinds0
    props = [p for p in todo if p.kind is not ir.PropKind.DEADLOCK]
    if not props:
        return {}, None, "the symbolic-N encoding has no deadlock condition yet"
    say(f"every N: Houdini on the symbolic-N encoding ({len(penc.paths):,} block paths, {len(cands):,} templates)")
    def lift(lm: Lemma) -> list[Template]:
        return [t for t in lifter.templates(lm) if uniform(t, kinds0, names0)]
    names0 = first_names(lifter.slots0)
    repair = Repair(enc0, reach, kinds0, lift, MAX_REPAIRS_EVERY_N)
    try:
        # property-directed: the closure and liveness lemmas (the cutoff needs
        # them) are assumed from the start, the rest of the pool only when a
        # counterexample needs them excluded
        seed = set(closure) | set(live)
        got = prove_symbolic(penc, enc0, cands, props, timeout_s, say, repair=repair, seed=seed.__contains__)
    except Undecided as exc:
        return {}, None, f"solver: {exc}"
    cands = got.templates
    alive = dict(zip(cands, got.alive))
    stats.update(method=SYMBOLIC, symbolic_seconds=got.seconds, symbolic_repairs=repair.done, symbolic_calls=got.calls,
                 templates=sum(got.alive), symbolic_paths=len(penc.paths), symbolic_upto=MAX_N)
    why = next(iter(got.unknown.values()), None)
    if not got.proved:
        return {}, None, why
    lost = [t for t in closure if not alive[t]]
    if lost:
        return {}, None, (f"a per-CPU task's slot `{lost[0].lits[-1][0].format('c')}` may hold a CPU other than "
                          "its own or the boot CPU")
    zero = {lits[0][0] for t in cands if alive[t] and t.kind == "in" and (lits := t.lits)[0][1] is None and
            all(x == 0 or x >= GARBAGE for x in lits[0][2].fixed) and not lits[0][2].letters and
            not lits[0][2].others}
    g = busy_bound(enc0, kinds0, gslots, alive.__getitem__, live, zero)
    proved = [p for p in props if p.name in got.proved]
    w, parts = bound(frag, [t for t in cands if alive[t]], g, proved)
    stats.update(cutoff=w, cutoff_parts=parts)
    if w > MAX_N:
        return {}, None, f"the cutoff is N={w} ({_parts(parts)}), past the {MAX_N} CPUs one encoding covers"
    cert = EveryN(path, w, [t for t in cands if alive[t]], tuple(p.name for p in proved), parts, Points(enc0),
                  method=SYMBOLIC)
    _, problems = recheck_every_n(models, cert, timeout_s)
    if only_undecided(problems):
        return {}, None, "certificate re-check: " + "; ".join(problems)
    if problems:
        raise InternalError("symbolic every-N certificate does not re-check: " + "; ".join(problems))
    lines = render_every_n(cert, enc2)
    proof = Proof(k=1, lemmas=len(cert.templates), text=tuple(lines[:12]))
    out = {}
    for p in proved:
        verdict = Verdict.UNREACHABLE if p.kind is ir.PropKind.COVER else Verdict.PROVED
        out[p.name] = PropertyResult(p.name, p.kind.value, verdict, "lift", 0, proof=proof,
                                     reason=f"symbolic N=2..{MAX_N}, cutoff N={w}")
    return out, cert, why


def _parts(parts: dict) -> str:
    return ", ".join(f"{v} {k}" for k, v in parts.items() if v)


def instances(cert: EveryN, enc: Encoding, props: tuple[str, ...]) -> list[Lemma]:
    n = enc.vocab.n
    names = slot_names(enc)
    out: list[Lemma] = []
    for t in cert.templates:
        for pick in itertools.combinations(range(1, n), t.letters):
            lits = []
            for var, who, vals in t.lits:
                try:
                    name = names[(var, pick[who])] if who is not None else var
                except KeyError:
                    raise ValueError(f"the certificate names an unknown state variable `{var}`") from None
                vs = set(vals.fixed) | {pick[i] for i in vals.letters}
                if vals.others:
                    vs |= set(range(1, n)) - set(pick)
                lits.append((name, tuple(sorted(vs))))
            out.append(Lemma(lits[0][0], lits[0][1]) if t.kind == "in" else Lemma(never=tuple(sorted(lits))))
    return out + [Lemma(prop=p) for p in props]


def derive_cutoff(models, cert: EveryN) -> tuple[int, dict, list[str]]:
    """The cutoff a certificate proves every N with, from the policy and the
    certificate's own templates (never the number in the file): the fragment's
    witness counts, the closure lemmas it must contain, its liveness lemmas."""
    get = models.__getitem__ if isinstance(models, dict) else models
    frag = fragment(get(FIRST + 1), get(FIRST))
    if frag.problems:
        span, why = frag.problems[0]
        return 0, {}, [f"the policy is outside the fragment: {_pos(span)}{why}"]
    m0 = get(FIRST + 1)
    enc0 = encode(m0, FIRST + 1)
    kinds0 = Kinds(enc0)
    have = set(cert.templates)
    missing = [t for t in closure_templates(enc0, kinds0) if t not in have]
    if missing:
        return 0, {}, [f"the certificate lacks the closure lemma for `{missing[0].lits[-1][0]}`"]
    props = [p for p in m0.properties if p.name in cert.proves]
    if frag.deadlock is None and any(p.kind is ir.PropKind.DEADLOCK for p in props):
        return 0, {}, ["`no-deadlock` is outside the fragment: a per-CPU task may block on another task"]
    gslots = global_cpu_slots(enc0, kinds0)
    pcs = {f"pc[{c.name}]" for c in enc0.vocab.contexts if c.kthread is None}
    live = {t: (t.lits[1][0], t.lits[0][0], t.lits[0][2].fixed) for t in cert.templates
            if t.kind == "never" and t.letters == 0 and len(t.lits) == 2 and t.lits[0][0] in pcs and
            t.lits[1][0] in gslots and t.lits[1][2] == Values((), (), True) and t.lits[0][0] ==
            f"pc[{t.lits[1][0].split('[', 1)[1]}"}
    zero = {t.lits[0][0] for t in cert.templates if t.kind == "in" and t.lits[0][1] is None and
            not t.lits[0][2].letters and not t.lits[0][2].others and
            all(x == 0 or x >= GARBAGE for x in t.lits[0][2].fixed)}
    g = busy_bound(enc0, kinds0, gslots, lambda t: True, live, zero)
    w, parts = bound(frag, list(cert.templates), g, props)
    return w, parts, []


def recheck_every_n(models, cert: EveryN, timeout_s: float | None) -> tuple[int, list[str]]:
    """Every reason the certificate does not prove its properties for every N
    (empty: it does): the cutoff derived from the policy (`derive_cutoff`), and
    the instances at every N from 2 to it -- initial, inductive, free of run-time
    model errors, implying each property (induction.recheck, per N). Returns the
    cutoff it used with the problems."""
    get = models.__getitem__ if isinstance(models, dict) else models
    w, _, problems = derive_cutoff(models, cert)
    if problems:
        return w, problems
    if w > cert.cutoff:
        problems.append(f"the certificate says cutoff N={cert.cutoff}, the policy needs N={w}")
    if cert.method == SYMBOLIC:
        return w, problems + _recheck_symbolic(get, cert, w, timeout_s)
    for n in range(FIRST, w + 1):
        model = get(n)
        enc = encode(model, n)
        props = tuple(p for p in cert.proves
                      if next(q for q in model.properties if q.name == p).kind in
                      (ir.PropKind.INVARIANT, ir.PropKind.COVER))
        try:
            lemmas = instances(cert, enc, props)
        except ValueError as exc:
            return w, [str(exc)]
        c = Certificate(cert.policy, n, tuple(lemmas), cert.proves)
        problems += [f"N={n}: {x}" for x in recheck(model, c, None, timeout_s, enc, model_errors=True)]
        if problems:
            break
    return w, problems


def _recheck_symbolic(get, cert: EveryN, w: int, timeout_s: float | None) -> list[str]:
    """A symbolic certificate: every template and property initial, inductive
    and free of model errors on the one encoding of N = 2..127 (nothing dropped),
    and a cutoff the policy derives within that range."""
    if w > MAX_N:
        return [f"the policy needs cutoff N={w}, past the {MAX_N} CPUs the symbolic encoding covers"]
    model = get(FIRST + 1)
    try:
        penc = encode_param(model)
    except Unsupported as exc:
        return [f"the symbolic-N encoding does not cover this policy: {exc}"]
    props = [p for p in model.properties if p.name in cert.proves]
    try:
        got = prove_symbolic(penc, encode(model, FIRST + 1), list(cert.templates), props, timeout_s, drop=False)
    except Undecided as exc:
        return [f"undecided: solver: {exc}"]
    problems = [f"lemma {i + 1} is not initial and inductive for every N" for i, ok in enumerate(got.alive) if not ok]
    problems += [f"`{name}`: {why}" for name, why in got.unknown.items()]
    return problems


def render_every_n(cert: EveryN, enc: Encoding) -> list[str]:
    """The templates as `for every CPU c` lines, in the policy's words."""
    letters = "cdefgh"
    lines = []
    for t in cert.templates:
        said = []
        for var, who, vals in t.lits:
            name = var.format(letters[who]) if who is not None else var
            probe = var.format(1) if who is not None else var
            vs = [render_value(enc, probe, x) for x in vals.fixed] + [letters[i] for i in vals.letters]
            if vals.others:
                vs.append("another CPU")
            said.append(f"{name} == {vs[0]}" if len(vs) == 1 else f"{name} in {{{', '.join(vs)}}}")
        body = ("never " + " and ".join(said)) if t.kind == "never" else said[0]
        head = "" if not t.letters else ("for every CPU c: " if t.letters == 1 else
                                         f"for all CPUs {' < '.join(letters[:t.letters])}: ")
        lines.append(head + body)
    return lines
