"""The example scripts run end to end and print what the README promises (slow)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script, *args, cwd):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_quickstart(tmp_path):
    out = _run("quickstart.py", cwd=tmp_path)
    assert "coef[worst_texture]" in out  # DataFrame column names reach ArviZ
    assert re.search(r"status: converged after \d+ natural-gradient iterations", out)
    assert re.search(r"Pareto k̂ = \d+\.\d+ from 2000 draws", out)
    assert "approximate-posterior PSIS-LOO" in out


@pytest.mark.slow
def test_ngd_vs_adam(tmp_path):
    plot = tmp_path / "elbo.png"
    out = _run("ngd_vs_adam.py", "--out", str(plot), "--max-iter", "5000", cwd=tmp_path)
    ngd = next(line for line in out.splitlines() if line.startswith("natural gradient"))
    iterations_to_001 = int(ngd.split()[-3])
    assert iterations_to_001 <= 50
    assert "adam lr=0.01" in out
    assert plot.exists() and plot.stat().st_size > 10_000
