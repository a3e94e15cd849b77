"""`--format md`: a Markdown verdict table, and for each witness the interleaving
table (as text, the way it goes into a commit message), a Mermaid sequence
diagram of the same events, and the end report, for documentation."""

from __future__ import annotations

from tdxproof.render.report import render_report
from tdxproof.render.table import leaves, render_table
from tdxproof.render.text import render_static, verdict_words
from tdxproof.results import PropertyResult, RunResult, Trace, Verdict


def _mermaid_text(text: str) -> str:
    """Mermaid note text: no `;` or `#` (they end or escape a statement)."""
    text = text.replace(";", ",").replace("#", "")
    return text if len(text) <= 160 else text[:157] + "..."


def _alias(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def render_mermaid(trace: Trace) -> list[str]:
    shown = leaves(trace)
    cols: list[str] = []
    for ctx, _, _ in shown:
        if ctx not in cols:
            cols.append(ctx)
    out = ["```mermaid", "sequenceDiagram"]
    for c in cols:
        out.append(f"    participant {_alias(c)} as {_mermaid_text(trace.title(c))}")
    for ctx, chain, notes in shown:
        me = _alias(ctx)
        where = chain[-1] if chain else ""
        for note in notes:
            text = note.removeprefix("<- ")
            if text.startswith("hands ") and ", waits" in text:
                target = next((c for c in cols if f" to {trace.title(c)}," in text), None)
                if target is not None:
                    out.append(f"    {me}->>{_alias(target)}: {_mermaid_text(text.split(' to ')[0])}")
                    continue
            if " returned " in text:
                source = next((c for c in cols if text.startswith(trace.title(c) + " returned")), None)
                if source is not None:
                    out.append(f"    {_alias(source)}-->>{me}: {_mermaid_text(text)}")
                    continue
            out.append(f"    Note over {me}: {_mermaid_text(f'{where} {text}'.strip())}")
    out.append("```")
    return out


def render_witness_md(r: PropertyResult) -> str:
    out = [f"### `{r.name}`: {verdict_words(r)}", ""]
    if r.doc:
        out += [f"> {r.doc}", ""]
    if r.static is not None:
        out += ["```text", render_static(r).strip("\n"), "```", ""]
        return "\n".join(out)
    assert r.trace is not None
    start = [f"  initially: {x}" for x in r.trace.initially] + ([""] if r.trace.initially else [])
    out += ["```text"] + start + [render_table(r.trace), "```", ""]
    out += render_mermaid(r.trace) + [""]
    if r.trace.report is not None:
        out += ["```text"] + render_report(r.trace.report) + ["```", ""]
    return "\n".join(out)


def render_markdown(run: RunResult) -> str:
    out = [f"## `{run.policy}`: {run.cpus} CPUs, engine {run.engine}", "",
           "| property | verdict | expected |", "|---|---|---|"]
    for r in run.results:
        ok = {True: "ok", False: "**mismatch**", None: ""}[r.meets_expectation]
        exp = f"{r.expected} ({ok})" if r.expected else ""
        out.append(f"| `{r.name}` | {verdict_words(r)} | {exp} |")
    out.append("")
    for r in run.results:
        if r.verdict is Verdict.VIOLATED and (r.trace is not None or r.static is not None):
            out.append(render_witness_md(r))
    return "\n".join(out)
