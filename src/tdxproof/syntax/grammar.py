"""Load grammar/tdx.lark (package data `tdxproof.grammar`) and build the LALR parser once."""

from __future__ import annotations

import functools
from importlib import resources

from lark import Lark


@functools.cache
def grammar_text() -> str:
    return resources.files("tdxproof.grammar").joinpath("tdx.lark").read_text(encoding="utf-8")


@functools.cache
def parser() -> Lark:
    # strict: the grammar has no conflicts and no terminal collisions (needs interegular)
    return Lark(grammar_text(), parser="lalr", strict=True, propagate_positions=True,
                maybe_placeholders=True)
