"""`--cpus any`'s proof for every N (engines/cutoff.py), one process per policy.

    python benchmarks/every_n.py POLICY [POLICY ...]

For each policy: the exhaustive search at N = 2..cpus, then the cutoff proof of
what held (learning at N0 = 3 included), as `tdxproof verify POLICY --cpus any`
does. Prints one Markdown row per policy: seconds, peak memory, the cutoff (or its
lower bound) with its parts, the verdicts, and why the rest has no proof.
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
from tdxproof.engines.every_n import verify_every_n
from tdxproof.model.lower import lower_policy
path = sys.argv[1]
t = time.monotonic()
run = verify_every_n(path, lower_policy(path)[0].cpus)
print(json.dumps({"seconds": time.monotonic() - t, "stats": run.stats, "states": run.states,
                  "verdicts": [(r.name, r.verdict.value, r.reason) for r in run.results]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("policies", nargs="+")
    ap.add_argument("--wall", type=float, default=1800)
    args = ap.parse_args()
    print("| policy | seconds | peak MB | cutoff | proved | other verdicts | why no proof |")
    print("|---|---|---|---|---|---|---|")
    for path in args.policies:
        t0 = time.monotonic()
        try:
            out = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True,
                                 timeout=args.wall)
        except subprocess.TimeoutExpired:
            print(f"| {path} | {args.wall:.0f} (limit) | | | | | |", flush=True)
            continue
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if out.returncode != 0:
            print(f"| {path} | {time.monotonic() - t0:.1f} | {peak:.0f} | | | | error: "
                  f"{out.stderr.strip().splitlines()[-1][:120]} |", flush=True)
            continue
        d = json.loads(out.stdout)
        st = d["stats"]
        parts = st.get("cutoff_parts", {})
        said = " + ".join(f"{v} {k}" for k, v in parts.items() if v)
        cut = (f"{st['cutoff']} ({said})" if "cutoff" in st else
               f">= {st['cutoff_low']} ({said})" if "cutoff_low" in st else "")
        counts = collections.Counter(v for _, v, _ in d["verdicts"])
        proved = counts.pop("proved", 0)
        why = st.get("every_n_why", "")
        why = why.removeprefix("no proof for every N: ").split("; the global slots")[0]
        print(f"| {path} | {d['seconds']:.1f} | {peak:.0f} | {cut} | {proved} | "
              f"{', '.join(f'{n} {v}' for v, n in sorted(counts.items()))} | {why} |", flush=True)


if __name__ == "__main__":
    main()
