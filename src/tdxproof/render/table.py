"""The interleaving table of a witness, as kernel commit messages draw it: one
column per context, time going down, each step the call chain that reached it
(indented one space per call, only the part that differs from the column's
previous step), what it did at the end of its line, the failing statement last.

Too many contexts for a terminal: one event per line block, the context named.
"""

from __future__ import annotations

import textwrap

from tdxproof.results import Trace, TraceEvent, cpu_name

WIDTH = 118        # the whole table, indent included
MIN_COL = 26
SEQUENTIAL_FROM = 4   # contexts


def _mark(e: TraceEvent) -> str:
    text = e.what[0] if e.what else ""
    if not text or text.startswith(("!!", "->")):
        return text
    return "<- " + text


def leaves(trace: Trace, *, everything: bool = False) -> list[tuple[str, tuple[str, ...], list[str]]]:
    """(context, chain, annotations) for each shown statement, in time order;
    consecutive events of one statement share a leaf."""
    out: list[tuple[str, tuple[str, ...], list[str]]] = []
    for row in trace.rows:
        for e in row.events:
            if not (e.key or everything):
                continue
            if out and out[-1][:2] == (e.context, e.chain):
                if _mark(e) not in out[-1][2]:
                    out[-1][2].append(_mark(e))
                    if "" in out[-1][2] and len(out[-1][2]) > 1:
                        out[-1][2].remove("")       # a callback entry says nothing more
            else:
                out.append((e.context, e.chain, [_mark(e)]))
    return out


def render_table(trace: Trace, *, everything: bool = False) -> str:
    shown = leaves(trace, everything=everything)
    cols = []
    for ctx, _, _ in shown:
        if ctx not in cols:
            cols.append(ctx)
    cpu = dict(trace.contexts)
    heads = [f"{trace.title(c)} ({cpu_name(cpu.get(c, 0))})" for c in cols]
    if len(cols) >= SEQUENTIAL_FROM:
        return _sequential(shown, dict(zip(cols, heads)))
    layout = []                      # (column, chain lines, depth, notes)
    prev: dict[str, tuple[str, ...]] = {}
    for ctx, chain, notes in shown:
        layout.append((cols.index(ctx), _new_frames(prev, ctx, chain), len(chain), notes))
    natural = [len(h) for h in heads]
    for col, lines, depth, notes in layout:
        one = (lines[-1] if lines else " " * depth) + "  " + notes[0]
        natural[col] = max([natural[col], len(one)] + [len(x) for x in lines])
    budget = WIDTH - 2 - 3 * (len(cols) - 1)
    widths = list(natural)
    while sum(widths) > budget and max(widths) > MIN_COL:
        widths[widths.index(max(widths))] -= 1
    out = ["  " + "   ".join(f"{h:<{w}}" for h, w in zip(heads, widths)).rstrip(),
           "  " + "   ".join(f"{'-' * len(h):<{w}}" for h, w in zip(heads, widths)).rstrip()]
    for col, lines, depth, notes in layout:
        width = widths[col]
        body = list(lines)
        rest = [n for n in notes if n]
        if rest and body and len(body[-1]) + 2 + len(rest[0]) <= width:
            body[-1] += "  " + rest.pop(0)
        body += [" " * (depth + 1) + n for n in rest]
        for line in body:
            for piece in _fit(line, width):
                cells = [""] * len(cols)
                cells[col] = piece
                out.append(("  " + "   ".join(f"{c:<{w}}" for c, w in zip(cells, widths))).rstrip())
    return "\n".join(out)


def _new_frames(prev: dict[str, tuple[str, ...]], ctx: str, chain: tuple[str, ...]) -> list[str]:
    """The frames of `chain` below what the column showed last, indented by depth
    (the same function again is named once more)."""
    before = prev.get(ctx, ())
    same = 0
    while same < min(len(before), len(chain)) and before[same] == chain[same]:
        same += 1
    if same == len(chain) and chain:
        same -= 1
    prev[ctx] = chain
    return [" " * d + chain[d] for d in range(same, len(chain))]


def _fit(line: str, width: int) -> list[str]:
    """A line within its column: an annotation wraps, a call chain never does (a
    long one runs past the column; no other cell shares its line)."""
    if len(line) <= width or not line.lstrip().startswith(("<-", "!!", "->")):
        return [line]
    indent = len(line) - len(line.lstrip())
    return textwrap.wrap(line.strip(), width, initial_indent=" " * indent, subsequent_indent=" " * (indent + 3),
                         break_long_words=False, break_on_hyphens=False) or [line[:width]]


def _sequential(shown, heads: dict[str, str]) -> str:
    out: list[str] = []
    prev: dict[str, tuple[str, ...]] = {}
    current = None
    for ctx, chain, notes in shown:
        if ctx != current:
            out.append(f"  {heads[ctx]}:")
            current = ctx
        lines = ["    " + x for x in _new_frames(prev, ctx, chain)]
        notes = [n for n in notes if n]
        if lines and notes and len(lines[-1]) + 2 + len(notes[0]) <= WIDTH - 2:
            lines[-1] += "  " + notes.pop(0)
        elif notes and not lines:
            lines = ["    " + " " * len(chain) + notes.pop(0)]
        lines += ["    " + " " * (len(chain) + 1) + n for n in notes]
        for line in lines:
            out.extend(_fit(line, WIDTH - 2))
    return "\n".join(line.rstrip() for line in out)
