"""Dirichlet distributions on the (K−1)-simplex, one per batch element."""

import autograd.numpy as anp
import numpy as np

from natvi.autograd_special import digamma as _digamma
from natvi.autograd_special import gammaln as _gammaln
from natvi.families import _dirichlet_math as _dm
from natvi.families.base import ExponentialFamily
from natvi.lazy_modules import special
from natvi.validation import check_finite_array, check_positive_array


# ---- the family ----------------------------------------------------------------------------
class Dirichlet(ExponentialFamily):
    """z ~ Dirichlet(alpha) on the (K−1)-simplex, independently per batch element.

    T(z) = log z (K entries), η = α − 1, h(z) = 1 (density with respect to Lebesgue measure
    on z₁, …, z_{K−1}), A(η) = Σ log Γ(α_k) − log Γ(Σα), μ = ψ(α) − ψ(Σα).

    Parameters
    ----------
    alpha : array_like, shape (*batch, K)
        Concentrations, all > 0 (and ≳ 1e-16, so that η = α − 1 > −1 in floating point),
        K ≥ 2.
    """

    n_params = None  # K, from the last axis
    support = "simplex"
    _size_text = "K ≥ 2"
    _domain_text = "alpha = η + 1 must be > 0 in every component, with a finite sum"

    @classmethod
    def standard(cls, shape, categories=None):
        """Dirichlet(1, …, 1), uniform on the simplex; ``shape`` ends with K (``categories``
        unused)."""
        return cls(alpha=np.ones(shape))

    @staticmethod
    def _valid_size(k):
        return k >= 2

    @property
    def event_shape(self):
        """``(K,)``: one draw is a point of the simplex with K coordinates."""
        return self._natural.shape[-1:]

    def __init__(self, alpha):
        alpha = check_positive_array(alpha, "alpha")
        if alpha.ndim < 1 or alpha.shape[-1] < 2:
            raise ValueError(f"alpha: expected an array of shape (*batch, K) with K ≥ 2, "
                             f"got shape {alpha.shape}")
        if not np.all(alpha - 1 > -1):
            raise ValueError("alpha: expected values ≳ 1e-16 (η = alpha − 1 must exceed −1 "
                             "in floating point)")
        with np.errstate(over="ignore"):
            if not np.all(np.isfinite(np.sum(alpha, axis=-1))):
                raise ValueError("alpha: expected concentrations with a finite sum (below "
                                 "~1.8e308)")
        super().__init__(alpha - 1)

    # ---- closed forms ---------------------------------------------------
    @staticmethod
    def log_partition_fn(eta):
        alpha = eta + 1
        return anp.sum(_gammaln(alpha), axis=-1) - _gammaln(anp.sum(alpha, axis=-1))

    @staticmethod
    def mean_from_natural(eta):
        alpha = eta + 1
        return _digamma(alpha) - _digamma(anp.sum(alpha, axis=-1))[..., None]

    @staticmethod
    def natural_from_mean(mu):
        mu = _dm.check_mean_log(mu)
        alpha = _dm.alpha_from_mean_log(mu)
        if not np.all(alpha - 1 > -1):
            raise ValueError("mean_params: implies concentrations below ~1e-16, not "
                             "representable as η = alpha − 1")
        return alpha - 1

    @staticmethod
    def sufficient_statistics(z):
        return np.log(np.asarray(z, dtype=float))

    @staticmethod
    def in_domain(eta):
        # a total concentration Σα that overflows would make the mean 0 and the variance NaN
        with np.errstate(over="ignore"):
            return np.all(eta > -1, axis=-1) & np.isfinite(np.sum(eta + 1, axis=-1))

    # ---- usual parameters -------------------------------------------------
    @property
    def alpha(self):
        """Concentrations α, shape ``(*batch, K)``."""
        return self._natural + 1

    def mean(self):
        alpha = self.alpha
        return alpha / np.sum(alpha, axis=-1, keepdims=True)

    def var(self):
        alpha = self.alpha
        total = np.sum(alpha, axis=-1, keepdims=True)
        # as m(1 − m)/(Σα + 1), m = α/Σα: α(Σα − α) and Σα² alone overflow (inf/inf = NaN)
        return (alpha / total) * ((total - alpha) / total) / (total + 1)

    # ---- Fisher information --------------------------------------------------
    def fisher(self):
        return _dm.fisher(self.alpha)

    def fisher_vector_product(self, v):
        return _dm.fisher_vector_product(self.alpha, v)

    def fisher_quadratic_form(self, v):
        return _dm.fisher_quadratic_form(self.alpha, v)

    def fisher_solve(self, v):
        return _dm.fisher_solve(self.alpha, v)

    # ---- densities and divergences -------------------------------------------
    def log_partition(self):
        return _dm.log_normalizer(self.alpha)  # stable where log Γ overflows

    def log_base_measure(self, z):
        return np.zeros(np.shape(z)[:-1])

    def expected_log_base_measure(self):
        return np.zeros(self.batch_shape)

    def log_prob(self, z):
        """log q(z) for ``z`` of shape ``(..., *batch, K)`` on the simplex.

        The sum of ``z`` is not checked; a point with a coordinate outside [0, 1] has
        log-density −inf.
        """
        z = np.asarray(z, dtype=float)
        with np.errstate(all="ignore"):
            lp = _dm.log_prob_interior(self.alpha, z)
            at_boundary = (np.sum(special.xlogy(self.alpha - 1, z), axis=-1)
                           - _dm.log_normalizer(self.alpha))
        return np.select([np.any((z < 0) | (z > 1), axis=-1), np.any(z == 0, axis=-1)],
                         [-np.inf, at_boundary], lp)

    def entropy(self):
        return _dm.entropy(self.alpha)

    def kl(self, other):
        if type(other) is type(self) and other.n_params != self.n_params:
            raise ValueError(f"other: expected K = {self.n_params} categories, "
                             f"got {other.n_params}")
        self._check_other(other)
        return _dm.kl(self.alpha, other.alpha)

    def sample(self, rng, n):
        """``n`` draws with ``rng`` (a numpy.random.Generator), shape ``(n, *batch, K)``.

        Normalized Gamma draws, formed in log space so that tiny concentrations do not give
        all-zero (0/0) rows; coordinates below the smallest float still come out as 0.
        """
        self._check_sample_args(rng, n)
        return np.exp(_dm.log_sample(self.alpha, rng, n))

    # ---- the unconstrained coordinates u = log α ------------------------------
    @property
    def unconstrained(self):
        return np.log1p(self._natural)

    @classmethod
    def from_unconstrained(cls, u):
        u = cls._check_last_axis(check_finite_array(u, "u"), "u")
        with np.errstate(over="ignore"):
            eta = np.expm1(u)
        if not (np.all(np.isfinite(eta)) and np.all(cls.in_domain(eta))):
            raise ValueError("u: log concentrations out of the representable range")
        return cls.from_natural(eta)

    def unconstrained_grad(self, grad_mean):
        # ∇_u L = diag(α) F ∇_μ L, since η = exp(u) − 1 gives ∂η/∂u = diag(α)
        return self.alpha * self.fisher_vector_product(grad_mean)
