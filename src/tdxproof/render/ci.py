"""`tdxproof check` outputs: a text table, JUnit XML and SARIF 2.1.0."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

from tdxproof.render.text import verdict_words
from tdxproof.results import PropertyResult, RunResult, Verdict


def status(r: PropertyResult) -> str:
    ok = r.meets_expectation
    if r.expected is None:
        return "no expect"
    if ok is None:
        return "undecided"
    return "ok" if ok else "MISMATCH"


def render_check_text(runs: list[RunResult]) -> str:
    lines = []
    for run in runs:
        lines.append(f"{run.policy} (N={run.cpus}, {run.engine})")
        width = max((len(r.name) for r in run.results), default=8) + 2
        for r in run.results:
            exp = f"expect {r.expected}" if r.expected else ""
            lines.append(f"  {r.name:<{width}}{verdict_words(r):<34}{exp:<26}{status(r)}".rstrip())
    bad = sum(1 for run in runs for r in run.results if status(r) == "MISMATCH")
    open_ = sum(1 for run in runs for r in run.results if status(r) == "undecided")
    lines.append("")
    lines.append(f"{len(runs)} policies, {sum(len(run.results) for run in runs)} properties: "
                 f"{bad} differ from their expect clause, {open_} undecided")
    return "\n".join(lines)


def render_junit(runs: list[RunResult]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for run in runs:
        fails = sum(1 for r in run.results if status(r) == "MISMATCH")
        skips = sum(1 for r in run.results if status(r) in ("undecided", "no expect"))
        out.append(f"  <testsuite name={quoteattr(run.policy)} tests=\"{len(run.results)}\" "
                   f"failures=\"{fails}\" skipped=\"{skips}\">")
        for r in run.results:
            out.append(f"    <testcase classname={quoteattr(run.policy)} name={quoteattr(r.name)}>")
            st = status(r)
            if st == "MISMATCH":
                msg = f"expected {r.expected}, the {r.engine} engine says: {verdict_words(r)}"
                out.append(f"      <failure message={quoteattr(msg)}>{escape(msg)}</failure>")
            elif st != "ok":
                out.append(f"      <skipped message={quoteattr(st + ': ' + verdict_words(r))}/>")
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out)


def render_sarif(runs: list[RunResult], spans: dict[tuple[str, str], object]) -> str:
    """One SARIF result per violated property or differing expectation; the rule id
    is the property name."""
    results = []
    rules: dict[str, dict] = {}
    for run in runs:
        for r in run.results:
            st = status(r)
            if r.verdict is not Verdict.VIOLATED and st != "MISMATCH":
                continue
            rules.setdefault(r.name, {"id": r.name, "shortDescription": {"text": r.doc or r.name}})
            span = spans.get((run.policy, r.name))
            loc = {}
            if span is not None:
                loc = {"physicalLocation": {"artifactLocation": {"uri": span.path},
                                            "region": {"startLine": span.line, "startColumn": span.col}}}
            level = "error" if st == "MISMATCH" else "warning"
            text = f"{r.name}: {verdict_words(r)}" + (f" (expected {r.expected})" if r.expected else "")
            results.append({"ruleId": r.name, "level": level, "message": {"text": text},
                            "locations": [loc] if loc else []})
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "tdxproof", "rules": list(rules.values())}},
                     "results": results}]}
    return json.dumps(doc, indent=2)
