"""Gaussians pushed through a fixed bijection: the shared code of LogNormal and LogitNormal.

z = g⁻¹(x) with x ~ N(loc, scale²) per element. In z the family is still
exponential, q(z) = h(z) exp(η·T(z) − A(η)) with T(z) = (g(z), g(z)²) and
h(z) = (2π)^(−½) / |dz/dx|, so η, μ, A, the Fisher information, KL and the
unconstrained coordinates are those of the Gaussian variable x; only the
densities, entropy and moments of z change.
"""

import numpy as np

from natvi.families.mean_field_gaussian import MeanFieldGaussian

_LOG_2PI = np.log(2 * np.pi)


class TransformedGaussian(MeanFieldGaussian):
    """z = transform(x), x ~ N(loc, scale²) independently per element.

    Subclasses provide the static ``transform`` (x → z), ``inverse`` (z → x),
    ``log_abs_det_jacobian`` (log|dz/dx| at x) and ``_in_support`` (z), the text
    ``_support_text``, ``_expected_log_jacobian`` and the moments of z. ``loc`` and
    ``scale`` are those of x.
    """

    support = ""
    #: the support of z in words, for error messages
    _support_text = ""

    # ---- the bijection (subclasses) --------------------------------------------
    @staticmethod
    def transform(x):
        """z = g⁻¹(x), written with ``autograd.numpy``."""
        raise NotImplementedError

    @staticmethod
    def inverse(z):
        """x = g(z), written with ``autograd.numpy``."""
        raise NotImplementedError

    @staticmethod
    def log_abs_det_jacobian(x):
        """log|dz/dx| at x, written with ``autograd.numpy``."""
        raise NotImplementedError

    @classmethod
    def to_support(cls, x):
        """z = transform(x) from the Gaussian value x."""
        return cls.transform(x)

    @staticmethod
    def _in_support(z):
        """Boolean array: is z inside the (open) support?"""
        raise NotImplementedError

    def _expected_log_jacobian(self):
        """E_x[log|dz/dx|] and its derivatives in loc and in the variance of x."""
        raise NotImplementedError

    @classmethod
    def _inverse_or_nan(cls, z):
        """(g(z), inside) with NaN where z is outside the support, without warnings."""
        z = np.asarray(z, dtype=float)
        inside = cls._in_support(z)
        # a harmless point of the support stands in for the outside values
        safe = np.where(inside, z, cls.transform(0.0))
        return np.where(inside, cls.inverse(safe), np.nan), inside

    # ---- exponential-family pieces that depend on z ------------------------------
    @classmethod
    def sufficient_statistics(cls, z):
        x, inside = cls._inverse_or_nan(z)
        if not np.all(inside):
            raise ValueError(f"z: expected values in {cls._support_text}")
        return np.stack([x, x**2], axis=-1)

    def log_base_measure(self, z):
        x, inside = self._inverse_or_nan(z)
        # h(z) = 0 outside the support
        out = -0.5 * _LOG_2PI - self.log_abs_det_jacobian(np.where(inside, x, 0.0))
        return np.where(inside, out, -np.inf)

    def expected_log_base_measure(self):
        return -0.5 * _LOG_2PI - self._expected_log_jacobian()[0]

    def log_prob(self, z):
        # The Gaussian density of x = g(z) in direct form (no η·T − A cancellation),
        # less the log-Jacobian; −inf outside the support, as scipy.stats does.
        x, inside = self._inverse_or_nan(z)
        x = np.where(inside, x, 0.0)
        v = self.variance
        out = (-0.5 * (_LOG_2PI + np.log(v) + (x - self.loc) ** 2 / v)
               - self.log_abs_det_jacobian(x))
        return np.where(inside, out, -np.inf)

    def entropy(self):
        # H[z] = H[x] + E[log|dz/dx|]
        return super().entropy() + self._expected_log_jacobian()[0]

    def entropy_grad(self):
        # ∇_μ H = −η + ∇_μ E[log|dz/dx|], the latter by the chain rule through (m, v)
        _, grad_loc, grad_var = self._expected_log_jacobian()
        return -self._natural + self.grad_mean_from_moments(grad_loc, grad_var)

    def sample(self, rng, n):
        return np.asarray(self.transform(super().sample(rng, n)))

    def mean(self):
        """E[z] (not ``loc``, which is E[x])."""
        raise NotImplementedError

    def var(self):
        """Var[z] (not ``variance``, which is Var[x])."""
        raise NotImplementedError
