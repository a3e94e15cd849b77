"""`--format md`: a Markdown verdict table, and for each witness an interleaving
table and a Mermaid sequence diagram, for documentation."""

from __future__ import annotations

from tdxproof.render.text import verdict_words
from tdxproof.results import PropertyResult, RunResult, Verdict


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _mermaid_text(text: str) -> str:
    return text.replace(";", ",").replace("#", "").replace(":", " -")[:90]


def render_witness_md(r: PropertyResult) -> str:
    assert r.trace is not None
    out = [f"### `{r.name}`: {verdict_words(r)}", ""]
    if r.doc:
        out += [f"> {r.doc}", ""]
    cols = [name for name, _ in r.trace.contexts if any(row.context == name and row.key for row in r.trace.rows)]
    out.append("| step | " + " | ".join(f"`{c}`" for c in cols) + " |")
    out.append("|---|" + "---|" * len(cols))
    for row in r.trace.rows:
        if not row.key:
            continue
        parts = [f"`{row.function}`: `{_cell(row.text)}`"] + [_cell(c) for c in row.changes]
        if row.violation:
            parts.append(f"**{_cell(row.violation)}**")
        if row.waits:
            parts.append(f"*{_cell(row.waits)}*")
        cells = ["<br>".join(parts) if c == row.context else "" for c in cols]
        out.append(f"| {row.step} | " + " | ".join(cells) + " |")
    out += ["", "```mermaid", "sequenceDiagram"]
    for c in cols:
        out.append(f"    participant {c.replace('/', '_').replace('#', '_')} as {c}")
    alias = {c: c.replace("/", "_").replace("#", "_") for c in cols}
    for row in r.trace.rows:
        if not row.key or row.context not in alias:
            continue
        me = alias[row.context]
        for change in row.changes:
            if change.startswith("hands ") and " to " in change:
                target = change.split(" to ")[1].split(" and ")[0]
                if target in alias:
                    out.append(f"    {me}->>{alias[target]}: {_mermaid_text(change.split(' to ')[0])}")
                    continue
            out.append(f"    Note over {me}: {_mermaid_text(change)}")
        if row.waits:
            out.append(f"    Note over {me}: {_mermaid_text(row.waits)}")
        if row.violation:
            out.append(f"    Note over {me}: VIOLATION - {_mermaid_text(row.violation)}")
    out += ["```", ""]
    if r.trace.final:
        out += ["State at the end:", ""] + [f"- `{_cell(x)}`" for x in r.trace.final] + [""]
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
        if r.verdict is Verdict.VIOLATED and r.trace is not None:
            out.append(render_witness_md(r))
    return "\n".join(out)
