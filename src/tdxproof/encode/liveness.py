"""Dead locals forgotten at block boundaries, as the reference interpreter does.

A context's local that no later block of that context reads before writing it
is set to 0 at the end of the block, so that states differing only in stale
values are one state. The reference semantics does the same (interp/step.py,
with its own liveness over its own code); here the analysis is computed from
the encoding's block paths themselves, so it needs no second reading of the IR:

- a path reads the state variables that occur in its guard, its update terms
  and its check conditions;
- it must-writes a local when its update term for that local does not mention
  the local's old value;
- the block-level control flow is `start` -> the program counters the path may
  set (the constants in its pc term; a non-constant term: every node).

An update that keeps a variable's old value on one branch (`If(c, v, old)`,
e.g. a kthread's locals written only when it is the one being called) does not
read it there. A task waiting to acquire a lock is seen by the others through
its lock slot (`blocked()`: "context o is at acquire node m and its slot holds
this lock"), so that slot is live at m. The deadlock condition reads only those
slots and a blocked context's own locals at its blocking node, which the path
that would proceed from there reads too. Any other local that another
context's path or a property may read is never forgotten. Sound
by construction: a local is only zeroed where every continuation of its context
writes it before reading it.
"""

from __future__ import annotations

import z3

from tdxproof.encode.symbolic import Path
from tdxproof.encode.vocab import NO_PC, PCW, Vocab, bv
from tdxproof.encode import z3raw
from tdxproof.encode.z3raw import const_names


def _names(terms: list[z3.ExprRef], by_const: dict[str, str], memo: dict | None = None) -> set[str]:
    """The state variables (step-0 names) that occur in `terms`. Z3 shares equal
    terms, and paths share their big guards: `memo` remembers each by its id."""
    if memo is not None:
        out = set()
        for e in terms:
            k = e.get_id()
            got = memo.get(k)
            if got is None:
                got = memo[k] = frozenset(_names([e], by_const))
            out |= got
        return out
    out: set[str] = set()
    for e in terms:
        out |= {n for c in const_names(e) if (n := by_const.get(c)) is not None}
    return out


def _reads(name: str, term: z3.ExprRef, by_const: dict[str, str], memo: dict) -> tuple[set[str], bool]:
    """What the update `name := term` reads, and whether it always writes (no
    branch keeps the old value)."""
    ctx = term.ctx_ref()

    def names(a) -> frozenset[str]:
        k = z3raw.ID(ctx, a)
        got = memo.get(k)
        if got is None:
            got = memo[k] = frozenset(n for c in z3raw.const_names_raw(ctx, a) if (n := by_const.get(c)) is not None)
        return got

    def walk(a) -> tuple[set[str], bool]:
        c = z3raw.name_of(ctx, a)
        if c is not None and by_const.get(c) == name:
            return set(), False
        if z3raw.is_ite(ctx, a):
            ra, wa = walk(z3raw.ARG(ctx, a, 1))
            rb, wb = walk(z3raw.ARG(ctx, a, 2))
            return names(z3raw.ARG(ctx, a, 0)) | ra | rb, wa and wb
        return set(names(a)), True
    return walk(term.as_ast())


def _pc_values(term: z3.ExprRef) -> set[int] | None:
    """The program counters a pc term may take: its PCW-wide constants, if every
    leaf of its `If` tree is one; None when it depends on anything else."""
    if z3.is_bv_value(term):
        return {term.as_long()}
    if z3.is_app_of(term, z3.Z3_OP_ITE):
        a, b = _pc_values(term.arg(1)), _pc_values(term.arg(2))
        return None if a is None or b is None else a | b
    return None


def forget_dead_locals(vocab: Vocab, paths: list[tuple[int, Path]], s0: dict[str, z3.ExprRef],
                       outside: list[z3.ExprRef]) -> list[tuple[int, Path]]:
    """`paths` with `local := 0` added where a context's local is dead after the
    block. `outside`: formulas over step 0 that read the state from no context
    (the deadlock condition, the properties)."""
    by_const = {s0[n].decl().name(): n for n in vocab.names}
    owner: dict[str, int] = {}
    for c in vocab.contexts:
        for k in range(c.auto.nlocals):
            owner[vocab.local(c, k)] = c.index
    # a waiting task's lock slot, read by the others at its acquire node only
    seeds: dict[int, dict[int, set[str]]] = {c.index: {} for c in vocab.contexts}
    slots: set[str] = set()
    for c in vocab.contexts:
        for m in c.auto.nodes:
            if m.acquire is not None:
                slot = vocab.local(c, m.acquire[1])
                seeds[c.index].setdefault(m.id, set()).add(slot)
                slots.add(slot)
    memo: dict[int, frozenset[str]] = {}
    external = {n for n in _names(outside, by_const) if n in owner and n not in slots}
    info = []
    for ci, p in paths:
        reads = _names(list(p.guard) + [cond for _, cond in p.events], by_const, memo)
        writes = set()
        for n, term in p.updates.items():
            r, always = _reads(n, term, by_const, memo)
            reads |= r
            if always and owner.get(n) == ci:
                writes.add(n)
        external |= {n for n in reads if n in owner and owner[n] != ci and n not in slots}
        own_reads = {n for n in reads if owner.get(n) == ci}
        pc = vocab.pc(vocab.contexts[ci])
        targets = _pc_values(p.updates[pc]) if pc in p.updates else {p.start}
        info.append((own_reads, writes, targets))
    # live[c][pc]: locals of c read before written from block boundary pc on
    live = seeds
    every = {c.index: {vocab.local(c, k) for k in range(c.auto.nlocals)} for c in vocab.contexts}
    changed = True
    while changed:
        changed = False
        for (ci, p), (reads, writes, targets) in zip(paths, info):
            mine = live[ci]
            after = _after(mine, targets, every[ci])
            new = reads | (after - writes)
            if not new <= mine.get(p.start, set()):
                mine[p.start] = mine.get(p.start, set()) | new
                changed = True
    out = []
    for (ci, p), (_, _, targets) in zip(paths, info):
        c = vocab.contexts[ci]
        keep = _after(live[ci], targets, every[ci]) | external
        dead = [vocab.local(c, k) for k in range(c.auto.nlocals) if vocab.local(c, k) not in keep]
        if not dead:
            out.append((ci, p))
            continue
        updates = dict(p.updates)
        for n in dead:
            updates[n] = bv(0)
        out.append((ci, Path(p.start, p.guard, updates, p.events, p.labels)))
    return out


def _after(live: dict[int, set[str]], targets: set[int] | None, every: set[str]) -> set[str]:
    """The locals live at the block boundaries a path may end at (every local of
    the context when the target is not known)."""
    if targets is None:
        return set(every)
    out: set[str] = set()
    for t in targets:
        if t != NO_PC and t < (1 << PCW):
            out |= live.get(t, set())
    return out
