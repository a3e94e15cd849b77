"""benchmarks/promela.py exports the encoding to Promela for the side-by-side runs
with SPIN: SPIN must search the very state graph tdxproof searches (one more
state: the one before `init` starts the processes) and find the same properties
violated, or the comparison in benchmarks/RESULTS.md measures two models.
Skipped where SPIN or a C compiler is not installed (`apt-get install spin`)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from tdxproof.engines.compiled import verify_compiled
from tdxproof.model.lower import lower_policy
from tdxproof.results import Verdict

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("spin") is None or shutil.which("gcc") is None,
                                reason="SPIN or gcc not installed")


def _promela():
    spec = importlib.util.spec_from_file_location("promela", ROOT / "benchmarks" / "promela.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# a `repeat K` actor: its last step goes back to its entry or ends, by its count
REPEAT = 'import "locks.tdx";\ncpus 2;\n' + """
    var x: int[0..3] = 0;
    actor a repeat 2 { x = x + 1; }
    invariant small: x <= 1;
"""


@pytest.mark.parametrize("path, n", [("examples/kvm-lock-cycle/kvm-6.10.tdx", None),      # a deadlock
                                     ("examples/therm-throt-poll-work/therm_throt-5.5.tdx", None),   # work, IPIs
                                     ("examples/padata-cpumask/padata-5.2-fixed.tdx", None),
                                     # per-CPU actors, at an N past the policy's `cpus 2`
                                     ("examples/therm-throt-poll-work/therm_throt-5.5.tdx", 3),
                                     ("repeat", None)])
def test_spin_searches_the_same_states_and_finds_the_same_violations(path, n, tmp_path):
    if path == "repeat":
        (tmp_path / "repeat.tdx").write_text(REPEAT)
        path = tmp_path / "repeat.tdx"
    promela = _promela()
    model = promela.at(str(ROOT / path), n) if n is not None else lower_policy(str(ROOT / path))[0]
    ours = verify_compiled(model)
    got = promela.spin(model, model.cpus)
    assert got["stopped"] is None
    assert got["states"] == ours.states + 1, got["log"][-800:]
    violated = {r.name for r in ours.results if r.verdict is Verdict.VIOLATED and r.kind not in ("static", "lockdep")}
    assert set(got["violated"]) == violated
