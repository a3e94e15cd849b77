"""The symbolic-N route of `--cpus any` (encode/param.py, engines/param.py): one
encoding for N = 2..127, the lifted templates checked on it once, the cutoff
carrying the result to every N; never "proved" for what fails at some N."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import z3
from click.testing import CliRunner

from tdxproof.cli import cli
from tdxproof.encode.param import MAX_N, encode_param
from tdxproof.engines.every_n import verify_every_n
from tdxproof.model.lower import lower_policy
from tdxproof.results import Verdict

ROOT = Path(__file__).resolve().parents[2]
LOOP = ROOT / "benchmarks" / "models" / "loop-locks.tdx"
# no-deadlock is outside what the symbolic encoding states (no deadlock condition)
SAFETY = ["every-cpu-done", "no-lock-at-exit", "no-recursive-read"]

# true while at most two non-boot CPUs exist (N <= 3), false from N = 4
THREE = 'import "locks.tdx";\ncpus 3;\n' + """
    var x[cpu c]: bool = false;
    actor a repeat { pick cpu c where c != 0 && !x[c] { x[c] = true; } }
    invariant not-three: forall cpu c: forall cpu d: forall cpu e:
        (c != 0 && d != 0 && e != 0 && c != d && d != e && c != e) -> !(x[c] && x[d] && x[e]);
"""


def _verify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tdxproof", "verify", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONHASHSEED="0"))


def test_the_loop_is_proved_on_one_symbolic_encoding_and_its_certificate_rechecks(tmp_path):
    cert = tmp_path / "loop.every-n"
    props = [x for p in SAFETY for x in ("--property", p)]
    out = _verify(str(LOOP), "--cpus", "any", "--engine", "cutoff", "--certificate", str(cert), *props)
    assert out.returncode == 0, out.stdout + out.stderr
    for p in SAFETY:
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith(f"  {p} "))
        if p == "every-cpu-done":
            assert f"proved (every N >= 2: symbolic N=2..{MAX_N}, cutoff N=" in line, line
        else:       # a task's own lock rules: from every code path, before any route (test_static_every_n.py)
            assert "holds (static, every N: " in line, line
    assert "one encoding for N=2..127 (N symbolic" in out.stdout
    d = json.loads(cert.read_text())
    assert d["method"] == "symbolic" and set(d["proves"]) == set(SAFETY)   # the lock rules too, re-checked
    r = CliRunner().invoke(cli, ["recheck", str(LOOP), str(cert)])
    assert r.exit_code == 0 and "re-checks on one encoding for N=2..127 (N symbolic)" in r.output, r.output

    def variant(name: str, **change) -> Path:
        bad = tmp_path / name
        bad.write_text(json.dumps(dict(d, **change)))
        return bad

    # without the lemmas about `done` below the walk's cursor it is not inductive
    cut = [t for t in d["templates"] if not any(v.startswith("done[") for v, *_ in t["lits"]) or
           not any(v.startswith("local") for v, *_ in t["lits"])]
    assert len(cut) < len(d["templates"])
    r = CliRunner().invoke(cli, ["recheck", str(LOOP), str(variant("cut.json", templates=cut))])
    assert r.exit_code == 1 and "does NOT re-check" in r.output and "every-cpu-done" in r.output, r.output
    # a lemma that is false (`done[c]` is never true) fails initiation or consecution
    false = [{"kind": "in", "letters": 1, "lits": [["done[{}]", 0, [0], [], False]]}]
    r = CliRunner().invoke(cli, ["recheck", str(LOOP), str(variant("false.json", templates=d["templates"] + false))])
    assert r.exit_code == 1 and "is not initial and inductive" in r.output, r.output
    # the cutoff still comes from the policy, never from the file
    r = CliRunner().invoke(cli, ["recheck", str(LOOP), str(variant("small.json", cutoff=2))])
    assert r.exit_code == 1 and "the policy needs N=" in r.output, r.output


def test_never_proved_for_what_fails_from_four_cpus(tmp_path):
    policy = tmp_path / "three.tdx"
    policy.write_text(THREE)
    run = verify_every_n(str(policy), 3, properties={"not-three"})
    (res,) = run.results
    assert res.verdict is Verdict.UNKNOWN and "holds (exhaustive) for N=2..3" in res.reason, res
    r = CliRunner().invoke(cli, ["verify", str(policy), "--cpus", "4", "--property", "not-three"])
    assert r.exit_code == 1 and "violated" in r.output, r.output


def test_the_symbolic_encoding_means_what_the_per_n_one_does_at_each_n():
    # the loop model's invariant with the loop's own lemmas stated by hand: at
    # N=4 the symbolic encoding's initial state gives `done` false everywhere and
    # its `setup` body walks the CPUs in ascending order, like the interpreter
    model = lower_policy(str(LOOP), cpus=3)[0]
    penc = encode_param(model)
    s = penc.state(0)
    solver = z3.Solver()
    solver.add(penc.domain(), penc.N == 4, penc.init(s))
    c = z3.BitVec("c", 8)
    solver.add(z3.And(c >= 0, c < 4, z3.Select(s["done[*]"], c) != 0))
    assert solver.check() == z3.unsat
    # every block of every context is there once, for every N: no copy per CPU
    per3 = lower_policy(str(ROOT / "policies" / "upstream-fixed.tdx"), cpus=3)[0]
    big = encode_param(per3)
    assert len(big.paths) > 100
    assert not any("[cpuhp/1" in n or "[cpuhp/2" in n for n in big.vocab.names)
    assert "pc[cpuhp/*]" in big.vocab.names and "online[*]" in big.vocab.names


def test_lift_at_16_builds_neither_the_states_nor_the_encoding_of_16(monkeypatch):
    # the cpuhp loop model at N=16: learned at N=3, proved on the symbolic
    # encoding; the only states enumerated are N0's, and N=16 is never encoded
    from tdxproof.engines import lift

    built: list[int] = []
    real = lift.encode
    monkeypatch.setattr(lift, "encode", lambda model, n=None: built.append(n) or real(model, n))
    path = str(ROOT / "benchmarks" / "models" / "loop.tdx")
    model, small = lower_policy(path, cpus=16)[0], lower_policy(path, cpus=3)[0]
    run = lift.verify_lift(model, small, properties={"every-cpu-done", "no-lock-at-exit"})
    assert {r.name: r.verdict for r in run.results} == {"every-cpu-done": Verdict.PROVED,
                                                       "no-lock-at-exit": Verdict.PROVED}
    assert all("one encoding for N=2..127" in r.reason for r in run.results)
    assert run.states == 0 and run.stats["states_at_base"] < 1000 and 16 not in built, (run.stats, built)


def test_past_its_time_budget_the_symbolic_route_gives_up_instead_of_running_on():
    import pytest

    from tdxproof.encode.system import encode
    from tdxproof.engines.param import Undecided, prove_symbolic

    model = lower_policy(str(LOOP), cpus=3)[0]
    props = [p for p in model.properties if p.name == "every-cpu-done"]
    with pytest.raises(Undecided, match="time budget of 0 s"):
        prove_symbolic(encode_param(model), encode(model, 3), [], props, None, budget_s=0.0)


def test_property_directed_proves_what_houdini_proves_from_fewer_lemmas():
    # the pool's templates join only when a counterexample needs them excluded:
    # the same properties are proved, by a smaller set that is inductive on its own
    from tdxproof.encode.system import encode
    from tdxproof.engines.cutoff import candidates
    from tdxproof.engines.induction import learn
    from tdxproof.engines.param import prove_symbolic

    model = lower_policy(str(ROOT / "benchmarks" / "models" / "loop.tdx"), cpus=3)[0]
    props = [p for p in model.properties if p.name in
             ("every-cpu-done", "no-recursive-read", "vmxon-not-twice", "seamcall-in-vmx")]
    small = learn(model, 3, {p.name for p in props}, 100_000, None, lambda m: None)
    _, cands, closure, live, _ = candidates(small)
    penc = encode_param(model)
    enc0 = encode(model, 3)
    every = prove_symbolic(penc, enc0, cands, props, None)
    seed = set(closure) | set(live)
    directed = prove_symbolic(penc, enc0, cands, props, None, seed=seed.__contains__)
    assert sorted(directed.proved) == sorted(every.proved) == sorted(p.name for p in props)
    kept = [t for t, ok in zip(directed.templates, directed.alive) if ok]
    assert seed <= set(kept) and len(kept) < sum(every.alive)
    again = prove_symbolic(penc, enc0, kept, props, None, drop=False)
    assert all(again.alive) and not again.unknown and sorted(again.proved) == sorted(directed.proved)
