"""The log-normal family: z = exp(x) with x ~ N(loc, scale²), for positive latents."""

import autograd.numpy as anp
import numpy as np

from natvi.families.transformed_gaussian import TransformedGaussian


class LogNormal(TransformedGaussian):
    """z = exp(x), x ~ N(loc, scale²) independently per element.

    T(z) = (log z, (log z)²), η = (m/v, −1/(2v)), μ = (m, m² + v) with m = loc,
    v = scale², as for the Gaussian x = log z; h(z) = (2π)^(−½)/z. As
    ``scipy.stats.lognorm(s=scale, scale=exp(loc))``.

    Parameters
    ----------
    loc : array_like
        Means of log z; broadcast against ``scale``.
    scale : array_like
        Standard deviations of log z, all > 0.
    """

    support = "positive"
    _support_text = "(0, ∞)"

    @staticmethod
    def transform(x):
        return anp.exp(x)

    @staticmethod
    def inverse(z):
        return anp.log(z)

    @staticmethod
    def log_abs_det_jacobian(x):
        return x

    @staticmethod
    def _in_support(z):
        return np.isfinite(z) & (z > 0)

    def _expected_log_jacobian(self):
        # E[log|dz/dx|] = E[x] = μ₁: its gradient in μ is (1, 0)
        m = self.loc
        return m, np.ones_like(m), np.zeros_like(m)

    def mean(self):
        return np.exp(self.loc + 0.5 * self.variance)

    def var(self):
        # (e^v − 1)e^{2m + v} = e^{2(m + v)}(1 − e^{−v}), taken in logs: e^v alone overflows
        # (inf · 0 = NaN) where the variance itself is moderate (v ≈ −m ≈ 1e300)
        v = self.variance
        return np.exp(2 * (self.loc + v) + np.log(-np.expm1(-v)))
