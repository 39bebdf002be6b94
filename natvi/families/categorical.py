"""The categorical family, for latents taking one of K values."""

import autograd.numpy as anp
import numpy as np

from natvi.autograd_special import logsumexp
from natvi.families.base import ExponentialFamily
from natvi.validation import check_finite_array

#: tolerance on |Σ p − 1| when building from probabilities (then renormalized exactly)
SUM_TOL = 1e-8


def _log_probs(eta):
    """log p of all K categories from η (*batch, K−1), accurate also for p near 1.

    With η̃ = (η, 0) and M its largest entry, log Σ exp η̃ = M + log1p(S), where S sums
    exp(η̃ − M) over the other entries: for the dominant category log p = −log1p(S)
    keeps its relative precision, which M + log(1 + S) would lose.
    """
    full = np.concatenate([eta, np.zeros(eta.shape[:-1] + (1,))], axis=-1)
    top = np.argmax(full, axis=-1)[..., None]
    m = np.take_along_axis(full, top, axis=-1)
    e = np.exp(full - m)
    np.put_along_axis(e, top, 0.0, axis=-1)
    return full - m - np.log1p(e.sum(axis=-1, keepdims=True))


class Categorical(ExponentialFamily):
    """z ~ Categorical(p) independently per element, z ∈ {0, …, K−1}.

    T(z) = the first K−1 one-hot indicators of z, η_k = log(p_k / p_K),
    A(η) = log(1 + Σ exp η), μ = (p_1, …, p_{K−1}), F = diag(p) − ppᵀ on those
    K−1 categories, h = 1. Draws are int64 category codes; :meth:`mean` and
    :meth:`var` are those of the one-hot vector (all K entries).

    Parameters
    ----------
    p : array_like, shape (*batch, K)
        Probabilities, all > 0, summing to 1 over the last axis; K ≥ 2.
    """

    n_params = None  # K − 1, from the last axis of η
    support = "categorical"
    _domain_text = "any finite η"
    _size_text = "K − 1 ≥ 1"

    @classmethod
    def standard(cls, shape, categories=None):
        """The uniform distribution over ``categories`` = K codes, per element of a batch of
        ``shape``."""
        return cls(p=np.full(tuple(shape) + (categories,), 1.0 / categories))

    @staticmethod
    def _valid_size(k):
        return k >= 1

    def __init__(self, p=(0.5, 0.5)):
        p = check_finite_array(p, "p")
        if p.ndim < 1 or p.shape[-1] < 2:
            raise ValueError(f"p: expected an array of shape (*batch, K) with K ≥ 2, "
                             f"got shape {p.shape}")
        if not np.all(p > 0):
            raise ValueError(f"p: expected probabilities > 0, got minimum {p.min()}")
        total = p.sum(axis=-1, keepdims=True)
        if not np.all(np.abs(total - 1) <= SUM_TOL):
            raise ValueError(f"p: expected probabilities summing to 1 over the last axis, "
                             f"got sums up to {np.max(np.abs(total - 1)):.3g} away from 1")
        # η is invariant to the scale of p, so it describes p / Σ p exactly
        logp = np.log(p)
        super().__init__(logp[..., :-1] - logp[..., -1:])

    # ---- closed forms ---------------------------------------------------
    @staticmethod
    def log_partition_fn(eta):
        zero = anp.zeros(anp.shape(eta)[:-1] + (1,))
        return logsumexp(anp.concatenate([eta, zero], axis=-1), axis=-1)

    @staticmethod
    def mean_from_natural(eta):
        a = Categorical.log_partition_fn(eta)
        return anp.exp(eta - a[..., None])  # anp: autograd differentiates μ(η)

    @staticmethod
    def natural_from_mean(mu):
        mu = np.asarray(mu, dtype=float)
        with np.errstate(invalid="ignore"):
            last = 1 - mu.sum(axis=-1, keepdims=True)
            ok = np.all(mu > 0, axis=-1) & (last[..., 0] > 0)
        if not np.all(ok):
            raise ValueError("mean_params: expected probabilities μ_k > 0 with Σ μ_k < 1 "
                             "(the last category keeps 1 − Σ μ_k > 0)")
        return np.log(mu) - np.log(last)

    def sufficient_statistics(self, z):
        """The first K−1 one-hot indicators of the codes ``z``, shape (*z.shape, K−1).

        An instance method (not static): the codes alone do not say K.
        """
        z = self._codes(z, strict=True)[0]
        return (z[..., None] == np.arange(self.n_params)).astype(float)

    def _codes(self, z, strict):
        """(integer codes, valid mask); invalid codes raise when ``strict``."""
        z = np.asarray(z)
        if np.issubdtype(z.dtype, np.bool_):
            z = z.astype(np.int64)
        if not (np.issubdtype(z.dtype, np.integer) or np.issubdtype(z.dtype, np.floating)):
            raise ValueError(f"z: expected integer category codes, got dtype {z.dtype}")
        k = self.n_params + 1
        with np.errstate(invalid="ignore"):
            valid = (z == np.round(z)) & (z >= 0) & (z < k)
        if strict and not np.all(valid):
            raise ValueError(f"z: expected integer category codes in 0..{k - 1}")
        return np.where(valid, z, 0).astype(np.int64), valid

    @staticmethod
    def in_domain(eta):
        return np.ones(np.shape(eta)[:-1], dtype=bool)

    # ---- usual parameters -------------------------------------------------
    def _log_p(self):
        return _log_probs(self._natural)

    @property
    def p(self):
        """Probabilities of all K categories, shape (*batch, K)."""
        return np.exp(self._log_p())

    def _p_and_complement(self):
        """(p, 1 − p) for all K categories, the complement without cancellation near 1."""
        logp = self._log_p()
        return np.exp(logp), -np.expm1(logp)

    def mean(self):
        return self.p

    def var(self):
        p, not_p = self._p_and_complement()
        return p * not_p

    # ---- Fisher information --------------------------------------------------
    def fisher(self):
        p, not_p = self._p_and_complement()
        p, not_p = p[..., :-1], not_p[..., :-1]
        f = -p[..., :, None] * p[..., None, :]
        k = self.n_params
        f[..., np.arange(k), np.arange(k)] = p * not_p
        return f

    def fisher_vector_product(self, v):
        p = self.p[..., :-1]
        return p * v - p * np.sum(p * v, axis=-1, keepdims=True)

    def fisher_quadratic_form(self, v):
        # vᵀFv = Var_p[ṽ] for ṽ = (v, 0) over the K categories: a sum of squares
        p = self.p
        full = np.concatenate([v, np.zeros(v.shape[:-1] + (1,))], axis=-1)
        centred = full - np.sum(p * full, axis=-1, keepdims=True)
        return np.sum(p * centred**2, axis=-1)

    def fisher_solve(self, v):
        # (diag(p) − ppᵀ)⁻¹ = diag(1/p) + 11ᵀ/p_K (Sherman–Morrison). Where p underflows to
        # 0, a zero entry of v contributes 0 (not 0/0 = NaN), a nonzero one ±inf.
        p = self.p
        total = np.sum(v, axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.where(v == 0, 0.0, v / p[..., :-1])
                    + np.where(total == 0, 0.0, total / p[..., -1:]))

    # ---- densities and divergences -------------------------------------------
    def log_base_measure(self, z):
        return np.where(self._codes(z, strict=False)[1], 0.0, -np.inf)

    def expected_log_base_measure(self):
        return np.zeros(self.batch_shape)

    def log_prob(self, z):
        codes, valid = self._codes(z, strict=False)
        logp = self._log_p()
        shape = np.broadcast_shapes(codes.shape, self.batch_shape)
        logp = np.broadcast_to(logp, shape + logp.shape[-1:])
        codes = np.broadcast_to(codes, shape)
        out = np.take_along_axis(logp, codes[..., None], axis=-1)[..., 0]
        return np.where(valid, out, -np.inf)  # −inf off the codes, as scipy.stats does

    def entropy(self):
        # −Σ p log p with log p from η: non-negative terms, accurate for tiny p
        logp = self._log_p()
        return -np.sum(np.exp(logp) * logp, axis=-1)

    def kl(self, other):
        if type(other) is type(self) and other.n_params != self.n_params:
            raise ValueError(f"other: expected {self.n_params + 1} categories, "
                             f"got {other.n_params + 1}")
        self._check_other(other)
        logp = self._log_p()
        return np.sum(np.exp(logp) * (logp - other._log_p()), axis=-1)

    def sample(self, rng, n):
        self._check_sample_args(rng, n)
        # inverse CDF: the code is the number of the first K−1 cumulative sums ≤ u
        cdf = np.cumsum(self.p, axis=-1)[..., :-1]
        u = rng.random((n,) + self.batch_shape + (1,))
        return np.sum(u >= cdf, axis=-1).astype(np.int64)

    # ---- the unconstrained coordinates: u = η --------------------------------
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
