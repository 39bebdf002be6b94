"""The Bernoulli family, for binary latents."""

import autograd.numpy as anp
import numpy as np

from natvi import autograd_special as asp
from natvi.families.base import ExponentialFamily
from natvi.lazy_modules import special
from natvi.validation import check_finite_array


class Bernoulli(ExponentialFamily):
    """z ~ Bernoulli(p) independently per element, z ∈ {0, 1}.

    T(z) = z, η = logit p, A(η) = log(1 + e^η), μ = p, F = p(1 − p), h = 1.
    Draws are floats 0.0 / 1.0.

    Parameters
    ----------
    p : array_like
        Probabilities of z = 1, all in (0, 1).
    """

    n_params = 1
    support = "binary"
    _domain_text = "any finite logit p"

    @classmethod
    def standard(cls, shape, categories=None):
        """Bernoulli(½) per element of a batch of ``shape`` (``categories`` unused)."""
        return cls(p=np.full(shape, 0.5))

    def __init__(self, p=0.5):
        p = check_finite_array(p, "p")
        if not np.all((p > 0) & (p < 1)):
            raise ValueError("p: expected probabilities in (0, 1) (exclusive)")
        super().__init__(special.logit(p)[..., None])

    # ---- closed forms ---------------------------------------------------
    @staticmethod
    def log_partition_fn(eta):
        return anp.logaddexp(0.0, eta[..., 0])  # softplus, without overflow

    @staticmethod
    def mean_from_natural(eta):
        return asp.expit(eta)

    @staticmethod
    def natural_from_mean(mu):
        mu = np.asarray(mu, dtype=float)
        if not np.all((mu > 0) & (mu < 1)):
            raise ValueError("mean_params: expected a probability in (0, 1) (exclusive)")
        return special.logit(mu)

    @staticmethod
    def sufficient_statistics(z):
        z = np.asarray(z, dtype=float)
        if not np.all((z == 0) | (z == 1)):
            raise ValueError("z: expected values 0 or 1")
        return z[..., None]

    @staticmethod
    def in_domain(eta):
        return np.ones(np.shape(eta)[:-1], dtype=bool)

    # ---- usual parameters -------------------------------------------------
    @property
    def p(self):
        """P(z = 1)."""
        return special.expit(self._natural[..., 0])

    def _p_q(self):
        """(p, 1 − p), each accurate to relative precision even near 0 and 1."""
        eta = self._natural[..., 0]
        return special.expit(eta), special.expit(-eta)

    def mean(self):
        return self.p

    def var(self):
        p, q = self._p_q()
        return p * q

    # ---- Fisher information --------------------------------------------------
    def fisher(self):
        return self.var()[..., None, None]

    def fisher_vector_product(self, v):
        return self.var()[..., None] * v

    def fisher_quadratic_form(self, v):
        return self.var() * v[..., 0] ** 2

    def fisher_solve(self, v):
        # where p(1 − p) underflows to 0: 0 for a zero entry of v (not 0/0 = NaN), else ±inf
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v == 0, 0.0, v / self.var()[..., None])

    # ---- densities and divergences -------------------------------------------
    def log_base_measure(self, z):
        z = np.asarray(z, dtype=float)
        return np.where((z == 0) | (z == 1), 0.0, -np.inf)

    def expected_log_base_measure(self):
        return np.zeros(self.batch_shape)

    def log_prob(self, z):
        z = np.asarray(z, dtype=float)
        eta = self._natural[..., 0]
        # log p = log σ(η), log(1 − p) = log σ(−η); −inf off {0, 1}, as scipy.stats does
        return np.where(z == 1, special.log_expit(eta),
                        np.where(z == 0, special.log_expit(-eta), -np.inf))

    def entropy(self):
        # −p log p − (1 − p) log(1 − p): two non-negative terms, no cancellation
        eta = self._natural[..., 0]
        p, q = self._p_q()
        return -p * special.log_expit(eta) - q * special.log_expit(-eta)

    def kl(self, other):
        self._check_other(other)
        e0, e1 = self._natural[..., 0], other.natural[..., 0]
        p, q = self._p_q()
        return (p * (special.log_expit(e0) - special.log_expit(e1))
                + q * (special.log_expit(-e0) - special.log_expit(-e1)))

    def sample(self, rng, n):
        self._check_sample_args(rng, n)
        u = rng.random((n,) + self.batch_shape)
        return (u < self.p).astype(float)

    # ---- the unconstrained coordinates: u = η = logit p ------------------------
    @property
    def unconstrained(self):
        return self._natural.copy()

    @classmethod
    def from_unconstrained(cls, u):
        u = cls._check_last_axis(u, "u")
        check_finite_array(u, "u")
        return cls.from_natural(u)

    def unconstrained_grad(self, grad_mean):
        # ∂μ/∂η = F, so ∇_η L = F ∇_μ L
        return self.fisher_vector_product(grad_mean)
