"""`--format itf`: Apalache's Informal Trace Format (ADR-015), one trace per
witness, so other tools can read it. Integers are `{"#bigint": "..."}`,
per-CPU variables are sequences indexed by CPU number; `action_taken` names the
context that moved into each state and its choices."""

from __future__ import annotations

import json

from tdxproof.results import PropertyResult, RunResult


def _value(v: object) -> object:
    if isinstance(v, bool) or isinstance(v, str):
        return v
    if isinstance(v, int):
        return {"#bigint": str(v)}
    if isinstance(v, list):
        return [_value(x) for x in v]
    return str(v)


def trace_itf(run: RunResult, r: PropertyResult) -> dict:
    assert r.trace is not None and r.schedule is not None
    names = [name for name, _ in r.trace.states[0]] if r.trace.states else []
    states = []
    for i, valuation in enumerate(r.trace.states):
        state: dict[str, object] = {"#meta": {"index": i}}
        for name, value in valuation:
            state[name] = _value(value)
        if i == 0:
            state["action_taken"] = "init"
        else:
            step = r.schedule.steps[i - 1]
            state["action_taken"] = step.context + (f" [{step.choice}]" if step.choice else "")
        states.append(state)
    return {
        "#meta": {"format": "ITF", "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
                  "source": run.policy, "description": f"{r.name}: {r.verdict.value} ({r.engine}, N={r.cpus})"},
        "vars": names + ["action_taken"],
        "states": states,
    }


def render_itf(run: RunResult) -> str:
    traces = [trace_itf(run, r) for r in run.results if r.trace is not None and r.schedule is not None]
    if len(traces) == 1:
        return json.dumps(traces[0], indent=2)
    return json.dumps(traces, indent=2)
