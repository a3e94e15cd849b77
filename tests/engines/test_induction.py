"""The `kind` engine (an inductive invariant learned against the reachable
states) against the explicit engine on models with known answers: the same
violations with shortest witnesses of the same length; what holds is *proved*,
and only with a certificate that re-checks on the plain encoding; a mutated
certificate fails. The cube generalisation is tested on its own."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import tdx, verdicts
from test_bmc import CATALOGUE, PROPS

from tdxproof.cli import cli
from tdxproof.encode.concrete import ConcreteSystem
from tdxproof.encode.system import encode
from tdxproof.engines.induction import Certificate, Lemma, Reach, recheck, verify_kind
from tdxproof.results import Verdict

SLOW: set[str] = set()   # every case runs in seconds

COUNTER = 'import "kernel-6.16.tdx";\ncpus 2;\n' + """
    var x: int[0..7] = 0;
    actor a repeat { if x == 3 { x = 0; } else { x++; } }
    invariant below-four: x < 4;
    cover reaches-five: x == 5;
"""


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(CATALOGUE)])
def test_kind_agrees_with_the_explicit_engine(name):
    model = tdx(CATALOGUE[name])
    explicit = verdicts(model)
    run = verify_kind(model, properties=PROPS[name])
    for r in run.results:
        e = explicit[r.name]
        if e.verdict in (Verdict.VIOLATED, Verdict.COVERED):
            assert r.verdict is e.verdict, r.name
            assert len(r.schedule) == len(e.schedule), r.name      # both shortest, in blocks
        elif e.verdict is Verdict.UNREACHABLE:
            assert r.verdict is Verdict.UNREACHABLE, r.name
        else:
            assert r.verdict is Verdict.PROVED, (r.name, r.reason)
            assert r.proof is not None and r.proof.lemmas > 0


def _certificate(model) -> Certificate:
    got: list[Certificate] = []
    run = verify_kind(model, certificate_out=got.append)
    assert {r.name: r.verdict for r in run.results}["below-four"] is Verdict.PROVED
    assert {r.name: r.verdict for r in run.results}["reaches-five"] is Verdict.UNREACHABLE
    (cert,) = got
    return cert


def test_the_certificate_rechecks_and_survives_json():
    model = tdx(COUNTER)
    cert = _certificate(model)
    assert "below-four" in cert.proves and "reaches-five" in cert.proves
    back = Certificate.from_json(cert.to_json())
    assert back == cert
    states = ConcreteSystem.build(encode(model, 2)).explore().states
    assert recheck(model, back, states) == []


def test_a_mutated_certificate_fails_the_recheck():
    model = tdx(COUNTER)
    cert = _certificate(model)
    states = ConcreteSystem.build(encode(model, 2)).explore().states
    x = next(i for i, lm in enumerate(cert.lemmas) if lm.var == "x")
    assert cert.lemmas[x].values == (0, 1, 2, 3)
    # a lemma that a reachable state breaks: not initial-closed / not inductive
    narrowed = replace(cert, lemmas=cert.lemmas[:x] + (Lemma("x", (0, 1, 2)),) + cert.lemmas[x + 1:])
    problems = recheck(model, narrowed, states)
    assert any("inductive" in p for p in problems) and any("reachable state" in p for p in problems)
    # claims a property the lemmas do not imply
    overclaim = replace(cert, lemmas=tuple(lm for lm in cert.lemmas if lm.var != "x" and not lm.never
                                           and lm.prop is None))
    assert any("imply `below-four`" in p for p in recheck(model, overclaim))
    # names that do not exist are reported, not a crash
    assert recheck(model, replace(cert, lemmas=(Lemma("nonsense", (0,)),)))


def test_kind_through_the_cli(tmp_path):
    runner = CliRunner()
    good, cert = tmp_path / "counter.tdx", tmp_path / "cert.json"
    good.write_text(COUNTER.replace("invariant below-four", "invariant below-five: x < 5;\ninvariant below-four"))
    res = runner.invoke(cli, ["verify", str(good), "--engine", "kind", "--property", "below-five",
                              "--certificate", str(cert)])
    assert res.exit_code == 0, res.output
    assert "proved (N=2" in res.output and "exhaustive" not in res.output
    assert Certificate.from_json(cert.read_text()).proves == ("below-five",)
    res = runner.invoke(cli, ["verify", str(good), "--engine", "kind", "--property", "below-five", "--format", "json"])
    (r,) = json.loads(res.output)["results"]
    assert r["verdict"] == "proved" and r["certificate"]["lemmas"] > 0 and r["certificate"]["k"] == 1
    res = runner.invoke(cli, ["verify", str(good), "--engine", "kind"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["verify", str(good), "--engine", "kind", "--verbose"])
    assert res.exit_code == 0 and "── the inductive invariant" in res.output and "  x in {0, 1, 2, 3}" in res.output
    assert "unreachable (proved" in res.output
    bad = tmp_path / "bad.tdx"
    bad.write_text(COUNTER.replace("x < 4", "x < 3"))
    res = runner.invoke(cli, ["verify", str(bad), "--engine", "kind", "--property", "below-four"])
    explicit = runner.invoke(cli, ["verify", str(bad), "--property", "below-four"])
    assert res.exit_code == explicit.exit_code == 1, res.output
    steps = explicit.output.split("violated (")[1].split(")")[0]
    assert f"violated ({steps})" in res.output


def test_recheck_through_the_cli(tmp_path):
    runner = CliRunner()
    good, cert = tmp_path / "counter.tdx", tmp_path / "cert.json"
    # y copies x in a step of its own: `y < 4` is inductive only with what is known of x
    good.write_text(COUNTER.replace("x++; } }", "x++; } y = x; }").replace("x < 4", "y < 4")
                    .replace("var x: int[0..7] = 0;", "var x: int[0..7] = 0;\n    var y: int[0..7] = 0;"))
    res = runner.invoke(cli, ["verify", str(good), "--engine", "kind", "--property", "below-four",
                              "--certificate", str(cert)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["recheck", str(good), str(cert), "--show"])
    assert res.exit_code == 0 and "re-checks; proves below-four" in res.output, res.output
    assert "  y in {0, 1, 2, 3}" in res.output
    # without its lemmas over x, what is left is not inductive
    d = json.loads(cert.read_text())
    d["lemmas"] = [lm for lm in d["lemmas"] if lm.get("var") != "x" and "never" not in lm]
    cert.write_text(json.dumps(d))
    res = runner.invoke(cli, ["recheck", str(good), str(cert)])
    assert res.exit_code == 1 and "the lemmas are inductive: fails" in res.output, res.output
    d["proves"] = ["below-three"]
    cert.write_text(json.dumps(d))
    res = runner.invoke(cli, ["recheck", str(good), str(cert)])
    assert res.exit_code == 1 and "unknown property `below-three`" in res.output, res.output
    cert.write_text("{not json")
    res = runner.invoke(cli, ["recheck", str(good), str(cert)])
    assert res.exit_code == 2 and "not a readable certificate" in res.output, res.output


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.integers(0, 3)] * 4), min_size=1, max_size=40),
       st.tuples(*[st.integers(0, 3)] * 4))
def test_a_generalised_cube_excludes_its_state_and_no_reachable_one(reachable, s):
    """The cube "never ..." contains the blocked state, meets no reachable state,
    and cannot lose a variable or widen a value set without meeting one."""
    reach = Reach(["a", "b", "c", "d"], reachable)
    lm = reach.generalize(s)
    if s in reachable:
        assert lm is None
        return
    cube = dict(lm.never)
    assert all(s["abcd".index(v)] in vs for v, vs in cube.items())
    assert not reach.breaks(lm)
    assert not any(all(r["abcd".index(v)] in vs for v, vs in cube.items()) for r in reachable)
    for v in cube:                     # no literal can go
        rest = tuple((u, vs) for u, vs in lm.never if u != v)
        assert not rest or reach.breaks(Lemma(never=rest))
    seen = {v: {r["abcd".index(v)] for r in reachable} for v in cube}
    for v, vs in lm.never:             # no reachable value can join a literal
        for x in seen[v] - set(vs):
            wider = tuple((u, tuple(sorted(set(ws) | {x})) if u == v else ws) for u, ws in lm.never)
            assert reach.breaks(Lemma(never=wider))



def test_lemmas_for_every_cpu_fold_into_one_line():
    from tdxproof.engines.induction import fold_cpus
    enc = encode(tdx(COUNTER), 2)
    copies = [Lemma(f"online[{c}]", (0, 1)) for c in (0, 1)]
    copies += [Lemma(never=((f"held[cpuhp/{c},cpu_hotplug_lock,2]", (1,)), (f"online[{c}]", (0,)))) for c in (0, 1)]
    pairs = [Lemma(never=((f"online[{c}]", (0,)), (f"online[{d}]", (0,)))) for c, d in ((0, 1), (1, 0))]
    lonely = [Lemma(never=(("online[1]", (0,)), ("x", (3,))))]
    lines = fold_cpus(enc, copies + pairs + lonely + [Lemma(prop="below-four")])
    assert lines == [
        "for every CPU c: online[c] in {0, 1}",
        "for every CPU c: never held[cpuhp/c,cpu_hotplug_lock,2] == 1 and online[c] == 0",
        "for all distinct CPUs c, d: never online[c] == 0 and online[d] == 0",
        "never online[1] == 0 and x == 3",               # CPU 0's copy is not there: not folded
        "the property `below-four`",
    ]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_the_encoding_reaches_as_many_states_as_the_interpreter(name):
    """Both forget dead locals (the encoder from its block paths, the interpreter
    from its code): the same reachable states, counted the same."""
    from tdxproof.engines.explicit import verify_explicit
    model = tdx(CATALOGUE[name])
    assert len(ConcreteSystem.build(encode(model, 2)).explore().states) == verify_explicit(model, cpus=2).states


def test_a_policy_variable_named_pc_is_not_a_program_counter():
    """Found by the differential test: rendering kind's proof parsed `pc[1]` as a
    context's program counter and crashed."""
    model = tdx('import "locks.tdx";\ncpus 2;\n' + """
        var pc[cpu c]: bool = false;
        var g: int[0..3] = 0;
        actor a { g = 0; pc[1] = true; }
        invariant zero: g == 0;
    """)
    run = verify_kind(model)
    assert {r.name: r.verdict for r in run.results}["zero"] is Verdict.PROVED
