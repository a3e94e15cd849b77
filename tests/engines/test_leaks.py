"""`no-lock-at-exit` (locks.tdx): every engine fires it where a task's body ends,
or a kthread's work returns, with a lock still held, and the witness ends in
lockdep's report (a task) or the workqueue's (kthread work)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tdxproof.cli import cli

TASK = """\
import "locks.tdx";
cpus 2;
lock s: mutex;
actor a repeat 2 {
    mutex_lock(s);
    if may fail "an error path" { return; }
    mutex_unlock(s);
}
"""
WORK = """\
import "x86.tdx";
cpus 2;
lock s: mutex;
fn work() -> int {
    mutex_lock(s);
    return 0;
}
actor a { let r = work() in kworker[1]; }
"""


@pytest.mark.parametrize("engine", ["explicit", "bmc", "kind"])
def test_a_task_that_returns_holding_a_lock(tmp_path, engine):
    f = tmp_path / "task.tdx"
    f.write_text(TASK)
    res = CliRunner().invoke(cli, ["verify", str(f), "--engine", engine, "--property", "no-lock-at-exit"])
    assert res.exit_code == 1, res.output
    assert "no-lock-at-exit  violated (1 steps)" in res.output
    assert "WARNING: lock held when returning to user space!" in res.output
    assert "a (CPU0) is leaving the kernel with locks still held!" in res.output
    assert "!! ends holding s" in res.output


def test_kthread_work_that_returns_holding_a_lock(tmp_path):
    f = tmp_path / "work.tdx"
    f.write_text(WORK)
    res = CliRunner().invoke(cli, ["verify", str(f), "--property", "no-lock-at-exit"])
    assert res.exit_code == 1, res.output
    assert "BUG: workqueue leaked lock or atomic: kworker/1" in res.output
    assert "last function: work()" in res.output


def test_balanced_locking_holds(tmp_path):
    f = tmp_path / "fine.tdx"
    f.write_text(TASK.replace('if may fail "an error path" { return; }', ""))
    res = CliRunner().invoke(cli, ["verify", str(f), "--engine", "kind", "--property", "no-lock-at-exit"])
    assert res.exit_code == 0 and "no-lock-at-exit  proved (N=2" in res.output, res.output
