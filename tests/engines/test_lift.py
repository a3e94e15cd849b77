"""The `lift` engine: lemmas learned at a small N, lifted to templates over CPUs,
proved inductive at a larger N with Z3 and re-checked there, without
enumerating that N's states. Compared with the explicit engine where both
answer; never "proved" for what fails at the small N."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from helpers import tdx, verdicts

from tdxproof.cli import cli
from tdxproof.engines.induction import Lemma, cpu_slots
from tdxproof.engines.lift import Lifter, Values, verify_lift
from tdxproof.encode.system import encode
from tdxproof.results import Verdict

# a loop over every CPU under a mutex, and a task undoing one CPU's work until
# the loop is done: "done everywhere" needs a lemma about the loop's cursor
# ("every CPU below it is done"), which only an order-keeping lift carries over
LOOP = 'import "kernel-6.16.tdx";\ncpus 3;\n' + """
    var done[cpu c]: bool = false;
    var all_done: bool = false;
    lock m: mutex;
    actor setup {
        mutex_lock(m);
        for cpu k { done[k] = true; }
        all_done = true;
        mutex_unlock(m);
    }
    actor undo repeat {
        mutex_lock(m);
        pick cpu c where c != 0 { if !all_done { done[c] = false; } }
        mutex_unlock(m);
    }
    invariant every-cpu-done: all_done -> forall cpu c: done[c];
"""
# the same without the mutex in `undo`: it may undo a CPU after the loop
RACY = LOOP.replace("""        mutex_lock(m);
        pick cpu c where c != 0 { if !all_done { done[c] = false; } }
        mutex_unlock(m);""", "        pick cpu c where c != 0 { if !all_done { done[c] = false; } }")

PROPS = {"every-cpu-done", "no-deadlock", "locks-asserted"}


def test_lift_proves_at_a_larger_n_and_agrees_with_the_explicit_engine():
    run = verify_lift(tdx(LOOP, cpus=5), tdx(LOOP, cpus=3), properties=PROPS)
    explicit = verdicts(tdx(LOOP, cpus=5))
    for r in run.results:
        assert explicit[r.name].verdict is Verdict.HOLDS_EXHAUSTIVE, r.name
        assert r.verdict is Verdict.PROVED, (r.name, r.reason)
        assert r.cpus == 5 and r.proof is not None and r.proof.lemmas > 0
    assert run.states == 0                   # no state of N = 5 was enumerated
    assert run.stats["learned_at"] == 3 and run.stats["templates"] > 0


def test_lift_never_proves_what_fails_at_the_small_n():
    run = verify_lift(tdx(RACY, cpus=6), tdx(RACY, cpus=3), properties={"every-cpu-done"})
    (r,) = run.results
    assert r.verdict in (Verdict.VIOLATED, Verdict.UNKNOWN)
    if r.verdict is Verdict.VIOLATED:
        assert r.schedule is not None and r.cpus == 6   # replayed at N = 6 before it is shown


def test_a_lemma_about_a_loop_cursor_keeps_the_cpus_order():
    model = tdx(LOOP, cpus=3)
    enc0 = encode(model, 3)
    setup = next(c for c in enc0.vocab.contexts if c.name == "setup")
    cursor = next(enc0.vocab.local(setup, k) for k, name in setup.auto.local_names.items() if name == "k")
    # at N = 3: "CPU 1 not done while the cursor is at CPU 2" is excluded; CPU 2
    # is both "the other CPU" and "a CPU above CPU 1"; only the latter is right
    lm = Lemma(never=(("done[1]", (0,)), (cursor, (2,))))
    t = Lifter(enc0).template(lm)
    assert t is not None and t.letters == 2
    assert dict((v, vals) for v, _, vals in t.lits)[cursor] == Values((), (1,), False)
    names5 = {(tmpl, cpu): name for name, (tmpl, cpu) in cpu_slots(encode(tdx(LOOP, cpus=5), 5)).items()}
    at5 = Lifter(enc0).at(t, 5, names5)
    pairs = {(dict(i.never)["done[1]"] if "done[1]" in dict(i.never) else None, dict(i.never)[cursor]) for i in at5}
    assert ((0,), (2,)) in pairs and ((0,), (1,)) not in pairs     # the cursor is above the CPU, never at or below
    assert len(at5) == 6                                             # choices of 2 CPUs out of 1..4, in order


def test_cli_lift(tmp_path):
    p = tmp_path / "loop.tdx"
    p.write_text(LOOP)
    r = CliRunner().invoke(cli, ["verify", str(p), "--engine", "lift", "--cpus", "6", "--property", "every-cpu-done"])
    assert r.exit_code == 0, r.output
    assert "lemmas learned at N=3" in r.output and "proved (N=6" in r.output
    assert "no state of N=6 enumerated" in r.output, r.output
    r = CliRunner().invoke(cli, ["verify", str(p), "--engine", "lift", "--cpus", "2", "--learn-at", "3"])
    assert r.exit_code == 2 and "more CPUs than --cpus" in r.output


def test_cpus_16_on_upstream_searches_no_state_of_16(tmp_path, monkeypatch):
    # issue 9: past N=5 the default engine lists no state of N. upstream's
    # violations are found at N0 and their schedules replayed at 16 (the extra
    # CPUs offline from the start); the only search is N0's
    import json

    from tdxproof.engines import explicit

    searched: list = []
    real = explicit.verify_explicit
    monkeypatch.setattr(explicit, "verify_explicit",
                        lambda model, **kw: searched.append(kw.get("cpus")) or real(model, **kw))
    policy = str(Path(__file__).resolve().parents[2] / "policies" / "upstream.tdx")
    r = CliRunner().invoke(cli, ["verify", policy, "--cpus", "16", "--learn-at", "2", "--format", "json",
                                 "--property", "all-online-capable", "--property", "mce-page-lookup",
                                 "--property", "lock-graph"])
    assert r.exit_code == 1, r.output
    run = json.loads(r.stdout)
    assert searched == [2] and run["cpus"] == 16 and run["states"] == 0, (searched, run["stats"])
    assert run["stats"]["states_at_base"] < 100_000
    got = {x["name"]: x for x in run["results"]}
    assert got["lock-graph"]["verdict"] == "static"
    for name in ("all-online-capable", "mce-page-lookup"):
        assert got[name]["verdict"] == "violated" and got[name]["cpus"] == 16
        assert "schedule found at N=2; a shorter one at N=16 is not excluded" in got[name]["reason"]
    # the text names the route, and the witness starts from a state of 16 CPUs
    r = CliRunner().invoke(cli, ["verify", policy, "--cpus", "16", "--learn-at", "2", "--property", "mce-page-lookup"])
    assert "N=16 is past what is searched exhaustively" in r.output
    assert "initially: online = [true" + ", false" * 15 + "]" in r.output, r.output


def test_past_five_cpus_what_holds_at_n0_is_proved_by_lift(tmp_path):
    p = tmp_path / "loop.tdx"
    p.write_text(LOOP)
    r = CliRunner().invoke(cli, ["verify", str(p), "--cpus", "6", "--property", "every-cpu-done"])
    assert r.exit_code == 0, r.output
    assert "N=6 is past what is searched exhaustively" in r.output
    assert "every-cpu-done  proved (N=6" in r.output, r.output


# ---------------------------------------------------------------- --cpus any

def test_cpus_any_reports_the_smallest_n_and_never_proves(tmp_path):
    racy = tmp_path / "racy.tdx"
    racy.write_text(RACY)
    r = CliRunner().invoke(cli, ["verify", str(racy), "--cpus", "any", "--property", "every-cpu-done"])
    assert r.exit_code == 1, r.output
    assert "every-cpu-done  violated (7 steps; smallest N=2)" in r.output
    assert "proved" not in r.output
    good = tmp_path / "loop.tdx"
    good.write_text(LOOP)
    r = CliRunner().invoke(cli, ["verify", str(good), "--cpus", "any", "--engine", "kind"])
    assert r.exit_code == 2 and "--cpus any runs the explicit engine" in r.output
    r = CliRunner().invoke(cli, ["verify", str(good), "--cpus", "many"])
    assert r.exit_code == 2 and "neither a number of CPUs nor `any`" in r.output


def test_cpus_any_on_a_thread_policy_violated_at_three():
    # option 4's violations (proofs/option4.md) already happen with one non-boot CPU
    violated = ["no-deadlock", "no-recursive-read", "irqs-off-asserted", "hotplug-available", "seamcall-in-vmx",
                "mce-page-lookup"]
    policy = str(Path(__file__).resolve().parents[2] / "policies" / "option4.tdx")
    args = ["verify", policy, "--cpus", "any"] + [x for p in violated for x in ("--property", p)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1, r.output
    for p in violated:
        line = next(ln for ln in r.output.splitlines() if ln.startswith(f"  {p} "))
        assert "violated (" in line and "smallest N=2" in line, line
    assert "proved" not in r.output


def test_a_slot_shared_by_inlined_functions_gets_its_kind_from_the_program_counter():
    # `mark(cpu k)` and `take(lock)` are inlined at the same frame: one slot holds
    # a CPU in the first and a lock in the second
    model = tdx('import "kernel-6.16.tdx";\ncpus 3;\n' + """
        var marked[cpu c]: bool = false;
        lock m: mutex;
        fn mark(cpu k) { marked[k] = true; }
        actor a { mark(1); mutex_lock(m); mutex_unlock(m); mark(2); }
    """, cpus=3)
    from tdxproof.engines.lift import CPU, MIXED, OTHER, Kinds
    enc = encode(model, 3)
    kinds = Kinds(enc)
    a = next(c for c in enc.vocab.contexts if c.name == "a")
    pcvar = enc.vocab.pc(a)
    shared = [name for name, (pv, _) in kinds.local.items() if pv == pcvar and kinds.of[name] == MIXED]
    assert shared, "expected a slot that holds a CPU at some points and a lock at others"
    slot = kinds.local[shared[0]][1]
    at = kinds.by_pc[pcvar]
    cpu_pcs = [pc for pc, node in enumerate(a.auto.nodes) if node.owner == "mark" and at[pc].get(slot) == CPU]
    lock_pcs = [pc for pc, node in enumerate(a.auto.nodes) if node.owner.startswith("mutex_") and
                at[pc].get(slot) == OTHER]
    assert cpu_pcs and lock_pcs
    assert kinds.at(shared[0], cpu_pcs) == CPU and kinds.at(shared[0], lock_pcs) == OTHER
    assert kinds.at(shared[0], cpu_pcs + lock_pcs) == MIXED


def test_a_lifted_certificate_rechecks_at_its_n_and_a_mutated_one_fails(tmp_path):
    p = tmp_path / "loop.tdx"
    p.write_text(LOOP)
    cert = tmp_path / "loop6.cert"
    r = CliRunner().invoke(cli, ["verify", str(p), "--engine", "lift", "--cpus", "6", "--property", "every-cpu-done",
                                 "--certificate", str(cert)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["recheck", str(p), str(cert)])
    assert r.exit_code == 0, r.output
    data = cert.read_text().splitlines()
    # drop every lemma about the loop's cursor and `done`: the rest is not inductive
    cut = [ln for ln in data if not ('"done[' in ln and '"local' in ln)]
    assert len(cut) < len(data)
    cut[-2] = cut[-2].rstrip(",")
    bad = tmp_path / "cut.cert"
    bad.write_text("\n".join(cut) + "\n")
    r = CliRunner().invoke(cli, ["recheck", str(p), str(bad)])
    assert r.exit_code == 1 and "the lemmas are inductive: fails" in r.output, r.output


def test_houdini_at_n_gives_up_past_its_time_budget():
    # the per-N route is bounded like the symbolic one: unknown, never hours
    import pytest
    import z3

    from tdxproof.engines.lift import AtN, _Undecided

    enc = encode(tdx(LOOP), 3)
    with pytest.raises(_Undecided, match="time budget of 0 s"):
        AtN(enc, None, budget_s=0.0).bad_state(z3.BoolVal(True))
