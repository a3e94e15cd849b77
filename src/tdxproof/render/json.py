"""`--format json`: a versioned, documented schema (docs/json-schema.md)."""

from __future__ import annotations

import json
from dataclasses import asdict

from tdxproof.render.text import verdict_words
from tdxproof.results import PropertyResult, RunResult

SCHEMA = "tdxproof.verify/1"


def _result(r: PropertyResult) -> dict:
    out: dict = {
        "name": r.name, "kind": r.kind, "verdict": r.verdict.value, "verdict_text": verdict_words(r),
        "engine": r.engine, "cpus": r.cpus, "observed": r.observe, "expected": r.expected,
        "meets_expectation": r.meets_expectation,
    }
    if r.reason:
        out["reason"] = r.reason
    if r.schedule is not None:
        out["witness"] = {
            "init": r.schedule.init,
            "steps": [{"context": s.context, "choice": s.choice} for s in r.schedule.steps],
        }
        if r.trace is not None:
            out["witness"]["rows"] = [
                {"step": row.step, "context": row.context, "cpu": row.cpu, "function": row.function,
                 "span": asdict(row.span) if row.span else None, "statement": row.text,
                 "changes": list(row.changes), "waits": row.waits, "violation": row.violation,
                 "shown": row.key,
                 "events": [{"chain": list(e.chain), "what": list(e.what), "kind": e.kind, "shown": e.key,
                             "span": asdict(e.span) if e.span else None, "statement": e.text}
                            for e in row.events]}
                for row in r.trace.rows]
            out["witness"]["contexts"] = [{"context": name, "cpu": cpu, "title": r.trace.title(name)}
                                          for name, cpu in r.trace.contexts]
            out["witness"]["final"] = list(r.trace.final)
            if r.trace.report is not None:
                out["witness"]["report"] = asdict(r.trace.report)
    if r.proof is not None:
        out["certificate"] = {"k": r.proof.k, "lemmas": r.proof.lemmas, "first_lemmas": list(r.proof.text),
                              "rechecked_on": r.proof.rechecked}
    if r.static is not None:
        out["call_chain"] = {"chain": list(r.static.chain), "what": r.static.what, "span": asdict(r.static.span),
                             "links": list(r.static.links), "run_by": list(r.static.runs),
                             "statement": r.static.text, "entry": r.static.entry}
        if r.static.report:
            out["call_chain"]["report"] = list(r.static.report)
    return out


def render_json(run: RunResult) -> str:
    doc = {"schema": SCHEMA, "policy": run.policy, "cpus": run.cpus, "engine": run.engine,
           "states": run.states, "complete": run.complete, "results": [_result(r) for r in run.results],
           # no wall-clock figures: the same input gives byte-identical output (time the process)
           "stats": {k: v for k, v in run.stats.items() if k not in WALL_CLOCK}}
    return json.dumps(doc, indent=2, sort_keys=False)


WALL_CLOCK = {"seconds", "encode_seconds"}
