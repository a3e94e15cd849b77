"""Turn a replayed schedule into a Trace: rows of what each transition did, in
the policy's vocabulary (function, statement, state changes, waits)."""

from __future__ import annotations

from tdxproof.interp.program import MODE_NAME, Program
from tdxproof.interp.replay import replay
from tdxproof.interp.state import DONE, IDLE, RET, RUN, State
from tdxproof.interp.step import Blocked, current_cpu, deadlocked, run_context, walk_block
from tdxproof.model import ir
from tdxproof.model.wellformed import sub_exprs
from tdxproof.results import Schedule, Trace, TraceRow


def fmt_value(prog: Program, ty: ir.Type, v: int) -> str:
    match ty:
        case ir.BoolType():
            return "true" if v else "false"
        case ir.EnumType(members=members):
            return members[v] if 0 <= v < len(members) else str(v)
        case ir.FnType() | ir.NullType():
            return "null" if v == 0 else prog.fn_by_index[v - 1].name
        case ir.LockType():
            return prog.lock_names[v]
    return str(v)


def _source_text(prog: Program, span) -> str:
    if span is None:
        return ""
    from tdxproof.model.load import PRELUDE_PREFIX
    from importlib import resources
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
    return line[:-1].rstrip() if line.endswith("{") else line


def _call_site(prog: Program, frames: tuple, span):
    """For a step inside a lock operation, the call in the nearest ordinary
    function (`cpus_read_lock();` rather than the lock's `atomic` block)."""
    for k in range(len(frames) - 1, -1, -1):
        code = prog.codes[frames[k][0]]
        if code.fn is None or code.fn.lock_class is None:
            if k == len(frames) - 1:
                return span
            return code.instrs[frames[k][1] - 1].span
    return span


def _function(prog: Program, frames: tuple) -> str:
    for fr in reversed(frames):
        code = prog.codes[fr[0]]
        if code.fn is None or code.fn.lock_class is None:
            return code.name.removeprefix("actor ")
    return prog.codes[frames[-1][0]].name if frames else ""


def _var_changes(prog: Program, before: State, after: State) -> list[str]:
    out = []
    g0, g1 = before[0], after[0]
    for var in prog.model.vars:
        off, size = prog.var_off[var.name], prog.var_size[var.name]
        for i in range(size):
            if g0[off + i] != g1[off + i]:
                if var.per_cpu:
                    name = f"{var.name}[{i}]"
                elif var.dim is not None:
                    name = f"{var.name}[{var.dim.members[i]}]"
                else:
                    name = var.name
                out.append(f"{name} = {fmt_value(prog, var.type, g1[off + i])}")
    return out


def _mode(md: int) -> str:
    m = MODE_NAME[md]
    return f" ({m})" if m else ""


def describe_wait(prog: Program, state: State, ci: int, blocked: Blocked) -> str:
    ctx = state[1][ci]
    frames = ctx[0]
    names = [prog.contexts[j].name for j in sorted(blocked.waits or ())]
    who = ", ".join(names) if names else "any other context"
    top = prog.codes[frames[-1][0]] if frames else None
    if top is not None and top.fn is not None and top.fn.lock_class is not None and frames[-1][2]:
        lock = prog.lock_names[frames[-1][2][0]]
        stack = [prog.codes[f[0]].name for f in frames
                 if prog.codes[f[0]].fn is None or prog.codes[f[0]].fn.lock_class is None]
        where = " -> ".join(n.removeprefix("actor ") + "()" for n in stack[-2:])
        mode = f" ({top.fn.mode})" if top.fn.mode else ""
        return f"{where} waits for {lock}{mode}: {who} holds it or is acquiring it"
    ins = top.instrs[frames[-1][1]] if top is not None else None
    if ins is not None and ins.op in (3, 4):  # CALLIN, CALLWAIT
        return f"waits for {who}"
    return f"waits for {who}"


def observed_vars(model: ir.Model) -> set[str]:
    """Variables the properties and checks read: their changes are the kernel-level
    events of a witness."""
    from tdxproof.model.blocks import observed
    from tdxproof.model.wellformed import walk_stmts

    names = observed(model)
    for body in [f.body for f in model.functions] + [a.body for a in model.actors]:
        for s in walk_stmts(body):
            if isinstance(s, ir.Check):
                names |= {x.var.name for x in sub_exprs(s.cond) if isinstance(x, ir.VarRef)}
    return names - {"cpuhp_busy"}


def build_trace(prog: Program, prop: ir.Property, schedule: Schedule) -> Trace:
    rep = replay(prog, schedule)
    watched = observed_vars(prog.model)
    locky = prop.kind in (ir.PropKind.DEADLOCK, ir.PropKind.ORDER) or prop.name in (
        "no-recursive-read", "locks-asserted", "no-sleep-in-atomic")
    rows: list[TraceRow] = []
    seen: list[tuple[str, int]] = []
    for k, (step, ci) in enumerate(zip(schedule.steps, rep.contexts)):
        before, after = rep.states[k], rep.states[k + 1]
        ctx0, ctx1 = before[1][ci], after[1][ci]
        changes = _var_changes(prog, before, after)
        key = any(c.split("[")[0].split(" ")[0] in watched for c in changes)
        handoff = False
        held0, held1 = list(ctx0[1]), list(ctx1[1])
        lock_change = bool(set(held0) ^ set(held1))
        for h in held1:
            if h in held0:
                held0.remove(h)
            else:
                changes.append(f"takes {prog.lock_names[h[0]]}{_mode(h[1])}")
        for h in held0:
            changes.append(f"releases {prog.lock_names[h[0]]}{_mode(h[1])}")
        if ctx0[2] != ctx1[2]:
            changes.append("interrupts off" if ctx1[2] else "interrupts on")
        for j, (c0, c1) in enumerate(zip(before[1], after[1])):
            if j == ci:
                continue
            if c0[3] == IDLE and c1[3] == RUN:
                handoff = True
                fn = prog.codes[c1[0][0][0]].name
                args = ", ".join(str(a) for a in c1[0][0][2][:len(prog.codes[c1[0][0][0]].fn.params)])
                changes.append(f"hands {fn}({args}) to {prog.contexts[j].name} and waits")
            if c0[3] == RET and c1[3] == IDLE:
                changes.append(f"{prog.contexts[j].name} returned {c0[4]}")
        if ctx1[3] == RET and ctx0[3] != RET:
            changes.append(f"returns {ctx1[4]}")
        if ctx1[3] == DONE and ctx0[3] != DONE:
            changes.append("finishes")
        violation = None
        out = rep.outcomes[k]
        if prop.kind is ir.PropKind.EVENT and prog.prop_index[prop.name] in out.events and k == len(schedule) - 1:
            violation = f"check {prop.name} fails"
        if prop.kind is ir.PropKind.ORDER and prog.prop_index[prop.name] in out.events and k == len(schedule) - 1:
            first, second = prop.forbidden
            violation = f"takes {first} while holding {second}"
        waits = None
        res = run_context(prog, after, ci)
        if isinstance(res, Blocked):
            waits = describe_wait(prog, after, ci, res)
        name = prog.contexts[ci].name
        cpu = current_cpu(prog, ctx0, ci)
        failed = step.choice is not None and "fails" in step.choice.split(", ")
        walked = list(walk_block(prog, before, ci, step.choice))
        if step.choice is not None:
            for _, o in walked:
                if o.choice is not None:
                    text = _source_text(prog, o.span).removeprefix("if ")
                    changes.append(f"{text}: {o.choice}" if "may fail" in text else f"chooses {o.choice}")
        if locky:
            # lock rules and deadlocks: the lock events, waits and hand-offs tell the story
            key = handoff or lock_change or waits is not None or violation is not None
        else:
            key = key or handoff or failed or violation is not None
        frames_at = next((fr for fr, o in walked if o.span == out.span), ctx0[0])
        site = _call_site(prog, frames_at, out.span)
        rows.append(TraceRow(k + 1, name, cpu, _function(prog, ctx0[0]), out.span,
                             _source_text(prog, site), tuple(changes), waits, violation,
                             _statements(prog, walked), key))
    for row in rows:
        if row.key and all(name != row.context for name, _ in seen):
            seen.append((row.context, prog.contexts[rep.contexts[row.step - 1]].home_cpu))
    final = _final(prog, prop, rep.states[-1])
    if prop.kind is ir.PropKind.EVENT and schedule.steps:
        final = _failed_check(prog, prop, rep.states[-2], rep.contexts[-1], schedule.steps[-1].choice)
    everyone = [(c.name, c.home_cpu) for c in prog.contexts if c.name in {r.context for r in rows}]
    seen += [c for c in everyone if c not in seen]
    return Trace(tuple(rows), tuple(seen), tuple(final), tuple(_valuation(prog, st) for st in rep.states))


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


def _statements(prog: Program, walked: list) -> tuple[tuple[str, str], ...]:
    """Every statement of one transition, for --verbose."""
    return tuple((_function(prog, frames), _source_text(prog, out.span)) for frames, out in walked)


def _failed_check(prog: Program, prop: ir.Property, state: State, ci: int, choice: str | None) -> list[str]:
    """The failing check of the last transition, with the values its condition reads."""
    from tdxproof.model.wellformed import walk_stmts

    idx = prog.prop_index[prop.name]
    before = state
    for _, out in walk_block(prog, state, ci, choice):
        if idx in out.events:
            bodies = [f.body for f in prog.model.functions] + [a.body for a in prog.model.actors]
            check = next((st for body in bodies for st in walk_stmts(body)
                          if isinstance(st, ir.Check) and st.prop == prop.name and st.span == out.span), None)
            lines = [f"at {out.span}: {_source_text(prog, out.span)}"]
            if check is not None:
                shown: set[str] = set()
                top = before[1][ci][0][-1] if before[1][ci][0] else None
                for e in sub_exprs(check.cond):
                    _show_var(prog, e, before, lines, shown)
                    if isinstance(e, ir.LocalRef) and top is not None and e.local.name not in shown:
                        shown.add(e.local.name)
                        lines.append(f"{e.local.name} = {fmt_value(prog, e.local.type, top[2][e.local.slot])}")
            return lines
        before = out.state
    return []


def _final(prog: Program, prop: ir.Property, state: State) -> list[str]:
    lines: list[str] = []
    if prop.kind is ir.PropKind.DEADLOCK:
        blocked = {}
        waits = {}
        for ci in range(len(prog.contexts)):
            res = run_context(prog, state, ci)
            if isinstance(res, Blocked):
                blocked[ci] = res.waits
                waits[ci] = res
        for ci in sorted(deadlocked(state, blocked)):
            ctx = state[1][ci]
            held = ", ".join(prog.lock_names[lk] + _mode(md) for lk, md in ctx[1]) or "nothing"
            status = " (finished)" if ctx[3] == DONE else ""
            lines.append(f"{prog.contexts[ci].name}{status} holds {held}; "
                         f"{describe_wait(prog, state, ci, waits[ci])}")
        return lines
    if prop.expr is None:
        return lines
    shown: set[str] = set()
    for e in sub_exprs(prop.expr):
        if isinstance(e, ir.PredRef):
            for x in sub_exprs(e.pred.expr):
                _show_var(prog, x, state, lines, shown)
        _show_var(prog, e, state, lines, shown)
    return lines


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
