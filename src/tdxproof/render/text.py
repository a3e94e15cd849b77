"""Human-readable verdicts and kernel-style interleaving tables."""

from __future__ import annotations

import textwrap

from tdxproof.render.report import render_report
from tdxproof.render.table import render_table
from tdxproof.results import PropertyResult, RunResult, Trace, Verdict, cpu_name

COL = 96


def verdict_words(r: PropertyResult) -> str:
    """The fixed user vocabulary (house style §0.8)."""
    match r.verdict:
        case Verdict.PROVED:
            # for this N, every depth; the lemmas re-checked on the plain encoding.
            # cpus 0: for every N, by a cutoff (engines/cutoff.py)
            if r.cpus == 0 and r.proof and r.engine == "views":
                return f"proved (every N >= 2: {r.reason})"
            if r.cpus == 0 and r.proof:
                return f"proved (every N >= 2: {r.reason}, {r.proof.lemmas:,} lemma templates)"
            if r.proof and r.reason and r.reason.startswith(f"N={r.cpus}: one encoding"):
                # lift's symbolic route: proved for every N the one encoding covers
                return f"proved (N={r.cpus}, and every N=2..127 with it: {r.proof.lemmas:,} lemma templates)"
            return f"proved (N={r.cpus}, {r.proof.lemmas:,} lemmas)" if r.proof else "proved"
        case Verdict.HOLDS_UP_TO_DEPTH:
            return f"holds up to depth {r.depth}"
        case Verdict.HOLDS_EXHAUSTIVE:
            return f"holds (exhaustive, N={r.cpus})"
        case Verdict.HOLDS_STATIC:
            if r.kind == "lockdep":
                return "holds (static, lock graph)"
            # an event shown on every code path (engines/lockgraph.py, check_recursive_read)
            return f"holds (static, every N: {r.reason})" if r.reason else "holds (static, call graph)"
        case Verdict.VIOLATED:
            if r.schedule is None:
                return "violated (lock graph)" if r.kind == "lockdep" else "violated (call chain)"
            return f"violated ({len(r.schedule)} steps{'; ' + r.reason if r.reason else ''})"
        case Verdict.COVERED:
            if r.schedule is None:
                return "covered"
            return f"covered ({len(r.schedule)} steps{'; ' + r.reason if r.reason else ''})"
        case Verdict.UNREACHABLE:
            if r.proof is not None:
                return f"unreachable (proved, N={r.cpus}, {r.proof.lemmas:,} lemmas)"
            return f"unreachable (exhaustive, N={r.cpus})"
        case Verdict.UNKNOWN:
            return f"unknown ({r.reason})"
    raise AssertionError(r.verdict)


def expect_words(r: PropertyResult) -> str:
    ok = r.meets_expectation
    if r.expected is None:
        return ""
    if ok is None:
        return f"expect {r.expected}: undecided"
    return f"expect {r.expected}: {'ok' if ok else 'MISMATCH'}"


def _n(k: int, what: str) -> str:
    return f"{k:,} {what}{'' if k == 1 else 's'}"


def render_summary(run: RunResult, *, engine_note: str = "") -> str:
    lines = [f"{run.policy}: {run.cpus} CPUs, engine {run.engine}{engine_note}"]
    if run.stats.get("every_n"):
        lines[0] = (f"{run.policy}: every N >= 2 (--cpus any), engine {run.engine}: each N searched "
                    f"exhaustively, N=2..{run.cpus}")
        lines.append(f"explored {run.states:,} states in all; a violation is shown at the smallest N")
        st = run.stats
        proved = "templates" in st and "cutoff" in st
        if proved:
            parts = ", ".join(f"{v} {k}" for k, v in st["cutoff_parts"].items() if v)
            how = (f"checked once with Z3 on one encoding for N=2..{st['symbolic_upto']} (N symbolic, "
                   f"{st['symbolic_paths']:,} block paths, {st['symbolic_seconds']} s); the cutoff "
                   f"N={st['cutoff']} carries it to every N" if st.get("method") == "symbolic" else
                   f"checked with Z3 at N=2..{st['cutoff']}; the cutoff N={st['cutoff']} is the most CPUs a "
                   "counterexample needs")
            lines.append(f"for every N: {st['templates']:,} lemma templates (\"for all CPUs c < d\") learned at "
                         f"N={st['learned_at']}, {how} ({parts}; docs/every-n.md)")
        if "views_parts" in st:
            closed = "views_why" not in st or "breaks every" in st["views_why"]
            lines.append(f"for every N: the view fixpoint {'closed' if closed else 'stopped'} after "
                         f"{st['views_items']:,} (named part, classes) stepped, {st['views_parts']:,} named parts, "
                         f"{st['views']:,} views, {st['views_seconds']} s"
                         + (f", re-checked in {st['views_recheck_seconds']} s" if 'views_recheck_seconds' in st
                            else "") + (f": {st['views_why'].removeprefix('the view fixpoint did not close: ')}"
                                        if not closed else "") + " (docs/every-n.md, \"Views of one CPU\")")
        elif st.get("views_why"):
            lines.append(f"for every N: no view fixpoint, {st['views_why']}")
        if st.get("every_n_why"):
            why = st["every_n_why"].removeprefix("no proof for every N: ")
            lines.append(f"for every N: {'the rest have ' if proved else ''}no proof, {why} (docs/every-n.md)")

    elif run.engine in ("explicit", "compiled"):
        stopped = run.stats.get("stopped", "")
        done = ("complete" if run.complete else "stopped: every selected property has its verdict"
                if stopped == "decided" else f"incomplete: {stopped or 'state limit'}")
        sym = run.stats.get("symmetry", "")
        if sym and not sym.startswith("not "):
            lines.append(f"explored {run.states:,} states, one per orbit under {sym} ({done}; docs/symmetry.md)")
        else:
            lines.append(f"explored {run.states:,} states{' of the encoding' if run.engine == 'compiled' else ''} "
                         f"({done})")
            if sym:
                lines.append(f"symmetry: {sym}; searched every state")
    if run.engine == "kind" and "lemmas" in run.stats:
        lines.append(f"inductive invariant of {run.stats['lemmas']:,} lemmas, learned against the "
                     f"{run.states:,} reachable states of the encoding ({_n(run.stats['blocked'], 'state')} "
                     f"blocked, {_n(run.stats['calls'], 'solver call')}); re-checked on the plain encoding")
    if run.engine == "lift" and "symbolic_paths" in run.stats and "lemmas" not in run.stats:
        st = run.stats
        lines.append(f"{st['symbolic_templates']:,} lemma templates lifted from the lemmas of N={st['learned_at']} "
                     f"({st['states_at_base']:,} reachable states there), inductive on one encoding for every "
                     f"N=2..127 (N symbolic, {st['symbolic_paths']:,} block paths, {st['symbolic_seconds']} s) and "
                     f"re-checked there; no state of N={run.cpus} enumerated, no encoding of N={run.cpus} built")
    if run.engine == "lift" and "lemmas" in run.stats:
        st = run.stats
        lines.append(f"inductive invariant of {st['lemmas']:,} lemmas at N={run.cpus}: {st['templates']:,} "
                     f"templates lifted from the lemmas of N={st['learned_at']} ({st['states_at_base']:,} "
                     f"reachable states there), {st['repairs']:,} added at N={run.cpus}; no state of "
                     f"N={run.cpus} enumerated; re-checked on the plain encoding")
    lines.append("")
    width = max((len(r.name) for r in run.results), default=10) + 2
    vw = max((len(verdict_words(r)) for r in run.results), default=10) + 2
    for r in run.results:
        lines.append(f"  {r.name:<{width}}{verdict_words(r):<{vw}}{expect_words(r)}".rstrip())
    return "\n".join(lines)


def render_proof(run: RunResult) -> str | None:
    """The invariant behind the proved verdicts (its first lines), once: every
    property kind proves in one run shares it."""
    proof = next((r.proof for r in run.results if r.proof is not None), None)
    if proof is None:
        return None
    return "\n".join([_rule(f"the inductive invariant ({proof.lemmas:,} lemmas; first lines)")]
                     + [f"  {line}" for line in proof.text])


def _rule(title: str) -> str:
    head = f"── {title} "
    return head + "─" * max(0, 78 - len(head))


def render_witness(r: PropertyResult, *, verbose: bool = False) -> str:
    title = {Verdict.VIOLATED: "violated", Verdict.COVERED: "covered"}.get(r.verdict, r.verdict.value)
    out = [_rule(f"{r.name}: {title}")]
    if r.doc:
        out.append(f"{r.name}: {r.doc}")
    if r.static is not None:
        out.append(render_static(r))
        return "\n".join(out)
    if r.trace is None:
        return "\n".join(out)
    out.append("")
    if r.trace.initially:
        out += [f"  initially: {x}" for x in r.trace.initially] + [""]
    out.append(render_steps(r.trace) if verbose else render_table(r.trace))
    if not verbose:
        shown = sum(1 for row in r.trace.rows if row.key)
        out.append(f"  ({shown} of {len(r.trace.rows)} steps shown; --verbose shows every statement)")
    if r.trace.report is not None:
        out.append("")
        out.extend(render_report(r.trace.report))
    return "\n".join(out)


def render_static(r: PropertyResult) -> str:
    """The call chain to the offending statement, outermost first, each link a call
    or a registration of a function pointer (run later by whoever calls it)."""
    w = r.static
    assert w is not None
    if w.report:
        return "\n".join(["", f"  {w.chain[-1]}() {w.what}, at {w.span}", ""] + [f"  {x}" for x in w.report])
    lines = ["", f"  {w.chain[-1]}() {w.what}, at {w.span}"]
    if w.text:
        lines.append(f"      {w.text}")
    if w.runs:
        lines.append(f"  run by: {', '.join(w.runs)}")
    lines.append("  reached from:")
    lines.append(f"    {w.entry or w.chain[0]}")
    for depth, (name, how) in enumerate(zip(w.chain[1:], w.links or ("calls",) * (len(w.chain) - 1))):
        mark = "" if how == "calls" else f"  <- {how}"
        lines.append("    " + " " * (depth + 1) + f"{name}(){mark}")
    return "\n".join(lines)


def render_steps(trace: Trace) -> str:
    """--verbose: every transition, every statement, with its number."""
    lines = []
    for row in trace.rows:
        lines.append(f"{row.step:>4}  {trace.title(row.context)} ({cpu_name(row.cpu)})")
        for fn, text in row.statements:
            lines.extend("        " + x for x in _wrap(f"{fn}: {text}"))
        for c in row.changes:
            lines.extend("          " + x for x in _wrap(c))
        if row.violation:
            lines.append(f"          {row.violation}")
        if row.waits:
            lines.extend("          .. " + x for x in _wrap(row.waits))
    return "\n".join(lines)


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, COL, subsequent_indent="    ", break_long_words=True) or [""]
