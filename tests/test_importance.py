"""PSIS-corrected estimates (FitResult.importance, to_arviz(psis=True)) against exact answers."""

import warnings

import numpy as np
import pytest

import natvi
from natvi import diagnostics
from natvi.importance import ImportanceDraws
from natvi.models import LinearRegression


def _linear_regression(rho=0.2, n=50, seed=0):
    """Three features with correlation rho^|i−j|; known noise: the posterior is Gaussian."""
    rng = np.random.default_rng(seed)
    corr = rho ** np.abs(np.subtract.outer(np.arange(3), np.arange(3)))
    X = rng.standard_normal((n, 3)) @ np.linalg.cholesky(corr).T
    y = 0.5 + X @ np.array([1.0, -0.5, 0.3]) + rng.standard_normal(n)
    return LinearRegression(X, y, noise_scale=1.0, prior_scale=1.0, intercept_scale=10.0)


def _stack(values):
    return np.concatenate([np.atleast_1d(values["intercept"]), values["coef"]])


@pytest.fixture(scope="module")
def linear():
    model = _linear_regression()
    return model, natvi.fit(model, family=natvi.MeanFieldGaussian)


def test_psis_corrects_a_mean_field_fit_to_the_exact_posterior(linear):
    """A mean-field q of a conjugate linear regression has sds 7–9% too small; its
    PSIS-corrected means and sds (8000 draws) are the exact posterior's within Monte Carlo
    error: 4 standard errors sd/√ESS for the means, 4/√(2 ESS) relative for the sds."""
    model, result = linear
    mean, cov = model.exact_posterior()
    sd = np.sqrt(np.diag(cov))
    weighted = result.importance(8000, seed=0)
    assert weighted.reliable and weighted.k_hat < 0.7
    assert 1000 < weighted.ess <= 8000
    q_sd = _stack({k: q.scale for k, q in result.posterior.items()})
    assert np.all(q_sd < 0.95 * sd)  # q alone is off
    np.testing.assert_array_less(np.abs(_stack(weighted.mean()) - mean),
                                 4 * sd / np.sqrt(weighted.ess))
    np.testing.assert_array_less(np.abs(_stack(weighted.sd()) / sd - 1),
                                 4 / np.sqrt(2 * weighted.ess))
    median = _stack({k: v[0] for k, v in weighted.quantile([0.5]).items()})
    np.testing.assert_array_less(np.abs(median - mean), 5 * sd / np.sqrt(weighted.ess))
    # the same draws as sample() with that seed
    np.testing.assert_array_equal(weighted.draws["coef"], result.sample(8000, 0)["coef"])


def test_unreliable_weights_warn():
    """Strongly correlated features (ρ = 0.6, N = 20): the mean-field q misses much of the
    posterior, k̂ > 0.7, and the estimates say so."""
    model = _linear_regression(rho=0.6, n=20)
    result = natvi.fit(model, family=natvi.MeanFieldGaussian)
    with pytest.warns(UserWarning, match="unreliable"):
        weighted = result.importance(2000, seed=0)
    assert not weighted.reliable and weighted.k_hat > 0.7
    assert "(unreliable)" in weighted.summary()


def test_equal_weights_are_plain_moments_and_hazen_quantiles():
    """q equal to the posterior: log weights constant, k̂ = −inf, weights 1/S; the estimates
    are then the draws' plain mean, sd (ddof 0) and NumPy's 'hazen' quantiles."""
    rng = np.random.default_rng(1)
    draws = {"a": rng.normal(size=(500, 2)), "b": rng.normal(size=500)}
    weighted = ImportanceDraws(draws, np.full(500, -3.0))
    assert weighted.k_hat == -np.inf and weighted.ess == pytest.approx(500)
    for name, z in draws.items():
        np.testing.assert_allclose(weighted.mean()[name], z.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(weighted.sd()[name], z.std(axis=0), rtol=1e-12)
        np.testing.assert_allclose(weighted.quantile([0.03, 0.5, 0.97])[name],
                                   np.quantile(z, [0.03, 0.5, 0.97], axis=0, method="hazen"),
                                   rtol=1e-12)
    with pytest.raises(ValueError, match="^q:"):
        weighted.quantile([1.5])


def test_weights_move_draws_to_the_target():
    """Draws of N(0, 1) weighted by N(z; 1, 1)/N(z; 0, 1) estimate N(1, 1): mean, sd and
    quantiles within Monte Carlo error (20 000 draws, k̂ small)."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=20_000)
    weighted = ImportanceDraws({"z": z}, z - 0.5)  # log N(z; 1, 1) − log N(z; 0, 1)
    assert weighted.k_hat < 0.5
    se = 1 / np.sqrt(weighted.ess)
    assert abs(weighted.mean()["z"] - 1.0) < 4 * se
    assert abs(weighted.sd()["z"] - 1.0) < 4 * se
    np.testing.assert_allclose(weighted.quantile([0.1587, 0.5, 0.8413])["z"], [0, 1, 2],
                               atol=6 * se)


def test_systematic_resampling_keeps_each_draw_floor_or_ceil_of_its_share():
    rng = np.random.default_rng(3)
    log_w = rng.normal(scale=0.5, size=300)
    weighted = ImportanceDraws({"z": np.arange(300.0)}, log_w)
    index = weighted.resample_index(1000, seed=4)
    counts = np.bincount(index, minlength=300)
    share = 1000 * weighted.weights
    assert counts.sum() == 1000
    assert np.all((counts >= np.floor(share) - 1e-9) & (counts <= np.ceil(share) + 1e-9))
    np.testing.assert_array_equal(weighted.resample(1000, seed=4)["z"], index)
    np.testing.assert_array_equal(weighted.resample_index(1000, seed=4), index)  # seeded


def test_to_arviz_says_which_draws_it_holds(linear):
    """Plain to_arviz holds draws of q (and says so); psis=True holds draws resampled by the
    PSIS weights, whose sds are the exact posterior's within Monte Carlo error, and which
    natvi's approximate-posterior LOO (a correction for draws of q) refuses."""
    model, result = linear
    plain = result.to_arviz(draws=200, seed=1)
    assert plain["posterior"].attrs["natvi_draws"] == "q"
    assert "independent draws from the variational posterior q" in (
        plain["posterior"].attrs["natvi_description"])
    data = result.to_arviz(draws=4000, seed=1, psis=True)
    attrs = data["posterior"].attrs
    assert attrs["natvi_draws"] == "psis_resampled" and attrs["natvi_k_hat"] < 0.7
    assert "resampled" in attrs["natvi_description"]
    coef = np.asarray(data["posterior"]["coef"])[0]
    _, cov = model.exact_posterior()
    np.testing.assert_array_less(np.abs(coef.std(axis=0) / np.sqrt(np.diag(cov))[1:] - 1),
                                 5 / np.sqrt(2 * attrs["natvi_ess"]))
    with pytest.raises(ValueError, match="resampled by PSIS weights"):
        diagnostics.loo_approximate_posterior(data)


def test_importance_checks_its_arguments(linear):
    _, result = linear
    with pytest.raises(ValueError, match="^draws:"):
        result.importance(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reliable fit does not warn
        result.importance(4000, seed=0)
