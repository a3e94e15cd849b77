"""The wheel carries the grammar and the preludes: install it into a clean virtual
environment and run the tool there, away from the source checkout."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_wheel_installs_and_finds_grammar_and_prelude(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = dist.glob("tdxproof-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # dependencies come from the running interpreter's site-packages (no download);
    # the wheel's own files in the new environment come first on sys.path
    new_site = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    Path(new_site, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--force-reinstall", str(wheel)], check=True,
                   capture_output=True)
    policy = tmp_path / "p.tdx"
    policy.write_text('import "kernel-6.16.tdx";\ncpus 2;\nactor a { cpus_read_lock(); cpus_read_unlock(); }\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(env_dir / "bin" / "tdxproof"), "show", str(policy)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "cpuhp states (in order)" in out.stdout
    out = subprocess.run([str(env_dir / "bin" / "tdxproof"), "verify", str(policy)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no-deadlock" in out.stdout and "holds (exhaustive, N=2)" in out.stdout
    where = subprocess.run([str(py), "-c", "import tdxproof, sys; print(tdxproof.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True).stdout
    assert str(env_dir) in where, "the installed package, not the checkout, must be imported"
