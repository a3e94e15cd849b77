"""Symmetry reduction (docs/symmetry.md): the any-order semantics, renaming, one
state per orbit, and the way back to the reference semantics' schedules.

Every thread policy at N=3 with and without symmetry, and the catalogue models at
N=4: `SYMMETRY_ALL=1 pytest tests/interp/test_symmetry.py` (about 3 minutes)."""

from __future__ import annotations

import glob
import itertools
import os
from collections import deque

import pytest
from helpers import tdx

from tdxproof.engines.explicit import verify_explicit
from tdxproof.interp.program import Program
from tdxproof.interp.state import initial_states
from tdxproof.interp.step import run_context
from tdxproof.interp.symmetry import Canon, NotSymmetric, Symmetry, analyse
from tdxproof.model.lower import lower_policy

BASE = 'import "kernel-6.16.tdx";\n'


def _reachable(prog: Program, limit: int) -> list[tuple]:
    seen = set(initial_states(prog))
    queue, out = deque(seen), []
    while queue and len(out) < limit:
        s = queue.popleft()
        out.append(s)
        for ci in range(len(prog.contexts)):
            res = run_context(prog, s, ci)
            if type(res) is list:
                for o in res:
                    if o.state not in seen:
                        seen.add(o.state)
                        queue.append(o.state)
    return out


def _same_verdicts(path: str, cpus: int, fewer: bool = True) -> None:
    model, _, _ = lower_policy(path, cpus=cpus)
    plain = verify_explicit(model, cpus=cpus)
    reduced = verify_explicit(model, cpus=cpus, symmetry=True)
    assert not reduced.stats["symmetry"].startswith("not "), reduced.stats["symmetry"]
    # verdicts and shortest lengths are the reference semantics' (every schedule was
    # replayed on the interpreter by verify_explicit, and is one of its own)
    assert [(r.name, r.verdict, r.depth) for r in plain.results] == \
        [(r.name, r.verdict, r.depth) for r in reduced.results]
    if fewer:
        assert reduced.states < plain.states


def test_any_order_renaming_commutes_with_every_step():
    """The soundness condition: π(successors(s)) = successors(π(s)) for every
    renaming π, on reachable states of option 4 at N=4 in the any-order semantics."""
    model, _, _ = lower_policy("policies/option4.tdx", cpus=4)
    prog = Program(model, 4, any_order=True)
    sym = analyse(prog)
    assert isinstance(sym, Symmetry) and sym.order == 6
    canon = Canon(prog, sym)
    perms = [p for p in itertools.permutations(range(4)) if p[0] == 0 and p != (0, 1, 2, 3)]

    def succ(s: tuple) -> set[tuple]:
        out = set()
        for ci in range(len(prog.contexts)):
            res = run_context(prog, s, ci)
            if type(res) is list:
                out |= {o.state for o in res}
        return out

    states = _reachable(prog, 1500)
    for s in states[::5]:
        after = succ(s)
        for p in perms:
            assert succ(canon.permute(s, p)) == {canon.permute(t, p) for t in after}


def test_one_canonical_state_per_orbit():
    model, _, _ = lower_policy("policies/upstream-fixed.tdx", cpus=4)
    prog = Program(model, 4, any_order=True)
    canon = Canon(prog, analyse(prog))
    perms = [p for p in itertools.permutations(range(4)) if p[0] == 0]
    for s in _reachable(prog, 1200)[::4]:
        least = canon.least(s)
        assert all(canon.least(canon.permute(s, p)) == least for p in perms)
        assert least in {canon.permute(s, p) for p in perms}


def test_option4_at_three_cpus_same_verdicts_and_lengths():
    _same_verdicts("policies/option4.tdx", 3)


@pytest.mark.parametrize("path", sorted(glob.glob("benchmarks/models/*.tdx")))
def test_catalogue_models_at_four_cpus(path):
    # a lone walk over the CPUs: the passed sets cost more states than the orbits save
    _same_verdicts(path, 4, fewer=False)


@pytest.mark.skipif(not os.environ.get("SYMMETRY_ALL"), reason="long: SYMMETRY_ALL=1")
@pytest.mark.parametrize("path", sorted(glob.glob("policies/*.tdx")))
def test_every_policy_at_three_cpus(path):
    _same_verdicts(path, 3)


def test_a_policy_that_names_a_cpu_is_searched_without_symmetry_and_says_why():
    m = tdx(BASE + """
        cpus 3;
        var hit[cpu c]: bool = false;
        actor a { hit[1] = true; }
        invariant never: !hit[2];
    """)
    prog = Program(m, 3, any_order=True)
    why = analyse(prog)
    assert isinstance(why, NotSymmetric) and "non-boot CPU" not in why.reason
    run = verify_explicit(m, cpus=3, symmetry=True)
    assert run.stats["symmetry"].startswith("not symmetric")
    assert run.states == verify_explicit(m, cpus=3).states


def test_order_comparisons_outside_the_two_loop_shapes_break_symmetry():
    m = tdx(BASE + """
        cpus 3;
        var hit[cpu c]: bool = false;
        actor a { for cpu k where k < 2 { hit[k] = true; } }
    """)
    why = analyse(Program(m, 3, any_order=True))
    assert isinstance(why, NotSymmetric) and "order" in why.reason


def test_a_loop_whose_condition_changes_under_it_falls_back_to_the_plain_search():
    # a CPU's condition fails when the walk starts and holds later: the reference
    # semantics may still visit it, the any-order one has passed it for good
    m = tdx(BASE + """
        cpus 3;
        var want[cpu c]: bool = c == 0;
        var seen[cpu c]: bool = false;
        lock l: mutex;
        actor walk { for cpu k where want[k] { mutex_lock(l); seen[k] = true; mutex_unlock(l); } }
        actor flip { mutex_lock(l); pick cpu c where c != 0 { want[c] = true; } mutex_unlock(l); }
        invariant ok: !(exists cpu c: c != 0 && seen[c]);
    """)
    run = verify_explicit(m, cpus=3, symmetry=True)
    plain = verify_explicit(m, cpus=3)
    assert "not" in run.stats["symmetry"]
    assert [(r.name, r.verdict, r.depth) for r in run.results] == [(r.name, r.verdict, r.depth) for r in plain.results]


def test_verify_says_what_it_reduced_and_why_not():
    from click.testing import CliRunner

    from tdxproof.cli import cli

    on = CliRunner().invoke(cli, ["verify", "benchmarks/models/loop-locks.tdx", "--cpus", "4"])
    assert on.exit_code == 0 and "one per orbit under 6 renamings of CPUs 1, 2, 3" in on.output
    off = CliRunner().invoke(cli, ["verify", "benchmarks/models/loop-locks.tdx", "--cpus", "4", "--symmetry", "off"])
    assert off.exit_code == 0 and "orbit" not in off.output
    small = CliRunner().invoke(cli, ["verify", "benchmarks/models/loop-locks.tdx", "--cpus", "3"])
    assert "orbit" not in small.output     # auto: from 4 CPUs


@pytest.mark.parametrize("body, why", [
    ("actor a { let x: cpu = 1; mark[x] = true; }", "names CPU 1"),                         # an int literal as a CPU
    ("fn set(cpu c) { mark[c] = true; }\nactor a { set(1); }", "names CPU 1"),              # as an argument
    ("fn one() -> cpu { return 1; }\nactor a { let x = one(); mark[x] = true; }", "names CPU 1"),
    ("actor a { ipi 1 { mark[this_cpu] = true; } }", "names CPU 1"),
    ("actor a { let i: int = 1; let x: cpu = i; mark[x] = true; }", "makes a CPU number"),
    ("fn one() -> cpu { pick cpu z where z != 0 { return z; } return 0; }\nactor a { gi = one(); }",
     "stores a CPU number"),                                                              # a cpu result into an int
])
def test_every_way_a_number_becomes_a_cpu_or_back_breaks_symmetry(body, why):
    m = tdx(BASE + "cpus 3;\nvar mark[cpu c]: bool = false;\nvar gi: int = 0;\n" + body)
    got = analyse(Program(m, 3, any_order=True))
    assert isinstance(got, NotSymmetric) and why in got.reason, got


def test_what_the_plain_search_decides_for_the_reduced_one_keeps_the_other_verdicts():
    # the any-order walk may visit a non-boot CPU first, which the ascending one never
    # does: `p`'s witness has no reference schedule, the plain search decides it, and
    # stopping once it has must not make `q` unknown
    m = tdx(BASE + """
        cpus 3;
        var done[cpu c]: bool = false;
        actor walk { for cpu k { done[k] = true; } }
        actor b { done[0] = false; }
        invariant p: !(exists cpu c: c != 0 && done[c] && !done[0]);
        invariant q: !(done[0] && !done[0]);
    """)
    plain, reduced = verify_explicit(m, cpus=3), verify_explicit(m, cpus=3, symmetry=True)
    assert "searched without it: p" in reduced.stats["symmetry"]
    assert [(r.name, r.verdict, r.depth) for r in plain.results] == \
        [(r.name, r.verdict, r.depth) for r in reduced.results]
