"""The pathwise Monte Carlo engine is unbiased: its mean over seeds matches quadrature."""

import autograd.numpy as anp
import numpy as np
import pytest

from natvi.engines.monte_carlo import expected_log_joint
from natvi.families import MeanFieldGaussian
from natvi.models import LogisticRegression


def _problem():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    y = (rng.random(40) < 0.5).astype(float)
    model = LogisticRegression(X, y, prior_scale=1.5, intercept_scale=2.0)
    posterior = {"intercept": MeanFieldGaussian(0.3, 0.4),
                 "coef": MeanFieldGaussian(rng.normal(size=3) * 0.5, [0.3, 0.5, 0.2])}

    def log_joint(z):
        eta = z["intercept"] + anp.dot(X, z["coef"])
        lik = anp.sum(y * eta - anp.logaddexp(0.0, eta))
        prior = (-0.5 * z["intercept"] ** 2 / 4.0 - 0.5 * np.log(2 * np.pi * 4.0)
                 + anp.sum(-0.5 * z["coef"] ** 2 / 2.25 - 0.5 * np.log(2 * np.pi * 2.25)))
        return lik + prior

    return model, posterior, log_joint


def test_pathwise_estimates_are_unbiased_against_quadrature():
    model, posterior, log_joint = _problem()
    exact_value, exact_grads = model.expected_log_joint(posterior)
    values, grads = [], {k: [] for k in posterior}
    for seed in range(300):
        v, g = expected_log_joint(log_joint, posterior, model.latents, np.random.default_rng(seed),
                                  n_samples=4)
        values.append(v)
        for k in g:
            grads[k].append(g[k])
    values = np.array(values)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - exact_value) < 4 * se
    for k, g in grads.items():
        g = np.array(g)
        mean, se = g.mean(axis=0), g.std(axis=0, ddof=1) / np.sqrt(g.shape[0])
        # 4 standard errors per component; Gauss–Hermite error is far below that.
        assert np.all(np.abs(mean - exact_grads[k]) < 4 * se + 1e-9), k


def test_same_seed_same_estimate_and_bad_n_samples():
    model, posterior, log_joint = _problem()
    a = expected_log_joint(log_joint, posterior, model.latents, np.random.default_rng(7))
    b = expected_log_joint(log_joint, posterior, model.latents, np.random.default_rng(7))
    assert a[0] == b[0]
    with pytest.raises(ValueError, match="n_samples"):
        expected_log_joint(log_joint, posterior, model.latents, np.random.default_rng(0),
                           n_samples=0)
