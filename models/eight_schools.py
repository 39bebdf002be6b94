"""The eight-schools hierarchical model (Rubin 1981), centered or non-centered."""

import autograd.numpy as anp
import numpy as np

from natvi.model import Model
from natvi.validation import as_float_array, check_positive_scalar

#: The SAT coaching experiments of Rubin (1981): estimated effects and their standard errors.
EIGHT_SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
EIGHT_SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
SCHOOLS = ["Choate", "Deerfield", "Phillips Andover", "Phillips Exeter", "Hotchkiss",
           "Lawrenceville", "St. Paul's", "Mt. Hermon"]

_LOG_2PI = np.log(2 * np.pi)


class EightSchools(Model):
    r"""Hierarchical normal model of J parallel experiments.

    .. math::
        \mu \sim N(0, s_\mu^2), \quad \tau \sim \mathrm{HalfCauchy}(s_\tau), \quad
        \theta_j \sim N(\mu, \tau^2), \quad y_j \sim N(\theta_j, \sigma_j^2).

    Non-centered (the default), θⱼ = μ + τ θ̃ⱼ with θ̃ⱼ ~ N(0, 1), latent ``theta_raw``;
    centered, latent ``theta``. Posterior draws always include ``theta``. The expected
    log joint is a Monte Carlo average with pathwise gradients (τ has a LogNormal factor
    by default), over base draws fixed for the fit by default. Yao et al. (2018) found
    mean-field ADVI poor on the centered form: check :meth:`natvi.result.FitResult.diagnose`.

    Parameters
    ----------
    y : array_like, shape (J,)
        Estimated effects, finite; J ≥ 1. Defaults to the classic data.
    sigma : array_like, shape (J,)
        Their standard errors, > 0.
    centered : bool
        Centered parameterization (latent ``theta``) instead of non-centered.
    mu_scale, tau_scale : float
        Prior scales of μ (normal) and τ (half-Cauchy).
    engine : str
        ``"fixed_draws"`` (the default) or ``"monte_carlo"`` (see :class:`natvi.Model`).
    n_samples : int, optional
        Draws per ELBO evaluation (see :class:`natvi.Model`).
    """

    vectorized = True

    def __init__(self, y=EIGHT_SCHOOLS_Y, sigma=EIGHT_SCHOOLS_SIGMA, centered=False,
                 mu_scale=5.0, tau_scale=5.0, engine="fixed_draws", n_samples=None):
        y = as_float_array(y, "y")
        if y.ndim != 1 or y.size == 0:
            raise ValueError(f"y: expected a 1-D array of J ≥ 1 effects, got shape {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("y: expected finite values, found NaN or inf")
        sigma = as_float_array(sigma, "sigma")
        if sigma.shape != y.shape:
            raise ValueError(f"sigma: expected shape {y.shape} (one standard error per "
                             f"school), got {sigma.shape}")
        if not np.all(np.isfinite(sigma) & (sigma > 0)):
            raise ValueError("sigma: expected finite standard errors > 0")
        if not isinstance(centered, bool | np.bool_):
            raise ValueError(f"centered: expected True or False, got {centered!r}")
        self.y, self.sigma, self.centered = y, sigma, bool(centered)
        #: what FitResult.diagnose suggests when k̂ is high
        self.reparameterization_hint = ("the non-centered form, EightSchools(centered=False)"
                                        if self.centered else None)
        self.mu_scale = check_positive_scalar(mu_scale, "mu_scale")
        self.tau_scale = check_positive_scalar(tau_scale, "tau_scale")
        j = y.size
        self.theta_name = "theta" if self.centered else "theta_raw"
        classic = j == len(SCHOOLS) and np.array_equal(y, EIGHT_SCHOOLS_Y)
        names = SCHOOLS if classic else [f"school{i}" for i in range(j)]
        super().__init__(
            self._log_joint,
            {"mu": "real", "tau": "positive", self.theta_name: ((j,), "real")},
            pointwise_log_likelihood=self._pointwise,
            observed_data={"y": y},
            coords={"school": names},
            dims={"theta": ["school"], "theta_raw": ["school"], "y": ["school"]},
            engine=engine, n_samples=n_samples,
        )

    # Written for one draw (μ, τ scalars, θ of shape (J,)) and for S draws at once
    # (μ, τ of shape (S,), θ of shape (S, J)) alike.
    def _theta(self, z):
        if self.centered:
            return z["theta"]
        return anp.expand_dims(z["mu"], -1) + anp.expand_dims(z["tau"], -1) * z["theta_raw"]

    def _pointwise(self, z):
        theta = self._theta(z)
        return -0.5 * (_LOG_2PI + 2 * anp.log(self.sigma) + ((self.y - theta) / self.sigma) ** 2)

    def _log_joint(self, z):
        mu, tau, t = z["mu"], z["tau"], z[self.theta_name]
        lp = -0.5 * (_LOG_2PI + 2 * np.log(self.mu_scale) + (mu / self.mu_scale) ** 2)
        lp = lp + np.log(2 / np.pi / self.tau_scale) - anp.log1p((tau / self.tau_scale) ** 2)
        if self.centered:
            mu_, tau_ = anp.expand_dims(mu, -1), anp.expand_dims(tau, -1)
            lp = lp + anp.sum(-0.5 * (_LOG_2PI + 2 * anp.log(tau_) + ((t - mu_) / tau_) ** 2),
                              axis=-1)
        else:
            lp = lp + anp.sum(-0.5 * (_LOG_2PI + t**2), axis=-1)
        return lp + anp.sum(self._pointwise(z), axis=-1)

    def log_joint(self, draws):
        return self._log_joint({k: np.asarray(v) for k, v in draws.items()})

    def pointwise_log_likelihood(self, draws):
        return {"y": self._pointwise({k: np.asarray(v) for k, v in draws.items()})}

    def deterministics(self, draws):
        """{"theta": (S, J)}: the school effects at ``draws``, also in the non-centered form."""
        return {} if self.centered else {"theta": self._theta(draws)}
