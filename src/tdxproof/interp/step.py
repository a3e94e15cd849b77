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

import operator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tdxproof.interp.program import (ANY, ASSIGN, ATOMIC, AWAIT, BRANCH, CALL, CALLIN, CALLWAIT, CHECK, END,
                                     CHOICE, FOR_FIRST, FOR_NEXT, FREE, IPI_ENTER, IPI_EXIT, JUMP, PICK,
                                     MODE_NAME, RANGE_FIRST, RANGE_NEXT, REQUIRE, RETURN, ModelError, Program)
from tdxproof.interp.state import DONE, IDLE, RET, RUN, State
from tdxproof.interp.symmetry import OrderSeen
from tdxproof.model import ir
from tdxproof.model.blocks import continue_phase, phase_after

MAX_FRAMES = 48


class Outcome(NamedTuple):
    """One outcome of a transition. (A named tuple, not a frozen dataclass: a
    search makes one per successor, and a frozen dataclass costs 4x to build.)"""
    choice: str | None
    state: State
    events: tuple[int, ...]  # indexes of event properties whose check failed in this step
    span: Any


@dataclass(frozen=True, slots=True)
class Blocked:
    waits: frozenset[int] | None  # None: waits for every other live context
    span: Any
    # a `waits for` clause, its locks evaluated: what `waits` was computed from (_wait_set())
    on: tuple | None = field(default=None, compare=False)


IDLE_RESULT = "idle"


def current_cpu(prog: Program, ctx: tuple, ci: int) -> int:
    frames = ctx[0]
    if frames and frames[-1][3] >= 0:
        return frames[-1][3]
    return prog.home_cpus[ci]


class Machine:
    """The mutable state of one context during one transition. Only the top frame
    is unpacked; the frames below it stay tuples until they are returned to.

    `others` (one list, shared with the machine's forks) records what the
    transition read of other contexts: others[0] is true once it read (or
    changed) them at large (a hand-off, an IPI's target CPU), others[1:] are what
    it read of them, each an int j (it found that context j, a kthread, had not
    returned its work) or a (lock, mode, n) (n other contexts hold lock in mode:
    holders()). Otherwise what it does is a function of its own context, the
    globals and those readings alone (Successors memoises those). A wait set
    (Blocked.waits) is computed from the other contexts as they are; Blocked.on
    keeps what it is computed from.
    """

    __slots__ = ("prog", "g", "ctxs", "ci", "below", "code", "pc", "locals", "ipi", "saved",
                 "held_l", "irqs", "status", "aux", "q", "events", "labels", "cpu", "in_ipi", "span",
                 "others")

    def __init__(self, prog: Program, state: State | None, ci: int):
        self.prog = prog
        self.ci = ci
        self.q: dict[int, int] = {}
        if state is None:
            return
        self.others = [False]
        self.g = state[0]      # a tuple until the first write (evaluate.compile_writer copies it)
        self.ctxs = list(state[1])
        frames, held, irqs, status, aux = state[1][ci]
        self.held_l = list(held)
        self.irqs, self.status, self.aux = irqs, status, aux
        self.events: list[int] = []
        self.labels: list[str] = []
        self.span = None
        if frames:
            self.below = list(frames[:-1])
            self.code, self.pc, loc, self.ipi, self.saved = frames[-1]
            self.locals = list(loc)
        else:
            self.below, self.code, self.pc, self.locals, self.ipi, self.saved = [], -1, 0, [], -1, 0
        self._update_cpu()

    def fork(self) -> "Machine":
        m = Machine(self.prog, None, self.ci)
        g = self.g
        m.g = g if type(g) is tuple else list(g) if type(g) is list else g.fork()
        m.ctxs, m.below = list(self.ctxs), list(self.below)
        m.code, m.pc, m.locals, m.ipi, m.saved = self.code, self.pc, list(self.locals), self.ipi, self.saved
        m.held_l, m.irqs, m.status, m.aux = list(self.held_l), self.irqs, self.status, self.aux
        m.events, m.labels, m.span = list(self.events), list(self.labels), self.span
        m.cpu, m.in_ipi = self.cpu, self.in_ipi
        m.others = self.others
        return m

    @property
    def has_frame(self) -> bool:
        return self.code >= 0

    def _update_cpu(self) -> None:
        if self.code >= 0 and self.ipi >= 0:
            self.cpu, self.in_ipi = self.ipi, 1
        else:
            self.cpu, self.in_ipi = self.prog.home_cpus[self.ci], 0

    # ---- lock queries (evaluate.py calls these)
    def held(self, lock: int, mode: Any) -> bool:
        for lk, md in self.held_l:
            if lk == lock and (mode is None or md == mode):
                return True
        spec = self.prog.contexts[self.ci]
        # lockdep: cpuhp/c runs callbacks for a control task that holds cpu_hotplug_lock
        return bool(spec.lockdep_held) and lock in spec.lockdep_held and self.status == RUN

    def holders(self, lock: int, mode: Any) -> int:
        n = mine = 0
        ci = self.ci
        for lk, md in self.held_l:
            if lk == lock and (mode is None or md == mode):
                mine += 1
        for j, ctx in enumerate(self.ctxs):
            if j != ci:
                for lk, md in ctx[1]:
                    if lk == lock and (mode is None or md == mode):
                        n += 1
        self.others.append((lock, mode, n))   # what it read of the others: how many hold it so
        return n + mine

    # ---- packing
    def call_chain(self) -> tuple[str, ...]:
        """The running function and its callers, innermost first, each caller with
        the position of its call (what a model error's note shows)."""
        if self.code < 0:
            return ()
        out = [_code_label(self.prog.codes[self.code].name)]
        for code, pc, *_ in reversed(self.below):
            call = self.prog.codes[code].instrs[pc - 1]
            out.append(f"{_code_label(self.prog.codes[code].name)} at {call.span}")
        return tuple(out)

    def frames(self) -> tuple:
        if self.code < 0:
            return tuple(self.below)
        top = (self.code, self.pc, tuple(self.locals), self.ipi, self.saved)
        return tuple(self.below) + (top,) if self.below else (top,)

    def pack(self) -> State:
        held = self.held_l
        self.ctxs[self.ci] = (self.frames(), tuple(sorted(held)) if len(held) > 1 else tuple(held),
                              self.irqs, self.status, self.aux)
        return (tuple(self.g), tuple(self.ctxs))

    # ---- frames
    def push(self, code_id: int, args: list[int]) -> None:
        if len(self.below) + 1 >= MAX_FRAMES:
            raise ModelError("call stack too deep (recursion through function pointers?)", None)
        code = self.prog.codes[code_id]
        if self.code >= 0:
            caller = self.prog.codes[self.code]
            loc = self.locals
            if len(loc) != caller.nlocals:   # never, in practice: the general form
                live = caller.live[self.pc]
                saved = tuple(v if a else 0 for v, a in zip(loc, live))
            else:                            # the caller's dead locals are forgotten (0)
                dead = caller.dead[self.pc]
                if dead:
                    loc = list(loc)
                    for i in dead:
                        loc[i] = 0
                saved = tuple(loc)
            self.below.append((self.code, self.pc, saved, self.ipi, self.saved))
        self.code, self.pc, self.saved = code_id, 0, 0
        self.locals = args + [0] * (code.nlocals - len(args))

    def do_return(self, value: int | None) -> None:
        if self.below:
            self.code, self.pc, loc, self.ipi, self.saved = self.below.pop()
            self.locals = list(loc)
            self._update_cpu()
            call = self.prog.codes[self.code].instrs[self.pc - 1]
            if call.d is not None:
                if value is None:
                    raise ModelError("a function that returns nothing was used as a value", call.span)
                call.d(self, value)
            return
        self.code, self.locals, self.ipi, self.saved = -1, [], -1, 0
        self._update_cpu()
        exit_event = self.prog.prop_index.get(ir.EXIT_EVENT)
        if exit_event is not None and self.held_l:
            self.events.append(exit_event)     # the body or the work ends holding a lock
        spec = self.prog.contexts[self.ci]
        if spec.kind == "kthread":
            self.status, self.aux = RET, value or 0
            return
        actor = spec.actor
        assert actor is not None
        done = self.aux + 1
        if actor.repeat == 0 or (actor.repeat is not None and done < actor.repeat):
            self.aux = done if actor.repeat else 0
            self.code, self.pc = spec.code, 0
            self.locals = [0] * self.prog.codes[spec.code].nlocals
        else:
            self.status = DONE
            self.aux = done

    def settle(self) -> None:
        """Run control-flow glue (jumps, end of `ipi`, end of a void function) and
        forget dead locals: both are invisible to every other context."""
        codes = self.prog.codes
        while self.code >= 0:
            ins = codes[self.code].instrs[self.pc]
            op = ins.op
            if op == JUMP:
                self.pc = ins.target
            elif op == IPI_EXIT:
                self.irqs = self.saved
                self.ipi, self.saved = -1, 0
                self.pc += 1
                self._update_cpu()
            elif op == END:  # END of a body
                self.do_return(None)
            else:
                break
        if self.code >= 0:
            dead = codes[self.code].dead[self.pc]
            if dead:
                loc = self.locals
                for i in dead:
                    loc[i] = 0

    def visible_return(self) -> bool:
        """A `return` whose mover is B is visible all the same from kthread work,
        or into a visible result (model/cfg.py: return_is_visible())."""
        if not self.below:
            return True
        code, pc = self.below[-1][0], self.below[-1][1]
        return not self.prog.codes[code].instrs[pc - 1].result_local

    def next_kind(self) -> tuple[str | None, bool]:
        """The mover kind of the next statement (None: the context is not running)
        and whether it may block."""
        if self.status != RUN or self.code < 0:
            return None, False
        ins = self.prog.codes[self.code].instrs[self.pc]
        if ins.ret_b and self.visible_return():
            return "N", False
        return ins.mover, ins.blocking

    def first_kind(self) -> str:
        kind, _ = self.next_kind()
        if kind in ("cut", "restart"):
            return self.prog.codes[self.code].instrs[self.pc].first or "N"
        return "N" if kind is None else kind


def _wait_set(prog: Program, ctxs: tuple, ci: int, on: tuple) -> frozenset[int]:
    """The contexts that `on` ((kind, lock, mode)s of a `waits for` clause) names."""
    out: set[int] = set()
    acquire_codes = prog.acquire_codes
    for kind, lock, mode in on:
        if kind == "holders":
            for j, ctx in enumerate(ctxs):
                for lk, md in ctx[1]:
                    if lk == lock and (mode == 0 or md == mode):
                        out.add(j)
                        break
        else:
            for j, ctx in enumerate(ctxs):
                if j != ci:
                    for fr in ctx[0]:
                        am = acquire_codes.get(fr[0])
                        if am is not None and (mode == 0 or am == mode) and fr[2] and fr[2][0] == lock:
                            out.add(j)
    return frozenset(out)


def _blocked_on(m: Machine, ins, state: State | None) -> Blocked:
    """Blocked at `ins` (an await or atomic), waiting for whom its clause (ins.b) names."""
    if ins.b is None:
        return Blocked(None, ins.span)
    on = tuple((kind, flock(m), mode) for kind, flock, mode in ins.b)
    return Blocked(_wait_set(m.prog, (state or m.pack())[1], m.ci, on), ins.span, on)


def run_context(prog: Program, state: State, ci: int) -> list[Outcome] | Blocked | str:
    """One transition (block) of context `ci`: its first statement, then the
    statements that NOTE(blocks) lets join it. The choice label joins the choices
    made on the way."""
    ctx = state[1][ci]
    if ctx[3] != RUN or not ctx[0]:          # _cannot_start(), inline: most contexts idle
        return IDLE_RESULT
    cannot = _irq_excluded(prog, state, ci, current_cpu(prog, ctx, ci))
    if cannot is not None:
        return cannot
    return _run_block(prog, state, ci, Machine(prog, state, ci))


class Successors:
    """run_context() for a search, memoised: a transition that read no other
    context at large (Machine.others) is a function of (ci, its context, the
    globals it read) and of the few other contexts it looked at -- its outcomes
    are the state with its writes to the globals applied and that context
    replaced, every other context as it was -- so it is run once per such key
    and replayed from the memo after, while the contexts it looked at are still
    as it found them (the check that interrupts off elsewhere keep it off its
    CPU reads other contexts, and always runs). The globals it reads and writes
    are recorded as it runs (_Tracked); the memo keys a context's transitions by
    the values of the globals they read, so a transition is reused from every
    globals vector that agrees there, and a blocked transition's wait set is
    recomputed from its Blocked.on (option4 N=3: 903,481 transitions asked for,
    30,226 run; keyed by the whole globals vector, with holders() and wait sets
    reading the others at large, 393,362).

    States are canonical: their globals vector, each context and the vector of
    contexts are each one object per value (option4 N=3: 299,164 states, 39,077
    globals vectors, 11,530 context vectors, 371 contexts), so a search may key
    states by the id()s of their two parts, and the memo keys by id()s too. Ask
    only about states from canonical() or outcomes of this object (another
    state's successors are right, but equal states may then be distinct
    objects). Every object whose id() is in a key is kept alive by these tables,
    so an id() cannot stand for another object."""

    LIMIT = 2_000_000   # memo entries; past it, it starts again (memory)

    def __init__(self, prog: Program):
        self.prog = prog
        self.memo: dict[tuple, tuple] = {}
        self._entries = 0
        self.globals: dict[tuple[int, ...], tuple[int, ...]] = {}
        self.contexts: dict[tuple, tuple] = {}
        self.vectors: dict[tuple[int, ...], tuple] = {}   # id()s of the contexts -> the vector
        self.replaced: dict[tuple[int, int, int], tuple] = {}   # (vector, ci, context) -> (vector, result)
        # per vector of contexts (by id(), with the vector), its running contexts with
        # interrupts off as (j, their CPU), in order: what _irq_excluded() looks for;
        # and those of the last vector asked about
        self._irqs_off: dict[int, tuple[tuple, list[tuple[int, int]]]] = {}
        self._ctxs: tuple | None = None
        self._off: list[tuple[int, int]] = []

    def canonical(self, state: State) -> State:
        g, ctxs = state
        intern = self.contexts.setdefault
        ctxs = tuple(intern(c, c) for c in ctxs)
        return (self.globals.setdefault(g, g), self.vectors.setdefault(tuple(map(id, ctxs)), ctxs))

    def _with(self, ctxs: tuple, ci: int, c: tuple) -> tuple:
        """The canonical vector `ctxs` with (canonical) context `c` at `ci`."""
        key = (id(ctxs), ci, id(c))
        hit = self.replaced.get(key)
        if hit is not None and hit[0] is ctxs:
            return hit[1]
        t = ctxs[:ci] + (c,) + ctxs[ci + 1:]
        t = self.vectors.setdefault(tuple(map(id, t)), t)
        self.replaced[key] = (ctxs, t)
        return t

    def _canonical_outcome(self, ctxs: tuple, new: tuple) -> tuple:
        """The canonical vector equal to `new`, the contexts after a transition from `ctxs`."""
        changed = [j for j in range(len(new)) if new[j] is not ctxs[j]]
        intern = self.contexts.setdefault
        if len(changed) == 1:
            j = changed[0]
            return self._with(ctxs, j, intern(new[j], new[j]))
        t = tuple(intern(c, c) for c in new)
        return self.vectors.setdefault(tuple(map(id, t)), t)

    def step(self, state: State, ci: int) -> list[tuple] | Blocked | str:
        """run_context(prog, state, ci), but its outcomes are tuples of Outcome's
        fields (an Outcome, or a plain tuple: cheaper to make), their states canonical."""
        prog = self.prog
        g, ctxs = state
        ctx = ctxs[ci]
        if ctx[3] != RUN or not ctx[0]:
            return IDLE_RESULT
        if ctxs is not self._ctxs:
            self._ctxs = ctxs
            off = self._irqs_off.get(id(ctxs))
            if off is None or off[0] is not ctxs:
                off = self._irqs_off[id(ctxs)] = (ctxs, [(j, current_cpu(prog, c, j)) for j, c in enumerate(ctxs)
                                                         if c[2] and c[3] == RUN])
            self._off = off[1]
        if self._off:               # _irq_excluded()
            cpu = current_cpu(prog, ctx, ci)
            for j, c in self._off:
                if j != ci and c == cpu:
                    return Blocked(frozenset({j}), None)
        key = (ci, id(ctx))
        entry = self.memo.get(key)
        if entry is not None and entry[0] is ctx:
            for _, get, table in entry[1]:
                hits = table.get(get(g))
                if hits is None:
                    continue
                for js, counts, answer in hits:
                    if ((not js or all(ctxs[j][3] != RET for j in js))
                            and (not counts or self._counts_hold(ctxs, ci, counts))):
                        break
                else:
                    continue
                if type(answer) is not list:    # idle, or blocked
                    if type(answer) is Blocked and answer.on is not None:   # whom it waits for: as they are now
                        return Blocked(_wait_set(prog, ctxs, ci, answer.on), answer.span, answer.on)
                    return answer
                out = []
                for choice, writes, c, events, span, after, nexts in answer:
                    if writes:
                        g2 = after.get(id(g))
                        if g2 is None or g2[0] is not g:
                            g2 = after[id(g)] = (g, self._written(g, writes))
                        g2 = g2[1]
                    else:
                        g2 = g
                    r = nexts.get(id(ctxs))
                    if r is None or r[0] is not ctxs:
                        r = nexts[id(ctxs)] = (ctxs, self._with(ctxs, ci, c))
                    out.append((choice, (g2, r[1]), events, span))
                return out
        m = Machine(prog, state, ci)
        tracked = m.g = _Tracked(g)
        tracked.r, tracked.w, tracked.done = set(), set(), []
        res = _run_block(prog, state, ci, m)
        others = m.others
        if type(res) is not list:
            # idle (a `require` that does not hold), or blocked on what it read
            if not others[0]:
                self._remember(ctx, key, g, tracked.r, (*self._reads(others), res))
            return res
        intern = self.globals.setdefault
        contexts = self.contexts.setdefault
        for k, o in enumerate(res):
            g2, new = o.state
            g2 = intern(g2, g2)
            if others[0]:    # it may have changed other contexts (a hand-off)
                new = self._canonical_outcome(ctxs, new)
            else:            # only its own
                c = new[ci]
                new = self._with(ctxs, ci, contexts(c, c))
            res[k] = (o.choice, (g2, new), o.events, o.span)
        if not others[0]:
            writes = tracked.done    # each outcome's machine's writes, in the order _outcome() made them
            writes.reverse()
            self._remember(ctx, key, g, tracked.r, (*self._reads(others), [
                (choice, tuple((i, st[0][i]) for i in sorted(w)), st[1][ci], events, span, {}, {})
                for (choice, st, events, span), w in zip(res, writes)]))
        return res

    def _written(self, g: tuple, writes: tuple) -> tuple:
        """The canonical globals vector `g` with `writes` ((index, value)s) applied."""
        g2 = list(g)
        for i, v in writes:
            g2[i] = v
        g2 = tuple(g2)
        return self.globals.setdefault(g2, g2)

    @staticmethod
    def _reads(others: list) -> tuple:
        """What a transition read of other contexts: the kthreads it found had not
        returned (what _x_callwait() reads), and how many others held a lock in a
        mode, as (lock, mode, count) (what holders() reads)."""
        if len(others) == 1:
            return (), ()
        js = tuple(sorted({x for x in others[1:] if type(x) is int}))
        counts = tuple(sorted({x for x in others[1:] if type(x) is not int}, key=repr))
        return js, counts

    @staticmethod
    def _counts_hold(ctxs: tuple, ci: int, counts: tuple) -> bool:
        """Whether the contexts other than `ci` hold locks as `counts` says."""
        for lock, mode, n in counts:
            k = 0
            for j, ctx in enumerate(ctxs):
                if j != ci:
                    for lk, md in ctx[1]:
                        if lk == lock and (mode is None or md == mode):
                            k += 1
            if k != n:
                return False
        return True

    def _remember(self, ctx: tuple, key: tuple, g: tuple, read: set, entry: tuple) -> None:
        """Memoise a transition of the context `ctx` (key: (ci, id(ctx))) that read the
        globals `read` of `g`: the same transition from every globals vector
        that agrees with `g` there (it reads the same values, so it takes the same
        path, reads nothing else and writes the same values)."""
        if self._entries >= self.LIMIT:
            self.memo.clear()
            self._entries = 0
        per_ctx = self.memo.get(key)
        if per_ctx is None or per_ctx[0] is not ctx:
            per_ctx = self.memo[key] = (ctx, [])
        read_t = tuple(sorted(read))
        for r, get, table in per_ctx[1]:
            if r == read_t:
                break
        else:
            get = operator.itemgetter(*read_t) if read_t else _no_values
            table = {}
            per_ctx[1].append((read_t, get, table))
        table.setdefault(get(g), []).append(entry)
        self._entries += 1


def _no_values(g: tuple) -> tuple:
    return ()


class _Tracked(list):
    """The globals of a machine that Successors runs: it records the indexes the
    transition reads (r, shared by its forks) and writes (w, per machine), and
    each outcome's writes in the order _outcome() packs them (done, shared)."""
    __slots__ = ("r", "w", "done")

    def __getitem__(self, i):
        self.r.add(i)
        return list.__getitem__(self, i)

    def __setitem__(self, i, v):
        self.w.add(i)
        list.__setitem__(self, i, v)

    def fork(self) -> "_Tracked":
        t = _Tracked(self)
        t.r, t.w, t.done = self.r, set(self.w), self.done
        return t


def _run_block(prog: Program, state: State, ci: int, m: Machine) -> list[Outcome] | Blocked | str:
    """run_context() once the context can start."""
    mm = m
    codes = prog.codes
    try:
        # the block's phase after its first statement: phase_after(m.first_kind()),
        # precomputed per instruction (Program._block_tables)
        ins = codes[m.code].instrs[m.pc]
        phase = ins.phase0_vis if ins.ret_b and m.visible_return() else ins.phase0
        if ins.mover != "B":               # exec_statement(m, state), inline
            m.span = ins.span
        first = _EXEC[ins.op](m, ins, state)
        if type(first) is not list:
            return first
        done: list[Outcome] = []
        work = [(x, phase) for x in first]
        while work:
            mm, phase = work.pop()
            while True:
                # continue_phase(*mm.next_kind(), phase), precomputed per instruction
                if mm.status != RUN or mm.code < 0:
                    done.append(_outcome(mm))
                    break
                ins = codes[mm.code].instrs[mm.pc]
                nxt = (ins.joins_vis if ins.ret_b and mm.visible_return() else ins.joins)[phase + 1]
                if nxt is None:
                    done.append(_outcome(mm))
                    break
                if mm.span is None and ins.mover != "B":   # exec_statement(mm, None), inline
                    mm.span = ins.span
                more = _EXEC[ins.op](mm, ins, None)
                if type(more) is not list:   # it would block (only possible after invisible statements)
                    done.append(_outcome(mm))
                    break
                if len(more) == 1:           # no choice: go on with it (what pushing and popping it would do)
                    mm, phase = more[0], nxt
                    continue
                work.extend([(x, nxt) for x in more])
                break
    except ModelError as exc:   # _exec(): where it happened, in the machine that ran the statement
        exc.chain = exc.chain or mm.call_chain()
        raise
    done.reverse()
    return done


def _code_label(name: str) -> str:
    return name if name.startswith("actor ") else f"{name}()"


def walk_block(prog: Program, state: State, ci: int, choice: str | None):
    """Re-run one transition statement by statement, following its choices:
    yields (frames before, the statement's outcome)."""
    labels = [c.strip() for c in choice.split(",")] if choice else []
    m = Machine(prog, state, ci)
    if _cannot_start(prog, state, ci) is not None:
        return
    phase = phase_after(m.first_kind())
    s = state
    first = True
    while True:
        if not first:
            m = Machine(prog, s, ci)
            kind, blocking = m.next_kind()
            nxt = continue_phase(kind, blocking, phase)
            if nxt is None:
                return
            phase = nxt
        frames = s[1][ci][0]
        res = run_statement(prog, s, ci)
        if not isinstance(res, list) or not res:
            return
        pick = res[0]
        if len(res) > 1:
            want = labels.pop(0) if labels else None
            pick = next((o for o in res if o.choice == want), res[0])
        yield frames, pick
        s, first = pick.state, False


def _outcome(m: Machine) -> Outcome:
    if type(m.g) is _Tracked:
        m.g.done.append(m.g.w)
    return Outcome(", ".join(m.labels) if m.labels else None, m.pack(), tuple(m.events), m.span)


def _cannot_start(prog: Program, state: State, ci: int) -> Blocked | str | None:
    """Idle (nothing to run) or kept off its CPU by interrupts off there."""
    ctx = state[1][ci]
    if ctx[3] != RUN or not ctx[0]:
        return IDLE_RESULT
    return _irq_excluded(prog, state, ci, current_cpu(prog, ctx, ci))


def _irq_excluded(prog: Program, state: State, ci: int, cpu: int) -> Blocked | None:
    for j, other in enumerate(state[1]):
        if other[2] and j != ci and other[3] == RUN and current_cpu(prog, other, j) == cpu:
            return Blocked(frozenset({j}), None)
    return None


def run_statement(prog: Program, state: State, ci: int) -> list[Outcome] | Blocked | str:
    """Exactly one statement of context `ci` (the semantics' unit step)."""
    cannot = _cannot_start(prog, state, ci)
    if cannot is not None:
        return cannot
    m = Machine(prog, state, ci)
    m.span = prog.codes[m.code].instrs[m.pc].span  # this statement, local or not
    res = exec_statement(m, state)
    if not isinstance(res, list):
        return res
    return [_outcome(m) for m in res]


def exec_statement(m: Machine, state: State | None) -> list[Machine] | Blocked | str:
    """Execute the statement at the top of `m` (mutating it; forks at choices).
    `state` is the packed state before it, when the caller has it (for wait sets)."""
    ins = m.prog.codes[m.code].instrs[m.pc]
    if m.span is None and ins.mover != "B":
        m.span = ins.span
    return _EXEC[ins.op](m, ins, state)


# One function per opcode, indexed by it (_EXEC): each executes `ins` on `m` and
# returns the machines after it (settled), or Blocked, or IDLE_RESULT.

def _done(m: Machine) -> list[Machine]:
    m.settle()
    return [m]


def _x_assign(m: Machine, ins, state):
    ins.a(m, ins.b(m))
    m.pc += 1
    m.settle()
    return [m]


def _x_branch(m: Machine, ins, state):
    m.pc = m.pc + 1 if ins.a(m) else ins.target
    m.settle()
    return [m]


def _x_call(m: Machine, ins, state):
    if ins.a is not None:
        target = ins.a
    else:
        fv = ins.b(m)
        if fv == 0:
            raise ModelError("call through a null function pointer (a kernel oops)", ins.span)
        target = m.prog.fn_code[fv - 1]
    args = [fa(m) for fa in ins.c]
    m.pc += 1
    if ins.defs:
        loc = m.locals
        for slot in ins.defs:
            loc[slot] = 0
    m.push(target, args)
    m.settle()
    return [m]


def _x_await(m: Machine, ins, state):
    if not ins.a(m):
        return _blocked_on(m, ins, state)
    m.pc += 1
    m.settle()
    return [m]


def _x_atomic(m: Machine, ins, state):
    if ins.a is not None and not ins.a(m):
        if ins.d:   # `atomic { require c; ... }`: idles, as `require` does
            return IDLE_RESULT
        return _blocked_on(m, ins, state)
    m.pc += 1
    _run_atomic(m, ins.c)
    m.settle()
    return [m]


def _x_return(m: Machine, ins, state):
    m.do_return(ins.a(m) if ins.a is not None else None)
    m.settle()
    return [m]


def _x_check(m: Machine, ins, state):
    if not ins.b(m):
        m.events.append(ins.a)
    m.pc += 1
    m.settle()
    return [m]


def _x_require(m: Machine, ins, state):
    if not ins.a(m):
        return IDLE_RESULT
    m.pc += 1
    m.settle()
    return [m]


def _x_choice(m: Machine, ins, state):
    outs = []
    for label, target in zip(ins.a, ins.b):
        mm = m.fork()
        mm.pc = target
        mm.labels.append(label)
        outs.extend(_done(mm))
    return outs


def _x_pick(m: Machine, ins, state):
    outs = []
    pc = m.pc
    name = m.prog.codes[m.code].local_names[ins.a]
    old = m.locals[ins.a]
    for c in range(m.prog.n):
        m.locals[ins.a] = c
        if ins.b is None or ins.b(m):
            mm = m.fork()
            mm.pc = pc + 1
            mm.labels.append(f"{name}={c}")
            outs.extend(_done(mm))
    m.locals[ins.a] = old
    return outs if outs else IDLE_RESULT


def _x_any(m: Machine, ins, state):
    outs = []
    pc = m.pc
    for v, label in ins.b:
        mm = m.fork()
        ins.a(mm, v)
        mm.pc = pc + 1
        mm.labels.append(label)
        outs.extend(_done(mm))
    return outs


def _x_for(m: Machine, ins, state):
    if ins.c is not None:   # NOTE(any-order): Program(any_order=True)
        return _x_for_any(m, ins, state)
    first = ins.op == FOR_FIRST
    start = 0 if first else m.locals[ins.a] + 1
    for c in range(start, m.prog.n):
        m.locals[ins.a] = c
        if ins.b is None or ins.b(m):
            m.pc = m.pc + 1 if first else ins.alt
            return _done(m)
    m.pc = ins.target
    return _done(m)


def _x_for_any(m: Machine, ins, state):
    """NOTE(any-order): docs/symmetry.md's semantics O of a `for cpu` loop step. It
    may go on at any CPU it has not passed whose condition holds; every CPU it has
    not passed whose condition fails is passed too (X); it ends when none holds.
    Where the argument that O contains every run of the reference semantics needs
    a condition unchanged (a CPU in X whose condition holds again; a `stable`
    condition whose value at some CPU moved), it raises OrderSeen."""
    n = m.prog.n
    full = (1 << n) - 1
    var, slot = ins.a, ins.c
    stable, checks = ins.d
    loc = m.locals
    old = loc[var]
    if ins.op == FOR_FIRST:
        bits = 0
        if stable is not None:
            for d in range(n):
                loc[var] = d
                if stable(m):
                    bits |= 1 << (2 * n + d)
    else:
        bits = loc[slot]
    for bslot, v, fn, snapshot in checks:
        if fn is None:
            continue
        b = bits if bslot == slot else loc[bslot]
        keep = loc[v]
        for d in range(n):
            if snapshot:
                seen = bool(fn_at(m, fn, v, d))
                if seen != bool((b >> (2 * n + d)) & 1):
                    loc[v] = keep
                    raise OrderSeen(ins.span)
            elif (b >> (n + d)) & 1 and fn_at(m, fn, v, d):
                loc[v] = keep
                raise OrderSeen(ins.span)
        loc[v] = keep
    passed = (bits | (bits >> n)) & full
    loc[slot] = bits       # an R2 condition reads what this loop ran its body at
    ok, failed = [], 0
    where = ins.b
    for c in range(n):
        if not (passed >> c) & 1:
            loc[var] = c
            if where is None or where(m):
                ok.append(c)
            else:
                failed |= 1 << c
    bits |= failed << n
    if not ok:
        loc[var], loc[slot] = old, bits
        m.pc = ins.target
        return _done(m)
    outs = []
    name = m.prog.codes[m.code].local_names[var]
    body = m.pc + 1 if ins.op == FOR_FIRST else ins.alt
    for c in ok:
        mm = m.fork() if len(ok) > 1 else m
        mm.locals[var], mm.locals[slot] = c, bits | (1 << c)
        mm.pc = body
        if len(ok) > 1:
            mm.labels.append(f"{name}={c}")
        outs.extend(_done(mm))
    return outs


def fn_at(m: Machine, fn, var: int, d: int) -> int:
    m.locals[var] = d
    return fn(m)


def _x_range_first(m: Machine, ins, state):
    first, last = ins.b[0](m), ins.b[1](m)
    if (first < last) if ins.c else (first > last):
        m.pc = ins.target
    else:
        m.locals[ins.a], m.locals[ins.d] = first, last
        m.pc += 1
    return _done(m)


def _x_range_next(m: Machine, ins, state):
    cur, last = m.locals[ins.a], m.locals[ins.d]
    if cur == last:
        m.pc = ins.target
    else:
        m.locals[ins.a] = cur - 1 if ins.c else cur + 1
        m.pc = ins.alt
    return _done(m)


def _x_ipi_enter(m: Machine, ins, state):
    prog, ci = m.prog, m.ci
    target = ins.a(m)
    if m.ipi >= 0:
        raise ModelError("an IPI handler cannot send a nested `ipi`", ins.span)
    m.others[0] = True
    cur = state or m.pack()
    for j, other in enumerate(cur[1]):
        if j != ci and other[2] and other[3] == RUN and current_cpu(prog, other, j) == target:
            return Blocked(frozenset({j}), ins.span)
    m.ipi, m.saved = target, m.irqs
    m.irqs = 1
    m._update_cpu()
    m.pc += 1
    return _done(m)


def _x_callin(m: Machine, ins, state):
    prog = m.prog
    m.others[0] = True
    base, fcpu = ins.c
    target_ci = base + fcpu(m)
    tctx = m.ctxs[target_ci]
    if tctx[3] != IDLE:
        return Blocked(frozenset({target_ci}), ins.span)
    fv = ins.a(m)
    if fv == 0:
        raise ModelError("call through a null function pointer (a kernel oops)", ins.span)
    args = [fa(m) for fa in ins.b]
    code_id2 = prog.fn_code[fv - 1]
    code2 = prog.codes[code_id2]
    loc = args + [0] * (code2.nlocals - len(args))
    m.ctxs[target_ci] = (((code_id2, 0, tuple(loc), -1, 0),), (), 0, RUN, 0)
    m.locals[ins.d] = target_ci
    m.pc += 1
    return _done(m)


def _x_callwait(m: Machine, ins, state):
    target_ci = m.locals[ins.a]
    tctx = m.ctxs[target_ci]
    if tctx[3] != RET:
        m.others.append(target_ci)   # what it read: that this kthread has not returned (only that)
        return Blocked(frozenset({target_ci}), ins.span)
    m.others[0] = True               # it changes the kthread's context
    value = tctx[4]
    m.ctxs[target_ci] = ((), (), 0, IDLE, 0)
    m.pc += 1
    if ins.d is not None:
        ins.d(m, value)
    return _done(m)


def _x_free(m: Machine, ins, state):  # only reachable for a context that starts on glue
    return _done(m)


_EXEC: list = [None] * (max(ASSIGN, ANY, CALL, CALLIN, CALLWAIT, BRANCH, CHOICE, RETURN, AWAIT, REQUIRE,
                            ATOMIC, CHECK, FOR_FIRST, FOR_NEXT, RANGE_FIRST, RANGE_NEXT, PICK, IPI_ENTER,
                            *FREE) + 1)
for _op, _fn in ((ASSIGN, _x_assign), (ANY, _x_any), (CALL, _x_call), (CALLIN, _x_callin),
                 (CALLWAIT, _x_callwait), (BRANCH, _x_branch), (CHOICE, _x_choice), (RETURN, _x_return),
                 (AWAIT, _x_await), (REQUIRE, _x_require), (ATOMIC, _x_atomic), (CHECK, _x_check),
                 (FOR_FIRST, _x_for), (FOR_NEXT, _x_for), (RANGE_FIRST, _x_range_first),
                 (RANGE_NEXT, _x_range_next), (PICK, _x_pick), (IPI_ENTER, _x_ipi_enter),
                 *((o, _x_free) for o in FREE)):
    _EXEC[_op] = _fn
assert None not in _EXEC


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
            if m.held_l.count((lock, item[2])) >= ir.MAX_HOLDS:
                mode = MODE_NAME[item[2]]
                name = f"`{m.prog.lock_names[lock]}`" + (f" ({mode})" if mode else "")
                raise ModelError(f"{name} would be held {ir.MAX_HOLDS + 1} times by this context, past the "
                                 f"bound of {ir.MAX_HOLDS} (a hold leaked?)", item[3])
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
    finished = set()
    live = set()
    for j, c in enumerate(ctxs):
        if c[3] != IDLE:
            live.add(j)
            if c[3] == DONE:
                finished.add(j)
    d = set(blocked)
    changed = True
    while changed and d:
        changed = False
        ok = d | finished
        for j in list(d):
            waits = blocked[j]
            if waits is None:
                waits = live - {j}
            if not waits <= ok:
                d.discard(j)
                if j not in finished:
                    ok.discard(j)
                changed = True
    return frozenset(d)
