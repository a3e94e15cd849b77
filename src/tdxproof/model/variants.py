"""Policies built on other policies: `override` declarations, and the clauses a
policy inherits from the policies it imports (`cpus`, `packages`, `set`, `expect`).

`resolve()` gives the lowering the items of every file in load order with each
overridden declaration replaced *in place* by its override, so the base's order
(state layout, context numbering, property order) is kept and a name is still
declared once. Rules, each a diagnostic at the override when broken:
- an override replaces a declaration of the same kind and name in a file that the
  overriding file imports (directly or not); a function keeps its parameter
  types, return type and module, a variable its type, index, `ghost` and module,
  a property its kind;
- overrides chain (a variant of a variant), but two files that do not import one
  another cannot both override the same declaration;
- inherited clauses: the one in the file loaded last wins (the policy itself,
  then what it imports, nearest first); two in one file are an error; preludes
  cannot `set` or give `cpus`/`packages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tdxproof.diagnostics import Diagnostics, Note, did_you_mean
from tdxproof.model import ir
from tdxproof.model.load import Loaded
from tdxproof.syntax import ast as A

KINDS: dict[type, str] = {A.FnDecl: "fn", A.VarDecl: "var", A.PredicateDecl: "predicate",
                          A.ActorDecl: "actor", A.PropertyDecl: "property"}


@dataclass
class Resolved:
    items: list[tuple[A.PolicyFile, Any]]          # (file, item); overrides in the original's place
    overrides: list[ir.Override]
    cpus: A.Cpus | None
    packages: A.Packages | None
    sets: dict[str, A.SetDecl]                     # config name -> the `set` that applies
    expects: list[A.ExpectDecl]


def resolve(loaded: Loaded, d: Diagnostics) -> Resolved:
    files = loaded.files
    slots: list[list[Any]] = []                    # [file, item] per declaration, in load order
    where: dict[tuple[str, str], list[Any]] = {}   # (kind, name) -> its slot
    by: dict[tuple[str, str], A.PolicyFile] = {}   # the file whose declaration is in the slot now
    overrides: list[ir.Override] = []
    for f in files:
        for it in f.items:
            if not isinstance(it, A.Override):
                slot = [f, it]
                slots.append(slot)
                kind = KINDS.get(type(it))
                if kind is not None:
                    where.setdefault((kind, it.name), slot)
                    by.setdefault((kind, it.name), f)
                continue
            new = it.decl
            kind = KINDS[type(new)]
            key = (kind, new.name)
            slot = where.get(key)
            if slot is None:
                same = [n for (k, n) in where if k == kind]
                d.error("E208", f"`override {kind} {new.name}`: no {_kind_word(kind)} `{new.name}` to override",
                        new.span, help=did_you_mean(new.name, same))
                continue
            owner = by[key]
            if owner.path == f.path or owner.path not in loaded.imported_by(f.path):
                again = any(r.kind == kind and r.name == new.name for r in overrides)
                why = (("it is already overridden in this file" if again else "it is declared in this file")
                       if owner.path == f.path else
                       f"it is {'also overridden' if again else 'declared'} in {owner.path}, "
                       "which this file does not import")
                d.error("E209", f"cannot override `{new.name}`: {why}", new.span,
                        notes=(Note("the declaration in force is here", slot[1].span),))
                continue
            problem = _mismatch(kind, slot[1], new)
            if problem:
                d.error("E210", f"`override {kind} {new.name}` changes {problem}", new.span,
                        notes=(Note("the original is here", slot[1].span),))
                continue
            overrides.append(ir.Override(kind, new.name, new.span, slot[1].span))
            slot[0], slot[1] = f, new
            by[key] = f
    items = [(slot[0], slot[1]) for slot in slots]
    cpus = _inherited(loaded, d, A.Cpus, lambda it: "cpus", "`cpus` is given twice")
    pkgs = _inherited(loaded, d, A.Packages, lambda it: "packages", "`packages` is given twice")
    sets = _inherited(loaded, d, A.SetDecl, lambda it: it.name, "`{}` is set twice")
    expects = _inherited(loaded, d, A.ExpectDecl, lambda it: it.prop, "`{}` has two `expect` clauses")
    return Resolved(items, overrides, cpus.get("cpus"), pkgs.get("packages"), sets, list(expects.values()))


def _kind_word(kind: str) -> str:
    return {"fn": "function", "var": "variable"}.get(kind, kind)


def _mismatch(kind: str, old: Any, new: Any) -> str | None:
    match kind:
        case "fn":
            if [p.type for p in old.params] != [p.type for p in new.params]:
                return "the parameter types"
            if old.ret != new.ret:
                return "the return type"
            if (old.role, old.mode) != (new.role, new.mode):
                return "the lock role"
            if old.module != new.module:
                return f"the module (`@{old.module}` in the original)" if old.module else "the module"
        case "var":
            if old.type != new.type:
                return "the type"
            if (old.index.type if old.index else None) != (new.index.type if new.index else None):
                return "the index"
            if old.ghost != new.ghost:
                return "`ghost`"
            if old.module != new.module:
                return f"the module (`@{old.module}` in the original)" if old.module else "the module"
        case "property":
            if old.kind != new.kind:
                return f"the kind of property (`{old.kind}` in the original)"
    return None


def _inherited(loaded: Loaded, d: Diagnostics, cls: type, key, twice: str) -> dict[str, Any]:
    """The clause of each key from the file loaded last (dependencies load first,
    so a policy's own clause beats its base's); preludes may not give these."""
    out: dict[str, Any] = {}
    for f in loaded.files:
        mine: dict[str, Any] = {}
        for it in f.items:
            if not isinstance(it, cls):
                continue
            if loaded.is_prelude(f.path) and cls is not A.ExpectDecl:
                what = {A.Cpus: "`cpus`", A.Packages: "`packages`", A.SetDecl: "`set`"}[cls]
                d.error("E411", f"{what} belongs in a policy, not in a prelude", it.span)
                continue
            k = key(it)
            if k in mine:
                d.error("E204" if cls is not A.ExpectDecl else "E202", twice.format(k), it.span,
                        notes=(Note("the first is here", mine[k].span),))
                continue
            mine[k] = it
        out.update(mine)
    return out
