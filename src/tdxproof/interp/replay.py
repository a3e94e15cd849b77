"""replay(program, schedule) -> the states it passes through, or ReplayMismatch.

Every witness the tool prints is replayed here first: a schedule that does not
replay, or does not reproduce its violation, is an internal error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tdxproof.interp.program import Program
from tdxproof.interp.state import InitialIndex, State, initial_states
from tdxproof.interp.step import Blocked, Outcome, run_context
from tdxproof.results import Schedule


class ReplayMismatch(Exception):
    pass


@dataclass(frozen=True)
class Replayed:
    states: tuple[State, ...]          # states[0] initial, states[i+1] after step i
    outcomes: tuple[Outcome, ...]
    spans: tuple[Any, ...]
    contexts: tuple[int, ...]


def initial_state(prog: Program, idx: int) -> State:
    """Initial state number `idx`, computed rather than listed where it can be."""
    codec = InitialIndex(prog)
    try:
        if codec.usable:
            return codec.state(idx)
        inits = initial_states(prog)
        if 0 <= idx:
            return inits[idx]
    except IndexError:
        pass
    raise ReplayMismatch(f"no initial state #{idx}")


def replay(prog: Program, schedule: Schedule) -> Replayed:
    s = initial_state(prog, schedule.init)
    names = {c.name: i for i, c in enumerate(prog.contexts)}
    states, outs, spans, cis = [s], [], [], []
    for n, step in enumerate(schedule.steps):
        ci = names.get(step.context)
        if ci is None:
            raise ReplayMismatch(f"step {n + 1}: no context `{step.context}`")
        res = run_context(prog, s, ci)
        if isinstance(res, (Blocked, str)):
            raise ReplayMismatch(f"step {n + 1}: `{step.context}` cannot move")
        match = [o for o in res if o.choice == step.choice]
        if not match:
            raise ReplayMismatch(f"step {n + 1}: `{step.context}` has no choice {step.choice!r}")
        out = match[0]
        s = out.state
        states.append(s)
        outs.append(out)
        spans.append(out.span)
        cis.append(ci)
    return Replayed(tuple(states), tuple(outs), tuple(spans), tuple(cis))
