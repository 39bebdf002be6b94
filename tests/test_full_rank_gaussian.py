"""FullRankGaussian: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py.

q(z | η) = N(z; m, Σ) per batch element in ℝᵈ, T(z) = (z, ravel(zzᵀ)),
η = (Λm, ravel(−½Λ)) with Λ = Σ⁻¹, μ = (m, ravel(Σ + mmᵀ)). Matrix parts are symmetric;
F vanishes on antisymmetric ones.
"""

from fractions import Fraction

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from family_registry import FullRankGaussianSpec, sym_matrix_part
from numpy.testing import assert_allclose

from natvi.families.full_rank_gaussian import FullRankGaussian
from natvi.families.mean_field_gaussian import MeanFieldGaussian


def random_q(seed, d, batch_shape):
    return FullRankGaussian(**FullRankGaussianSpec.params(np.random.default_rng(seed),
                                                          batch_shape, d))


def pack(vec, mat):
    return np.concatenate([vec, mat.reshape(mat.shape[:-2] + (-1,))], axis=-1)


def split(x, d):
    return x[..., :d], x[..., d:].reshape(x.shape[:-1] + (d, d))


def random_direction(seed, d, batch_shape, symmetric=True):
    """A random vector shaped like the natural parameters, (*batch, d + d²)."""
    v = np.random.default_rng(1000 + seed).normal(size=batch_shape + (d + d * d,))
    return sym_matrix_part(v) if symmetric else v


def fisher_table(m, s):
    """Cov[T(z)] by Isserlis' theorem; works on floats and on Fractions."""
    d = len(m)
    index = [(i,) for i in range(d)] + [(i, j) for i in range(d) for j in range(d)]

    def cov(p, q):
        if len(p) == 2 and len(q) == 1:
            p, q = q, p
        if len(p) == 1 and len(q) == 1:
            return s[p[0]][q[0]]
        if len(p) == 1:
            (i,), (a, b) = p, q
            return s[i][a] * m[b] + s[i][b] * m[a]
        (i, j), (a, b) = p, q
        return (s[i][a] * s[j][b] + s[i][b] * s[j][a] + m[i] * m[a] * s[j][b]
                + m[i] * m[b] * s[j][a] + m[j] * m[a] * s[i][b] + m[j] * m[b] * s[i][a])

    return [[cov(p, q) for q in index] for p in index]


@pytest.mark.parametrize("d", [1, 2, 4])
def test_fisher_matches_isserlis(d):
    q = random_q(d, d, (3,))
    for idx in range(3):
        fisher = q.fisher()[idx]
        assert_allclose(fisher, fisher_table(q.loc[idx], q.cov[idx]), rtol=1e-10,
                        atol=1e-12 * np.max(np.abs(fisher)))


@pytest.mark.parametrize("d", [1, 2, 4])
def test_fisher_operations_drop_antisymmetric_parts(d):
    q = random_q(d, d, (3,))
    v = random_direction(d, d, (3,))
    fv, solved = q.fisher_vector_product(v), q.fisher_solve(v)
    # outputs have exactly symmetric matrix parts; antisymmetric input parts are dropped
    for out in (fv, solved):
        np.testing.assert_array_equal(split(out, d)[1], np.swapaxes(split(out, d)[1], -1, -2))
    w = random_direction(d + 5, d, (3,), symmetric=False)
    anti = w - sym_matrix_part(w)
    assert_allclose(q.fisher_vector_product(v + anti), fv, rtol=1e-12, atol=1e-12)
    assert_allclose(q.fisher_solve(v + anti), solved, rtol=1e-12, atol=1e-12)
    assert_allclose(np.einsum("...ij,...j->...i", q.fisher(), anti), 0.0, atol=1e-12)
    got = q.fisher_quadratic_form(w)
    assert np.all(got >= 0)
    assert_allclose(got, np.einsum("...i,...ij,...j->...", w, q.fisher(), w), rtol=1e-10)


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


@pytest.mark.parametrize("d", [1, 2, 4])
def test_factors_and_sizes(d):
    params = FullRankGaussianSpec.params(np.random.default_rng(d), (3,), d)
    q = FullRankGaussian(**params)
    cov = params["cov"]
    assert_allclose(q.precision, np.linalg.inv(cov), rtol=1e-11, atol=1e-12)
    assert_allclose(q.scale_tril, np.linalg.cholesky(cov), rtol=1e-11, atol=1e-12)
    assert_allclose(np.triu(q.scale_tril, 1), 0.0, atol=0)
    assert q.event_shape == (d,) and q.dim == d and q.n_params == d + d * d
    # the factors are read-only
    with pytest.raises(ValueError):
        q.cov[...] = 0.0


def test_nearly_symmetric_input_is_symmetrized_exactly():
    q = random_q(0, 4, (3,))
    bump = np.zeros((4, 4))
    bump[0, 1] = 1e-13
    q = FullRankGaussian(loc=q.loc, cov=q.cov + bump)
    e2 = split(q.natural, 4)[1]
    np.testing.assert_array_equal(e2, np.swapaxes(e2, -1, -2))
    eta = q.natural.copy()
    eta[..., 4 + 1] *= 1 + 1e-13
    p = FullRankGaussian.from_natural(eta)
    e2 = split(p.natural, 4)[1]
    np.testing.assert_array_equal(e2, np.swapaxes(e2, -1, -2))
    assert_allclose(p.natural, q.natural, rtol=1e-12)


def weight_matrices(d):
    rng = np.random.default_rng(77 + d)
    return rng.normal(size=(d, d)), rng.normal(size=d)  # W not symmetric


def objective_of_moments(m, s):
    """A smooth, nonlinear function of the distribution through its mean and covariance."""
    d = m.shape[-1]
    w_mat, w = weight_matrices(d)
    return (anp.sum(anp.sin(m) * anp.einsum("...ij,j->...i", s, w)) + anp.sum(anp.log1p(s**2))
            + 0.2 * anp.sum(m**2 * anp.diagonal(s, axis1=-1, axis2=-2)) + 0.1 * anp.sum(w_mat * s)
            + 0.1 * anp.sum(m) ** 2)


def moments_from_mean(mu, d):
    m, m2 = mu[..., :d], anp.reshape(mu[..., d:], mu.shape[:-1] + (d, d))
    return m, m2 - m[..., :, None] * m[..., None, :]


@pytest.mark.parametrize("d", [1, 2, 4])
def test_grad_mean_from_moments_is_chain_rule(d):
    q = random_q(d, d, (3,))
    grad_m, grad_s = autograd.grad(objective_of_moments, argnum=(0, 1))(q.loc, q.cov)
    expected = autograd.grad(
        lambda mu: objective_of_moments(*moments_from_mean(mu, d)))(q.mean_params)
    got = q.grad_mean_from_moments(grad_m, grad_s)
    assert_allclose(got, sym_matrix_part(expected), rtol=1e-10, atol=1e-10)
    # as a gradient on the family, it pairs with every symmetric direction like ∇_μ L does
    v = random_direction(d, d, (3,))
    assert_allclose(np.sum(got * v), np.sum(expected * v), rtol=1e-10)


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
    cov = (rot * np.logspace(0, -np.log10(kappa), d) * 3.0) @ rot.T
    cov = 0.5 * (cov + cov.T)
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


# ---- bad input particular to the full-rank Gaussian ---------------------------------------


def test_in_domain_is_elementwise():
    q = random_q(0, 2, (3,))
    eta = q.natural.copy()
    eta[1, 2] = 1.0                                  # η₂[0, 0] > 0
    eta[2, 3] += 1.0                                 # asymmetric
    np.testing.assert_array_equal(FullRankGaussian.in_domain(eta), [True, False, False])
    np.testing.assert_array_equal(FullRankGaussian.in_domain(q.natural), [True] * 3)


def test_bad_direction_and_point_shapes():
    q = random_q(0, 2, ())
    with pytest.raises(ValueError, match="^z:"):
        q.log_prob(np.zeros(3))
    with pytest.raises(ValueError, match="^v:"):
        q.fisher_vector_product(np.zeros(5))
    with pytest.raises(ValueError, match="^v:"):
        q.fisher_solve(np.zeros(2))
    with pytest.raises(ValueError, match="^grad_mean:"):
        q.unconstrained_grad(np.zeros(5))
