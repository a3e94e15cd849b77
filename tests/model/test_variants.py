"""Policies built on other policies: overrides, inherited parameters, sets and expects."""

from __future__ import annotations

import textwrap

import pytest
from helpers import verdicts

from tdxproof.diagnostics import PolicyError
from tdxproof.model.lower import lower_policy

BASE = """\
import "locks.tdx";
cpus 2;
config fail_it: bool = false;
set fail_it = true;
lock m: mutex;
var x: int[0..3] = 0;
var start[cpu c]: bool = c == 0;
fn step() -> int {
    mutex_lock(m);
    x = 1;
    mutex_unlock(m);
    return 0;
}
actor a "modprobe demo" { let r = step(); }
invariant x-small: x <= 1;
cover x-set: x == 1;
expect x-small holds;
expect x-set covered;
"""


def _write(tmp_path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return str(tmp_path / list(files)[-1])


def _lower(tmp_path, files: dict[str, str], cpus=None):
    model, _, _ = lower_policy(_write(tmp_path, files), cpus=cpus)
    return model


def _errors(tmp_path, files: dict[str, str]) -> list[str]:
    with pytest.raises(PolicyError) as info:
        _lower(tmp_path, files)
    return [f"{d.code} {d.message}" for d in info.value.diagnostics if d.severity.value == "error"]


def test_an_overridden_function_replaces_the_base_and_expectations_are_inherited(tmp_path):
    model = _lower(tmp_path, {"base.tdx": BASE, "variant.tdx": """\
        import "base.tdx";
        override fn step() -> int {
            mutex_lock(m);
            x = 2;
            mutex_unlock(m);
            return 0;
        }
        expect x-small violated;   // restated for this variant
        """})
    v = verdicts(model)
    assert v["x-small"].verdict.value == "violated"
    expects = {e.prop: e.verdict for e in model.expects}
    assert expects == {"x-small": "violated", "x-set": "covered"}   # x-set inherited
    assert model.cpus == 2                                          # inherited `cpus`
    [o] = model.overrides
    assert (o.kind, o.name) == ("fn", "step")
    assert o.span.path.endswith("variant.tdx") and o.original.path.endswith("base.tdx")
    assert model.actors[0].title == "modprobe demo"


def test_an_overridden_initial_value_keeps_the_base_declaration_order(tmp_path):
    base = _lower(tmp_path, {"base.tdx": BASE})
    model = _lower(tmp_path, {"base.tdx": BASE, "variant.tdx": """\
        import "base.tdx";
        override var start[cpu c]: bool = c == 0 || any;
        """})
    assert [v.name for v in model.vars] == [v.name for v in base.vars]
    from tdxproof.interp.program import Program
    from tdxproof.interp.state import initial_states
    assert len(initial_states(Program(model))) == 2 * len(initial_states(Program(base)))


def test_set_and_cpus_of_the_variant_win(tmp_path):
    model = _lower(tmp_path, {"base.tdx": BASE, "variant.tdx": """\
        import "base.tdx";
        cpus 3;
        set fail_it = false;
        """})
    assert model.cpus == 3
    assert model.function("step") is not None


def test_a_variant_of_a_variant_overrides_again(tmp_path):
    model = _lower(tmp_path, {"base.tdx": BASE, "mid.tdx": """\
        import "base.tdx";
        override invariant x-small: x <= 2;
        """, "top.tdx": """\
        import "mid.tdx";
        override invariant x-small: x <= 3;
        """})
    assert [o.span.path.rsplit("/", 1)[-1] for o in model.overrides] == ["mid.tdx", "top.tdx"]
    assert "3" in str(model.property("x-small").expr)


def test_overriding_what_does_not_exist_is_an_error_with_a_suggestion(tmp_path):
    errs = _errors(tmp_path, {"base.tdx": BASE, "variant.tdx": """\
        import "base.tdx";
        override fn stepp() -> int { return 0; }
        """})
    assert errs == ["E208 `override fn stepp`: no function `stepp` to override"]


def test_changing_a_signature_is_an_error(tmp_path):
    errs = _errors(tmp_path, {"base.tdx": BASE, "variant.tdx": """\
        import "base.tdx";
        override fn step(cpu c) -> int { return 0; }
        override var x: bool = false;
        override cover x-small: x == 1;
        """})
    assert errs == ["E210 `override fn step` changes the parameter types",
                    "E210 `override var x` changes the type",
                    "E210 `override property x-small` changes the kind of property (`invariant` in the original)"]


def test_overrides_need_the_original_in_an_imported_file(tmp_path):
    errs = _errors(tmp_path, {"base.tdx": BASE.replace("actor a", "override fn step() -> int { return 0; }\nactor a")})
    assert errs == ["E209 cannot override `step`: it is declared in this file"]
    errs = _errors(tmp_path, {"base.tdx": BASE,
                              "left.tdx": 'import "base.tdx";\noverride fn step() -> int { return 1; }\n',
                              "right.tdx": 'import "base.tdx";\noverride fn step() -> int { return 2; }\n',
                              "both.tdx": 'import "left.tdx";\nimport "right.tdx";\n'})
    assert len(errs) == 1 and errs[0].startswith("E209 cannot override `step`: it is also overridden in ")


def test_two_clauses_in_one_file_are_an_error_but_inheritance_is_not(tmp_path):
    errs = _errors(tmp_path, {"base.tdx": BASE, "variant.tdx": """\
        import "base.tdx";
        expect x-small violated;
        expect x-small holds;
        """})
    assert errs == ["E202 `x-small` has two `expect` clauses"]


def test_show_says_what_a_policy_overrides(tmp_path):
    from click.testing import CliRunner

    from tdxproof.cli import cli
    path = _write(tmp_path, {"base.tdx": BASE, "variant.tdx": 'import "base.tdx";\n'
                             "override fn step() -> int { return 0; }\n"})
    out = CliRunner().invoke(cli, ["show", path]).output
    assert "overrides (" in out
    line = next(line for line in out.splitlines() if "fn step" in line)
    assert "variant.tdx:2" in line and "base.tdx:8" in line
