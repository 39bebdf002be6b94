"""Bayesian probit regression with independent Gaussian priors."""

import numpy as np

from natvi.lazy_modules import special
from natvi.likelihoods import probit
from natvi.models.glm import GeneralizedLinearModel
from natvi.validation import binary_labels


class ProbitRegression(GeneralizedLinearModel):
    r"""Bayesian probit regression.

    .. math::
        \alpha \sim N(0, s_0^2), \quad \beta_j \sim N(0, s^2), \quad
        y_i \mid \alpha, \beta \sim \mathrm{Bernoulli}(\Phi(\alpha + x_i^\top \beta)).

    The expected log-likelihood is computed by Gauss–Hermite quadrature (log Φ through
    ``scipy.special.log_ndtr``, accurate far into the tails).

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (N, D)
        Features; a DataFrame's column names become the ArviZ ``feature`` coordinate.
    y : array_like, shape (N,)
        Labels in {0, 1} (booleans are fine).
    prior_scale, intercept_scale : float
        Prior standard deviations of the coefficients and of the intercept.
    fit_intercept : bool
        Include the intercept α (latent ``intercept``).
    n_points : int, optional
        Gauss–Hermite nodes for every observation, instead of the number each one's
        predictor width needs for 2e-14 nats (the default; see :func:`natvi.quadrature.rules`).
    curvature : {"hessian", "ggn", "empirical_fisher"}
        Curvature of natural-gradient steps on Gaussian factors: the exact expected
        Hessian (the default; the ELBO's own natural gradient), the Gauss–Newton matrix
        at the predictor's mean, or the empirical Fisher of VOGN (for comparisons).
    damping : float
        Added to the precision such steps land on (≥ 0).
    """

    likelihood = probit

    def __init__(self, X, y, prior_scale=2.5, intercept_scale=2.5, fit_intercept=True,
                 n_points=None, curvature="hessian", damping=0.0):
        super().__init__(X, y, prior_scale, intercept_scale, fit_intercept, n_points,
                         curvature=curvature, damping=damping)

    def _response(self, y, n):
        return binary_labels(y, n)

    def _start(self):
        # −∂²/∂η² log Φ(±η) at η = 0 is φ(0)²/Φ(0)² = 2/π for either label.
        return 0.0, np.full_like(self.y, 2 / np.pi)

    def draw_response(self, rng, eta, draws):
        return (rng.random(np.shape(eta)) < special.ndtr(eta)).astype(np.int64)

    def expected_response(self, mean, var):
        """P(y = 1) under q: E[Φ(η)] = Φ(mean / √(1 + var)) for η ~ N(``mean``, ``var``)."""
        return special.ndtr(np.asarray(mean) / np.sqrt(1.0 + np.asarray(var)))
