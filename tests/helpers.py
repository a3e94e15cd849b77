"""Shared test helpers: small policies in strings, verdicts from the engines."""

from __future__ import annotations

import textwrap

from tdxproof.engines.explicit import verify_explicit
from tdxproof.interp.program import Program
from tdxproof.model import ir
from tdxproof.model.lower import lower_policy
from tdxproof.results import PropertyResult


def tdx(text: str, cpus: int | None = None, path: str = "test.tdx") -> ir.Model:
    model, _, _ = lower_policy(path, cpus=cpus, text=textwrap.dedent(text))
    return model


def verdicts(model: ir.Model, cpus: int | None = None) -> dict[str, PropertyResult]:
    run = verify_explicit(model, cpus=cpus)
    assert run.complete
    return {r.name: r for r in run.results}


def program(model: ir.Model, cpus: int | None = None) -> Program:
    return Program(model, cpus)
