"""The exhaustive engines' limits and early answers: the reference interpreter's
search, and the same search over the compiled encoding (engines/compiled.py)."""

from __future__ import annotations

import pytest
from helpers import tdx

from tdxproof.engines.compiled import verify_compiled
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


EXHAUSTIVE = pytest.mark.parametrize("verify", [verify_explicit, verify_compiled], ids=["explicit", "compiled"])


@EXHAUSTIVE
def test_the_search_stops_once_every_selected_property_has_its_verdict(verify):
    model = tdx(COUNTER)
    full = verify(model)
    early = verify(model, properties={"x-small"})
    assert early.results[0].verdict is Verdict.VIOLATED
    assert len(early.results[0].schedule) == len(next(r for r in full.results if r.name == "x-small").schedule)
    assert early.stats["stopped"] == "decided" and early.states < full.states
    assert full.complete and not full.stats["stopped"]


@EXHAUSTIVE
def test_past_the_memory_budget_the_open_verdicts_are_unknown(verify):
    run = verify(tdx(COUNTER), memory_budget=1)
    by = {r.name: r for r in run.results}
    assert not run.complete
    assert by["y-small"].verdict is Verdict.UNKNOWN and "memory budget" in by["y-small"].reason
