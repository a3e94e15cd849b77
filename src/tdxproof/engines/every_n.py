"""`--cpus any`: a verdict about every number of CPUs, as far as one exists today.

First, a task's own lock rules (`no-recursive-read`, `no-lock-at-exit`,
`locks-asserted`) are decided from the code alone where every code path shows
them (engines/lockgraph.py, `check_every_path`): a verdict for every N, and no
search of those properties.

The policy is lowered and searched exhaustively at N = 2, 3, ... up to the
policy's own `cpus` (types such as `int[0..nr_cpus]` depend on N, so each N
is lowered afresh). A property violated (or a cover goal met) at some N gets
the smallest such N and that N's shortest schedule, replayed there; the
search of larger N stops for it. A property that holds at every N searched is
*unknown* for every N: "holds (exhaustive)" up to the largest N is what is
known, and no proof for every N is printed without a certificate for the
unbounded family. Module-boundary rules are static and do not depend on N.

For what held at every N searched, engines/cutoff.py then tries a proof for
every N (docs/every-n.md): lemmas learned at a small N, read as "for all
CPUs" lemmas, checked at every N up to a cutoff the policy's text bounds.
"Proved (every N >= 2)" only when that certificate re-checks; otherwise the
verdict stays unknown, with what stopped the proof.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from tdxproof.engines.cutoff import EveryN, prove_every_n
from tdxproof.engines.explicit import ModelErrorAt, verify_explicit
from tdxproof.engines.lockgraph import check_every_path
from tdxproof.engines.views import prove as prove_by_views
from tdxproof.engines.trace import attach_traces
from tdxproof.model import ir
from tdxproof.model.lower import lower_policy
from tdxproof.results import PropertyResult, RunResult, Verdict

FIRST = 2        # the boot CPU and one that can go offline


def verify_every_n(path: str, upto: int, *, properties: set[str] | None = None, max_states: int = 6_000_000,
                   memory_budget: int | None = None, progress: Callable | None = None,
                   timeout_s: float | None = None, prove: bool = True,
                   certificate_out: Callable[[EveryN], None] | None = None,
                   say: Callable[[str], None] | None = None,
                   routes: tuple[str, ...] = ("views", "cutoff")) -> RunResult:
    """`progress(states, depth, seconds, rss)`: the searches' progress line;
    `say(message)`: the proof's (both for a terminal)."""
    found: dict[str, PropertyResult] = {}
    models = Models(path)
    held: dict[str, tuple[int, PropertyResult]] = {}
    first = models[FIRST]
    order: list[str] = [p.name for p in first.properties if properties is None or p.name in properties]
    expects = {e.prop: e.verdict for e in first.expects}
    if prove:
        # a task's own locks on every code path: a verdict for every N, no search needed
        for p in first.properties:
            r = check_every_path(first, p) if p.name in order else None
            if r is not None:
                found[p.name] = replace(r, expected=expects.get(p.name))
    open_props = {name for name in order if name not in found}
    last = FIRST
    states = 0
    for n in range(FIRST, max(upto, FIRST) + 1):
        if not open_props:
            break
        model = models[n]
        try:
            run = attach_traces(model, verify_explicit(model, cpus=n, properties=open_props, max_states=max_states,
                                                       memory_budget=memory_budget, progress=progress))
        except ModelErrorAt as exc:
            exc.cpus = n      # type: ignore[attr-defined]
            raise
        last, states = n, states + run.states
        for r in run.results:
            if r.verdict in (Verdict.VIOLATED, Verdict.COVERED, Verdict.HOLDS_STATIC):
                found[r.name] = replace(r, reason=f"smallest N={n}" if r.verdict is not Verdict.HOLDS_STATIC
                                        else None)
            elif r.verdict is Verdict.UNKNOWN:
                found[r.name] = replace(r, reason=f"at N={n}: {r.reason}")
            else:
                held[r.name] = (n, r)
        open_props = {name for name in order if name not in found}
        if not open_props:
            break
    stats: dict = {"every_n": True, "upto": last}
    proofs: dict[str, PropertyResult] = {}
    todo = [p for p in models[last].properties if p.name in held and p.name not in found]
    if todo and prove and "views" in routes:
        # one finite fixpoint of views (engines/views.py); what it proves is done
        proofs.update(prove_by_views(models, todo, timeout_s=timeout_s, say=say or (lambda msg: None),
                                     stats=stats))
        todo = [p for p in todo if p.name not in proofs]
        if "cutoff" not in routes:
            why = stats.get("views_why") or "the view fixpoint does not take this property"
            for p in todo:
                proofs[p.name] = PropertyResult(p.name, p.kind.value, Verdict.UNKNOWN, "views", 0,
                                                reason=f"no proof for every N: {why}")
    if todo and prove and "cutoff" in routes:
        # the every-path verdicts stand; their properties still join the learning
        # (its lemmas, and so what else it proves, as before they had those verdicts)
        todo = [p for p in models[last].properties if p in todo or p.name in found and found[p.name].cpus == 0
                and found[p.name].verdict is Verdict.HOLDS_STATIC and found[p.name].reason]
        more, cert = prove_every_n(path, models, todo, learn_at=min(max(upto, FIRST + 1), 3),
                                     max_states=max_states, timeout_s=timeout_s,
                                     say=say or (lambda msg: None), stats=stats)
        proofs.update(more)
        if cert is not None and certificate_out is not None:
            certificate_out(cert)
    for name, (n, r) in held.items():
        if name in found:
            continue
        what = "holds" if r.verdict is not Verdict.UNREACHABLE else "unreachable"
        p = proofs.get(name)
        if p is not None and p.verdict in (Verdict.PROVED, Verdict.UNREACHABLE):
            found[name] = replace(p, expected=r.expected)
            continue
        why = p.reason if p is not None else "no proof for every N tried"
        if why == stats.get("every_n_why"):
            why = "no proof for every N (why: above)"
        found[name] = replace(r, verdict=Verdict.UNKNOWN, schedule=None, trace=None, proof=None,
                              reason=f"{what} (exhaustive) for N={FIRST}..{n}; {why}")
    return RunResult(path, last, "explicit", tuple(found[name] for name in order), states=states, complete=True,
                     stats=stats)


class Models(dict):
    """The policy lowered at each N, once."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def __missing__(self, n: int) -> ir.Model:
        self[n] = lower_policy(self.path, cpus=n)[0]
        return self[n]
