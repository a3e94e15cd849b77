"""`--cpus any` proofs for every N (engines/cutoff.py, docs/every-n.md): the
cutoff theorem's fragment checked on the policy, the lifted templates checked at
every N up to the cutoff, the certificate re-checked from the policy alone; never
"proved" for what fails at some N."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tdxproof.cli import cli
from tdxproof.engines.cutoff import FIRST, MAX_CUTOFF, fragment
from tdxproof.engines.every_n import verify_every_n
from tdxproof.model.lower import lower_policy
from tdxproof.results import Verdict

ROOT = Path(__file__).resolve().parents[2]

# a walk over every CPU under a mutex, and a task undoing one CPU's work until
# the walk is done (tests/engines/test_lift.py's model, with the lock prelude only)
LOOP = (ROOT / "benchmarks" / "models" / "loop-locks.tdx").read_text()
# holds with one and two non-boot CPUs, fails with three: a counter of CPUs
COUNT = 'import "locks.tdx";\ncpus 3;\n' + """
    var seen: int[0..3] = 0;
    actor walk { for cpu k where k != 0 { seen = seen + 1; } }
    invariant few: seen <= 2;
"""


def _write(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_the_loop_is_proved_for_every_n_and_its_certificate_rechecks(tmp_path):
    policy = _write(tmp_path, "loop.tdx", LOOP)
    cert = tmp_path / "loop.every-n"
    # in a process of its own, as a user runs it: which lemmas the learning finds
    # depends on the models Z3 returns, and so on what the process did before
    # (docs/every-n.md); a proof may then come out unknown, never wrong
    out = subprocess.run([sys.executable, "-m", "tdxproof", "verify", policy, "--cpus", "any", "--engine", "cutoff",
                          "--certificate", str(cert)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONHASHSEED="0"))
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("  every-cpu-done "))
    assert "proved (every N >= 2: checked at N=2.." in line and "the cutoff" in line, line
    assert "the cutoff N=" in out.stdout and "docs/every-n.md" in out.stdout
    d = json.loads(cert.read_text())
    assert d["format"] == "tdxproof-every-n/1" and "every-cpu-done" in d["proves"]
    assert 2 < d["cutoff"] <= MAX_CUTOFF
    # program points are named by statement, never by node number
    pcs = [x for t in d["templates"] for var, _, vals, _, _ in t["lits"] if var.startswith("pc[") for x in vals]
    assert pcs and all(isinstance(x, str) for x in pcs), pcs
    assert any("for_next" in x for x in pcs)
    r = CliRunner().invoke(cli, ["recheck", policy, str(cert), "--show"])
    assert r.exit_code == 0 and f"re-checks at N=2..{d['cutoff']} (the cutoff)" in r.output, r.output
    assert "for every CPU c:" in r.output or "for all CPUs c < d:" in r.output

    def variant(name: str, templates: list) -> Path:
        bad = tmp_path / name
        bad.write_text(json.dumps(dict(d, templates=templates)))
        return bad

    # without the lemmas about `done` below the walk's cursor it is not inductive
    cut = [t for t in d["templates"] if not any(v.startswith("done[") for v, *_ in t["lits"]) or
           not any(v.startswith("local") for v, *_ in t["lits"])]
    assert len(cut) < len(d["templates"])
    r = CliRunner().invoke(cli, ["recheck", policy, str(variant("cut.every-n", cut))])
    assert r.exit_code == 1 and "does NOT re-check" in r.output, r.output
    # the cutoff is derived from the policy: a smaller number in the file is refused
    small = tmp_path / "small.every-n"
    small.write_text(json.dumps(dict(d, cutoff=2)))
    r = CliRunner().invoke(cli, ["recheck", policy, str(small)])
    assert r.exit_code == 1 and f"the policy needs N={d['cutoff']}" in r.output, r.output
    # a program point that is not in the policy any more: the certificate is stale
    stale = json.loads(json.dumps(d["templates"]))
    for t in stale:
        for lit in t["lits"]:
            lit[2] = [x.replace("actor setup/2", "actor setup/9") if isinstance(x, str) else x for x in lit[2]]
    r = CliRunner().invoke(cli, ["recheck", policy, str(variant("stale.every-n", stale))])
    assert r.exit_code == 2 and "no longer exists" in r.output, r.output


def test_on_a_terminal_the_search_and_the_proof_each_say_how_far_they_are(tmp_path):
    # the CLI gives the searches a (states, depth, ...) callback and the proof a
    # message one; mixing them up was an internal error on every terminal
    policy = _write(tmp_path, "count.tdx", COUNT)
    lines: list[str] = []
    run = verify_every_n(policy, 3, properties={"few"}, progress=lambda states, depth, *rest: None,
                         say=lines.append)
    assert run.results[0].verdict is Verdict.UNKNOWN
    assert lines and all(isinstance(x, str) for x in lines) and any(x.startswith("every N") for x in lines)


def test_never_proved_for_what_fails_at_a_larger_n(tmp_path):
    policy = _write(tmp_path, "count.tdx", COUNT)
    run = verify_every_n(policy, 3, properties={"few"})
    (few,) = run.results
    assert few.verdict is Verdict.UNKNOWN and "holds (exhaustive) for N=2..3" in few.reason, few
    # it does fail at N=4
    r = CliRunner().invoke(cli, ["verify", policy, "--cpus", "4", "--property", "few"])
    assert r.exit_code == 1 and "violated" in r.output, r.output


def test_constructs_outside_the_fragment_are_named_with_their_position(tmp_path):
    cases = {
        "arith.tdx": ("var last: int = 0;\nactor a { pick cpu c where c != 0 { last = c + 1; } }\n",
                      "arithmetic on a CPU"),
        "literal.tdx": ("var on2: bool = false;\nactor a { pick cpu c where c == 2 { on2 = true; } }\n",
                        "a CPU compared with a number other than 0"),
        "nested.tdx": ("var x[cpu c]: bool = false;\nvar y: bool = false;\n"
                       "actor a { if forall cpu c: exists cpu d: x[d] && d != c { y = true; } }\n",
                       "∀∃"),
        "nr.tdx": ("var n: int[0..64] = 0;\nactor a { n = nr_cpus; }\n", "`nr_cpus` names the number of CPUs"),
    }
    for name, (body, why) in cases.items():
        path = _write(tmp_path, name, 'import "locks.tdx";\ncpus 3;\n' + body + "invariant t: true;\n")
        frag = fragment(lower_policy(path, cpus=3)[0], lower_policy(path, cpus=2)[0])
        assert frag.problems, name
        span, said = frag.problems[0]
        assert why in said, (name, said)
        # at the construct, on the actor's line
        line = next(i for i, ln in enumerate(Path(path).read_text().splitlines(), 1) if "actor a" in ln)
        assert span is not None and span.line == line and span.col > 10, (name, span)
        r = CliRunner().invoke(cli, ["verify", path, "--cpus", "any", "--property", "t"])
        assert r.exit_code == 3 and "proved" not in r.output.split("\n\n")[-1], r.output
        assert why in r.output, r.output


def test_a_model_error_under_cpus_any_is_bad_input(tmp_path):
    path = _write(tmp_path, "oops.tdx", 'import "locks.tdx";\ncpus 3;\nvar last: cpu = 0;\n'
                  "actor a { pick cpu c where c != 0 { last = c + 1; } }\ninvariant t: true;\n")
    r = CliRunner().invoke(cli, ["verify", path, "--cpus", "any"])
    assert r.exit_code == 2 and "E420" in r.output and "with 2 CPUs" in r.output, r.output


def test_the_first_online_cpu_of_a_package_has_one_witness_for_all_cpus():
    # tdx-host.tdx's config_global_keyid() loop: `exists cpu j: j < k && online[j]`
    # under the loop's `forall` of skipped CPUs; one package: the least online CPU
    # serves every k. The thread's policies are in the fragment but for
    # no-deadlock (a per-CPU task waits for a lock holder: ∀∃).
    path = str(ROOT / "policies" / "upstream-fixed.tdx")
    frag = fragment(lower_policy(path, cpus=3)[0], lower_policy(path, cpus=FIRST)[0])
    assert not frag.problems, frag.problems
    assert frag.deadlock is None and frag.per_cpu_tasks


def test_committed_every_n_certificates_recheck():
    # proofs/every-n/: the certificate of every model that has one, re-checked from
    # the policy (regenerate: the command in proofs/README.md)
    certs = sorted((ROOT / "proofs" / "every-n").glob("*.json"))
    assert certs
    for cert in certs:
        policy = json.loads(cert.read_text())["policy"]
        r = CliRunner().invoke(cli, ["recheck", str(ROOT / policy), str(cert)])
        assert r.exit_code == 0, (cert, r.output)
        assert ("re-checks on one encoding for N=2..127" if json.loads(cert.read_text()).get("method") == "symbolic"
                else "re-checks at N=2..") in r.output, (cert, r.output)


THREAD = sorted((ROOT / "policies").glob("*.tdx"))


@pytest.mark.parametrize("policy", THREAD, ids=lambda p: p.stem)
def test_cpus_any_reports_each_violation_of_a_thread_policy_at_its_smallest_n(policy):
    # issue 9: what a thread policy violates at N=3 is never "proved" for every N;
    # the search stops at the smallest N where each selected property fails
    model = lower_policy(str(policy))[0]
    violated = {e.prop for e in model.expects if e.verdict == "violated"
                and next(p for p in model.properties if p.name == e.prop).kind.value not in ("static", "lockdep")}
    if not violated:
        pytest.skip("violates nothing")
    run = verify_every_n(str(policy), 3, properties=violated)
    for r in run.results:
        assert r.verdict is Verdict.VIOLATED and r.reason in ("smallest N=2", "smallest N=3"), (r.name, r.reason)
        assert r.schedule
