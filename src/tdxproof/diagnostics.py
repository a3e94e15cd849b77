"""One diagnostic type for every user mistake, and its text rendering.

Codes are stable: E1xx syntax, E2xx names, E3xx types, E4xx well-formedness,
E5xx files and imports. Stages collect diagnostics in a `Diagnostics` and raise
`PolicyError` at the stage boundary; `InternalError` is reserved for our bugs.
The caret is drawn here and nowhere else.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Mapping

from tdxproof.source import SourceFile, Span


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Note:
    message: str
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    span: Span
    notes: tuple[Note, ...] = ()
    help: str | None = None


class PolicyError(Exception):
    """The user's input is wrong; carries every diagnostic of the failing stage."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


class InternalError(Exception):
    """A bug in tdxproof (a witness that does not replay, a broken invariant)."""


@dataclass
class Diagnostics:
    """Collector for one stage."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span, *, notes: Iterable[Note] = (),
              help: str | None = None) -> None:
        self.items.append(Diagnostic(Severity.ERROR, code, message, span, tuple(notes), help))

    def warning(self, code: str, message: str, span: Span, *, notes: Iterable[Note] = (),
                help: str | None = None) -> None:
        self.items.append(Diagnostic(Severity.WARNING, code, message, span, tuple(notes), help))

    @property
    def error_count(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.items)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise PolicyError(sorted(self.items, key=_order))

    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.items if d.severity is Severity.WARNING)


def _order(d: Diagnostic) -> tuple[str, int, int]:
    return (d.span.path, d.span.line, d.span.col)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.7)
    return f"did you mean `{close[0]}`?" if close else None


def render_text(diags: Iterable[Diagnostic], sources: Mapping[str, SourceFile]) -> str:
    """GCC-style rendering: `path:line:col: error[E201]: message`, source line, caret."""
    out: list[str] = []
    for d in diags:
        out.append(f"{d.span}: {d.severity.value}[{d.code}]: {d.message}")
        out.extend(_caret(d.span, sources))
        if d.help:
            out.append(f"      = help: {d.help}")
        for note in d.notes:
            if note.span is None:
                out.append(f"      = note: {note.message}")
            else:
                out.append(f"{note.span}: note: {note.message}")
    return "\n".join(out)


def _caret(span: Span, sources: Mapping[str, SourceFile]) -> list[str]:
    src = sources.get(span.path)
    if src is None:
        return []
    text = src.line_text(span.line)
    if not text and span.line > len(src.line_starts):
        return []
    gutter = f"{span.line:>5} | "
    expanded = text.expandtabs(4)
    # columns count characters; expand tabs only for drawing
    prefix = text[: span.col - 1].expandtabs(4)
    width = 1
    if span.end_line == span.line and span.end_col > span.col:
        width = len(text[span.col - 1: span.end_col - 1].expandtabs(4)) or 1
    return [gutter + expanded, " " * 5 + " | " + " " * len(prefix) + "^" * width]
