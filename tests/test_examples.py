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


def _floats(line):
    """The numbers in a line of printed output, in order."""
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+(?:e[-+]\d+)?|[-+]?\d+", line)]


def _line(out, start):
    """The first output line that starts with ``start`` (after indentation)."""
    return next(line.strip() for line in out.splitlines() if line.strip().startswith(start))


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    return _run("models_tour.py", cwd=tmp_path_factory.mktemp("tour"))


@pytest.mark.slow
def test_models_tour(tour):
    """Conjugate sections land on the exact posterior and log evidence in one step, every
    deterministic fit converges, both eight-schools forms are diagnosed, and ARD keeps
    exactly the 5 relevant features."""
    # Beta–Bernoulli (213, 358 = 1 + 212 malignant, 1 + 357 benign) and Gamma–Poisson
    assert len(re.findall(r"status converged after 1 natural-gradient step\(s\)", tour)) == 2
    assert re.search(r"a\s+213\.000000\s+213\.000000", tour)
    assert re.search(r"b\s+358\.000000\s+358\.000000", tour)
    for name in ("shape", "rate"):  # the Gamma factor's, fitted and exact
        fitted, exact = re.search(rf"^\s+{name}\s+(\S+)\s+(\S+)$", tour, re.MULTILINE).groups()
        assert fitted == exact
    evidence = re.findall(r"ELBO vs log p\(y\)\s+(\S+)\s+(\S+)", tour)
    assert len(evidence) == 2
    for elbo, log_evidence in evidence:
        assert abs(float(elbo) - float(log_evidence)) < 1e-5
    # linear regression with known noise: one full-rank step is the exact posterior
    assert re.search(r"one FullRankGaussian over \('intercept', 'coef'\): status converged "
                     r"after 1 step\(s\)", tour)
    assert _floats(_line(tour, "max |mean − exact mean|"))[0] < 1e-8
    assert _floats(_line(tour, "max |cov − exact cov|"))[0] < 1e-8
    for family in ("MeanFieldGaussian", "FullRankGaussian  "):
        assert _line(tour, family).split()[1] == "converged"
    # Poisson and probit regression, ARD
    assert len(re.findall(r"status converged after \d+ natural-gradient iterations", tour)) == 2
    assert "radius_error" in tour
    for form in ("centered", "non-centered"):
        assert re.search(rf"{form}: Pareto k̂ = -?\d+\.\d+ from 1000 draws: \w+", tour)
    assert "kept (learned prior sd > 0.7): ['x0', 'x1', 'x2', 'x3', 'x4']" in tour


@pytest.mark.slow
def test_models_tour_centered_eight_schools_reaches_its_optimum(tour):
    """The default stochastic fit of centered eight schools reaches the mean-field optimum.

    A constant-step run (natural_gradient(0.1), 1500 iterations) reaches ELBO ≈ −33.4 with
    E_q[μ] ≈ 4.3; a fit stopped where the ELBO is still rising leaves μ near its starting
    point 0 (the data's effects average 8.75, the prior is N(0, 5²)).
    """
    row = _line(tour, "centered ")
    assert row.split()[1] == "converged"
    elbo, _, e_mu = _floats(row)[1:4]
    assert e_mu > 2.0, f"centered fit stopped early: E[mu] = {e_mu}, ELBO {elbo}"
    assert elbo > -34.5, f"centered fit stopped early: ELBO {elbo}"


@pytest.mark.slow
def test_full_rank(tmp_path):
    """The full-rank fit reaches 0.01 nats of its optimum within 10 iterations, ends with a
    higher ELBO than mean-field and a good k̂; the plot is written."""
    plot = tmp_path / "full_rank.png"
    out = _run("full_rank.py", "--out", str(plot), cwd=tmp_path)
    rows = {}
    for name in ("mean-field", "full-rank"):
        fields = _line(out, name + " ").split()
        assert fields[1] == "converged"
        rows[name] = [float(x) for x in fields[2:]]
    # iters evals sec, then (iter, evals, sec) per threshold 1, 0.1, 0.01, then ELBO, k̂
    iterations = {name: (row[3], row[6], row[9]) for name, row in rows.items()}
    assert iterations["full-rank"][2] <= 10
    assert iterations["full-rank"][2] < iterations["mean-field"][2]
    assert rows["full-rank"][-2] > rows["mean-field"][-2] + 1.0
    assert rows["full-rank"][-1] < 0.7
    assert re.search(r"full-rank: Pareto k̂ = \d+\.\d+ from 2000 draws: good", out)
    assert re.search(r"sd ratio full-rank / mean-field over all 30 coefficients", out)
    assert "coef[mean_radius]" in out
    assert plot.exists() and plot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    return _run("custom_model.py", cwd=tmp_path_factory.mktemp("custom"))


@pytest.mark.slow
def test_custom_model(custom):
    """The Monte Carlo fit (Gaussian and Gamma factors) converges near the coordinate-ascent
    fixed point, and each fit is diagnosed and summarized by ArviZ."""
    mc = _line(custom, "Monte Carlo ")
    assert mc.split()[2] == "converged"
    loc, scale = _floats(mc)[3:5]
    cavi_loc, cavi_scale = _floats(_line(custom, "CAVI by hand"))[1:3]
    assert abs(loc - cavi_loc) < 0.1
    assert abs(scale / cavi_scale - 1) < 0.1
    for label in ("Monte Carlo", "closed form"):
        assert re.search(rf"{label}: Pareto k̂ = -?\d+\.\d+ from 2000 draws", custom)
    assert len(re.findall(r"^mu\s+-?\d", custom, re.MULTILINE)) == 3  # ArviZ summaries
    assert len(re.findall(r"^tau\s+\d", custom, re.MULTILINE)) == 2
    assert re.search(r"^sigma\s+\d", custom, re.MULTILINE)
    assert "approximate-posterior PSIS-LOO" in custom
    # the exact references by grid quadrature: (26.21, 1.32) and (27.49, 0.67)
    normal_exact = _floats(_line(custom, "normal, closed form  "))[-2:]
    t_exact = _floats(_line(custom, "Student-t, Monte Carlo"))[-2:]
    assert abs(normal_exact[0] - 26.208) < 0.01 and abs(normal_exact[1] - 1.323) < 0.01
    assert abs(t_exact[0] - 27.488) < 0.01 and abs(t_exact[1] - 0.671) < 0.01


@pytest.mark.slow
def test_custom_model_closed_form_is_coordinate_ascent(custom):
    """With ``closed_form=`` the default fit converges to the fixed point of the hand-written
    coordinate-ascent updates (the ELBO is exact, so nothing but rounding separates them)."""
    row = _line(custom, "closed form ")
    assert row.split()[2] == "converged", row
    assert _floats(_line(custom, "closed form vs CAVI by hand"))[0] < 1e-3


@pytest.mark.slow
def test_custom_model_student_t_matches_grid(custom):
    """The default Monte Carlo fit of the Student-t model puts E_q[μ] within 0.3 of the exact
    posterior mean by grid quadrature (27.49, sd 0.67); a constant-step natural gradient
    (ρ = 0.05) gets 27.48, sd 0.66."""
    vi_mean, vi_sd, exact_mean, exact_sd = _floats(_line(custom, "Student-t, Monte Carlo"))
    assert abs(vi_mean - exact_mean) < 0.3, f"E_q[mu] = {vi_mean}, exact {exact_mean}"
    assert abs(vi_sd / exact_sd - 1) < 0.25
