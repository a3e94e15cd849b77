"""Benchmarks (not part of the test suite): time to verdict per policy, number of
CPUs and engine, with the explicit engine's state count in the same run.

    python benchmarks/run.py                       # the default grid, writes benchmarks/RESULTS.md
    python benchmarks/run.py --cpus 2,3,4 --engines explicit --wall 900

Each run is a separate `tdxproof verify --format json` process with a wall-clock
limit; a run that hits it is recorded as such, not dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_one(policy: Path, cpus: int, engine: str, extra: list[str], wall: float) -> dict:
    cmd = [sys.executable, "-m", "tdxproof", "verify", str(policy.relative_to(ROOT)), "--cpus", str(cpus),
           "--engine", engine, "--format", "json", *extra]
    t0 = time.monotonic()
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=wall)
    except subprocess.TimeoutExpired:
        return {"cmd": " ".join(cmd[2:]), "seconds": wall, "timeout": True}
    secs = time.monotonic() - t0
    try:
        doc = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {"cmd": " ".join(cmd[2:]), "seconds": secs, "error": out.stderr.strip()[-300:]}
    return {"cmd": " ".join(cmd[2:]), "seconds": secs, "doc": doc, "exit": out.returncode}


def summarize(r: dict) -> str:
    if r.get("timeout"):
        return f"no verdict within {r['seconds']:.0f} s"
    if "error" in r:
        return "error: " + r["error"]
    results = r["doc"]["results"]
    bad = [f"{x['name']} ({len(x['witness']['steps'])})" for x in results if x["verdict"] == "violated"]
    kinds = {}
    for x in results:
        kinds[x["verdict"]] = kinds.get(x["verdict"], 0) + 1
    text = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
    stats = r["doc"].get("stats", {})
    if "lemmas" in stats:      # kind: the invariant's size and what learning it cost
        text += (f"; invariant of {stats['lemmas']:,} lemmas ({stats['blocked']:,} blocked states), "
                 f"{stats['calls']:,} solver calls, {stats['solver_s']:.0f} s in Z3")
    return text + ("; violated: " + ", ".join(bad) if bad else "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpus", default="2,3", help="e.g. 2,3 or, per engine, explicit=2,3,4;bmc=2")
    ap.add_argument("--engines", default="explicit")
    ap.add_argument("--policies", default="")
    ap.add_argument("--wall", type=float, default=600.0)
    ap.add_argument("--bmc-depth", type=int, default=20)
    ap.add_argument("--bmc-property", action="append", default=[],
                    help="POLICY:PROPERTY pairs to run bmc on (default: every property)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    policies = sorted((ROOT / "policies").glob("*.tdx"))
    if args.policies:
        policies = [p for p in policies if p.stem in args.policies.split(",")]
    per_engine: dict[str, list[int]] = {}
    for engine in args.engines.split(","):
        spec = args.cpus
        if "=" in spec:
            spec = dict(part.split("=") for part in spec.split(";")).get(engine, "")
        per_engine[engine] = [int(x) for x in spec.split(",") if x]
    rows = []
    for policy in policies:
        for engine in args.engines.split(","):
            for n in per_engine[engine]:
                extra: list[str] = []
                if engine == "bmc":
                    extra = ["--depth", str(args.bmc_depth)]
                    for pair in args.bmc_property:
                        pol, prop = pair.split(":")
                        if pol == policy.stem:
                            extra += ["--property", prop]
                r = run_one(policy, n, engine, extra, args.wall)
                doc = r.get("doc", {})
                states = doc.get("states", "")
                depth = doc.get("stats", {}).get("depth", doc.get("stats", {}).get("max_depth", ""))
                rows.append((policy.stem, n, engine, f"{r['seconds']:.1f}", states, depth, summarize(r), r["cmd"]))
                print(rows[-1][:7], flush=True)
    lines = ["# Benchmark results", "",
             f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.machine()}. "
             f"Command: `python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`", "",
             "| policy | N | engine | seconds | states | depth | verdicts |", "|---|---|---|---|---|---|---|"]
    for pol, n, eng, secs, states, depth, summary, _ in rows:
        lines.append(f"| {pol} | {n} | {eng} | {secs} | {states} | {depth} | {summary} |")
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
