"""PSIS-LOO by subsampling (Magnusson et al. 2019): exact with every observation, unbiased
with a standard error that covers the full PSIS-LOO; to_arviz within its memory limit."""

import numpy as np
import pytest

import natvi
from natvi.diagnostics import loo_approximate_posterior
from natvi.loo import _estimate, glm_predictive_density
from natvi.models import BetaBernoulli, LogisticRegression
from natvi.validation import (
    DENSITY_VALUES,
    MAX_BYTES_ENV,
    SAMPLE_ARRAYS,
    check_draws_memory,
)


def _logistic(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ np.array([1.0, -0.5, 0.25, 0.0])))))
    return natvi.fit(LogisticRegression(X, y.astype(float)), seed=0, progress=False)


@pytest.fixture(scope="module")
def moderate():
    """A fit on 20,000 rows and its exact PSIS-LOO from 100 draws (seed 1)."""
    result = _logistic(20_000)
    return result, natvi.loo_subsample(result, draws=100, seed=1)


def test_every_observation_gives_exact_psis_loo():
    for result in (_logistic(1500, seed=2),
                   natvi.fit(BetaBernoulli(np.random.default_rng(3).random(300) < 0.3), seed=0,
                             progress=False)):
        ours = natvi.loo_subsample(result, draws=200, seed=4)
        ref = loo_approximate_posterior(result.to_arviz(draws=200, seed=4))
        assert ours.subsampling_se == 0.0 and len(ours.index) == ref.elpd_i.size
        for a, b in ((ours.elpd, ref.elpd), (ours.se, ref.se), (ours.p_loo, ref.p_loo)):
            assert a == pytest.approx(b, rel=1e-10)
        np.testing.assert_allclose(ours.elpd_i, ref.elpd_i, rtol=1e-10)
        np.testing.assert_allclose(ours.pareto_k, ref.pareto_k, rtol=1e-8)


def test_two_percent_of_the_rows_agree_with_full_psis_loo(moderate):
    result, full = moderate
    sub = natvi.loo_subsample(result, observations=0.02, draws=100, seed=1)  # full's draws
    assert len(sub.index) == 400 and len(np.unique(sub.index)) == 400
    assert abs(sub.elpd - full.elpd) <= 2 * sub.subsampling_se
    assert sub.se == pytest.approx(full.se, rel=0.1)
    assert "400 of 20000 observations" in str(sub)


def test_the_estimator_is_unbiased_and_its_standard_error_right(moderate):
    # With every elpdᵢ and πᵢ known, the estimator over 2,000 simple random samples of
    # m = 400: its mean is the full elpd (within 4 standard errors of that mean), its sd the
    # textbook N·√((1 − m/N) S²ₑ / m), and ±2 of its own SEs cover the full elpd 95% of the
    # time.
    result, full = moderate
    approx = glm_predictive_density(result.model, result.posterior)
    n, m = len(approx), 400
    e = full.elpd_i - approx
    sd = n * np.sqrt((1 - m / n) * np.var(e, ddof=1) / m)
    rng = np.random.default_rng(5)
    estimates, ses = [], []
    for _ in range(2000):
        index = np.sort(rng.choice(n, size=m, replace=False))
        est = _estimate(full.elpd_i[index], full.pareto_k[index], np.zeros(m), approx, index,
                        n, 100, "")
        estimates.append(est.elpd)
        ses.append(est.subsampling_se)
    estimates, ses = np.array(estimates), np.array(ses)
    assert abs(estimates.mean() - full.elpd) < 4 * sd / np.sqrt(2000)
    assert np.std(estimates) == pytest.approx(sd, rel=0.1)
    assert np.mean(ses) == pytest.approx(sd, rel=0.1)
    covered = np.mean(np.abs(estimates - full.elpd) <= 2 * ses)
    assert 0.92 <= covered <= 0.98


def test_bad_arguments_are_named(moderate):
    result, _ = moderate
    for bad in (0, 1, 1.5, 0.0, 20_001, True, "all"):
        with pytest.raises(ValueError, match="observations: expected a count from 2 to 20000"):
            natvi.loo_subsample(result, observations=bad, draws=30)
    with pytest.raises(ValueError, match="draws: expected at least 25"):
        natvi.loo_subsample(result, observations=100, draws=10)
    with pytest.raises(ValueError, match=r"var_name: expected one of \['y'\]"):
        natvi.loo_subsample(result, observations=100, draws=30, var_name="z")


def test_to_arviz_leaves_out_a_log_likelihood_over_the_memory_limit(moderate, monkeypatch):
    result = moderate[0]
    model, draws = result.model, 200
    # a limit between what log p(x, z) and what the pointwise log-likelihood need
    draws_bytes = 8 * draws * (SAMPLE_ARRAYS * 5 + DENSITY_VALUES)
    need = [draws_bytes + model.log_density_memory(draws, pointwise) for pointwise in (0, 1)]
    assert need[0] < need[1]
    monkeypatch.setenv(MAX_BYTES_ENV, str((need[0] + need[1]) / 2))
    check_draws_memory(model, draws, log_density="log_joint")
    with pytest.raises(ValueError):
        check_draws_memory(model, draws, log_density="pointwise_log_likelihood")
    with pytest.warns(UserWarning, match=r"to_arviz: the log_likelihood group is left out: "
                                         r"draws: .* over the limit of .*loo_subsample"):
        data = result.to_arviz(draws=draws, seed=0)
    assert "log_likelihood" not in data
    assert "loo_subsample" in data["posterior"].attrs["natvi_log_likelihood"]
    monkeypatch.setenv(MAX_BYTES_ENV, "inf")
    assert "log_likelihood" in result.to_arviz(draws=draws, seed=0)
