"""The compiled search beside the reference interpreter, one process per run.

    python benchmarks/compiled.py POLICY:N[:engines] ...

engines: a comma-separated subset of explicit,compiled (default both). Prints
one Markdown row per run: seconds (the whole `tdxproof verify` process), peak
resident memory, states, states per second, and the verdict counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter


def run(policy: str, n: int, engine: str) -> str:
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tdxproof", "verify", policy, "--cpus", str(n), "--engine",
                             engine, "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)     # this child's own peak memory
    seconds = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:
        return f"| {policy} | {n} | {engine} | {seconds:.1f} | | | | exit {code}: {err[-200:]} |"
    states = doc.get("states") or 0
    verdicts = Counter(r["verdict"] for r in doc["results"])
    mem = f"{usage.ru_maxrss / 1024:.0f}"
    return (f"| {policy} | {n} | {engine} | {seconds:.1f} | {mem} | {states:,} | {states / seconds:,.0f} | "
            + ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items())) + " |")


def main(args: list[str]) -> None:
    print("| policy | N | engine | seconds | peak MiB | states | states/s | verdicts |")
    print("|---|---|---|---|---|---|---|---|")
    for arg in args:
        policy, n, *rest = arg.split(":")
        for engine in (rest[0].split(",") if rest else ["explicit", "compiled"]):
            print(run(policy, int(n), engine), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
