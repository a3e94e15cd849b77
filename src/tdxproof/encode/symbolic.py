"""Symbolic execution of blocks: IR expressions as Z3 terms over one step's state,
and every path of a block from a node, with the rules of NOTE(steps)/NOTE(blocks).

A path is (guard, updates, events, choice labels): taking it from state s gives
the state `updates` (every other variable unchanged), enabled when `guard` holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from tdxproof.encode.flatten import Automaton, Node
from tdxproof.encode.vocab import DONE, IDLE, MODEL_ERROR, MODES, NO_PC, PCW, RET, RUN, Context, Vocab, bv
from tdxproof.model import ir
from tdxproof.model.blocks import continue_phase, phase_after

TRUE = z3.BoolVal(True)
MAX_PATHS = 4096


def b2bv(b: z3.BoolRef) -> z3.BitVecRef:
    return z3.If(b, bv(1), bv(0))


def truth(t: z3.BitVecRef) -> z3.BoolRef:
    return t != bv(0)


@dataclass
class Path:
    start: int
    guard: list[z3.BoolRef]
    updates: dict[str, z3.ExprRef]
    events: list[tuple[int, z3.BoolRef]]   # (property index, condition that must hold)
    labels: list[str]


@dataclass
class _PS:
    """A path under construction."""
    node: int
    cur: dict[str, z3.ExprRef]
    guard: list[z3.BoolRef]
    events: list[tuple[int, z3.BoolRef]]
    labels: list[str]
    phase: int                 # NOTE(blocks): -1 invisible only so far, 0 before the non-mover, 1 after
    done: bool = False
    started: bool = False

    def fork(self) -> "_PS":
        # cur.copy(): the parametric encoder's state maps some names onto array cells
        return _PS(self.node, self.cur.copy(), list(self.guard), list(self.events), list(self.labels),
                   self.phase, self.done, self.started)


class Blocks:
    """Every path of every block of one context."""

    def __init__(self, vocab: Vocab, c: Context, prop_index: dict[str, int], order_rules: dict[int, list]):
        self.v = vocab
        self.c = c
        self.auto: Automaton = c.auto
        self.model = vocab.model
        self.n = vocab.n
        self.prop_index = prop_index
        self.order_rules = order_rules
        self.classes = {cl.name: cl for cl in self.model.lock_classes}
        self.lock_index = {lk.name: lk.index for lk in self.model.locks}
        self._free_in: dict | None = None     # paths_from(): the state its `_free` guard is over
        self._free: list[z3.BoolRef] = []

    # ------------------------------------------------------------ context attributes
    def cpu(self, cur: dict, c: Context | None = None) -> z3.BitVecRef:
        c = c or self.c
        ipi = cur[self.v.ipi(c)]
        return z3.If(ipi == bv(-1), bv(c.home_cpu), ipi)

    def irq_excluded(self, cur: dict) -> z3.BoolRef:
        mine = self.cpu(cur)
        return z3.Or([z3.And(cur[self.v.irqs(o)] == bv(1), cur[self.v.status(o)] == bv(RUN), self.cpu(cur, o) == mine)
                      for o in self.v.contexts if o is not self.c] or [z3.BoolVal(False)])

    # ------------------------------------------------------------ expressions
    def expr(self, e: ir.Expr, cur: dict, node: Node, q: dict[int, int] | None = None) -> z3.BitVecRef:
        q = q or {}
        E = lambda x: self.expr(x, cur, node, q)  # noqa: E731
        match e:
            case ir.Lit(value=v):
                return bv(v)
            case ir.FnRef(index=i):
                return bv(i + 1)
            case ir.LockRef(lock=lk):
                return bv(lk.index)
            case ir.LockIndex(locks=elems, index=i):
                return bv(elems[0].index) + E(i)    # in range: lowering requires the index's type (E330)
            case ir.VarRef(var=var, index=None):
                return cur[self.v.cells[(var.name, 0)]]
            case ir.VarRef(var=var, index=idx):
                return self._select(var, E(idx), cur)
            case ir.FieldRef(lock=lk, field=f):
                lt = E(lk)
                opts = [(li, name) for (li, fname), name in self.v.fields.items() if fname == f.name]
                if z3.is_bv_value(lt):
                    opts = [o for o in opts if o[0] == lt.as_signed_long()] or opts
                out = cur[opts[-1][1]]
                for li, name in opts[:-1]:
                    out = z3.If(lt == bv(li), cur[name], out)
                return out
            case ir.LocalRef(local=l):
                known = getattr(node, "consts", {}).get(l.slot)
                if known is not None:
                    return bv(known)
                return cur[self.v.local(self.c, node.frame + l.slot)]
            case ir.QVarRef(qvar=qv):
                return bv(q[qv.id])
            case ir.Unary(op="!", operand=x):
                return b2bv(E(x) == bv(0))
            case ir.Unary(op="-", operand=x):
                return -E(x)
            case ir.Binary(op=op, left=a, right=b):
                return self._binary(op, E(a), E(b))
            case ir.CondExpr(cond=c, then=t, other=o):
                return z3.If(truth(E(c)), E(t), E(o))
            case ir.Quant(kind=kind, qvar=qv, body=body):
                vals = [self.expr(body, cur, node, {**q, qv.id: k}) for k in range(self.n)]
                if kind is ir.QuantKind.FORALL:
                    return b2bv(z3.And([truth(x) for x in vals]))
                if kind is ir.QuantKind.EXISTS:
                    return b2bv(z3.Or([truth(x) for x in vals]))
                return sum((z3.If(truth(x), bv(1), bv(0)) for x in vals), bv(0))
            case ir.PredRef(pred=p):
                return E(p.expr)
            case ir.Builtin(op=op, args=args, mode=mode):
                return self._builtin(op, [E(a) for a in args], mode, cur)
        raise AssertionError(e)

    def _select(self, var: ir.Var, idx: z3.BitVecRef, cur: dict) -> z3.BitVecRef:
        size = self.v.var_cells(var)
        out = cur[self.v.cells[(var.name, size - 1)]]
        for i in range(size - 2, -1, -1):
            out = z3.If(idx == bv(i), cur[self.v.cells[(var.name, i)]], out)
        return out

    def _binary(self, op: str, a: z3.BitVecRef, b: z3.BitVecRef) -> z3.BitVecRef:
        match op:
            case "&&":
                return b2bv(z3.And(truth(a), truth(b)))
            case "||":
                return b2bv(z3.Or(truth(a), truth(b)))
            case "->":
                return b2bv(z3.Implies(truth(a), truth(b)))
            case "==":
                return b2bv(a == b)
            case "!=":
                return b2bv(a != b)
            case "<":
                return b2bv(a < b)
            case "<=":
                return b2bv(a <= b)
            case ">":
                return b2bv(a > b)
            case ">=":
                return b2bv(a >= b)
            case "+":
                return a + b
            case "-":
                return a - b
        raise AssertionError(op)

    def held_count(self, cur: dict, c: Context, lock: z3.BitVecRef, mode: int | None) -> z3.BitVecRef:
        total = bv(0)
        known = lock.as_signed_long() if z3.is_bv_value(lock) else None
        for lk in self.model.locks:
            if known is not None and lk.index != known:
                continue
            for md in MODES.values():
                if mode is None or md == mode:
                    term = cur[self.v.held(c, lk.index, md)]
                    total = total + (term if known is not None else z3.If(lock == bv(lk.index), term, bv(0)))
        return total

    def _builtin(self, op: ir.BuiltinOp, args: list, mode: str | None, cur: dict) -> z3.BitVecRef:
        mc = MODES[mode] if mode is not None else None
        match op:
            case ir.BuiltinOp.HELD:
                own = self.held_count(cur, self.c, args[0], mc) != bv(0)
                kt = self.c.kthread
                if kt is not None and kt.lockdep_held:
                    # lockdep: cpuhp/c runs callbacks for a control task that holds cpu_hotplug_lock
                    inherited = z3.Or([args[0] == bv(self.lock_index[n]) for n in kt.lockdep_held])
                    own = z3.Or(own, z3.And(inherited, cur[self.v.status(self.c)] == bv(RUN)))
                return b2bv(own)
            case ir.BuiltinOp.HOLDERS:
                return sum((self.held_count(cur, o, args[0], mc) for o in self.v.contexts), bv(0))
            case ir.BuiltinOp.THIS_CPU:
                return self.cpu(cur)
            case ir.BuiltinOp.IRQS_OFF:
                return cur[self.v.irqs(self.c)]
            case ir.BuiltinOp.IN_IPI:
                return b2bv(cur[self.v.ipi(self.c)] != bv(-1))
            case ir.BuiltinOp.PERCPU_THREAD:
                # a property of the context, not of the state (Program.percpu)
                bound = self.c.kthread is not None or (self.c.actor is not None and self.c.actor.per_cpu)
                return bv(1 if bound else 0)
            case ir.BuiltinOp.NR_CPUS:
                return bv(self.n)
            case ir.BuiltinOp.PKG:
                pkgs = [self.model.package_of(k) if k < self.model.cpus else k * self.model.packages // self.n
                        for k in range(self.n)]
                out = bv(pkgs[-1])
                for k in range(self.n - 2, -1, -1):
                    out = z3.If(args[0] == bv(k), bv(pkgs[k]), out)
                return out
        raise AssertionError(op)

    def write(self, lv: ir.LValue, value: z3.BitVecRef, p: "_PS", node: Node, frame: int | None = None) -> None:
        """Write `value`; a value outside the target's type is a run-time model error
        (MODEL_ERROR), as the reference interpreter's range check makes it."""
        cur = p.cur
        if not isinstance(lv, ir.Builtin):
            self.check_range(lv.type, value, p)
        match lv:
            case ir.VarRef(var=var, index=None):
                cur[self.v.cells[(var.name, 0)]] = value
            case ir.VarRef(var=var, index=idx):
                i = self.expr(idx, cur, node)
                for k in range(self.v.var_cells(var)):
                    name = self.v.cells[(var.name, k)]
                    cur[name] = z3.If(i == bv(k), value, cur[name])
            case ir.FieldRef(lock=lk, field=f):
                lt = self.expr(lk, cur, node)
                known = lt.as_signed_long() if z3.is_bv_value(lt) else None
                for (li, fname), name in self.v.fields.items():
                    if fname == f.name and (known is None or known == li):
                        cur[name] = value if known is not None else z3.If(lt == bv(li), value, cur[name])
            case ir.LocalRef(local=l):
                base = node.frame if frame is None else frame
                cur[self.v.local(self.c, base + l.slot)] = value
            case ir.Builtin(op=ir.BuiltinOp.IRQS_OFF):
                cur[self.v.irqs(self.c)] = b2bv(truth(value))
            case _:
                raise AssertionError(lv)

    def check_range(self, ty: ir.Type, value: z3.BitVecRef, p: "_PS") -> None:
        rng = ir.value_range(ty, self.n, len(self.model.functions))
        if rng is not None:
            lo, hi = rng
            if not (z3.is_bv_value(value) and lo <= value.as_signed_long() <= hi):
                p.events.append((MODEL_ERROR, z3.And(value >= bv(lo), value <= bv(hi))))

    # ------------------------------------------------------------ paths
    def starts(self) -> list[int]:
        """Nodes a block can start at: wherever a block can end (before a statement
        that is not invisible, or one that may block: continue_phase), the entries,
        and loop heads."""
        out = {n.id for n in self.auto.nodes if n.op not in ("jump", "end", "ipi_exit")
               and (n.mover != "B" or n.blocking)}
        if self.auto.kind == "actor":
            out.add(self.auto.entry)
        out |= set(self.auto.entries.values())
        return sorted(out)

    def paths_from(self, start: int, state: dict[str, z3.ExprRef]) -> list[Path]:
        """Every path of the block that starts at node `start` (NOTE(blocks)): the
        first statement, then those that may join; a statement that may block
        joins only after invisible ones, and the path ends before it when it would
        block."""
        if self._free_in is not state:
            # every block of this context starts from the same state terms: build
            # "running, and not kept off its CPU" once, not once per block
            self._free_in = state
            self._free = [state[self.v.status(self.c)] == bv(RUN), z3.Not(self.irq_excluded(state))]
        ps = _PS(start, state.copy(), [state[self.v.pc(self.c)] == z3.BitVecVal(start, PCW), *self._free],
                 [], [], phase=-1)
        work, out = [ps], []
        while work:
            p = work.pop()
            if p.done:
                out.append(p)
                continue
            node = self.auto.nodes[p.node]
            kind = (node.first or "N") if node.mover in ("cut", "restart") else node.mover
            if p.started:
                nxt = continue_phase(node.mover, node.blocking, p.phase)
                if nxt is None:
                    out.append(p)
                    continue
            else:
                nxt = phase_after(kind)
            for q in self._exec(node, p, is_first=not p.started):
                if not (q.done and q.node == node.id):   # not the fork that stopped before a blocked node
                    q.phase = nxt
                q.started = True
                work.append(q)
            if len(out) + len(work) > MAX_PATHS:
                raise RuntimeError(f"block at {self.c.name}:{start} has more than {MAX_PATHS} paths")
        result = []
        for p in out:
            pc = p.cur.pop("__pc__", None)
            p.cur[self.v.pc(self.c)] = pc if pc is not None else z3.BitVecVal(p.node, PCW)
            updates = {k: v for k, v in p.cur.items() if not _same(v, state.get(k))}
            result.append(Path(start, p.guard, updates, p.events, p.labels))
        return result

    def blocked(self, s: dict) -> tuple[z3.BoolRef, dict[int, z3.BoolRef]]:
        """Is this context blocked in state s, and for each other context j, does it
        wait for j (NOTE(deadlock))? Only the first statement of a block can block."""
        c, v = self.c, self.v
        excl_by = {o.index: z3.And(s[v.irqs(o)] == bv(1), s[v.status(o)] == bv(RUN), self.cpu(s, o) == self.cpu(s))
                   for o in v.contexts if o is not c}
        excluded = z3.Or(list(excl_by.values()) or [z3.BoolVal(False)])
        stuck: list[z3.BoolRef] = []
        waits: dict[int, list[z3.BoolRef]] = {o.index: [] for o in v.contexts}
        for start in self.starts():
            node = self.auto.nodes[start]
            at = s[v.pc(c)] == z3.BitVecVal(start, PCW)
            cond, who = self._block_condition(node, s)
            if cond is None:
                continue
            stuck.append(z3.And(at, z3.Not(cond)))
            for j, w in who.items():
                waits[j].append(z3.And(at, w))
        blocked = z3.And(s[v.status(c)] == bv(RUN), z3.Or(excluded, z3.Or(stuck or [z3.BoolVal(False)])))
        out = {}
        for o in v.contexts:
            by_irq = excl_by.get(o.index, z3.BoolVal(False))
            out[o.index] = z3.If(excluded, by_irq, z3.Or(waits[o.index] or [z3.BoolVal(False)]))
        return blocked, out

    def _block_condition(self, node: Node, s: dict) -> tuple[z3.BoolRef | None, dict[int, z3.BoolRef]]:
        """(the condition under which the node's statement can run, or None if it
        never blocks; whom it waits for when it cannot)."""
        c, v = self.c, self.v
        st = node.stmt
        others = [o for o in v.contexts if o is not c]
        if node.op in ("await", "atomic"):
            first = st if isinstance(st, ir.Await) else (
                st.body[0] if isinstance(st, ir.Atomic) and st.body and isinstance(st.body[0], ir.Await) else None)
            if first is None:
                return None, {}
            cond = truth(self.expr(first.cond, s, node))
            if not first.waits:
                return cond, {o.index: s[v.status(o)] != bv(IDLE) for o in others}
            who: dict[int, list[z3.BoolRef]] = {o.index: [] for o in v.contexts}
            for w in first.waits:
                lock = self.expr(w.lock, s, node)
                mode = MODES[w.mode] if w.mode is not None else None
                for o in v.contexts:
                    if w.kind == "holders":
                        who[o.index].append(self.held_count(s, o, lock, mode) != bv(0))
                    elif o is not c:
                        inside = [z3.And(s[v.pc(o)] == z3.BitVecVal(m.id, PCW),
                                         s[v.local(o, m.acquire[1])] == lock)
                                  for m in o.auto.nodes if m.acquire is not None and m.op not in ("jump",)
                                  and (mode is None or MODES[m.acquire[0]] == mode)]
                        who[o.index].append(z3.Or(inside or [z3.BoolVal(False)]))
            return cond, {j: z3.Or(ws) for j, ws in who.items() if ws}
        if node.op in ("callin", "callwait"):
            assert isinstance(st, ir.Call) and st.kthread is not None
            if node.op == "callin":
                kcpu = self.expr(st.kthread_cpu, s, node)
                want = IDLE
            else:
                kcpu = s[v.local(c, node.frame + node.hidden)]
                want = 3
            targets = self._kthread_ctxs(st.kthread.name)
            cond = z3.Or([z3.And(kcpu == bv(t.home_cpu), s[v.status(t)] == bv(want)) for t in targets])
            return cond, {t.index: kcpu == bv(t.home_cpu) for t in targets}
        if node.op == "ipi_enter":
            assert isinstance(st, ir.Ipi)
            target = self.expr(st.cpu, s, node)
            busy = {o.index: z3.And(s[v.irqs(o)] == bv(1), s[v.status(o)] == bv(RUN), self.cpu(s, o) == target)
                    for o in others}
            return z3.Not(z3.Or(list(busy.values()) or [z3.BoolVal(False)])), busy
        return None, {}

    def _exec(self, node: Node, p: _PS, is_first: bool) -> list[_PS]:
        """Execute one statement (and the glue after it); returns the continuations.
        A statement that would block in the middle of a block ends the path before it."""
        cur = p.cur
        E = lambda e: self.expr(e, cur, node)  # noqa: E731
        s = node.stmt
        op = node.op

        if op == "assign":
            assert isinstance(s, ir.Assign)
            self.write(s.target, E(s.value), p, node)
            return self._go(p, node.succ[0])
        if op == "any":
            assert isinstance(s, ir.Assign) and isinstance(s.value, ir.AnyValue)
            outs = []
            for v, label in _domain(s.value.type, self.n):
                q = p.fork()
                self.write(s.target, bv(v), q, node)
                q.labels.append(label)
                outs.extend(self._go(q, node.succ[0]))
            return outs
        if op == "branch":
            assert isinstance(s, ir.If)
            c = truth(E(s.cond))
            yes, no = p.fork(), p
            yes.guard.append(c)
            no.guard.append(z3.Not(c))
            return self._go(yes, node.succ[0]) + self._go(no, node.target)
        if op == "choice":
            outs = []
            for label, target in node.choices:
                q = p.fork()
                q.labels.append(label)
                outs.extend(self._go(q, target))
            return outs
        if op == "call":
            assert isinstance(s, ir.Call)
            args = [E(a) for a in s.args]
            callee_v = E(s.callee) if not isinstance(s.callee, ir.FnRef) else None
            outs = []
            if callee_v is not None:
                # a call through a null pointer (a kernel oops) is a run-time model error
                oops = p.fork()
                oops.guard.append(callee_v == bv(0))
                oops.events.append((MODEL_ERROR, z3.BoolVal(False)))
                oops.done = True
                outs.append(oops)
            for idx, entry, frame in node.callees:
                q = p.fork() if len(node.callees) > 1 else p
                if callee_v is not None:
                    q.guard.append(callee_v == bv(idx + 1))
                if s.result is not None and isinstance(s.result, ir.LocalRef):
                    q.cur[self.v.local(self.c, node.frame + s.result.local.slot)] = bv(0)
                fn = next(f for f in self.model.functions if f.index == idx)
                nloc = max((l.slot for l in fn.locals), default=-1) + 1
                for k in range(nloc):
                    q.cur[self.v.local(self.c, frame + k)] = args[k] if k < len(args) else bv(0)
                outs.extend(self._go(q, entry))
            return outs
        if op == "return":
            assert isinstance(s, ir.Return)
            value = E(s.value) if s.value is not None else None
            return self._return(node, p, value)
        if op == "check":
            assert isinstance(s, ir.Check)
            p.events.append((self.prop_index[s.prop], truth(E(s.cond))))
            return self._go(p, node.succ[0])
        if op == "require":
            assert isinstance(s, ir.Require)
            c = truth(E(s.cond))
            if is_first:
                p.guard.append(c)
                return self._go(p, node.succ[0])
            stop = p.fork()
            stop.guard.append(z3.Not(c))
            stop.done = True
            p.guard.append(c)
            return [stop] + self._go(p, node.succ[0])
        if op == "await":
            assert isinstance(s, ir.Await)
            res = self._blocking(p, truth(E(s.cond)), is_first)
            return [r for r in res if r.done] + [x for r in res if not r.done for x in self._go(r, node.succ[0])]
        if op == "atomic":
            stmts = s.body if isinstance(s, ir.Atomic) else (s,)
            res: list[_PS]
            if stmts and isinstance(stmts[0], (ir.Await, ir.Require)):
                # a guard; `require` idles where `await` blocks (no deadlock condition:
                # _block_condition() knows only `await`)
                res = self._blocking(p, truth(E(stmts[0].cond)), is_first)
                stmts = stmts[1:]
            else:
                res = [p]
            outs = [r for r in res if r.done]
            for r in res:
                if not r.done:
                    for q in self._atomic(stmts, r, node):
                        outs.extend(self._go(q, node.succ[0]))
            return outs
        if op in ("for_first", "for_next"):
            assert isinstance(s, ir.ForCpu)
            slot = self.v.local(self.c, node.frame + s.var.slot)
            start = None if op == "for_first" else p.cur[slot]
            outs = []
            skipped: list[z3.BoolRef] = []
            for k in range(self.n):
                q = p.fork()
                cond = [] if start is None else [bv(k) >= start + bv(1)]
                q.cur[slot] = bv(k)
                w = truth(self.expr(s.where, q.cur, node)) if s.where is not None else TRUE
                q.guard.extend(cond + [w] + skipped)
                skipped = skipped + [z3.Or(z3.Not(z3.And(cond)) if cond else z3.BoolVal(False), z3.Not(w))]
                outs.extend(self._go(q, node.succ[0] if op == "for_first" else node.alt))
            q = p.fork()
            q.guard.extend(skipped)
            outs.extend(self._go(q, node.target))
            return outs
        if op == "range_first":
            assert isinstance(s, ir.ForRange)
            first, last = E(s.lo), E(s.hi)
            empty = (first < last) if s.down else (first > last)
            q = p.fork()
            q.guard.append(empty)
            p.guard.append(z3.Not(empty))
            p.cur[self.v.local(self.c, node.frame + s.var.slot)] = first
            p.cur[self.v.local(self.c, node.frame + node.hidden)] = last
            return self._go(q, node.target) + self._go(p, node.succ[0])
        if op == "range_next":
            assert isinstance(s, ir.ForRange)
            slot = self.v.local(self.c, node.frame + s.var.slot)
            curv, last = p.cur[slot], p.cur[self.v.local(self.c, node.frame + node.hidden)]
            q = p.fork()
            q.guard.append(curv == last)
            p.guard.append(curv != last)
            p.cur[slot] = curv - bv(1) if s.down else curv + bv(1)
            return self._go(q, node.target) + self._go(p, node.alt)
        if op == "pick":
            assert isinstance(s, ir.Pick)
            slot = self.v.local(self.c, node.frame + s.var.slot)
            outs = []
            if not is_first and s.where is not None:
                stop = p.fork()
                for k in range(self.n):
                    tmp = p.cur.copy()
                    tmp[slot] = bv(k)
                    stop.guard.append(z3.Not(truth(self.expr(s.where, tmp, node))))
                stop.done = True
                outs.append(stop)
            for k in range(self.n):
                q = p.fork()
                q.cur[slot] = bv(k)
                if s.where is not None:
                    q.guard.append(truth(self.expr(s.where, q.cur, node)))
                q.labels.append(f"{s.var.name}={k}")
                outs.extend(self._go(q, node.succ[0]))
            return outs
        if op == "ipi_enter":
            assert isinstance(s, ir.Ipi)
            target = E(s.cpu)
            busy = z3.Or([z3.And(cur[self.v.irqs(o)] == bv(1), cur[self.v.status(o)] == bv(RUN),
                                 self.cpu(cur, o) == target) for o in self.v.contexts if o is not self.c]
                         or [z3.BoolVal(False)])
            res = self._blocking(p, z3.Not(busy), is_first)
            outs = [r for r in res if r.done]
            for r in res:
                if not r.done:
                    r.cur[self.v.saved(self.c)] = r.cur[self.v.irqs(self.c)]
                    r.cur[self.v.ipi(self.c)] = self.expr(s.cpu, r.cur, node)
                    r.cur[self.v.irqs(self.c)] = bv(1)
                    outs.extend(self._go(r, node.succ[0]))
            return outs
        if op == "callin":
            return self._callin(node, p, is_first)
        if op == "callwait":
            return self._callwait(node, p, is_first)
        raise AssertionError(op)

    def _go(self, q: _PS, nxt: int) -> list[_PS]:
        q.node = nxt
        self._glue(q)
        return [q]

    def _blocking(self, p: _PS, cond: z3.BoolRef, is_first: bool) -> list[_PS]:
        """A statement that may block: as a block's first, its condition is the
        guard; later, the path also stops before it when it would block."""
        if is_first:
            p.guard.append(cond)
            return [p]
        stop = p.fork()
        stop.guard.append(z3.Not(cond))
        stop.done = True
        p.guard.append(cond)
        return [stop, p]

    def _atomic(self, stmts, p: _PS, node: Node) -> list[_PS]:
        paths = [p]
        for st in stmts:
            nxt: list[_PS] = []
            for q in paths:
                cur = q.cur
                match st:
                    case ir.Assign(target=t, value=v):
                        self.write(t, self.expr(v, cur, node), q, node)
                        nxt.append(q)
                    case ir.If(cond=c, then=th, other=o):
                        cv = truth(self.expr(c, cur, node))
                        a, b = q.fork(), q
                        a.guard.append(cv)
                        b.guard.append(z3.Not(cv))
                        nxt.extend(self._atomic(th, a, node))
                        nxt.extend(self._atomic(o, b, node))
                    case ir.Hold(release=rel, lock=lk, mode=mode):
                        lt = self.expr(lk, cur, node)
                        md = MODES[mode]
                        if not rel:
                            for first, rules in self.order_rules.items():
                                if z3.is_bv_value(lt) and lt.as_signed_long() != first:
                                    continue
                                for second, prop in rules:
                                    held2 = self.held_count(cur, self.c, bv(second), None) != bv(0)
                                    kt = self.c.kthread
                                    if kt is not None and self.model.locks[second].name in kt.lockdep_held:
                                        held2 = z3.Or(held2, cur[self.v.status(self.c)] == bv(RUN))
                                    q.events.append((prop, z3.Not(z3.And(lt == bv(first), held2))))
                        known = lt.as_signed_long() if z3.is_bv_value(lt) else None
                        # the interpreter's bound (ir.MAX_HOLDS) and its release of a
                        # lock not held: both run-time model errors, never a wrap
                        ok = []
                        delta = bv(-1) if rel else bv(1)
                        for li in range(len(self.model.locks)):
                            if known is not None and li != known:
                                continue
                            name = self.v.held(self.c, li, md)
                            count = cur[name]
                            fine = count > bv(0) if rel else count < bv(ir.MAX_HOLDS)
                            ok.append(fine if known is not None else z3.Implies(lt == bv(li), fine))
                            cur[name] = count + delta if known is not None else z3.If(
                                lt == bv(li), count + delta, count)
                        q.events.append((MODEL_ERROR, z3.And(ok)))
                        nxt.append(q)
                    case ir.Check(prop=pr, cond=c):
                        q.events.append((self.prop_index[pr], truth(self.expr(c, cur, node))))
                        nxt.append(q)
                    case _:
                        raise AssertionError(st)
            paths = nxt
        return paths

    def _return(self, node: Node, p: _PS, value) -> list[_PS]:
        ret = node.ret
        if ret is not None:
            nxt, result, frame, _sid = ret
            if result is not None:
                self.write(result, value if value is not None else bv(0), p, node, frame=frame)
            p.node = nxt
            self._glue(p)
            return [p]
        self._top_end(p, value)
        return [p]

    def _top_end(self, p: _PS, value) -> None:
        c = self.c
        exit_event = self.prop_index.get(ir.EXIT_EVENT)
        if exit_event is not None and self.model.locks:
            # the interpreter's check where a body ends or a work returns: nothing held
            p.events.append((exit_event, z3.And([p.cur[self.v.held(c, lk.index, md)] == bv(0)
                                                  for lk in self.model.locks for md in MODES.values()])))
        if self.auto.kind == "kthread":
            p.cur[self.v.status(c)] = bv(RET)
            p.cur[self.v.aux(c)] = value if value is not None else bv(0)
            p.cur["__pc__"] = z3.BitVecVal(NO_PC, PCW)
            p.done = True
            return
        actor = c.actor
        assert actor is not None
        aux = p.cur[self.v.aux(c)]
        restart = z3.BoolVal(True) if actor.repeat == 0 else (
            z3.BoolVal(False) if actor.repeat is None else aux + bv(1) < bv(actor.repeat))
        # restart: the next iteration starts a new block (its first node is not local)
        if actor.repeat is not None and actor.repeat != 0:
            p.cur[self.v.aux(c)] = z3.If(restart, aux + bv(1), aux + bv(1))
        p.cur[self.v.status(c)] = z3.If(restart, bv(RUN), bv(DONE))
        p.cur["__pc__"] = z3.If(restart, z3.BitVecVal(self.auto.entry, PCW), z3.BitVecVal(NO_PC, PCW))
        if actor.repeat == 0:
            p.cur[self.v.aux(c)] = bv(0)
        for k in range(self.auto.nlocals):
            p.cur[self.v.local(c, k)] = bv(0)      # dead once the body ends, restart or not
        p.done = True

    def _glue(self, p: _PS) -> None:
        """Control glue after a statement: end of `ipi`, falling off a function."""
        while not p.done:
            node = self.auto.nodes[p.node]
            if node.op == "ipi_exit":
                p.cur[self.v.irqs(self.c)] = p.cur[self.v.saved(self.c)]
                p.cur[self.v.ipi(self.c)] = bv(-1)
                p.cur[self.v.saved(self.c)] = bv(0)
                p.node = node.succ[0]
            elif node.op == "end":
                if node.ret is not None:
                    p.node = node.ret[0]
                else:
                    self._top_end(p, None)
            else:
                return

    def _kthread_ctxs(self, family: str) -> list[Context]:
        return [o for o in self.v.contexts if o.kthread is not None and o.kthread.name == family]

    def _callin(self, node: Node, p: _PS, is_first: bool) -> list[_PS]:
        s = node.stmt
        assert isinstance(s, ir.Call) and s.kthread is not None and s.kthread_cpu is not None
        cur = p.cur
        kcpu = self.expr(s.kthread_cpu, cur, node)
        targets = self._kthread_ctxs(s.kthread.name)
        idle = z3.Or([z3.And(kcpu == bv(t.home_cpu), cur[self.v.status(t)] == bv(IDLE)) for t in targets])
        res_paths: list[_PS] = []
        if is_first:
            p.guard.append(idle)
            live = [p]
        else:
            stop = p.fork()
            stop.guard.append(z3.Not(idle))
            stop.done = True
            res_paths.append(stop)
            p.guard.append(idle)
            live = [p]
        fv = self.expr(s.callee, cur, node)
        args = [self.expr(a, cur, node) for a in s.args]
        for q in live:
            outs = []
            for idx, family in node.work:
                r = q.fork() if len(node.work) > 1 else q
                r.guard.append(fv == bv(idx + 1))
                for t in targets:
                    hit = kcpu == bv(t.home_cpu)
                    entry = t.auto.entries[idx]
                    r.cur[self.v.pc(t)] = z3.If(hit, z3.BitVecVal(entry, PCW), r.cur[self.v.pc(t)])
                    r.cur[self.v.status(t)] = z3.If(hit, bv(RUN), r.cur[self.v.status(t)])
                    r.cur[self.v.aux(t)] = z3.If(hit, bv(0), r.cur[self.v.aux(t)])
                    for k in range(t.auto.nlocals):
                        val = args[k] if k < len(args) else bv(0)
                        r.cur[self.v.local(t, k)] = z3.If(hit, val, r.cur[self.v.local(t, k)])
                r.cur[self.v.local(self.c, node.frame + node.hidden)] = kcpu
                r.node = node.succ[0]
                self._glue(r)
                outs.append(r)
            res_paths.extend(outs)
        return res_paths

    def _callwait(self, node: Node, p: _PS, is_first: bool) -> list[_PS]:
        s = node.stmt
        assert isinstance(s, ir.Call) and s.kthread is not None
        cur = p.cur
        kcpu = cur[self.v.local(self.c, node.frame + node.hidden)]
        targets = self._kthread_ctxs(s.kthread.name)
        ready = z3.Or([z3.And(kcpu == bv(t.home_cpu), cur[self.v.status(t)] == bv(RET)) for t in targets])
        out: list[_PS] = []
        if not is_first:
            stop = p.fork()
            stop.guard.append(z3.Not(ready))
            stop.done = True
            out.append(stop)
        p.guard.append(ready)
        value = bv(0)
        for t in targets:
            value = z3.If(kcpu == bv(t.home_cpu), cur[self.v.aux(t)], value)
        for t in targets:
            hit = kcpu == bv(t.home_cpu)
            p.cur[self.v.status(t)] = z3.If(hit, bv(IDLE), p.cur[self.v.status(t)])
            p.cur[self.v.aux(t)] = z3.If(hit, bv(0), p.cur[self.v.aux(t)])
            p.cur[self.v.pc(t)] = z3.If(hit, z3.BitVecVal(NO_PC, PCW), p.cur[self.v.pc(t)])
            for k in range(t.auto.nlocals):
                p.cur[self.v.local(t, k)] = z3.If(hit, bv(0), p.cur[self.v.local(t, k)])
        if s.result is not None:
            self.write(s.result, value, p, node)
        p.node = node.succ[0]
        self._glue(p)
        out.append(p)
        return out


def _same(a, b) -> bool:
    return b is not None and (a is b or z3.eq(a, b))


def _domain(ty: ir.Type, n: int) -> list[tuple[int, str]]:
    match ty:
        case ir.BoolType():
            return [(0, "false"), (1, "true")]
        case ir.IntType(lo=lo, hi=hi):
            return [(v, str(v)) for v in range(lo, hi + 1)]
        case ir.CpuType():
            return [(c, str(c)) for c in range(n)]
        case ir.EnumType(members=members):
            return list(enumerate(members))
    raise AssertionError(ty)
