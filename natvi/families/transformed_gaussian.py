"""Gaussians pushed through a fixed bijection: the shared code of LogNormal and LogitNormal.

z = g⁻¹(x) with x ~ N(loc, scale²) per element. In z the family is still
exponential, q(z) = h(z) exp(η·T(z) − A(η)) with T(z) = (g(z), g(z)²) and
h(z) = (2π)^(−½) / |dz/dx|, so η, μ, A, the Fisher information, KL, the natural
steps and the unconstrained coordinates are those of the Gaussian variable x: a transformed family
holds that :class:`MeanFieldGaussian` and hands those questions to it. Only the
densities, entropy and moments of z change.
"""

from functools import cached_property

import numpy as np

from natvi.families.base import ExponentialFamily
from natvi.families.mean_field_gaussian import MeanFieldGaussian

_LOG_2PI = np.log(2 * np.pi)


class TransformedGaussian(ExponentialFamily):
    """z = transform(x), x ~ N(loc, scale²) independently per element.

    Subclasses provide the static ``transform`` (x → z), ``inverse`` (z → x),
    ``log_abs_det_jacobian`` (log|dz/dx| at x) and ``_in_support`` (z), the text
    ``_support_text``, ``_expected_log_jacobian`` and the moments of z. ``loc`` and
    ``scale`` are those of x.

    Parameters
    ----------
    loc : array_like
        Means of x = g(z); broadcast against ``scale``.
    scale : array_like
        Standard deviations of x, all > 0.
    """

    n_params = 2
    support = ""
    reparameterizable = True
    _domain_text = MeanFieldGaussian._domain_text
    #: the support of z in words, for error messages
    _support_text = ""

    def __init__(self, loc=0.0, scale=1.0):
        super().__init__(MeanFieldGaussian(loc=loc, scale=scale).natural)

    @cached_property
    def gaussian(self):
        """The Gaussian of x = g(z): a :class:`MeanFieldGaussian` with the same η."""
        return MeanFieldGaussian.from_natural(self._natural)

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

    # ---- what x answers: parameters, Fisher information, KL, coordinates -------
    log_partition_fn = staticmethod(MeanFieldGaussian.log_partition_fn)
    mean_from_natural = staticmethod(MeanFieldGaussian.mean_from_natural)
    natural_from_mean = staticmethod(MeanFieldGaussian.natural_from_mean)
    in_domain = staticmethod(MeanFieldGaussian.in_domain)
    natural_step = staticmethod(MeanFieldGaussian.natural_step)

    @classmethod
    def standard(cls, shape, categories=None):
        """x ~ N(0, 1) per element of a batch of ``shape`` (``categories`` unused)."""
        return cls(loc=np.zeros(shape), scale=np.ones(shape))

    @property
    def loc(self):
        """Mean of x = g(z)."""
        return self.gaussian.loc

    @property
    def variance(self):
        """Variance of x = g(z)."""
        return self.gaussian.variance

    @property
    def scale(self):
        """Standard deviation of x = g(z)."""
        return self.gaussian.scale

    def fisher(self):
        return self.gaussian.fisher()

    def fisher_vector_product(self, v):
        """F(η) v for ``v`` of shape ``(*batch, 2)``: the Gaussian's."""
        return self.gaussian.fisher_vector_product(v)

    def fisher_quadratic_form(self, v):
        """⟨v, F(η) v⟩ for ``v`` of shape ``(*batch, 2)``: the Gaussian's."""
        return self.gaussian.fisher_quadratic_form(v)

    def fisher_solve(self, v):
        """F(η)⁻¹ v for ``v`` of shape ``(*batch, 2)``: the Gaussian's."""
        return self.gaussian.fisher_solve(v)

    def kl(self, other):
        self._check_other(other)
        return self.gaussian.kl(other.gaussian)  # KL is invariant under the bijection

    def grad_mean_from_moments(self, grad_loc, grad_var):
        """∇_μ L from ∇ in the mean ``grad_loc`` and variance ``grad_var`` of x."""
        return self.gaussian.grad_mean_from_moments(grad_loc, grad_var)

    @property
    def unconstrained(self):
        return self.gaussian.unconstrained

    @classmethod
    def from_unconstrained(cls, u):
        return cls.from_natural(MeanFieldGaussian.from_unconstrained(u).natural)

    def unconstrained_grad(self, grad_mean):
        return self.gaussian.unconstrained_grad(grad_mean)

    # ---- draws: z = transform(x), x = loc + scale·ε -----------------------------
    def standard_noise(self, rng, n):
        """ε ~ N(0, 1) for ``n`` draws from ``rng``, shape (n, *batch)."""
        return self.gaussian.standard_noise(rng, n)

    def from_noise(self, eps):
        """x = loc + scale·ε for noise ``eps`` (z is transform(x))."""
        return self.gaussian.from_noise(eps)

    @classmethod
    def to_support(cls, x):
        """z = transform(x) from the Gaussian value x."""
        return cls.transform(x)

    def location_scale(self):
        """(mean, standard deviation) of the Gaussian x = transform⁻¹(z): the base
        Gaussian's."""
        return self.gaussian.location_scale()

    def pathwise_grad(self, grad_x, eps):
        """∇_μ E[f(z)] from ``grad_x`` = ∇ₓ f(transform(x)) at the draws ``eps``: the
        Gaussian's (the Jacobian is in the entropy)."""
        return self.gaussian.pathwise_grad(grad_x, eps)

    def sample(self, rng, n):
        return np.asarray(self.transform(self.gaussian.sample(rng, n)))

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
        out = self.gaussian.log_prob(x) - self.log_abs_det_jacobian(x)
        return np.where(inside, out, -np.inf)

    def entropy(self):
        # H[z] = H[x] + E[log|dz/dx|]
        return self.gaussian.entropy() + self._expected_log_jacobian()[0]

    def entropy_grad(self):
        # ∇_μ H = −η + ∇_μ E[log|dz/dx|], the latter by the chain rule through (m, v)
        _, grad_loc, grad_var = self._expected_log_jacobian()
        return -self._natural + self.grad_mean_from_moments(grad_loc, grad_var)

    def mean(self):
        """E[z] (not ``loc``, which is E[x])."""
        raise NotImplementedError

    def var(self):
        """Var[z] (not ``variance``, which is Var[x])."""
        raise NotImplementedError
