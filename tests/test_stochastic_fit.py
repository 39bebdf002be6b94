"""Fitting on a stochastic ELBO: the pathwise Monte Carlo engine inside natvi.fit."""

import autograd.numpy as anp
import numpy as np

import natvi
from natvi.families import MeanFieldGaussian
from natvi.models import LogisticRegression


def MonteCarloLogistic(X, y, prior_scale, intercept_scale):
    """Logistic regression as a custom natvi.Model: its ELBO is estimated by Monte Carlo."""
    assert prior_scale == intercept_scale == 1.0

    def log_joint(z):
        eta = z["intercept"] + anp.dot(X, z["coef"])
        lik = anp.sum(y * eta - anp.logaddexp(0.0, eta))
        prior = -0.5 * (z["intercept"] ** 2 + anp.sum(z["coef"] ** 2))  # N(0, 1) priors
        return lik + prior - 0.5 * (X.shape[1] + 1) * np.log(2 * np.pi)

    return natvi.Model(log_joint, {"intercept": "real", "coef": ((X.shape[1],), "real")},
                       n_samples=8)


def test_robbins_monro_ngd_reaches_the_quadrature_optimum():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-(0.5 + X @ [1.0, -1.0, 0.5])))).astype(float)
    exact = natvi.fit(LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0),
                      family=MeanFieldGaussian)
    assert exact.converged

    opt = natvi.optim.natural_gradient(0.5, schedule="robbins_monro", decay=0.7)
    noisy = natvi.fit(MonteCarloLogistic(X, y, prior_scale=1.0, intercept_scale=1.0), opt,
                      max_iter=2000, seed=1, family=MeanFieldGaussian)
    assert noisy.status in ("converged", "max_iter")
    assert np.all(np.isfinite(noisy.history["elbo"]))
    for name in ("intercept", "coef"):
        q, q0 = noisy.posterior[name], exact.posterior[name]
        # Within a tenth of a posterior sd of the exact mean-field optimum.
        np.testing.assert_array_less(np.abs(q.loc - q0.loc), 0.1 * q0.scale)
        np.testing.assert_allclose(q.scale, q0.scale, rtol=0.1)
    # Same seed, same stochastic fit, to the bit.
    again = natvi.fit(MonteCarloLogistic(X, y, prior_scale=1.0, intercept_scale=1.0), opt,
                      max_iter=2000, seed=1, family=MeanFieldGaussian)
    np.testing.assert_array_equal(again.history["elbo"], noisy.history["elbo"])
