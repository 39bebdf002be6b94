"""Independent Gaussians, one per batch element: the mean-field Gaussian family."""

import autograd.numpy as anp
import numpy as np

from natvi.families._special import _broadcast
from natvi.families.base import ExponentialFamily, times
from natvi.validation import check_finite_array, check_positive_array

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
    _domain_text = ("the second natural parameter −1/(2·scale²) must be < 0, with a finite "
                    "variance and mean")

    @classmethod
    def standard(cls, shape, categories=None):
        """N(0, 1) per element of a batch of ``shape`` (for LogNormal and LogitNormal, of the
        Gaussian x; ``categories`` unused)."""
        return cls(loc=np.zeros(shape), scale=np.ones(shape))

    def __init__(self, loc=0.0, scale=1.0):
        loc = check_finite_array(loc, "loc")
        scale = check_positive_array(scale, "scale")
        loc, scale = _broadcast(loc, "loc", scale, "scale")
        with np.errstate(all="ignore"):
            v = scale**2
            # −1/(2v) overflows for a subnormal v ≲ 2.8e-309 although v > 0
            representable = ((v > 0) & np.isfinite(v) & np.isfinite(loc / v)
                             & np.isfinite(0.5 / v))
        if not np.all(representable):
            raise ValueError("scale: expected values whose square is a positive finite float "
                             "(and loc / scale² and 1 / scale² finite)")
        super().__init__(np.stack([loc / v, -0.5 / v], axis=-1))

    # ---- closed forms ---------------------------------------------------
    @staticmethod
    def log_partition_fn(eta):
        e1, e2 = eta[..., 0], eta[..., 1]
        # −η₁²/(4η₂) = (m/2)·η₁, grouped so that η₁² does not overflow when m²/(2v) is finite
        return -(e1 / (4 * e2)) * e1 - 0.5 * anp.log(-2 * e2)

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
        # η₂ < 0, with a variance −1/(2η₂) and a mean η₁·variance that are finite floats: a
        # subnormal η₂ or a huge η₁ passes η₂ < 0 but gives an infinite variance or mean,
        # and NaN in every operation after that
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            v = -0.5 / eta[..., 1]
            return (eta[..., 1] < 0) & np.isfinite(v) & np.isfinite(eta[..., 0] * v)

    # ---- usual parameters -------------------------------------------------
    @property
    def loc(self):
        """Mean m of the Gaussian (of log z for LogNormal, logit z for LogitNormal)."""
        return self._natural[..., 0] * self.variance

    @property
    def variance(self):
        """Variance v of the Gaussian, shape ``batch_shape``."""
        return -0.5 / self._natural[..., 1]

    @property
    def scale(self):
        """Standard deviation √v of the Gaussian, shape ``batch_shape``."""
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
        f[..., 1, 1] = 2 * v**2 + 4 * (m * np.sqrt(v)) ** 2  # m²v without overflow of m²
        return f

    def fisher_vector_product(self, v_):
        """F(η) v_ for ``v_`` of shape ``(*batch, 2)``: turns ∇_μ into ∇_η."""
        m, v = self.loc, self.variance
        a, b = v_[..., 0], v_[..., 1]
        # times(): an entry that overflowed (v² at v ≳ 1e154) times a zero entry of v_ is 0
        # (the products are otherwise those of the plain formula, to the last bit)
        mv2 = 2 * m * v
        return np.stack([times(v, a) + times(mv2, b),
                         times(mv2, a) + times(2 * v**2 + 4 * m**2 * v, b)], axis=-1)

    def fisher_quadratic_form(self, v_):
        """⟨v_, F(η) v_⟩ per element for ``v_`` of shape ``(*batch, 2)``, as a sum of squares."""
        # F = Jᵀ diag(v, 2v²) J with J = [[1, 2m], [0, 1]], so ⟨u, Fu⟩ is a sum of squares.
        # The generic ⟨u, Fu⟩ cancels catastrophically when v is tiny and |m| large (it
        # came out negative, and fit then reported "converged" far from the optimum).
        m, v = self.loc, self.variance
        a, b = v_[..., 0], v_[..., 1]
        # (√v·(a + 2mb))² + 2(vb)²: no v² or m² that overflows alone, no inf·0 at b = 0
        s = np.sqrt(v)
        return (s * a + times(2 * m * s, b)) ** 2 + 2 * (v * b) ** 2

    def fisher_solve(self, v_):
        """F(η)⁻¹ v_ for ``v_`` of shape ``(*batch, 2)``: turns ∇_η into ∇_μ."""
        # Closed-form inverse of each 2×2 block (det F = 2v³), written in η: with λ = 1/v =
        # −2η₂ and η₁ = m/v, F⁻¹ = [[λ + 2η₁², −η₁λ], [−η₁λ, λ²/2]]. The form in (m, v)
        # divided by v², which underflows to 0 for v ≲ 1e-162 (then 0/0 = NaN at m = 0).
        e1, lam = self._natural[..., 0], -2 * self._natural[..., 1]
        a, b = v_[..., 0], v_[..., 1]
        off = times(lam, -e1)  # λ = −2η₂ overflows for η₂ ≲ −9e307; 0 at η₁ = 0
        return np.stack([times(lam + 2 * e1**2, a) + times(off, b),
                         times(off, a) + times(0.5 * lam**2, b)], axis=-1)

    # ---- natural-gradient steps ------------------------------------------------
    @staticmethod
    def natural_step(eta, grad, rho):
        """Natural parameters after a step of size ``rho`` along ``grad`` = ∇_μ L from
        ``eta`` (both ``(*batch, 2)``) that keeps every precision positive: the Bayesian
        learning rule's step of Lin, Schmidt & Khan (ICML 2020), elementwise.

        With precision s = −2η₂, mean m, precision part g = −2∇_μ₂L of the step (the plain
        step is s + ρg) and ∇_m L = ∇_μ₁L − g·m:
        s′ = s + ρg + ρ²g²/(2s) = ½s + ½(s + ρg)²/s > 0 for every ρ, and m′ = m + ρ∇_m L/s′,
        so η′ = (s′m + ρ∇_m L, −½s′). To first order in ρ this is the plain η + ρ∇_μ L
        (which is η′ with s′ = s + ρg); at a stationary point (∇_μ L = 0) both stay put.
        """
        prec = -2 * eta[..., 1]
        loc = eta[..., 0] / prec
        g = -2 * grad[..., 1]
        grad_loc = grad[..., 0] - g * loc
        plain = prec + rho * g
        new = 0.5 * (prec + plain * (plain / prec))
        return np.stack([new * loc + rho * grad_loc, -0.5 * new], axis=-1)

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
        self._check_other(other)
        v0, v1 = self.variance, other.variance
        return 0.5 * (np.log(v1 / v0) + (v0 + (self.loc - other.loc) ** 2) / v1 - 1)

    def sample(self, rng, n):
        self._check_sample_args(rng, n)
        eps = rng.standard_normal((n,) + self.batch_shape)
        return self.loc + self.scale * eps

    # ---- moments and the unconstrained coordinates ---------------------------
    def grad_mean_from_moments(self, grad_loc, grad_var):
        """∇_μ L from ``grad_loc`` = ∇_m L and ``grad_var`` = ∇_v L, each of shape
        ``batch_shape`` (the chain rule through m = μ₁, v = μ₂ − μ₁²)."""
        return np.stack([grad_loc - times(2 * self.loc, grad_var), grad_var], axis=-1)

    # ---- the Gaussian's interface to engines: linear maps, second moments, noise ------
    def linear_moments(self, D):
        """Mean and variance of D z for ``D`` of shape (n, size): (D m, (D∘D) v), each (n,)."""
        return D @ np.ravel(self.loc), (D * D) @ np.ravel(self.variance)

    def linear_moments_grad(self, D, grad_mean, grad_var):
        """∇_m and ∇_v (each of ``batch_shape``) of Σᵢ aᵢ E[(Dz)ᵢ] + bᵢ Var[(Dz)ᵢ] for rows
        ``D`` (n, size), ``grad_mean`` a and ``grad_var`` b (each (n,)): the pull-back of
        :meth:`linear_moments`, for :meth:`grad_mean_from_moments`."""
        return ((grad_mean @ D).reshape(self.batch_shape),
                (grad_var @ (D * D)).reshape(self.batch_shape))

    def second_moment_grad(self, c):
        """∇_μ of Σ cⱼ E[zⱼ²] for ``c`` of ``batch_shape`` (constant: μ₂ is E[z²])."""
        c = np.broadcast_to(np.asarray(c, dtype=float), self.batch_shape)
        return np.stack([np.zeros(self.batch_shape), c], axis=-1)

    @staticmethod
    def second_moments_from_mean(mu):
        """E[z²] per element from mean parameters ``mu`` (autograd-safe)."""
        return mu[..., 1]

    @staticmethod
    def loc_from_mean(mu):
        """The means, flattened to (size,), from mean parameters ``mu`` (autograd-safe)."""
        return anp.reshape(mu[..., 0], (-1,))

    @staticmethod
    def trace_cov_from_mean(mu, G):
        """tr(G Σ) = Σⱼ Gⱼⱼ vⱼ for the flattened elements, from mean parameters ``mu`` and a
        (size, size) matrix ``G`` (autograd-safe)."""
        m, s = anp.reshape(mu[..., 0], (-1,)), anp.reshape(mu[..., 1], (-1,))
        return anp.sum(anp.diagonal(G) * (s - m * m))

    #: draws are loc + scale·ε of standard normal ε: pathwise gradients apply
    reparameterizable = True

    def standard_noise(self, rng, n):
        """ε ~ N(0, 1) for ``n`` draws from ``rng``, shape (n, *batch)."""
        return rng.standard_normal((n,) + self.batch_shape)

    def from_noise(self, eps):
        """The Gaussian value x = loc + scale·ε for noise ``eps`` (x is z; log z or logit z
        when transformed)."""
        return self.loc + self.scale * eps

    @staticmethod
    def to_support(x):
        """z from the Gaussian value x (the identity here), written with autograd.numpy."""
        return x

    def location_scale(self):
        """(mean, standard deviation) of each Gaussian coordinate x, shape ``batch_shape``
        each: where the draws' base Gaussian sits, for comparing fits."""
        return self.loc, self.scale

    def pathwise_grad(self, grad_x, eps):
        """∇_μ E[f(z)] from f's gradients ``grad_x`` = ∇ₓf at x = loc + scale·ε for the
        draws ``eps`` (both (S, *batch)): ∇_m = E[∇ₓf], ∇_v = E[∇ₓf ε]/(2 scale)."""
        return self.grad_mean_from_moments(grad_x.mean(axis=0),
                                           (grad_x * eps).mean(axis=0) / (2 * self.scale))

    @property
    def unconstrained(self):
        return np.stack([self.loc, np.log(self.scale)], axis=-1)

    @classmethod
    def from_unconstrained(cls, u):
        u = cls._check_last_axis(check_finite_array(u, "u"), "u")
        with np.errstate(all="ignore"):  # out of range is reported below
            v = np.exp(2 * u[..., 1])
            eta = np.stack([u[..., 0] / v, -0.5 / v], axis=-1)
        if not (np.all(np.isfinite(eta)) and np.all(cls.in_domain(eta))):
            raise ValueError("u: mean or log-scale out of the representable range")
        return cls.from_natural(eta)

    def unconstrained_grad(self, grad_mean):
        g1, g2 = grad_mean[..., 0], grad_mean[..., 1]
        return np.stack([g1 + times(2 * self.loc, g2), times(2 * self.variance, g2)], axis=-1)
