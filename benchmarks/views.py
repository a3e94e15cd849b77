"""The view fixpoint of engines/views.py on one policy, with its progress:
`python benchmarks/views.py POLICY [SECONDS] [--recheck]` (benchmarks/RESULTS.md, run 17).

Every invariant, step event and `no-deadlock` of the policy, lowered at N=3
(and 2, for the fragment's check); prints a progress line every 10 s and the
outcome: complete or why not, what the views break, items stepped, named
parts, views, seconds, and the re-check's verdict and time when it closes."""

import sys
import time

from tdxproof.engines import views
from tdxproof.model import ir
from tdxproof.model.lower import lower_policy


def main(argv: list[str]) -> int:
    path = argv[0]
    seconds = float(argv[1]) if len(argv) > 1 and not argv[1].startswith("-") else 600.0
    m, m2 = lower_policy(path, cpus=3)[0], lower_policy(path, cpus=2)[0]
    props = [p for p in m.properties if p.kind in (ir.PropKind.INVARIANT, ir.PropKind.DEADLOCK)
             or (p.fires_in_steps and p.kind not in ir.STATIC_KINDS)]
    w, why = views.width(m, m2, props)
    if w is None:
        print("views do not apply:", why)
        return 2
    print(f"K {w.k} classes a step; no-deadlock {'tried' if w.deadlock else 'not tried'}", flush=True)
    last = [0.0]

    def progress(head, queued, parts, nviews, t, rss):
        if t - last[0] > 10:
            last[0] = t
            print(f"  {t:.0f}s items {head}/{queued} named parts {parts} views {nviews} rss {rss >> 20}M", flush=True)

    out = views.search(m, props, w, timeout_s=seconds, progress=progress)
    print(f"complete {out.complete}; {out.why or ''}; broken {sorted(out.broken)}; items {out.items:,}; "
          f"named parts {out.named_parts:,}; views {out.views:,}; {out.seconds:.1f} s")
    if out.complete and "--recheck" in argv:
        t0 = time.monotonic()
        ok = [p for p in props if p.name not in out.broken]
        print("recheck:", views.recheck(m, ok, w, out.table) or "ok", f"{time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
