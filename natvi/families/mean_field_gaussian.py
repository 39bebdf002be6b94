"""Independent Gaussians, one per batch element: the mean-field Gaussian family."""

import autograd.numpy as anp
import numpy as np

from natvi.families.base import ExponentialFamily
from natvi.validation import check_finite_array, check_positive_array, check_positive_int

_LOG_2PI = np.log(2 * np.pi)


class MeanFieldGaussian(ExponentialFamily):
    """z ~ N(loc, scale²) independently per element.

    T(z) = (z, z²), η = (m/v, −1/(2v)), μ = (m, m² + v), with v = scale².

    Parameters
    ----------
    loc : array_like
        Means; broadcast against ``scale``.
    scale : array_like
        Standard deviations, all > 0.
    """

    n_params = 2
    support = "real"
    _domain_text = "the second natural parameter −1/(2·scale²) must be < 0"

    def __init__(self, loc=0.0, scale=1.0):
        loc = check_finite_array(loc, "loc")
        scale = check_positive_array(scale, "scale")
        loc, scale = np.broadcast_arrays(loc, scale)
        with np.errstate(all="ignore"):
            v = scale**2
            representable = (v > 0) & np.isfinite(v) & np.isfinite(loc / v)
        if not np.all(representable):
            raise ValueError("scale: expected values whose square is a positive finite float "
                             "(and loc / scale² finite)")
        super().__init__(np.stack([loc / v, -0.5 / v], axis=-1))

    # ---- closed forms ---------------------------------------------------
    @staticmethod
    def log_partition_fn(eta):
        e1, e2 = eta[..., 0], eta[..., 1]
        return -(e1**2) / (4 * e2) - 0.5 * anp.log(-2 * e2)

    @staticmethod
    def mean_from_natural(eta):
        v = -0.5 / eta[..., 1]
        m = eta[..., 0] * v
        return anp.stack([m, m**2 + v], axis=-1)  # anp: autograd differentiates μ(η)

    @staticmethod
    def natural_from_mean(mu):
        m = mu[..., 0]
        v = mu[..., 1] - m**2
        if not np.all(v > 0):
            raise ValueError("mean_params: expected μ₂ − μ₁² > 0 (a positive variance)")
        return np.stack([m / v, -0.5 / v], axis=-1)

    @staticmethod
    def sufficient_statistics(z):
        z = np.asarray(z, dtype=float)
        return np.stack([z, z**2], axis=-1)

    @staticmethod
    def in_domain(eta):
        return eta[..., 1] < 0

    # ---- usual parameters -------------------------------------------------
    @property
    def loc(self):
        return self._natural[..., 0] * self.variance

    @property
    def variance(self):
        return -0.5 / self._natural[..., 1]

    @property
    def scale(self):
        return np.sqrt(self.variance)

    def mean(self):
        return self.loc

    def var(self):
        return self.variance

    # ---- Fisher information --------------------------------------------------
    def fisher(self):
        m, v = self.loc, self.variance
        f = np.empty(self.batch_shape + (2, 2))
        f[..., 0, 0] = v
        f[..., 0, 1] = f[..., 1, 0] = 2 * m * v
        f[..., 1, 1] = 2 * v**2 + 4 * m**2 * v
        return f

    def fisher_vector_product(self, v_):
        m, v = self.loc, self.variance
        a, b = v_[..., 0], v_[..., 1]
        return np.stack([v * a + 2 * m * v * b,
                         2 * m * v * a + (2 * v**2 + 4 * m**2 * v) * b], axis=-1)

    def fisher_quadratic_form(self, v_):
        # F = Jᵀ diag(v, 2v²) J with J = [[1, 2m], [0, 1]], so ⟨u, Fu⟩ is a sum of squares.
        # The generic ⟨u, Fu⟩ cancels catastrophically when v is tiny and |m| large (it
        # came out negative, and fit then reported "converged" far from the optimum).
        m, v = self.loc, self.variance
        a, b = v_[..., 0], v_[..., 1]
        return v * (a + 2 * m * b) ** 2 + 2 * v**2 * b**2

    def fisher_solve(self, v_):
        # Closed-form inverse of each 2×2 block: det F = 2v³.
        m, v = self.loc, self.variance
        a, b = v_[..., 0], v_[..., 1]
        return np.stack([(1 / v + 2 * m**2 / v**2) * a - m / v**2 * b,
                         -m / v**2 * a + b / (2 * v**2)], axis=-1)

    # ---- densities and divergences -------------------------------------------
    def log_base_measure(self, z):
        return np.full(np.shape(z), -0.5 * _LOG_2PI)

    def expected_log_base_measure(self):
        return np.full(self.batch_shape, -0.5 * _LOG_2PI)

    def log_prob(self, z):
        # The direct form avoids cancellation between η·T(z) and A(η) at small variances.
        z = np.asarray(z, dtype=float)
        v = self.variance
        return -0.5 * (_LOG_2PI + np.log(v) + (z - self.loc) ** 2 / v)

    def entropy(self):
        return 0.5 * (_LOG_2PI + 1 + np.log(self.variance))

    def kl(self, other):
        if type(other) is not type(self):
            raise ValueError(f"other: expected a {type(self).__name__}, got {type(other).__name__}")
        v0, v1 = self.variance, other.variance
        return 0.5 * (np.log(v1 / v0) + (v0 + (self.loc - other.loc) ** 2) / v1 - 1)

    def sample(self, rng, n):
        check_positive_int(n, "n")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        eps = rng.standard_normal((n,) + self.batch_shape)
        return self.loc + self.scale * eps

    # ---- moments and the unconstrained coordinates ---------------------------
    def grad_mean_from_moments(self, grad_loc, grad_var):
        """∇_μ L from ∇_m L and ∇_v L (the chain rule through m = μ₁, v = μ₂ − μ₁²)."""
        return np.stack([grad_loc - 2 * self.loc * grad_var, grad_var], axis=-1)

    @property
    def unconstrained(self):
        return np.stack([self.loc, np.log(self.scale)], axis=-1)

    @classmethod
    def from_unconstrained(cls, u):
        u = cls._check_last_axis(u, "u")
        v = np.exp(2 * u[..., 1])
        return cls.from_natural(np.stack([u[..., 0] / v, -0.5 / v], axis=-1))

    def unconstrained_grad(self, grad_mean):
        g1, g2 = grad_mean[..., 0], grad_mean[..., 1]
        return np.stack([g1 + 2 * self.loc * g2, 2 * self.variance * g2], axis=-1)
