"""One atomic step of one context: `run_context(prog, state, ci)`.

Returns either the possible outcomes of the step (one per nondeterministic
choice), or that the context cannot move: blocked (with whom it waits for) or
idle (nothing to do: a finished actor, an idle kthread, a false `require`).

NOTE(interrupts): interrupt state belongs to a context and excludes only its own
CPU: while a context on CPU c has interrupts off (local_irq_save(), or an `ipi`
handler running on c), no other context on c runs and no IPI enters c.

NOTE(deadlock): a context blocked on `await` waits for the contexts its `waits
for` clause names (holders of a lock, contexts inside an acquire operation such
as a pending writer), or, without a clause, for every other live context; a
caller waits for the kthread running its work; a context kept off its CPU waits
for the context with interrupts off there. A state deadlocks when the greatest
set D of blocked contexts such that each waits only for members of D or for
actors that have finished is not empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tdxproof.interp.program import (ANY, ASSIGN, ATOMIC, AWAIT, BRANCH, CALL, CALLIN, CALLWAIT, CHECK,
                                     CHOICE, END, FOR_FIRST, FOR_NEXT, FREE, IPI_ENTER, IPI_EXIT, JUMP, PICK,
                                     RANGE_FIRST, RANGE_NEXT, REQUIRE, RETURN, ModelError, Program)
from tdxproof.interp.state import DONE, IDLE, RET, RUN, State

MAX_FRAMES = 48


@dataclass(frozen=True, slots=True)
class Outcome:
    choice: str | None
    state: State
    events: tuple[int, ...]  # indexes of event properties whose check failed in this step
    span: Any


@dataclass(frozen=True, slots=True)
class Blocked:
    waits: frozenset[int] | None  # None: waits for every other live context
    span: Any


IDLE_RESULT = "idle"


def current_cpu(prog: Program, ctx: tuple, ci: int) -> int:
    frames = ctx[0]
    if frames and frames[-1][3] >= 0:
        return frames[-1][3]
    return prog.contexts[ci].home_cpu


class Machine:
    __slots__ = ("prog", "g", "ctxs", "ci", "frames", "held_l", "irqs", "status", "aux", "locals", "q",
                 "events", "cpu", "in_ipi")

    def __init__(self, prog: Program, state: State, ci: int):
        self.prog = prog
        self.g = list(state[0])
        self.ctxs = list(state[1])
        self.ci = ci
        frames, held, irqs, status, aux = state[1][ci]
        self.frames = [list(f) for f in frames]
        for f in self.frames:
            f[2] = list(f[2])
        self.held_l = list(held)
        self.irqs = irqs
        self.status = status
        self.aux = aux
        self.locals = self.frames[-1][2] if self.frames else []
        self.q: dict[int, int] = {}
        self.events: list[int] = []
        self._update_cpu()

    def _update_cpu(self) -> None:
        top = self.frames[-1] if self.frames else None
        if top is not None and top[3] >= 0:
            self.cpu, self.in_ipi = top[3], 1
        else:
            self.cpu, self.in_ipi = self.prog.contexts[self.ci].home_cpu, 0

    # ---- lock queries (evaluate.py calls these)
    def held(self, lock: int, mode: Any) -> bool:
        for lk, md in self.held_l:
            if lk == lock and (mode is None or md == mode):
                return True
        spec = self.prog.contexts[self.ci]
        # lockdep: cpuhp/c runs callbacks for a control task that holds cpu_hotplug_lock
        return bool(spec.lockdep_held) and lock in spec.lockdep_held and self.status == RUN

    def holders(self, lock: int, mode: Any) -> int:
        n = 0
        for j, ctx in enumerate(self.ctxs):
            held = self.held_l if j == self.ci else ctx[1]
            for lk, md in held:
                if lk == lock and (mode is None or md == mode):
                    n += 1
        return n

    # ---- packing
    def pack(self) -> State:
        frames = tuple((f[0], f[1], tuple(f[2]), f[3], f[4]) for f in self.frames)
        self.ctxs[self.ci] = (frames, tuple(sorted(self.held_l)), self.irqs, self.status, self.aux)
        return (tuple(self.g), tuple(self.ctxs))

    # ---- frames
    def push(self, code_id: int, args: list[int]) -> None:
        if len(self.frames) >= MAX_FRAMES:
            raise ModelError("call stack too deep (recursion through function pointers?)", None)
        code = self.prog.codes[code_id]
        loc = args + [0] * (code.nlocals - len(args))
        ipi = self.frames[-1][3] if self.frames else -1
        self.frames.append([code_id, 0, loc, ipi, 0])
        self.locals = loc
        self._update_cpu()

    def do_return(self, value: int | None) -> None:
        self.frames.pop()
        if self.frames:
            caller = self.frames[-1]
            self.locals = caller[2]
            self._update_cpu()
            code = self.prog.codes[caller[0]]
            call = code.instrs[caller[1] - 1]
            if call.d is not None:
                if value is None:
                    raise ModelError("a function that returns nothing was used as a value", call.span)
                call.d(self, value)
            return
        self.locals = []
        self._update_cpu()
        spec = self.prog.contexts[self.ci]
        if spec.kind == "kthread":
            self.status, self.aux = RET, value or 0
            return
        actor = spec.actor
        assert actor is not None
        done = self.aux + 1
        if actor.repeat == 0 or (actor.repeat is not None and done < actor.repeat):
            self.aux = done if actor.repeat else 0
            code = self.prog.codes[spec.code]
            self.frames = [[spec.code, 0, [0] * code.nlocals, -1, 0]]
            self.locals = self.frames[0][2]
        else:
            self.status = DONE
            self.aux = done

    def settle(self) -> None:
        """Run control-flow glue (jumps, end of `ipi`, end of a void function) and
        forget dead locals: both are invisible to every other context."""
        while self.frames:
            f = self.frames[-1]
            code = self.prog.codes[f[0]]
            ins = code.instrs[f[1]]
            if ins.op not in FREE:
                break
            if ins.op == JUMP:
                f[1] = ins.target
            elif ins.op == IPI_EXIT:
                self.irqs = f[4]
                f[3], f[4] = -1, 0
                f[1] += 1
                self._update_cpu()
            else:  # END of a body
                self.do_return(None)
        for f in self.frames:
            live = self.prog.codes[f[0]].live[f[1]]
            loc = f[2]
            for i, alive in enumerate(live):
                if not alive:
                    loc[i] = 0


def _waiters_of(prog: Program, state: State, ci: int, waits: list | None, m: Machine) -> frozenset[int] | None:
    if waits is None:
        return None
    out: set[int] = set()
    for kind, flock, mode in waits:
        lock = flock(m)
        for j, ctx in enumerate(state[1]):
            if kind == "holders":
                if any(lk == lock and (mode == 0 or md == mode) for lk, md in ctx[1]):
                    out.add(j)
            elif j != ci:
                for fr in ctx[0]:
                    am = prog.acquire_codes.get(fr[0])
                    if am is not None and (mode == 0 or am == mode) and fr[2] and fr[2][0] == lock:
                        out.add(j)
    return frozenset(out)


def run_context(prog: Program, state: State, ci: int) -> list[Outcome] | Blocked | str:
    """One transition of context `ci`: the statements that touch only the
    context's own state, up to and including one statement that touches shared
    state (or can block), and the local ones after it (NOTE(steps) in
    program.py). The choice label joins the choices made on the way."""
    first_local = _next_is_local(prog, state, ci)
    first = run_statement(prog, state, ci)
    if not isinstance(first, list):
        return first
    done: list[Outcome] = []
    work = [(out, not first_local) for out in first]
    while work:
        out, visible_done = work.pop()
        if visible_done and not _next_is_local(prog, out.state, ci):
            done.append(out)
            continue
        now_local = _next_is_local(prog, out.state, ci)
        more = run_statement(prog, out.state, ci)
        if not isinstance(more, list):
            if visible_done:
                done.append(out)
            elif isinstance(more, str):
                done.append(out)          # e.g. a `require` that does not hold yet: stop here
            else:
                done.append(out)
            continue
        for nxt in more:
            choice = out.choice if nxt.choice is None else (nxt.choice if out.choice is None
                                                            else f"{out.choice}, {nxt.choice}")
            span = out.span if visible_done or now_local else nxt.span
            work.append((Outcome(choice, nxt.state, out.events + nxt.events, span),
                         visible_done or not now_local))
    done.reverse()
    return done


def _next_is_local(prog: Program, state: State, ci: int) -> bool:
    frames, _, _, status, _ = state[1][ci]
    if status != RUN or not frames:
        return False
    top = frames[-1]
    ins = prog.codes[top[0]].instrs[top[1]]
    if not ins.local:
        return False
    if ins.op == RETURN:
        # returning from the work of a kthread, or into a global, is visible
        if len(frames) < 2:
            return False
        caller = frames[-2]
        return prog.codes[caller[0]].instrs[caller[1] - 1].result_local
    return True


def run_statement(prog: Program, state: State, ci: int) -> list[Outcome] | Blocked | str:
    """Exactly one statement of context `ci` (the semantics' unit step)."""
    ctx = state[1][ci]
    frames, _, _, status, _ = ctx
    if status != RUN or not frames:
        return IDLE_RESULT
    cpu = current_cpu(prog, ctx, ci)
    for j, other in enumerate(state[1]):
        if j != ci and other[2] and other[3] == RUN and current_cpu(prog, other, j) == cpu:
            return Blocked(frozenset({j}), None)
    code_id, pc = frames[-1][0], frames[-1][1]
    ins = prog.codes[code_id].instrs[pc]
    op = ins.op
    m = Machine(prog, state, ci)
    span = ins.span

    def done(choice: str | None = None, mach: Machine = m) -> Outcome:
        mach.settle()
        return Outcome(choice, mach.pack(), tuple(mach.events), span)

    f = m.frames[-1]
    if op == ASSIGN:
        ins.a(m, ins.b(m))
        f[1] += 1
        return [done()]
    if op == BRANCH:
        f[1] = pc + 1 if ins.a(m) else ins.target
        return [done()]
    if op == CALL:
        if ins.a is not None:
            target = ins.a
        else:
            fv = ins.b(m)
            if fv == 0:
                raise ModelError("call through a null function pointer (a kernel oops)", span)
            target = prog.fn_code[fv - 1]
        args = [fa(m) for fa in ins.c]
        f[1] = pc + 1
        call_result = ins.d
        if call_result is not None:
            for slot in ins.defs:
                f[2][slot] = 0
        m.push(target, args)
        return [done()]
    if op == AWAIT:
        if not ins.a(m):
            return Blocked(_waiters_of(prog, state, ci, ins.b, m), span)
        f[1] += 1
        return [done()]
    if op == ATOMIC:
        if ins.a is not None and not ins.a(m):
            return Blocked(_waiters_of(prog, state, ci, ins.b, m), span)
        f[1] += 1
        _run_atomic(m, ins.c)
        return [done()]
    if op == RETURN:
        m.do_return(ins.a(m) if ins.a is not None else None)
        return [done()]
    if op == CHECK:
        if not ins.b(m):
            m.events.append(ins.a)
        f[1] += 1
        return [done()]
    if op == REQUIRE:
        if not ins.a(m):
            return IDLE_RESULT
        f[1] += 1
        return [done()]
    if op == CHOICE:
        outs = []
        for label, target in zip(ins.a, ins.b):
            mm = Machine(prog, state, ci)
            mm.frames[-1][1] = target
            outs.append(done(label, mm))
        return outs
    if op == PICK:
        outs = []
        for c in range(prog.n):
            mm = Machine(prog, state, ci)
            mm.locals[ins.a] = c
            if ins.b is None or ins.b(mm):
                mm.frames[-1][1] = pc + 1
                outs.append(done(f"{prog.codes[code_id].local_names[ins.a]}={c}", mm))
        return outs if outs else IDLE_RESULT
    if op == ANY:
        outs = []
        for v, label in ins.b:
            mm = Machine(prog, state, ci)
            ins.a(mm, v)
            mm.frames[-1][1] = pc + 1
            outs.append(done(label, mm))
        return outs
    if op in (FOR_FIRST, FOR_NEXT):
        start = 0 if op == FOR_FIRST else f[2][ins.a] + 1
        for c in range(start, prog.n):
            m.locals[ins.a] = c
            if ins.b is None or ins.b(m):
                f[1] = pc + 1 if op == FOR_FIRST else ins.alt
                return [done()]
        f[1] = ins.target
        return [done()]
    if op == RANGE_FIRST:
        first, last = ins.b[0](m), ins.b[1](m)
        if (first < last) if ins.c else (first > last):
            f[1] = ins.target
        else:
            f[2][ins.a], f[2][ins.d] = first, last
            f[1] = pc + 1
        return [done()]
    if op == RANGE_NEXT:
        cur, last = f[2][ins.a], f[2][ins.d]
        if cur == last:
            f[1] = ins.target
        else:
            f[2][ins.a] = cur - 1 if ins.c else cur + 1
            f[1] = ins.alt
        return [done()]
    if op == IPI_ENTER:
        target = ins.a(m)
        if f[3] >= 0:
            raise ModelError("an IPI handler cannot send a nested `ipi`", span)
        for j, other in enumerate(state[1]):
            if j != ci and other[2] and other[3] == RUN and current_cpu(prog, other, j) == target:
                return Blocked(frozenset({j}), span)
        f[3], f[4] = target, m.irqs
        m.irqs = 1
        m._update_cpu()
        f[1] += 1
        return [done()]
    if op == CALLIN:
        base, fcpu = ins.c
        kc = fcpu(m)
        target_ci = base + kc
        tctx = state[1][target_ci]
        if tctx[3] != IDLE:
            return Blocked(frozenset({target_ci}), span)
        fv = ins.a(m)
        if fv == 0:
            raise ModelError("call through a null function pointer (a kernel oops)", span)
        args = [fa(m) for fa in ins.b]
        code_id2 = prog.fn_code[fv - 1]
        code2 = prog.codes[code_id2]
        loc = args + [0] * (code2.nlocals - len(args))
        m.ctxs[target_ci] = (((code_id2, 0, tuple(loc), -1, 0),), (), 0, RUN, 0)
        f[2][ins.d] = target_ci
        f[1] += 1
        return [done()]
    if op == CALLWAIT:
        target_ci = f[2][ins.a]
        tctx = state[1][target_ci]
        if tctx[3] != RET:
            return Blocked(frozenset({target_ci}), span)
        value = tctx[4]
        m.ctxs[target_ci] = ((), (), 0, IDLE, 0)
        f[1] += 1
        if ins.d is not None:
            ins.d(m, value)
        return [done()]
    if op in FREE:  # only reachable for a context that starts on glue
        return [done()]
    raise AssertionError(op)


def _run_atomic(m: Machine, body: list[tuple]) -> None:
    for item in body:
        kind = item[0]
        if kind == "assign":
            item[1](m, item[2](m))
        elif kind == "if":
            _run_atomic(m, item[2] if item[1](m) else item[3])
        elif kind == "hold":
            lock = item[1](m)
            for second, prop in m.prog.order_rules.get(lock, ()):
                if m.held(second, None):  # lockdep's view: cpuhp/c holds cpu_hotplug_lock
                    m.events.append(prop)
            m.held_l.append((lock, item[2]))
        elif kind == "unhold":
            entry = (item[1](m), item[2])
            if entry not in m.held_l:
                lock = m.prog.lock_names[entry[0]]
                raise ModelError(f"releases `{lock}`, which this context does not hold", item[3])
            m.held_l.remove(entry)
        elif kind == "check":
            if not item[2](m):
                m.events.append(item[1])
        elif kind == "require":
            if not item[1](m):
                raise ModelError("a `require` inside `atomic` failed", None)


def deadlocked(state: State, blocked: dict[int, frozenset[int] | None]) -> frozenset[int]:
    """The greatest set of blocked contexts that wait only on each other or on
    finished actors (NOTE(deadlock))."""
    ctxs = state[1]
    finished = {j for j, c in enumerate(ctxs) if c[3] == DONE}
    live = {j for j, c in enumerate(ctxs) if c[3] != IDLE}
    d = set(blocked)
    changed = True
    while changed:
        changed = False
        for j in list(d):
            waits = blocked[j]
            if waits is None:
                waits = frozenset(live - {j})
            if not waits <= d | finished:
                d.discard(j)
                changed = True
    return frozenset(d)
