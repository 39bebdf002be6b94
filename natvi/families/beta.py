"""Beta distributions, one per batch element.

A Beta(a, b) is the Dirichlet(a, b) law of (z, 1 − z), with the same natural parameters,
log-partition, mean parameters and Fisher information; the closed forms are shared with
:mod:`natvi.families.dirichlet` (there Sherman–Morrison on the 2 × 2 Fisher is its
closed-form inverse).
"""

import autograd.numpy as anp
import numpy as np

from natvi.autograd_special import digamma as _digamma
from natvi.autograd_special import gammaln as _gammaln
from natvi.families import _dirichlet_math as _dm
from natvi.families._special import (
    _HALF_LOG_2PI,
    _broadcast,
    _log_ratio_excess,
    _stirling_remainder,
)
from natvi.families.base import ExponentialFamily
from natvi.lazy_modules import special
from natvi.validation import check_finite_array, check_positive_array


class Beta(ExponentialFamily):
    """z ~ Beta(a, b) independently per element, density z^{a−1} (1 − z)^{b−1} / B(a, b).

    T(z) = (log z, log(1 − z)), η = (a − 1, b − 1), h(z) = 1,
    A(η) = log Γ(a) + log Γ(b) − log Γ(a + b), μ = (ψ(a) − ψ(a + b), ψ(b) − ψ(a + b)).

    Parameters
    ----------
    a, b : array_like
        Shape parameters, all > 0 (and ≳ 1e-16, so that η = (a − 1, b − 1) > −1 in
        floating point); broadcast against each other.
    """

    n_params = 2
    support = "unit_interval"
    _domain_text = "a = η₁ + 1 and b = η₂ + 1 must be > 0, with a finite sum"

    @classmethod
    def standard(cls, shape, categories=None):
        """Beta(1, 1), uniform, per element of a batch of ``shape`` (``categories`` unused)."""
        return cls(a=np.ones(shape), b=np.ones(shape))

    def __init__(self, a=1.0, b=1.0):
        a = check_positive_array(a, "a")
        b = check_positive_array(b, "b")
        a, b = _broadcast(a, "a", b, "b")
        for x, name in ((a, "a"), (b, "b")):
            if not np.all(x - 1 > -1):
                raise ValueError(f"{name}: expected values ≳ 1e-16 (η = {name} − 1 must exceed "
                                 f"−1 in floating point)")
        with np.errstate(over="ignore"):
            if not np.all(np.isfinite(a + b)):
                raise ValueError("b: expected a + b to be finite (below ~1.8e308)")
        super().__init__(np.stack([a - 1, b - 1], axis=-1))

    # ---- closed forms ---------------------------------------------------
    @staticmethod
    def log_partition_fn(eta):
        a, b = eta[..., 0] + 1, eta[..., 1] + 1
        return _gammaln(a) + _gammaln(b) - _gammaln(a + b)

    @staticmethod
    def mean_from_natural(eta):
        alpha = eta + 1
        return _digamma(alpha) - _digamma(anp.sum(alpha, axis=-1))[..., None]

    @staticmethod
    def natural_from_mean(mu):
        mu = _dm.check_mean_log(mu)
        alpha = _dm.alpha_from_mean_log(mu)
        if not np.all(alpha - 1 > -1):
            raise ValueError("mean_params: implies a or b below ~1e-16, not representable "
                             "as η = (a − 1, b − 1)")
        return alpha - 1

    @staticmethod
    def sufficient_statistics(z):
        z = np.asarray(z, dtype=float)
        return np.stack([np.log(z), np.log1p(-z)], axis=-1)

    @staticmethod
    def in_domain(eta):
        # a + b that overflows would make the mean 0 and the variance NaN
        with np.errstate(over="ignore"):
            return ((eta[..., 0] > -1) & (eta[..., 1] > -1)
                    & np.isfinite((eta[..., 0] + 1) + (eta[..., 1] + 1)))

    # ---- usual parameters -------------------------------------------------
    @property
    def a(self):
        """First shape parameter a (the exponent of z is a − 1)."""
        return self._natural[..., 0] + 1

    @property
    def b(self):
        """Second shape parameter b (the exponent of 1 − z is b − 1)."""
        return self._natural[..., 1] + 1

    def mean(self):
        return self.a / (self.a + self.b)

    def var(self):
        a, b = self.a, self.b
        total = a + b
        # as m(1 − m)/(a + b + 1), m = a/(a + b): ab and (a + b)² alone overflow (inf/inf)
        return (a / total) * (b / total) / (total + 1)

    # ---- Fisher information --------------------------------------------------
    def fisher(self):
        return _dm.fisher(self._natural + 1)

    def fisher_vector_product(self, v):
        return _dm.fisher_vector_product(self._natural + 1, v)

    def fisher_quadratic_form(self, v):
        return _dm.fisher_quadratic_form(self._natural + 1, v)

    def fisher_solve(self, v):
        return _dm.fisher_solve(self._natural + 1, v)

    # ---- densities and divergences -------------------------------------------
    def log_partition(self):
        return _dm.log_normalizer(self._natural + 1)  # stable where log Γ overflows

    def log_base_measure(self, z):
        return np.zeros(np.shape(z))

    def expected_log_base_measure(self):
        return np.zeros(self.batch_shape)

    def log_prob(self, z):
        # With c = a + b, exactly: log q = −a D(cz/a) − b D(c(1−z)/b) − log z − log(1−z)
        # + ½ log(ab/c) − ½ log 2π − S(a) − S(b) + S(c), D(t) = t − 1 − log t ≥ 0, S the
        # Stirling remainder. The direct form cancels O(c log c) terms at large a + b.
        z = np.asarray(z, dtype=float)
        a, b = self.a, self.b
        c = a + b
        with np.errstate(all="ignore"):
            log_z, log_1mz = np.log(z), np.log1p(-z)
            excess = (a * _log_ratio_excess((c * z - a) / a, np.log(c) + log_z - np.log(a))
                      + b * _log_ratio_excess((a - c * z) / b, np.log(c) + log_1mz - np.log(b)))
            inside = (-excess - log_z - log_1mz + 0.5 * (np.log(a) + np.log(b) - np.log(c))
                      - _HALF_LOG_2PI
                      - _stirling_remainder(a) - _stirling_remainder(b) + _stirling_remainder(c))
            # log B(a, b) from the Dirichlet helper: scipy's betaln is NaN for huge, unequal
            # arguments (betaln(1e308, 1e144)), which made −inf − NaN here
            at_ends = (special.xlogy(a - 1, z) + special.xlog1py(b - 1, -z)
                       - _dm.log_normalizer(np.stack([a, b], axis=-1)))
        return np.select([(z > 0) & (z < 1), (z == 0) | (z == 1), (z < 0) | (z > 1)],
                         [inside, at_ends, -np.inf], np.nan)

    def entropy(self):
        return _dm.entropy(self._natural + 1)

    def kl(self, other):
        self._check_other(other)
        return _dm.kl(self._natural + 1, other.natural + 1)

    def sample(self, rng, n):
        """``n`` draws with ``rng`` (a numpy.random.Generator), shape ``(n, *batch)``.

        z = G_a / (G_a + G_b) formed in log space, so tiny a or b give no 0/0; a draw closer
        to 0 than the smallest float, or to 1 than machine precision, still rounds to it.
        """
        self._check_sample_args(rng, n)
        return np.exp(_dm.log_sample(self._natural + 1, rng, n)[..., 0])

    # ---- the unconstrained coordinates u = (log a, log b) ---------------------
    @property
    def unconstrained(self):
        return np.log1p(self._natural)

    @classmethod
    def from_unconstrained(cls, u):
        u = cls._check_last_axis(check_finite_array(u, "u"), "u")
        with np.errstate(over="ignore"):
            eta = np.expm1(u)
        if not (np.all(np.isfinite(eta)) and np.all(cls.in_domain(eta))):
            raise ValueError("u: log a or log b out of the representable range")
        return cls.from_natural(eta)

    def unconstrained_grad(self, grad_mean):
        # ∇_u L = diag(a, b) F ∇_μ L, since η = exp(u) − 1 gives ∂η/∂u = diag(a, b)
        return (self._natural + 1) * self.fisher_vector_product(grad_mean)
