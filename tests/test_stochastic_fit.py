"""Fitting on a stochastic ELBO: the pathwise Monte Carlo engine inside natvi.fit."""

import autograd.numpy as anp
import numpy as np

import natvi
from natvi.models import LogisticRegression
from natvi.monte_carlo import expected_log_joint


class MonteCarloLogistic(LogisticRegression):
    """Logistic regression whose expected log joint is estimated by Monte Carlo."""

    deterministic = False

    def _log_joint_one(self, z):
        eta = z["intercept"] + anp.dot(self.X, z["coef"])
        lik = anp.sum(self.y * eta - anp.logaddexp(0.0, eta))
        return lik - 0.5 * (z["intercept"] ** 2 + anp.sum(z["coef"] ** 2))  # N(0, 1) priors

    def expected_log_joint(self, posterior, rng=None):
        value, grads = expected_log_joint(self._log_joint_one, posterior, rng, n_samples=8)
        d = self.X.shape[1] + 1
        return value - 0.5 * d * np.log(2 * np.pi), grads


def test_robbins_monro_ngd_reaches_the_quadrature_optimum():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-(0.5 + X @ [1.0, -1.0, 0.5])))).astype(float)
    exact = natvi.fit(LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0))
    assert exact.converged

    opt = natvi.optim.natural_gradient(0.5, schedule="robbins_monro", decay=0.7)
    noisy = natvi.fit(MonteCarloLogistic(X, y, prior_scale=1.0, intercept_scale=1.0), opt,
                      max_iter=2000, seed=1)
    assert noisy.status in ("converged", "max_iter")
    assert np.all(np.isfinite(noisy.history["elbo"]))
    for name in ("intercept", "coef"):
        q, q0 = noisy.posterior[name], exact.posterior[name]
        # Within a tenth of a posterior sd of the exact mean-field optimum.
        np.testing.assert_array_less(np.abs(q.loc - q0.loc), 0.1 * q0.scale)
        np.testing.assert_allclose(q.scale, q0.scale, rtol=0.1)
    # Same seed, same stochastic fit, to the bit.
    again = natvi.fit(MonteCarloLogistic(X, y, prior_scale=1.0, intercept_scale=1.0), opt,
                      max_iter=2000, seed=1)
    np.testing.assert_array_equal(again.history["elbo"], noisy.history["elbo"])
