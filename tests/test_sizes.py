"""Sizes: draws that would not fit in memory are refused, before any is drawn.

The limit comes from the environment variable NATVI_MAX_BYTES here (set small, so that
the refusals happen at sizes the code would otherwise allocate in milliseconds), or from
the free memory, which no machine has enough of for 10¹² draws; no test allocates much.
"""

import re
import tracemalloc

import autograd.numpy as anp
import numpy as np
import pandas as pd
import pytest

import natvi
from natvi import cli, validation
from natvi.models import LogisticRegression
from natvi.sklearn import BayesianLogisticRegression

ABSURD = 10**12


def _data(n=200, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ np.ones(d)))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    """A logistic regression of 200 rows on 2 features: 3 latent values per draw."""
    return natvi.fit(LogisticRegression(*_data()), seed=0)


def _custom_fit(n_obs, seed=0):
    """A normal mean with a log-joint function, evaluated draw by draw."""
    y = np.random.default_rng(seed).normal(size=n_obs)

    def pointwise(z):
        return -0.5 * (y - z["mu"]) ** 2

    model = natvi.Model(lambda z: -0.5 * z["mu"] ** 2 + anp.sum(pointwise(z)), {"mu": "real"},
                        pointwise_log_likelihood=pointwise, observed_data={"y": y},
                        engine="monte_carlo")  # not the exact fit fixed draws give: q ≠ p
    return natvi.fit(model, max_iter=2, seed=seed)


def _limit(monkeypatch, n_bytes):
    monkeypatch.setenv("NATVI_MAX_BYTES", str(n_bytes))


# ---- the limit --------------------------------------------------------------------------
@pytest.mark.parametrize("n_bytes, text", [
    (0, "0 bytes"), (512, "512 bytes"), (1000, "1.0 kB"), (8e9, "8.0 GB"), (999.96e6, "1.0 GB"),
    (1.5e15, "1.5 PB"), (3.2e21, "3200.0 EB"),
])
def test_format_bytes(n_bytes, text):
    assert validation.format_bytes(n_bytes) == text


def test_limit_is_half_the_free_memory_else_a_fixed_cap(monkeypatch):
    monkeypatch.delenv("NATVI_MAX_BYTES", raising=False)
    monkeypatch.setattr(validation, "available_memory", lambda: 10 * 10**9)
    limit, source = validation.memory_limit()
    assert limit == 5e9
    assert "50% of the 10.0 GB of memory free" in source and "NATVI_MAX_BYTES" in source
    monkeypatch.setattr(validation, "available_memory", lambda: None)
    assert validation.memory_limit()[0] == validation.FALLBACK_MAX_BYTES
    _limit(monkeypatch, "2.5e6")
    assert validation.memory_limit() == (2.5e6, "set by NATVI_MAX_BYTES")
    _limit(monkeypatch, "inf")
    assert validation.memory_limit()[0] == np.inf


def test_free_memory_is_read_or_unknown():
    free = validation.available_memory()
    assert free is None or (isinstance(free, int) and free > 0)


@pytest.mark.parametrize("files, free", [
    ({}, 8_192_000_000),  # no cgroup v2 files: the host's free memory
    ({"memory.max": "max\n", "memory.current": "1\n", "memory.stat": ""}, 8_192_000_000),
    # a container with a 3 GB limit using 2 GB, of which 0.5 GB is inactive file cache
    ({"memory.max": "3000000000\n", "memory.current": "2000000000\n",
      "memory.stat": "anon 1500000000\ninactive_file 500000000\n"}, 1_500_000_000),
])
def test_free_memory_of_a_linux_host_or_container(monkeypatch, tmp_path, files, free):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(validation, "MEMINFO", str(meminfo))
    monkeypatch.setattr(validation, "CGROUP", str(tmp_path))
    assert validation.available_memory() == free


@pytest.mark.parametrize("text", ["abc", "", "0", "-1e9", "nan"])
def test_limit_from_the_environment_must_be_a_positive_number(monkeypatch, fitted, text):
    _limit(monkeypatch, text)
    with pytest.raises(ValueError, match=r"^NATVI_MAX_BYTES: expected a number of bytes > 0"):
        fitted.sample(10)


def test_check_memory_message(monkeypatch):
    _limit(monkeypatch, 1e6)
    validation.check_memory(1e6, "n", "a million bytes", "use less")
    with pytest.raises(ValueError) as info:
        validation.check_memory(8e9, "n", "eight billion bytes", "use less")
    assert str(info.value) == ("n: eight billion bytes would take about 8.0 GB of memory, over "
                               "the limit of 1.0 MB (set by NATVI_MAX_BYTES); use less")


# ---- FitResult --------------------------------------------------------------------------
def test_sample_is_refused_over_the_limit(monkeypatch, fitted):
    _limit(monkeypatch, 1e5)
    assert fitted.sample(1000)["coef"].shape == (1000, 2)  # 3 values × 1000 draws: 96 kB
    with pytest.raises(ValueError) as info:
        fitted.sample(2000)
    assert str(info.value) == (
        "draws: 2000 draws from q would take about 192.0 kB of memory, over the limit of "
        "100.0 kB (set by NATVI_MAX_BYTES); ask for fewer draws")


# to_arviz leaves out a pointwise log-likelihood over the limit (with a warning), and
# refuses only when log p(x, z) at the draws does not fit either
@pytest.mark.parametrize("method, density", [("to_arviz", "log p(x, z)"),
                                             ("pareto_k", "log p(x, z)"),
                                             ("diagnose", "log p(x, z)")])
def test_log_densities_at_the_draws_are_counted(monkeypatch, fitted, method, density):
    # 1000 draws of 3 values fit in 600 kB; with 200 log-likelihood terms each they do not
    _limit(monkeypatch, 6e5)
    fitted.sample(1000)
    with pytest.raises(ValueError, match=rf"^draws: 1000 draws from q and {re.escape(density)} "
                                         r"at each would take about \d\.\d MB of memory, over "
                                         r"the limit of 600\.0 kB .*; ask for fewer draws$"):
        getattr(fitted, method)(draws=1000)
    getattr(fitted, method)(draws=50)


@pytest.mark.parametrize("method", ["sample", "to_arviz", "pareto_k", "diagnose"])
def test_absurd_draws_are_refused_on_any_machine(monkeypatch, fitted, method):
    monkeypatch.delenv("NATVI_MAX_BYTES", raising=False)
    with pytest.raises(ValueError, match=rf"^draws: {ABSURD} draws from q .* over the limit "
                                         r"of .*; ask for fewer draws$"):
        getattr(fitted, method)(draws=ABSURD)


def test_a_log_joint_function_is_counted_draw_by_draw(monkeypatch):
    # Model.log_joint evaluates a function draw by draw: one value per draw, whatever the
    # data; the pointwise log-likelihood stacks N = 100,000 values per draw.
    result = _custom_fit(100_000)
    _limit(monkeypatch, 1e7)
    assert np.isfinite(result.pareto_k(draws=100))
    with pytest.warns(UserWarning, match=r"log_likelihood group is left out: draws: 100 draws "
                                         r"from q and the pointwise log-likelihood at each "
                                         r"would take about 161\.6 MB"):
        data = result.to_arviz(draws=100)
    assert "log_likelihood" not in data and "posterior" in data


def test_a_result_loaded_without_its_model_says_so(tmp_path, fitted):
    fitted.save(tmp_path / "r.npz")
    loaded = natvi.load(tmp_path / "r.npz")
    assert loaded.sample(10)["coef"].shape == (10, 2)
    with pytest.raises(ValueError, match="loaded without its model"):
        loaded.to_arviz(draws=10)


# ---- the estimates against the memory the calls take ------------------------------------
def _estimate_and_peak(monkeypatch, module, call):
    """(bytes ``module.check_memory`` was asked about, bytes NumPy allocated at the peak)."""
    asked = []
    check = module.check_memory
    monkeypatch.setattr(module, "check_memory", lambda n, *args: asked.append(n) or check(n, *args))
    tracemalloc.start()
    try:
        call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return asked[0], peak


@pytest.mark.parametrize("family", [None, natvi.FullRankGaussian])
@pytest.mark.parametrize("method", ["sample", "pareto_k", "to_arviz"])
def test_estimates_are_the_peak_of_a_glm_to_a_factor_of_two(monkeypatch, method, family):
    result = natvi.fit(LogisticRegression(*_data(n=2000, d=20)), family=family, max_iter=5)
    getattr(result, method)(draws=30)  # imports and caches out of the measurement
    estimate, peak = _estimate_and_peak(monkeypatch, validation,
                                        lambda: getattr(result, method)(draws=500))
    assert peak / 2 <= estimate <= 2 * peak


@pytest.mark.parametrize("method", ["pareto_k", "to_arviz"])
def test_estimates_are_the_peak_of_a_log_joint_function_to_a_factor_of_two(monkeypatch, method):
    result = _custom_fit(5000)
    getattr(result, method)(draws=30)
    estimate, peak = _estimate_and_peak(monkeypatch, validation,
                                        lambda: getattr(result, method)(draws=500))
    assert peak / 2 <= estimate <= 2 * peak


def test_estimate_is_the_peak_of_sampled_predictions_to_a_factor_of_two(monkeypatch):
    X, y = _data(n=2000, d=5)
    clf = BayesianLogisticRegression(predictive="sampling", draws=500).fit(X, y)
    clf.predict_proba(X[:10])
    estimate, peak = _estimate_and_peak(monkeypatch, natvi.sklearn, lambda: clf.predict_proba(X))
    assert peak / 2 <= estimate <= 2 * peak


# ---- the command line and the scikit-learn estimator ---------------------------------------
@pytest.fixture
def csv(tmp_path):
    X, y = _data(n=40)
    path = tmp_path / "data.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y}).to_csv(path, index=False)
    return path


def test_cli_refuses_draws_before_fitting(monkeypatch, capsys, csv):
    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking --draws")

    _limit(monkeypatch, 2e5)
    with monkeypatch.context() as m:
        m.setattr(natvi, "fit", no_fit)
        assert cli.main(["fit", str(csv), "--target", "y", "--draws", "1000"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("natvi: error: --draws: 1000 draws from q and the pointwise "
                          "log-likelihood at each would take about 1.5 MB of memory, over the "
                          "limit of 200.0 kB (set by NATVI_MAX_BYTES); ask for fewer draws")
    assert cli.main(["fit", str(csv), "--target", "y", "--draws", "100"]) == 0
    assert "from 100 draws" in capsys.readouterr().out


def test_cli_refuses_absurd_draws_on_any_machine(monkeypatch, capsys, csv):
    monkeypatch.delenv("NATVI_MAX_BYTES", raising=False)
    assert cli.main(["fit", str(csv), "--target", "y", "--draws", str(ABSURD)]) == 1
    assert capsys.readouterr().err.startswith(f"natvi: error: --draws: {ABSURD} draws from q")


def test_estimator_refuses_draws_at_fit_when_it_predicts_by_sampling(monkeypatch):
    monkeypatch.delenv("NATVI_MAX_BYTES", raising=False)
    X, y = _data()
    with pytest.raises(ValueError, match=rf"^draws: predicting 1 row from {ABSURD} draws would "
                                         r"take about .*; ask for fewer draws$"):
        BayesianLogisticRegression(predictive="sampling", draws=ABSURD).fit(X, y)
    # the probit predictive takes no draws
    assert BayesianLogisticRegression(draws=ABSURD).fit(X, y).predict(X).shape == (200,)


def test_estimator_refuses_draws_for_too_many_rows(monkeypatch):
    X, y = _data()
    _limit(monkeypatch, 1e6)
    clf = BayesianLogisticRegression(predictive="sampling", draws=1000).fit(X, y)
    with pytest.raises(ValueError, match=r"^draws: predicting 200 rows from 1000 draws would "
                                         r"take about 12\.8 MB of memory, over the limit of "
                                         r"1\.0 MB .*; ask for fewer draws, or predict fewer "
                                         r"rows at a time$"):
        clf.predict_proba(X)
    assert clf.predict_proba(X[:10]).shape == (10, 2)
