"""Source files and spans.

A `Span` is a 1-based (line, col) range in one file, with columns counted in
characters (lark's convention). `SourceFile` owns the text and answers "which
line is this" for the caret renderer. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


NO_SPAN = Span("<builtin>", 1, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str
    text: str
    line_starts: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @staticmethod
    def from_text(path: str, text: str) -> "SourceFile":
        starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                starts.append(i + 1)
        return SourceFile(path, text, tuple(starts))

    def line_text(self, line: int) -> str:
        if line < 1 or line > len(self.line_starts):
            return ""
        start = self.line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start:] if end < 0 else self.text[start:end]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, col) of a character offset."""
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self.line_starts[lo] + 1

    def span_at(self, offset: int, length: int = 1) -> Span:
        line, col = self.position(offset)
        return Span(self.path, line, col, line, col + max(length, 1))
