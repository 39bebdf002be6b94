"""Logistic regression with automatic relevance determination (a Gamma precision per
coefficient), fitted with Gaussian and Gamma factors together."""

import autograd.numpy as anp
import numpy as np

from natvi import factors
from natvi.engines import closed_form
from natvi.families import Gamma
from natvi.lazy_modules import special
from natvi.likelihoods import logistic
from natvi.model import Latent
from natvi.models.glm import GeneralizedLinearModel
from natvi.validation import binary_labels, check_positive_scalar

_LOG_2PI = np.log(2 * np.pi)


class ARDLogisticRegression(GeneralizedLinearModel):
    r"""Bayesian logistic regression with automatic relevance determination.

    .. math::
        \lambda_j \sim \mathrm{Gamma}(a, b), \quad \beta_j \mid \lambda_j \sim N(0, 1/\lambda_j),
        \quad \alpha \sim N(0, s_0^2), \quad
        y_i \sim \mathrm{Bernoulli}(\sigma(\alpha + x_i^\top \beta)).

    Coefficients whose precision λⱼ grows large are shrunk to zero: the irrelevant
    features. The data term is computed by Gauss–Hermite quadrature; the prior terms are
    closed forms in the expected sufficient statistics (½E[log λⱼ] − ½E[λⱼ]E[βⱼ²] is
    bilinear in the two factors' mean parameters), so the ELBO is deterministic and both
    the Gaussian and the Gamma factors take natural-gradient steps; the Gamma factor's
    step of 1 is its coordinate-ascent update Gamma(a + ½, b + ½E[βⱼ²]).

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (N, D)
        Features; a DataFrame's column names become the ArviZ ``feature`` coordinate.
    y : array_like, shape (N,)
        Labels in {0, 1}.
    precision_shape, precision_rate : float
        Gamma prior (a, b) of each precision; small values make it vague.
    intercept_scale : float
        Prior standard deviation s₀ of the intercept.
    fit_intercept : bool
        Include the intercept α.
    n_points : int, optional
        Gauss–Hermite nodes for every observation, instead of the number each one's
        predictor width needs for 2e-14 nats (the default; see :func:`natvi.quadrature.rules`).
    """

    likelihood = logistic
    default_families = {"precision": Gamma}

    def __init__(self, X, y, precision_shape=1e-2, precision_rate=1e-2, intercept_scale=2.5,
                 fit_intercept=True, n_points=None):
        self.precision_shape = check_positive_scalar(precision_shape, "precision_shape")
        self.precision_rate = check_positive_scalar(precision_rate, "precision_rate")
        # The coefficients' prior scale below only sets the starting point: the prior mean
        # of λ, a/b, as if it were known.
        super().__init__(X, y, (self.precision_rate / self.precision_shape) ** 0.5,
                         intercept_scale, fit_intercept, n_points)
        d = self.X.shape[1]
        self.latents["precision"] = Latent((d,), "positive")
        self.dims["precision"] = ["feature"]

    def _response(self, y, n):
        return binary_labels(y, n)

    def _start(self):
        return 0.0, np.full_like(self.y, 0.25)

    def _check_family(self, key, family):
        if key == "precision":
            if family is not Gamma:
                raise ValueError(f"family: ARDLogisticRegression needs a Gamma factor on "
                                 f"'precision', got {family.__name__}")
            return
        super()._check_family(key, family)

    def _expected_log_prior(self, posterior):
        def prior(means):
            second = {}  # E[w²] per latent, from each Gaussian factor's mean parameters
            for key, q in posterior.items():
                if key != "precision":
                    second.update(factors.to_latents(
                        self.latents, key, q, type(q).second_moments_from_mean(means[key])))
            e_log_lam, e_lam = means["precision"][..., 0], means["precision"][..., 1]
            a, b = self.precision_shape, self.precision_rate
            value = anp.sum(0.5 * (e_log_lam - _LOG_2PI) - 0.5 * e_lam * second["coef"]
                            + (a - 1) * e_log_lam - b * e_lam)
            value = value + second["coef"].size * (a * np.log(b) - special.gammaln(a))
            if self.fit_intercept:
                s2 = self.intercept_scale**2
                value = value - 0.5 * (_LOG_2PI + np.log(s2)) - second["intercept"] / (2 * s2)
            return value

        return closed_form.expected_log_joint(prior, posterior)

    def initial_posterior(self, families):
        gaussians = {k: f for k, f in families.items() if k != "precision"}
        out = super().initial_posterior(gaussians)
        d = self.X.shape[1]
        out["precision"] = Gamma(shape=np.full(d, self.precision_shape),
                                 rate=np.full(d, self.precision_rate))
        return out

    def log_joint(self, draws):
        lp = self._log_likelihood(draws)
        lam, w = np.asarray(draws["precision"]), np.asarray(draws["coef"])
        a, b = self.precision_shape, self.precision_rate
        lp = lp + np.sum(0.5 * (np.log(lam) - _LOG_2PI) - 0.5 * lam * w**2
                         + (a - 1) * np.log(lam) - b * lam + a * np.log(b) - special.gammaln(a),
                         axis=1)
        if self.fit_intercept:
            s = self.intercept_scale
            lp = lp - 0.5 * (_LOG_2PI + 2 * np.log(s)) - np.asarray(draws["intercept"])**2 / (
                2 * s * s)
        return lp
