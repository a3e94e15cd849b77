"""Concrete execution of the encoding: Z3 terms of the transition system compiled
to Python, so that the encoding's own reachable states can be enumerated.

Why: the unbounded engines mine candidate lemmas from the states the *encoding*
reaches at a small N (the reference interpreter keeps call stacks, the encoding
inlined program counters: their states are not the same vectors), and a
certificate is checked on every one of them. The successor of a state is
computed from the very guard/update terms the solver sees, so this also
cross-checks the encoder against the reference interpreter (same verdicts).

Values are unsigned Python ints below 2**width; signed operations convert.
"""

from __future__ import annotations

import array
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Iterable

import z3

from tdxproof.encode.solver import Sat, check, make_solver
from tdxproof.encode.system import Encoding
from tdxproof.encode.vocab import DONE, RUN
from tdxproof.encode.z3raw import (ARG, AST_KIND, BV_SIZE, DECL, DECL_NAME, ID, INT_PARAM, KIND, NUM_ARGS, NUMERAL, SORT,
                                    SORT_KIND, SYMBOL)

State = tuple[int, ...]

_BIN = {
    z3.Z3_OP_BADD: "({a} + {b}) & {m}",
    z3.Z3_OP_BSUB: "({a} - {b}) & {m}",
    z3.Z3_OP_BMUL: "({a} * {b}) & {m}",
    z3.Z3_OP_BAND: "({a} & {b})",
    z3.Z3_OP_BOR: "({a} | {b})",
    z3.Z3_OP_BXOR: "({a} ^ {b})",
    z3.Z3_OP_ULEQ: "({a} <= {b})",
    z3.Z3_OP_ULT: "({a} < {b})",
    z3.Z3_OP_UGEQ: "({a} >= {b})",
    z3.Z3_OP_UGT: "({a} > {b})",
    z3.Z3_OP_SLEQ: "(_s({a}, {w}) <= _s({b}, {w}))",
    z3.Z3_OP_SLT: "(_s({a}, {w}) < _s({b}, {w}))",
    z3.Z3_OP_SGEQ: "(_s({a}, {w}) >= _s({b}, {w}))",
    z3.Z3_OP_SGT: "(_s({a}, {w}) > _s({b}, {w}))",
    z3.Z3_OP_EQ: "({a} == {b})",
    z3.Z3_OP_XOR: "({a} != {b})",
    z3.Z3_OP_IMPLIES: "((not {a}) or {b})",
}
_UN = {
    z3.Z3_OP_NOT: "(not {a})",
    z3.Z3_OP_BNEG: "((-{a}) & {m})",
    z3.Z3_OP_BNOT: "((~{a}) & {m})",
    z3.Z3_OP_ZERO_EXT: "{a}",
}


def _s(x: int, w: int) -> int:
    return x - (1 << w) if x >> (w - 1) else x


class _Compiler:
    """Z3 DAG -> straight-line Python, one temporary per shared subterm."""

    TEMP = "    {name} = {out}"    # how a temporary is written (benchmarks/promela.py writes C)

    def __init__(self, index: dict[str, int]):
        self.index = index          # `online[1]@0` -> position in the state tuple
        self.lines: list[str] = []
        self.memo: dict[int, str] = {}
        self.ctx = None

    def term(self, e: z3.ExprRef) -> str:
        self.ctx = e.ctx_ref()
        return self._walk(e.as_ast())

    def _width(self, a) -> int:
        sort = SORT(self.ctx, a)
        return BV_SIZE(self.ctx, sort) if SORT_KIND(self.ctx, sort) == z3.Z3_BV_SORT else 0

    def _walk(self, a) -> str:
        ctx = self.ctx
        key = ID(ctx, a)
        got = self.memo.get(key)
        if got is not None:
            return got
        n = NUM_ARGS(ctx, a) if AST_KIND(ctx, a) == z3.Z3_APP_AST else 0
        out = self._term(a, n)
        if n > 0 and not out.isidentifier():
            name = f"t{len(self.memo)}"
            self.lines.append(self.TEMP.format(name=name, out=out))
            out = name
        self.memo[key] = out
        return out

    def _term(self, a, n: int) -> str:
        ctx = self.ctx
        if AST_KIND(ctx, a) == z3.Z3_NUMERAL_AST:
            return NUMERAL(ctx, a).decode()
        d = DECL(ctx, a)
        k = KIND(ctx, d)
        if k == z3.Z3_OP_TRUE:
            return "True"
        if k == z3.Z3_OP_FALSE:
            return "False"
        if k == z3.Z3_OP_UNINTERPRETED and n == 0:
            name = SYMBOL(ctx, DECL_NAME(ctx, d)).decode()
            if name not in self.index:
                raise KeyError(name)
            return f"s[{self.index[name]}]"
        kids = [ARG(ctx, a, i) for i in range(n)]
        args = [self._walk(x) for x in kids]
        if k in _BIN and len(args) == 2:
            w = self._width(kids[0])
            return _BIN[k].format(a=args[0], b=args[1], m=(1 << w) - 1 if w else 0, w=w)
        if k in (z3.Z3_OP_BADD, z3.Z3_OP_BMUL, z3.Z3_OP_BAND, z3.Z3_OP_BOR):
            op = {z3.Z3_OP_BADD: "+", z3.Z3_OP_BMUL: "*", z3.Z3_OP_BAND: "&", z3.Z3_OP_BOR: "|"}[k]
            return f"(({f' {op} '.join(args)}) & {(1 << self._width(a)) - 1})"
        if k in _UN:
            w = self._width(a)
            return _UN[k].format(a=args[0], m=(1 << w) - 1 if w else 0)
        if k == z3.Z3_OP_DISTINCT:
            return f"(len({{{', '.join(args)}}}) == {len(args)})"
        if k == z3.Z3_OP_ITE:
            return f"({args[1]} if {args[0]} else {args[2]})"
        if k == z3.Z3_OP_AND:
            return "(" + " and ".join(args) + ")" if args else "True"
        if k == z3.Z3_OP_OR:
            return "(" + " or ".join(args) + ")" if args else "False"
        if k == z3.Z3_OP_EXTRACT:
            hi, lo = INT_PARAM(ctx, d, 0), INT_PARAM(ctx, d, 1)
            return f"(({args[0]} >> {lo}) & {(1 << (hi - lo + 1)) - 1})"
        if k == z3.Z3_OP_CONCAT:
            out, shift = "0", 0
            for x, t in reversed(list(zip(kids, args))):
                out = f"({out} | ({t} << {shift}))"
                shift += self._width(x)
            return out
        if k == z3.Z3_OP_SIGN_EXT:
            w = self._width(kids[0])
            ext = INT_PARAM(ctx, d, 0)
            return f"(_s({args[0]}, {w}) & {(1 << (w + ext)) - 1})"
        raise NotImplementedError(f"concrete evaluation of {z3.FuncDeclRef(d, z3.main_ctx())}")


def compile_fn(name: str, index: dict[str, int], guard: z3.BoolRef | None,
               outputs: list[tuple[int, z3.ExprRef]]) -> Callable[[State], object]:
    """A function of the state tuple: None when `guard` is false, else the list of
    (position, value) of `outputs` (or True when there are none)."""
    c = _Compiler(index)
    body: list[str] = []
    if guard is not None:
        g = c.term(guard)
        body += c.lines
        c.lines = []
        body.append(f"    if not {g}: return None")
    outs = [(pos, c.term(t)) for pos, t in outputs]
    body += c.lines
    if outputs:
        body.append("    return (" + ", ".join(f"({pos}, {t})" for pos, t in outs) + ",)")
    else:
        body.append("    return True")
    src = f"def {name}(s):\n" + "\n".join(body) + "\n"
    scope: dict = {"_s": _s}
    exec(compile(src, f"<tdxproof {name}>", "exec"), scope)  # noqa: S102 - generated from our own terms
    return scope[name]


class Packed(Sequence):
    """States in breadth-first order, each packed into bytes (a byte per variable
    of up to 8 bits, two for program counters): about a fifth of the memory of a
    tuple of Python ints. Reading a state unpacks it into a tuple."""

    def __init__(self, widths: list[int]):
        self.codec = struct.Struct("<" + "".join("B" if w <= 8 else "H" if w <= 16 else "I" if w <= 32 else "Q"
                                                 for w in widths))
        self.items: list[bytes] = []
        self.index: dict[bytes, int] = {}
        self.parent: array.array = array.array("i")   # index of the predecessor, -1 for an initial state
        self.via: array.array = array.array("i")      # the block path taken from it
        self.expanded = 0          # states 0..expanded-1 had their successors computed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> State:
        return self.codec.unpack(self.items[i])

    def __iter__(self):
        return map(self.codec.unpack, self.items)

    def add(self, packed: bytes, parent: int, via: int) -> bool:
        """Record a state first reached from `parent` by path `via`; False if known."""
        if packed in self.index:
            return False
        self.index[packed] = len(self.items)
        self.items.append(packed)
        self.parent.append(parent)
        self.via.append(via)
        return True

    def columns(self):
        """Each variable's values over every state, in state order, variable by
        variable: slices of the states laid end to end, in C (bytes for one-byte
        variables, an array of ints for wider ones)."""
        joined = b"".join(self.items)
        size, off = self.codec.size, 0
        for ch in self.codec.format[1:]:
            w = struct.calcsize(ch)
            if w == 1:
                yield joined[off::size]
            else:
                buf = bytearray(w * len(self.items))
                for k in range(w):
                    buf[k::w] = joined[off + k::size]
                col = array.array(ch)
                col.frombytes(bytes(buf))
                if sys.byteorder != "little":
                    col.byteswap()
                yield col
            off += w


@dataclass
class Exploration:
    """The reachable states of the encoding, breadth-first, with a shortest path to each."""
    states: Packed
    first_event: dict[int, tuple[State, int]]       # property index -> (state, path) of a shortest violation
    complete: bool
    stopped: str = ""                               # why it is not complete

    def path_to(self, s: State) -> tuple[State, list[int]]:
        """(the initial state, the path indexes) of a shortest schedule reaching s."""
        st = self.states
        i = st.index[st.codec.pack(*s)]
        steps: list[int] = []
        while st.parent[i] >= 0:
            steps.append(st.via[i])
            i = st.parent[i]
        return st[i], steps[::-1]


@dataclass
class ConcreteSystem:
    enc: Encoding
    index: dict[str, int]
    by_start: dict[tuple[int, int], list[tuple[int, Callable]]]   # (context, pc) -> (path index, step fn)
    events: dict[int, Callable]                                  # path index -> its checks, concretely
    pc_pos: list[int]

    @staticmethod
    def build(enc: Encoding) -> "ConcreteSystem":
        names = enc.vocab.names
        index = {f"{n}@0": i for i, n in enumerate(names)}
        pos = {n: i for i, n in enumerate(names)}
        by_start: dict[tuple[int, int], list[tuple[int, Callable]]] = {}
        events: dict[int, Callable] = {}
        for i, (ci, p) in enumerate(enc.paths):
            outs = [(pos[n], t) for n, t in p.updates.items()]
            # the guard as one conjunction, simplified: folds across its conjuncts
            fn = compile_fn(f"path{i}", index, z3.simplify(z3.And(p.guard)), outs)
            by_start.setdefault((ci, p.start), []).append((i, fn))
            if p.events:
                events[i] = compile_fn(f"events{i}", index, None, list(p.events))
        pc_pos = [pos[enc.vocab.pc(c)] for c in enc.vocab.contexts]
        return ConcreteSystem(enc, index, by_start, events, pc_pos)

    def packed_size(self) -> int:
        """Bytes of one packed state."""
        v = self.enc.vocab
        return Packed([v.widths[n] for n in v.names]).codec.size

    def initial(self) -> list[State]:
        s0 = self.enc.state(0)
        solver = make_solver()
        solver.add(self.enc.init(s0))
        terms = [s0[n] for n in self.enc.vocab.names]
        out = []
        while (r := check(solver)) is Sat.SAT:
            m = solver.model()
            vals = [m.eval(t, model_completion=True) for t in terms]
            out.append(tuple(v.as_long() for v in vals))
            solver.add(z3.Or([t != v for t, v in zip(terms, vals)]))
        if r is not Sat.UNSAT:   # no timeout here: "unknown" would silently lose initial states
            raise RuntimeError(f"the initial states could not be enumerated: {r}")
        return sorted(out)

    def successors(self, s: State):
        for ci, pos in enumerate(self.pc_pos):
            for i, fn in self.by_start.get((ci, s[pos]), ()):
                upd = fn(s)
                if upd is None:
                    continue
                t = list(s)
                for j, val in upd:
                    t[j] = val
                yield i, t

    def failed_checks(self, i: int, s: State) -> list[int]:
        """The properties whose check fails when path i runs from s."""
        fn = self.events.get(i)
        return [prop for prop, ok in fn(s) if not ok] if fn is not None else []

    def explore(self, max_states: int = 2_000_000, timeout_s: float | None = None,
                progress: Callable[[int], None] | None = None,
                watch: Callable[[int, State, bool, dict], bool] | None = None) -> Exploration:
        """Breadth-first. `watch(r, state, stuck, first_events)` sees each state as
        it is expanded, in order, with the running contexts that had no enabled
        path there (only those can be blocked: the deadlock test looks at them
        alone); when it returns True (every property it watches is decided) the
        search stops, `stopped` = "decided"."""
        t0 = time.monotonic()
        v = self.enc.vocab
        st = Packed([v.widths[n] for n in v.names])
        pack, unpack = st.codec.pack, st.codec.unpack
        for s in self.initial():
            st.add(pack(*s), -1, -1)
        first: dict[int, tuple[State, int]] = {}
        status = [self.index[f"{v.status(c)}@0"] for c in v.contexts]
        owner = [ci for ci, _ in self.enc.paths]
        done = 0
        while done < len(st):
            if done % 2_000 == 1999:
                if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                    return Exploration(st, first, complete=False, stopped=f"timeout of {timeout_s:g} s "
                                       f"reached after {len(st):,} states")
                if progress is not None:
                    progress(len(st))
            s = unpack(st.items[done])
            moved = set()
            for i, t in self.successors(s):
                moved.add(owner[i])
                if i in self.events:
                    for prop in self.failed_checks(i, s):
                        first.setdefault(prop, (s, i))
                packed = pack(*t)
                if packed not in st.index:
                    if len(st) >= max_states:
                        return Exploration(st, first, complete=False,
                                           stopped=f"state limit of {max_states:,} reached")
                    st.add(packed, done, i)
            done += 1
            st.expanded = done
            if watch is not None and watch(done - 1, s, [c for c, pos in enumerate(status)
                                                         if s[pos] == RUN and c not in moved], first):
                return Exploration(st, first, complete=False, stopped="decided")
        return Exploration(st, first, complete=True)

    def deadlock_fn(self) -> Callable[[State, Iterable[int] | None], bool]:
        """NOTE(deadlock), concretely: the greatest set of blocked contexts that wait
        only on each other or on finished actors is not empty. `dead(s, among)`
        looks for the blocked ones among `among` (every context when None): one
        compiled function per context, asked only for those."""
        enc, v = self.enc, self.enc.vocab
        s0 = enc.state(0)
        k = len(v.contexts)
        fns = []
        for b in enc.blocks:
            blocked, waits = b.blocked(s0)
            outs: list[tuple[int, z3.ExprRef]] = [(-1, z3.simplify(blocked))]
            outs += [(o.index, z3.simplify(w)) for o in v.contexts if (w := waits.get(o.index)) is not None]
            fns.append(compile_fn(f"blocked{b.c.index}", self.index, None, outs))
        status = [self.index[f"{v.status(c)}@0"] for c in v.contexts]

        def dead(s: State, among: Iterable[int] | None = None) -> bool:
            on: dict[int, list[int]] = {}
            for c in range(k) if among is None else among:
                vals = fns[c](s)
                if vals[0][1]:
                    on[c] = [o for o, w in vals[1:] if w]
            changed = True
            while changed and on:
                changed = False
                for c in sorted(on):
                    if any(o not in on and s[status[o]] != DONE for o in on[c]):
                        del on[c]
                        changed = True
            return bool(on)
        return dead
