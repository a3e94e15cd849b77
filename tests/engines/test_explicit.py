"""The explicit engine's limits and early answers."""

from __future__ import annotations

from helpers import tdx

from tdxproof.engines.explicit import verify_explicit
from tdxproof.results import Verdict

COUNTER = """
    import "locks.tdx";
    var x: int[0..7] = 0;
    var y: int[0..7] = 0;
    actor a repeat 6 { x++; }
    actor b repeat 6 { y++; }
    invariant x-small: x < 2;
    invariant y-small: y < 8;
"""


def test_the_search_stops_once_every_selected_property_has_its_verdict():
    model = tdx(COUNTER)
    full = verify_explicit(model)
    early = verify_explicit(model, properties={"x-small"})
    assert early.results[0].verdict is Verdict.VIOLATED
    assert len(early.results[0].schedule) == len(next(r for r in full.results if r.name == "x-small").schedule)
    assert early.stats["stopped"] == "decided" and early.states < full.states
    assert full.complete and not full.stats["stopped"]


def test_past_the_memory_budget_the_open_verdicts_are_unknown():
    run = verify_explicit(tdx(COUNTER), memory_budget=1)
    by = {r.name: r for r in run.results}
    assert not run.complete
    assert by["y-small"].verdict is Verdict.UNKNOWN and "memory budget" in by["y-small"].reason
