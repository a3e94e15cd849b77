"""The front end never crashes: any text parses and lowers, or gives a PolicyError
whose diagnostics carry valid spans. (hypothesis; HYPOTHESIS_PROFILE=fuzz runs long.)"""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from tdxproof.diagnostics import PolicyError, render_text
from tdxproof.model.lower import lower_policy
from tdxproof.syntax.grammar import parser

ALPHABET = string.ascii_letters + string.digits + " \n\t;:{}()[],.=!<>+-*/&|?@\"#'_"
SNIPPETS = st.sampled_from(["var x: int = 0;", "fn f() { }", "actor a { }", "cpus 2;", "lock l: mutex;",
                            'import "kernel-6.16.tdx";', "invariant p: true;", "x = 1;", "{", "}", ";",
                            "if x { }", "await x;", "expect p holds;", "var y[cpu c]: bool = any;"])


def _front(text: str) -> None:
    try:
        lower_policy("fuzz.tdx", text=text)
    except PolicyError as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.span.line >= 1 and d.span.col >= 1
        render_text(exc.diagnostics, getattr(exc, "sources", {}))


@given(st.text(alphabet=ALPHABET, max_size=200))
def test_arbitrary_text(text):
    _front(text)


@given(st.lists(SNIPPETS, max_size=12).map(" ".join))
def test_sequences_of_plausible_pieces(text):
    _front(text)


@given(from_lark(parser(), start="start").filter(lambda s: len(s) < 400))
def test_grammar_shaped_text(text):
    _front(text)
