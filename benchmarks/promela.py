"""tdxproof beside SPIN, on the same state graph.

    python benchmarks/promela.py POLICY:N [POLICY:N ...]      # one Markdown row per engine and run
    python benchmarks/promela.py --only spin POLICY:N ...     # SPIN's rows alone (or: --only tdxproof)
    python benchmarks/promela.py --emit POLICY:N DIR          # just the model: DIR/model.pml, DIR/steps.c
    TDX_SPIN_OPT=-O1 python benchmarks/promela.py ...         # gcc's optimisation level (default -O0)
    TDX_SPIN_CFLAGS=-DCOLLAPSE python benchmarks/promela.py ...   # more of pan's options

Why generate the Promela model rather than write one by hand: a hand-written model
of a design is a second model, with its own granularity and its own bugs, and a
ratio of two searches over different graphs measures the models as much as the
checkers. This exporter writes the *encoding* of the policy (encode/system.py: the
block paths Z3 sees) as Promela: one process per context, one location per
program counter (a kthread, whose pc its waker resets, is one loop over its
steps instead), one `d_step` per block path, its guard and updates in C
(`steps.c`, included into SPIN's pan.c). So SPIN and tdxproof search the same
states with the same transitions: SPIN's count is tdxproof's plus one (the
state before `init` starts the processes), and the violated properties are the
same (both are printed; tests/engines/test_promela.py checks it). SPIN is not a
better judge of the semantics here, only of speed.

What the model checks, in one exhaustive run (as SPIN users check a design: every
safety property at once): each step's checks (`fires_in_steps` properties and
run-time model errors), every invariant in every state, and the deadlock
condition (NOTE(deadlock): a non-empty set of blocked contexts that wait only on
each other or on finished actors), computed after each step. A violation is
printed once per property by embedded C and the search goes on, so the time is
that of the whole state space, like tdxproof's full verdict. Cover properties
are not checked (a reachability goal, not a safety property); every location is
an end state, since deadlocks are the model's own check.

SPIN settings: `spin -a`, `gcc -O0 -DSAFETY -DNOREDUCE` (partial-order reduction
off: tdxproof's blocks already merge the invisible steps, and SPIN cannot see
through embedded C), `./pan -m5000000 -w24` (`-w27` from N=4); depth-first,
SPIN's default. `-O0`: the steps' C is megabytes, and -O1 halves the search but
compiles 5-7x longer (RESULTS run 14). The seconds do not include the export.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import z3

from tdxproof.encode.concrete import ConcreteSystem, _Compiler
from tdxproof.encode.system import Encoding, encode
from tdxproof.encode.vocab import DONE, MODEL_ERROR
from tdxproof.encode.z3raw import ARG, AST_KIND, DECL, DECL_NAME, INT_PARAM, KIND, NUMERAL, SYMBOL
from tdxproof.model import ir
from tdxproof.model.lower import lower_policy

ROOT = Path(__file__).resolve().parent.parent
CFLAGS = os.environ.get("TDX_SPIN_CFLAGS", "").split()   # e.g. -DCOLLAPSE: lossless state compression
OPT = os.environ.get("TDX_SPIN_OPT", "-O0")   # gcc's: the least total time here (RESULTS run 14)

_BIN = {z3.Z3_OP_BAND: "&", z3.Z3_OP_BOR: "|", z3.Z3_OP_BXOR: "^", z3.Z3_OP_ULEQ: "<=", z3.Z3_OP_ULT: "<",
        z3.Z3_OP_UGEQ: ">=", z3.Z3_OP_UGT: ">", z3.Z3_OP_EQ: "==", z3.Z3_OP_XOR: "!="}
_SIGNED = {z3.Z3_OP_SLEQ: "<=", z3.Z3_OP_SLT: "<", z3.Z3_OP_SGEQ: ">=", z3.Z3_OP_SGT: ">"}
_ARITH = {z3.Z3_OP_BADD: "+", z3.Z3_OP_BSUB: "-", z3.Z3_OP_BMUL: "*"}


class _C(_Compiler):
    """Z3 terms -> C over SPIN's state vector (`now.x`): concrete.py's compiler
    (shared subterms in temporaries: inlining a DAG into one expression can grow
    it exponentially) with C for its Python. Values are unsigned below 2**width;
    C evaluates in ints, so arithmetic is masked."""

    TEMP = "int {name} = {out}"

    def statements(self, terms: list[z3.ExprRef]) -> tuple[list[str], list[str]]:
        """(declarations of temporaries, one expression per term)."""
        self.lines, self.memo = [], {}
        exprs = [self.term(e) for e in terms]
        return self.lines, exprs

    def _term(self, a, n: int) -> str:
        ctx = self.ctx
        if AST_KIND(ctx, a) == z3.Z3_NUMERAL_AST:
            return NUMERAL(ctx, a).decode()
        d = DECL(ctx, a)
        k = KIND(ctx, d)
        if k == z3.Z3_OP_TRUE:
            return "1"
        if k == z3.Z3_OP_FALSE:
            return "0"
        if k == z3.Z3_OP_UNINTERPRETED and n == 0:
            return self.index[SYMBOL(ctx, DECL_NAME(ctx, d)).decode()]
        kids = [ARG(ctx, a, i) for i in range(n)]
        args = [self._walk(x) for x in kids]
        mask = (1 << self._width(a)) - 1
        if k in _BIN and n == 2:
            return f"({args[0]} {_BIN[k]} {args[1]})"
        if k in _SIGNED:
            w = self._width(kids[0])
            s = [self._ite(f"{x} >= {1 << (w - 1)}", f"{x} - {1 << w}", x) for x in args]
            return f"({s[0]} {_SIGNED[k]} {s[1]})"
        if k in _ARITH:
            return "((" + f" {_ARITH[k]} ".join(args) + f") & {mask})"
        if k in (z3.Z3_OP_BAND, z3.Z3_OP_BOR):
            return "(" + (" & " if k == z3.Z3_OP_BAND else " | ").join(args) + ")"
        if k == z3.Z3_OP_NOT:
            return f"(!{args[0]})"
        if k == z3.Z3_OP_BNEG:
            return f"((-{args[0]}) & {mask})"
        if k == z3.Z3_OP_BNOT:
            return f"((~{args[0]}) & {mask})"
        if k == z3.Z3_OP_ZERO_EXT:
            return args[0]
        if k == z3.Z3_OP_AND:
            return "(" + " && ".join(args) + ")" if args else "1"
        if k == z3.Z3_OP_OR:
            return "(" + " || ".join(args) + ")" if args else "0"
        if k == z3.Z3_OP_IMPLIES:
            return f"(!{args[0]} || {args[1]})"
        if k == z3.Z3_OP_DISTINCT:
            return "(" + " && ".join(f"{x} != {y}" for i, x in enumerate(args) for y in args[i + 1:]) + ")"
        if k == z3.Z3_OP_ITE:
            return self._ite(*args)
        if k == z3.Z3_OP_EXTRACT:
            hi, lo = INT_PARAM(ctx, d, 0), INT_PARAM(ctx, d, 1)
            return f"(({args[0]} >> {lo}) & {(1 << (hi - lo + 1)) - 1})"
        if k == z3.Z3_OP_CONCAT:
            out, shift = [], 0
            for x, t in reversed(list(zip(kids, args))):
                out.append(f"({t} << {shift})")
                shift += self._width(x)
            return "(" + " | ".join(out) + ")"
        if k == z3.Z3_OP_SIGN_EXT:
            w = self._width(kids[0])
            return self._ite(f"{args[0]} >= {1 << (w - 1)}", f"{args[0]} + {mask - ((1 << w) - 1)}", args[0])
        raise NotImplementedError(f"C for {z3.FuncDeclRef(d, z3.main_ctx())}")

    def _ite(self, c: str, a: str, b: str) -> str:
        return f"({c} ? {a} : {b})"


def _ident(name: str) -> str:
    return "v_" + re.sub(r"[^A-Za-z0-9]", "_", name)


def export(model: ir.Model, n: int) -> tuple[str, str]:
    """(the Promela model of the policy's encoding at N=n, the C file `steps.c` it
    includes)."""
    enc: Encoding = encode(model, n)
    v = enc.vocab
    idents: dict[str, str] = {}
    for name in v.names:
        ident = _ident(name)
        while ident in idents.values():   # `a[1]` and `a_1_` both exist: keep them apart
            ident += "_"
        idents[name] = ident
    s0 = enc.state(0)
    props = [p for p in model.properties if p.kind not in ir.STATIC_KINDS and p.kind is not ir.PropKind.COVER]
    # a run-time model error (a counter past its range) is a violation too, as in every engine
    number = {p.name: k for k, p in enumerate(props)} | {"model-error": len(props)}
    out = [f"/* {model.path} at N={n}: generated by benchmarks/promela.py from tdxproof's encoding */",
           "c_decl { int tdx_seen[64]; }"]
    for name in v.names:
        w = v.widths[name]
        out.append(f"unsigned {idents[name]} : {w};   /* {name} */")
    cc = _C({f"{name}@0": f"now.{idents[name]}" for name in v.names})
    assert len(number) <= 64

    def report(prop: str) -> str:
        """Print the property's name the first time it fails (the search goes on)."""
        k = number[prop]
        return f"if (!tdx_seen[{k}]) {{ tdx_seen[{k}] = 1; printf(\"tdxproof-violated: {prop}\\n\"); }}"

    # the state checks, after every step and in the initial states: one C function
    # (a Promela `inline` would be copied into each of the thousands of steps)
    terms: list[z3.ExprRef] = []
    state_props: list[str] = []
    for p in props:
        if p.fires_in_steps or p.kind is ir.PropKind.DEADLOCK:
            continue
        f = enc.expr(p.expr, s0)
        if p.observe is ir.Observe.QUIESCENT:
            f = z3.Implies(enc.quiescent(s0), f)
        state_props.append(p.name)
        terms.append(z3.simplify(f))
    dead = next((p.name for p in props if p.kind is ir.PropKind.DEADLOCK), None)
    leave: list[tuple[int, int, int]] = []
    if dead is not None:
        assert all(b.c.index == i for i, b in enumerate(enc.blocks))
        base = len(terms)
        blocked = [b.blocked(s0) for b in enc.blocks]
        terms += [z3.simplify(x) for x, _ in blocked]
        for b, (_, waits) in zip(enc.blocks, blocked):
            for o in v.contexts:
                w = waits.get(o.index)
                if w is not None and not z3.is_false(w := z3.simplify(w)):
                    leave.append((b.c.index, o.index, len(terms)))
                    terms.append(w)
    lines, exprs = cc.statements(terms)
    checks = ["void tdx_checks(void) {"] + [f"  {x};" for x in lines]
    checks += [f"  if (!{x}) {{ {report(name)} }}" for name, x in zip(state_props, exprs)]
    if dead is not None:
        # NOTE(deadlock): drop the blocked contexts that wait on one outside the set
        # and not finished, until nothing changes; any left is a deadlock
        k = len(v.contexts)
        checks.append(f"  int on[{k}], ch = 1, i;")
        checks += [f"  on[{i}] = {exprs[base + i]};" for i in range(k)]
        checks.append("  while (ch) {")
        checks.append("    ch = 0;")
        for c in v.contexts:
            why = [f"({exprs[t]} && !on[{o}] && now.{idents[v.status(v.contexts[o])]} != {DONE})"
                   for ci, o, t in leave if ci == c.index]
            if why:
                checks.append(f"    if (on[{c.index}] && ({' || '.join(why)})) {{ on[{c.index}] = 0; ch = 1; }}")
        checks.append("  }")
        checks.append(f"  for (i = 0; i < {k}; i++) if (on[i]) {{ {report(dead)} break; }}")
    checks.append("}")
    # initial states: enumerated, as the compiled engine does
    inits = ConcreteSystem.build(enc).initial()
    # one process per context, one location per program counter (SPIN looks only
    # at the steps of each process's location, as tdxproof looks at each
    # context's pc), one d_step per block path from it: its guard, then the step's
    # checks on the state before it, the simultaneous updates, the state checks
    # after; as C functions (the guards share subterms that Promela expressions
    # would repeat). A context's guards share conjuncts (it runs; no context
    # with interrupts off excludes it): one function of the context each.
    pos = {name: k for k, name in enumerate(v.names)}
    by_ctx: dict[int, list[tuple[int, object]]] = {}
    for i, (ci, p) in enumerate(enc.paths):
        by_ctx.setdefault(ci, []).append((i, p))
    # a kthread's program counter is reset by the context that wakes it, and a
    # `repeat K` actor's last step goes back to its entry or ends, by its count:
    # such a context is one loop over its steps, each testing the pc (first: it is cheap)
    woken = {o.index for ci, p in enc.paths for o in v.contexts if o.index != ci and v.pc(o) in p.updates}
    woken |= {ci for ci, p in enc.paths if not z3.is_bv_value(z3.simplify(p.updates[v.pc(v.contexts[ci])]))}
    procs: list[str] = []
    for c in v.contexts:
        paths = by_ctx.get(c.index, [])
        conj = {}
        for i, p in paths:     # the guard's conjuncts, each simplified by the encoder
            conj[i] = [y for x in p.guard for y in (x.children() if z3.is_and(x) else [x])]
        common = set.intersection(*({x.get_id() for x in cs} for cs in conj.values())) if conj else set()
        shared = [x for x in next(iter(conj.values()), []) if x.get_id() in common]
        lines, (g,) = cc.statements([z3.And(shared) if shared else z3.BoolVal(True)])
        checks += [f"int c{c.index}(void) {{"] + [f"  {x};" for x in lines] + [f"  return {g};", "}"]
        starts: dict[int, list[str]] = {}
        entry = {st[pos[v.pc(c)]] for st in inits}
        assert len(entry) == 1, f"{c.name} starts at several program counters"
        targets = set(entry)
        for i, p in paths:
            rest = [x for x in conj[i] if x.get_id() not in common]
            if any(z3.is_false(x) for x in rest):
                continue
            lines, (g,) = cc.statements([z3.And(rest) if rest else z3.BoolVal(True)])
            checks += [f"int g{i}(void) {{"] + [f"  {x};" for x in lines] + [f"  return {g};", "}"]
            items = [("model-error" if prop == MODEL_ERROR else model.properties[prop].name, cond)
                     for prop, cond in p.events]
            items = [(name, cond) for name, cond in items if name in number]
            names = list(p.updates)
            lines, exprs = cc.statements([cond for _, cond in items] + [p.updates[name] for name in names])
            body = [f"  {x};" for x in lines]
            body += [f"  if (!{x}) {{ {report(name)} }}" for (name, _), x in zip(items, exprs)]
            news = exprs[len(items):]
            body += [f"  int n{j} = {x};" for j, x in enumerate(news)]   # simultaneous: read all, then write
            body += [f"  now.{idents[name]} = n{j};" for j, name in enumerate(names)]
            checks += [f"void u{i}(void) {{"] + body + ["  tdx_checks();", "}"]
            to = z3.simplify(p.updates[v.pc(c)])
            to = to.as_long() if c.index not in woken else None   # constant: the encoding inlines every call
            targets.add(to)
            # `(g())`: SPIN takes a bare call in c_expr for a side effect
            step = f"d_step {{ c_expr {{ (now.{idents[v.pc(c)]} == {p.start} && c{c.index}() && g{i}()) }} " \
                   f"-> c_code {{ u{i}(); }} }}"
            starts.setdefault(p.start, []).append(f"  :: {step}" if c.index in woken else f"  :: {step}; goto endL{to}")
        procs.append(f"proctype P{c.index}() {{   /* {c.name} */")
        if c.index in woken:
            procs += ["endL:", "  do"] + [x for at in sorted(starts) for x in starts[at]] + ["  od", "}"]
            continue
        procs.append(f"  goto endL{next(iter(entry))};")
        # every location is a valid end state: deadlocks are the model's own check
        for at in sorted(set(starts) | targets):
            if at in starts:
                procs += [f"endL{at}:", "  if"] + starts[at] + ["  fi;"]
            else:
                procs += [f"endL{at}:", "  false;"]
        procs.append("}")
    # SPIN limits the text of one c_code: the functions live in a file of their own
    # (and SPIN runs cpp on the model, so an #include would be expanded there):
    # a marker, replaced by the include in SPIN's output (see `spin()`)
    out += ["c_code {", "TDX_STEPS_C", "}"]
    out += procs
    out.append("init {")
    out.append("  atomic {")
    out.append("  if")
    for st in inits:
        out.append("  :: " + "; ".join([f"{idents[name]} = {val}" for name, val in zip(v.names, st) if val]
                                       + ["skip"]))
    out.append("  fi;")
    out.append("  c_code { tdx_checks(); };")
    out += [f"  run P{c.index}();" for c in v.contexts]
    out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n", "\n".join(checks) + "\n"


# what pan prints when it stops short of the whole graph (memory, stack, hash table)
_STOPS = ("out of memory", "MEMLIM bound", "search depth too small", "aborted", "Search not completed",
          "hash table full")


def spin(model: ir.Model, n: int) -> dict:
    """Export, compile and run; seconds are wall time of export excluded, SPIN's
    generation, gcc and the search included (each also given apart)."""
    text, steps = export(model, n)
    work = Path(tempfile.mkdtemp(prefix="tdxproof-spin-"))
    try:
        (work / "model.pml").write_text(text)
        (work / "steps.c").write_text(steps)
        t0 = time.monotonic()
        subprocess.run(["spin", "-a", "model.pml"], cwd=work, check=True, capture_output=True)
        pan = (work / "pan.c").read_text()
        (work / "pan.c").write_text(pan.replace("\nTDX_STEPS_C\n", '\n#include "steps.c"\n', 1))
        t1 = time.monotonic()
        subprocess.run(["gcc", OPT, "-DSAFETY", "-DNOREDUCE", "-DMEMLIM=20000", *CFLAGS, "-w", "-o", "pan", "pan.c"],
                       cwd=work, check=True, capture_output=True)
        t2 = time.monotonic()
        # the hash table: 2^24 slots for N <= 3, 2^27 for the millions of states beyond
        proc = subprocess.Popen(["./pan", "-m5000000", "-w24" if n <= 3 else "-w27"], cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        log = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        t3 = time.monotonic()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stored = re.search(r"(\S+) states, stored", log)     # pan prints %9.8g: 1.2345679e+08 past 10^8
    return {"seconds": t3 - t0, "spin": t1 - t0, "gcc": t2 - t1, "search": t3 - t2,
            "states": int(float(stored.group(1))) if stored else None, "mib": usage.ru_maxrss / 1024,
            "violated": sorted(set(re.findall(r"tdxproof-violated: (\S+)", log))),
            "stopped": next((ln.strip() for ln in log.splitlines() if any(x in ln for x in _STOPS)), None),
            "log": log}


def tdxproof(policy: str, n: int, extra: list[str]) -> dict:
    """One `tdxproof verify` process: its wall time and peak memory."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tdxproof", "verify", policy, "--cpus", str(n), "--format",
                             "json", *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):       # 0 holds, 1 violated; anything else is no verdict to compare
        raise SystemExit(f"tdxproof verify {policy} --cpus {n}: exit {code}")
    doc = json.loads(out)
    return {"seconds": secs, "states": doc.get("states") or 0, "mib": usage.ru_maxrss / 1024,
            "violated": sorted(r["name"] for r in doc["results"] if r["verdict"] == "violated"
                               and r["kind"] not in ("static", "lockdep"))}


def at(policy: str, n: int) -> ir.Model:
    """The policy lowered at N=n, as `tdxproof verify --cpus n` lowers it (per-CPU
    actors are expanded there)."""
    return lower_policy(policy, cpus=n)[0]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--emit"]:     # --emit POLICY:N DIR: model.pml and steps.c into DIR
        policy, n = argv[1].rsplit(":", 1)
        text, steps = export(at(policy, int(n)), int(n))
        Path(argv[2]).mkdir(parents=True, exist_ok=True)
        (Path(argv[2]) / "model.pml").write_text(text)
        (Path(argv[2]) / "steps.c").write_text(steps)
        return 0
    only = None
    if argv[:1] == ["--only"]:      # --only spin|tdxproof POLICY:N ...
        only, argv = argv[1], argv[2:]
    print("| policy | N | checker | seconds | of which search | states | peak MiB | violated |")
    print("|---|---|---|---|---|---|---|---|")
    for arg in argv:
        policy, n = arg.rsplit(":", 1)
        name = Path(policy).stem
        for label, extra in (("tdxproof", []), ("tdxproof --symmetry off", ["--symmetry", "off"])) * (only != "spin"):
            r = tdxproof(policy, int(n), extra)
            print(f"| {name} | {n} | {label} | {r['seconds']:.1f} | | {r['states']:,} | {r['mib']:.0f} | "
                  f"{', '.join(r['violated']) or '-'} |", flush=True)
        if only == "tdxproof":
            continue
        r = spin(at(policy, int(n)), int(n))
        stored = f"{r['states']:,}" + (f", stopped: {r['stopped']}" if r["stopped"] else "")
        print(f"| {name} | {n} | SPIN 6.5.2 {OPT} | {r['seconds']:.1f} (spin {r['spin']:.1f}, gcc {r['gcc']:.1f}) "
              f"| {r['search']:.1f} | {stored} | {r['mib']:.0f} | {', '.join(r['violated']) or '-'} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
