"""Verdicts, schedules and results: plain frozen data, no solver objects.

A `Schedule` names which context moved at each step and which nondeterministic
choice it made; it holds no states. States come only from `interp.replay`, so
every witness shown has been replayed by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from tdxproof.source import Span


class Verdict(Enum):
    PROVED = "proved"                  # an unbounded proof whose certificate was re-checked
    HOLDS_UP_TO_DEPTH = "bounded"      # no violation in any schedule of <= depth steps
    HOLDS_EXHAUSTIVE = "exhaustive"    # no violation in any reachable state (explicit search, fixed N)
    HOLDS_STATIC = "static"            # a static check of the call graph found nothing
    VIOLATED = "violated"              # a replayed schedule reaches a violation
    COVERED = "covered"                # a replayed schedule reaches the cover goal
    UNREACHABLE = "unreachable"        # no reachable state satisfies the cover goal (exhaustive)
    UNKNOWN = "unknown"                # no verdict (timeout, state limit)


HOLDING = {Verdict.PROVED, Verdict.HOLDS_UP_TO_DEPTH, Verdict.HOLDS_EXHAUSTIVE, Verdict.HOLDS_STATIC}


@dataclass(frozen=True, slots=True)
class Step:
    context: str               # `vt_init`, `hotplug`, `cpuhp/2`
    choice: str | None = None  # `fails`, `c=2`, `branch 1`, `x=3`


@dataclass(frozen=True, slots=True)
class Schedule:
    init: int                  # index of the initial state in the model's canonical order
    steps: tuple[Step, ...]

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True, slots=True)
class StaticWitness:
    """A call chain from an entry point to an offending statement."""
    chain: tuple[str, ...]
    what: str
    span: Span
    # how each link after the first is made: `calls`, or `registers` (a function
    # passed as a value: a callback, run later by whoever calls through it)
    links: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()     # the contexts that run the offending code
    text: str = ""                 # the offending statement
    entry: str = ""                # who runs the chain's first link (`modprobe kvm_intel`)
    report: tuple[str, ...] = ()   # a kernel-style report (lockdep's, for a lock-graph cycle)


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One statement of a witness that did something a reader may need, with the
    call chain that reached it."""
    step: int                  # the transition it belongs to (1-based)
    context: str
    chain: tuple[str, ...]     # outermost first: `vt_init()`, `tdx_hardware_setup()`, `cpus_read_lock()`;
                               # `<IPI on CPU1>` where an IPI handler starts
    what: tuple[str, ...]      # `takes cpu_hotplug_lock (read)`, `online[1] = true`, `!! ...`
    kind: str                  # lock | wait | state | choice | handoff | return | irqs | violation | goal
    key: bool                  # shown in the condensed view
    span: Span | None = None   # the statement
    text: str = ""             # its source text


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One transition of a replayed witness, in the policy's vocabulary."""
    step: int                  # 1-based
    context: str
    cpu: int
    function: str              # innermost function that is not a lock operation
    span: Span | None          # the transition's first statement
    text: str                  # its source text
    changes: tuple[str, ...]   # `online[1] = true`, `takes cpu_hotplug_lock (read)`
    waits: str | None = None   # set when the context is blocked after this step
    violation: str | None = None
    statements: tuple[tuple[str, str], ...] = ()   # every statement: (function, source text)
    key: bool = True           # shown in the condensed view (a kernel-level event for this property)
    events: tuple[TraceEvent, ...] = ()


def cpu_name(cpu: int) -> str:
    """`CPU1`; -1 for a context that picks the CPU each time it runs (a machine
    check, a vCPU thread)."""
    return f"CPU{cpu}" if cpu >= 0 else "the CPU it picks"


@dataclass(frozen=True, slots=True)
class LockUse:
    lock: str
    mode: str | None
    at: str                    # lockdep's `at:`: the function that called the lock operation
    chain: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskReport:
    task: str                  # as the columns name it: `modprobe kvm_intel`, `cpuhp/1`
    cpu: int
    held: tuple[LockUse, ...]
    chain: tuple[str, ...]     # where it stands, outermost first
    wants: LockUse | None = None
    waits_for: tuple[str, ...] = ()
    note: str = ""             # `a pending writer: new readers of cpu_hotplug_lock wait`


@dataclass(frozen=True, slots=True)
class Report:
    """What the end of a witness shows, in the shape kernel developers know
    (lockdep, WARN, BUG, the hung-task detector); rendered by render/."""
    kind: str                  # recursive | circular | deadlock | sleep | assert | bug | warn | leak | check
                               # | invariant | cover
    title: str                 # `WARNING: possible recursive locking detected`
    task: TaskReport | None = None          # the task that fails
    tasks: tuple[TaskReport, ...] = ()      # deadlock: every stuck task; else every task holding locks
    scenario: tuple[tuple[str, str], ...] = ()   # (task, `lock(cpu_hotplug_lock);`), in time order
    values: tuple[str, ...] = ()            # what the failing condition read
    where: str = ""                         # `path:line:col: check ...`
    order: tuple[str, ...] = ()             # circular: the documented order, `A --> B`


@dataclass(frozen=True, slots=True)
class Trace:
    rows: tuple[TraceRow, ...]
    contexts: tuple[tuple[str, int], ...]   # (name, home CPU) in order of appearance
    final: tuple[str, ...]                  # the state that breaks the property, lockdep report
    # every state of the replay (the initial one first): (variable, value) pairs; per-CPU
    # variables as lists; values are bool, int or str (enum members, function names)
    states: tuple[tuple[tuple[str, object], ...], ...] = ()
    titles: tuple[tuple[str, str], ...] = ()   # context name -> who it is (`modprobe kvm_intel`)
    report: Report | None = None
    initially: tuple[str, ...] = ()            # the initial values the model leaves open (`online = [...]`)

    def title(self, context: str) -> str:
        return dict(self.titles).get(context, context)


@dataclass(frozen=True, slots=True)
class Proof:
    """What an unbounded engine proved with: re-checked before it is attached."""
    k: int                     # induction depth
    lemmas: int                # conjuncts of the inductive invariant
    text: tuple[str, ...]      # the first lemmas, in the policy's vocabulary
    rechecked: str = "plain encoding and every reachable state of the encoding"


@dataclass(frozen=True, slots=True)
class PropertyResult:
    name: str
    kind: str
    verdict: Verdict
    engine: str
    cpus: int
    schedule: Schedule | None = None
    static: StaticWitness | None = None
    states: int = 0            # explicit engine: states explored
    depth: int = 0
    reason: str = ""           # unknown: why
    expected: str | None = None
    doc: str | None = None
    observe: str = "every"
    trace: Trace | None = None
    proof: Proof | None = None

    def __post_init__(self) -> None:
        if self.verdict in (Verdict.VIOLATED, Verdict.COVERED):
            assert self.schedule is not None or self.static is not None, "a violation needs a witness"
        if self.verdict is Verdict.PROVED:
            assert self.proof is not None, "proved needs a re-checked certificate"

    @property
    def holds(self) -> bool:
        return self.verdict in HOLDING

    @property
    def meets_expectation(self) -> bool | None:
        if self.expected is None:
            return None
        if self.verdict is Verdict.UNKNOWN:
            return None
        want = {"holds": self.holds, "violated": self.verdict is Verdict.VIOLATED,
                "covered": self.verdict is Verdict.COVERED,
                "unreachable": self.verdict is Verdict.UNREACHABLE}
        return want[self.expected]


@dataclass(frozen=True, slots=True)
class RunResult:
    policy: str
    cpus: int
    engine: str
    results: tuple[PropertyResult, ...]
    states: int = 0
    complete: bool = True
    stats: dict = field(default_factory=dict, compare=False)


class ExitCode(Enum):
    HOLDS = 0
    VIOLATED = 1
    USAGE = 2
    UNKNOWN = 3
    INTERNAL = 4
    INTERRUPTED = 130


def exit_code(results: tuple[PropertyResult, ...], *, check_expectations: bool = False) -> ExitCode:
    """Precedence 1 > 3 > 0 (4 and 130 are decided by the caller): a real violation
    outranks an unknown. In `check` mode, a verdict that differs from `expect` is 1."""
    if check_expectations:
        if any(r.meets_expectation is False for r in results):
            return ExitCode.VIOLATED
        if any(r.verdict is Verdict.UNKNOWN for r in results):
            return ExitCode.UNKNOWN
        return ExitCode.HOLDS
    if any(r.verdict is Verdict.VIOLATED for r in results):
        return ExitCode.VIOLATED
    if any(r.verdict is Verdict.UNKNOWN for r in results):
        return ExitCode.UNKNOWN
    return ExitCode.HOLDS


@dataclass(frozen=True, slots=True)
class MutantResult:
    """What the properties said of one mutant (`tdxproof mutate`)."""
    index: int                 # 1-based, in the report's order
    operator: str              # drop-lock, swap, flip-condition, ...
    where: Span
    what: str                  # `drop cpus_read_lock();`
    outcome: str               # killed | survived | rejected | error | unknown
    by: str = ""               # killed: the property whose verdict moved; rejected/error: the message
    steps: int = 0             # killed by a violation, or error: the shortest witness, in steps
    detail: str = ""           # killed: violated | cover unreachable | now holds | verdict changed


@dataclass(frozen=True, slots=True)
class MutationReport:
    policy: str
    cpus: int
    baseline: tuple[tuple[str, str], ...]      # (property, verdict) of the unmutated policy
    mutants: tuple[MutantResult, ...]

    def count(self, outcome: str) -> int:
        return sum(1 for m in self.mutants if m.outcome == outcome)

    @property
    def kill_rate(self) -> tuple[int, int]:
        """(killed, mutants that ran): a rejected mutant never ran."""
        ran = [m for m in self.mutants if m.outcome != "rejected"]
        return sum(1 for m in ran if m.outcome in ("killed", "error")), len(ran)
