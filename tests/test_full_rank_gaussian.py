"""FullRankGaussian: every identity of the exponential-family theory, checked on
random valid parameters, and the closed forms against scipy.stats.multivariate_normal.

q(z | η) = N(z; m, Σ) per batch element in ℝᵈ, T(z) = (z, ravel(zzᵀ)),
η = (Λm, ravel(−½Λ)) with Λ = Σ⁻¹, μ = (m, ravel(Σ + mmᵀ)),
A(η) = −¼η₁ᵀη₂⁻¹η₁ − ½ log det(−2η₂). Matrix parts are symmetric; F vanishes on
antisymmetric ones, so dense comparisons use the symmetrizing projector P.
"""

from fractions import Fraction

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from natvi.families.base import ExponentialFamily
from natvi.families.full_rank_gaussian import FullRankGaussian
from natvi.families.mean_field_gaussian import MeanFieldGaussian

DIMS = [1, 2, 4]
BATCH_SHAPES = [(), (3,)]
SEEDS = [0, 1]
CASES = [(seed, d, shape) for seed in SEEDS for d in DIMS for shape in BATCH_SHAPES]
CASE_IDS = [f"seed{seed}-d{d}-batch{shape}" for seed, d, shape in CASES]
LOG_2PI = np.log(2 * np.pi)


# ---- helpers written here independently of the library --------------------------------


def random_params(seed, d, batch_shape):
    """Random loc and a moderately conditioned covariance."""
    rng = np.random.default_rng(seed + 10 * d)
    loc = rng.normal(0.0, 1.5, size=batch_shape + (d,))
    a = rng.normal(size=batch_shape + (d, d))
    cov = a @ np.swapaxes(a, -1, -2) / d + np.eye(d) * rng.uniform(0.3, 1.5, size=batch_shape
                                                                   + (1, 1))
    return loc, cov


def random_q(seed, d, batch_shape):
    loc, cov = random_params(seed, d, batch_shape)
    return FullRankGaussian(loc=loc, cov=cov)


def pack(vec, mat):
    return np.concatenate([vec, mat.reshape(mat.shape[:-2] + (-1,))], axis=-1)


def split(x, d):
    return x[..., :d], x[..., d:].reshape(x.shape[:-1] + (d, d))


def sym(x):
    return 0.5 * (x + np.swapaxes(x, -1, -2))


def sym_matrix_part(v, d):
    a, b = split(v, d)
    return pack(a, sym(b))


def random_direction(seed, d, batch_shape, symmetric=True):
    """A random vector shaped like the natural parameters, (*batch, d + d²)."""
    rng = np.random.default_rng(1000 + seed)
    v = rng.normal(size=batch_shape + (d + d * d,))
    return sym_matrix_part(v, d) if symmetric else v


def projector(d):
    """P: the orthogonal projection of ℝ^(d+d²) onto symmetric matrix parts."""
    k = d + d * d
    p = np.zeros((k, k))
    p[:d, :d] = np.eye(d)
    for i in range(d):
        for j in range(d):
            p[d + i * d + j, d + i * d + j] += 0.5
            p[d + i * d + j, d + j * d + i] += 0.5
    return p


def fisher_table(m, s):
    """Cov[T(z)] by Isserlis' theorem; works on floats and on Fractions."""
    d = len(m)
    index = [(i,) for i in range(d)] + [(i, j) for i in range(d) for j in range(d)]

    def cov(p, q):
        if len(p) == 1 and len(q) == 1:
            return s[p[0]][q[0]]
        if len(p) == 2 and len(q) == 1:
            p, q = q, p
        if len(p) == 1:
            (i,), (a, b) = p, q
            return s[i][a] * m[b] + s[i][b] * m[a]
        (i, j), (a, b) = p, q
        return (s[i][a] * s[j][b] + s[i][b] * s[j][a] + m[i] * m[a] * s[j][b]
                + m[i] * m[b] * s[j][a] + m[j] * m[a] * s[i][b] + m[j] * m[b] * s[i][a])

    return [[cov(p, q) for q in index] for p in index]


def naive_log_partition(eta):
    """A(η) for one element, straight from its definition (no symmetrization)."""
    d = FullRankGaussian.dim_from_size(eta.shape[-1])
    e1, e2 = eta[:d], anp.reshape(eta[d:], (d, d))
    return -0.25 * anp.dot(e1, anp.linalg.solve(e2, e1)) - 0.5 * anp.linalg.slogdet(-2 * e2)[1]


def moments_from_natural(eta, d):
    e1, e2 = eta[..., :d], anp.reshape(eta[..., d:], eta.shape[:-1] + (d, d))
    s = anp.linalg.inv(-2 * e2)
    return anp.einsum("...ij,...j->...i", s, e1), s


def moments_from_mean(mu, d):
    m, m2 = mu[..., :d], anp.reshape(mu[..., d:], mu.shape[:-1] + (d, d))
    return m, m2 - m[..., :, None] * m[..., None, :]


def mean_from_moments(m, s):
    second = s + m[..., :, None] * m[..., None, :]
    return anp.concatenate([m, anp.reshape(second, m.shape[:-1] + (-1,))], axis=-1)


def moments_from_unconstrained(u, d):
    """m and Σ = LLᵀ from (m, rows of tril(L) with log-diagonal)."""
    rows, cols = np.tril_indices(d)
    basis = np.zeros((len(rows), d, d))
    basis[np.arange(len(rows)), rows, cols] = 1.0
    t = u[..., d:]
    vals = anp.where(rows == cols, anp.exp(t), t)
    chol = anp.einsum("...p,pij->...ij", vals, basis)
    return u[..., :d], anp.matmul(chol, anp.swapaxes(chol, -1, -2))


def weight_matrices(d):
    rng = np.random.default_rng(77 + d)
    return rng.normal(size=(d, d)), rng.normal(size=d)  # W not symmetric


def objective_of_mean(mu, d):
    """A smooth, nonlinear L(μ) that couples the batch elements and uses μ₂ unsymmetrically."""
    w_mat, w = weight_matrices(d)
    m1, m2 = mu[..., :d], anp.reshape(mu[..., d:], mu.shape[:-1] + (d, d))
    return (anp.sum(anp.sin(m1) * anp.einsum("...ij,j->...i", m2, w))
            + anp.sum(anp.log1p(m2**2)) + 0.3 * anp.sum(m1**3) + 0.1 * anp.sum(w_mat * m2)
            + 0.1 * anp.sum(m1) ** 2)


def objective_of_moments(m, s):
    """A smooth, nonlinear function of the distribution through its mean and covariance."""
    d = m.shape[-1]
    w_mat, w = weight_matrices(d)
    return (anp.sum(anp.sin(m) * anp.einsum("...ij,j->...i", s, w)) + anp.sum(anp.log1p(s**2))
            + 0.2 * anp.sum(m**2 * anp.diagonal(s, axis1=-1, axis2=-2)) + 0.1 * anp.sum(w_mat * s)
            + 0.1 * anp.sum(m) ** 2)


def kl_closed_form(m0, s0, m1, s1):
    d = len(m0)
    inv1 = np.linalg.inv(s1)
    diff = m1 - m0
    return 0.5 * (np.trace(inv1 @ s0) + diff @ inv1 @ diff - d
                  + np.linalg.slogdet(s1)[1] - np.linalg.slogdet(s0)[1])


# ---- the identities of the one idea ------------------------------------------------


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_is_gradient_of_log_partition(seed, d, batch_shape):
    loc, cov = random_params(seed, d, batch_shape)
    q = FullRankGaussian(loc=loc, cov=cov)
    assert q.mean_params.shape == batch_shape + (d + d * d,)
    assert_allclose(q.mean_params, pack(loc, cov + loc[..., :, None] * loc[..., None, :]),
                    rtol=1e-11, atol=1e-12)
    grad_a = autograd.grad(lambda eta: anp.sum(FullRankGaussian.log_partition_fn(eta)))
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-11, atol=1e-12)
    assert_allclose(FullRankGaussian.mean_from_natural(q.natural), q.mean_params,
                    rtol=1e-11, atol=1e-12)
    for idx in np.ndindex(batch_shape):
        assert_allclose(autograd.grad(naive_log_partition)(q.natural[idx]), q.mean_params[idx],
                        rtol=1e-10, atol=1e-11)
        assert_allclose(FullRankGaussian.log_partition_fn(q.natural[idx]),
                        naive_log_partition(q.natural[idx]), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_hessian_of_log_partition(seed, d, batch_shape):
    q = random_q(seed, d, batch_shape)
    k = d + d * d
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (k, k)
    assert_allclose(fisher, np.swapaxes(fisher, -1, -2), rtol=0, atol=0)
    p = projector(d)
    v = random_direction(seed, d, batch_shape)
    for idx in np.ndindex(batch_shape):
        hess = autograd.hessian(FullRankGaussian.log_partition_fn)(q.natural[idx])
        naive = autograd.hessian(naive_log_partition)(q.natural[idx])
        scale = np.max(np.abs(hess))
        assert_allclose(fisher[idx], hess, rtol=1e-10, atol=1e-12 * scale)
        # the definition's A is not symmetrized: compare on the symmetric subspace
        assert_allclose(fisher[idx], p @ naive @ p, rtol=1e-9, atol=1e-11 * scale)
        assert_allclose(q.fisher_vector_product(v)[idx], naive @ v[idx], rtol=1e-9,
                        atol=1e-11 * scale)
        # and Isserlis' closed form of Cov[T(z)]
        assert_allclose(fisher[idx], fisher_table(q.loc[idx], q.cov[idx]), rtol=1e-10,
                        atol=1e-12 * scale)
    # F vanishes on antisymmetric matrix parts: rank d + d(d+1)/2
    for idx in np.ndindex(batch_shape):
        assert np.linalg.matrix_rank(fisher[idx]) == d + d * (d + 1) // 2


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, d, batch_shape):
    q = random_q(seed, d, batch_shape)
    n = 40_000
    t = FullRankGaussian.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
    assert t.shape == (n,) + batch_shape + (d + d * d,)
    # E[T] = μ, within 5 standard errors
    t_mean = t.mean(axis=0)
    assert np.all(np.abs(t_mean - q.mean_params) < 5 * t.std(axis=0) / np.sqrt(n))
    # Cov[⟨uᵢ, T⟩, ⟨uⱼ, T⟩] = ⟨uᵢ, F uⱼ⟩ on symmetric directions; each entry is the mean of
    # the products of centered projections, with standard error std/√n.
    dirs = np.stack([random_direction(seed + 10 * r, d, batch_shape) for r in range(4)])
    proj = np.einsum("n...k,r...k->n...r", t, dirs)
    c = proj - proj.mean(axis=0)
    prods = c[..., :, None] * c[..., None, :]
    cov = prods.mean(axis=0)
    se = prods.std(axis=0) / np.sqrt(n)
    f_dirs = q.fisher_vector_product(dirs)  # (r, *batch, k)
    expected = np.einsum("r...k,s...k->...rs", dirs, f_dirs)
    err = np.abs(cov - expected)
    assert np.all(err < 5 * se), f"max error {np.max(err / se):.2f} standard errors"
    quad = np.stack([q.fisher_quadratic_form(u) for u in dirs], axis=-1)
    assert_allclose(np.diagonal(expected, axis1=-2, axis2=-1), quad, rtol=1e-10)


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_solve_and_vector_product(seed, d, batch_shape):
    q = random_q(seed, d, batch_shape)
    v = random_direction(seed, d, batch_shape)
    fisher = q.fisher()
    fv = q.fisher_vector_product(v)
    solved = q.fisher_solve(v)
    assert fv.shape == v.shape and solved.shape == v.shape
    assert_allclose(q.fisher_solve(fv), v, rtol=1e-9, atol=1e-10)
    assert_allclose(q.fisher_vector_product(solved), v, rtol=1e-9, atol=1e-10)
    assert_allclose(fv, np.einsum("...ij,...j->...i", fisher, v), rtol=1e-12, atol=1e-12)
    # on symmetric vectors, the solve is the inverse of F on that subspace: its pseudo-inverse
    assert_allclose(solved, np.einsum("...ij,...j->...i", np.linalg.pinv(fisher), v),
                    rtol=1e-8, atol=1e-9)
    if d == 1:
        assert_allclose(solved, ExponentialFamily.fisher_solve(q, v), rtol=1e-10, atol=1e-12)
    assert_allclose(fv, ExponentialFamily.fisher_vector_product(q, v), rtol=1e-12, atol=1e-12)
    # outputs have symmetric matrix parts; antisymmetric input parts are dropped
    for out in (fv, solved):
        np.testing.assert_array_equal(split(out, d)[1], np.swapaxes(split(out, d)[1], -1, -2))
    w = random_direction(seed + 5, d, batch_shape, symmetric=False)
    anti = w - sym_matrix_part(w, d)
    assert_allclose(q.fisher_vector_product(v + anti), fv, rtol=1e-12, atol=1e-12)
    assert_allclose(q.fisher_solve(v + anti), solved, rtol=1e-12, atol=1e-12)
    assert_allclose(np.einsum("...ij,...j->...i", fisher, anti), 0.0, atol=1e-12)


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_quadratic_form(seed, d, batch_shape):
    q = random_q(seed, d, batch_shape)
    for symmetric in (True, False):  # F annihilates antisymmetric parts, so both agree
        v = random_direction(seed, d, batch_shape, symmetric=symmetric)
        got = q.fisher_quadratic_form(v)
        assert got.shape == batch_shape
        assert np.all(got >= 0)
        assert_allclose(got, np.einsum("...i,...ij,...j->...", v, q.fisher(), v), rtol=1e-10)


def test_fisher_quadratic_form_without_cancellation():
    # tiny covariance, large mean, a nearly-null direction a ≈ −2Bm: against exact rational
    # arithmetic on the same floats
    q = FullRankGaussian(loc=[1e4, -3e3], cov=[[1e-12, 3e-13], [3e-13, 2e-12]])
    m, s = q.loc, q.cov
    b = np.array([[1e-4, 2e-5], [2e-5, -5e-5]])
    a = -2 * b @ m + np.array([1e-3, -2e-3])
    v = pack(a, b)
    got = q.fisher_quadratic_form(v)
    fm = [Fraction(x) for x in m]
    fs = [[Fraction(x) for x in row] for row in s]
    fv = [Fraction(x) for x in v]
    table = fisher_table(fm, fs)
    exact = sum(fv[i] * table[i][j] * fv[j] for i in range(6) for j in range(6))
    assert got >= 0
    assert_allclose(got, float(exact), rtol=1e-8)


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_natural_gradient_is_gradient_in_mean_parameters(seed, d, batch_shape):
    # F⁻¹ ∇_η L = ∇_μ L: the route through η (autograd through μ(η)) and the direct one.
    q = random_q(seed, d, batch_shape)

    def objective_of_natural(eta):
        return objective_of_mean(FullRankGaussian.mean_from_natural(eta), d)

    def objective_of_natural_naive(eta):
        return objective_of_mean(mean_from_moments(*moments_from_natural(eta, d)), d)

    grad_eta = autograd.grad(objective_of_natural)(q.natural)
    grad_eta_naive = autograd.grad(objective_of_natural_naive)(q.natural)
    grad_mu = autograd.grad(lambda mu: objective_of_mean(mu, d))(q.mean_params)
    # μ₂ is symmetric, so only the symmetric part of ∇_μ L is a gradient on the family
    nat = sym_matrix_part(grad_mu, d)
    assert_allclose(grad_eta, sym_matrix_part(grad_eta_naive, d), rtol=1e-9, atol=1e-10)
    assert_allclose(q.fisher_solve(grad_eta), nat, rtol=1e-8, atol=1e-9)
    assert_allclose(q.fisher_solve(grad_eta_naive), nat, rtol=1e-8, atol=1e-9)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_kl_of_small_step_is_half_fisher_quadratic_form(seed, d, batch_shape):
    # KL(q_η ‖ q_{η+δ}) = ½ δᵀF δ + O(|δ|³): the relative error shrinks like |δ|.
    q = random_q(seed, d, batch_shape)
    direction = random_direction(seed, d, batch_shape) * np.abs(q.natural)
    fisher = q.fisher()
    for kl in (FullRankGaussian.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            step = delta * direction
            other = FullRankGaussian.from_natural(q.natural + step)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(q.fisher_quadratic_form(step))
            dense = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", step, fisher, step))
            assert_allclose(quadratic, dense, rtol=1e-10)
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5  # O(|δ|), not O(1)


def log_density_in_natural(eta, z, d):
    """log q(z | η) for one element, written in the usual (m, Σ) form."""
    m, s = moments_from_natural(eta, d)
    diff = z - m
    quad = anp.dot(diff, anp.linalg.solve(s, diff))
    return -0.5 * (d * LOG_2PI + anp.linalg.slogdet(s)[1] + quad)


@pytest.mark.parametrize("d", DIMS)
def test_fisher_is_minus_expected_hessian_of_log_density(d):
    # ∇²_η log q(z | η) = −∇²A(η) for every z (on symmetric directions), so the
    # expectation holds draw by draw.
    q = random_q(3, d, ())
    p = projector(d)
    fisher = q.fisher()
    hess = autograd.hessian(log_density_in_natural)
    hessians = [p @ hess(q.natural, z, d) @ p for z in q.sample(np.random.default_rng(3), 3)]
    scale = np.max(np.abs(fisher))
    for h in hessians:
        assert_allclose(-h, fisher, rtol=1e-8, atol=1e-10 * scale)
    assert_allclose(-np.mean(hessians, axis=0), fisher, rtol=1e-8, atol=1e-10 * scale)


# ---- closed forms against scipy.stats.multivariate_normal ------------------------------


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_closed_forms_match_scipy(seed, d, batch_shape):
    loc, cov = random_params(seed, d, batch_shape)
    q = FullRankGaussian(loc=loc, cov=cov)
    other = random_q(seed + 50, d, batch_shape)
    z = np.random.default_rng(seed + 7).normal(0, 3, size=(5,) + batch_shape + (d,))
    assert q.log_prob(z).shape == (5,) + batch_shape
    assert q.entropy().shape == batch_shape and q.kl(other).shape == batch_shape
    assert_allclose(q.mean(), loc, rtol=1e-12, atol=1e-13)
    assert_allclose(q.var(), np.diagonal(cov, axis1=-2, axis2=-1), rtol=1e-12)
    assert_allclose(q.cov, cov, rtol=1e-12, atol=1e-13)
    for idx in np.ndindex(batch_shape):
        ref = stats.multivariate_normal(loc[idx], cov[idx])
        assert_allclose(q.entropy()[idx], ref.entropy(), rtol=1e-12, atol=1e-13)
        assert_allclose(q.log_prob(z)[(slice(None),) + idx], ref.logpdf(z[(slice(None),) + idx]),
                        rtol=1e-11, atol=1e-11)
        assert_allclose(q.kl(other)[idx],
                        kl_closed_form(loc[idx], cov[idx], other.loc[idx], other.cov[idx]),
                        rtol=1e-10, atol=1e-12)
        # entropy: ½ log det(2πeΣ)
        assert_allclose(q.entropy()[idx],
                        0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov[idx])[1], rtol=1e-12)
    # the generic exponential-family formulas agree with the overrides
    assert_allclose(ExponentialFamily.log_prob(q, z), q.log_prob(z), rtol=1e-10, atol=1e-10)
    assert_allclose(ExponentialFamily.entropy(q), q.entropy(), rtol=1e-10, atol=1e-12)
    assert_allclose(ExponentialFamily.kl(q, other), q.kl(other), rtol=1e-9, atol=1e-11)
    assert_allclose(q.entropy_grad(), -q.natural)
    assert_allclose(q.kl(q), 0.0, atol=1e-12)
    assert np.all(q.kl(other) >= 0)
    assert_allclose(q.log_base_measure(z), -0.5 * d * LOG_2PI)
    assert q.log_base_measure(z).shape == (5,) + batch_shape
    assert_allclose(q.expected_log_base_measure(), np.full(batch_shape, -0.5 * d * LOG_2PI))


def test_kl_matches_monte_carlo():
    q, other = random_q(0, 4, (3,)), random_q(1, 4, (3,))
    n = 50_000
    z = q.sample(np.random.default_rng(9), n)
    diff = q.log_prob(z) - other.log_prob(z)
    se = diff.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(diff.mean(axis=0) - q.kl(other)) < 5 * se)


@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 4)])
def test_dimension_one_agrees_with_mean_field(batch_shape):
    rng = np.random.default_rng(5)
    loc, scale = rng.normal(0, 1.5, batch_shape), rng.uniform(0.3, 2.0, batch_shape)
    loc2, scale2 = rng.normal(0, 1.5, batch_shape), rng.uniform(0.3, 2.0, batch_shape)
    mf, mf2 = MeanFieldGaussian(loc, scale), MeanFieldGaussian(loc2, scale2)
    q = FullRankGaussian(loc=loc[..., None], cov=(scale**2)[..., None, None])
    q2 = FullRankGaussian(loc=loc2[..., None], cov=(scale2**2)[..., None, None])
    # for d = 1 the layouts coincide: (Λm, −½Λ) = (m/v, −1/(2v)), (m, m² + v)
    assert_allclose(q.natural, mf.natural, rtol=1e-13)
    assert_allclose(q.mean_params, mf.mean_params, rtol=1e-13)
    assert_allclose(q.loc[..., 0], mf.loc, rtol=1e-13)
    assert_allclose(q.scale_tril[..., 0, 0], mf.scale, rtol=1e-13)
    assert_allclose(q.var()[..., 0], mf.var(), rtol=1e-13)
    assert_allclose(q.fisher(), mf.fisher(), rtol=1e-12)
    v = rng.normal(size=batch_shape + (2,))
    assert_allclose(q.fisher_vector_product(v), mf.fisher_vector_product(v), rtol=1e-12)
    assert_allclose(q.fisher_solve(v), mf.fisher_solve(v), rtol=1e-11)
    assert_allclose(q.fisher_quadratic_form(v), mf.fisher_quadratic_form(v), rtol=1e-12)
    assert_allclose(q.entropy(), mf.entropy(), rtol=1e-13)
    assert_allclose(q.entropy_grad(), mf.entropy_grad(), rtol=1e-13)
    assert_allclose(q.kl(q2), mf.kl(mf2), rtol=1e-11, atol=1e-14)
    z = rng.normal(0, 3, size=(5,) + batch_shape)
    assert_allclose(q.log_prob(z[..., None]), mf.log_prob(z), rtol=1e-13)
    assert_allclose(q.sample(np.random.default_rng(1), 6)[..., 0],
                    mf.sample(np.random.default_rng(1), 6), rtol=1e-13)
    g_m, g_v = rng.normal(size=batch_shape), rng.normal(size=batch_shape)
    assert_allclose(q.grad_mean_from_moments(g_m[..., None], g_v[..., None, None]),
                    mf.grad_mean_from_moments(g_m, g_v), rtol=1e-13)
    assert_allclose(q.unconstrained, mf.unconstrained, rtol=1e-13, atol=1e-15)
    assert_allclose(q.unconstrained_grad(v), mf.unconstrained_grad(v), rtol=1e-13)
    assert_allclose(FullRankGaussian.from_unconstrained(mf.unconstrained).natural, mf.natural,
                    rtol=1e-13)


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, d, batch_shape):
    q = random_q(seed, d, batch_shape)
    n = 50_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape + (d,)
    assert np.all(np.abs(z.mean(axis=0) - q.mean()) < 5 * np.sqrt(q.var() / n))
    # covariance entries: means of products of centered draws, standard error std/√n
    c = z - z.mean(axis=0)
    prods = c[..., :, None] * c[..., None, :]
    se = prods.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(prods.mean(axis=0) - q.cov) < 5 * se)


def test_same_seed_same_samples():
    q = random_q(3, 4, (3,))
    a = q.sample(np.random.default_rng(42), 10)
    b = q.sample(np.random.default_rng(42), 10)
    c = q.sample(np.random.default_rng(43), 10)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.dtype == np.float64


# ---- conversions ------------------------------------------------------------------


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_round_trips(seed, d, batch_shape):
    loc, cov = random_params(seed, d, batch_shape)
    q = FullRankGaussian(loc=loc, cov=cov)
    prec = np.linalg.inv(cov)
    assert_allclose(q.natural, pack(np.einsum("...ij,...j->...i", prec, loc), -0.5 * prec),
                    rtol=1e-11, atol=1e-12)
    assert_allclose(q.precision, prec, rtol=1e-11, atol=1e-12)
    assert_allclose(q.scale_tril, np.linalg.cholesky(cov), rtol=1e-11, atol=1e-12)
    assert_allclose(np.triu(q.scale_tril, 1), 0.0, atol=0)
    assert q.event_shape == (d,) and q.dim == d and q.n_params == d + d * d
    # natural ↔ mean
    assert_allclose(FullRankGaussian.natural_from_mean(
        FullRankGaussian.mean_from_natural(q.natural)), q.natural, rtol=1e-10, atol=1e-11)
    # constructors: from_natural, from_mean, usual parameters
    for p in (FullRankGaussian.from_natural(q.natural), FullRankGaussian.from_mean(q.mean_params),
              FullRankGaussian(loc=q.loc, cov=q.cov)):
        assert type(p) is FullRankGaussian
        assert p.batch_shape == batch_shape
        assert_allclose(p.natural, q.natural, rtol=1e-10, atol=1e-11)
        assert_allclose(p.loc, loc, rtol=1e-10, atol=1e-11)
        assert_allclose(p.cov, cov, rtol=1e-10, atol=1e-11)
    np.testing.assert_array_equal(FullRankGaussian.from_natural(q.natural).natural, q.natural)
    # the parameters are read-only
    with pytest.raises(ValueError):
        q.natural[...] = 0.0
    with pytest.raises(ValueError):
        q.cov[...] = 0.0


def test_nearly_symmetric_input_is_symmetrized_exactly():
    loc, cov = random_params(0, 4, (3,))
    bump = np.zeros((4, 4))
    bump[0, 1] = 1e-13
    q = FullRankGaussian(loc=loc, cov=cov + bump)
    e2 = split(q.natural, 4)[1]
    np.testing.assert_array_equal(e2, np.swapaxes(e2, -1, -2))
    eta = q.natural.copy()
    eta[..., 4 + 1] *= 1 + 1e-13
    p = FullRankGaussian.from_natural(eta)
    e2 = split(p.natural, 4)[1]
    np.testing.assert_array_equal(e2, np.swapaxes(e2, -1, -2))
    assert_allclose(p.natural, q.natural, rtol=1e-12)


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, d, batch_shape):
    loc, cov = random_params(seed, d, batch_shape)
    q = FullRankGaussian(loc=loc, cov=cov)
    u = q.unconstrained
    chol = np.linalg.cholesky(cov)
    rows, cols = np.tril_indices(d)
    tri = chol[..., rows, cols]
    tri = np.where(rows == cols, np.log(np.abs(tri)), tri)
    assert u.shape == batch_shape + (d + d * (d + 1) // 2,)
    assert_allclose(u, np.concatenate([loc, tri], axis=-1), rtol=1e-11, atol=1e-12)
    p = FullRankGaussian.from_unconstrained(u)
    assert_allclose(p.natural, q.natural, rtol=1e-11, atol=1e-12)
    # ∇_u L from ∇_μ L equals autograd through μ(u)
    grad_mu = autograd.grad(lambda mu: objective_of_mean(mu, d))(q.mean_params)
    grad_u = autograd.grad(
        lambda u: objective_of_mean(mean_from_moments(*moments_from_unconstrained(u, d)), d))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed, d, batch_shape", CASES, ids=CASE_IDS)
def test_grad_mean_from_moments_is_chain_rule(seed, d, batch_shape):
    q = random_q(seed, d, batch_shape)
    grad_m, grad_s = autograd.grad(objective_of_moments, argnum=(0, 1))(q.loc, q.cov)
    expected = autograd.grad(
        lambda mu: objective_of_moments(*moments_from_mean(mu, d)))(q.mean_params)
    got = q.grad_mean_from_moments(grad_m, grad_s)
    assert_allclose(got, sym_matrix_part(expected, d), rtol=1e-10, atol=1e-10)
    # as a gradient on the family, it pairs with every symmetric direction like ∇_μ L does
    v = random_direction(seed, d, batch_shape)
    assert_allclose(np.sum(got * v), np.sum(expected * v), rtol=1e-10)


def test_batch_broadcasting():
    d = 3
    loc = np.arange(2 * d, dtype=float).reshape(2, 1, d)
    _, cov = random_params(0, d, (3,))
    q = FullRankGaussian(loc=loc, cov=cov)
    k = d + d * d
    assert q.batch_shape == (2, 3)
    assert q.natural.shape == (2, 3, k)
    assert q.fisher().shape == (2, 3, k, k)
    assert_allclose(q.loc, np.broadcast_to(loc, (2, 3, d)), atol=1e-12)
    assert_allclose(q.cov, np.broadcast_to(cov, (2, 3, d, d)), rtol=1e-12)
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3, d)
    assert q.log_prob(np.zeros((5, 1, 3, d))).shape == (5, 2, 3)
    assert q.log_prob(np.zeros(d)).shape == (2, 3)
    assert q.entropy().shape == (2, 3) and q.var().shape == (2, 3, d)
    assert q.kl(FullRankGaussian(loc=np.zeros(d), cov=cov)).shape == (2, 3)
    assert q.unconstrained.shape == (2, 3, d + d * (d + 1) // 2)
    assert q.fisher_solve(np.ones(k)).shape == (2, 3, k)
    assert FullRankGaussian(loc=np.zeros(d), cov=cov).batch_shape == (3,)
    assert FullRankGaussian(loc=np.zeros(d), cov=np.eye(d)).batch_shape == ()
    assert_allclose(FullRankGaussian(loc=[0.0, 0.0], cov=np.eye(2)).natural,
                    [0.0, 0.0, -0.5, 0.0, 0.0, -0.5])


def test_sizes():
    for d in (1, 2, 3, 10):
        k = d + d * d
        assert FullRankGaussian.dim_from_size(k) == d
        assert FullRankGaussian._valid_size(k)
        assert not FullRankGaussian._valid_size(k + 1)
    for k in (0, 1, 3, 5, 7):
        assert not FullRankGaussian._valid_size(k)
        with pytest.raises(ValueError, match="^k:"):
            FullRankGaussian.dim_from_size(k)


# ---- ill-conditioned covariances ----------------------------------------------------


@pytest.mark.parametrize("kappa", [1e8, 1e10])
def test_ill_conditioned_covariance(kappa):
    d = 4
    rng = np.random.default_rng(11)
    rot, _ = np.linalg.qr(rng.normal(size=(d, d)))
    cov = sym((rot * np.logspace(0, -np.log10(kappa), d) * 3.0) @ rot.T)
    loc = rng.normal(size=d)
    q = FullRankGaussian(loc=loc, cov=cov)
    for x in (q.natural, q.mean_params, q.cov, q.precision, q.scale_tril, q.unconstrained,
              q.entropy(), q.fisher(), q.log_prob(q.sample(rng, 5))):
        assert np.all(np.isfinite(x))
    tol = 1e-15 * kappa * 10
    rel = lambda x, y: np.linalg.norm(x - y) / np.linalg.norm(y)  # noqa: E731
    assert rel(q.cov, cov) < tol and rel(q.loc, loc) < tol
    assert rel(FullRankGaussian.from_mean(q.mean_params).natural, q.natural) < tol
    assert rel(FullRankGaussian.from_natural(q.natural).cov, cov) < tol
    assert rel(FullRankGaussian.from_unconstrained(q.unconstrained).natural, q.natural) < tol
    assert_allclose(q.entropy(), 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1], atol=tol)
    assert abs(q.kl(q)) < 1e-10
    # F is as ill-conditioned as κ², so F⁻¹F v = v holds in the Fisher norm, not entrywise
    v = random_direction(0, d, ())
    norm_v = q.fisher_quadratic_form(v)
    assert norm_v > 0
    assert q.fisher_quadratic_form(q.fisher_solve(q.fisher_vector_product(v)) - v) < tol * norm_v
    w = q.fisher_vector_product(v)
    assert rel(q.fisher_vector_product(q.fisher_solve(w)), w) < tol


# ---- bad input ---------------------------------------------------------------------


EYE2 = np.eye(2)


@pytest.mark.parametrize("kwargs, name", [
    ({"loc": [0.0, np.nan], "cov": EYE2}, "loc"),
    ({"loc": [0.0, np.inf], "cov": EYE2}, "loc"),
    ({"loc": "a", "cov": EYE2}, "loc"),
    ({"loc": 0.0, "cov": [[1.0]]}, "loc"),
    ({"loc": [0.0, 0.0, 0.0], "cov": EYE2}, "loc"),
    ({"loc": np.zeros((4, 2)), "cov": np.stack([EYE2] * 3)}, "loc"),
    ({"loc": [0.0, 0.0], "cov": [[1.0, np.nan], [np.nan, 1.0]]}, "cov"),
    ({"loc": [0.0, 0.0], "cov": [[np.inf, 0.0], [0.0, 1.0]]}, "cov"),
    ({"loc": [0.0, 0.0], "cov": [1.0, 1.0]}, "cov"),
    ({"loc": [0.0, 0.0], "cov": np.ones((2, 3))}, "cov"),
    ({"loc": np.zeros(0), "cov": np.zeros((0, 0))}, "cov"),
    ({"loc": [0.0, 0.0], "cov": [[1.0, 0.5], [0.4, 1.0]]}, "cov"),
    ({"loc": [0.0, 0.0], "cov": [[1.0, 2.0], [2.0, 1.0]]}, "cov"),
    ({"loc": [0.0, 0.0], "cov": [[1.0, 1.0], [1.0, 1.0]]}, "cov"),
    ({"loc": [0.0], "cov": [[-1.0]]}, "cov"),
    ({"loc": [0.0], "cov": [[0.0]]}, "cov"),
    ({"loc": [0.0], "cov": [[1e-320]]}, "cov"),
    ({"loc": [0.0, 0.0], "cov": np.stack([EYE2, -EYE2])}, "cov"),
], ids=lambda x: str(x) if isinstance(x, str) else None)
def test_bad_usual_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        FullRankGaussian(**kwargs)


@pytest.mark.parametrize("eta", [
    np.array(1.0),                                   # no parameter axis
    np.zeros(3),                                     # not d + d²
    np.zeros((4, 5)),
    np.array([0.0, np.nan]),                         # non-finite
    np.array([[np.inf, -1.0]]),
    np.array([0.5, 0.0]),                            # η₂ = 0
    np.array([0.0, 0.0, -0.5, 0.1, 0.3, -0.5]),      # not symmetric
    np.array([0.0, 0.0, -0.5, -1.0, -1.0, -0.5]),    # not negative definite
    np.array([[0.5, -1.0], [0.5, 2.0]]),             # one bad element in a batch
], ids=["0d", "size3", "size5", "nan", "inf", "eta2=0", "asymmetric", "indefinite", "batch"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        FullRankGaussian.from_natural(eta)
    if eta.ndim >= 1 and FullRankGaussian._valid_size(eta.shape[-1]):
        assert not np.all(FullRankGaussian.in_domain(eta))


def test_in_domain_is_elementwise():
    q = random_q(0, 2, (3,))
    eta = q.natural.copy()
    eta[1, 2] = 1.0                                  # η₂[0, 0] > 0
    eta[2, 3] += 1.0                                 # asymmetric
    np.testing.assert_array_equal(FullRankGaussian.in_domain(eta), [True, False, False])
    np.testing.assert_array_equal(FullRankGaussian.in_domain(q.natural), [True] * 3)


@pytest.mark.parametrize("mu", [
    np.array([1.0, 1.0]),                            # μ₂ − μ₁² = 0
    np.array([[0.0, 1.0], [2.0, 3.0]]),
    np.array([1.0, 2.0, 1.0, 2.0, 2.0, 4.0]),        # μ₂ = μ₁μ₁ᵀ: singular
    np.array([0.0, 0.0, 1.0, 0.5, 0.2, 1.0]),        # not symmetric
    np.array([0.0, np.nan]),
    np.zeros(3),
], ids=["var0", "batch", "singular", "asymmetric", "nan", "size3"])
def test_bad_mean_parameters(mu):
    with pytest.raises(ValueError, match="^mean_params:"):
        FullRankGaussian.from_mean(mu)


def test_bad_unconstrained_and_other_arguments():
    q = random_q(0, 2, ())
    for u in ([1.0], np.zeros(4), [0.0, np.nan], [0.0, 1000.0], [0.0, -1000.0],
              [0.0, 0.0, 800.0, 0.0, 0.0]):
        with pytest.raises(ValueError, match="^u:"):
            FullRankGaussian.from_unconstrained(u)
    with pytest.raises(ValueError, match="^z:"):
        q.log_prob(np.zeros(3))
    with pytest.raises(ValueError, match="^v:"):
        q.fisher_vector_product(np.zeros(5))
    with pytest.raises(ValueError, match="^v:"):
        q.fisher_solve(np.zeros(2))
    with pytest.raises(ValueError, match="^grad_mean:"):
        q.unconstrained_grad(np.zeros(5))


def test_kl_against_another_family_or_dimension():
    q = random_q(0, 2, ())
    for other in (MeanFieldGaussian(), np.zeros(6), stats.multivariate_normal(np.zeros(2)),
                  random_q(0, 3, ())):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)


def test_sample_validates_n_and_rng():
    q = random_q(0, 2, ())
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
