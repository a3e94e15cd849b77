"""The state vector: every Z3 constant of the encoding is made here, with names
for people reading `solver.sexpr()` (`online[2]@3`, `pc[cpuhp/1]@3`). Decoding
looks terms up in these tables; it never parses names.

All values are 8-bit two's-complement bit-vectors (the language's ints are
-128..127; bools are 0/1; CPUs, enum members, functions (index + 1, 0 for null)
and context indexes are small); program counters are 16-bit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import z3

from tdxproof.encode.flatten import Automaton
from tdxproof.model import ir

W = 8
PCW = 16
RUN, DONE, IDLE, RET = 0, 1, 2, 3
MODES = {None: 0, "read": 1, "write": 2}
NO_PC = (1 << PCW) - 1
# the event index of a run-time model error (a value outside its type, a call
# through a null pointer): its condition says the step is free of one
MODEL_ERROR = -1


@functools.lru_cache(maxsize=None)
def bv(v: int) -> z3.BitVecRef:
    # cached: the encoder asks for the same few constants about 100,000 times a policy
    return z3.BitVecVal(v, W)


@dataclass
class Context:
    index: int
    name: str                  # `vt_init`, `vm#2`, `cpuhp/1`
    auto: Automaton
    home_cpu: int
    kthread: ir.Kthread | None = None
    actor: ir.Actor | None = None


@dataclass
class Vocab:
    """Names of the state variables of one step (a template: `at(k)` renames)."""
    model: ir.Model
    n: int
    contexts: list[Context]
    cells: dict[tuple[str, int], str] = field(default_factory=dict)     # (var, cell) -> name
    fields: dict[tuple[int, str], str] = field(default_factory=dict)    # (lock index, field) -> name
    names: list[str] = field(default_factory=list)                      # every variable, in order
    widths: dict[str, int] = field(default_factory=dict)

    def var_cells(self, var: ir.Var) -> int:
        if var.per_cpu:
            return self.n
        return len(var.dim.members) if var.dim is not None else 1

    @staticmethod
    def build(model: ir.Model, n: int, contexts: list[Context]) -> "Vocab":
        v = Vocab(model, n, contexts)
        for var in model.vars:
            for i in range(v.var_cells(var)):
                name = f"{var.name}[{i}]" if var.indexed else var.name
                v.cells[(var.name, i)] = name
                v._add(name)
        classes = {c.name: c for c in model.lock_classes}
        for lock in model.locks:
            for f in classes[lock.cls].fields:
                name = f"{lock.name}.{f.name}"
                v.fields[(lock.index, f.name)] = name
                v._add(name)
        for c in contexts:
            v._add(v.pc(c), PCW)
            for name in (v.status(c), v.aux(c), v.irqs(c), v.ipi(c), v.saved(c)):
                v._add(name)
            for i in range(c.auto.nlocals):
                v._add(v.local(c, i))
            for lock in model.locks:
                for mode in MODES.values():
                    v._add(v.held(c, lock.index, mode))
        return v

    def _add(self, name: str, width: int = W) -> None:
        # one name, one variable: decoding looks names up (`pc[1]` is a policy's cell,
        # `pc[a0]` a program counter; context names are never numbers)
        assert name not in self.widths, name
        self.names.append(name)
        self.widths[name] = width

    # per-context variable names
    def pc(self, c: Context) -> str:
        return f"pc[{c.name}]"

    def status(self, c: Context) -> str:
        return f"status[{c.name}]"

    def aux(self, c: Context) -> str:
        return f"aux[{c.name}]"

    def irqs(self, c: Context) -> str:
        return f"irqs_off[{c.name}]"

    def ipi(self, c: Context) -> str:
        return f"ipi[{c.name}]"

    def saved(self, c: Context) -> str:
        return f"ipi_saved[{c.name}]"

    def local(self, c: Context, slot: int) -> str:
        return f"local{slot}[{c.name}]"

    def held(self, c: Context, lock: int, mode: int) -> str:
        return f"held[{c.name},{self.model.locks[lock].name},{mode}]"

    def at(self, k: int) -> dict[str, z3.BitVecRef]:
        return {name: z3.BitVec(f"{name}@{k}", self.widths[name]) for name in self.names}
