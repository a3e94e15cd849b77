"""Read a policy and everything it imports, in declaration order.

Imports resolve relative to the importing file first, then to the shipped
preludes (package data `tdxproof.prelude`). Import cycles and missing files are
E5xx diagnostics at the `import` line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Mapping

from tdxproof.diagnostics import Diagnostics, Note, PolicyError
from tdxproof.source import SourceFile
from tdxproof.syntax import ast
from tdxproof.syntax.parser import parse, read_source, source_from_bytes

PRELUDE_PREFIX = "<prelude>/"


@dataclass(frozen=True, slots=True)
class Loaded:
    main: ast.PolicyFile
    files: tuple[ast.PolicyFile, ...]  # dependencies first, main last
    sources: dict[str, SourceFile]
    imports: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path -> paths it imports directly

    def imported_by(self, path: str) -> set[str]:
        """Every file `path` imports, directly or not (itself excluded)."""
        seen: set[str] = set()
        todo = list(self.imports.get(path, ()))
        while todo:
            p = todo.pop()
            if p not in seen:
                seen.add(p)
                todo.extend(self.imports.get(p, ()))
        return seen

    @staticmethod
    def is_prelude(path: str) -> bool:
        return path.startswith(PRELUDE_PREFIX)


def prelude_names() -> list[str]:
    return sorted(p.name for p in resources.files("tdxproof.prelude").iterdir()
                  if p.name.endswith(".tdx"))


def _prelude_source(name: str) -> SourceFile | None:
    ref = resources.files("tdxproof.prelude").joinpath(name)
    if not ref.is_file():
        return None
    return source_from_bytes(PRELUDE_PREFIX + name, ref.read_bytes())


def load_policy(path: str, text: str | None = None, texts: Mapping[str, str] | None = None) -> Loaded:
    """`text`: the main file's text; `texts`: other files' texts by their path as
    loaded (a mutant of an imported file, `tdxproof mutate`)."""
    sources: dict[str, SourceFile] = {}
    order: list[ast.PolicyFile] = []
    done: set[str] = set()
    imports: dict[str, list[str]] = {}
    diags = Diagnostics()

    def load(src: SourceFile, stack: tuple[tuple[str, ast.Import | None], ...]) -> ast.PolicyFile:
        if texts and src.path in texts:
            src = SourceFile.from_text(src.path, texts[src.path])
        sources[src.path] = src
        tree = parse(src)
        mine = imports.setdefault(src.path, [])
        for item in tree.items:
            if not isinstance(item, ast.Import):
                continue
            dep = _resolve(src.path, item.path)
            if dep is None:
                diags.error("E506", f"cannot find imported file `{item.path}`", item.span,
                            help="available preludes: " + ", ".join(prelude_names()))
                continue
            key = dep if not isinstance(dep, SourceFile) else dep.path
            mine.append(key)
            if any(key == p for p, _ in stack):
                chain = " -> ".join(os.path.basename(p) for p, _ in stack) + " -> " + os.path.basename(key)
                diags.error("E507", f"import cycle: {chain}", item.span)
                continue
            if key in done:
                continue
            dep_src = dep if isinstance(dep, SourceFile) else _read(dep, item, diags)
            if dep_src is None:
                continue
            load(dep_src, stack + ((key, item),))
        done.add(src.path)
        order.append(tree)
        return tree

    try:
        main_src = SourceFile.from_text(path, text) if text is not None else read_source(path)
        main = load(main_src, ((main_src.path, None),))
    except PolicyError as exc:
        # keep the sources so the caret can be drawn
        raise _with_sources(exc, sources) from None
    if diags.has_errors:
        raise _with_sources(PolicyError(diags.items), sources)
    return Loaded(main, tuple(order), sources, {k: tuple(v) for k, v in imports.items()})


def _with_sources(exc: PolicyError, sources: dict[str, SourceFile]) -> PolicyError:
    exc.sources = dict(sources)  # type: ignore[attr-defined]
    return exc


def _read(path: str, item: ast.Import, diags: Diagnostics) -> SourceFile | None:
    try:
        return read_source(path)
    except PolicyError as exc:
        for d in exc.diagnostics:
            diags.error(d.code, d.message, item.span, notes=(Note(f"imported as `{item.path}`"),))
        return None


def _resolve(importer: str, name: str) -> str | SourceFile | None:
    if not importer.startswith(PRELUDE_PREFIX):
        local = os.path.normpath(os.path.join(os.path.dirname(importer) or ".", name))
        if os.path.isfile(local):
            return local
    return _prelude_source(os.path.basename(name)) if "/" not in name else None
