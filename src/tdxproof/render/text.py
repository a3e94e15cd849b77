"""Human-readable verdicts and kernel-style interleaving tables."""

from __future__ import annotations

import textwrap

from tdxproof.results import PropertyResult, RunResult, Trace, Verdict

COL = 38


def verdict_words(r: PropertyResult) -> str:
    """The fixed user vocabulary (house style §0.8)."""
    match r.verdict:
        case Verdict.PROVED:
            # for this N, every depth; the lemmas re-checked on the plain encoding
            return f"proved (N={r.cpus}, {r.proof.lemmas:,} lemmas)" if r.proof else "proved"
        case Verdict.HOLDS_UP_TO_DEPTH:
            return f"holds up to depth {r.depth}"
        case Verdict.HOLDS_EXHAUSTIVE:
            return f"holds (exhaustive, N={r.cpus})"
        case Verdict.HOLDS_STATIC:
            return "holds (static, call graph)"
        case Verdict.VIOLATED:
            return f"violated ({len(r.schedule)} steps)" if r.schedule is not None else "violated (call chain)"
        case Verdict.COVERED:
            return f"covered ({len(r.schedule)} steps)" if r.schedule is not None else "covered"
        case Verdict.UNREACHABLE:
            if r.proof is not None:
                return f"unreachable (proved, N={r.cpus}, {r.proof.lemmas:,} lemmas)"
            return f"unreachable (exhaustive, N={r.cpus})"
        case Verdict.UNKNOWN:
            return f"unknown ({r.reason})"
    raise AssertionError(r.verdict)


def expect_words(r: PropertyResult) -> str:
    ok = r.meets_expectation
    if r.expected is None:
        return ""
    if ok is None:
        return f"expect {r.expected}: undecided"
    return f"expect {r.expected}: {'ok' if ok else 'MISMATCH'}"


def _n(k: int, what: str) -> str:
    return f"{k:,} {what}{'' if k == 1 else 's'}"


def render_summary(run: RunResult, *, engine_note: str = "") -> str:
    lines = [f"{run.policy}: {run.cpus} CPUs, engine {run.engine}{engine_note}"]
    if run.engine == "explicit":
        done = "complete" if run.complete else "incomplete (state limit)"
        lines.append(f"explored {run.states:,} states ({done})")
    if run.engine == "kind" and "lemmas" in run.stats:
        lines.append(f"inductive invariant of {run.stats['lemmas']:,} lemmas, learned against the "
                     f"{run.states:,} reachable states of the encoding ({_n(run.stats['blocked'], 'state')} "
                     f"blocked, {_n(run.stats['calls'], 'solver call')}); re-checked on the plain encoding")
    lines.append("")
    width = max((len(r.name) for r in run.results), default=10) + 2
    vw = max((len(verdict_words(r)) for r in run.results), default=10) + 2
    for r in run.results:
        lines.append(f"  {r.name:<{width}}{verdict_words(r):<{vw}}{expect_words(r)}".rstrip())
    return "\n".join(lines)


def render_proof(run: RunResult) -> str | None:
    """The invariant behind the proved verdicts (its first lines), once: every
    property kind proves in one run shares it."""
    proof = next((r.proof for r in run.results if r.proof is not None), None)
    if proof is None:
        return None
    return "\n".join([_rule(f"the inductive invariant ({proof.lemmas:,} lemmas; first lines)")]
                     + [f"  {line}" for line in proof.text])


def _rule(title: str) -> str:
    head = f"── {title} "
    return head + "─" * max(0, 78 - len(head))


def render_witness(r: PropertyResult, *, verbose: bool = False) -> str:
    title = {Verdict.VIOLATED: "violated", Verdict.COVERED: "covered"}.get(r.verdict, r.verdict.value)
    out = [_rule(f"{r.name}: {title}")]
    if r.doc:
        out.append(f"{r.name}: {r.doc}")
    if r.static is not None:
        out.append("call chain: " + " -> ".join(r.static.chain))
        out.append(f"  {r.static.span}: {r.static.what}")
        return "\n".join(out)
    if r.trace is None:
        return "\n".join(out)
    out.append(render_trace(r.trace, verbose=verbose))
    if r.verdict is Verdict.VIOLATED:
        where = {"quiescent": " (at a quiescent state)", "every": ""}.get(r.observe, "")
        if r.kind == "deadlock":
            out.append("deadlock: these contexts wait on each other forever:")
        elif r.kind in ("event", "order"):
            out.append(f"the check of `{r.name}` fails at step {len(r.trace.rows)}")
        else:
            out.append(f"`{r.name}` is false after step {len(r.trace.rows)}{where}:")
    elif r.verdict is Verdict.COVERED:
        out.append(f"`{r.name}` is reached after step {len(r.trace.rows)}:")
    for line in r.trace.final:
        out.append(f"    {line}")
    return "\n".join(out)


def render_trace(trace: Trace, *, verbose: bool = False) -> str:
    shown = {r.context for r in trace.rows if verbose or r.key}
    contexts = [(n, c) for n, c in trace.contexts if n in shown]
    cols = [name for name, _ in contexts]
    index = {name: i for i, name in enumerate(cols)}
    header = "step  " + " | ".join(f"{f'{name} (CPU {cpu})':<{COL}}" for name, cpu in contexts)
    lines = [header.rstrip(), "----  " + "-+-".join("-" * COL for _ in cols)]
    for row in trace.rows:
        cell: list[str] = []
        if verbose:
            for fn, text in row.statements:
                cell.extend(_wrap(f"{fn}: {text}"))
        elif row.key:
            cell.extend(_wrap(row.text if row.text.startswith(row.function) else f"{row.function}: {row.text}"))
        else:
            continue
        for c in row.changes:
            cell.extend(_wrap("  " + c))
        if row.violation:
            cell.extend(_wrap("  !! " + row.violation))
        if row.waits:
            cell.extend(_wrap("  .. " + row.waits))
        col = index[row.context]
        for n, text in enumerate(cell):
            cells = [""] * len(cols)
            cells[col] = text
            prefix = f"{row.step:>4}  " if n == 0 else "      "
            lines.append((prefix + " | ".join(f"{c:<{COL}}" for c in cells)).rstrip())
    if not verbose:
        hidden = sum(1 for r in trace.rows if not r.key)
        lines.append(f"      ({hidden} of {len(trace.rows)} steps not shown: internal bookkeeping; --verbose shows all)")
    return "\n".join(lines)


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, COL, subsequent_indent="    ", break_long_words=True) or [""]
