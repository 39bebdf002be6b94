"""Bayesian logistic regression with independent Gaussian priors."""

import numpy as np

from natvi.lazy_modules import special
from natvi.likelihoods import _GL_T, _GL_W, _bend_panels, logistic
from natvi.models.glm import GeneralizedLinearModel
from natvi.quadrature import gauss_hermite
from natvi.validation import binary_labels


class LogisticRegression(GeneralizedLinearModel):
    r"""Bayesian logistic regression.

    .. math::
        \alpha \sim N(0, s_0^2), \quad \beta_j \sim N(0, s^2), \quad
        y_i \mid \alpha, \beta \sim \mathrm{Bernoulli}(\sigma(\alpha + x_i^\top \beta)).

    The expected log-likelihood under a Gaussian posterior (mean-field, or full-rank with
    ``fit(..., family=FullRankGaussian)``) is computed by Gauss–Hermite quadrature, so the
    ELBO and its gradient are deterministic.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (N, D)
        Features; a DataFrame's column names become the ArviZ ``feature`` coordinate.
    y : array_like, shape (N,)
        Labels in {0, 1} (booleans are fine).
    prior_scale : float
        Prior standard deviation s of each coefficient.
    intercept_scale : float
        Prior standard deviation s₀ of the intercept.
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

    likelihood = logistic

    def __init__(self, X, y, prior_scale=2.5, intercept_scale=2.5, fit_intercept=True,
                 n_points=None, curvature="hessian", damping=0.0):
        super().__init__(X, y, prior_scale, intercept_scale, fit_intercept, n_points,
                         curvature=curvature, damping=damping)

    def _response(self, y, n):
        return binary_labels(y, n)

    def _start(self):
        return 0.0, np.full_like(self.y, 0.25)  # σ′(0) = 1/4

    def draw_response(self, rng, eta, draws):
        return (rng.random(np.shape(eta)) < special.expit(eta)).astype(np.int64)

    def expected_response(self, mean, var):
        """P(y = 1) under q, E[σ(η)] for η ~ N(``mean``, ``var``) per row, to ~1e-15."""
        return expected_sigmoid(np.asarray(mean, float), np.asarray(var, float))


#: rows integrated at a time (each takes up to ~2,000 nodes)
_ROWS = 256
#: Gauss–Hermite nodes of rows whose σ(η) is smooth on the scale of η's sd
_NODES = 64


def expected_sigmoid(mean, var):
    """E[σ(η)] for η ~ N(mean, var), per row, to ~1e-14.

    Where sd ≤ 1, or σ's bend at η = 0 lies more than 8 sd away, σ(mean + sd t) is smooth on
    the scale of t and 64 Gauss–Hermite nodes integrate it to rounding. Otherwise the bend
    (of width ~1/sd in t) falls between such nodes: composite 16-node Gauss–Legendre panels
    in t, graded towards the bend (as the probit likelihood's wide rule does), integrate
    σ(mean + sd t) φ(t) over |t| ≤ 10 instead.
    """
    sd = np.sqrt(var)
    t, w = gauss_hermite(_NODES)
    out = special.expit(mean[:, None] + sd[:, None] * t) @ w
    wide = np.flatnonzero((sd > 1.0) & (np.abs(mean) < 8.0 * sd))
    for start in range(0, len(wide), _ROWS):
        rows = wide[start:start + _ROWS]
        m, s = mean[rows], sd[rows]
        left, widths = _bend_panels(-m / s, 1.0 / s)
        half = 0.5 * widths
        t = (left + half)[:, :, None] + half[:, :, None] * _GL_T
        weight = half[:, :, None] * _GL_W * np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi)
        out[rows] = np.sum(weight * special.expit(m[:, None, None] + s[:, None, None] * t),
                           axis=(1, 2))
    return out
