"""The command line through click's runner: exit codes and output shape."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tdxproof.cli import cli

HOLDS = """
import "kernel-6.16.tdx";
cpus 2;
var x: int[0..3] = 0;
actor a { x = 1; }
invariant small: x < 2;
"""
VIOLATED = HOLDS.replace("x < 2", "x < 1")


def run(tmp_path, text, *args):
    f = tmp_path / "p.tdx"
    f.write_text(text)
    r = CliRunner().invoke(cli, ["verify", str(f), *args], catch_exceptions=False)
    return r


def test_exit_0_when_every_property_holds(tmp_path):
    r = run(tmp_path, HOLDS)
    assert r.exit_code == 0, r.output
    assert "holds (exhaustive, N=2)" in r.stdout


def test_exit_1_when_a_property_is_violated_and_the_witness_is_printed(tmp_path):
    r = run(tmp_path, VIOLATED)
    assert r.exit_code == 1
    assert "small" in r.stdout and "violated (1 steps)" in r.stdout
    assert "x = 1" in r.stdout


def test_exit_2_on_bad_input_and_on_bad_usage(tmp_path):
    assert run(tmp_path, "var x: bool = 1;").exit_code == 2
    assert run(tmp_path, HOLDS, "--cpus", "0").exit_code == 2
    assert run(tmp_path, HOLDS, "--property", "smal").exit_code == 2


def test_exit_3_when_the_state_limit_stops_the_search(tmp_path):
    r = run(tmp_path, HOLDS, "--max-states", "1")
    assert r.exit_code == 3
    assert "unknown (state limit" in r.stdout


def test_exit_4_on_an_internal_error(tmp_path, monkeypatch):
    import tdxproof.engines.explicit as explicit

    def boom(*a, **k):
        raise RuntimeError("simulated bug")
    monkeypatch.setattr(explicit, "verify_explicit", boom)
    r = run(tmp_path, HOLDS)
    assert r.exit_code == 4 and "internal error" in r.stderr and "Traceback" not in r.stderr


def test_exit_130_when_interrupted(tmp_path, monkeypatch):
    import tdxproof.engines.explicit as explicit

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(explicit, "verify_explicit", interrupted)
    assert run(tmp_path, HOLDS).exit_code == 130


def test_cli_overrides_the_number_of_cpus(tmp_path):
    r = run(tmp_path, HOLDS, "--cpus", "3")
    assert "3 CPUs" in r.stdout and "N=3" in r.stdout


def test_json_output_is_versioned_and_carries_the_witness(tmp_path):
    r = run(tmp_path, VIOLATED, "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["schema"] == "tdxproof.verify/1"
    small = next(x for x in doc["results"] if x["name"] == "small")
    assert small["verdict"] == "violated"
    assert small["witness"]["steps"] == [{"context": "a", "choice": None}]
    assert small["witness"]["rows"][0]["changes"] == ["x = 1", "finishes"]


def test_output_is_deterministic(tmp_path):
    a = run(tmp_path, VIOLATED).stdout
    b = run(tmp_path, VIOLATED).stdout
    assert a == b


def test_show_prints_the_model_summary(tmp_path):
    f = tmp_path / "p.tdx"
    f.write_text(HOLDS)
    r = CliRunner().invoke(cli, ["show", str(f)], catch_exceptions=False)
    assert r.exit_code == 0
    for needle in ("online[cpu]: bool", "percpu_rw_semaphore", "cpuhp states (in order)", "kthread cpuhp/c",
                   "small (invariant, at every step)", "no-deadlock (deadlock, in every state",
                   "atomic_xchg(&sem->block, 1)"):
        assert needle in r.stdout, needle


@pytest.mark.parametrize("args", [["--help"], ["verify", "--help"]])
def test_help_documents_the_exit_codes(args):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0 and "130" in r.output and "internal error" in r.output


def test_bmc_engine_reports_bounded_holds_and_replayed_violations(tmp_path):
    r = run(tmp_path, VIOLATED, "--engine", "bmc", "--depth", "4", "--property", "small")
    assert r.exit_code == 1 and "violated (1 steps)" in r.stdout and "x = 1" in r.stdout
    r = run(tmp_path, HOLDS, "--engine", "bmc", "--depth", "4", "--property", "small")
    assert r.exit_code == 0 and "holds up to depth 4" in r.stdout and "proved" not in r.stdout


def test_itf_output_is_apalache_informal_trace_format(tmp_path):
    r = run(tmp_path, VIOLATED, "--format", "itf")
    doc = json.loads(r.stdout)
    assert doc["#meta"]["format"] == "ITF"
    assert "x" in doc["vars"] and "action_taken" in doc["vars"]
    assert [s["x"] for s in doc["states"]] == [{"#bigint": "0"}, {"#bigint": "1"}]
    assert doc["states"][1]["action_taken"] == "a"
    assert doc["states"][0]["online"] == [True, True]


def test_markdown_output_has_a_table_and_a_mermaid_diagram(tmp_path):
    r = run(tmp_path, VIOLATED, "--format", "md")
    assert "| `small` | violated (1 steps) |" in r.stdout
    assert "```mermaid" in r.stdout and "sequenceDiagram" in r.stdout and "Note over a: x = 1" in r.stdout


def _check(tmp_path, text, *args):
    f = tmp_path / "p.tdx"
    f.write_text(text)
    return CliRunner().invoke(cli, ["check", str(tmp_path), "-j", "1", *args], catch_exceptions=False)


def test_check_compares_verdicts_with_expectations(tmp_path):
    ok = _check(tmp_path, HOLDS + "expect small holds;\n")
    assert ok.exit_code == 0 and "0 differ from their expect clause" in ok.stdout
    bad = _check(tmp_path, VIOLATED + "expect small holds;\n")
    assert bad.exit_code == 1 and "MISMATCH" in bad.stdout
    assert _check(tmp_path, "var x: bool = 1;\n").exit_code == 2


def test_check_writes_junit_and_sarif(tmp_path):
    import xml.etree.ElementTree as ET

    r = _check(tmp_path, VIOLATED + "expect small holds;\n", "--format", "junit")
    suites = ET.fromstring(r.stdout)
    case = next(c for c in suites.iter("testcase") if c.get("name") == "small")
    assert case.find("failure") is not None
    r = _check(tmp_path, VIOLATED + "expect small holds;\n", "--format", "sarif")
    sarif = json.loads(r.stdout)
    (res,) = [x for x in sarif["runs"][0]["results"] if x["ruleId"] == "small"]
    # the `expect` clause that the verdict contradicts
    assert res["level"] == "error" and res["locations"][0]["physicalLocation"]["region"]["startLine"] == 7


WITH_TITLE = """
import "kernel-6.16.tdx";
cpus 2;
var x: int[0..3] = 0;
fn set_it() { x = 1; }
actor a "modprobe demo" { set_it(); }
invariant small: x < 1;
expect small violated;
"""


def test_witness_writes_the_shortest_schedule_in_each_format(tmp_path):
    f = tmp_path / "p.tdx"
    f.write_text(WITH_TITLE)
    runner = CliRunner()
    text = runner.invoke(cli, ["witness", str(f), "--property", "small"])
    assert text.exit_code == 0, text.output
    assert "modprobe demo (CPU0)" in text.stdout            # the column says who runs
    assert "set_it()  <- x = 1" in text.stdout              # the call chain, the change
    out = tmp_path / "w.md"
    md = runner.invoke(cli, ["witness", str(f), "--property", "small", "--format", "md", "-o", str(out)])
    assert md.exit_code == 0 and "```mermaid" in out.read_text() and md.stdout == ""
    js = runner.invoke(cli, ["witness", str(f), "--property", "small", "--format", "json"])
    doc = json.loads(js.stdout)
    assert [r["name"] for r in doc["results"]] == ["small"]
    assert doc["results"][0]["witness"]["report"]["kind"] == "invariant"
    itf = runner.invoke(cli, ["witness", str(f), "--property", "small", "--format", "itf"])
    assert itf.exit_code == 0 and '"states"' in itf.stdout


def test_witness_exits_1_when_there_is_none_and_2_for_an_unknown_property(tmp_path):
    f = tmp_path / "p.tdx"
    f.write_text(WITH_TITLE.replace("x < 1", "x < 2").replace("violated", "holds"))
    res = CliRunner().invoke(cli, ["witness", str(f), "--property", "small"])
    assert res.exit_code == 1 and "there is no witness" in res.stderr
    res = CliRunner().invoke(cli, ["witness", str(f), "--property", "smal"])
    assert res.exit_code == 2 and "did you mean" in res.stderr


def test_check_writes_records_and_detects_stale_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "p.tdx").write_text("// A demo design.\n" + WITH_TITLE)
    (tmp_path / "README.md").write_text("# demo\n<!-- generated by tdxproof check --write-proofs: begin -->\n"
                                        "<!-- generated by tdxproof check --write-proofs: end -->\ntail\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["check", "pol", "--write-proofs", "--readme", "README.md"])
    assert res.exit_code == 0, res.output
    record = (tmp_path / "proofs" / "p.md").read_text()
    assert record.startswith("# `pol/p.tdx`") and "> A demo design." in record and "## small" in record
    table = (tmp_path / "README.md").read_text()
    assert "[✘](proofs/p.md#small)" in table and table.endswith("tail\n")
    again = runner.invoke(cli, ["check", "pol", "--check-proofs", "--readme", "README.md"])
    assert again.exit_code == 0, again.output
    (tmp_path / "proofs" / "p.md").write_text(record.replace("small", "tiny"))
    stale = runner.invoke(cli, ["check", "pol", "--check-proofs"])
    assert stale.exit_code == 1 and "proofs/p.md: stale" in stale.stderr


def test_sarif_points_at_the_policy_and_says_what_was_expected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.tdx").write_text(WITH_TITLE + "expect no-deadlock violated;\n")
    res = CliRunner().invoke(cli, ["check", "p.tdx", "--format", "sarif"])
    assert res.exit_code == 1
    results = {r["ruleId"]: r for r in json.loads(res.stdout)["runs"][0]["results"]}
    small, dead = results["small"], results["no-deadlock"]
    assert small["level"] == "note"                 # violated, as its expect says
    assert dead["level"] == "error"                 # expected violated, holds
    for r in (small, dead):
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "p.tdx"   # the expect line, not the prelude
    assert small["locations"][0]["physicalLocation"]["region"]["startLine"] == 8
    assert dead["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("locks.tdx")
