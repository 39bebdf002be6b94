"""Gamma distributions, one per batch element."""

import autograd.numpy as anp
import numpy as np

from natvi.autograd_special import digamma as _digamma
from natvi.autograd_special import gammaln as _gammaln
from natvi.families._special import (
    _HALF_LOG_2PI,
    _SERIES_FROM,
    _broadcast,
    _entropy_core,
    _log_minus_digamma,
    _log_ratio_excess,
    _log_standard_gamma,
    _shape_from_log_minus_digamma,
    _stirling_remainder,
    _x_trigamma_minus_one,
)
from natvi.families.base import ExponentialFamily, times
from natvi.lazy_modules import special
from natvi.validation import check_finite_array, check_positive_array


def _log_gamma_bregman(a0, a1):
    """log Γ(a₁) − log Γ(a₀) − (a₁ − a₀) ψ(a₀) ≥ 0, the shape part of KL between Gammas.

    Above the series threshold, by Stirling's form,
    a₁ D(a₀/a₁) − ½ log(a₁/a₀) + S(a₁) − S(a₀) + (a₁ − a₀)(log a₀ − ψ(a₀)), with
    D(t) = t − 1 − log t: the log-gammas cancel analytically. Directly they lose
    O(a log a · ε) to cancellation, and give inf − inf = NaN once they overflow (a ≳ 1e305).
    """
    with np.errstate(all="ignore"):
        direct = special.gammaln(a1) - special.gammaln(a0) - (a1 - a0) * special.digamma(a0)
        log_r = np.log(a1) - np.log(a0)
        stirling = (a1 * _log_ratio_excess((a0 - a1) / a1, -log_r) - 0.5 * log_r
                    + _stirling_remainder(a1) - _stirling_remainder(a0)
                    + (a1 - a0) * _log_minus_digamma(a0))
    return np.where(np.maximum(a0, a1) > _SERIES_FROM, stirling, direct)


# ---- the family ----------------------------------------------------------------------------
class Gamma(ExponentialFamily):
    """z ~ Gamma(shape α, rate β) independently per element, density β^α z^{α−1} e^{−βz} / Γ(α).

    T(z) = (log z, z), η = (α − 1, −β), h(z) = 1, A(η) = log Γ(α) − α log β,
    μ = (ψ(α) − log β, α/β).

    Parameters
    ----------
    shape : array_like
        Shapes α, all > 0 (and ≳ 1e-16, so that η₁ = α − 1 > −1 in floating point).
    rate : array_like
        Rates β (inverse scales), all > 0; broadcast against ``shape``.
    """

    n_params = 2
    support = "positive"
    _domain_text = "shape = η₁ + 1 and rate = −η₂ must be > 0"

    @classmethod
    def standard(cls, shape, categories=None):
        """Gamma(1, 1) per element of a batch of ``shape`` (``categories`` unused)."""
        return cls(shape=np.ones(shape), rate=np.ones(shape))

    def __init__(self, shape=1.0, rate=1.0):
        shape = check_positive_array(shape, "shape")
        rate = check_positive_array(rate, "rate")
        shape, rate = _broadcast(shape, "shape", rate, "rate")
        if not np.all(shape - 1 > -1):
            raise ValueError("shape: expected values ≳ 1e-16 (η₁ = shape − 1 must exceed −1 "
                             "in floating point)")
        super().__init__(np.stack([shape - 1, -rate], axis=-1))

    # ---- closed forms ---------------------------------------------------
    @staticmethod
    def log_partition_fn(eta):
        alpha = eta[..., 0] + 1
        return _gammaln(alpha) - alpha * anp.log(-eta[..., 1])

    @staticmethod
    def mean_from_natural(eta):
        alpha, beta = eta[..., 0] + 1, -eta[..., 1]
        return anp.stack([_digamma(alpha) - anp.log(beta), alpha / beta], axis=-1)

    @staticmethod
    def natural_from_mean(mu):
        mu = np.asarray(mu, dtype=float)
        m1, m2 = mu[..., 0], mu[..., 1]
        with np.errstate(all="ignore"):
            s = np.log(m2) - m1
        if not np.all(np.isfinite(mu)) or not np.all((m2 > 0) & (s > 0)):
            raise ValueError("mean_params: expected finite μ = (E[log z], E[z]) with E[z] > 0 "
                             "and log E[z] > E[log z] (Jensen)")
        alpha = _shape_from_log_minus_digamma(s)
        if not np.all(alpha - 1 > -1):
            raise ValueError("mean_params: log E[z] − E[log z] too large: the shape would be "
                             "below ~1e-16, not representable as η₁ = shape − 1")
        return np.stack([alpha - 1, -alpha / m2], axis=-1)

    @staticmethod
    def sufficient_statistics(z):
        z = np.asarray(z, dtype=float)
        return np.stack([np.log(z), z], axis=-1)

    @staticmethod
    def in_domain(eta):
        return (eta[..., 0] > -1) & (eta[..., 1] < 0)

    # ---- usual parameters -------------------------------------------------
    @property
    def shape(self):
        """Shape α."""
        return self._natural[..., 0] + 1

    @property
    def rate(self):
        """Rate β."""
        return -self._natural[..., 1]

    def mean(self):
        return self.shape / self.rate

    def var(self):
        return self.shape / self.rate**2

    # ---- Fisher information --------------------------------------------------
    def fisher(self):
        alpha, beta = self.shape, self.rate
        f = np.empty(self.batch_shape + (2, 2))
        f[..., 0, 0] = special.polygamma(1, alpha)
        f[..., 0, 1] = f[..., 1, 0] = 1 / beta
        f[..., 1, 1] = alpha / beta / beta  # β² alone underflows to 0 for β ≲ 1e-162
        return f

    def fisher_vector_product(self, v):
        alpha, beta = self.shape, self.rate
        a, b = v[..., 0], v[..., 1]
        # αb/β² is 0 at b = 0 also where β² underflows to 0 (β ≲ 1e-162), not 0/0 = NaN
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.stack([special.polygamma(1, alpha) * a + b / beta,
                             a / beta + np.where(b == 0, 0.0, alpha * b / beta**2)], axis=-1)

    def fisher_quadratic_form(self, v):
        # F = [[ψ′, 1/β], [1/β, α/β²]] gives ⟨v, Fv⟩ = α (v₂/β + v₁/α)² + (ψ′ − 1/α) v₁², a sum
        # of squares; ψ′ − 1/α = (αψ′ − 1)/α is taken from its cancellation-free form.
        alpha, beta = self.shape, self.rate
        a, b = v[..., 0], v[..., 1]
        return alpha * (b / beta + a / alpha) ** 2 + _x_trigamma_minus_one(alpha) / alpha * a**2

    def fisher_solve(self, v):
        # det F = (αψ′(α) − 1)/β², so F⁻¹ = [[α, −β], [−β, β²ψ′(α)]] / (αψ′(α) − 1).
        alpha, beta = self.shape, self.rate
        a, b = v[..., 0], v[..., 1]
        det = _x_trigamma_minus_one(alpha)
        # times(): β²ψ′(α) may overflow (β ≳ 1e150, or a tiny α), and its product with b = 0
        # is 0, not NaN
        return np.stack([(alpha * a - beta * b) / det,
                         beta * (times(beta * special.polygamma(1, alpha), b) - a) / det],
                        axis=-1)

    # ---- densities and divergences -------------------------------------------
    def log_base_measure(self, z):
        return np.zeros(np.shape(z))

    def expected_log_base_measure(self):
        return np.zeros(self.batch_shape)

    def log_prob(self, z):
        # With y = βz: log q = ½ log(α/2π) − S(α) − log z − α D(y/α), D(t) = t − 1 − log t ≥ 0,
        # S the Stirling remainder. The direct α log β + (α−1) log z − βz − log Γ(α) cancels
        # O(α log α) terms; this form does not.
        z = np.asarray(z, dtype=float)
        alpha, beta = self.shape, self.rate
        with np.errstate(all="ignore"):
            d = _log_ratio_excess((beta * z - alpha) / alpha,
                                  np.log(beta) + np.log(z) - np.log(alpha))
            inside = (0.5 * np.log(alpha / (2 * np.pi)) - _stirling_remainder(alpha) - np.log(z)
                      - alpha * d)
            at_zero = alpha * np.log(beta) - special.gammaln(alpha) + special.xlogy(alpha - 1, z)
        return np.select([(z > 0) & (z < np.inf), z == 0, (z < 0) | (z == np.inf)],
                         [inside, at_zero, -np.inf], np.nan)

    def log_partition(self):
        # log Γ(α) − α log β = α(log α − log β − 1) − ½ log α + ½ log 2π + S(α), S the Stirling
        # remainder: the direct difference is inf − inf = NaN once log Γ(α) and α log β both
        # overflow (α ≳ 1e306), where A itself may be a moderate number.
        alpha, beta = self.shape, self.rate
        return (alpha * (np.log(alpha) - np.log(beta) - 1) - 0.5 * np.log(alpha)
                + _HALF_LOG_2PI + _stirling_remainder(alpha))

    def entropy(self):
        return _entropy_core(self.shape) + 0.5 * np.log(self.shape) - np.log(self.rate)

    def kl(self, other):
        self._check_other(other)
        a0, b0, a1, b1 = self.shape, self.rate, other.shape, other.rate
        t = (b1 - b0) / b0
        # a₁ log(β₀/β₁) + a₀ (β₁/β₀ − 1) regrouped around t = β₁/β₀ − 1 so that close
        # distributions give a small result without a large cancellation
        return (_log_gamma_bregman(a0, a1)
                + a0 * (t - np.log1p(t)) - (a1 - a0) * np.log1p(t))

    def sample(self, rng, n):
        self._check_sample_args(rng, n)
        log_g = _log_standard_gamma(rng, self.shape, (n,) + self.batch_shape)
        return np.exp(log_g - np.log(self.rate))

    # ---- the unconstrained coordinates u = (log α, log β) ---------------------
    @property
    def unconstrained(self):
        return np.stack([np.log1p(self._natural[..., 0]), np.log(self.rate)], axis=-1)

    @classmethod
    def from_unconstrained(cls, u):
        u = cls._check_last_axis(check_finite_array(u, "u"), "u")
        with np.errstate(over="ignore"):
            eta = np.stack([np.expm1(u[..., 0]), -np.exp(u[..., 1])], axis=-1)
        if not (np.all(np.isfinite(eta)) and np.all(cls.in_domain(eta))):
            raise ValueError("u: log shape or log rate out of the representable range")
        return cls.from_natural(eta)

    def unconstrained_grad(self, grad_mean):
        # ∇_u L = (∂η/∂u)ᵀ F ∇_μ L with ∂η/∂u = diag(α, −β)
        fg = self.fisher_vector_product(grad_mean)
        return np.stack([self.shape * fg[..., 0], -self.rate * fg[..., 1]], axis=-1)
