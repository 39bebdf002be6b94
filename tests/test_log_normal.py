"""LogNormal: every identity of the exponential-family theory, checked on random valid
parameters, and the closed forms against scipy.stats.lognorm.

z = exp(x), x ~ N(m, v): T(z) = (log z, (log z)²), η = (m/v, −1/(2v)),
μ = (m, m² + v), h(z) = (2π)^(−½)/z; scipy's lognorm(s=√v, scale=e^m).
"""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, stats

from natvi.families.base import ExponentialFamily
from natvi.families.log_normal import LogNormal
from natvi.families.logit_normal import LogitNormal
from natvi.families.mean_field_gaussian import MeanFieldGaussian
from natvi.families.transformed_gaussian import TransformedGaussian

BATCH_SHAPES = [(), (3,), (2, 4)]
SEEDS = [0, 1, 2]
CASES = [(seed, shape) for seed in SEEDS for shape in BATCH_SHAPES]
CASE_IDS = [f"seed{seed}-batch{shape}" for seed, shape in CASES]
LOG_2PI = np.log(2 * np.pi)


def random_params(seed, batch_shape):
    """Random loc and scale of log z (moderate, so that the tails stay testable)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, size=batch_shape), rng.uniform(0.3, 1.5, size=batch_shape)


def random_q(seed, batch_shape):
    return LogNormal(*random_params(seed, batch_shape))


def reference(q):
    return stats.lognorm(s=q.scale, scale=np.exp(q.loc))


def random_vector(seed, batch_shape):
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (2,))


def objective_of_mean(mu):
    m1, m2 = mu[..., 0], mu[..., 1]
    return (anp.sum(anp.sin(m1) * m2 + anp.log1p(m2**2) + 0.3 * m1**3)
            + 0.1 * anp.sum(m1) ** 2)


# Parameterizations of the same distribution, written here independently of the library.
def moments_from_natural(eta):
    v = -0.5 / eta[..., 1]
    return eta[..., 0] * v, v


def log_density(m, v, z):
    """log q(z) of z = exp(x), x ~ N(m, v)."""
    return -0.5 * anp.log(2 * np.pi * v) - (anp.log(z) - m) ** 2 / (2 * v) - anp.log(z)


def entropy_of_mean(mu):
    """H[z] = ½ log(2πe v) + m, as a function of μ = (m, m² + v)."""
    m, v = mu[..., 0], mu[..., 1] - mu[..., 0] ** 2
    return 0.5 * anp.log(2 * np.pi * np.e * v) + m


# ---- the identities of the one idea ------------------------------------------------


def test_is_a_transformed_gaussian():
    """A Gaussian x = log z held by the family (composition, not inheritance: a LogNormal is
    not a MeanFieldGaussian), with the same natural parameters."""
    q = LogNormal(loc=0.5, scale=2.0)
    assert isinstance(q, TransformedGaussian) and not isinstance(q, MeanFieldGaussian)
    assert isinstance(q.gaussian, MeanFieldGaussian)
    np.testing.assert_array_equal(q.gaussian.natural, q.natural)
    assert LogNormal.support == "positive"
    assert LogNormal.n_params == 2 and LogNormal.event_shape == ()
    # loc and scale are those of x = log z, as scipy's lognorm(s=scale, scale=exp(loc))
    assert_allclose([q.loc, q.scale, q.variance], [0.5, 2.0, 4.0], rtol=1e-15)


def test_transform_inverse_and_jacobian():
    x = np.linspace(-5, 5, 11)
    assert_allclose(LogNormal.inverse(LogNormal.transform(x)), x, rtol=1e-14, atol=1e-15)
    dz_dx = autograd.elementwise_grad(LogNormal.transform)(x)
    assert_allclose(LogNormal.log_abs_det_jacobian(x), np.log(dz_dx), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_and_fisher_from_log_partition(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = LogNormal(loc=loc, scale=scale)
    grad_a = autograd.grad(lambda eta: anp.sum(LogNormal.log_partition_fn(eta)))
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-12, atol=1e-12)
    assert_allclose(q.mean_params, np.stack([loc, loc**2 + scale**2], -1), rtol=1e-12)
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (2, 2)
    hess_a = autograd.hessian(LogNormal.log_partition_fn)
    for idx in np.ndindex(batch_shape):
        assert_allclose(fisher[idx], hess_a(q.natural[idx]), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    t = LogNormal.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
    assert t.shape == (n,) + batch_shape + (2,)
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
    assert_allclose(q.fisher_solve(fv), v, rtol=1e-10, atol=1e-12)
    assert_allclose(q.fisher_vector_product(solved), v, rtol=1e-10, atol=1e-12)
    assert_allclose(fv, np.einsum("...ij,...j->...i", fisher, v), rtol=1e-12, atol=1e-12)
    assert_allclose(solved, ExponentialFamily.fisher_solve(q, v), rtol=1e-10, atol=1e-12)
    assert_allclose(q.fisher_quadratic_form(v), np.einsum("...i,...ij,...j->...", v, fisher, v),
                    rtol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_natural_gradient_is_gradient_in_mean_parameters(seed, batch_shape):
    q = random_q(seed, batch_shape)
    grad_eta = autograd.grad(lambda e: objective_of_mean(LogNormal.mean_from_natural(e)))(
        q.natural)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    assert_allclose(q.fisher_solve(grad_eta), grad_mu, rtol=1e-9, atol=1e-10)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_kl_of_small_step_is_half_fisher_quadratic_form(seed, batch_shape):
    q = random_q(seed, batch_shape)
    direction = random_vector(seed, batch_shape) * np.abs(q.natural)
    fisher = q.fisher()
    for kl in (LogNormal.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * direction
            other = LogNormal.from_natural(q.natural + d)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", d, fisher, d))
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_minus_expected_hessian_of_log_density(seed, batch_shape):
    # the density of z (Jacobian included) has the same η-Hessian as that of x
    q = random_q(seed, batch_shape)
    draws = q.sample(np.random.default_rng(seed), 4)
    hess = autograd.hessian(lambda eta, z: log_density(*moments_from_natural(eta), z))
    fisher = q.fisher()
    for idx in np.ndindex(batch_shape):
        hessians = [hess(q.natural[idx], z[idx]) for z in draws]
        for h in hessians:
            assert_allclose(-h, fisher[idx], rtol=1e-9, atol=1e-10)


# ---- closed forms against scipy.stats.lognorm ----------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_closed_forms_match_scipy(seed, batch_shape):
    q = random_q(seed, batch_shape)
    ref = reference(q)
    assert_allclose(q.mean(), ref.mean(), rtol=1e-13)
    assert_allclose(q.var(), ref.var(), rtol=1e-12)
    assert_allclose(q.entropy(), ref.entropy(), rtol=1e-12, atol=1e-14)
    z = np.exp(np.random.default_rng(seed + 7).normal(0, 2, size=(5,) + batch_shape))
    assert q.log_prob(z).shape == (5,) + batch_shape
    assert_allclose(q.log_prob(z), ref.logpdf(z), rtol=1e-12, atol=1e-12)
    assert_allclose(ExponentialFamily.log_prob(q, z), q.log_prob(z), rtol=1e-10, atol=1e-10)
    assert_allclose(ExponentialFamily.entropy(q), q.entropy(), rtol=1e-10, atol=1e-12)
    assert_allclose(q.log_base_measure(z), -0.5 * LOG_2PI - np.log(z), rtol=1e-14)
    other = random_q(seed + 50, batch_shape)
    assert_allclose(ExponentialFamily.kl(q, other), q.kl(other), rtol=1e-10, atol=1e-12)
    assert_allclose(q.kl(q), 0.0, atol=1e-12)
    assert np.all(q.kl(other) >= 0)


def test_kl_and_expected_base_measure_match_numerical_integrals():
    q, other = random_q(0, (3,)), random_q(1, (3,))
    kl, elbm = q.kl(other), q.expected_log_base_measure()
    for i in range(3):
        p0 = stats.lognorm(s=q.scale[i], scale=np.exp(q.loc[i]))
        p1 = stats.lognorm(s=other.scale[i], scale=np.exp(other.loc[i]))

        def integral(f, p0=p0):
            return integrate.quad(lambda z: p0.pdf(z) * f(z), 0, np.inf, epsabs=1e-13,
                                  epsrel=1e-12, limit=200)[0]

        assert_allclose(kl[i], integral(lambda z, p0=p0, p1=p1: p0.logpdf(z) - p1.logpdf(z)),
                        rtol=1e-8, atol=1e-11)
        assert_allclose(elbm[i], integral(lambda z: -0.5 * LOG_2PI - np.log(z)), rtol=1e-9)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_entropy_grad(seed, batch_shape):
    q = random_q(seed, batch_shape)
    g = q.entropy_grad()
    assert g.shape == batch_shape + (2,)
    # −η + ∇_μ E[x] = −η + (1, 0)
    assert_allclose(g, -q.natural + np.array([1.0, 0.0]), rtol=1e-14)
    # autograd through an independent H(μ) ...
    grad = autograd.grad(lambda mu: anp.sum(entropy_of_mean(mu)))(q.mean_params)
    assert_allclose(g, grad, rtol=1e-10, atol=1e-12)
    # ... and central differences of the library's own entropy
    mu, h = q.mean_params, 1e-5
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        fd = (LogNormal.from_mean(mu + e).entropy() - LogNormal.from_mean(mu - e).entropy()) / (2*h)
        assert_allclose(g[..., j], fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 50_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape
    assert np.all(z > 0)
    # E[z] within 5 standard errors; log z is N(loc, scale²)
    assert np.all(np.abs(z.mean(axis=0) - q.mean()) < 5 * np.sqrt(q.var() / n))
    x = np.log(z)
    assert np.all(np.abs(x.mean(axis=0) - q.loc) < 5 * q.scale / np.sqrt(n))
    assert np.all(np.abs(x.var(axis=0) - q.variance) < 5 * q.variance * np.sqrt(2 / n))
    # the whole distribution: Kolmogorov–Smirnov against scipy
    ref = reference(q)
    for idx in np.ndindex(batch_shape):
        cdf = stats.lognorm(s=np.asarray(ref.kwds["s"])[idx],
                            scale=np.asarray(ref.kwds["scale"])[idx]).cdf
        assert stats.kstest(z[(slice(None),) + idx], cdf).pvalue > 1e-3


def test_same_seed_same_samples():
    q = random_q(3, (2, 4))
    a = q.sample(np.random.default_rng(42), 10)
    b = q.sample(np.random.default_rng(42), 10)
    c = q.sample(np.random.default_rng(43), 10)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_support():
    q = LogNormal(loc=[0.0, 1.0], scale=[1.0, 2.0])
    assert_allclose(q.log_prob([[0.0, -1.0], [np.inf, 1.0]])[0], [-np.inf, -np.inf])
    assert np.all(np.isneginf(q.log_prob([[np.nan, np.inf]])))
    assert np.all(np.isneginf(q.log_base_measure([0.0, -2.0])))
    for z in ([0.0], [-1.0], [1.0, np.inf], [np.nan]):
        with pytest.raises(ValueError, match="^z:"):
            LogNormal.sufficient_statistics(np.array(z))


# ---- conversions ------------------------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_round_trips(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = LogNormal(loc=loc, scale=scale)
    v = scale**2
    assert_allclose(q.natural, np.stack([loc / v, -0.5 / v], -1), rtol=1e-13)
    for p in (LogNormal.from_natural(q.natural), LogNormal.from_mean(q.mean_params),
              LogNormal(loc=q.loc, scale=q.scale)):
        assert type(p) is LogNormal
        assert p.batch_shape == batch_shape
        assert_allclose(p.natural, q.natural, rtol=1e-10)
        assert_allclose(p.loc, loc, rtol=1e-10, atol=1e-12)
        assert_allclose(p.scale, scale, rtol=1e-10)
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = LogNormal(loc=loc, scale=scale)
    u = q.unconstrained
    assert_allclose(u, np.stack([loc, np.log(scale)], -1), rtol=1e-13, atol=1e-15)
    p = LogNormal.from_unconstrained(u)
    assert type(p) is LogNormal
    assert_allclose(p.natural, q.natural, rtol=1e-12)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)

    def mean_from_unconstrained(u):
        m, v = u[..., 0], anp.exp(2 * u[..., 1])
        return anp.stack([m, m**2 + v], axis=-1)

    grad_u = autograd.grad(lambda u: objective_of_mean(mean_from_unconstrained(u)))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-10)


def test_batch_broadcasting():
    q = LogNormal(loc=np.array([[0.0], [1.0]]), scale=np.array([0.5, 1.0, 2.0]))
    assert q.batch_shape == (2, 3)
    assert q.fisher().shape == (2, 3, 2, 2)
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3)
    assert q.log_prob(np.ones((5, 1, 3))).shape == (5, 2, 3)
    assert q.mean().shape == q.var().shape == q.entropy().shape == (2, 3)
    assert q.entropy_grad().shape == (2, 3, 2)
    assert q.kl(LogNormal(loc=0.0, scale=np.ones(3))).shape == (2, 3)
    assert LogNormal().batch_shape == ()


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"scale": 0.0}, "scale"),
    ({"scale": -1.0}, "scale"),
    ({"scale": np.nan}, "scale"),
    ({"loc": np.inf}, "loc"),
    ({"loc": "a"}, "loc"),
], ids=lambda x: str(x))
def test_bad_usual_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        LogNormal(**kwargs)


@pytest.mark.parametrize("eta", [np.zeros(3), np.array([0.0, np.nan]), np.array([0.5, 0.0])],
                         ids=["size3", "nan", "eta2=0"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        LogNormal.from_natural(eta)


def test_bad_mean_and_unconstrained_parameters():
    with pytest.raises(ValueError, match="^mean_params:"):
        LogNormal.from_mean(np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="^u:"):
        LogNormal.from_unconstrained([1.0])


def test_kl_against_another_family():
    q = LogNormal()
    for other in (MeanFieldGaussian(), LogitNormal(), stats.lognorm(1.0)):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)


def test_sample_validates_n_and_rng():
    q = LogNormal()
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
