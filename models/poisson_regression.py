"""Bayesian Poisson regression (log link) with independent Gaussian priors."""

import numpy as np

from natvi.likelihoods import poisson
from natvi.models.glm import GeneralizedLinearModel
from natvi.validation import counts


class PoissonRegression(GeneralizedLinearModel):
    r"""Bayesian Poisson regression with a log link and an optional exposure.

    .. math::
        \alpha \sim N(0, s_0^2), \quad \beta_j \sim N(0, s^2), \quad
        y_i \mid \alpha, \beta \sim \mathrm{Poisson}(e_i \exp(\alpha + x_i^\top \beta)).

    Under a Gaussian posterior E_q[exp(ηᵢ)] = exp(aᵢ + bᵢ/2) for ηᵢ ~ N(aᵢ, bᵢ), so the
    expected log-likelihood is in closed form and the ELBO is exact.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (N, D)
        Features; a DataFrame's column names become the ArviZ ``feature`` coordinate.
    counts : array_like, shape (N,)
        Non-negative integer counts (latent data name ``y`` in ArviZ).
    prior_scale, intercept_scale : float
        Prior standard deviations of the coefficients and of the intercept.
    exposure : array_like, shape (N,), optional
        Positive exposures eᵢ (time at risk, population); log eᵢ enters as an offset.
    fit_intercept : bool
        Include the intercept α (latent ``intercept``).
    curvature : {"hessian", "ggn", "empirical_fisher"}
        Curvature of natural-gradient steps on Gaussian factors: the exact expected
        Hessian (the default; the ELBO's own natural gradient), the Gauss–Newton matrix
        at the predictor's mean, or the empirical Fisher of VOGN (for comparisons).
    damping : float
        Added to the precision such steps land on (≥ 0).
    n_points : int, optional
        Gauss–Hermite nodes of the empirical-Fisher curvature (32 by default); the ELBO
        itself is in closed form.
    """

    likelihood = poisson
    takes_exposure = True

    def __init__(self, X, counts, prior_scale=2.5, intercept_scale=2.5, exposure=None,
                 fit_intercept=True, curvature="hessian", damping=0.0, n_points=None):
        super().__init__(X, counts, prior_scale, intercept_scale, fit_intercept, n_points,
                         exposure=exposure, curvature=curvature, damping=damping)

    def _response(self, y, n):
        return counts(y, n)

    def _start(self):
        # Intercept at the log of the pooled rate (clipped away from log 0), and the
        # Poisson curvature e^η there: the expected count of each row.
        if not self.fit_intercept:
            return 0.0, self.exposure
        rate = max(float(self.y.sum()), 0.5) / float(self.exposure.sum())
        return np.log(rate), self.exposure * rate

    #: numpy's Poisson sampler refuses larger rates
    MAX_RATE = 1e18

    def draw_response(self, rng, eta, draws):
        with np.errstate(over="ignore"):
            rate = np.exp(eta)
        if not np.all(rate < self.MAX_RATE):
            raise ValueError(f"draws: a Poisson rate e^η over {self.MAX_RATE:.0e} at some draw "
                             f"and row (largest η {np.max(eta):.4g}); the fit is far off")
        return rng.poisson(rate)

    def expected_response(self, mean, var):
        """The expected count under q: E[e^η] = exp(mean + var/2) for η ~ N(``mean``,
        ``var``) (the exposure's log in ``mean``)."""
        with np.errstate(over="ignore"):
            return np.exp(np.asarray(mean) + 0.5 * np.asarray(var))
