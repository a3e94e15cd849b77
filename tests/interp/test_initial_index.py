"""Initial states by index without listing them (interp/state.py, InitialIndex):
a schedule found at a small N is replayed at 16 or 32 CPUs, where a choice per
CPU makes 2^(N-1) initial states."""

from __future__ import annotations

from pathlib import Path

import pytest

from tdxproof.interp.program import Program
from tdxproof.interp.state import InitialIndex, embed_initial, initial_states
from tdxproof.model.lower import lower_policy

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["policies/upstream.tdx", "policies/option4.tdx", "benchmarks/models/loop.tdx"])
def test_the_index_is_the_listed_order(name):
    for n in (2, 3, 4):
        prog = Program(lower_policy(str(ROOT / name), cpus=n)[0], n)
        listed = initial_states(prog)
        codec = InitialIndex(prog)
        assert codec.usable and codec.count() == len(listed)
        for i, s in enumerate(listed):
            assert codec.state(i) == s and codec.index(s[0]) == i


def test_a_small_initial_state_embeds_with_the_further_cpus_at_their_first_value():
    path = str(ROOT / "policies" / "upstream.tdx")
    small = Program(lower_policy(path, cpus=3)[0], 3)
    big = Program(lower_policy(path, cpus=32)[0], 32)
    codec = InitialIndex(big)
    assert codec.count() == 2 ** 31
    off = small.var_off["online"]
    for i, s in enumerate(initial_states(small)):
        j = embed_initial(small, i, big)
        online = codec.state(j)[0][big.var_off["online"]:big.var_off["online"] + 32]
        assert list(online) == list(s[0][off:off + 3]) + [0] * 29
