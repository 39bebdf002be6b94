"""The example scripts run end to end and print what the README promises (slow)."""

import math
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
    """The default fit is full-rank, says so and why; its k̂ is good; LOO is finite; the
    mean-field comparison is unreliable."""
    out = _run("quickstart.py", cwd=tmp_path)
    assert "coef[worst_texture]" in out  # DataFrame column names reach ArviZ
    assert re.search(r"natvi fit: converged after \d+ iterations of ngd", out)
    assert "family: (intercept, coef): FullRankGaussian" in out
    assert "a full-rank Gaussian over the intercept and the 30 coefficients" in out
    k_hat = re.search(r"Pareto k̂ = (\d+\.\d+) ± \d+\.\d+ from 4000 draws: (\w+)", out)
    assert k_hat and k_hat.group(2) == "good", out
    assert "Approximate-posterior PSIS-LOO" in out
    assert re.search(r"elpd_loo\s+-\d+\.\d+\s+\d+\.\d+", out)
    assert re.search(r"Pareto k̂ = \d+\.\d+ ± \d+\.\d+ from 4000 draws: unreliable", out)


@pytest.mark.slow
def test_ngd_vs_adam(tmp_path):
    """The NGD-vs-Adam comparison is of mean-field fits (natvi's default here is full-rank):
    the best ELBO is the mean-field optimum, and NGD reaches 0.01 nats of it in ≤ 50
    iterations."""
    plot = tmp_path / "elbo.png"
    out = _run("ngd_vs_adam.py", "--out", str(plot), "--max-iter", "5000", cwd=tmp_path)
    # the exact mean-field optimum (as in test_benchmark_quick): the runs are mean-field
    assert abs(_floats(_line(out, "best mean-field ELBO"))[0] - -67.4636) < 1e-3
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
    deterministic fit converges, the default GLM fits are full-rank and say so, the Poisson
    intercept and coefficients lie within 3 posterior sds of the truth, both eight-schools
    forms are diagnosed, and ARD keeps exactly the 5 relevant features."""
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
    # Poisson and probit regression, fitted the default way: full-rank, which the summary says
    assert len(re.findall(r"natvi fit: converged after \d+ iterations of ngd", tour)) == 2
    assert tour.count("family: (intercept, coef): FullRankGaussian") == 2
    assert "radius_error" in tour
    poisson = re.findall(r"^\s+(intercept|x\d)\s+(\S+)\s+(\S+)\s+(\S+)$", tour, re.MULTILINE)
    assert [row[0] for row in poisson] == ["intercept", "x0", "x1", "x2"]
    for _, mean, sd, true in poisson:
        assert abs(float(mean) - float(true)) < 3 * float(sd)
    for form in ("centered", "non-centered"):
        assert re.search(rf"{form}: Pareto k̂ = -?\d+\.\d+ ± \d+\.\d+ from 1000 draws: \w+",
                         tour)
    assert "kept (learned prior sd > 0.7): ['x0', 'x1', 'x2', 'x3', 'x4']" in tour


@pytest.mark.slow
def test_models_tour_centered_eight_schools_reaches_its_optimum(tour):
    """The default stochastic fit of centered eight schools reaches the mean-field optimum.

    A constant-step run (natural_gradient(0.1), 1500 iterations) reaches ELBO ≈ −33.4 with
    E_q[μ] ≈ 4.3; a fit stopped where the ELBO is still rising leaves μ near its starting
    point 0 (the data's effects average 8.75, the prior is N(0, 5²)).
    """
    row = _line(tour, "centered ")
    assert row.split()[1] in ("converged", "unreliable")  # a mean-field q of a funnel: k̂ > 1
    elbo, _, e_mu = _floats(row)[1:4]
    assert e_mu > 2.0, f"centered fit stopped early: E[mu] = {e_mu}, ELBO {elbo}"
    assert elbo > -34.5, f"centered fit stopped early: ELBO {elbo}"


@pytest.mark.slow
def test_full_rank(tmp_path):
    """The full-rank fit reaches 0.01 nats of its optimum within 10 iterations, in fewer than
    the mean-field fit (named explicitly: the default is full-rank here), ends with a higher
    ELBO, and its k̂ is good (or borderline between good and ok, from 2000 draws) where
    mean-field's is unreliable; the plot is written."""
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
    assert rows["full-rank"][-1] < 0.5
    assert rows["mean-field"][-1] > 0.7
    assert re.search(r"full-rank: Pareto k̂ = \d+\.\d+ ± \d+\.\d+ from 2000 draws: "
                     r"(good|borderline, good to ok)\b", out)
    assert re.search(r"mean-field: Pareto k̂ = \d+\.\d+ ± \d+\.\d+ from 2000 draws: "
                     r"unreliable\.", out)
    assert re.search(r"sd ratio full-rank / mean-field over all 30 coefficients", out)
    assert "coef[mean_radius]" in out
    assert plot.exists() and plot.stat().st_size > 10_000


@pytest.mark.slow
def test_ill_conditioned_quadratic(tmp_path):
    """The table: one natural step of ½ (and 42 of 0.1) at every b/a; SGD's counts are its
    closed form (1, then 461 at b/a = 10, then beyond the cap); every Euclidean optimizer,
    at the best of its grid, needs more iterations at b/a = 10⁶ than at 1, and momentum's
    counts, like SGD's, never fall as b/a grows; the plot is written."""
    plot = tmp_path / "quadratic.png"
    out = _run("ill_conditioned_quadratic.py", "--out", str(plot), cwd=tmp_path)
    lines = out.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("b/a")))
    assert [float(x) for x in lines[head].split()[1:]] == [1, 10, 100, 1e3, 1e4, 1e5, 1e6]
    rows = {}
    for line in lines[head + 2:]:
        if not line.strip():
            break
        cells = re.findall(r"> \d+|\d+", line[18:])
        rows[line[:18].strip()] = [math.inf if c.startswith(">") else int(c) for c in cells]
    assert rows["natural step 0.5"] == [1] * 7 and rows["natural step 0.1"] == [42] * 7
    assert rows["SGD"] == [1, 461] + [math.inf] * 5
    euclidean = ("SGD", "momentum", "Adagrad", "RMSProp", "Adadelta", "Adam")
    assert set(rows) == {*euclidean, "natural step 0.5", "natural step 0.1"}
    for name in euclidean:
        assert len(rows[name]) == 7 and rows[name][-1] > rows[name][0], name
    assert rows["momentum"] == sorted(rows["momentum"])
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
        assert re.search(rf"{label}: Pareto k̂ = -?\d+\.\d+ ± \d+\.\d+ from 2000 draws: \w+",
                         custom)
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


@pytest.fixture(scope="module")
def writing(tmp_path_factory):
    return _run("writing_models.py", cwd=tmp_path_factory.mktemp("writing"))


@pytest.mark.slow
def test_writing_models_checks_and_fits(writing):
    """Both log joints (natvi.log_densities and autograd.scipy.stats) equal their scipy.stats
    versions and their gradients finite differences; both default fits are summarized by
    ArviZ and diagnosed; each mean of a and σ lies within 1 NUTS posterior sd of NUTS's."""
    for effects in ("normal", "student_t"):
        value, gradient = _floats(_line(writing, f"{effects} subtype effects: log joint"))[-2:]
        assert value < 1e-9 and gradient < 1e-5, (effects, value, gradient)
        for name in ("a", "sigma"):
            row = _line(writing, f"{effects} {name} ").split()
            assert row[2] in ("converged", "unreliable", "max_iter"), row
            error_q = float(row[-3])
            assert abs(error_q) < 1.0, row
    assert _line(writing, "normal a ").split()[2] in ("converged", "unreliable")
    assert len(re.findall(r"^natvi fit: ", writing, re.MULTILINE)) == 2
    assert len(re.findall(r"^sigma\s+\d\.\d+\s+\d\.\d+", writing, re.MULTILINE)) == 2
    assert len(re.findall(r"Pareto k̂ = \d+\.\d+ ± \d+\.\d+ from 4000 draws", writing)) == 2


@pytest.mark.slow
def test_writing_models_pools_partially(writing):
    """Subtype rates shrink towards the overall rate (0.060): a subtype with no policy in 3
    to 15 customers gets 0.02 to 0.06, the highest raw rate (0.150) comes down, the largest
    subtype (810 customers) stays put; every tabled rate is within 0.01 of NUTS's."""
    table = writing[writing.index("partial pooling"):].splitlines()[2:]
    rows = [_floats(line) for line in table if line.strip()]
    assert len(rows) == 7, table
    for code, customers, policies, raw, mean, low, high, nuts in rows:
        assert low < mean < high and abs(mean - nuts) < 0.01, (code, mean, nuts)
        if policies == 0:
            assert 0.02 < mean < 0.06, code
        if raw == 0.150:
            assert 0.06 < mean < raw, code
        if customers == 810:
            assert abs(mean - raw) < 0.005, code


@pytest.mark.slow
def test_readme_negative_binomial_snippet():
    """The README's negative-binomial regression (in "Writing a log joint without traps")
    runs as printed; its slope lies within 3 posterior sds of the true 0.8, with a good k̂."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme[readme.index("### Writing a log joint without traps"):]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    loc, scale = _floats(out.stdout)[:2]
    assert abs(loc - 0.8) < 3 * scale
    # good, or borderline between good and ok: either way trustworthy draws
    assert re.search(r"Pareto k̂ = 0\.[0-4]\d ± \d+\.\d+ from \d+ draws: (good|borderline, good "
                     r"to ok)", out.stdout)


@pytest.mark.slow
def test_arviz_diagnostics(tmp_path):
    """The ArviZ tour runs on the installed ArviZ generation: the default fit is full-rank and
    says so; one chain gives r_hat NaN and split pseudo-chains r_hat ≈ 1 for both fits; the
    k̂ computed by hand with ArviZ's PSIS is result.pareto_k's; mean-field (named explicitly)
    is unreliable (k̂ > 0.7) where full-rank's k̂ < 0.5 is good or borderline good to ok
    (from 2000 draws), with a larger PSIS effective sample size and few high LOO k̂ where
    every mean-field LOO k̂ is high; the netCDF file is written and reads back with the same
    draws."""
    from natvi.arviz_bridge import arviz_1

    nc = tmp_path / "posterior.nc"
    out = _run("arviz_diagnostics.py", "--out", str(nc), cwd=tmp_path)
    kind = "DataTree" if arviz_1() else "InferenceData"
    assert "family: (intercept, coef): FullRankGaussian" in out
    assert re.search(rf"default \(full-rank\) fit: {kind} with groups .*'sample_stats'", out)
    assert "coef[mean_radius]" in out  # DataFrame column names reach ArviZ
    assert "r_hat is NaN" in out
    for name in ("mean-field", "full-rank"):
        assert abs(_floats(_line(out, f"{name}: cut into 4 pseudo-chains"))[-1] - 1) < 0.02
    assert "result.pareto_k(2000, seed=1) gives the same: True" in out
    assert re.search(r"Pareto k̂ = \d+\.\d+ ± \d+\.\d+ from 2000 draws: (good|borderline, good "
                     r"to ok)\b", out)  # result.diagnose() of the default fit
    rows = {name: _line(out, name + "  ").split() for name in ("mean-field", "full-rank")}
    # family, ELBO, k̂, its se, PSIS ESS, verdict
    (mf_elbo, mf_k, mf_se, mf_ess), (fr_elbo, fr_k, fr_se, fr_ess) = (
        [float(x) for x in rows[name][1:5]] for name in ("mean-field", "full-rank"))
    assert rows["mean-field"][5:] == ["unreliable"] and mf_k - 2 * mf_se > 0.7
    assert " ".join(rows["full-rank"][5:]) in ("good", "borderline, good to ok")
    assert fr_k < 0.5 and fr_k + 2 * fr_se < 0.7
    assert fr_elbo > mf_elbo + 1.0 and fr_ess > 10 * mf_ess
    loo = _floats(_line(out, "full-rank: elpd_loo"))
    assert -60 < loo[0] < -30 and loo[-3] <= 5  # elpd; observations with LOO k̂ > 0.7
    assert _floats(_line(out, "mean-field: elpd_loo"))[-3] == 569  # every one unreliable
    assert nc.exists(), "netCDF not written (ArviZ ≥ 1.0 needs h5netcdf with h5py)"
    assert re.search(r"az.from_netcdf reads back groups .*'posterior'.*draws equal: True", out)


@pytest.mark.slow
def test_readme_images(tmp_path):
    """readme_images.py writes both PNGs at dpi 100, each under 150 kB; the NGD-vs-Adam runs
    are mean-field (their best ELBO is the mean-field optimum); the natural gradient
    converges and comes within 0.01 nats of the best ELBO in fewer ELBO-and-gradient
    evaluations than Adam at any of its three learning rates; the forest plot's mean-field
    fit has a lower ELBO than the full-rank one, an unreliable k̂ where full-rank's is good
    or borderline good to ok, and coefficient sds 1.4 to 2.3 times smaller."""
    out = _run("readme_images.py", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert abs(_floats(_line(out, "best mean-field ELBO of any run"))[0] - -67.4636) < 1e-3
    evals = {}
    for line in out.splitlines():
        match = re.match(r"\s+(natural gradient|Adam, learning rate \S+)\s+(\w+), within 0\.01 "
                         r"nats of the best ELBO after (\d+) evaluations \(\d+ iterations\)",
                         line)
        if match:
            evals[match[1]] = int(match[3])
            assert match[2] == "converged", line
    assert len(evals) == 4, out
    ngd = evals.pop("natural gradient")
    assert ngd < min(evals.values())
    for name, size in (("ngd_vs_adam.png", (1100, 400)), ("arviz_forest.png", None)):
        path = tmp_path / name
        assert path.exists(), name
        assert 10_000 < path.stat().st_size < 150_000, (name, path.stat().st_size)
        width, height = _png_size(path)
        assert size is None or (width, height) == size
        assert width <= 1200 and height <= 1200
    elbo = {}
    for name, verdict in (("mean-field", "unreliable"),
                          ("full-rank", "(good|borderline, good to ok)")):
        match = re.search(rf"{name}\s+ELBO (-?\d+\.\d+), Pareto k̂ = (\d+\.\d+) ± \d+\.\d+ "
                          rf"from 2000 draws: {verdict}\b", out)
        assert match, (name, out)
        elbo[name] = float(match[1])
    assert elbo["full-rank"] > elbo["mean-field"] + 1.0
    low, high = _floats(_line(out, "coefficient sds, full-rank / mean-field:"))
    assert (round(low, 1), round(high, 1)) == (1.4, 2.3)  # as the README quotes them


@pytest.mark.slow
def test_sklearn_estimator(tmp_path):
    """The estimator's tour: the Pipeline converges; its default family (full-rank here)
    is stated, with a k̂ that is good or borderline good to ok, against an unreliable
    mean-field k̂ whose advice names the estimator's own family parameter."""
    out = _run("sklearn_estimator.py", cwd=tmp_path)
    assert re.search(r"BayesianLogisticRegression\): converged after \d+ natural-gradient "
                     r"iterations", out)
    assert "coef[mean_radius]" in out  # pandas output keeps the column names
    default = re.search(r"family='auto' \(the default\) chose a full-rank Gaussian over the "
                        r"intercept and the 30 coefficients.*:\n  Pareto k̂ = \d+\.\d+ ± "
                        r"\d+\.\d+ from 4000 draws: (good|borderline, good to ok)\b", out)
    assert default, out
    assert re.search(r"family='mean_field':\n  Pareto k̂ = \d+\.\d+ ± \d+\.\d+ from 4000 "
                     r"draws: unreliable\..* Try the default family='auto' or "
                     r"family='full_rank', or more draws\.", out)


def _png_size(path):
    """(width, height) in pixels from a PNG file's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_readme_links_resolve():
    """Every image and example the README links to exists, and the committed images stay
    small (under 150 kB each) so the repository does not grow with every regeneration."""
    root = EXAMPLES.parent
    readme = (root / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert "docs/images/ngd_vs_adam.png" in images and "docs/images/arviz_forest.png" in images
    for image in images:
        path = root / image
        assert path.exists(), image
        assert path.stat().st_size < 150_000, image
        _png_size(path)
    linked = set(re.findall(r"\((examples/[\w/]+\.py)\)", readme))
    on_disk = {f"examples/{p.name}" for p in EXAMPLES.glob("*.py")}
    assert linked == on_disk, (linked ^ on_disk)


def _benchmark_rows(out):
    """{method: fields after the 25-character name column} of benchmark.py's table."""
    rows, in_table = {}, False
    for line in out.splitlines():
        if line.startswith("method "):
            in_table = True
        elif in_table and line.startswith("natvi "):
            rows[line[:25].strip()] = line[25:].split()
        elif in_table and not line.startswith("-"):
            in_table = False
    return rows


@pytest.mark.slow
def test_benchmark_quick(tmp_path):
    """benchmark.py --quick on breast cancer, natvi's methods only (NGD mean-field and
    full-rank, Adam at two rates): NGD ends on the L-BFGS-B optimum of the same ELBO (two
    independent optimizers, to 1e-6 nats) and no mean-field run beats it; NGD needs fewer
    evaluations to 0.01 nats than either Adam; the full-rank optimum lies above the
    mean-field one; gaps, thresholds and ratios in each row agree with each other; the plot
    and the saved table are written."""
    # the peers' runs stop at a wall-clock limit: a generous one, so that on a slow or busy
    # machine too they end at their iteration cap and the rows below do not depend on speed
    out = _run("benchmark.py", "--quick", "--datasets", "breast_cancer", "--peers",
               "natvi-adam", "--time-limit", "3600", "--out", str(tmp_path), cwd=tmp_path)
    optimum = _floats(_line(out, "exact mean-field optimum: ELBO ="))[0]
    assert abs(optimum - -67.4636) < 1e-3  # N(0, 1) priors, standardized features
    rows = _benchmark_rows(out)
    assert set(rows) == {"natvi NGD", "natvi NGD full-rank", "natvi NGD line search",
                         "natvi NGD GGN", "natvi NGD emp. Fisher", "natvi Adam lr=0.03",
                         "natvi Adam lr=0.1"}, out
    parsed = {}
    for name, f in rows.items():
        assert len(f) == 17, (name, f)  # status, 3 totals, 3 × 3 thresholds, gap, ELBO, MB, ratio
        nums = [None if x == "-" else float(x) for x in f[1:]]
        parsed[name] = {"status": f[0], "evals": nums[1], "sec": nums[2],
                        "hits": [nums[3 + 3 * k:6 + 3 * k] for k in range(3)],
                        "gap": nums[12], "elbo": nums[13], "mb": nums[14], "ratio": nums[15]}
    for name, r in parsed.items():
        # the gap is printed to 3 significant digits (±0.5% of it), the ELBOs to 1e-6
        assert abs(r["gap"] - (optimum - r["elbo"])) < 1e-5 + 5e-3 * abs(r["gap"]), name
        assert r["mb"] >= 0, name
        reached = [h for h in r["hits"] if h[0] is not None]
        for (it_a, ev_a, s_a), (it_b, ev_b, s_b) in zip(reached, reached[1:], strict=False):
            assert it_a <= it_b and ev_a <= ev_b and s_a <= s_b, name  # 1, 0.1, 0.01 nats
        if r["gap"] < 0.01:
            assert len(reached) == 3, name
    ngd, full = parsed["natvi NGD"], parsed["natvi NGD full-rank"]
    assert ngd["status"] == "converged" and abs(ngd["gap"]) < 1e-6
    assert parsed["natvi NGD line search"]["status"] == "converged"
    assert abs(parsed["natvi NGD line search"]["gap"]) < 1e-6
    # Gauss–Newton-type curvatures move the fixed point off the optimum: above 0, finite
    for name in ("natvi NGD GGN", "natvi NGD emp. Fisher"):
        assert 0 <= parsed[name]["gap"] < 10, name
    assert _floats(_line(out, "best mean-field ELBO of any run"))[0] < 1e-6
    assert full["status"] == "converged" and full["gap"] < -1.0
    assert ngd["hits"][2][0] <= 50
    for rate in ("0.03", "0.1"):
        adam = parsed[f"natvi Adam lr={rate}"]
        assert adam["hits"][2][1] is None or ngd["hits"][2][1] < adam["hits"][2][1]
    # t0.1/peer: seconds to 0.1 nats over the fastest peer's (here the faster Adam)
    fastest = min(parsed[n]["hits"][1][2] for n in parsed if "Adam" in n)
    for name, r in parsed.items():
        seconds = r["hits"][1][2]
        if seconds is None:  # never within 0.1 nats (a Gauss–Newton-type curvature)
            assert r["ratio"] is None, name
            continue
        # both times are printed to 0.01 s: the quotient of the printed ones is that close
        rounding = 0.005 / seconds + 0.005 / fastest
        assert abs(r["ratio"] - seconds / fastest) <= r["ratio"] * rounding + 2e-3, name
    assert min(parsed[n]["ratio"] for n in parsed if "Adam" in n) == 1.0
    speedup = re.search(r"natvi NGD to 0.1 nats in (\d+\.\d+) s; .* natvi Adam (\d+\.\d)× "
                        r"\(natvi Adam lr=[\d.]+, (\d+\.\d+) s\)", out)
    assert speedup, out
    t_ngd, ratio, t_adam = map(float, speedup.groups())
    assert t_ngd == ngd["hits"][1][2] and t_adam == fastest
    assert abs(ratio - t_adam / t_ngd) <= 0.05 + ratio * (0.005 / t_ngd + 0.005 / t_adam)
    assert re.search(r"NGD cost: \d+ iterations, \d+ ELBO evaluations", out)
    assert re.search(r"passes over X: \d+ evaluations", out)
    assert re.search(r"one iteration = \d+\.\d+× the \d+\.\d+ bare passes it needs", out)
    assert re.search(r"NGD peak memory: .* = \d+\.\d+× the bytes of X", out)
    assert (tmp_path / "benchmark.png").stat().st_size > 10_000
    assert (tmp_path / "benchmark.txt").read_text().count("natvi NGD") >= 2


@pytest.mark.slow
def test_predictions(tmp_path):
    """plot_ppc's picture is written and the replicated malignant shares cover the observed
    one; the average tumours are predicted with confidence and the halfway point with an
    interval of P(malignant) around its mean; the formula fit converges, its categorical
    levels named as ArviZ coordinates."""
    out = _run("predictions.py", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert (tmp_path / "ppc.png").stat().st_size > 10_000
    observed, _, _, low, high = _floats(_line(out, "malignant share"))
    assert low <= observed <= high
    benign, malignant, halfway = (_floats(_line(out, name)) for name in
                                  ("average benign", "average malignant", "halfway"))
    assert benign[3] < 0.01 and malignant[3] > 0.99  # mean of the response under q
    assert halfway[6] < halfway[3] < halfway[7]  # inside σ of η's interval
    assert re.search(r"PPERSAUT:MKOOPKLA: 12 coefficients \+ intercept, converged", out)
    assert "coef[C(MOSHOOFD)[T.10]]" in out


@pytest.mark.slow
def test_minibatch_example(tmp_path):
    """minibatch.py on 2·10⁴ rows in minibatches of 200: every method's row is printed, the
    full-batch fit ends on its optimum, the minibatch fit's mean iterate is closer to it than
    its last iterate, and memory-mapped and Dask data read the same minibatches (the same
    ELBO to rounding)."""
    out = _run("minibatch.py", "--rows", "2e4", "--batch", "200", "--no-plot", "--dir",
               str(tmp_path), cwd=tmp_path)
    rows = {line[:40].strip(): line[40:].split() for line in out.splitlines()
            if line.startswith(("full-batch NGD ", "minibatch NGD", "Adam("))}
    assert len(rows) == 13, out  # full batch, and two rows for each of six minibatch fits
    assert float(rows["full-batch NGD"][2]) == 0
    last = float(rows["minibatch NGD, last iterate"][2])
    mean = float(rows["minibatch NGD, mean iterate"][2])
    assert 0 <= mean < last
    elbo = {line.split()[0]: float(line.split()[2]) for line in out.splitlines()
            if line.startswith(("memory ", "memmap ", "dask "))}
    assert elbo["memmap"] == pytest.approx(elbo["dask"], rel=1e-12, abs=0)
    assert abs(elbo["memory"] - elbo["memmap"]) < 1.0  # other minibatches, the same fit


def test_stable_steps_first_steps(tmp_path):
    """examples/stable_steps.py's second table: on gp_poisson the first Monte Carlo step of
    the families' positive-definite steps is taken whole (ρ = 0.1, nothing halved) for
    both families; the plain full-rank step is halved."""
    out = _run("stable_steps.py", "--first-steps", "--seeds", "1", cwd=tmp_path)
    lines = [line.replace("PD (BLR)", "PD").split() for line in out.splitlines()
             if line.startswith(("mean-field", "full-rank"))]
    rows = {tuple(fields[:2]): fields[3:5] for fields in lines}
    assert rows[("mean-field", "PD")] == ["0.1", "0"]
    assert rows[("full-rank", "PD")] == ["0.1", "0"]
    assert int(rows[("full-rank", "plain")][1]) > 0
