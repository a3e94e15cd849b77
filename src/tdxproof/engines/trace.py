"""Turn a replayed schedule into a Trace in the policy's vocabulary.

For every statement of every transition: the call chain that reached it and what
it did (a lock taken or released, state changed, work handed to a kthread, a
choice, interrupts switched), then the wait a context is left in, and at the end
a Report in the shape kernel developers know (lockdep, WARN, BUG, a deadlock's
held locks). Which events a condensed witness shows is decided here, for the
property at hand (`TraceEvent.key`); renderers only lay them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from tdxproof.interp.evaluate import compile_expr
from tdxproof.interp.program import BRANCH, CALL, CALLIN, MODE_NAME, Program
from tdxproof.interp.replay import replay
from tdxproof.interp.state import DONE, IDLE, RET, RUN, State, StateEnv
from tdxproof.interp.step import Blocked, Machine, current_cpu, deadlocked, run_context, walk_block
from tdxproof.model import ir
from tdxproof.model.load import PRELUDE_PREFIX
from tdxproof.model.wellformed import sub_exprs, walk_stmts
from tdxproof.results import LockUse, Report, RunResult, Schedule, TaskReport, Trace, TraceEvent, TraceRow

# include/uapi/asm-generic/errno-base.h, errno.h (as prelude/errno.tdx): return codes by name
ERRNO = {5: "EIO", 6: "ENXIO", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 19: "ENODEV",
         22: "EINVAL", 28: "ENOSPC", 95: "EOPNOTSUPP"}

# event properties of the preludes whose failure the kernel reports as BUG / WARN
KERNEL_REPORTS = {"no-kernel-bug": "bug", "no-kernel-warn": "warn"}
LOCK_REPORTS = ("recursive", "circular", "deadlock")   # told by the locks alone
LABEL = 36            # characters of a call-chain label before arguments give way


def fmt_value(prog: Program, ty: ir.Type, v: int) -> str:
    match ty:
        case ir.BoolType():
            return "true" if v else "false"
        case ir.EnumType(members=members):
            return members[v] if 0 <= v < len(members) else str(v)
        case ir.FnType() | ir.NullType():
            return "NULL" if v == 0 else prog.fn_by_index[v - 1].name
        case ir.LockType():
            return prog.lock_names[v]
    return str(v)


def source_text(span) -> str:
    """The source text of a statement (the line up to an opening brace)."""
    if span is None:
        return ""
    try:
        if span.path.startswith(PRELUDE_PREFIX):
            text = resources.files("tdxproof.prelude").joinpath(span.path[len(PRELUDE_PREFIX):]).read_text()
        else:
            with open(span.path, encoding="utf-8") as fh:
                text = fh.read()
    except OSError:
        return ""
    lines = text.splitlines()
    if not 1 <= span.line <= len(lines):
        return ""
    line = lines[span.line - 1]
    if span.end_line == span.line and span.end_col > span.col:
        return line[span.col - 1:span.end_col - 1].strip()
    line = line[span.col - 1:].strip()
    if line.endswith("{"):
        return line[:-1].rstrip()
    # a statement over several lines (a long condition): join them up to its end
    for more in lines[span.line:min(span.end_line, span.line + 8)]:
        if line.endswith((";", "{")):
            break
        line += " " + more.strip()
    return line[:-1].rstrip() if line.endswith("{") else line


@dataclass
class _Part:
    """One thing a statement did."""
    kind: str                  # lock | wait | state | choice | handoff | return | irqs | violation | goal | end
    text: str
    subject: object = None     # the lock, variable or context it is about
    key: bool = False


@dataclass
class _Stmt:
    step: int
    ci: int
    frames: tuple
    chain: tuple[str, ...]
    span: object
    text: str
    parts: list[_Part] = field(default_factory=list)
    full: tuple[str, ...] = ()     # the chain with nothing folded (for the failing statement)
    held: tuple[LockUse, ...] | None = None   # the locks its context held there (failing statements)
    before: State | None = None    # the state it ran in, and the state it left
    after: State | None = None


class _Builder:
    def __init__(self, prog: Program, prop: ir.Property, schedule: Schedule):
        self.prog, self.prop, self.schedule = prog, prop, schedule
        self.model = prog.model
        self.rep = replay(prog, schedule)
        self.titles = [self._title(c) for c in prog.contexts]
        self.wrappers = _lock_wrappers(self.model)
        self.field_at = {off: (prog.lock_names[lk], name) for (lk, name), off in prog.field_off.items()}
        s0 = self.rep.states[0]
        self.shadow: list[list[str | None]] = [[self._label(fr) for fr in ctx[0]] for ctx in s0[1]]
        self.acq: list[list[LockUse]] = [[] for _ in prog.contexts]
        self.stmts: list[_Stmt] = []
        # the `if` statements that read shared state, by sid
        self.branches = {s.sid: s for body in _bodies(self.model) for s in walk_stmts(body)
                         if isinstance(s, ir.If) and any(isinstance(e, ir.VarRef) for e in sub_exprs(s.cond))}

    # ---- names
    def _title(self, spec) -> str:
        if spec.actor is not None and spec.actor.title:
            return spec.actor.title + (f" #{spec.name.split('#')[1]}" if "#" in spec.name else "")
        return spec.name

    def _label(self, frame: tuple, values: list[int] | None = None) -> str | None:
        """`cpu_up(1)`: the function and the arguments that say which CPU, lock,
        state or callback (numbers and flags left out); NULLs and then trailing
        arguments give way to `...` past LABEL characters."""
        code = self.prog.codes[frame[0]]
        if code.fn is None:
            return None                       # an actor's body: the column says who it is
        args = []
        for p, v in zip(code.fn.params, values if values is not None else frame[2]):
            if not isinstance(p.type, (ir.BoolType, ir.IntType)):
                args.append(fmt_value(self.prog, p.type, v))
        if len(code.name) + sum(len(a) + 2 for a in args) > LABEL:
            args = [a for a in args if a != "NULL"]
        if len(code.name) + sum(len(a) + 2 for a in args) > LABEL:
            keep: list[str] = []
            for a in args:
                if len(code.name) + sum(len(x) + 2 for x in keep) + len(a) + 7 > LABEL:
                    break
                keep.append(a)
            args = keep + ["..."]
        return f"{code.name}({', '.join(args)})"

    def _branch(self, s0: State, ci: int) -> _Part | None:
        """An `if` on shared state: which way it went (`if tdx_lp_initialized[c]: yes`)."""
        m = Machine(self.prog, s0, ci)
        if m.code < 0:
            return None
        ins = self.prog.codes[m.code].instrs[m.pc]
        if ins.op != BRANCH or ins.span is None:
            return None
        stmt = self.branches.get(ins.sid)
        if stmt is None:
            return None
        taken = bool(ins.a(m))
        # a guard that returns early is the decision a reader needs (`if
        # tdx_lp_initialized[c] return 0;`); a branch that only skips a body is not
        body = stmt.then if taken else stmt.other
        if not body or not isinstance(body[0], ir.Return):
            return None
        reads = {e.var.name for e in sub_exprs(stmt.cond) if isinstance(e, ir.VarRef)}
        return _Part("branch", f"if {_cond_of(source_text(ins.span))}: {'yes' if taken else 'no'}, returns",
                     frozenset(reads))

    def _indirect_call(self, state: State, ci: int) -> bool:
        m = Machine(self.prog, state, ci)
        if m.code < 0:
            return False
        ins = self.prog.codes[m.code].instrs[m.pc]
        return ins.op == CALL and ins.a is None

    def _call_args(self, state: State, ci: int) -> list[int] | None:
        """The arguments of the call context `ci` is about to make, evaluated in the
        caller (the callee's own copies may be forgotten once dead)."""
        m = Machine(self.prog, state, ci)
        if m.code < 0:
            return None
        ins = self.prog.codes[m.code].instrs[m.pc]
        if ins.op == CALL:
            return [fa(m) for fa in ins.c]
        if ins.op == CALLIN:
            return [fa(m) for fa in ins.b]
        return None

    def _chain(self, ci: int, frames: tuple, *, full: bool = False) -> tuple[str, ...]:
        """Outermost first. Unless `full`, a lock operation under a one-line wrapper
        (`cpus_read_lock()` -> `percpu_down_read()`) is folded into the wrapper, and
        what runs inside a lock operation (`might_sleep()`) is not shown."""
        labels = self.shadow[ci]
        out: list[str] = []
        for i, fr in enumerate(frames):
            code = self.prog.codes[fr[0]]
            label = labels[i] if i < len(labels) else self._label(fr)
            if not full and i > 0:
                above = self.prog.codes[frames[i - 1][0]]
                if above.fn is not None and above.fn.lock_class is not None:
                    break
                if code.fn is not None and code.fn.lock_class is not None and above.name in self.wrappers:
                    break
            if label is not None:
                out.append(label)
            if fr[3] >= 0 and (i == 0 or frames[i - 1][3] < 0):
                # on_each_cpu() runs func locally with interrupts off, by IPI elsewhere
                home = self.prog.contexts[ci].home_cpu
                out.append("<this CPU, irqs off>" if fr[3] == home else f"<IPI on CPU{fr[3]}>")
        return tuple(out)

    def _at(self, frames: tuple) -> str:
        """lockdep's `at:`: the function that called the lock operation (or its
        one-line wrapper)."""
        for fr in reversed(frames):
            code = self.prog.codes[fr[0]]
            if code.fn is not None and (code.fn.lock_class is not None or code.name in self.wrappers):
                continue
            return code.name.removeprefix("actor ") + "()"
        return "?"

    # ---- the walk
    def run(self) -> Trace:
        prog, rep = self.prog, self.rep
        rows: list[TraceRow] = []
        nsteps = len(self.schedule.steps)
        for k, (step, ci) in enumerate(zip(self.schedule.steps, rep.contexts)):
            before = rep.states[k]
            first = len(self.stmts)
            s = before
            verbose: list[tuple[str, str]] = []
            for frames, out in walk_block(prog, before, ci, step.choice):
                st = self._statement(k + 1, ci, s, out, frames, last=k == nsteps - 1)
                verbose.append((_function(prog, frames), st.text))
                s = out.state
            after = rep.states[k + 1]
            waits = None
            res = run_context(prog, after, ci)
            if isinstance(res, Blocked):
                waits = self._wait(k + 1, ci, after, res)
            mine = self.stmts[first:]
            head = mine[0] if mine else None
            rows.append(TraceRow(k + 1, prog.contexts[ci].name, current_cpu(prog, before[1][ci], ci),
                                 _function(prog, before[1][ci][0]), head.span if head else None,
                                 head.text if head else "",
                                 tuple(p.text for st in mine for p in st.parts
                                       if p.kind not in ("wait", "violation", "goal")),
                                 waits, next((p.text for st in mine for p in st.parts if p.kind == "violation"),
                                             None), tuple(verbose)))
        if self.prop.kind is ir.PropKind.DEADLOCK:
            self._final_waits(len(rows))
        report = self._report()
        self._mark(report)
        # the failing statement comes last: what the same transition does after it
        # (a reduced block runs on to the release that ends it) is in --verbose only
        fail = next((i for i, st in enumerate(self.stmts) if st.step == nsteps
                     and any(p.kind == "violation" for p in st.parts)), None)
        if fail is not None:
            for st in self.stmts[fail + 1:]:
                for p in st.parts:
                    p.key = False
        events = {r.step: [] for r in rows}
        for st in self.stmts:
            for p in st.parts:
                events[st.step].append(TraceEvent(st.step, prog.contexts[st.ci].name, st.chain, (p.text,), p.kind,
                                                  p.key, st.span, st.text))
        rows = [_with_events(r, tuple(events[r.step])) for r in rows]
        seen: list[tuple[str, int]] = []
        for r in rows:
            if r.key and all(name != r.context for name, _ in seen):
                seen.append((r.context, self._cpu(rep.contexts[r.step - 1])))
        everyone = [(c.name, self._cpu(c.index)) for c in prog.contexts if c.name in {r.context for r in rows}]
        seen += [c for c in everyone if c not in seen]
        return Trace(tuple(rows), tuple(seen), tuple(report.values), tuple(_valuation(prog, st) for st in rep.states),
                     tuple((c.name, t) for c, t in zip(prog.contexts, self.titles)), report, self._initially())

    def _initially(self) -> tuple[str, ...]:
        """The initial values the policy leaves open (`any`), as this witness starts."""
        out: list[str] = []
        shown: set[str] = set()
        for var in self.model.vars:
            if any(isinstance(e, ir.AnyValue) for e in sub_exprs(var.init)):
                _show_var(self.prog, ir.VarRef(var, None), self.rep.states[0], out, shown)
        return tuple(out)

    def _statement(self, step: int, ci: int, s0: State, out, frames: tuple, *, last: bool) -> _Stmt:
        prog = self.prog
        s1 = out.state
        st = _Stmt(step, ci, frames, self._chain(ci, frames), out.span, source_text(out.span),
                   full=self._chain(ci, frames, full=True), before=s0, after=s1)
        c0, c1 = s0[1][ci], s1[1][ci]
        # locks of this context
        held0, held1 = list(c0[1]), list(c1[1])
        for h in list(held1):
            if h in held0:
                held0.remove(h)
                continue
            name, mode = prog.lock_names[h[0]], MODE_NAME[h[1]]
            self.acq[ci].append(LockUse(name, mode, self._at(frames), st.full))
            st.parts.append(_Part("lock", f"takes {name}{_mode(mode)}", name))
        for h in held0:
            name, mode = prog.lock_names[h[0]], MODE_NAME[h[1]]
            for i in range(len(self.acq[ci]) - 1, -1, -1):
                if (self.acq[ci][i].lock, self.acq[ci][i].mode) == (name, mode):
                    del self.acq[ci][i]
                    break
            st.parts.append(_Part("lock", f"releases {name}{_mode(mode)}", name))
        # shared state
        g0, g1 = s0[0], s1[0]
        for var in self.model.vars:
            off, size = prog.var_off[var.name], prog.var_size[var.name]
            for i in range(size):
                if g0[off + i] != g1[off + i]:
                    cell = var.name if not var.indexed else (
                        f"{var.name}[{i}]" if var.per_cpu else f"{var.name}[{var.dim.members[i]}]")
                    tag = " (ghost)" if var.ghost else ""
                    st.parts.append(_Part("state", f"{cell} = {fmt_value(prog, var.type, g1[off + i])}{tag}",
                                          var.name))
        for off, (lock, fname) in self.field_at.items():
            if g0[off] != g1[off]:
                text = (f"{lock} writer pending: new readers wait" if fname == "block" and g1[off]
                        else f"{lock}.{fname} = {g1[off]}")
                st.parts.append(_Part("lock", text, lock))
        if c0[2] != c1[2]:
            st.parts.append(_Part("irqs", "interrupts off" if c1[2] else "interrupts on"))
        # other contexts: work handed over, results collected
        for j, (o0, o1) in enumerate(zip(s0[1], s1[1])):
            if j == ci:
                continue
            if o0[3] == IDLE and o1[3] == RUN:
                self.shadow[j] = [self._label(fr, self._call_args(s0, ci) if n == 0 else None)
                                  for n, fr in enumerate(o1[0])]
                work = self.shadow[j][0] if self.shadow[j] else "work"
                st.parts.append(_Part("handoff", f"hands {work} to {self.titles[j]}, waits", j))
            elif o0[3] == RET and o1[3] == IDLE:
                st.parts.append(_Part("return", f"{self.titles[j]} returned {_errno(o0[4])}", j))
        if c1[3] == RET and c0[3] != RET:
            st.parts.append(_Part("end", f"returns {_errno(c1[4])}"))
        elif c1[3] == DONE and c0[3] != DONE:
            st.parts.append(_Part("end", "finishes"))
        if out.choice is not None and out.choice != "succeeds":
            text = st.text.removeprefix("if ")
            st.parts.append(_Part("choice", f"{text}: {out.choice}" if text.startswith("may fail")
                                  else f"chooses {out.choice}"))
        if last and self.prop.fires_in_steps and prog.prop_index[self.prop.name] in out.events:
            st.held = tuple(self.acq[ci])
            if self.prop.kind is ir.PropKind.COVER:
                st.parts.append(_Part("goal", f"-> {self.prop.name}: `{_cond_text(st.text)}` is met"))
            elif self.prop.kind is ir.PropKind.ORDER:
                st.parts.append(_Part("violation", f"!! takes {self.prop.forbidden[0]} while holding "
                                                   f"{self.prop.forbidden[1]}"))
            elif self.prop.name == ir.EXIT_EVENT:
                held = ", ".join(f"{u.lock}" + (f" ({u.mode})" if u.mode else "") for u in st.held)
                st.parts.append(_Part("violation", f"!! ends holding {held or 'a lock'}"))
            else:
                st.parts.append(_Part("violation", f"!! {self.prop.name}: `{_cond_text(st.text)}` is false"))
            st.chain = st.full
        decision = self._branch(s0, ci)
        if decision is not None:
            st.parts.append(decision)
        pushed = self._indirect_call(s0, ci) and len(c1[0]) > len(c0[0])
        self.shadow[ci] = self._relabel(self.shadow[ci], c0[0], c1[0], self._call_args(s0, ci))
        self.stmts.append(st)
        if pushed:
            # a callback run through a function pointer (a cpuhp startup, an IPI
            # function): part of the story of what ran where, even when it changes nothing
            chain = self._chain(ci, c1[0])
            self.stmts.append(_Stmt(step, ci, c1[0], chain, out.span, st.text, [_Part("call", "")], chain,
                                    before=s0, after=s1))
        return st

    def _relabel(self, labels: list, old: tuple, new: tuple, args: list[int] | None) -> list:
        keep = 0
        while keep < min(len(old), len(new)) and old[keep][0] == new[keep][0]:
            keep += 1
        pushed = new[keep:]
        return labels[:keep] + [self._label(fr, args if len(pushed) == 1 else None) for fr in pushed]

    def _wait(self, step: int, ci: int, state: State, blocked: Blocked) -> str:
        frames = state[1][ci][0]
        who = ", ".join(self.titles[j] for j in sorted(blocked.waits or ())) or "any other context"
        chain = self._chain(ci, frames)
        st = _Stmt(step, ci, frames, chain, blocked.span, source_text(blocked.span), full=chain,
                   before=state, after=state)
        lock = self._wanted(ci, frames)
        if lock is not None:
            text = f"waits for {lock.lock}{_mode(lock.mode)}: {who}"
            st.parts.append(_Part("wait", text, lock.lock))
        else:
            text = f"waits for {who}"
            st.parts.append(_Part("wait", text, tuple(sorted(blocked.waits or ()))))
        self.stmts.append(st)
        return text

    def _final_waits(self, step: int) -> None:
        """Where each deadlocked context stands at the end: a context blocked only
        later (a writer came after its last step) has no wait recorded yet."""
        state = self.rep.states[-1]
        blocked = {}
        for ci in range(len(self.prog.contexts)):
            res = run_context(self.prog, state, ci)
            if isinstance(res, Blocked):
                blocked[ci] = res
        for ci in sorted(deadlocked(state, {c: b.waits for c, b in blocked.items()})):
            mine = [st for st in self.stmts if st.ci == ci]
            if mine and mine[-1].parts and mine[-1].parts[0].kind == "wait" and mine[-1].frames == state[1][ci][0]:
                continue
            self._wait(step, ci, state, blocked[ci])

    def _wanted(self, ci: int, frames: tuple) -> LockUse | None:
        """The lock a context stands at the acquire of, if it does."""
        for i, fr in enumerate(frames):
            code = self.prog.codes[fr[0]]
            if code.fn is not None and code.fn.lock_class is not None and code.fn.role == "acquire" and fr[2]:
                return LockUse(self.prog.lock_names[fr[2][0]], code.fn.mode, self._at(frames[:i + 1]),
                               self._chain_of(ci, frames))
        return None

    def _chain_of(self, ci: int, frames: tuple) -> tuple[str, ...]:
        """Every frame's label (no folding), with the arguments seen at the call."""
        labels = self.shadow[ci] if len(self.shadow[ci]) == len(frames) else [self._label(fr) for fr in frames]
        return tuple(x for x in labels if x is not None)

    # ---- the end
    def _report(self) -> Report:
        prop, rep = self.prop, self.rep
        last = rep.states[-1]
        if prop.kind is ir.PropKind.DEADLOCK:
            return self._deadlock(last)
        if prop.fires_in_steps:
            fail = next((st for st in reversed(self.stmts)
                         if any(p.kind in ("violation", "goal") for p in st.parts)), None)
            assert fail is not None
            if prop.kind is ir.PropKind.COVER:
                return Report("cover", f"`{prop.name}` is reached",
                              self._task(fail.ci, fail.frames, fail.full, fail.held), (), (),
                              tuple(self._check_values(fail)), f"{fail.span}: {fail.text}")
            return self._event(fail)
        return self._state_report(last)

    def _task(self, ci: int, frames: tuple, chain: tuple[str, ...], held: tuple[LockUse, ...] | None = None,
              **kw) -> TaskReport:
        cpu = current_cpu(self.prog, (frames,), ci) if frames else self.prog.contexts[ci].home_cpu
        if self._cpu(ci) < 0 and not (frames and frames[-1][3] >= 0):
            cpu = -1
        return TaskReport(self.titles[ci], cpu, tuple(self.acq[ci]) if held is None else held, chain, **kw)

    def _cpu(self, ci: int) -> int:
        """Where a context runs, for its column: its CPU, or -1 for an actor whose
        body starts by picking one (`#MC`, a vCPU)."""
        spec = self.prog.contexts[ci]
        if spec.actor is not None and spec.actor.on_cpu is None and spec.actor.body \
                and isinstance(spec.actor.body[0], ir.Pick):
            return -1
        return spec.home_cpu

    def _holders(self, besides: set[int]) -> tuple[TaskReport, ...]:
        last = self.rep.states[-1]
        return tuple(self._task(ci, last[1][ci][0], self._chain_of(ci, last[1][ci][0]))
                     for ci in range(len(self.prog.contexts)) if self.acq[ci] and ci not in besides)

    def _deadlock(self, state: State) -> Report:
        blocked, waits = {}, {}
        for ci in range(len(self.prog.contexts)):
            res = run_context(self.prog, state, ci)
            if isinstance(res, Blocked):
                blocked[ci], waits[ci] = res.waits, res
        stuck = sorted(deadlocked(state, blocked))
        tasks = []
        for ci in stuck:
            frames = state[1][ci][0]
            wanted = self._wanted(ci, frames)
            note = ""
            if wanted is not None and wanted.mode == "write" and self._block_set(state, wanted.lock):
                note = f"a pending writer: new readers of {wanted.lock} wait"
            # lockdep records an acquire before the task waits: the wanted lock is "held" too
            held = tuple(self.acq[ci]) + ((wanted,) if wanted is not None else ())
            tasks.append(self._task(ci, frames, self._chain_of(ci, frames), held, wants=wanted,
                                    waits_for=tuple(self.titles[j] for j in sorted(waits[ci].waits or ())),
                                    note=note))
        locks = {t.wants.lock for t in tasks if t.wants}
        still = {(self.titles[ci], u.lock, u.mode) for ci in stuck for u in self.acq[ci]}
        scenario = []
        for st in self.stmts:
            if st.ci not in stuck:
                continue
            for p in st.parts:
                if p.subject not in locks or p.kind not in ("lock", "wait") or p.text.startswith("releases "):
                    continue
                if p.text.startswith("takes ") and (self.titles[st.ci], p.subject, _mode_of(p.text)) not in still:
                    continue            # taken and given back: not part of the deadlock
                scenario.append((self.titles[st.ci], _scenario_line(p)))
        return Report("deadlock", "INFO: tasks blocked forever (deadlock)", None, tuple(tasks),
                      tuple(scenario), (), "")

    def _block_set(self, state: State, lock: str) -> bool:
        off = self.prog.field_off.get((self.prog.lock_index[lock], "block"))
        return off is not None and bool(state[0][off])

    def _event(self, fail: _Stmt) -> Report:
        prog, prop = self.prog, self.prop
        ci, frames = fail.ci, fail.frames
        code = prog.codes[frames[-1][0]]
        fn = code.name
        where = f"{fail.span}: {fail.text}"
        values = tuple(self._check_values(fail))
        chain = fail.full
        if prop.kind is ir.PropKind.ORDER:
            first, second = prop.forbidden
            wanted = LockUse(first, None, self._at(frames), chain)
            task = self._task(ci, frames, chain, fail.held, wants=wanted)
            scen = ((self.titles[ci], f"lock({second});"), ("other task", f"lock({first});"),
                    ("other task", f"lock({second});"), (self.titles[ci], f"lock({first});"))
            return Report("circular", "WARNING: possible circular locking dependency detected", task,
                          self._holders({ci}), scen, values, where,
                          (f"{first} --> {second}" + (f" ({prop.doc})" if prop.doc else ""),))
        wanted = self._wanted(ci, frames)
        if code.fn is not None and code.fn.lock_class is not None and code.fn.role == "acquire":
            kind, title = "recursive", "WARNING: possible recursive locking detected"
            lk = wanted.lock if wanted else "?"
            op = "rlock" if wanted is not None and wanted.mode == "read" else "lock"
            scen = ((self.titles[ci], f"{op}({lk});"), (self.titles[ci], f"{op}({lk});"))
            return Report(kind, title, self._task(ci, frames, chain, fail.held, wants=wanted), self._holders({ci}), scen,
                          values, where)
        cpu = current_cpu(prog, self.rep.states[-2][1][ci], ci)
        caller = next((label for label in reversed(chain[:-1]) if not label.startswith("<")), "?")
        if fn == "might_sleep":
            site = wanted.lock if wanted else ""
            title = f"BUG: sleeping function called from invalid context at {chain[-2] if len(chain) > 1 else fn}"
            title += f" ({site})" if site else ""
            return Report("sleep", title, self._task(ci, frames, chain, fail.held, wants=wanted), (), (), values, where)
        if fn.startswith("lockdep_assert"):
            # a macro: the warning is at its caller, where the call trace starts
            title = f"WARNING: CPU: {cpu} at {_bare(caller)}: {fn}()"
            return Report("assert", title, self._task(ci, frames, chain[:-1], fail.held), (), (), values, where)
        if prop.name == ir.EXIT_EVENT:
            # lockdep_sys_exit() for a task; process_one_work()'s report for kthread work
            kthread = prog.contexts[ci].kind == "kthread"
            title = (f"BUG: workqueue leaked lock or atomic: {self.titles[ci]}" if kthread
                     else "WARNING: lock held when returning to user space!")
            return Report("leak", title, self._task(ci, frames, chain, fail.held), (), (), values, where)
        kind = KERNEL_REPORTS.get(prop.name, "check")
        site = _bare(chain[-1]) if chain else fn + "()"
        title = {"bug": f"kernel BUG at {site}!", "warn": f"WARNING: CPU: {cpu} at {site}",
                 "check": f"tdxproof: `{prop.name}` fails in {site}"}[kind]
        return Report(kind, title, self._task(ci, frames, chain, fail.held), (), (), values, where)

    def _check_values(self, fail: _Stmt) -> list[str]:
        """The values the failing check's condition read, in the state before it."""
        prog = self.prog
        check = next((s for body in _bodies(self.model) for s in walk_stmts(body)
                      if isinstance(s, ir.Check) and s.span == fail.span), None)
        if check is None:
            return []
        before = fail.before
        lines: list[str] = []
        shown: set[str] = set()
        top = before[1][fail.ci][0][-1] if before[1][fail.ci][0] else None
        ctx = before[1][fail.ci]
        for e in sub_exprs(check.cond):
            _show_var(prog, e, before, lines, shown)
            if isinstance(e, ir.Builtin) and e.op in (ir.BuiltinOp.IRQS_OFF, ir.BuiltinOp.IN_IPI,
                                                      ir.BuiltinOp.PERCPU_THREAD) \
                    and e.op.value not in shown:
                shown.add(e.op.value)
                if e.op is ir.BuiltinOp.PERCPU_THREAD:
                    on = prog.percpu[fail.ci]
                else:
                    on = ctx[2] if e.op is ir.BuiltinOp.IRQS_OFF else int(bool(ctx[0]) and ctx[0][-1][3] >= 0)
                lines.append(f"{e.op.value} = {'true' if on else 'false'}")
            if isinstance(e, ir.LocalRef) and top is not None and e.local.name not in shown:
                shown.add(e.local.name)
                lines.append(f"{e.local.name} = {fmt_value(prog, e.local.type, top[2][e.local.slot])}")
        return lines

    def _state_report(self, state: State) -> Report:
        """Invariants and covers: the statement that last made the condition false
        (true, for a cover) is where the witness ends; the values it reads."""
        prog, prop = self.prog, self.prop
        assert prop.expr is not None
        fn = compile_expr(prog, prop.expr)
        want = prop.kind is ir.PropKind.COVER
        s = self.rep.states[0]
        flip = None
        value = bool(fn(StateEnv(prog, s)))
        for st in self.stmts:
            if not st.parts or st.parts[0].kind in ("wait", "call"):
                continue
            s2 = st.after
            v2 = bool(fn(StateEnv(prog, s2)))
            if v2 != value and v2 == want:
                flip = st
            value = v2
        last = next((st for st in reversed(self.stmts) if st.parts and st.parts[0].kind not in ("wait", "call")),
                    None)
        target = flip or last
        if target is not None:
            kind = "goal" if want else "violation"
            text = f"-> {prop.name} is reached" if want else f"!! {prop.name} is false from here"
            if prop.observe is ir.Observe.QUIESCENT and target is not last and last is not None:
                # observed only once no hotplug operation is in flight: say where, last
                text = text.replace("from here", "from here (observed once quiescent, below)")
                last.parts.append(_Part(kind, f"!! {prop.name} is false at this quiescent state"))
                last.chain = last.full
            target.parts.append(_Part(kind, text))
            target.chain = target.full
        lines: list[str] = []
        shown: set[str] = set()
        for e in sub_exprs(prop.expr):
            if isinstance(e, ir.PredRef):
                for x in sub_exprs(e.pred.expr):
                    _show_var(prog, x, state, lines, shown)
            _show_var(prog, e, state, lines, shown)
        where = f"{prop.span}: {prop.kind.value} {prop.name}"
        title = f"`{prop.name}` is reached" if want else f"`{prop.name}` is false"
        if prop.observe is ir.Observe.QUIESCENT:
            title += " (at a quiescent state)"
        return Report("cover" if want else "invariant", title, None, (), (), tuple(lines), where)

    # ---- what the condensed view shows
    def _mark(self, report: Report) -> None:
        """NOTE(condensed): lock findings tell their story with the locks involved
        (taken, released, waited for), state findings with the state the properties
        read; decisions (`may fail`, a CPU picked) are always shown, as is work
        handed to a kthread that then does something shown."""
        lock_story = report.kind in LOCK_REPORTS
        locks: set[str] = set()
        if report.kind == "deadlock":
            # what they wait to take; and for a wait that takes nothing (synchronize_srcu()
            # waiting out its readers) what the tasks it waits for hold
            locks = {t.wants.lock for t in report.tasks if t.wants}
            held_by = {t.task: t.held for t in report.tasks}
            locks |= {h.lock for t in report.tasks if t.wants is None for w in t.waits_for
                      for h in held_by.get(w, ())}
        elif report.task is not None and report.task.wants is not None:
            locks = {report.task.wants.lock}

        if report.kind == "circular":
            locks |= set(self.prop.forbidden)
        watched = observed_vars(self.model)
        failing = self.titles.index(report.task.task) if report.task is not None else -1
        stuck = {self.titles.index(t.task) for t in report.tasks} if report.kind == "deadlock" else set()
        final_wait = {}
        modes: dict[object, set[tuple[int, str | None]]] = {}
        waited: set[object] = set()
        for st in self.stmts:
            if st.parts and st.parts[0].kind == "wait":
                final_wait[st.ci] = st
            for p in st.parts:
                if p.kind == "wait" and isinstance(p.subject, str):
                    waited.add(p.subject)
                elif p.kind == "lock" and p.text.startswith("takes "):
                    modes.setdefault(p.subject, set()).add((st.ci, _mode_of(p.text)))
        # a state finding still needs the locks that order its contexts: one a
        # context waited for, or a rw-lock read by one context and written by
        # another (cpu_hotplug_lock between a loader and cpu_up())
        contended = waited | {lk for lk, ms in modes.items()
                              if {c for c, m in ms if m == "read"} and {c for c, m in ms if m == "write"}
                              and len({c for c, _ in ms}) > 1}
        registrations = {v.name for v in self.model.vars if isinstance(v.type, ir.FnType)}
        # a state finding in a task that holds locks (the report lists them): how it
        # came to hold each -- the take that still stands, and what changed the
        # lock's own fields (a work item queued, then taken by the worker that fails)
        held_now = {h.lock for h in report.task.held} if report.task is not None and not lock_story else set()
        last_take = {}
        for st in self.stmts:
            for p in st.parts:
                if p.kind == "lock" and p.subject in held_now and st.ci == failing and p.text.startswith("takes "):
                    last_take[p.subject] = p
        for st in self.stmts:
            kthread = self.prog.contexts[st.ci].kind == "kthread"
            for p in st.parts:
                match p.kind:
                    case "violation" | "goal" | "choice":
                        p.key = True
                    case "lock":
                        p.key = p.subject in locks or (not lock_story and p.subject in contended) or (
                            p.subject in held_now and (last_take.get(p.subject) is p
                                                       or not p.text.startswith(("takes ", "releases "))))
                    case "wait":
                        p.key = p.subject in locks or (st.ci in stuck and final_wait.get(st.ci) is st) or (
                            not lock_story and p.subject in contended)
                    case "state":
                        # what the properties read, and callbacks registered or removed
                        p.key = not lock_story and (p.subject in watched or p.subject in registrations)
                    case "call":
                        p.key = not lock_story and kthread
                    case "branch":
                        p.key = not lock_story
                    case "return":
                        p.key = not lock_story and not p.text.endswith(" 0")   # an error comes back
                    case "irqs":
                        p.key = report.kind in ("sleep", "assert") and st.ci == failing
        # work handed over is shown when the kthread does something shown meanwhile
        for i, st in enumerate(self.stmts):
            for p in st.parts:
                if p.kind != "handoff":
                    continue
                j = p.subject
                end = next((k for k in range(i + 1, len(self.stmts)) for q in self.stmts[k].parts
                            if q.kind == "return" and q.subject == j), len(self.stmts))
                back = [q for q in (self.stmts[end].parts if end < len(self.stmts) else [])
                        if q.kind == "return" and q.subject == j]
                if any(q.key for q in back) or any(q.key for s2 in self.stmts[i + 1:end] if s2.ci == j
                                                   for q in s2.parts):
                    p.key = True
                    for q in back:
                        q.key = True


def build_trace(prog: Program, prop: ir.Property, schedule: Schedule) -> Trace:
    return _Builder(prog, prop, schedule).run()


def attach_traces(model: ir.Model, run: RunResult) -> RunResult:
    """Each result with its property's doc and where it is observed, and each
    witness with its trace (replayed once more, on the reference interpreter)."""
    from dataclasses import replace

    prog = Program(model, run.cpus)
    props = {p.name: p for p in model.properties}
    results = []
    for r in run.results:
        p = props[r.name]
        trace = build_trace(prog, p, r.schedule) if r.schedule is not None else None
        results.append(replace(r, doc=p.doc, observe=p.observe.value, trace=trace))
    return replace(run, results=tuple(results))


def _with_events(row: TraceRow, events: tuple[TraceEvent, ...]) -> TraceRow:
    from dataclasses import replace
    return replace(row, events=events, key=any(e.key for e in events))


def _mode_of(text: str) -> str | None:
    return "read" if text.endswith("(read)") else "write" if text.endswith("(write)") else None


def _scenario_line(p: _Part) -> str:
    """lockdep's scenario lines: `rlock(L);` for a read acquisition, `lock(L);` else."""
    if p.kind == "wait":
        what = "rlock" if "(read)" in p.text else "lock"
        return f"{what}({p.subject});  <- waits"
    if p.text.startswith("takes "):
        return f"{'rlock' if _mode_of(p.text) == 'read' else 'lock'}({p.subject});"
    return p.text


def _errno(v: int) -> str:
    return f"{v} (-{ERRNO[-v]})" if -v in ERRNO else str(v)


def _bare(label: str) -> str:
    return label.split("(", 1)[0] + "()"


def _mode(mode: str | None) -> str:
    return f" ({mode})" if mode else ""


def _cond_of(text: str) -> str:
    """`if tdx_lp_initialized[c]` -> `tdx_lp_initialized[c]`."""
    return text.removeprefix("if ").strip()


def _cond_text(text: str) -> str:
    """`check seamcall-in-vmx: vmx[c];` -> `vmx[c]`."""
    body = text.split(":", 1)[1] if text.startswith("check ") and ":" in text else text
    return body.strip().rstrip(";").strip()


def _function(prog: Program, frames: tuple) -> str:
    for fr in reversed(frames):
        code = prog.codes[fr[0]]
        if code.fn is None or code.fn.lock_class is None:
            return code.name.removeprefix("actor ")
    return prog.codes[frames[-1][0]].name if frames else ""


def _lock_wrappers(model: ir.Model) -> set[str]:
    """Functions whose whole body is one call of a lock operation (`cpus_read_lock()`)."""
    ops = {f.name for f in model.functions if f.lock_class is not None}
    out = set()
    for f in model.functions:
        if f.lock_class is None and len(f.body) == 1 and isinstance(f.body[0], ir.Call) \
                and isinstance(f.body[0].callee, ir.FnRef) and f.body[0].callee.name in ops:
            out.add(f.name)
    return out


def _bodies(model: ir.Model):
    return [f.body for f in model.functions] + [a.body for a in model.actors]


def observed_vars(model: ir.Model) -> set[str]:
    """Variables the properties and checks read: their changes are the kernel-level
    events of a witness."""
    from tdxproof.model.blocks import observed

    names = observed(model)
    bookkeeping = {"cpuhp_busy"}    # the `quiescent` counter
    for body in _bodies(model):
        for s in walk_stmts(body):
            if isinstance(s, ir.Check):
                names |= {x.var.name for x in sub_exprs(s.cond) if isinstance(x, ir.VarRef)}
            if s.sid in model.ghost and isinstance(s, ir.Assign) and isinstance(s.target, ir.VarRef):
                bookkeeping.add(s.target.var.name)   # what ghost code keeps for the properties
    return names - bookkeeping


def _plain(prog: Program, ty: ir.Type, v: int) -> object:
    match ty:
        case ir.BoolType():
            return bool(v)
        case ir.EnumType() | ir.FnType() | ir.NullType() | ir.LockType():
            return fmt_value(prog, ty, v)
    return v


def _valuation(prog: Program, state: State) -> tuple[tuple[str, object], ...]:
    out = []
    for var in prog.model.vars:
        off, size = prog.var_off[var.name], prog.var_size[var.name]
        vals = [_plain(prog, var.type, state[0][off + i]) for i in range(size)]
        out.append((var.name, vals if var.indexed else vals[0]))
    return tuple(out)


def _show_var(prog: Program, e: ir.Expr, state: State, lines: list[str], shown: set[str]) -> None:
    if not isinstance(e, ir.VarRef) or e.var.name in shown:
        return
    var = e.var
    shown.add(var.name)
    off, size = prog.var_off[var.name], prog.var_size[var.name]
    vals = [fmt_value(prog, var.type, state[0][off + i]) for i in range(size)]
    if var.indexed:
        lines.append(f"{var.name} = [{', '.join(vals)}]")
    else:
        lines.append(f"{var.name} = {vals[0]}")
