"""The search's shortcuts (interp/explore.py, step.Successors) change nothing: the
same states, in the same order, as a plain breadth-first search that calls
run_context() for every context of every state; every memoised transition is
what run_context() gives."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from tdxproof.interp import explore as explore_mod
from tdxproof.interp.program import Program
from tdxproof.interp.state import initial_states
from tdxproof.interp.step import Successors, run_context
from tdxproof.model.lower import lower_policy

REPO = Path(__file__).parent.parent.parent
CASES = [("policies/option4.tdx", 2), ("policies/upstream-fixed.tdx", 2),
         ("examples/qbman-cgr-lock/qman-6.8.tdx", None), ("examples/padata-dead-callback/padata-6.18.tdx", None),
         ("examples/therm-throt-poll-work/therm_throt-5.5.tdx", None)]


def _plain_bfs(prog: Program) -> list:
    """The reference: every state, in BFS order, keyed by the whole state."""
    seen: dict = {}
    order: list = []
    queue: deque = deque()
    for s in initial_states(prog):
        if s not in seen:
            seen[s] = len(order)
            order.append(s)
            queue.append(s)
    while queue:
        s = queue.popleft()
        for ci in range(len(prog.contexts)):
            res = run_context(prog, s, ci)
            if isinstance(res, list):
                for out in res:
                    if out.state not in seen:
                        seen[out.state] = len(order)
                        order.append(out.state)
                        queue.append(out.state)
    return order


class _Checked(Successors):
    """Successors that also runs run_context() each time and compares."""
    made: list[Successors] = []

    def __init__(self, prog):
        super().__init__(prog)
        _Checked.made.append(self)

    def step(self, state, ci):
        got = super().step(state, ci)
        want = run_context(self.prog, state, ci)
        assert got == want, (ci, state)
        if isinstance(got, list):
            for o in got:   # the states handed back are canonical
                g, ctxs = o[1]
                assert self.globals[g] is g
                assert self.vectors[tuple(map(id, ctxs))] is ctxs
                assert all(self.contexts[c] is c for c in ctxs)
        return got


@pytest.mark.parametrize("path,cpus", CASES)
def test_the_search_reaches_the_plain_searchs_states_in_its_order(path, cpus, monkeypatch):
    model, _, _ = lower_policy(str(REPO / path), cpus=cpus)
    prog = Program(model, cpus)
    searches: list = []

    class Recording(explore_mod._Search):
        def __init__(self, prog):
            super().__init__(prog)
            searches.append(self)

    monkeypatch.setattr(explore_mod, "_Search", Recording)
    monkeypatch.setattr(explore_mod, "Successors", _Checked)
    exp = explore_mod.explore(prog)
    succ = _Checked.made.pop()
    assert succ.memo, "nothing was memoised: the test checks nothing"
    plain = _plain_bfs(Program(model, cpus))
    # the states in the order they were found (the index's numbers), with their globals
    globals_by_id = {id(g): g for g in succ.globals}
    vectors_by_id = {id(v): v for v in succ.vectors.values()}
    found = [(globals_by_id[gid], vectors_by_id[vid])
             for (gid, vid), _ in sorted(searches[0].index.items(), key=lambda kv: kv[1])]
    if exp.complete:
        assert exp.states == len(plain)
        assert found == plain
    else:   # every property decided before the end: what it found is where the plain search starts
        assert exp.stopped == "decided"
        assert found == plain[:len(found)]
