"""The import allow-list of the house style: each stage imports only what it may."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).parent.parent
ROOT = REPO / "src" / "tdxproof"   # the source tree, whether or not the install is editable
THIRD_PARTY = {"lark", "z3", "click", "rich"}

ALLOWED = {
    "source": set(),
    "options": set(),
    "diagnostics": {"source"},
    "syntax": {"source", "diagnostics", "syntax", "lark"},
    "model": {"source", "diagnostics", "syntax", "model"},
    "results": {"source", "model"},
    "interp": {"model", "results", "options", "interp", "source"},
    "encode": {"model", "results", "options", "encode", "source", "z3"},
    "engines": {"interp", "encode", "model", "results", "options", "diagnostics", "engines", "source", "z3"},
    "render": {"results", "model", "source", "diagnostics", "render"},
    "cli": {"*"},
    "__main__": {"cli"},
    "__init__": set(),
    "prelude": set(),
}


def _stage(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_every_module_respects_the_import_allow_list():
    problems = []
    for path in ROOT.rglob("*.py"):
        stage = _stage(path)
        allowed = ALLOWED[stage]
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top == "tdxproof":
                parts = mod.split(".")
                target = parts[1] if len(parts) > 1 else "__init__"
                if "*" not in allowed and target not in allowed and target != stage:
                    problems.append(f"{path.relative_to(ROOT)} imports {mod}")
            elif top in THIRD_PARTY and "*" not in allowed and top not in allowed:
                problems.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not problems, "\n".join(problems)


def test_click_is_imported_only_by_the_cli_and_lark_only_by_syntax():
    for path in ROOT.rglob("*.py"):
        mods = {m.split(".")[0] for m in _imports(path)}
        if "click" in mods:
            assert _stage(path) == "cli", path
        if "lark" in mods:
            assert _stage(path) == "syntax", path


def test_every_subpackage_is_shipped():
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"tdxproof." + str(p.parent.relative_to(ROOT)).replace("/", ".")
             for p in ROOT.rglob("__init__.py") if p.parent != ROOT} | {"tdxproof"}
    assert found <= listed, found - listed


def test_the_interpreter_and_the_encoder_never_import_each_other():
    for path in ROOT.rglob("*.py"):
        stage = _stage(path)
        mods = {m for m in _imports(path) if m.startswith("tdxproof.")}
        if stage == "interp":
            assert not any(m.startswith("tdxproof.encode") for m in mods), path
        if stage == "encode":
            assert not any(m.startswith("tdxproof.interp") for m in mods), path


def test_every_solver_call_goes_through_the_one_check():
    """encode/solver.check() turns a timeout into unknown and Ctrl-C inside Z3 into
    an interrupt; a `Solver.check()` elsewhere would do neither."""
    calls = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check" \
                    and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "self"):
                calls.append(str(path.relative_to(ROOT)))
    assert calls == ["encode/solver.py"], calls
