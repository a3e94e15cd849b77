"""The mutation report: one row per mutant, the kill rate, the survivors last
(each is equivalent to the policy, or shows a property that is missing)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from tdxproof.results import MutantResult, MutationReport


def _where(m: MutantResult) -> str:
    return f"{os.path.basename(m.where.path)}:{m.where.line}"


def _outcome(m: MutantResult) -> str:
    match m.outcome:
        case "killed" if m.detail == "violated":
            return f"killed: `{m.by}` violated ({m.steps} steps)"
        case "killed" if m.detail.startswith("violated sooner"):
            return f"killed: `{m.by}` {m.detail.replace('(was', f'({m.steps} steps, was')}"
        case "killed":
            return f"killed: `{m.by}` {m.detail}"
        case "error":
            return f"killed: run-time error after {m.steps} steps ({m.by})"
        case "rejected":
            return f"rejected by the checker: {m.by}"
        case "unknown":
            return f"unknown ({m.by})"
    return "SURVIVED"


def render_mutation(rep: MutationReport, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps({"schema": "tdxproof.mutate/1", "policy": rep.policy, "cpus": rep.cpus,
                           "baseline": dict(rep.baseline),
                           "kill_rate": {"killed": rep.kill_rate[0], "ran": rep.kill_rate[1]},
                           "mutants": [{**asdict(m), "where": str(m.where)} for m in rep.mutants]}, indent=2)
    killed, ran = rep.kill_rate
    rate = f"{100 * killed / ran:.0f}%" if ran else "n/a"
    md = fmt == "md"
    lines = [f"{rep.policy}: {len(rep.mutants)} mutants at N={rep.cpus}, engine explicit",
             f"killed {killed} of the {ran} that ran ({rate}); survived {rep.count('survived')}, "
             f"unknown {rep.count('unknown')}, rejected by the checker {rep.count('rejected')}", ""]
    if md:
        lines += ["| # | operator | where | mutation | outcome |", "|---|---|---|---|---|"]
        lines += [f"| {m.index} | {m.operator} | {_where(m)} | {m.what.replace('|', '&#124;')} | "
                  f"{_outcome(m).replace('|', '&#124;')} |" for m in rep.mutants]
    else:
        w = max((len(_where(m)) for m in rep.mutants), default=5)
        lines += [f"  {m.index:>3}  {m.operator:<14} {_where(m):<{w}}  {m.what}\n"
                  f"       {'':<14} {'':<{w}}  -> {_outcome(m)}" for m in rep.mutants]
    survivors = [m for m in rep.mutants if m.outcome == "survived"]
    if survivors:
        lines += ["", "survivors: each is equivalent to the policy (say why) or reveals a missing property:"]
        lines += [f"  #{m.index} {m.operator} at {m.where}: {m.what}" for m in survivors]
    return "\n".join(lines)
