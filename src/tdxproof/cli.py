"""The command line. The only module that prints results or chooses exit codes.

Exit codes: 0 every selected property holds, 1 a property is violated, 2 bad
input or usage, 3 unknown (state limit without a verdict), 4 internal error,
130 interrupted.
"""

from __future__ import annotations

import os
from pathlib import Path
import sys
import time
import traceback
from dataclasses import replace

import click

from tdxproof.diagnostics import InternalError, PolicyError, render_text
from tdxproof.model.mutants import OPERATORS as MUTATION_OPERATORS
from tdxproof.results import ExitCode, Verdict, exit_code

EXIT_HELP = """\b
Exit codes:
  0    every selected property holds (proved, exhaustive or bounded)
  1    a property is violated
  2    bad input or usage
  3    unknown: no verdict within the limits
  4    internal error (a witness that does not replay is one)
  130  interrupted
"""


class UsageFailure(click.ClickException):
    exit_code = 2


@click.group(epilog=EXIT_HELP)
@click.version_option(package_name="tdxproof")
def cli() -> None:
    """tdxproof: check CPU-hotplug and locking protocols of the Linux kernel."""


class CpusType(click.ParamType):
    """`--cpus N` (1..64), or `any` for every N."""
    name = "N|any"

    def convert(self, value, param, ctx):
        if value == "any" or isinstance(value, int):
            return value
        try:
            n = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of CPUs nor `any`", param, ctx)
        if not 1 <= n <= 64:
            self.fail(f"{n} is not in the range 1..64", param, ctx)
        return n


# --symmetry auto: from this many CPUs (at 3 the group has two elements and the
# any-order search's own cost outweighs it; benchmarks/RESULTS.md run 12)
SYMMETRY_AUTO_CPUS = 4
# `--engine auto`: the exhaustive search up to this N (upstream-fixed at N=5: 157 s, 4.3 GiB
# with symmetry; N=6 does not fit this machine), past it nothing of N is enumerated
AUTO_EXPLICIT_CPUS = 5
AUTO_LEARN_AT = 3


def _lower(path: str, cpus: int | None):
    from tdxproof.model.lower import lower_policy

    model, loaded, warnings = lower_policy(path, cpus=cpus)
    if warnings:
        click.echo(render_text(warnings, loaded.sources), err=True)
    return model, loaded


@cli.command(epilog=EXIT_HELP)
@click.argument("policy", type=click.Path(dir_okay=False))
@click.option("--cpus", type=CpusType(), help="Number of CPUs (overrides the policy's `cpus`); `any`: every "
              "number (a task's own lock rules decided from the code; each N from 2 to the policy's `cpus` "
              "searched, a violation at the smallest N; what holds there proved for every N where a "
              "certificate re-checks, else unknown with the reason).")
@click.option("--property", "properties", multiple=True, metavar="NAME", help="Check only these properties.")
@click.option("--engine", type=click.Choice(["auto", "explicit", "compiled", "bmc", "kind", "lift", "views", "cutoff"]),
              default="auto",
              show_default=True,
              help="`explicit`: exhaustive search on the reference interpreter; `compiled`: the same "
                   "search over the encoding compiled to Python (the encoder's semantics, a "
                   "cross-check; every schedule replayed on the interpreter); `bmc`: bounded model "
                   "checking with Z3 (shortest violations up to --depth; a clean run says \"holds up to "
                   "depth k\", never \"proved\"); `kind`: an inductive invariant learned against the "
                   "reachable states, \"proved\" only once it re-checks (violations replayed as for the "
                   "others); `lift`: kind's lemmas learned at --learn-at CPUs, lifted to --cpus and proved "
                   "inductive there with Z3, without enumerating that N's states. `auto`: explicit up to "
                   f"{AUTO_EXPLICIT_CPUS} CPUs; past that no state of N is listed: N0 (--learn-at, default "
                   f"{AUTO_LEARN_AT}) is searched, its schedules replayed at N, and what holds there goes to lift. "
                   "With --cpus any, what holds at every N searched is proved by `views` (one finite fixpoint "
                   "of views of one CPU) and then `cutoff` (lemma templates checked up to a cutoff, the route "
                   "--certificate writes); `auto` tries both, in that order.")
@click.option("--learn-at", "learn_at", type=click.IntRange(1, 64), default=None,
              help="lift: the number of CPUs to learn lemmas at (default: the policy's `cpus`).")
@click.option("--certificate", "certificate", type=click.Path(dir_okay=False), default=None,
              help="kind, lift: write the certificate (the inductive lemmas, JSON) here.")
@click.option("--depth", type=click.IntRange(0, 10_000), default=30, show_default=True,
              help="bmc: the deepest schedule to look for, in blocks.")
@click.option("--timeout", type=click.FloatRange(0.1), default=None,
              help="explicit: seconds for the search; bmc, kind, lift: seconds per solver call, and for "
                   "kind's enumeration. What is undecided then is `unknown` (exit 3).")
@click.option("--max-states", type=click.IntRange(1), default=6_000_000, show_default=True,
              help="Stop the explicit search after this many states (verdicts become unknown).")
@click.option("--memory", "memory_gib", type=click.FloatRange(0.01), default=None,
              help="explicit, compiled: the memory budget in GiB (default: three quarters of the machine's; "
                   "compiled: 10 GiB of states); past it "
                   "the open verdicts are unknown (exit 3), never an out-of-memory kill.")
@click.option("--symmetry", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="explicit: keep one state per orbit under renaming the non-boot CPUs (docs/symmetry.md; "
                   "the same verdicts and shortest schedules, every schedule a real one, replayed). `auto`: "
                   f"on from {SYMMETRY_AUTO_CPUS} CPUs, where it pays; a policy that is not symmetric is "
                   "searched without it, and says why.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "itf", "md"]), default="text",
              show_default=True, help="text; json (docs/json-schema.md); itf (Apalache's Informal Trace "
                                      "Format, the witnesses); md (Markdown and Mermaid, for docs)")
@click.option("--verbose", is_flag=True, help="Show every statement of every step, not only kernel-level events.")
@click.option("--debug", is_flag=True, help="Show Python tracebacks of internal errors.")
def verify(policy: str, cpus: int | None, properties: tuple[str, ...], engine: str, learn_at: int | None,
           certificate: str | None, depth: int, timeout: float | None, max_states: int, memory_gib: float | None,
           symmetry: str, fmt: str, verbose: bool, debug: bool) -> None:
    """Check every property of POLICY; print a verdict for each and the shortest
    schedule that breaks each violated one."""
    memory = int(memory_gib * 2**30) if memory_gib is not None else None
    sys.exit(_run(lambda: _verify(policy, cpus, properties, engine, depth, timeout, max_states, fmt, verbose,
                                  certificate, memory, learn_at, symmetry), debug))


def _verify(policy: str, cpus: int | None, properties: tuple[str, ...], engine: str, depth: int,
            timeout: float | None, max_states: int, fmt: str, verbose: bool, certificate: str | None = None,
            memory: int | None = None, learn_at: int | None = None, symmetry: str = "auto") -> int:
    from tdxproof.render.json import render_json
    from tdxproof.render.text import render_proof, render_summary, render_witness

    if cpus == "any":
        if engine not in ("auto", "explicit", "views", "cutoff"):
            raise UsageFailure(f"--cpus any runs the explicit engine at each N and proves by `views` or "
                               f"`cutoff`, not `{engine}`")
        model, loaded = _lower(policy, None)
        _check_properties(model, properties)
        from tdxproof.engines.every_n import verify_every_n
        progress = _progress() if sys.stderr.isatty() else None
        from tdxproof.engines.explicit import ModelErrorAt
        try:
            run = verify_every_n(policy, model.cpus, properties=set(properties) or None, max_states=max_states,
                                 memory_budget=memory, progress=progress, timeout_s=timeout,
                                 say=_say() if progress is not None else None,
                                 routes=(engine,) if engine in ("views", "cutoff") else ("views", "cutoff"),
                                 certificate_out=(lambda c: Path(certificate).write_text(c.to_json() + "\n"))
                                 if certificate else None)
        except ModelErrorAt as exc:
            raise _model_error(exc, model, loaded, getattr(exc, "cpus", None)) from None
        finally:
            if progress is not None:
                click.echo("\r\033[K", nl=False, err=True)
        note = ""
    else:
        model, loaded = _lower(policy, cpus)
        run, note = _engine_run(model, loaded, cpus, properties, engine, depth, timeout, max_states, certificate,
                                memory, learn_at, symmetry)
    code = exit_code(run.results).value
    if run.stats.get("stopped", "").startswith("interrupted"):
        code = ExitCode.INTERRUPTED.value     # after printing what was decided before Ctrl-C
    try:
        if fmt == "json":
            click.echo(render_json(run))
        elif fmt == "itf":
            from tdxproof.render.itf import render_itf
            click.echo(render_itf(run))
        elif fmt == "md":
            from tdxproof.render.markdown import render_markdown
            click.echo(render_markdown(run))
        else:
            click.echo(render_summary(run, engine_note=note))
            for r in run.results:
                if r.verdict in (Verdict.VIOLATED,):
                    click.echo("")
                    click.echo(render_witness(r, verbose=verbose))
            if verbose and (proof := render_proof(run)) is not None:
                click.echo("")
                click.echo(proof)
    except BrokenPipeError:
        # the reader went away (`| head`): the verdict still decides the exit code
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _check_properties(model, properties: tuple[str, ...]) -> None:
    known = {p.name for p in model.properties}
    for name in properties:
        if name not in known:
            from tdxproof.diagnostics import did_you_mean
            hint = did_you_mean(name, known)
            raise UsageFailure(f"unknown property `{name}`" + (f"; {hint}" if hint else ""))


def _engine_run(model, loaded, cpus: int | None, properties: tuple[str, ...], engine: str, depth: int,
                timeout: float | None, max_states: int, certificate: str | None = None, memory: int | None = None,
                learn_at: int | None = None, symmetry: str = "auto"):
    """Run the chosen engine on the model; witnesses come back with their traces.
    A run-time model error is bad input (exit 2), in every engine."""
    from tdxproof.engines.explicit import ModelErrorAt, verify_explicit
    from tdxproof.engines.trace import attach_traces

    _check_properties(model, properties)
    if engine in ("views", "cutoff"):
        raise UsageFailure(f"`{engine}` proves a property for every number of CPUs: use it with --cpus any")
    progress = _progress() if sys.stderr.isatty() else None
    note = " (reference interpreter, exhaustive search)"
    if engine == "auto" and model.cpus > AUTO_EXPLICIT_CPUS:
        engine = "past"
    try:
        if engine == "past":
            # no state of N is listed: N0 searched, its schedules replayed at N, the rest proved at N by lift
            from tdxproof.engines.lift import verify_past_search
            from tdxproof.model.lower import lower_policy
            n = model.cpus
            small = lower_policy(model.path, cpus=learn_at)[0]
            base = learn_at if learn_at is not None else min(small.cpus, AUTO_LEARN_AT, n)
            if base > n:
                raise UsageFailure(f"--learn-at {base} is more CPUs than --cpus {n}")
            if base != small.cpus:
                small = lower_policy(model.path, cpus=base)[0]
            note = (f" (N={n} is past what is searched exhaustively, N <= {AUTO_EXPLICIT_CPUS}: N={base} searched, "
                    f"its schedules replayed at N={n}; what holds there lifted to N={n} and proved with Z3)")
            run = verify_past_search(model, small, properties=set(properties) or None, max_states=max_states,
                                     timeout_s=timeout, memory_budget=memory,
                                     progress=_say() if sys.stderr.isatty() else None,
                                     certificate_out=(lambda c: Path(certificate).write_text(c.to_json() + "\n"))
                                     if certificate else None)
        elif engine == "bmc":
            from tdxproof.engines.bmc import verify_bmc
            note = f" (Z3, bounded to depth {depth})"
            run = verify_bmc(model, cpus=cpus, properties=set(properties) or None, max_depth=depth,
                             timeout_s=timeout,
                             progress=(lambda pending, k: progress(0, k)) if progress is not None else None)
        elif engine == "kind":
            from pathlib import Path

            from tdxproof.engines.induction import verify_kind
            note = " (Z3, learned inductive invariant, re-checked)"
            say = _say() if sys.stderr.isatty() else None
            run = verify_kind(model, cpus=cpus, properties=set(properties) or None, max_states=max_states,
                              timeout_s=timeout, progress=say,
                              certificate_out=(lambda c: Path(certificate).write_text(c.to_json() + "\n"))
                              if certificate else None)
        elif engine == "compiled":
            from tdxproof.engines.compiled import verify_compiled
            note = " (the encoding compiled to Python, exhaustive search)"
            run = verify_compiled(model, cpus=cpus, properties=set(properties) or None, max_states=max_states,
                                  timeout_s=timeout, memory_budget=memory,
                                  progress=_say() if sys.stderr.isatty() else None)
        elif engine == "lift":
            from tdxproof.engines.lift import verify_lift
            n = model.cpus
            from tdxproof.model.lower import lower_policy
            # the policy lowered again for the N to learn at (its warnings were shown)
            small = lower_policy(model.path, cpus=learn_at)[0]    # the policy's own `cpus`, or --learn-at
            base = min(small.cpus, n) if learn_at is None else learn_at
            if base > n:
                raise UsageFailure(f"--learn-at {base} is more CPUs than --cpus {n}")
            if base != small.cpus:
                small = lower_policy(model.path, cpus=base)[0]
            note = f" (Z3, lemmas learned at N={base}, lifted and proved inductive at N={n}, re-checked)"
            from pathlib import Path
            run = verify_lift(model, small, properties=set(properties) or None, max_states=max_states,
                              timeout_s=timeout, progress=_say() if sys.stderr.isatty() else None,
                              certificate_out=(lambda c: Path(certificate).write_text(c.to_json() + "\n"))
                              if certificate else None)
        else:
            run = verify_explicit(model, cpus=cpus, properties=set(properties) or None, max_states=max_states,
                                  memory_budget=memory, progress=progress, timeout_s=timeout,
                                  symmetry=symmetry == "on" or (symmetry == "auto" and model.cpus >= SYMMETRY_AUTO_CPUS))
    except ModelErrorAt as exc:
        raise _model_error(exc, model, loaded) from None
    finally:
        if progress is not None:
            click.echo("\r\033[K", nl=False, err=True)
    return attach_traces(model, run), note


def _model_error(exc, model, loaded, cpus: int | None = None) -> PolicyError:
    """A run-time model error (a value out of its range, a hold past its bound):
    bad input, exit 2, in every engine and in `--cpus any`."""
    from tdxproof.diagnostics import Diagnostic, Note, Severity
    span = exc.error.span or model.actors[0].span
    chain = exc.error.chain
    where = (Note(f"in {chain[0]}" + "".join(f", called from {c}" for c in chain[1:])),) if chain else ()
    at_n = f" with {cpus} CPUs" if cpus is not None else ""
    diag = Diagnostic(Severity.ERROR, "E420", exc.error.message, span,
                      where + (Note(f"reached after {len(exc.schedule)} steps of "
                                    f"{', '.join(sorted({s.context for s in exc.schedule.steps}))}{at_n}"),))
    err = PolicyError([diag])
    err.sources = loaded.sources  # type: ignore[attr-defined]
    return err


WITNESS_HELP = """\b
Exit codes:
  0    the witness is written
  1    there is none: the property holds (or the cover goal is unreachable)
  2    bad input or usage
  3    unknown: no verdict within the limits
  4    internal error
  130  interrupted
"""


@cli.command(epilog=WITNESS_HELP)
@click.argument("policy", type=click.Path(dir_okay=False))
@click.option("--property", "prop", required=True, metavar="NAME", help="The property whose witness to write.")
@click.option("--cpus", type=click.IntRange(1, 64), help="Number of CPUs (overrides the policy's `cpus`).")
@click.option("--engine", type=click.Choice(["auto", "explicit", "bmc", "kind"]), default="auto", show_default=True)
@click.option("--depth", type=click.IntRange(0, 10_000), default=30, show_default=True, help="bmc: deepest schedule.")
@click.option("--timeout", type=click.FloatRange(0.1), default=None, help="bmc, kind: seconds per solver call.")
@click.option("--max-states", type=click.IntRange(1), default=6_000_000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json", "itf"]), default="text", show_default=True)
@click.option("--verbose", is_flag=True, help="text: every statement of every step.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write it here (default: stdout).")
@click.option("--debug", is_flag=True)
def witness(policy: str, prop: str, cpus: int | None, engine: str, depth: int, timeout: float | None,
            max_states: int, fmt: str, verbose: bool, output: str | None, debug: bool) -> None:
    """Write the shortest schedule that breaks PROPERTY of POLICY (or reaches its
    cover goal), replayed, for documentation: the interleaving table and report
    (text), Markdown with a Mermaid diagram (md), JSON, or ITF."""
    def run() -> int:
        from dataclasses import replace as _replace

        from tdxproof.render.json import render_json
        from tdxproof.render.text import render_witness, verdict_words

        model, loaded = _lower(policy, cpus)
        result_run, _ = _engine_run(model, loaded, cpus, (prop,), engine, depth, timeout, max_states)
        [r] = result_run.results
        if r.verdict is Verdict.UNKNOWN:
            click.echo(f"{policy}: {prop}: {verdict_words(r)}: no witness", err=True)
            return ExitCode.UNKNOWN.value
        if r.verdict not in (Verdict.VIOLATED, Verdict.COVERED):
            click.echo(f"{policy}: {prop}: {verdict_words(r)}: there is no witness", err=True)
            return ExitCode.VIOLATED.value
        if fmt == "md":
            from tdxproof.render.markdown import render_witness_md
            text = render_witness_md(r)
        elif fmt == "json":
            text = render_json(_replace(result_run, results=(r,)))
        elif fmt == "itf":
            from tdxproof.render.itf import render_itf
            text = render_itf(_replace(result_run, results=(r,)))
        else:
            text = render_witness(r, verbose=verbose)
        if output:
            from pathlib import Path
            Path(output).write_text(text.rstrip("\n") + "\n")
        else:
            click.echo(text)
        return ExitCode.HOLDS.value
    sys.exit(_run(run, debug))


def _progress():
    say = _say()

    def show(states: int, depth: int, seconds: float = 0.0, rss: int = 0) -> None:
        rate = f", {states / seconds:,.0f} states/s" if seconds > 0 else ""
        mem = f", {rss / 2**30:.1f} GiB" if rss else ""
        say(f"search: {states:,} states, depth {depth}{rate}{mem}")
    return show


def _say():
    start = time.monotonic()

    def show(msg: str) -> None:
        if time.monotonic() - start > 1.0:
            click.echo(f"\r\033[K{msg}, {time.monotonic() - start:.0f} s", nl=False, err=True)
    return show


CHECK_HELP = """\b
Exit codes:
  0    every verdict matches its policy's expect clauses
  1    a verdict differs from its expect clause
  2    bad input or usage
  3    an expectation could not be decided (state limit)
  4    internal error
  130  interrupted
"""


PROOFS_BEGIN = "<!-- generated by tdxproof check --write-proofs: begin -->"
PROOFS_END = "<!-- generated by tdxproof check --write-proofs: end -->"


def _check_one(path: str, cpus: int | None, max_states: int, traces: bool):
    """Runs in a worker process: lower and verify one policy (results pickle)."""
    from tdxproof.engines.explicit import verify_explicit
    from tdxproof.engines.trace import attach_traces
    from tdxproof.model.lower import lower_policy

    try:
        model, _, _ = lower_policy(path, cpus=cpus)
    except PolicyError as exc:
        return ("error", exc.diagnostics, getattr(exc, "sources", {}))
    run = verify_explicit(model, cpus=cpus, max_states=max_states)
    if traces:
        run = attach_traces(model, run)
    else:
        docs = {p.name: p for p in model.properties}
        run = replace(run, results=tuple(replace(r, doc=docs[r.name].doc) for r in run.results))
    expects = {e.prop: e.span for e in model.expects}
    where = {p.name: {"property": p.span, "expect": expects.get(p.name)} for p in model.properties}
    return ("ok", run, where, _about(path))


def _about(path: str) -> str:
    """The comment that opens a policy: what design it is."""
    lines = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.startswith("//"):
                    break
                lines.append(line[2:].strip())
    except OSError:
        return ""
    return "\n".join(lines).strip()


@cli.command(epilog=CHECK_HELP)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--cpus", type=click.IntRange(1, 64), help="Number of CPUs for every policy (default: each policy's own).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Policies checked at once (default: CPUs).")
@click.option("--max-states", type=click.IntRange(1), default=6_000_000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "sarif"]), default="text",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write the report here.")
@click.option("--write-proofs", is_flag=True,
              help="Write one Markdown record per policy under --proofs-dir (verdicts, witnesses, diagrams).")
@click.option("--check-proofs", is_flag=True,
              help="Compare the records under --proofs-dir (and the --readme table) with what they would be "
                   "now; exit 1 if any is stale.")
@click.option("--proofs-dir", type=click.Path(file_okay=False), default="proofs", show_default=True)
@click.option("--readme", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --write-proofs/--check-proofs: the file whose generated table (between the "
                   "tdxproof markers) lists every policy against every property.")
@click.option("--debug", is_flag=True)
def check(paths: tuple[str, ...], cpus: int | None, jobs: int | None, max_states: int, fmt: str,
          output: str | None, write_proofs: bool, check_proofs: bool, proofs_dir: str, readme: str | None,
          debug: bool) -> None:
    """Pre-merge check: verify every policy under PATHS (files or directories of
    .tdx files) and compare each verdict with the policy's expect clauses."""
    sys.exit(_run(lambda: _check(paths, cpus, jobs, max_states, fmt, output, write_proofs, check_proofs,
                                 proofs_dir, readme), debug))


def _check(paths: tuple[str, ...], cpus: int | None, jobs: int | None, max_states: int, fmt: str,
           output: str | None, write_proofs: bool = False, check_proofs: bool = False, proofs_dir: str = "proofs",
           readme: str | None = None) -> int:
    import os
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    from tdxproof.render.ci import render_check_text, render_junit, render_sarif
    from tdxproof.render.json import render_json

    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(str(f) for f in Path(p).glob("*.tdx"))
        else:
            files.append(p)
    if not files:
        raise UsageFailure("no .tdx files under " + ", ".join(paths))
    records = write_proofs or check_proofs
    traces = records or fmt in ("json", "sarif")
    workers = min(jobs or os.cpu_count() or 1, len(files))
    args = (files, [cpus] * len(files), [max_states] * len(files), [traces] * len(files))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            outcomes = list(pool.map(_check_one, *args))
    else:
        outcomes = [_check_one(*a) for a in zip(*args)]
    errors = [o for o in outcomes if o[0] == "error"]
    for _, diags, sources in errors:
        click.echo(render_text(diags, sources), err=True)
    ok = [o for o in outcomes if o[0] == "ok"]
    runs = [o[1] for o in ok]
    where = {(o[1].policy, name): w for o in ok for name, w in o[2].items()}
    if fmt == "json":
        text = "[\n" + ",\n".join(render_json(r) for r in runs) + "\n]"
    elif fmt == "junit":
        text = render_junit(runs)
    elif fmt == "sarif":
        text = render_sarif(runs, where)
    else:
        text = render_check_text(runs)
    if output:
        Path(output).write_text(text + "\n")
    else:
        click.echo(text)
    if errors:
        return ExitCode.USAGE.value
    code = exit_code(tuple(r for run in runs for r in run.results), check_expectations=True).value
    if records:
        command = "tdxproof check " + " ".join(paths) + (f" --cpus {cpus}" if cpus else "") + " --write-proofs"
        changed = _records(ok, proofs_dir, readme, command, write=write_proofs)
        again = command + (f" --readme {readme}" if readme else "")
        for name in changed:
            click.echo(f"wrote {name}" if write_proofs else f"{name}: stale; regenerate with `{again}`", err=True)
        if changed and not write_proofs and code == ExitCode.HOLDS.value:
            code = ExitCode.VIOLATED.value
    return code


def _records(ok: list, proofs_dir: str, readme: str | None, command: str, *, write: bool) -> list[str]:
    """Write (or only compare) the records and the README table: the files that
    differ(ed) from what they are now."""
    from importlib.metadata import version
    from pathlib import Path

    from tdxproof.render.records import record_name, render_record, render_table, splice

    out: dict[Path, str] = {}
    for _, run, _, about in ok:
        out[Path(proofs_dir) / record_name(run.policy)] = render_record(run, about=about, command=command,
                                                                          version=version("tdxproof"))
    if readme is not None:
        text = Path(readme).read_text()
        rel = os.path.relpath(proofs_dir, os.path.dirname(os.path.abspath(readme)) or ".")
        new = splice(text, render_table([o[1] for o in ok], proofs_dir=rel), PROOFS_BEGIN, PROOFS_END)
        if new is None:
            raise UsageFailure(f"{readme}: no `{PROOFS_BEGIN}` ... `{PROOFS_END}` markers to put the table between")
        out[Path(readme)] = new
    changed = []
    for path, text in out.items():
        if path.exists() and path.read_text() == text:
            continue
        changed.append(str(path))
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return changed


RECHECK_HELP = """\b
Exit codes:
  0    the certificate proves every property it names
  1    it does not (each reason is printed)
  2    bad input or usage (an unreadable certificate is one)
  3    undecided within --timeout
  4    internal error
"""


@cli.command(epilog=RECHECK_HELP)
@click.argument("policy", type=click.Path(dir_okay=False))
@click.argument("certificate", type=click.Path(dir_okay=False))
@click.option("--timeout", type=click.FloatRange(0.1), default=None, help="Seconds per solver call.")
@click.option("--show", is_flag=True, help="Print the invariant in the policy's words, per-CPU copies folded.")
@click.option("--debug", is_flag=True)
def recheck(policy: str, certificate: str, timeout: float | None, show: bool, debug: bool) -> None:
    """Re-check CERTIFICATE (written by `verify --engine kind --certificate`)
    against POLICY without the search that found it: on a plain encoding, the
    initial states satisfy its lemmas, one step keeps them, and they imply
    each property it names."""
    def run() -> int:
        from tdxproof.encode.system import encode
        from tdxproof.engines.induction import Certificate, fold_cpus
        from tdxproof.engines.induction import recheck as recheck_certificate

        try:
            with open(certificate, encoding="utf-8") as f:
                text = f.read()
            if '"tdxproof-every-n/' in text[:200]:
                return _recheck_every_n(policy, certificate, text, timeout, show)
            cert = Certificate.from_json(text)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageFailure(f"{certificate}: not a readable certificate: {exc}") from None
        model, _ = _lower(policy, cert.cpus)
        enc = encode(model, cert.cpus)
        problems = recheck_certificate(model, cert, timeout_s=timeout, enc=enc)
        if show:
            click.echo("\n".join(f"  {line}" for line in fold_cpus(enc, cert.lemmas)))
        return _recheck_outcome(f"{certificate}: {len(cert.lemmas):,} lemmas, {policy} with {cert.cpus} CPUs",
                                "re-checks", cert.proves, problems)
    sys.exit(_run(run, debug))


def _recheck_outcome(what: str, ok: str, proves: tuple[str, ...], problems: list[str]) -> int:
    """`recheck`'s last words, and its exit code."""
    from tdxproof.engines.induction import only_undecided
    if not problems:
        click.echo(f"{what}: {ok}; proves {', '.join(proves)}")
        return ExitCode.HOLDS.value
    click.echo(f"{what}: does NOT re-check")
    for p in problems:
        click.echo(f"  - {p}")
    return ExitCode.UNKNOWN.value if only_undecided(problems) else ExitCode.VIOLATED.value


def _recheck_every_n(policy: str, certificate: str, text: str, timeout: float | None, show: bool) -> int:
    """An every-N certificate (`verify --cpus any --certificate`): the cutoff
    derived from the policy, the instances re-checked at every N up to it (or,
    for a symbolic one, the templates re-checked once on the symbolic-N encoding)."""
    from tdxproof.encode.system import encode
    from tdxproof.encode.param import MAX_N
    from tdxproof.engines.cutoff import FIRST, SYMBOLIC, Points, load_every_n, recheck_every_n, render_every_n
    from tdxproof.engines.every_n import Models

    _lower(policy, None)     # bad input: the usual error, exit 2
    models = Models(policy)
    points = Points(encode(models[FIRST + 1], FIRST + 1))
    try:
        cert = load_every_n(text, points)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageFailure(f"{certificate}: not a readable certificate: {exc}") from None
    w, problems = recheck_every_n(models, cert, timeout)
    if show:
        click.echo("\n".join(f"  {line}" for line in render_every_n(cert, encode(models[FIRST], FIRST))))
    return _recheck_outcome(f"{certificate}: {len(cert.templates):,} lemma templates, {policy} for every N >= 2",
                            f"re-checks on one encoding for N=2..{MAX_N} (N symbolic), cutoff N={w}"
                            if cert.method == SYMBOLIC else f"re-checks at N=2..{w} (the cutoff)", cert.proves, problems)


MUTATE_HELP = """\b
Exit codes:
  0    every mutant ran (killed, survived, changed or rejected)
  2    bad input or usage
  3    a mutant hit a limit (--max-states, --timeout): its outcome is unknown
  130  interrupted
"""


@cli.command(epilog=MUTATE_HELP)
@click.argument("policy", type=click.Path(dir_okay=False))
@click.option("--cpus", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Number of CPUs for every mutant (small: each runs the exhaustive search).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Mutants run at once (default: CPUs).")
@click.option("--operator", "operators", multiple=True, metavar="OP",
              type=click.Choice(list(MUTATION_OPERATORS)),
              help="Only these mutation operators.")
@click.option("--max-states", type=click.IntRange(1), default=2_000_000, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1), default=None, help="Seconds for each mutant's search.")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json"]), default="text", show_default=True)
@click.option("--debug", is_flag=True)
def mutate(policy: str, cpus: int, jobs: int | None, operators: tuple[str, ...], max_states: int,
           timeout: float | None, fmt: str, debug: bool) -> None:
    """Apply every single mutation to POLICY's design (its own files, not the
    kernel preludes) -- a dropped lock or unlock, two statements swapped, a
    rollback dropped, `_nocalls` and `_cpuslocked` swapped, a cpuhp state moved, a
    `may fail` that never fails, `local_irq_save()` dropped, a condition flipped --
    and report which mutants the properties kill."""
    import os

    from tdxproof.engines.mutate import run_mutants
    from tdxproof.render.mutation import render_mutation

    def run() -> int:
        _lower(policy, cpus)          # the policy itself must be fine: its errors first
        say = _say() if sys.stderr.isatty() else None
        rep = run_mutants(policy, cpus=cpus, jobs=jobs or os.cpu_count() or 1, operators=set(operators) or None,
                          max_states=max_states, timeout_s=timeout,
                          progress=(lambda k, n: say(f"mutants: {k}/{n}")) if say else None)
        if say is not None:
            click.echo("\r\033[K", nl=False, err=True)
        click.echo(render_mutation(rep, fmt))
        return ExitCode.UNKNOWN.value if rep.count("unknown") else 0
    sys.exit(_run(run, debug))


@cli.command(epilog=EXIT_HELP)
@click.argument("policy", type=click.Path(dir_okay=False))
@click.option("--cpus", type=click.IntRange(1, 64))
@click.option("--debug", is_flag=True)
def show(policy: str, cpus: int | None, debug: bool) -> None:
    """Print the model summary of POLICY: state, locks, cpuhp states, contexts,
    properties (and where each is observed), every `atomic` with its mechanism."""
    from tdxproof.render.show import render_model

    def run() -> int:
        model, _ = _lower(policy, cpus)
        click.echo(render_model(model))
        return 0
    sys.exit(_run(run, debug))


def _run(fn, debug: bool) -> int:
    try:
        return fn()
    except PolicyError as exc:
        click.echo(render_text(exc.diagnostics, getattr(exc, "sources", {})), err=True)
        n = sum(1 for d in exc.diagnostics if d.severity.value == "error")
        click.echo(f"{n} error{'s' if n != 1 else ''}", err=True)
        return ExitCode.USAGE.value
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE.value
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        return ExitCode.INTERRUPTED.value
    except InternalError as exc:
        click.echo(f"internal error: {exc} (please report)", err=True)
        if debug:
            traceback.print_exc()
        return ExitCode.INTERNAL.value
    except Exception as exc:  # noqa: BLE001 - our bug, never "violated"
        click.echo(f"internal error: {type(exc).__name__}: {exc} (please report; --debug shows more)", err=True)
        if debug:
            traceback.print_exc()
        return ExitCode.INTERNAL.value


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED.value)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE.value)
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED.value)


if __name__ == "__main__":
    main()
