"""A d-dimensional Gaussian with a full covariance matrix: the full-rank Gaussian family.

Layout. Each batch element has k = d + d² natural parameters in the last axis: the d
entries of η₁ = Λm, then the d×d matrix η₂ = −½Λ raveled row-major (Λ = Σ⁻¹). Mean
parameters and T(z) share the layout: μ = (m, ravel(Σ + mmᵀ)), T(z) = (z, ravel(zzᵀ)).
Matrix parts pair with the Frobenius product ⟨G, S⟩ = Σ_ij G_ij S_ij, so η·T(z) =
η₁ᵀz + zᵀη₂z. They are symmetric: every matrix part this module returns is, and the
Fisher operations drop the antisymmetric part of their argument, on which T(z) and A(η)
do not depend.
"""

import functools
import math
from functools import cached_property

import autograd.numpy as anp
import numpy as np

from natvi.families.base import ExponentialFamily
from natvi.lazy_modules import linalg
from natvi.validation import check_finite_array

_LOG_2PI = np.log(2 * np.pi)
#: relative asymmetry max|S − Sᵀ| / max|S| accepted (then removed) in a matrix part
_SYM_RTOL = 1e-10


def _t(x):
    return np.swapaxes(x, -1, -2)


def _sym(x):
    return 0.5 * (x + _t(x))


def _outer(a, b):
    return a[..., :, None] * b[..., None, :]


def _mv(a, x):
    """Batched matrix–vector product a @ x, broadcasting leading axes."""
    return (a @ x[..., None])[..., 0]


def _diag(a):
    return np.diagonal(a, axis1=-2, axis2=-1)


def _nearly_symmetric(s):
    """Per matrix of a stack: is max|S − Sᵀ| within _SYM_RTOL of max|S|?"""
    with np.errstate(invalid="ignore"):
        asym = np.max(np.abs(s - _t(s)), axis=(-2, -1))
        return asym <= _SYM_RTOL * np.max(np.abs(s), axis=(-2, -1))


def _cholesky(a):
    """Lower Cholesky factors of a stack of symmetric matrices, and where they exist.

    Failed or non-finite factors are replaced by the identity, so that later solves
    stay defined; the mask says which ones are real.
    """
    eye = np.eye(a.shape[-1])
    try:
        chol = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:  # one bad matrix fails the whole stack: go one by one
        chol = np.empty(a.shape)
        for idx in np.ndindex(a.shape[:-2]):
            try:
                chol[idx] = np.linalg.cholesky(a[idx])
            except np.linalg.LinAlgError:
                chol[idx] = np.nan
    ok = np.all(np.isfinite(chol), axis=(-2, -1)) & np.all(_diag(chol) > 0, axis=-1)
    return np.where(ok[..., None, None], chol, eye), ok


def _scaled(x, matrix=False):
    """(x̂, e) with x = x̂·2^e exactly and the largest |x̂| of each vector (or matrix, with
    ``matrix``) of the stack in [½, 1); e has x's shape with the last axis (axes) kept as 1.

    The Fisher operations below work on such pairs: scaling by powers of two is exact, so
    they round as the plain formulas do, but a product of moments beyond the float range
    (m²Σ at extreme m and Σ) stays representable until the result is formed, where it
    becomes ±inf, instead of giving inf − inf = NaN in a sum along the way.
    """
    axes = (-2, -1) if matrix else (-1,)
    _, e = np.frexp(np.max(np.abs(x), axis=axes, keepdims=True))
    return np.ldexp(x, -e), e


def _scaled_sum(*terms, matrix=False):
    """Σ x·2^e over the pairs (x, e) of ``terms``, as a pair (see :func:`_scaled`)."""
    top = functools.reduce(np.maximum, [e for _, e in terms])
    x, e = _scaled(sum(np.ldexp(x, e - top) for x, e in terms), matrix)
    return x, e + top


def _solve_lower(chol, b, trans=0):
    """L⁻¹b (or L⁻ᵀb with ``trans=1``) by substitution, for stacks of lower-triangular L.

    Loops over the batch, since solve_triangular only broadcasts in recent SciPy.
    """
    shape = np.broadcast_shapes(chol.shape[:-2], b.shape[:-2])
    chol = np.broadcast_to(chol, shape + chol.shape[-2:])
    b = np.broadcast_to(b, shape + b.shape[-2:])
    out = np.empty(b.shape)
    for idx in np.ndindex(shape):
        out[idx] = linalg.solve_triangular(chol[idx], b[idx], trans=trans, lower=True,
                                           check_finite=False)
    return out


def _inverse_from_cholesky(chol):
    """(LLᵀ)⁻¹ = L⁻ᵀL⁻¹ from the Cholesky factor L, exactly symmetric."""
    inv = _solve_lower(chol, np.eye(chol.shape[-1]))
    return _sym(_t(inv) @ inv)


def _natural_from_moments(loc, chol_cov):
    """η = (Λm, ravel(−½Λ)) from m and the Cholesky factor of Σ."""
    prec = _inverse_from_cholesky(chol_cov)
    return _pack(_mv(prec, loc), -0.5 * prec)


def _pack(vec, mat):
    """concat(vec, ravel(mat)) over the last axes, broadcasting the batch."""
    shape = np.broadcast_shapes(vec.shape[:-1], mat.shape[:-2])
    d = vec.shape[-1]
    return np.concatenate([np.broadcast_to(vec, shape + (d,)),
                           np.broadcast_to(mat, shape + (d, d)).reshape(shape + (d * d,))], axis=-1)


def _size_of(d):
    return d + d * d


def _dim_of(k):
    """d with d + d² = k, or None."""
    if not isinstance(k, int | np.integer) or k < 2:
        return None
    d = (math.isqrt(1 + 4 * int(k)) - 1) // 2
    return d if _size_of(d) == k else None


def _unconstrained_dim_of(k):
    """d with d + d(d+1)/2 = k, or None."""
    if not isinstance(k, int | np.integer) or k < 2:
        return None
    d = (math.isqrt(9 + 8 * int(k)) - 3) // 2
    return d if d + d * (d + 1) // 2 == k else None


def _split(x, d):
    """(vector part (*batch, d), matrix part (*batch, d, d)) of a flat (*batch, d + d²)."""
    return x[..., :d], np.reshape(x[..., d:], x.shape[:-1] + (d, d))


def _factors_of_natural(eta):
    """Moments of natural parameters η (any values), and a mask of the valid ones.

    Valid: −η₂ nearly symmetric and positive definite, with Σ = (−2η₂)⁻¹, m and the
    Cholesky factor of Σ all finite. Invalid elements get placeholder values.
    """
    d = _dim_of(eta.shape[-1])
    e1, e2 = _split(eta, d)
    ok = np.all(np.isfinite(eta), axis=-1) & _nearly_symmetric(e2)
    eye = np.eye(d)
    prec = np.where(ok[..., None, None], -2 * _sym(e2), eye)
    e1 = np.where(ok[..., None], e1, 0.0)
    chol_prec, ok_prec = _cholesky(prec)
    with np.errstate(all="ignore"):
        inv = _solve_lower(chol_prec, np.broadcast_to(eye, chol_prec.shape))
        cov = _sym(_t(inv) @ inv)
        loc = _mv(_t(inv), _mv(inv, e1))
        ok = ok & ok_prec & np.all(np.isfinite(cov), axis=(-2, -1))
        ok = ok & np.all(np.isfinite(loc), axis=-1)
    cov = np.where(ok[..., None, None], cov, eye)
    loc = np.where(ok[..., None], loc, 0.0)
    scale_tril, ok_cov = _cholesky(cov)
    return {"loc": loc, "cov": cov, "prec": prec, "chol_prec": chol_prec,
            "scale_tril": scale_tril}, ok & ok_cov


def _symmetrized_natural(eta):
    """η with the matrix part made exactly symmetric where it nearly is (else untouched)."""
    d = _dim_of(eta.shape[-1])
    e1, e2 = _split(eta, d)
    near = _nearly_symmetric(e2)[..., None, None]
    return _pack(e1, np.where(near, _sym(e2), e2))


class FullRankGaussian(ExponentialFamily):
    """z ~ N(loc, cov) in ℝᵈ, one d-dimensional Gaussian per batch element.

    T(z) = (z, ravel(zzᵀ)), η = (Λm, ravel(−½Λ)), μ = (m, ravel(Σ + mmᵀ)), with
    m = loc, Σ = cov, Λ = Σ⁻¹; k = d + d² parameters per element, matrix parts raveled
    row-major and paired by the Frobenius product (see the module docstring).

    Parameters
    ----------
    loc : array_like, shape (*batch, d)
        Means.
    cov : array_like, shape (*batch, d, d)
        Covariance matrices: symmetric (to relative 1e-10; then symmetrized exactly) and
        positive definite. Batch shapes of ``loc`` and ``cov`` broadcast.

    Notes
    -----
    The Fisher information F(η) = Cov[T(z)] is a (d + d²)-square matrix that vanishes on
    antisymmetric matrix parts, so for d ≥ 2 it is singular on ℝᵏ and invertible on the
    symmetric subspace. :meth:`fisher_vector_product`, :meth:`fisher_solve` and
    :meth:`fisher_quadratic_form` expect symmetric matrix parts (they drop the
    antisymmetric part) and cost O(d³); :meth:`fisher_solve` is then the inverse of F on
    that subspace (its pseudo-inverse). Σ, Λ, m and log-determinants come from Cholesky
    factors, stay finite and round-trip for condition numbers up to about 1e10.
    """

    n_params = None
    support = "real"
    joint = True
    _size_text = "d + d²"
    _domain_text = ("−η₂ (the matrix part, −½·precision) must be symmetric positive definite, "
                    "with a finite covariance")

    @classmethod
    def standard(cls, shape, categories=None):
        """N(0, I) over the ``shape`` = (d,) values it covers (``categories`` unused)."""
        (d,) = shape
        return cls(loc=np.zeros(d), cov=np.eye(d))

    def __init__(self, loc, cov):
        loc = check_finite_array(loc, "loc")
        cov = check_finite_array(cov, "cov")
        if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2] or cov.shape[-1] < 1:
            raise ValueError(f"cov: expected an array of shape (*batch, d, d) with d >= 1, "
                             f"got shape {cov.shape}")
        d = cov.shape[-1]
        if loc.ndim < 1 or loc.shape[-1] != d:
            raise ValueError(f"loc: expected an array of shape (*batch, {d}) to match cov of "
                             f"shape {cov.shape}, got shape {loc.shape}")
        try:
            np.broadcast_shapes(loc.shape[:-1], cov.shape[:-2])
        except ValueError:
            raise ValueError(f"loc: batch shape {loc.shape[:-1]} does not broadcast against "
                             f"the batch shape {cov.shape[:-2]} of cov") from None
        if not np.all(_nearly_symmetric(cov)):
            raise ValueError("cov: expected symmetric matrices (to relative 1e-10)")
        chol, ok = _cholesky(_sym(cov))
        if not np.all(ok):
            raise ValueError("cov: expected positive definite matrices (Cholesky failed)")
        with np.errstate(all="ignore"):
            eta = _natural_from_moments(loc, chol)
        if not (np.all(np.isfinite(eta)) and np.all(self.in_domain(eta))):
            raise ValueError("cov: too ill-conditioned: its inverse (times loc) is not a "
                             "finite float")
        super().__init__(eta)

    @classmethod
    def from_natural(cls, natural):
        """Family with natural parameters ``natural`` of shape ``(*batch, d + d²)``.

        A matrix part symmetric to relative 1e-10 is symmetrized exactly.
        """
        eta = cls._check_last_axis(natural, "natural")
        with np.errstate(invalid="ignore"):
            eta = _symmetrized_natural(eta)
        return super().from_natural(eta)

    # ---- sizes -------------------------------------------------------------
    @staticmethod
    def _valid_size(k):
        return _dim_of(k) is not None

    @staticmethod
    def dim_from_size(k):
        """The dimension d of a Gaussian with k = d + d² natural parameters."""
        d = _dim_of(k)
        if d is None:
            raise ValueError(f"k: expected d + d² for an integer d >= 1, got {k!r}")
        return d

    @property
    def dim(self):
        """The dimension d of z."""
        return _dim_of(self._natural.shape[-1])

    @property
    def event_shape(self):
        """Shape of one draw, ``(d,)``."""
        return (self.dim,)

    # ---- closed forms ------------------------------------------------------
    @staticmethod
    def log_partition_fn(eta):
        """A(η) = −¼η₁ᵀη₂⁻¹η₁ − ½ log det(−2η₂) = ½‖L⁻¹η₁‖² − Σᵢ log Lᵢᵢ, Λ = LLᵀ.

        ``eta`` is η = (η₁, ravel(η₂)), shape ``(*batch, d + d²)``. Written with
        ``autograd.numpy`` on the symmetric part of η₂, so that its gradient is the
        symmetric μ.
        """
        d = _dim_of(eta.shape[-1])
        e1 = eta[..., :d]
        e2 = anp.reshape(eta[..., d:], eta.shape[:-1] + (d, d))
        chol = anp.linalg.cholesky(-(e2 + anp.swapaxes(e2, -1, -2)))
        w = anp.linalg.solve(chol, e1[..., None])[..., 0]
        # axes (-1, -2): the only order autograd differentiates anp.diagonal in
        log_diag = anp.log(anp.diagonal(chol, axis1=-1, axis2=-2))
        return 0.5 * anp.sum(w**2, axis=-1) - anp.sum(log_diag, axis=-1)

    @staticmethod
    def mean_from_natural(eta):
        """μ = (m, ravel(Σ + mmᵀ)) of ``eta``, shape ``(*batch, d + d²)``; written with
        ``autograd.numpy``."""
        d = _dim_of(eta.shape[-1])
        batch = eta.shape[:-1]
        e1 = eta[..., :d]
        e2 = anp.reshape(eta[..., d:], batch + (d, d))
        inv = anp.linalg.inv(anp.linalg.cholesky(-(e2 + anp.swapaxes(e2, -1, -2))))
        inv_t = anp.swapaxes(inv, -1, -2)
        cov = anp.matmul(inv_t, inv)
        cov = 0.5 * (cov + anp.swapaxes(cov, -1, -2))
        m = anp.matmul(inv_t, anp.matmul(inv, e1[..., None]))[..., 0]
        second = cov + m[..., :, None] * m[..., None, :]
        return anp.concatenate([m, anp.reshape(second, batch + (d * d,))], axis=-1)

    @staticmethod
    def natural_from_mean(mu):
        mu = np.asarray(mu, dtype=float)
        d = _dim_of(mu.shape[-1]) if mu.ndim >= 1 else None
        if d is None:
            raise ValueError(f"mean_params: expected an array of shape (*batch, d + d²), "
                             f"got shape {mu.shape}")
        if not np.all(np.isfinite(mu)):
            raise ValueError("mean_params: expected finite values, got NaN or inf")
        m, second = _split(mu, d)
        if not np.all(_nearly_symmetric(second)):
            raise ValueError("mean_params: expected a symmetric matrix part μ₂ (to relative "
                             "1e-10)")
        chol, ok = _cholesky(_sym(second) - _outer(m, m))
        if not np.all(ok):
            raise ValueError("mean_params: expected μ₂ − μ₁μ₁ᵀ positive definite (a covariance)")
        with np.errstate(all="ignore"):
            eta = _natural_from_moments(m, chol)
        if not np.all(np.isfinite(eta)):
            raise ValueError("mean_params: covariance μ₂ − μ₁μ₁ᵀ too ill-conditioned to invert")
        return eta

    @staticmethod
    def sufficient_statistics(z):
        z = np.asarray(z, dtype=float)
        return _pack(z, _outer(z, z))

    @staticmethod
    def in_domain(eta):
        eta = np.asarray(eta, dtype=float)
        return _factors_of_natural(eta)[1]

    # ---- usual parameters ------------------------------------------------------
    def _accept(self, eta):
        # The domain check is the O(d³) Cholesky work the instance needs: keep its result
        # (the cached _factors), so that it is done once per instance, not twice.
        factors, ok = _factors_of_natural(eta)
        for value in factors.values():
            value.flags.writeable = False
        self.__dict__["_factors"] = factors
        return ok

    @cached_property
    def _factors(self):
        # O(d³) Cholesky work once per (immutable) instance; everything below reads it.
        factors, _ = _factors_of_natural(self._natural)
        for value in factors.values():
            value.flags.writeable = False
        return factors

    @property
    def loc(self):
        """Mean m, shape ``(*batch, d)``."""
        return self._factors["loc"]

    @property
    def cov(self):
        """Covariance Σ, shape ``(*batch, d, d)``."""
        return self._factors["cov"]

    @property
    def precision(self):
        """Precision Λ = Σ⁻¹ = −2η₂, shape ``(*batch, d, d)``."""
        return self._factors["prec"]

    @property
    def scale_tril(self):
        """Lower Cholesky factor L of Σ = LLᵀ, shape ``(*batch, d, d)``."""
        return self._factors["scale_tril"]

    @property
    def mean_params(self):
        """Mean parameters μ = (m, ravel(Σ + mmᵀ)), shape ``(*batch, d + d²)``."""
        return _pack(self.loc, self.cov + _outer(self.loc, self.loc))

    def mean(self):
        return self.loc

    def var(self):
        """Marginal variances, the diagonal of Σ, shape ``(*batch, d)``."""
        return _diag(self.cov).copy()

    def _log_det_cov(self):
        return -2 * np.sum(np.log(_diag(self._factors["chol_prec"])), axis=-1)

    # ---- Fisher information ----------------------------------------------------
    def _direction(self, v, name="v"):
        """(a, sym(B)) of a flat direction ``v`` of shape (..., d + d²)."""
        v = np.asarray(v, dtype=float)
        k = self._natural.shape[-1]
        if v.ndim < 1 or v.shape[-1] != k:
            raise ValueError(f"{name}: expected an array of shape (*batch, {k}), "
                             f"got shape {v.shape}")
        a, b = _split(v, self.dim)
        return a, _sym(b)

    def fisher_vector_product(self, v):
        """F v = (dμ/dη) v in O(d³), for ``v`` of shape ``(*batch, d + d²)``.

        With v = (a, B), B symmetric (its antisymmetric part is dropped):
        dΣ = 2ΣBΣ, dm = Σ(a + 2Bm), dμ₂ = dΣ + dm mᵀ + m dmᵀ.
        """
        a, b = self._direction(v)
        # The same arithmetic on power-of-two-scaled pairs (x̂, e), see _scaled: extreme
        # m and Σ give ±inf entries where F v is beyond the float range, never NaN.
        (a, ea), (b, eb) = _scaled(a), _scaled(b, matrix=True)
        (m, em), (cov, ec) = _scaled(self.loc), _scaled(self.cov, matrix=True)
        w, ew = _scaled_sum((a, ea), (2 * _mv(b, m), eb[..., 0] + em))  # a + 2Bm
        d_loc, el = _scaled(_mv(cov, w))
        el = el + ec[..., 0] + ew
        e_out = (el + em)[..., None]
        d_mat, e_mat = _scaled_sum((_sym(2 * cov @ b @ cov), 2 * ec + eb),
                                   (_outer(d_loc, m), e_out), (_outer(m, d_loc), e_out),
                                   matrix=True)
        return _pack(np.ldexp(d_loc, el), _sym(np.ldexp(d_mat, e_mat)))

    def fisher_solve(self, v):
        """F⁻¹ v = (dη/dμ) v in O(d³), for ``v`` of shape ``(*batch, d + d²)``.

        With v = (a, B), B symmetric (its antisymmetric part is dropped):
        dΣ = B − amᵀ − maᵀ, dη₂ = ½Λ dΣ Λ, dη₁ = Λa − 2 dη₂ m.
        """
        a, b = self._direction(v)
        # On power-of-two-scaled pairs, as in fisher_vector_product (no NaN at the edges).
        (a, ea), (b, eb) = _scaled(a), _scaled(b, matrix=True)
        (m, em), (prec, ep) = _scaled(self.loc), _scaled(self.precision, matrix=True)
        e_am = (ea + em)[..., None]
        d_cov, ed = _scaled_sum((b, eb), (-_outer(a, m), e_am), (-_outer(m, a), e_am),
                                matrix=True)
        d_e2, e2 = _scaled(_sym(0.5 * prec @ d_cov @ prec), matrix=True)
        e2 = e2 + 2 * ep + ed
        d_e1, e1 = _scaled_sum((_mv(prec, a), ep[..., 0] + ea),
                               (-2 * _mv(d_e2, m), e2[..., 0] + em))
        return _pack(np.ldexp(d_e1, e1), np.ldexp(d_e2, e2))

    def fisher_quadratic_form(self, v):
        """⟨v, F v⟩ = Var[aᵀz + zᵀBz] = ‖Lᵀ(a + 2Bm)‖² + 2‖LᵀBL‖²_F, a sum of squares.

        ``v`` = (a, B) of shape ``(*batch, d + d²)``, B symmetrized; Σ = LLᵀ.
        """
        a, b = self._direction(v)
        # On power-of-two-scaled pairs, as in fisher_vector_product: +inf beyond the float
        # range, never NaN.
        (a, ea), (b, eb) = _scaled(a), _scaled(b, matrix=True)
        (m, em), (chol, ec) = _scaled(self.loc), _scaled(self.scale_tril, matrix=True)
        w, ew = _scaled_sum((a, ea), (2 * _mv(b, m), eb[..., 0] + em))  # a + 2Bm
        lin = _mv(_t(chol), w)
        quad = _t(chol) @ b @ chol
        return (np.ldexp(np.sum(lin**2, axis=-1), 2 * (ec[..., 0] + ew)[..., 0])
                + np.ldexp(2 * np.sum(quad**2, axis=(-2, -1)), 2 * (2 * ec + eb)[..., 0, 0]))

    def fisher(self):
        """Dense F(η) = ∇²A(η) = Cov[T(z)], shape ``(*batch, k, k)``, k = d + d².

        Built column by column from :meth:`fisher_vector_product` on the (symmetrized)
        unit directions: O(d⁴) memory and O(d⁵) time, for small d and tests only (the
        optimizers use :meth:`fisher_solve`). Singular for d ≥ 2 (see the class notes).
        """
        k = self._natural.shape[-1]
        units = np.eye(k).reshape((k,) + (1,) * len(self.batch_shape) + (k,))
        columns = self.fisher_vector_product(units)  # (k, *batch, k): column j first
        f = np.moveaxis(columns, 0, -1)
        return 0.5 * (f + _t(f))

    # ---- natural-gradient steps ------------------------------------------------
    @staticmethod
    def natural_step(eta, grad, rho):
        """Natural parameters after a step of size ``rho`` along ``grad`` = ∇_μ L from
        ``eta`` (both ``(*batch, d + d²)``) that keeps the precision positive definite: the
        Bayesian learning rule's step of Lin, Schmidt & Khan (ICML 2020).

        With precision S = −2η₂ = LLᵀ, mean m, precision part G = −2 sym(∇_μ₂L) of the step
        (the plain step is S + ρG) and ∇_m L = ∇_μ₁L − Gm:
        S′ = S + ρG + ½ρ²GS⁻¹G = ½(S + VᵀV) with V = L⁻¹(S + ρG), positive definite for
        every ρ, and m′ = m + ρS′⁻¹∇_m L, so η′ = (S′m + ρ∇_m L, −½S′). To first order in ρ
        this is the plain η + ρ∇_μ L (which is η′ with S′ = S + ρG). Where S has no
        Cholesky factor (η outside the domain) the plain step is returned.
        """
        d = _dim_of(eta.shape[-1])
        e1, e2 = _split(np.asarray(eta, dtype=float), d)
        g1, g2 = _split(np.asarray(grad, dtype=float), d)
        prec = -2 * _sym(e2)
        chol, ok = _cholesky(prec)
        loc = _solve_lower(chol, _solve_lower(chol, e1[..., None]), trans=1)[..., 0]
        g = -2 * _sym(g2)
        v = _solve_lower(chol, prec + rho * g)
        new = _sym(0.5 * (prec + _t(v) @ v))
        stepped = _pack(_mv(new, loc) + rho * (g1 - _mv(g, loc)), -0.5 * new)
        return np.where(ok[..., None], stepped, eta + rho * grad)

    # ---- densities and divergences -------------------------------------------
    def log_base_measure(self, z):
        z = np.asarray(z, dtype=float)
        return np.full(z.shape[:-1], -0.5 * self.dim * _LOG_2PI)

    def expected_log_base_measure(self):
        return np.full(self.batch_shape, -0.5 * self.dim * _LOG_2PI)

    def log_prob(self, z):
        """log q(z) for ``z`` of shape ``(..., *batch, d)``.

        Uses the Cholesky factor L_Λ of the precision: (z−m)ᵀΛ(z−m) = ‖L_Λᵀ(z−m)‖², with
        no cancellation between η·T(z) and A(η).
        """
        z = np.asarray(z, dtype=float)
        if z.ndim < 1 or z.shape[-1] != self.dim:
            raise ValueError(f"z: expected an array of shape (..., *batch, {self.dim}), "
                             f"got shape {z.shape}")
        y = _mv(_t(self._factors["chol_prec"]), z - self.loc)
        return -0.5 * (self.dim * _LOG_2PI + self._log_det_cov() + np.sum(y**2, axis=-1))

    def entropy(self):
        """½ log det(2πeΣ), from the Cholesky factor of Λ."""
        return 0.5 * (self.dim * (_LOG_2PI + 1) + self._log_det_cov())

    def kl(self, other):
        """KL(self ‖ other) = ½[tr(Λ₁Σ₀) + δᵀΛ₁δ − d + log det Σ₁ − log det Σ₀].

        tr(Λ₁Σ₀) = ‖L₀⁻¹L₁‖²_F and δᵀΛ₁δ = ‖L₁ᵀδ‖² with Λᵢ = LᵢLᵢᵀ.
        """
        if type(other) is type(self) and other.dim != self.dim:
            raise ValueError(f"other: expected dimension {self.dim}, got {other.dim}")
        self._check_other(other)
        chol0, chol1 = self._factors["chol_prec"], other._factors["chol_prec"]
        trace = np.sum(_solve_lower(chol0, chol1) ** 2, axis=(-2, -1))
        maha = np.sum(_mv(_t(chol1), other.loc - self.loc) ** 2, axis=-1)
        log_det_ratio = 2 * np.sum(np.log(_diag(chol0)) - np.log(_diag(chol1)), axis=-1)
        return 0.5 * (trace + maha - self.dim + log_det_ratio)

    def sample(self, rng, n):
        """``n`` draws m + Lε with ε from ``rng`` (a numpy.random.Generator), shape
        ``(n, *batch, d)``."""
        self._check_sample_args(rng, n)
        eps = rng.standard_normal((n,) + self.batch_shape + (self.dim,))
        return self.loc + _mv(self.scale_tril, eps)

    # ---- the Gaussian's interface to engines: linear maps, second moments, noise ------
    def linear_moments(self, D):
        """Mean and variance of D z for ``D`` of shape (n, d): (D m, diag(D Σ Dᵀ)), each (n,)."""
        return D @ self.loc, np.einsum("ij,ij->i", D @ self.cov, D)

    def linear_moments_grad(self, D, grad_mean, grad_var):
        """∇_m (d,) and ∇_Σ (d, d) of Σᵢ aᵢ E[(Dz)ᵢ] + bᵢ Var[(Dz)ᵢ] for ``grad_mean`` a and
        ``grad_var`` b (each (n,)): Dᵀa and Dᵀ diag(b) D, for :meth:`grad_mean_from_moments`."""
        return D.T @ grad_mean, D.T @ (grad_var[:, None] * D)

    def second_moment_grad(self, c):
        """∇_μ of Σ cⱼ E[zⱼ²] for ``c`` of shape (d,): c on the diagonal of the μ₂ block."""
        c = np.broadcast_to(np.asarray(c, dtype=float), (self.dim,))
        return _pack(np.zeros(self.dim), np.diag(c))

    @staticmethod
    def second_moments_from_mean(mu):
        """E[zⱼ²] from mean parameters ``mu`` = (m, ravel(E[zzᵀ])), shape (d,) (autograd-safe)."""
        d = _dim_of(mu.shape[-1])
        return anp.diagonal(anp.reshape(mu[..., d:], mu.shape[:-1] + (d, d)), axis1=-1,
                            axis2=-2)

    @staticmethod
    def loc_from_mean(mu):
        """The mean m, (d,), from mean parameters ``mu`` = (m, ravel(E[zzᵀ])) (autograd-safe)."""
        return mu[..., :_dim_of(mu.shape[-1])]

    @staticmethod
    def trace_cov_from_mean(mu, G):
        """tr(G Σ) = ⟨G, E[zzᵀ] − mmᵀ⟩ from mean parameters ``mu`` and a (d, d) matrix ``G``
        (autograd-safe)."""
        d = _dim_of(mu.shape[-1])
        m, second = mu[:d], anp.reshape(mu[d:], (d, d))
        return anp.sum(G * second) - anp.dot(m, anp.dot(G, m))

    #: draws are m + Lε of standard normal ε: pathwise gradients apply
    reparameterizable = True

    def standard_noise(self, rng, n):
        """ε ~ N(0, I) for ``n`` draws from ``rng``, shape (n, *batch, d)."""
        return rng.standard_normal((n,) + self.batch_shape + (self.dim,))

    def from_noise(self, eps):
        """x = m + Lε for noise ``eps`` (Σ = LLᵀ)."""
        return self.loc + np.einsum("...ij,s...j->s...i", self.scale_tril, eps)

    @staticmethod
    def to_support(x):
        """z from the Gaussian value x (the identity), written with autograd.numpy."""
        return x

    def location_scale(self):
        """(mean, standard deviation) of each coordinate, shape ``(*batch, d)`` each."""
        return self.loc, np.sqrt(np.einsum("...ii->...i", self.cov))

    def pathwise_grad(self, grad_x, eps):
        """∇_μ of the sample average (1/S) Σₛ f(m + Lεₛ) from f's gradients ``grad_x`` =
        ∇ₓf at the draws of ``eps`` (both (S, *batch, d)), exactly: with A = (1/S) Σₛ ∇ₓf εₛᵀ
        (the gradient in L), ∇_m = (1/S) Σₛ ∇ₓf and ∇_Σ = L⁻ᵀ Φ*(LᵀA) L⁻¹, the adjoint of
        the Cholesky factor's derivative dL = L Φ(L⁻¹ dΣ L⁻ᵀ) (Φ keeps the lower triangle,
        halving the diagonal). Its expectation is Stein's ½ E[∇²f]; unlike Stein's form
        ½ A L⁻¹, it is the gradient of the average itself, so a fit on fixed draws finds a
        stationary point of the function it evaluates."""
        a = np.einsum("s...i,s...j->...ij", grad_x, eps) / len(eps)
        b = np.tril(_t(self.scale_tril) @ a)
        c = 0.5 * (b + _t(b)) - 0.5 * np.einsum("...ii->...i", b)[..., None] * np.eye(self.dim)
        inv_l = np.linalg.inv(self.scale_tril)
        return self.grad_mean_from_moments(grad_x.mean(axis=0), _t(inv_l) @ c @ inv_l)

    # ---- moments and the unconstrained coordinates ---------------------------
    def grad_mean_from_moments(self, grad_loc, grad_cov):
        """∇_μ L from ∇_m L and ∇_Σ L (the chain rule through m = μ₁, Σ = μ₂ − μ₁μ₁ᵀ).

        ``grad_loc`` is ∇_m L, shape ``(*batch, d)``; ``grad_cov`` is ∇_Σ L, shape
        ``(*batch, d, d)``. With G = sym(∇_Σ L): ∇_μ₁ = ∇_m L − 2Gm, ∇_μ₂ = G; returns
        ``(*batch, d + d²)``.
        """
        grad_loc = np.asarray(grad_loc, dtype=float)
        g = _sym(np.asarray(grad_cov, dtype=float))
        return _pack(grad_loc - 2 * _mv(g, self.loc), g)

    @property
    def unconstrained(self):
        """(m, the lower triangle of L row by row with log Lᵢᵢ on the diagonal), as ADVI.

        Shape ``(*batch, d + d(d+1)/2)``, Σ = LLᵀ.
        """
        rows, cols = np.tril_indices(self.dim)
        tri = self.scale_tril[..., rows, cols]
        on_diag = rows == cols
        tri[..., on_diag] = np.log(tri[..., on_diag])
        return np.concatenate([self.loc, tri], axis=-1)

    @classmethod
    def from_unconstrained(cls, u):
        """Family at unconstrained coordinates ``u``, shape ``(*batch, d + d(d+1)/2)``
        (inverse of :attr:`unconstrained`)."""
        u = np.asarray(u, dtype=float)
        d = _unconstrained_dim_of(u.shape[-1]) if u.ndim >= 1 else None
        if d is None:
            raise ValueError(f"u: expected an array of shape (*batch, d + d(d+1)/2), "
                             f"got shape {u.shape}")
        if not np.all(np.isfinite(u)):
            raise ValueError("u: expected finite values, got NaN or inf")
        rows, cols = np.tril_indices(d)
        tri = u[..., d:].copy()
        on_diag = rows == cols
        with np.errstate(over="ignore", under="ignore"):
            tri[..., on_diag] = np.exp(tri[..., on_diag])
        chol = np.zeros(u.shape[:-1] + (d, d))
        chol[..., rows, cols] = tri
        ok = np.all(np.isfinite(chol), axis=(-2, -1)) & np.all(_diag(chol) > 0, axis=-1)
        eta = None
        if np.all(ok):
            with np.errstate(all="ignore"):
                eta = _natural_from_moments(u[..., :d], chol)
        if eta is None or not (np.all(np.isfinite(eta)) and np.all(cls.in_domain(eta))):
            raise ValueError("u: the log-diagonal of the scale factor gives a covariance or "
                             "precision that is not a finite float")
        return cls.from_natural(eta)

    def unconstrained_grad(self, grad_mean):
        """Chain rule: ∇_u L from ``grad_mean`` = ∇_μ L = (g₁, G₂) (G₂ symmetrized).

        ∇_m = g₁ + 2G₂m, ∇_L = 2G₂L on the lower triangle, times Lᵢᵢ on the diagonal.
        """
        g1, g2 = self._direction(grad_mean, "grad_mean")
        chol = self.scale_tril
        grad_chol = 2 * g2 @ chol
        rows, cols = np.tril_indices(self.dim)
        tri = grad_chol[..., rows, cols]
        on_diag = rows == cols
        tri[..., on_diag] *= chol[..., rows[on_diag], cols[on_diag]]
        return np.concatenate([g1 + 2 * _mv(g2, self.loc), tri], axis=-1)
