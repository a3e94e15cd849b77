"""The end of a witness in the shapes kernel developers know: lockdep's reports
(kernel/locking/lockdep.c: print_deadlock_bug(), print_circular_bug(),
print_lock(); lockdep_print_held_locks()), WARN/BUG with a call trace, and a
deadlock as every blocked task with the locks it holds and the one it wants."""

from __future__ import annotations

from tdxproof.results import LockUse, Report, TaskReport, cpu_name


def _lock(u: LockUse) -> str:
    mode = f", {u.mode}" if u.mode else ""
    return f"({u.lock}){mode}, at: {u.at}"


def _held(t: TaskReport) -> list[str]:
    n = len(t.held)
    if not n:
        return [f"no locks held by {t.task}."]
    out = [f"{n} lock{'s' if n != 1 else ''} held by {t.task}:"]
    out += [f" #{i}: {_lock(u)}" for i, u in enumerate(t.held)]
    return out


def _backtrace(chain: tuple[str, ...]) -> list[str]:
    return [f" {label}" for label in reversed(chain)]


def _scenario(scenario: tuple[tuple[str, str], ...]) -> list[str]:
    tasks: list[str] = []
    for task, _ in scenario:
        if task not in tasks:
            tasks.append(task)
    width = max([len(t) for t in tasks] + [len(x) for _, x in scenario]) + 4
    out = [" Possible unsafe locking scenario:", ""]
    out.append("       " + "".join(f"{t:<{width}}" for t in tasks).rstrip())
    out.append("       " + "".join(f"{'-' * len(t):<{width}}" for t in tasks).rstrip())
    for task, line in scenario:
        out.append(("  " + " " * (5 + width * tasks.index(task)) + line).rstrip())
    out += ["", " *** DEADLOCK ***"]
    return out


def _rule(title: str, ch: str) -> str:
    return ch * len(title)


def _bare_fn(chain: tuple[str, ...]) -> str:
    return chain[0].split("(", 1)[0] + "()" if chain else "?"


def render_report(r: Report) -> list[str]:
    t = r.task
    match r.kind:
        case "recursive":
            assert t is not None
            out = [_rule(r.title, "="), r.title, _rule(r.title, "-")]
            out += [f"{t.task} ({cpu_name(t.cpu)}) is trying to acquire lock:"]
            out += [f"  {_lock(t.wants)}" if t.wants else "  ?", ""]
            mine = [u for u in t.held if t.wants and u.lock == t.wants.lock]
            out += ["but task is already holding lock:"] + [f"  {_lock(u)}" for u in mine] + [""]
            out += ["other info that might help us debug this:"] + _scenario(r.scenario)
            out += ["", " May be due to missing lock nesting notation", ""]
            out += _held(t) + ["", "stack backtrace:"] + _backtrace(t.chain)
            return out
        case "circular":
            assert t is not None
            out = [_rule(r.title, "="), r.title, _rule(r.title, "-")]
            out += [f"{t.task} ({cpu_name(t.cpu)}) is trying to acquire lock:", f"  {_lock(t.wants)}" if t.wants else "", ""]
            out += ["but task is already holding lock:"] + [f"  {_lock(u)}" for u in t.held] + [""]
            out += ["which lock already depends on the new lock: the documented order is"]
            out += [f"  {o}" for o in r.order] + [""]
            out += ["other info that might help us debug this:"] + _scenario(r.scenario)
            out += [""] + _held(t) + ["", "stack backtrace:"] + _backtrace(t.chain)
            return out
        case "deadlock":
            out = []
            for task in r.tasks:
                where = task.chain[-1].split("(", 1)[0] + "()" if task.chain else "?"
                out.append(f"INFO: task {task.task} ({cpu_name(task.cpu)}) blocked forever in {where}")
                if task.wants is not None:
                    out.append(f"  waiting to acquire {_lock(task.wants)}" + (f"  -- {task.note}" if task.note else ""))
                if task.waits_for:
                    out.append(f"  waiting for: {', '.join(task.waits_for)}")
                out += ["Call Trace:"] + _backtrace(task.chain) + [""]
            if r.scenario:
                out += _scenario(r.scenario) + [""]
            out += ["Showing all locks held in the system:"]
            for task in r.tasks:
                out += _held(task)
            return out
        case "sleep" | "assert" | "bug" | "warn":
            assert t is not None
            out = ["------------[ cut here ]------------", r.title]
            if r.kind == "sleep":
                out.append(f"in_atomic(): 1, name: {t.task}")
            out.append(f"CPU: {t.cpu} Comm: {t.task}")
            out += [f"  {v}" for v in r.values]
            out.append(f"  at {r.where}")
            if r.kind == "sleep":
                out += _held(t)         # __might_sleep() -> debug_show_held_locks()
            out += ["Call Trace:"] + _backtrace(t.chain) + ["---[ end trace ]---"]
            return out
        case "leak":
            assert t is not None
            out = [_rule(r.title, "="), r.title, _rule(r.title, "-")]
            if r.title.startswith("BUG: workqueue"):
                out.append(f"     last function: {_bare_fn(t.chain)}")
            else:
                out.append(f"{t.task} ({cpu_name(t.cpu)}) is leaving the kernel with locks still held!")
            out += _held(t) + [f"  at {r.where}"]
            return out + (["stack backtrace:"] + _backtrace(t.chain) if t.chain else [])
        case "check":
            assert t is not None
            out = [r.title, f"  in {t.task} ({cpu_name(t.cpu)})"]
            out += [f"  {v}" for v in r.values]
            out.append(f"  at {r.where}")
            if t.held:
                out += _held(t)
            out += ["call chain:"] + _backtrace(t.chain)
            return out
        case "invariant" | "cover":
            if t is not None:       # a cover goal met by a `cover` statement
                return [r.title, f"  in {t.task} ({cpu_name(t.cpu)})", f"  at {r.where}"] + [f"  {v}" for v in r.values]
            return [r.title, f"  at {r.where}"] + [f"  {v}" for v in r.values]
    raise AssertionError(r.kind)
