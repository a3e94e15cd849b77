"""`--engine lift` at growing N, one run each, from scratch (learning included).

    python benchmarks/lift.py POLICY N [N ...] [--learn-at N0] [--skip-deadlock]

Prints one Markdown row per N: seconds, peak memory of the process, templates,
instances kept, repairs and the verdicts. Figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import resource
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
from tdxproof.model.lower import lower_policy
from tdxproof.engines.lift import verify_lift
path, n, n0, skip = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
t = time.monotonic()
model = lower_policy(path, cpus=n)[0]
props = {p.name for p in model.properties if not (skip and p.kind.value == "deadlock")}
run = verify_lift(model, lower_policy(path, cpus=n0)[0], properties=props)
print(json.dumps({"seconds": time.monotonic() - t, "stats": run.stats,
                  "verdicts": [(r.name, r.verdict.value, r.reason) for r in run.results]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("policy")
    ap.add_argument("cpus", nargs="+", type=int)
    ap.add_argument("--learn-at", type=int, default=3)
    ap.add_argument("--skip-deadlock", action="store_true",
                    help="leave no-deadlock out (the symbolic route has no deadlock condition)")
    args = ap.parse_args()
    import json
    print("| policy | N | learned at | seconds | peak MiB | templates | instances kept | repairs | verdicts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.cpus:
        t = time.monotonic()
        out = subprocess.run([sys.executable, "-c", CHILD, args.policy, str(n), str(args.learn_at),
                              "1" if args.skip_deadlock else "0"],
                             capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
        if out.returncode != 0:
            print(f"| {args.policy} | {n} | {args.learn_at} | {time.monotonic() - t:.1f} | {peak} | | | | "
                  f"error: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode} |")
            continue
        d = json.loads(out.stdout.strip().splitlines()[-1])
        st = d["stats"]
        count = collections.Counter(v for _, v, _ in d["verdicts"])
        # the symbolic-N route (docs/lift.md) keeps templates, not instances at N
        sym = f"symbolic: {st['symbolic_templates']} in {st['symbolic_seconds']} s" if "symbolic_templates" in st else ""
        print(f"| {args.policy} | {n} | {args.learn_at} | {d['seconds']:.1f} | {peak} | "
              f"{st.get('templates', '')} {sym} | {st.get('lemmas', '')} | {st.get('repairs', '')} | "
              f"{', '.join(f'{k} {v}' for k, v in sorted(count.items()))} |", flush=True)


if __name__ == "__main__":
    main()
