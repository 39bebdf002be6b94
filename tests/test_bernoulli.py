"""Bernoulli: every identity of the exponential-family theory, checked on random valid
parameters, and the closed forms against scipy.stats.bernoulli.

q(z | η) = p^z (1 − p)^(1−z), z ∈ {0, 1}, T(z) = z, η = logit p, μ = p,
A(η) = log(1 + e^η), F = p(1 − p).
"""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from natvi.families.base import ExponentialFamily
from natvi.families.bernoulli import Bernoulli
from natvi.families.mean_field_gaussian import MeanFieldGaussian

BATCH_SHAPES = [(), (3,), (2, 4)]
SEEDS = [0, 1, 2]
CASES = [(seed, shape) for seed in SEEDS for shape in BATCH_SHAPES]
CASE_IDS = [f"seed{seed}-batch{shape}" for seed, shape in CASES]


def random_p(seed, batch_shape):
    """Random probabilities, away from 0 and 1 so that tolerances stay meaningful."""
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=batch_shape)


def random_q(seed, batch_shape):
    return Bernoulli(p=random_p(seed, batch_shape))


def random_vector(seed, batch_shape):
    """A random vector shaped like the natural parameters, (*batch, 1)."""
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (1,))


def objective_of_mean(mu):
    """A smooth, nonlinear test function L(μ) that couples the batch elements."""
    m = mu[..., 0]
    return anp.sum(anp.sin(3 * m) * m + anp.log1p(m**2)) + 0.1 * anp.sum(m) ** 2


# Parameterizations of the same distribution, written here independently of the library.
def p_from_natural(eta):
    return 1 / (1 + anp.exp(-eta[..., 0]))


def log_pmf(p, z):
    return z * anp.log(p) + (1 - z) * anp.log(1 - p)


# ---- the identities of the one idea ------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_is_gradient_of_log_partition(seed, batch_shape):
    q = random_q(seed, batch_shape)
    grad_a = autograd.grad(lambda eta: anp.sum(Bernoulli.log_partition_fn(eta)))
    assert q.mean_params.shape == batch_shape + (1,)
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-12, atol=1e-14)
    assert_allclose(q.mean_params[..., 0], random_p(seed, batch_shape), rtol=1e-13)
    assert_allclose(Bernoulli.mean_from_natural(q.natural), q.mean_params, rtol=1e-15)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_hessian_of_log_partition(seed, batch_shape):
    p = random_p(seed, batch_shape)
    q = Bernoulli(p=p)
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (1, 1)
    hess_a = autograd.hessian(Bernoulli.log_partition_fn)
    for idx in np.ndindex(batch_shape):
        assert_allclose(fisher[idx], hess_a(q.natural[idx]).reshape(1, 1), rtol=1e-11)
    assert_allclose(fisher[..., 0, 0], p * (1 - p), rtol=1e-12)  # DESIGN.md: p(1 − p)
    # ∂μ/∂η = F: the Jacobian of the autograd-differentiable μ(η)
    jac = autograd.elementwise_grad(lambda e: anp.sum(Bernoulli.mean_from_natural(e), axis=-1))
    assert_allclose(jac(q.natural)[..., 0], fisher[..., 0, 0], rtol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    t = Bernoulli.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
    assert t.shape == (n,) + batch_shape + (1,)
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
    assert_allclose(q.fisher_solve(fv), v, rtol=1e-12)
    assert_allclose(q.fisher_vector_product(solved), v, rtol=1e-12)
    assert_allclose(fv, np.einsum("...ij,...j->...i", fisher, v), rtol=1e-13)
    assert_allclose(solved, np.linalg.solve(fisher, v[..., None])[..., 0], rtol=1e-12)
    assert_allclose(solved, ExponentialFamily.fisher_solve(q, v), rtol=1e-12)
    assert_allclose(fv, ExponentialFamily.fisher_vector_product(q, v), rtol=1e-13)
    quad = q.fisher_quadratic_form(v)
    assert quad.shape == batch_shape
    assert_allclose(quad, np.einsum("...i,...ij,...j->...", v, fisher, v), rtol=1e-12)
    assert np.all(quad >= 0)


def test_fisher_keeps_precision_near_0_and_1():
    # p(1 − p) with p = σ(η), 1 − p = σ(−η): no 1 − p cancellation at η = 40, no
    # overflow of A at η = ±800.
    eta = np.array([[-800.0], [-40.0], [40.0], [800.0]])
    q = Bernoulli.from_natural(eta)
    assert_allclose(q.fisher()[1:3, 0, 0], np.exp(-40.0) / (1 + np.exp(-40.0)) ** 2, rtol=1e-14)
    inner = Bernoulli.from_natural(eta[1:3])
    assert_allclose(inner.fisher_solve(np.ones((2, 1)))[:, 0], 1 / q.fisher()[1:3, 0, 0],
                    rtol=1e-14)
    assert_allclose(q.log_partition(), [0.0, np.log1p(np.exp(-40.0)), 40 + np.exp(-40.0), 800],
                    rtol=1e-14, atol=1e-300)
    assert_allclose(q.var()[1:3], np.exp(-40.0), rtol=1e-12)
    # entropy ≈ p(1 − log p) for small p; log_prob of the unlikely value is −|η|
    h = q.entropy()
    assert np.all(np.isfinite(h)) and np.all(h >= 0)
    assert_allclose(h[1:3], np.exp(-40.0) * 41, rtol=1e-12)
    assert_allclose(q.log_prob(np.array([1.0, 1.0, 0.0, 0.0])), [-800, -40, -40, -800],
                    rtol=1e-12)
    assert np.all(np.isfinite(q.kl(Bernoulli.from_natural(-eta))))
    # p itself at 1e-300 builds and comes back
    assert_allclose(Bernoulli(p=1e-300).p, 1e-300, rtol=1e-13)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_natural_gradient_is_gradient_in_mean_parameters(seed, batch_shape):
    q = random_q(seed, batch_shape)

    def objective_of_natural(eta):
        return objective_of_mean(Bernoulli.mean_from_natural(eta))

    grad_eta = autograd.grad(objective_of_natural)(q.natural)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    assert_allclose(q.fisher_solve(grad_eta), grad_mu, rtol=1e-10, atol=1e-12)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_kl_of_small_step_is_half_fisher_quadratic_form(seed, batch_shape):
    q = random_q(seed, batch_shape)
    direction = random_vector(seed, batch_shape) * (1 + np.abs(q.natural))
    fisher = q.fisher()
    for kl in (Bernoulli.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * direction
            other = Bernoulli.from_natural(q.natural + d)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", d, fisher, d))
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_minus_expected_hessian_of_log_density(seed, batch_shape):
    # ∇²_η log q(z | η) = −∇²A(η) for z = 0 and z = 1 alike.
    q = random_q(seed, batch_shape)
    hess = autograd.hessian(lambda eta, z: log_pmf(p_from_natural(eta), z))
    fisher = q.fisher()
    for idx in np.ndindex(batch_shape):
        hessians = [hess(q.natural[idx], z) for z in (0.0, 1.0)]
        for h in hessians:
            assert_allclose(-np.reshape(h, (1, 1)), fisher[idx], rtol=1e-9)
        p = q.p[idx]
        expected = (1 - p) * hessians[0] + p * hessians[1]
        assert_allclose(-np.reshape(expected, (1, 1)), fisher[idx], rtol=1e-9)


# ---- closed forms against scipy.stats.bernoulli ----------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_closed_forms_match_scipy(seed, batch_shape):
    p = random_p(seed, batch_shape)
    q = Bernoulli(p=p)
    ref = stats.bernoulli(p)
    assert_allclose(q.p, p, rtol=1e-13)
    assert_allclose(q.mean(), ref.mean(), rtol=1e-13)
    assert_allclose(q.var(), ref.var(), rtol=1e-12)
    assert_allclose(q.entropy(), ref.entropy(), rtol=1e-12)
    z = np.random.default_rng(seed + 7).integers(0, 2, size=(5,) + batch_shape).astype(float)
    assert q.log_prob(z).shape == (5,) + batch_shape
    assert_allclose(q.log_prob(z), ref.logpmf(z), rtol=1e-12)
    assert_allclose(ExponentialFamily.log_prob(q, z), q.log_prob(z), rtol=1e-12)
    assert_allclose(ExponentialFamily.entropy(q), q.entropy(), rtol=1e-12)
    other = random_q(seed + 50, batch_shape)
    # KL by its definition, summed over z ∈ {0, 1}
    ref_other = stats.bernoulli(other.p)
    kl_sum = sum(ref.pmf(z) * (ref.logpmf(z) - ref_other.logpmf(z)) for z in (0, 1))
    assert_allclose(q.kl(other), kl_sum, rtol=1e-11, atol=1e-15)
    assert_allclose(ExponentialFamily.kl(q, other), q.kl(other), rtol=1e-10, atol=1e-14)
    assert_allclose(q.kl(q), 0.0, atol=1e-15)
    assert np.all(q.kl(other) >= 0)


def test_log_prob_off_support_and_sufficient_statistics_checks():
    q = Bernoulli(p=[0.3, 0.6])
    assert_allclose(q.log_prob([[0.5, 2.0], [1.0, -1.0]]),
                    [[-np.inf, -np.inf], [np.log(0.3), -np.inf]])
    assert_allclose(q.log_base_measure([0.0, 1.0, 0.5]), [0.0, 0.0, -np.inf])
    assert_allclose(q.expected_log_base_measure(), [0.0, 0.0])
    assert_allclose(q.entropy_grad(), -q.natural)  # h = 1
    # booleans are valid draws
    assert_allclose(q.log_prob(np.array([True, False])), [np.log(0.3), np.log(0.4)], rtol=1e-14)
    assert_allclose(Bernoulli.sufficient_statistics(np.array([True, False])), [[1.0], [0.0]])
    for z in ([0.0, 0.5], [2.0], [np.nan]):
        with pytest.raises(ValueError, match="^z:"):
            Bernoulli.sufficient_statistics(np.array(z))


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape
    assert z.dtype == np.float64
    assert set(np.unique(z)) <= {0.0, 1.0}
    assert np.all(np.abs(z.mean(axis=0) - q.mean()) < 5 * np.sqrt(q.var() / n))
    c = z - z.mean(axis=0)
    s2 = np.mean(c**2, axis=0)
    se_var = np.sqrt((np.mean(c**4, axis=0) - s2**2) / n)
    assert np.all(np.abs(s2 - q.var()) < 5 * se_var)


def test_same_seed_same_samples():
    q = random_q(3, (2, 4))
    a = q.sample(np.random.default_rng(42), 20)
    b = q.sample(np.random.default_rng(42), 20)
    c = q.sample(np.random.default_rng(43), 20)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---- conversions ------------------------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_round_trips(seed, batch_shape):
    p = random_p(seed, batch_shape)
    q = Bernoulli(p=p)
    assert_allclose(q.natural[..., 0], np.log(p / (1 - p)), rtol=1e-12)
    assert_allclose(Bernoulli.natural_from_mean(Bernoulli.mean_from_natural(q.natural)),
                    q.natural, rtol=1e-12)
    for other in (Bernoulli.from_natural(q.natural), Bernoulli.from_mean(q.mean_params),
                  Bernoulli(p=q.p)):
        assert type(other) is Bernoulli
        assert other.batch_shape == batch_shape
        assert_allclose(other.natural, q.natural, rtol=1e-12)
        assert_allclose(other.p, p, rtol=1e-13)
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, batch_shape):
    q = random_q(seed, batch_shape)
    u = q.unconstrained
    assert_allclose(u[..., 0], np.log(q.p / (1 - q.p)), rtol=1e-12)  # logit p
    p = Bernoulli.from_unconstrained(u)
    assert type(p) is Bernoulli
    assert_allclose(p.natural, q.natural, rtol=1e-14)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    grad_u = autograd.grad(lambda u: objective_of_mean(p_from_natural(u)[..., None]))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-12)


def test_batch_broadcasting():
    q = Bernoulli(p=[[0.2, 0.5, 0.9], [0.1, 0.3, 0.6]])
    assert q.batch_shape == (2, 3)
    assert q.natural.shape == (2, 3, 1)
    assert q.fisher().shape == (2, 3, 1, 1)
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3)
    # z broadcasts against the batch
    lp = q.log_prob(np.array([1.0, 0.0, 1.0]))
    assert lp.shape == (2, 3)
    assert_allclose(lp, [np.log([0.2, 0.5, 0.9]), np.log([0.1, 0.7, 0.6])], rtol=1e-13)
    assert q.log_prob(np.zeros((5, 1, 3))).shape == (5, 2, 3)
    assert q.entropy().shape == (2, 3)
    assert q.kl(Bernoulli(p=0.5 * np.ones((2, 3)))).shape == (2, 3)
    assert Bernoulli().batch_shape == ()
    assert_allclose(Bernoulli().natural, [0.0])


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, [0.5, 0.0], np.nan, np.inf, "a"],
                         ids=lambda x: str(x))
def test_bad_usual_parameters(p):
    with pytest.raises(ValueError, match="^p:"):
        Bernoulli(p=p)


@pytest.mark.parametrize("eta", [
    np.array(1.0),
    np.zeros(2),
    np.zeros((4, 3)),
    np.array([np.nan]),
    np.array([[np.inf], [0.0]]),
], ids=["0d", "size2", "size3", "nan", "inf"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        Bernoulli.from_natural(eta)


@pytest.mark.parametrize("mu", [[0.0], [1.0], [[0.5], [1.2]], [np.nan], [0.2, 0.3]],
                         ids=["0", "1", "1.2", "nan", "size2"])
def test_bad_mean_parameters(mu):
    with pytest.raises(ValueError, match="^mean_params:"):
        Bernoulli.from_mean(np.array(mu))


def test_bad_unconstrained():
    with pytest.raises(ValueError, match="^u:"):
        Bernoulli.from_unconstrained([0.0, 1.0])
    with pytest.raises(ValueError, match="^u:"):
        Bernoulli.from_unconstrained([np.nan])


def test_kl_against_another_family():
    q = Bernoulli()
    for other in (MeanFieldGaussian(), np.zeros(1), stats.bernoulli(0.5)):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)


def test_sample_validates_n_and_rng():
    q = Bernoulli(p=0.3)
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
