"""Categorical: every identity of the exponential-family theory, checked on random valid
parameters, and the closed forms against scipy.stats.multinomial with one trial.

q(z | η) = p_z, z ∈ {0, …, K−1}, T(z) = the first K−1 one-hot indicators,
η_k = log(p_k / p_K), μ = (p_1, …, p_{K−1}), A(η) = log(1 + Σ e^η),
F = diag(p) − ppᵀ on the first K−1 categories.
"""

from fractions import Fraction

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from natvi.families.base import ExponentialFamily
from natvi.families.bernoulli import Bernoulli
from natvi.families.categorical import Categorical

BATCH_SHAPES = [(), (3,), (2, 4)]
SEEDS = [0, 1, 2]
CASES = [(seed, shape) for seed in SEEDS for shape in BATCH_SHAPES]
CASE_IDS = [f"seed{seed}-batch{shape}" for seed, shape in CASES]


def n_categories(seed):
    return 2 + seed  # K = 2, 3, 4


def random_p(seed, batch_shape):
    """Random probabilities over K = 2 + seed categories, none tiny."""
    k = n_categories(seed)
    return np.random.default_rng(seed).dirichlet(3 * np.ones(k), size=batch_shape)


def random_q(seed, batch_shape):
    return Categorical(p=random_p(seed, batch_shape))


def random_vector(seed, batch_shape):
    """A random vector shaped like the natural parameters, (*batch, K − 1)."""
    k = n_categories(seed)
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (k - 1,))


def objective_of_mean(mu):
    """A smooth, nonlinear test function L(μ) that couples categories and batch elements."""
    return (anp.sum(anp.sin(3 * mu) * anp.cumsum(mu, axis=-1) + anp.log1p(mu**2))
            + 0.1 * anp.sum(mu) ** 2)


# Parameterizations of the same distribution, written here independently of the library.
def p_from_natural(eta):
    """All K probabilities from η (*batch, K − 1)."""
    e = anp.exp(anp.concatenate([eta, anp.zeros(eta.shape[:-1] + (1,))], axis=-1))
    return e / anp.sum(e, axis=-1, keepdims=True)


def one_hot(z, k):
    return (np.asarray(z)[..., None] == np.arange(k)).astype(float)


# ---- the identities of the one idea ------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_is_gradient_of_log_partition(seed, batch_shape):
    q = random_q(seed, batch_shape)
    k = n_categories(seed)
    grad_a = autograd.grad(lambda eta: anp.sum(Categorical.log_partition_fn(eta)))
    assert q.n_params == k - 1
    assert q.mean_params.shape == batch_shape + (k - 1,)
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-12, atol=1e-14)
    assert_allclose(q.mean_params, random_p(seed, batch_shape)[..., :-1], rtol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_hessian_of_log_partition(seed, batch_shape):
    p = random_p(seed, batch_shape)
    q = Categorical(p=p)
    k = n_categories(seed)
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (k - 1, k - 1)
    hess_a = autograd.hessian(Categorical.log_partition_fn)
    jac_mu = autograd.jacobian(Categorical.mean_from_natural)
    for idx in np.ndindex(batch_shape):
        assert_allclose(fisher[idx], hess_a(q.natural[idx]), rtol=1e-11, atol=1e-14)
        assert_allclose(fisher[idx], jac_mu(q.natural[idx]), rtol=1e-11, atol=1e-14)
    # DESIGN.md: diag(p) − ppᵀ on the first K − 1 categories
    pk = p[..., :-1]
    table = np.einsum("...i,ij->...ij", pk, np.eye(k - 1)) - pk[..., :, None] * pk[..., None, :]
    assert_allclose(fisher, table, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    t = q.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
    assert t.shape == (n,) + batch_shape + (q.n_params,)
    t_mean = t.mean(axis=0)
    assert np.all(np.abs(t_mean - q.mean_params) < 5 * t.std(axis=0) / np.sqrt(n))
    c = t - t_mean
    prods = c[..., :, None] * c[..., None, :]
    cov = prods.mean(axis=0)
    se = prods.std(axis=0) / np.sqrt(n)
    err = np.abs(cov - q.fisher())
    assert np.all(err < 5 * se), f"max error {np.max(err / se):.2f} standard errors"


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_solve_and_vector_product(seed, batch_shape):
    q = random_q(seed, batch_shape)
    v = random_vector(seed, batch_shape)
    fisher = q.fisher()
    fv = q.fisher_vector_product(v)
    solved = q.fisher_solve(v)
    assert fv.shape == v.shape and solved.shape == v.shape
    assert_allclose(q.fisher_solve(fv), v, rtol=1e-10, atol=1e-12)
    assert_allclose(q.fisher_vector_product(solved), v, rtol=1e-10, atol=1e-12)
    assert_allclose(fv, np.einsum("...ij,...j->...i", fisher, v), rtol=1e-12, atol=1e-14)
    assert_allclose(solved, np.linalg.solve(fisher, v[..., None])[..., 0], rtol=1e-10,
                    atol=1e-12)
    assert_allclose(solved, ExponentialFamily.fisher_solve(q, v), rtol=1e-10, atol=1e-12)
    assert_allclose(fv, ExponentialFamily.fisher_vector_product(q, v), rtol=1e-12, atol=1e-14)
    quad = q.fisher_quadratic_form(v)
    assert quad.shape == batch_shape
    assert_allclose(quad, np.einsum("...i,...ij,...j->...", v, fisher, v), rtol=1e-10)
    assert np.all(quad >= 0)


def test_fisher_quadratic_form_without_cancellation():
    # one dominant category and a large common offset in v: Σ p v² − (p·v)² would cancel
    q = Categorical.from_natural(np.array([[30.0, 0.0], [-5.0, 25.0]]))
    v = np.array([[1e8, 1e8 + 1.0], [3e7 + 2.0, 3e7]])
    got = q.fisher_quadratic_form(v)
    p = q.p
    for i in range(2):
        pf = [Fraction(x) for x in p[i]]
        vf = [Fraction(x) for x in v[i]] + [Fraction(0)]
        mean = sum(a * b for a, b in zip(pf, vf, strict=True))
        exact = sum(a * (b - mean) ** 2 for a, b in zip(pf, vf, strict=True))
        assert got[i] >= 0
        assert_allclose(got[i], float(exact), rtol=1e-8)


def test_precision_near_degenerate_probabilities():
    # 1 − p of the dominant category without cancellation, no overflow at large η
    q = Categorical.from_natural(np.array([40.0, 0.0]))
    rest = 2 / (np.exp(40.0) + 2)
    assert_allclose(q.var(), [rest * (1 - rest), np.exp(-40.0) * (1 - np.exp(-40.0)),
                              np.exp(-40.0) * (1 - np.exp(-40.0))], rtol=1e-13)
    assert_allclose(q.fisher()[0, 0], rest * (1 - rest), rtol=1e-13)
    assert_allclose(q.log_prob(0), -np.log1p(2 * np.exp(-40.0)), rtol=1e-13)
    q = Categorical.from_natural(np.array([800.0, -800.0]))
    assert_allclose(q.log_partition(), 800.0, rtol=1e-15)
    assert np.all(np.isfinite(q.entropy())) and q.entropy() >= 0
    assert_allclose(q.log_prob([0, 1, 2]), [0.0, -1600.0, -800.0], rtol=1e-14)
    assert np.isfinite(q.kl(Categorical(p=[0.2, 0.3, 0.5])))


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_natural_gradient_is_gradient_in_mean_parameters(seed, batch_shape):
    q = random_q(seed, batch_shape)

    def objective_of_natural(eta):
        return objective_of_mean(Categorical.mean_from_natural(eta))

    grad_eta = autograd.grad(objective_of_natural)(q.natural)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    assert_allclose(q.fisher_solve(grad_eta), grad_mu, rtol=1e-9, atol=1e-10)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_kl_of_small_step_is_half_fisher_quadratic_form(seed, batch_shape):
    q = random_q(seed, batch_shape)
    direction = random_vector(seed, batch_shape) * (1 + np.abs(q.natural))
    fisher = q.fisher()
    for kl in (Categorical.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * direction
            other = Categorical.from_natural(q.natural + d)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", d, fisher, d))
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_minus_expected_hessian_of_log_density(seed, batch_shape):
    # ∇²_η log p_z(η) = −∇²A(η) for every category z
    q = random_q(seed, batch_shape)
    k = n_categories(seed)
    hess = autograd.hessian(lambda eta, z: anp.log(p_from_natural(eta)[z]))
    fisher = q.fisher()
    p = q.p
    for idx in np.ndindex(batch_shape):
        hessians = [hess(q.natural[idx], z) for z in range(k)]
        for h in hessians:
            assert_allclose(-h, fisher[idx], rtol=1e-9, atol=1e-12)
        expected = sum(p[idx][z] * hessians[z] for z in range(k))
        assert_allclose(-expected, fisher[idx], rtol=1e-9, atol=1e-12)


# ---- closed forms against scipy.stats.multinomial(1, p) -------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_closed_forms_match_scipy(seed, batch_shape):
    p = random_p(seed, batch_shape)
    k = n_categories(seed)
    q = Categorical(p=p)
    other = Categorical(p=np.random.default_rng(99).dirichlet(np.ones(k), size=batch_shape))
    z = np.random.default_rng(seed + 7).integers(0, k, size=(5,) + batch_shape)
    assert q.p.shape == batch_shape + (k,)
    assert q.mean().shape == q.var().shape == batch_shape + (k,)
    assert q.log_prob(z).shape == (5,) + batch_shape
    log_prob, kl = q.log_prob(z), q.kl(other)
    for idx in np.ndindex(batch_shape):
        ref = stats.multinomial(1, p[idx])
        assert_allclose(q.p[idx], p[idx], rtol=1e-12)
        assert_allclose(q.mean()[idx], ref.mean(), rtol=1e-12)
        assert_allclose(q.var()[idx], np.diag(ref.cov()), rtol=1e-12)
        assert_allclose(q.entropy()[idx], ref.entropy(), rtol=1e-12)
        zi = z[(slice(None),) + idx]
        assert_allclose(log_prob[(slice(None),) + idx], ref.logpmf(one_hot(zi, k)), rtol=1e-12)
        po = other.p[idx]
        assert_allclose(kl[idx], np.sum(p[idx] * np.log(p[idx] / po)), rtol=1e-11)
    assert_allclose(ExponentialFamily.log_prob(q, z), log_prob, rtol=1e-12)
    assert_allclose(ExponentialFamily.entropy(q), q.entropy(), rtol=1e-12)
    assert_allclose(ExponentialFamily.kl(q, other), kl, rtol=1e-10, atol=1e-14)
    assert_allclose(q.kl(q), 0.0, atol=1e-15)
    assert np.all(kl >= 0)
    assert_allclose(q.log_base_measure(z), 0.0)
    assert_allclose(q.expected_log_base_measure(), np.zeros(batch_shape))
    assert_allclose(q.entropy_grad(), -q.natural)  # h = 1


def test_codes_validation_and_log_prob_off_support():
    q = Categorical(p=[0.2, 0.3, 0.5])
    assert_allclose(q.sufficient_statistics(np.array([0, 1, 2])),
                    [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert_allclose(q.sufficient_statistics(np.array([2.0, 1.0])), [[0.0, 0.0], [0.0, 1.0]])
    for z in ([3], [-1], [1.5], [np.nan], [np.inf]):
        with pytest.raises(ValueError, match="^z:"):
            q.sufficient_statistics(np.array(z))
    with pytest.raises(ValueError, match="^z:"):
        q.sufficient_statistics(np.array(["a"]))
    assert_allclose(q.log_prob([0, 3, -1, 1.5, np.nan, 2.0]),
                    [np.log(0.2), -np.inf, -np.inf, -np.inf, -np.inf, np.log(0.5)], rtol=1e-14)
    assert_allclose(q.log_base_measure([0, 3, 1.5]), [0.0, -np.inf, -np.inf])


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, batch_shape):
    q = random_q(seed, batch_shape)
    k = n_categories(seed)
    n = 100_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape
    assert z.dtype == np.int64
    assert z.min() >= 0 and z.max() <= k - 1
    h = one_hot(z, k)
    assert np.all(np.abs(h.mean(axis=0) - q.mean()) < 5 * np.sqrt(q.var() / n))
    c = h - h.mean(axis=0)
    s2 = np.mean(c**2, axis=0)
    se_var = np.sqrt((np.mean(c**4, axis=0) - s2**2) / n)
    assert np.all(np.abs(s2 - q.var()) < 5 * se_var)


def test_same_seed_same_samples():
    q = random_q(2, (2, 4))
    a = q.sample(np.random.default_rng(42), 20)
    b = q.sample(np.random.default_rng(42), 20)
    c = q.sample(np.random.default_rng(43), 20)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---- conversions ------------------------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_round_trips(seed, batch_shape):
    p = random_p(seed, batch_shape)
    q = Categorical(p=p)
    assert_allclose(q.natural, np.log(p[..., :-1] / p[..., -1:]), rtol=1e-12, atol=1e-14)
    assert_allclose(Categorical.natural_from_mean(Categorical.mean_from_natural(q.natural)),
                    q.natural, rtol=1e-10, atol=1e-12)
    for other in (Categorical.from_natural(q.natural), Categorical.from_mean(q.mean_params),
                  Categorical(p=q.p)):
        assert type(other) is Categorical
        assert other.batch_shape == batch_shape
        assert other.n_params == n_categories(seed) - 1
        assert_allclose(other.natural, q.natural, rtol=1e-10, atol=1e-12)
        assert_allclose(other.p, p, rtol=1e-12)
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


def test_probabilities_are_renormalized():
    p = np.array([0.2, 0.3, 0.5]) * (1 + 5e-9)  # within the tolerance of Σ p = 1
    q = Categorical(p=p)
    assert_allclose(q.p.sum(), 1.0, rtol=1e-15)
    assert_allclose(q.p, [0.2, 0.3, 0.5], rtol=1e-14)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, batch_shape):
    q = random_q(seed, batch_shape)
    u = q.unconstrained
    assert_allclose(u, np.log(q.p[..., :-1] / q.p[..., -1:]), rtol=1e-12, atol=1e-14)
    other = Categorical.from_unconstrained(u)
    assert type(other) is Categorical
    assert_allclose(other.natural, q.natural, rtol=1e-14)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    grad_u = autograd.grad(lambda u: objective_of_mean(p_from_natural(u)[..., :-1]))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-12)


def test_batch_broadcasting():
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3))
    q = Categorical(p=p)
    assert q.batch_shape == (2, 3)
    assert q.natural.shape == (2, 3, 3)
    assert q.fisher().shape == (2, 3, 3, 3)
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3)
    lp = q.log_prob(np.array([0, 3, 1]))
    assert lp.shape == (2, 3)
    assert_allclose(lp, np.log(p[:, [0, 1, 2], [0, 3, 1]]), rtol=1e-13)
    assert q.log_prob(np.zeros((5, 1, 3), dtype=int)).shape == (5, 2, 3)
    assert q.log_prob(2).shape == (2, 3)
    assert q.entropy().shape == (2, 3)
    assert q.kl(Categorical(p=np.full((2, 3, 4), 0.25))).shape == (2, 3)
    assert Categorical().batch_shape == ()
    assert_allclose(Categorical().natural, [0.0])


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("p", [
    0.5,                    # no category axis
    [1.0],                  # K = 1
    [0.5, 0.5, 0.0],        # a zero probability
    [1.2, -0.2],
    [0.5, 0.6],             # does not sum to 1
    [[0.5, 0.5], [0.3, 0.6]],
    [0.5, np.nan],
    [np.inf, 0.5],
    ["a", "b"],
], ids=lambda x: str(x))
def test_bad_usual_parameters(p):
    with pytest.raises(ValueError, match="^p:"):
        Categorical(p=p)


@pytest.mark.parametrize("eta", [
    np.array(1.0),
    np.zeros((3, 0)),
    np.array([0.0, np.nan]),
    np.array([[np.inf], [0.0]]),
], ids=["0d", "size0", "nan", "inf"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        Categorical.from_natural(eta)


def test_size_message_names_k():
    with pytest.raises(ValueError, match=r"^natural: .*K − 1 ≥ 1"):
        Categorical.from_natural(np.zeros((3, 0)))


@pytest.mark.parametrize("mu", [[0.0, 0.5], [0.5, 0.5], [0.6, 0.7], [-0.1, 0.2],
                                [[0.2, 0.3], [np.nan, 0.1]], np.zeros((2, 0))],
                         ids=["zero", "sum1", "sum>1", "negative", "nan", "size0"])
def test_bad_mean_parameters(mu):
    with pytest.raises(ValueError, match="^mean_params:"):
        Categorical.from_mean(np.array(mu))


def test_bad_unconstrained():
    with pytest.raises(ValueError, match="^u:"):
        Categorical.from_unconstrained(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="^u:"):
        Categorical.from_unconstrained([np.nan, 0.0])


def test_kl_against_another_family_or_size():
    q = Categorical(p=[0.2, 0.3, 0.5])
    for other in (Bernoulli(p=0.2), np.zeros(2), Categorical(p=[0.5, 0.5])):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)


def test_sample_validates_n_and_rng():
    q = Categorical(p=[0.2, 0.8])
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
