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


def _uri(path: str) -> str:
    """A prelude file by its place in the package source, where that exists."""
    from os.path import exists
    if path.startswith("<prelude>/"):
        local = "src/tdxproof/prelude/" + path.removeprefix("<prelude>/")
        return local if exists(local) else path
    return path


def _location(span, message: str | None = None) -> dict:
    loc: dict = {"physicalLocation": {"artifactLocation": {"uri": _uri(span.path)},
                                      "region": {"startLine": span.line, "startColumn": span.col}}}
    if message:
        loc["message"] = {"text": message}
    return loc


def _failing(r: PropertyResult):
    if r.static is not None:
        return r.static.span
    if r.trace is not None:
        for row in reversed(r.trace.rows):
            for e in reversed(row.events):
                if e.kind in ("violation", "goal") and e.span is not None:
                    return e.span
    return None


def render_sarif(runs: list[RunResult], where: dict[tuple[str, str], dict]) -> str:
    """One SARIF result per violated property or differing expectation; the rule id
    is the property name. Each points at a file of the repository: the `expect`
    clause that claims the verdict, else the property's declaration in the policy,
    else the policy's first line; the prelude declaration and the failing
    statement are related locations. Level `error` for an expectation that fails,
    `note` for a violation the policy expects, `warning` for one it says nothing of."""
    results = []
    rules: dict[str, dict] = {}
    for run in runs:
        for r in run.results:
            st = status(r)
            if r.verdict is not Verdict.VIOLATED and st != "MISMATCH":
                continue
            rules.setdefault(r.name, {"id": r.name, "shortDescription": {"text": r.doc or r.name}})
            w = where.get((run.policy, r.name), {})
            prop, expect = w.get("property"), w.get("expect")
            related = []
            if expect is not None and not expect.path.startswith("<prelude>/"):
                primary = _location(expect)
            elif prop is not None and not prop.path.startswith("<prelude>/"):
                primary = _location(prop)
            else:
                primary = {"physicalLocation": {"artifactLocation": {"uri": run.policy},
                                                "region": {"startLine": 1, "startColumn": 1}}}
            if prop is not None and primary["physicalLocation"]["artifactLocation"]["uri"] != _uri(prop.path):
                related.append(_location(prop, f"`{r.name}` is declared here"))
            fail = _failing(r)
            if fail is not None:
                related.append(_location(fail, "where it fails" if r.verdict is Verdict.VIOLATED else "where"))
            for i, loc in enumerate(related):
                loc["id"] = i
            level = "error" if st == "MISMATCH" else ("note" if r.expected == "violated" else "warning")
            text = f"{run.policy}: {r.name}: {verdict_words(r)}" + (
                f" (the policy expects {r.expected})" if r.expected else "")
            res = {"ruleId": r.name, "level": level, "message": {"text": text}, "locations": [primary]}
            if related:
                res["relatedLocations"] = related
            results.append(res)
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "tdxproof", "rules": list(rules.values())}},
                     "results": results}]}
    return json.dumps(doc, indent=2)
