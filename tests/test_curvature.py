"""Curvature options of Gaussian natural-gradient steps in GLMs, against their definitions.

"hessian" is the ELBO's own derivative in the predictor variance, ½E[f″] (Price);
"ggn" is half the Gauss–Newton curvature at the predictor's mean; "empirical_fisher"
is −½E[f′²] (VOGN); damping δ moves each E[wⱼ²] gradient by −δ/2.
"""

import numpy as np
import pytest
from scipy import integrate, special, stats

import natvi
from natvi import likelihoods
from natvi.engines import glm
from natvi.models import LogisticRegression, PoissonRegression, ProbitRegression

RNG = np.random.default_rng(0)
Y = np.array([0.0, 1.0, 1.0, 0.0])
LOC = np.array([-1.3, 0.2, 2.5, 0.7])
VAR = np.array([0.4, 1.5, 0.05, 2.0])


def _gauss(g, a, b):
    """E[g(η)], η ~ N(a, b), by adaptive quadrature."""
    return integrate.quad(lambda t: g(a + np.sqrt(b) * t) * stats.norm.pdf(t), -12, 12,
                          epsabs=1e-13, epsrel=1e-12)[0]


@pytest.mark.parametrize("lik", [likelihoods.logistic, likelihoods.probit])
def test_hessian_is_the_derivative_of_the_expectation(lik):
    v0, _, g_var = glm.predictor_expectation(lik, Y, LOC, VAR, 32, "hessian")
    h = 1e-6
    for i in range(len(Y)):
        up, down = VAR.copy(), VAR.copy()
        up[i] += h
        down[i] -= h
        fd = (glm.predictor_expectation(lik, Y, LOC, up)[0]
              - glm.predictor_expectation(lik, Y, LOC, down)[0]) / (2 * h)
        assert abs(g_var[i] - fd) < 1e-7


@pytest.mark.parametrize("lik", [likelihoods.logistic, likelihoods.probit, likelihoods.poisson])
def test_ggn_is_the_curvature_at_the_mean(lik):
    y = Y if lik is not likelihoods.poisson else np.array([0.0, 3.0, 1.0, 7.0])
    value, g_loc, g_var = glm.predictor_expectation(lik, y, LOC, VAR, 32, "ggn")
    exact_value, exact_loc, _ = glm.predictor_expectation(lik, y, LOC, VAR, 32)
    assert value == exact_value and np.array_equal(g_loc, exact_loc)  # only g_var changes
    if lik is likelihoods.logistic:
        expected = -special.expit(LOC) * special.expit(-LOC)
    elif lik is likelihoods.poisson:
        expected = -np.exp(LOC)
    else:
        expected = -stats.norm.pdf(LOC) ** 2 / (stats.norm.cdf(LOC) * stats.norm.sf(LOC))
    np.testing.assert_allclose(g_var, 0.5 * expected, rtol=1e-12)


def test_ggn_is_the_fisher_of_an_exponential_family_likelihood():
    # For a canonical link the Fisher E_y[f′²] equals −f″ = the GGN, for every η.
    eta = np.linspace(-4, 4, 9)
    p = special.expit(eta)
    fisher = p * (1 - p) ** 2 + (1 - p) * p**2  # E_y[(y − σ)²]
    np.testing.assert_allclose(-likelihoods.logistic.ggn(0.0, eta), fisher, rtol=1e-12)
    lam = np.exp(eta)
    np.testing.assert_allclose(-likelihoods.poisson.ggn(0.0, eta), lam, rtol=1e-12)


def test_empirical_fisher_is_minus_half_the_mean_squared_gradient():
    _, _, g_var = glm.predictor_expectation(likelihoods.logistic, Y, LOC, VAR, 32,
                                              "empirical_fisher")
    for i in range(len(Y)):
        ref = _gauss(lambda e, y=Y[i]: (y - special.expit(e)) ** 2, LOC[i], VAR[i])
        assert abs(g_var[i] + 0.5 * ref) < 1e-9


@pytest.mark.parametrize("family", [natvi.MeanFieldGaussian, natvi.FullRankGaussian])
def test_damping_shifts_only_the_second_moment_gradients(family):
    X = RNG.normal(size=(50, 3))
    y = (RNG.random(50) < 0.5).astype(float)
    plain = LogisticRegression(X, y, prior_scale=1.0)
    damped = LogisticRegression(X, y, prior_scale=1.0, damping=0.8)
    fams = {"intercept": family, "coef": family} if family is natvi.MeanFieldGaussian else \
        {("intercept", "coef"): family}
    q = plain.initial_posterior(fams)
    v0, g0 = plain.expected_log_joint(q)
    v1, g1 = damped.expected_log_joint(q)
    assert v0 == v1
    for key in g0:
        diff = np.asarray(g1[key]) - np.asarray(g0[key])
        if family is natvi.FullRankGaussian:
            k = q[key].dim
            expected = np.concatenate([np.zeros(k), np.diag(np.full(k, -0.4)).ravel()])
        else:
            expected = np.zeros_like(diff)
            expected[..., 1] = -0.4
        np.testing.assert_allclose(diff, expected, atol=1e-12)


@pytest.mark.parametrize("model", [LogisticRegression, ProbitRegression])
def test_only_the_exact_curvature_reaches_the_elbo_optimum(model):
    """The default follows the ELBO; a Gauss–Newton-type curvature stops short of it."""
    X = RNG.normal(size=(200, 3))
    y = (RNG.random(200) < special.expit(X @ [1.0, -1.0, 0.5])).astype(float)
    exact = natvi.fit(model(X, y, prior_scale=1.0))
    assert exact.converged
    for curvature in ("ggn", "empirical_fisher"):
        other = natvi.fit(model(X, y, prior_scale=1.0, curvature=curvature), max_iter=200)
        assert np.isfinite(other.elbo) and other.elbo <= exact.elbo + 1e-9


@pytest.mark.parametrize("kwargs, name", [({"curvature": "newton"}, "curvature"),
                                          ({"damping": -1.0}, "damping"),
                                          ({"damping": np.nan}, "damping")])
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LogisticRegression(np.ones((3, 1)), [0, 1, 0], **kwargs)
    with pytest.raises(ValueError, match=name):
        PoissonRegression(np.ones((3, 1)), [0, 1, 0], **kwargs)
