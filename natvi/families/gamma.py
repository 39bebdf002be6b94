"""Gamma distributions, one per batch element.

Also home of the special-function helpers the Beta and Dirichlet families share:
log x − ψ(x), x ψ′(x) − 1 and the Stirling remainder, each computed without the
cancellation of its direct difference at large x.
"""

import autograd.numpy as anp
import numpy as np
from autograd.scipy.special import digamma as _digamma
from autograd.scipy.special import gammaln as _gammaln
from numpy.polynomial import polynomial
from scipy import special

from natvi.families.base import ExponentialFamily
from natvi.validation import check_finite_array, check_positive_array, check_positive_int

_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)

# ---- special functions -------------------------------------------------------------------
# Above _SERIES_FROM the asymptotic (Bernoulli-number) series replace the direct differences,
# which lose about log10(x) digits; with the terms below they are exact to rounding there.
_SERIES_FROM = 10.0
_BERNOULLI = np.array([1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510])
_K = np.arange(1, len(_BERNOULLI) + 1)
_LOG_MINUS_DIGAMMA = np.concatenate([[0.0], _BERNOULLI / (2 * _K)])  # powers of 1/x²
_X_TRIGAMMA = np.concatenate([[0.0], _BERNOULLI])  # powers of 1/x²
_STIRLING = _BERNOULLI / (2 * _K * (2 * _K - 1))  # times 1/x, in powers of 1/x²


def _split(x):
    """``x`` clipped below and above the series threshold (each branch sees valid input)."""
    return np.minimum(x, _SERIES_FROM), np.maximum(x, _SERIES_FROM)


def _log_minus_digamma(x):
    """log x − ψ(x) (> 0, ≈ 1/(2x) for large x), for x > 0."""
    small, large = _split(np.asarray(x, dtype=float))
    w = 1 / large**2
    series = 0.5 / large + polynomial.polyval(w, _LOG_MINUS_DIGAMMA)
    return np.where(x < _SERIES_FROM, np.log(small) - special.digamma(small), series)


def _x_trigamma_minus_one(x):
    """x ψ′(x) − 1 (> 0, ≈ 1/(2x) for large x), for x > 0."""
    small, large = _split(np.asarray(x, dtype=float))
    w = 1 / large**2
    series = 0.5 / large + polynomial.polyval(w, _X_TRIGAMMA)
    return np.where(x < _SERIES_FROM, small * special.polygamma(1, small) - 1, series)


def _stirling_remainder(x):
    """log Γ(x) − (x − ½) log x + x − ½ log 2π (≈ 1/(12x) for large x), for x > 0."""
    small, large = _split(np.asarray(x, dtype=float))
    series = polynomial.polyval(1 / large**2, _STIRLING) / large
    direct = special.gammaln(small) - (small - 0.5) * np.log(small) + small - _HALF_LOG_2PI
    return np.where(x < _SERIES_FROM, direct, series)


def _entropy_core(x):
    """log Γ(x) − (x − 1) ψ(x) − ½ log x + x, bounded for large x (→ ½ log 2π + ½).

    The entropies of the Gamma, Beta and Dirichlet are sums of this term and logarithms;
    written so, the O(x log x) parts cancel analytically rather than in floating point.
    """
    return _HALF_LOG_2PI + _stirling_remainder(x) + (x - 1) * _log_minus_digamma(x)


def _log_ratio_excess(u, log_t):
    """D(t) = t − 1 − log t ≥ 0 from u = t − 1 (accurate near t = 1) and log t (accurate away).

    The log-densities are written as −α D(·) + bounded terms, which avoids the cancellation
    of O(α log α) terms in the direct forms at large shapes or concentrations.
    """
    return np.where(np.abs(u) < 0.5, u - np.log1p(u), np.expm1(log_t) - log_t)


def _shape_from_log_minus_digamma(s):
    """The x > 0 with log x − ψ(x) = s, for s > 0 (the Gamma's maximum-likelihood shape).

    Newton in log x from Minka's (2002) closed-form start, which is within 1.5%. In log x the
    left side is convex and decreasing, so after the first step the iterates approach the root
    monotonically and quadratically.
    """
    root = np.hypot(s - 3, np.sqrt(24 * s))
    with np.errstate(divide="ignore"):  # the branch not taken may divide by zero
        x = np.log(np.where(s > 3, 2 / (root + s - 3),  # the same, without cancellation
                            (3 - s + root) / (12 * s)))
    return np.exp(_newton(lambda x: (_log_minus_digamma(np.exp(x)) - s)
                          / _x_trigamma_minus_one(np.exp(x)), x))


def _newton(step_fn, x, axis=None, max_iter=100):
    """Iterate x ← x + step_fn(x) to convergence.

    Steps are capped at 1 in max-norm, per element or per slice along ``axis``. Converged
    one step after the largest step falls below 1e-8 (quadratic convergence then leaves an
    error at rounding level), or once steps stop shrinking near the root, where they are
    rounding noise of an ill-conditioned problem.
    """
    previous, polish = np.inf, False
    for _ in range(max_iter):
        with np.errstate(all="ignore"):  # a non-finite step is caught just below
            step = step_fn(x)
        if not np.all(np.isfinite(step)):
            break
        size = np.max(np.abs(step), initial=0.0)
        cap = (np.abs(step) if axis is None
               else np.max(np.abs(step), axis=axis, keepdims=True, initial=0.0))
        x = x + step / np.maximum(1.0, cap)
        if polish or (previous < 1e-5 and size > previous / 2):
            return x
        polish = size < 1e-8
        previous = size
    raise ValueError("mean_params: the Newton iteration for the natural parameters did not "
                     "converge (parameters too extreme to represent?)")


def _broadcast(x, name_x, y, name_y):
    """``x`` and ``y`` broadcast together; a mismatch names ``y``."""
    try:
        return np.broadcast_arrays(x, y)
    except ValueError:
        raise ValueError(f"{name_y}: shape {np.shape(y)} does not broadcast against "
                         f"{name_x}'s shape {np.shape(x)}") from None


def _log_standard_gamma(rng, alpha, size):
    """log G, G ~ Gamma(alpha, 1), finite even where G itself would underflow to 0.

    Uses Gamma(α) = Gamma(α + 1) · U^{1/α}: for small α most of G's range sits in U^{1/α},
    which is kept as log(U)/α instead of being exponentiated.
    """
    u = rng.random(size)
    return np.log(rng.standard_gamma(alpha + 1, size)) + np.log1p(-u) / alpha


def _check_sample_args(rng, n):
    check_positive_int(n, "n")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")


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
        f[..., 1, 1] = alpha / beta**2
        return f

    def fisher_vector_product(self, v):
        alpha, beta = self.shape, self.rate
        a, b = v[..., 0], v[..., 1]
        return np.stack([special.polygamma(1, alpha) * a + b / beta,
                         a / beta + alpha * b / beta**2], axis=-1)

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
        return np.stack([(alpha * a - beta * b) / det,
                         beta * (beta * special.polygamma(1, alpha) * b - a) / det], axis=-1)

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

    def entropy(self):
        return _entropy_core(self.shape) + 0.5 * np.log(self.shape) - np.log(self.rate)

    def kl(self, other):
        if type(other) is not type(self):
            raise ValueError(f"other: expected a {type(self).__name__}, got {type(other).__name__}")
        a0, b0, a1, b1 = self.shape, self.rate, other.shape, other.rate
        t = (b1 - b0) / b0
        # a₁ log(β₀/β₁) + a₀ (β₁/β₀ − 1) regrouped around t = β₁/β₀ − 1 so that close
        # distributions give a small result without a large cancellation
        return (special.gammaln(a1) - special.gammaln(a0) - (a1 - a0) * special.digamma(a0)
                + a0 * (t - np.log1p(t)) - (a1 - a0) * np.log1p(t))

    def sample(self, rng, n):
        _check_sample_args(rng, n)
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
