"""ARD logistic regression: relevance found, both factors moved by natural gradients, and
the Gamma factor at its coordinate-ascent fixed point.

Synthetic data (fixed seed): N = 300, D = 50 standard-normal features of which the first
5 carry signal (β = 2, −1.5, 1.5, −2, 1; intercept 0.5) and 45 are noise.
"""

import numpy as np
import pytest
from scipy import special, stats

import natvi
from natvi.families import FullRankGaussian, Gamma, MeanFieldGaussian
from natvi.models import ARDLogisticRegression

N, D, RELEVANT = 300, 50, 5
BETA = np.r_[[2.0, -1.5, 1.5, -2.0, 1.0], np.zeros(D - RELEVANT)]
A0, B0 = 1e-2, 1e-2  # the model's default Gamma(a, b) prior on each precision


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D))
    y = (rng.random(N) < special.expit(0.5 + X @ BETA)).astype(int)
    return X, y


X, Y = _data()


def _model():
    return ARDLogisticRegression(X, Y)


def _coef_moments(posterior):
    """Means and variances of the coefficients, whatever the Gaussian factorization."""
    if "coef" in posterior:
        return posterior["coef"].loc, posterior["coef"].variance
    q = posterior[("intercept", "coef")]
    return q.loc[1:], np.diag(q.cov)[1:]


def _gamma_update(posterior):
    """Coordinate ascent for q(λⱼ): Gamma(a + ½, b + ½E[βⱼ²])."""
    m, v = _coef_moments(posterior)
    return np.full(D, A0 + 0.5), B0 + 0.5 * (m**2 + v)


def _gamma_kl(a1, b1, a2, b2):
    return ((a1 - a2) * special.digamma(a1) - special.gammaln(a1) + special.gammaln(a2)
            + a2 * (np.log(b1) - np.log(b2)) + a1 * (b2 - b1) / b1)


@pytest.fixture(scope="module")
def default_fit():
    return natvi.fit(_model())


# ---- relevance --------------------------------------------------------------------------
def _check_relevance(posterior):
    lam = posterior["precision"].mean()
    m, v = _coef_moments(posterior)
    z = m[:RELEVANT] / np.sqrt(v[:RELEVANT])
    worst_relevant, irrelevant = lam[:RELEVANT].max(), lam[RELEVANT:]
    print(f"E[lambda] relevant max {worst_relevant:.3f}; irrelevant min {irrelevant.min():.3f} "
          f"({irrelevant.min() / worst_relevant:.1f}x), median {np.median(irrelevant):.2f} "
          f"({np.median(irrelevant) / worst_relevant:.1f}x); relevant z = {np.round(z, 1)}")
    # The five smallest precisions are exactly the relevant features …
    assert irrelevant.min() > worst_relevant
    # … and a typical irrelevant one is at least ten times the largest relevant one.
    assert np.median(irrelevant) > 10 * worst_relevant
    # The relevant coefficients: right signs, more than 3 posterior sds from zero.
    np.testing.assert_array_equal(np.sign(m[:RELEVANT]), np.sign(BETA[:RELEVANT]))
    np.testing.assert_array_less(3.0, np.abs(z))


def test_default_fit_converges_and_finds_the_relevant_features(default_fit):
    """The default ("auto") is one full-rank Gaussian over the intercept and coefficients
    (N·k² = 7.8e5 is affordable), with the Gamma precisions."""
    print(f"status {default_fit.status}, n_iter {default_fit.n_iter}")
    assert default_fit.status == "converged"
    assert default_fit.optimizer.startswith("ngd")
    assert list(default_fit.posterior) == [("intercept", "coef"), "precision"]
    assert isinstance(default_fit.posterior[("intercept", "coef")], FullRankGaussian)
    assert isinstance(default_fit.posterior["precision"], Gamma)
    assert default_fit.family_reason.startswith("a full-rank Gaussian over the intercept")
    _check_relevance(default_fit.posterior)


def test_mean_field_fit_converges_and_finds_the_relevant_features():
    result = natvi.fit(_model(), family=MeanFieldGaussian)
    print(f"mean field: status {result.status}, n_iter {result.n_iter}")
    assert result.status == "converged"
    assert isinstance(result.posterior["coef"], MeanFieldGaussian)
    _check_relevance(result.posterior)


def test_both_factors_take_the_natural_gradient_step():
    """The first step moves every factor, the Gaussians and the Gamma alike, along its own
    natural gradient ∇_μ L at the start, by the same step size: η₁ − η₀ = ρ₁ ∇_μ L(q₀)."""
    model = _model()
    families = {"intercept": MeanFieldGaussian, "coef": MeanFieldGaussian, "precision": Gamma}
    start = model.initial_posterior(families)
    _, grads = natvi.elbo(model, start)
    seen = {}

    def record(iteration, elbo, posterior):
        if iteration == 1:
            seen.update({k: np.array(q.natural) for k, q in posterior.items()})

    result = natvi.fit(model, max_iter=1, callback=record, family=MeanFieldGaussian)
    rho = result.history["step_size"][1]
    assert rho > 0
    for key, q in start.items():
        assert np.max(np.abs(grads[key])) > 0, key
        np.testing.assert_allclose(seen[key] - q.natural, rho * grads[key], rtol=1e-9,
                                   atol=1e-12, err_msg=key)


# ---- the Gamma factor's fixed point -------------------------------------------------------
def test_gamma_factor_fixed_point_at_default_convergence(default_fit):
    """At the default tolerance (~1e-9 nats of gain) the coordinate-ascent update
    Gamma(a + ½, b + ½E[β²]) moves q(λ) by less than 1e-8 nats in KL, and its parameters
    by less than 1e-4 relative."""
    q = default_fit.posterior["precision"]
    shape, rate = _gamma_update(default_fit.posterior)
    kl = np.sum(_gamma_kl(shape, rate, q.shape, q.rate))
    rel = np.max(np.abs(q.rate - rate) / rate)
    print(f"KL(T(q) ‖ q) = {kl:.2e}; rate residual {rel:.2e}, shape residual "
          f"{np.max(np.abs(q.shape - shape) / shape):.2e}")
    assert kl < 1e-8
    np.testing.assert_allclose(q.shape, shape, rtol=1e-4)
    np.testing.assert_allclose(q.rate, rate, rtol=1e-4)


def test_gamma_factor_fixed_point_when_run_to_rounding():
    """Run until no step gains anything (tol=0): the fixed point then holds to 1e-6."""
    result = natvi.fit(_model(), tol=0.0)
    assert result.status == "converged"
    q = result.posterior["precision"]
    shape, rate = _gamma_update(result.posterior)
    print(f"n_iter {result.n_iter}; rate residual {np.max(np.abs(q.rate - rate) / rate):.2e}")
    np.testing.assert_allclose(q.shape, shape, rtol=1e-6)
    np.testing.assert_allclose(q.rate, rate, rtol=1e-6)


# ---- the ELBO and densities ---------------------------------------------------------------
def test_elbo_against_monte_carlo():
    """natvi's deterministic ELBO against 20 000 draws of log p(y, z) − log q(z), written
    with scipy's densities (5 standard errors)."""
    Xs, ys = X[:60, :6], Y[:60]
    model = ARDLogisticRegression(Xs, ys, precision_shape=2.0, precision_rate=1.5,
                                  intercept_scale=2.0)
    rng = np.random.default_rng(1)
    q = {"intercept": MeanFieldGaussian(loc=0.3, scale=0.4),
         "coef": MeanFieldGaussian(loc=rng.normal(scale=0.5, size=6),
                                   scale=rng.uniform(0.1, 0.5, size=6)),
         "precision": Gamma(shape=rng.uniform(1, 4, size=6), rate=rng.uniform(0.5, 2, size=6))}
    value, _ = natvi.elbo(model, q)
    S = 20_000
    alpha = q["intercept"].loc + q["intercept"].scale * rng.standard_normal(S)
    beta = q["coef"].loc + q["coef"].scale * rng.standard_normal((S, 6))
    lam = rng.gamma(q["precision"].shape, 1 / q["precision"].rate, size=(S, 6))
    eta = alpha[:, None] + beta @ Xs.T
    log_p = (stats.bernoulli.logpmf(ys, special.expit(eta)).sum(axis=1)
             + stats.norm.logpdf(alpha, 0, 2.0)
             + stats.norm.logpdf(beta, 0, 1 / np.sqrt(lam)).sum(axis=1)
             + stats.gamma.logpdf(lam, 2.0, scale=1 / 1.5).sum(axis=1))
    log_q = (stats.norm.logpdf(alpha, q["intercept"].loc, q["intercept"].scale)
             + stats.norm.logpdf(beta, q["coef"].loc, q["coef"].scale).sum(axis=1)
             + stats.gamma.logpdf(lam, q["precision"].shape,
                                  scale=1 / q["precision"].rate).sum(axis=1))
    w = log_p - log_q
    se = w.std(ddof=1) / np.sqrt(S)
    assert abs(value - w.mean()) < 5 * se, (value, w.mean(), se)


def test_log_joint_and_pointwise_against_scipy():
    model = ARDLogisticRegression(X[:40, :4], Y[:40], precision_shape=2.0, precision_rate=0.5,
                                  intercept_scale=3.0)
    rng = np.random.default_rng(2)
    draws = {"intercept": rng.normal(size=5), "coef": rng.normal(size=(5, 4)),
             "precision": rng.gamma(2.0, size=(5, 4))}
    eta = draws["intercept"][:, None] + draws["coef"] @ X[:40, :4].T
    pw = stats.bernoulli.logpmf(Y[:40], special.expit(eta))
    np.testing.assert_allclose(model.pointwise_log_likelihood(draws)["y"], pw, rtol=1e-12)
    expected = (pw.sum(axis=1) + stats.norm.logpdf(draws["intercept"], 0, 3.0)
                + stats.norm.logpdf(draws["coef"], 0, 1 / np.sqrt(draws["precision"])).sum(1)
                + stats.gamma.logpdf(draws["precision"], 2.0, scale=2.0).sum(axis=1))
    np.testing.assert_allclose(model.log_joint(draws), expected, rtol=1e-12)
    assert model.latents["precision"].shape == (4,)
    assert model.dims["precision"] == ["feature"]


# ---- bad input --------------------------------------------------------------------------------
_X = np.array([[0.1, 0.2], [0.3, -0.4], [1.0, 0.0]])


@pytest.mark.parametrize("X", [
    np.ones(3),
    np.array([[0.1, np.nan], [0.3, 0.4], [1.0, 0.0]]),
    np.array([[0.1, np.inf], [0.3, 0.4], [1.0, 0.0]]),
], ids=["1d", "nan", "inf"])
def test_bad_X(X):
    with pytest.raises(ValueError, match="^X:"):
        ARDLogisticRegression(X, [0, 1, 1])


@pytest.mark.parametrize("y", [[0, 1], [0, 1, 2], [0, -1, 1], [0, 0.5, 1], [0, np.nan, 1]],
                         ids=["short", "two", "minus-one", "half", "nan"])
def test_bad_y(y):
    with pytest.raises(ValueError, match="^y:"):
        ARDLogisticRegression(_X, y)


@pytest.mark.parametrize("arg", ["precision_shape", "precision_rate", "intercept_scale"])
@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf, "1"])
def test_bad_scales(arg, value):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        ARDLogisticRegression(_X, [0, 1, 1], **{arg: value})


def test_precision_needs_a_gamma_factor():
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(ARDLogisticRegression(_X, [0, 1, 1]), family={"precision": natvi.LogNormal})
