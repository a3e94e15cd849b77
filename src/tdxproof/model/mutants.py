"""Single mutations of a policy's code, as text edits (for `tdxproof mutate`).

Each mutant is one small, plausible kernel mistake applied to the source of one
file: a dropped lock or unlock, two statements swapped, an error path's rollback
dropped, the `_nocalls` / calling variant of a cpuhp call swapped, `_cpuslocked`
dropped, a cpuhp state replaced by its neighbour, a `may fail` that never fails,
`local_irq_save()` dropped, a condition flipped. Mutants are text, not IR, so
every one goes through the whole front end again: one the checker rejects is
reported as such, not run.

Only the design is mutated: the policy and the files it imports from its own
directory tree, never the shipped preludes (the kernel as it is), and never a
declaration a later `override` replaces (a mutant there changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from tdxproof.model.load import Loaded
from tdxproof.source import SourceFile, Span
from tdxproof.syntax import ast as A

# operator names, in the order of the report
OPERATORS = ("drop-lock", "drop-unlock", "swap", "drop-rollback", "nocalls", "cpuslocked", "cpuhp-state",
             "drop-may-fail", "drop-irq-save", "flip-condition")


@dataclass(frozen=True)
class Mutant:
    operator: str
    path: str            # the file edited
    span: Span           # where (for the report)
    what: str            # `drop mutex_unlock(m)`, in the policy's words
    text: str            # the whole mutated file


def _offsets(src: SourceFile, sp: Span) -> tuple[int, int]:
    return (src.line_starts[sp.line - 1] + sp.col - 1, src.line_starts[sp.end_line - 1] + sp.end_col - 1)


def _callee(e: A.Expr) -> str | None:
    return e.func.id if isinstance(e, A.Call) and isinstance(e.func, A.Name) else None


def _call_of(s: A.Stmt) -> A.Call | None:
    """The call a statement makes (`f(x);`, `let r = f(x);`, `r = f(x);`)."""
    match s:
        case A.ExprStmt(expr=A.Call() as c) | A.Let(value=A.Call() as c) | A.Assign(op="=", value=A.Call() as c):
            return c
    return None


def _blocks(s: A.Stmt) -> Iterator[tuple[A.Stmt, ...]]:
    match s:
        case A.If(then=t, other=o) | A.MayFail(then=t, other=o):
            yield t
            if o:
                yield o
        case A.Atomic(body=b) | A.ForCpu(body=b) | A.ForRange(body=b) | A.Pick(body=b) | A.Ipi(body=b):
            yield b
        case A.Either(branches=bs):
            yield from bs


class _Gen:
    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        fns: dict[str, A.FnDecl] = {}
        self.enums: dict[str, tuple[str, ...]] = {}
        self.roles: dict[str, str | None] = {}
        for f in loaded.files:
            for it in f.items:
                decl = it.decl if isinstance(it, A.Override) else it
                if isinstance(decl, A.FnDecl):
                    fns[decl.name] = decl
                    self.roles[decl.name] = decl.role
                elif isinstance(decl, A.EnumDecl):
                    self.enums[decl.name] = decl.members
                elif isinstance(decl, A.LockClassDecl):
                    for m in decl.fns:
                        self.roles[m.name] = m.role
        self.live = fns               # the declaration that stands, after overrides
        # wrappers take the role of what they wrap: `fn cpus_read_lock() { percpu_down_read(...); }`
        changed = True
        while changed:
            changed = False
            for f in fns.values():
                if self.roles.get(f.name) is None and len(f.body) == 1:
                    inner = _callee(f.body[0].expr) if isinstance(f.body[0], A.ExprStmt) else None
                    if inner is not None and self.roles.get(inner) is not None:
                        self.roles[f.name] = self.roles[inner]
                        changed = True
        self.out: list[Mutant] = []

    def run(self) -> list[Mutant]:
        for f in self.loaded.files:
            if Loaded.is_prelude(f.path):
                continue
            src = self.loaded.sources[f.path]
            for it in f.items:
                decl = it.decl if isinstance(it, A.Override) else it
                if isinstance(decl, A.FnDecl) and self.live.get(decl.name) is decl:
                    self._body(src, decl.body)
                elif isinstance(decl, A.ActorDecl) and self._actor_live(decl):
                    self._body(src, decl.body)
        order = {op: i for i, op in enumerate(OPERATORS)}
        return sorted(self.out, key=lambda m: (order[m.operator], m.path, m.span.line, m.span.col, m.what))

    def _actor_live(self, decl: A.ActorDecl) -> bool:
        last = None
        for f in self.loaded.files:
            for it in f.items:
                d = it.decl if isinstance(it, A.Override) else it
                if isinstance(d, A.ActorDecl) and d.name == decl.name:
                    last = d
        return last is decl

    def _edit(self, src: SourceFile, op: str, sp: Span, what: str, new: str, at: Span | None = None) -> None:
        a, b = _offsets(src, sp)
        self.out.append(Mutant(op, src.path, at or sp, what, src.text[:a] + new + src.text[b:]))

    def _text(self, src: SourceFile, sp: Span) -> str:
        a, b = _offsets(src, sp)
        return src.text[a:b]

    def _body(self, src: SourceFile, stmts: tuple[A.Stmt, ...]) -> None:
        # the properties' instrumentation is not the design: never mutated
        stmts = tuple(s for s in stmts if not isinstance(s, (A.GhostStmt, A.Check)))
        for i, s in enumerate(stmts):
            self._stmt(src, s)
            for blk in _blocks(s):
                self._body(src, blk)
            if i + 1 < len(stmts):
                t = stmts[i + 1]
                if isinstance(t, (A.Return, A.Break)) or isinstance(s, A.Let) or isinstance(t, A.Let):
                    continue
                (a, a_end), (b_start, b) = _offsets(src, s.span), _offsets(src, t.span)
                first, second = src.text[a:a_end], src.text[b_start:b]
                self.out.append(Mutant("swap", src.path, s.span, f"swap `{_head(first)}` and `{_head(second)}`",
                                       src.text[:a] + second + src.text[a_end:b_start] + first + src.text[b:]))

    def _stmt(self, src: SourceFile, s: A.Stmt) -> None:
        call = _call_of(s)
        name = _callee(call) if call is not None else None
        if name is not None and isinstance(s, A.ExprStmt):
            role = self.roles.get(name)
            if role in ("acquire", "release"):
                op = "drop-lock" if role == "acquire" else "drop-unlock"
                self._edit(src, op, s.span, f"drop `{self._text(src, s.span)}`", "")
        if name is not None:
            assert call is not None
            variants = []
            if name.endswith("_nocalls") and name.removesuffix("_nocalls") in self.live:
                variants.append(("nocalls", name.removesuffix("_nocalls")))
            elif name + "_nocalls" in self.live:
                variants.append(("nocalls", name + "_nocalls"))
            if "_nocalls_cpuslocked" in name and name.replace("_nocalls_cpuslocked", "_cpuslocked") in self.live:
                variants.append(("nocalls", name.replace("_nocalls_cpuslocked", "_cpuslocked")))
            elif name.endswith("_cpuslocked") and name.replace("_cpuslocked", "_nocalls_cpuslocked") in self.live:
                variants.append(("nocalls", name.replace("_cpuslocked", "_nocalls_cpuslocked")))
            if name.endswith("_cpuslocked") and name.removesuffix("_cpuslocked") in self.live:
                variants.append(("cpuslocked", name.removesuffix("_cpuslocked")))
            for op, other in variants:
                self._edit(src, op, call.func.span, f"`{name}` -> `{other}`", other, at=s.span)
            states = self.enums.get("cpuhp_state", ())
            for arg in call.args:
                if isinstance(arg, A.Name) and arg.id in states:
                    k = states.index(arg.id)
                    for j in (k - 1, k + 1):
                        if 0 <= j < len(states) and not states[j].endswith(("_END", "_OFFLINE", "_ONLINE")):
                            self._edit(src, "cpuhp-state", arg.span, f"`{arg.id}` -> `{states[j]}`", states[j],
                                       at=s.span)
            if name == "local_irq_save" and isinstance(s, A.Let):
                self._edit(src, "drop-irq-save", call.span, "`local_irq_save()` -> `irqs_off` (interrupts stay on)",
                           "irqs_off", at=s.span)
        match s:
            case A.If(cond=c, then=then):
                self._edit(src, "flip-condition", c.span, f"`if {self._text(src, c.span)}` -> "
                           f"`if !({self._text(src, c.span)})`", f"!({self._text(src, c.span)})", at=s.span)
                if len(then) >= 2 and isinstance(then[-1], A.Return):
                    # an error path: undo what it undoes, then return
                    a, _ = _offsets(src, then[0].span)
                    b, _ = _offsets(src, then[-1].span)
                    self.out.append(Mutant("drop-rollback", src.path, then[0].span,
                                           f"drop the rollback before `{self._text(src, then[-1].span)}`",
                                           src.text[:a] + src.text[b:]))
            case A.MayFail(other=other):
                keep = ""
                if other:
                    a, _ = _offsets(src, other[0].span)
                    _, b = _offsets(src, other[-1].span)
                    keep = src.text[a:b]
                reason = f' "{s.reason}"' if s.reason else ""
                self._edit(src, "drop-may-fail", s.span, f"`if may fail{reason}` never fails", keep)


def _head(text: str) -> str:
    line = text.strip().splitlines()[0]
    return line if len(line) <= 50 else line[:47] + "..."


def mutants(loaded: Loaded) -> list[Mutant]:
    """Every single mutant of the design, in a stable order."""
    return _Gen(loaded).run()
