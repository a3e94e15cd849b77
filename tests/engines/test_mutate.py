"""`tdxproof mutate`: every single mutant of the design, judged by the properties.
A dropped lock is killed by the invariant it protects (with its witness length),
a lost cover goal kills too, an equivalent mutant survives, a mutant the checker
refuses is reported as rejected, and the preludes are never mutated."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tdxproof.cli import cli
from tdxproof.engines.mutate import run_mutants
from tdxproof.model.load import load_policy
from tdxproof.model.mutants import mutants

POLICY = """\
import "locks.tdx";
cpus 2;
var x: int[0..3] = 0;
var y: int[0..3] = 0;
var done: bool = false;
ghost var calls: int[0..3] = 0;
lock m: mutex;
fn bump() {
    mutex_lock(m);
    let t = x;
    x = t + 1;
    mutex_unlock(m);
    ghost calls = calls + 1;
}
actor a[2] {
    bump();
    y = 1;
    done = true;
}
invariant no-lost-update: x >= calls;
cover both: x == 2;
"""


def _report(tmp_path, **kw):
    f = tmp_path / "p.tdx"
    f.write_text(POLICY)
    return f, run_mutants(str(f), cpus=2, **kw)


def test_the_operators_find_their_statements(tmp_path):
    f = tmp_path / "p.tdx"
    f.write_text(POLICY)
    got = {(m.operator, m.what) for m in mutants(load_policy(str(f)))}
    assert ("drop-lock", "drop `mutex_lock(m);`") in got
    assert ("drop-unlock", "drop `mutex_unlock(m);`") in got
    assert ("swap", "swap `y = 1;` and `done = true;`") in got
    # no mutant of the prelude (locks.tdx's own mutex_lock body), none of a `let`'s order
    assert all(m.path == str(f) for m in mutants(load_policy(str(f))))


def test_what_the_properties_say_of_each_mutant(tmp_path):
    _, rep = _report(tmp_path)
    by = {m.what: m for m in rep.mutants}
    # the unlock before the write: the other copy reads the old value, an update is lost
    early = by["swap `x = t + 1;` and `mutex_unlock(m);`"]
    assert early.outcome == "killed" and early.detail == "violated" and early.by == "no-lost-update"
    assert early.steps > 0
    # a copy that never unlocks: the other waits forever
    assert by["drop `mutex_unlock(m);`"].outcome == "killed"
    # without the lock, the unlock is unbalanced: the checker refuses the mutant
    lost = by["drop `mutex_lock(m);`"]
    assert lost.outcome == "rejected" and "E403" in lost.by
    # y is read by nothing: equivalent mutants survive, and are listed
    assert by["swap `y = 1;` and `done = true;`"].outcome == "survived"
    assert rep.kill_rate == (rep.count("killed") + rep.count("error"), len(rep.mutants) - rep.count("rejected"))


def test_the_cli_reports_the_kill_rate(tmp_path):
    f = tmp_path / "p.tdx"
    f.write_text(POLICY)
    res = CliRunner().invoke(cli, ["mutate", str(f), "-j", "1", "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["kill_rate"]["ran"] == len([m for m in doc["mutants"] if m["outcome"] != "rejected"])
    text = CliRunner().invoke(cli, ["mutate", str(f), "-j", "2"]).output
    assert "killed 2 of the 4 that ran (50%)" in text and "survivors:" in text


def test_a_design_that_already_deadlocks_notices_a_quicker_deadlock(tmp_path):
    f = tmp_path / "d.tdx"
    f.write_text("""\
import "locks.tdx";
cpus 2;
var n: int[0..3] = 0;
lock m: mutex;
actor a repeat {
    atomic "test: a counter" { if n < 3 { n++; } }
}
actor b {
    if n < 3 {
        atomic "test: wait for the counter" { await n == 3; }
    }
    mutex_lock(m);
    mutex_lock(m);
}
""")
    rep = run_mutants(str(f), cpus=2, operators={"flip-condition"})
    flip = next(m for m in rep.mutants if m.where.line == 9)
    assert flip.outcome == "killed" and flip.by == "no-deadlock" and flip.detail.startswith("violated sooner")
