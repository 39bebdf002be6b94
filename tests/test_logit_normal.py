"""LogitNormal: every identity of the exponential-family theory, checked on random valid
parameters, and the moments, entropy and densities against numerical integration of a
density written here independently (scipy.stats has no logit-normal).

z = σ(x), x ~ N(m, v): T(z) = (logit z, (logit z)²), η = (m/v, −1/(2v)),
μ = (m, m² + v), h(z) = (2π)^(−½)/(z(1 − z)).
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
    """Random loc and scale of logit z."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.5, size=batch_shape), rng.uniform(0.3, 2.0, size=batch_shape)


def random_q(seed, batch_shape):
    return LogitNormal(*random_params(seed, batch_shape))


def random_vector(seed, batch_shape):
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (2,))


def objective_of_mean(mu):
    m1, m2 = mu[..., 0], mu[..., 1]
    return (anp.sum(anp.sin(m1) * m2 + anp.log1p(m2**2) + 0.3 * m1**3)
            + 0.1 * anp.sum(m1) ** 2)


# ---- the reference, written independently of the library -----------------------------


def log_density(m, v, z):
    """log q(z) of z = σ(x), x ~ N(m, v): the Gaussian density of logit z over z(1 − z)."""
    x = anp.log(z) - anp.log(1 - z)
    return -0.5 * anp.log(2 * np.pi * v) - (x - m) ** 2 / (2 * v) - anp.log(z) - anp.log(1 - z)


def moments_from_natural(eta):
    v = -0.5 / eta[..., 1]
    return eta[..., 0] * v, v


def over_unit_interval(f):
    return integrate.quad(f, 0, 1, epsabs=1e-14, epsrel=1e-12, limit=400)[0]


def numerical_moments(m, s):
    """(mean, variance, entropy) of z by integrating the density over (0, 1)."""
    def pdf(z):
        return np.exp(log_density(m, s**2, z))

    mean = over_unit_interval(lambda z: z * pdf(z))
    var = over_unit_interval(lambda z: (z - mean) ** 2 * pdf(z))
    entropy = over_unit_interval(lambda z: -pdf(z) * log_density(m, s**2, z))
    return mean, var, entropy


# Gauss–Hermite nodes, normalized to E[f(ε)], ε ~ N(0, 1), for an autograd-able entropy
_T, _W = np.polynomial.hermite_e.hermegauss(200)
_W = _W / _W.sum()


def entropy_of_mean(mu):
    """H[z] = ½ log(2πe v) + E[log σ(x) + log σ(−x)], as a function of μ = (m, m² + v)."""
    m, v = mu[..., 0], mu[..., 1] - mu[..., 0] ** 2
    x = m[..., None] + anp.sqrt(v)[..., None] * _T
    log_jac = -anp.log1p(anp.exp(-x)) - anp.log1p(anp.exp(x))
    return 0.5 * anp.log(2 * np.pi * np.e * v) + anp.dot(log_jac, _W)


# ---- the family as a transformed Gaussian ---------------------------------------------


def test_is_a_transformed_gaussian():
    q = LogitNormal(loc=0.5, scale=2.0)
    assert isinstance(q, TransformedGaussian) and not isinstance(q, MeanFieldGaussian)
    assert isinstance(q.gaussian, MeanFieldGaussian)
    np.testing.assert_array_equal(q.gaussian.natural, q.natural)
    assert LogitNormal.support == "unit_interval"
    assert LogitNormal.n_params == 2 and LogitNormal.event_shape == ()
    assert_allclose([q.loc, q.scale, q.variance], [0.5, 2.0, 4.0], rtol=1e-15)


def test_transform_inverse_and_jacobian():
    x = np.linspace(-30, 30, 13)
    # z = σ(x) near 1 keeps only an absolute precision, so the round trip is checked to 10
    z = LogitNormal.transform(x)
    assert_allclose(LogitNormal.inverse(z[x <= 10]), x[x <= 10], rtol=1e-11, atol=1e-13)
    assert_allclose(z, 1 / (1 + np.exp(-x)), rtol=1e-15)
    dz_dx = autograd.elementwise_grad(LogitNormal.transform)(x)
    inner = np.abs(x) <= 10  # autograd's σ(x)(1 − σ(x)) cancels further out
    assert_allclose(LogitNormal.log_abs_det_jacobian(x[inner]), np.log(dz_dx[inner]), rtol=1e-12)
    assert_allclose(LogitNormal.log_abs_det_jacobian(x),
                    -np.abs(x) - 2 * np.log1p(np.exp(-np.abs(x))), rtol=1e-15)
    # overflow-safe, and differentiable, far out in the tails
    big = np.array([-800.0, 800.0])
    assert_allclose(LogitNormal.log_abs_det_jacobian(big), [-800.0, -800.0], rtol=1e-15)
    grad = autograd.elementwise_grad(LogitNormal.log_abs_det_jacobian)(big)
    assert_allclose(grad, [1.0, -1.0], rtol=1e-15)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_and_fisher_from_log_partition(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = LogitNormal(loc=loc, scale=scale)
    grad_a = autograd.grad(lambda eta: anp.sum(LogitNormal.log_partition_fn(eta)))
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-12, atol=1e-12)
    assert_allclose(q.mean_params, np.stack([loc, loc**2 + scale**2], -1), rtol=1e-12)
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (2, 2)
    hess_a = autograd.hessian(LogitNormal.log_partition_fn)
    for idx in np.ndindex(batch_shape):
        assert_allclose(fisher[idx], hess_a(q.natural[idx]), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    t = LogitNormal.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
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
    grad_eta = autograd.grad(lambda e: objective_of_mean(LogitNormal.mean_from_natural(e)))(
        q.natural)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    assert_allclose(q.fisher_solve(grad_eta), grad_mu, rtol=1e-9, atol=1e-10)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_kl_of_small_step_is_half_fisher_quadratic_form(seed, batch_shape):
    q = random_q(seed, batch_shape)
    direction = random_vector(seed, batch_shape) * np.abs(q.natural)
    fisher = q.fisher()
    for kl in (LogitNormal.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * direction
            other = LogitNormal.from_natural(q.natural + d)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", d, fisher, d))
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_minus_expected_hessian_of_log_density(seed, batch_shape):
    q = random_q(seed, batch_shape)
    draws = q.sample(np.random.default_rng(seed), 4)
    hess = autograd.hessian(lambda eta, z: log_density(*moments_from_natural(eta), z))
    fisher = q.fisher()
    for idx in np.ndindex(batch_shape):
        for z in draws:
            assert_allclose(-hess(q.natural[idx], z[idx]), fisher[idx], rtol=1e-9, atol=1e-10)


# ---- moments, entropy and densities against numerical integration ------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_moments_and_entropy_match_numerical_integrals(seed, batch_shape):
    q = random_q(seed, batch_shape)
    mean, var, entropy = q.mean(), q.var(), q.entropy()
    assert mean.shape == var.shape == entropy.shape == batch_shape
    for idx in np.ndindex(batch_shape):
        ref = numerical_moments(q.loc[idx], q.scale[idx])
        assert_allclose([mean[idx], var[idx], entropy[idx]], ref, rtol=1e-9, atol=1e-12)
    assert_allclose(ExponentialFamily.entropy(q), entropy, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_log_prob_matches_independent_density(seed, batch_shape):
    q = random_q(seed, batch_shape)
    z = np.random.default_rng(seed + 7).uniform(0, 1, size=(5,) + batch_shape)
    ref = log_density(q.loc, q.variance, z)
    assert q.log_prob(z).shape == (5,) + batch_shape
    assert_allclose(q.log_prob(z), ref, rtol=1e-12, atol=1e-12)
    assert_allclose(ExponentialFamily.log_prob(q, z), ref, rtol=1e-10, atol=1e-10)
    assert_allclose(q.log_base_measure(z), -0.5 * LOG_2PI - np.log(z) - np.log1p(-z),
                    rtol=1e-12)


def test_density_integrates_to_one_and_log_prob_is_stable_at_the_ends():
    q = LogitNormal(loc=[-2.0, 0.5], scale=[0.4, 1.7])
    for i in range(2):
        total = over_unit_interval(
            lambda z, i=i: np.exp(q.log_prob(np.full(2, z))[i]))
        assert_allclose(total, 1.0, rtol=1e-10)
    # far in the tails: log z and log(1 − z) exactly, no cancellation
    q = LogitNormal(loc=0.0, scale=1.0)
    z = np.array([1e-200, 1 - 2.0**-50])
    x = np.array([np.log(1e-200), np.log1p(-2.0**-50) + 50 * np.log(2)])
    expected = -0.5 * LOG_2PI - 0.5 * x**2 - np.log(z) - np.log1p(-z)
    assert_allclose(q.log_prob(z), expected, rtol=1e-12)


def test_kl_and_expected_base_measure_match_numerical_integrals():
    q, other = random_q(0, (3,)), random_q(1, (3,))
    kl, elbm = q.kl(other), q.expected_log_base_measure()
    for i in range(3):
        m0, v0, m1, v1 = q.loc[i], q.variance[i], other.loc[i], other.variance[i]

        def integral(f, m0=m0, v0=v0):
            return over_unit_interval(lambda z: np.exp(log_density(m0, v0, z)) * f(z))

        ref_kl = integral(lambda z, m0=m0, v0=v0, m1=m1, v1=v1:
                          log_density(m0, v0, z) - log_density(m1, v1, z))
        assert_allclose(kl[i], ref_kl, rtol=1e-8, atol=1e-11)
        ref_elbm = integral(lambda z: -0.5 * LOG_2PI - np.log(z) - np.log1p(-z))
        assert_allclose(elbm[i], ref_elbm, rtol=1e-9)


@pytest.mark.parametrize("loc, scale", [(0.0, 3.0), (1.5, 4.0), (-2.0, 0.05)])
def test_quadrature_accuracy_beyond_the_random_range(loc, scale):
    q = LogitNormal(loc=loc, scale=scale)
    assert_allclose([q.mean(), q.var(), q.entropy()], numerical_moments(loc, scale),
                    rtol=1e-7, atol=1e-9)


def test_var_keeps_precision_for_mass_near_one():
    # x = 30 + ε: 1 − z ≈ e^(−x), so Var z ≈ Var e^(−x) = e^(−2m + v)(e^v − 1); z − E z
    # would cancel to nothing here.
    m, s = 30.0, 0.5
    q = LogitNormal(loc=[m, -m], scale=s)
    approx = np.exp(-2 * m + s**2) * np.expm1(s**2)
    assert_allclose(q.var(), [approx, approx], rtol=1e-10)
    assert_allclose(q.mean()[1], np.exp(-m + s**2 / 2), rtol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_entropy_grad(seed, batch_shape):
    q = random_q(seed, batch_shape)
    g = q.entropy_grad()
    assert g.shape == batch_shape + (2,)
    # autograd through an independent quadrature H(μ) ...
    grad = autograd.grad(lambda mu: anp.sum(entropy_of_mean(mu)))(q.mean_params)
    assert_allclose(g, grad, rtol=1e-9, atol=1e-11)
    assert_allclose(q.entropy(), entropy_of_mean(q.mean_params), rtol=1e-12, atol=1e-13)
    # ... and central differences of the library's own entropy
    mu, h = q.mean_params, 1e-5
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        fd = (LogitNormal.from_mean(mu + e).entropy()
              - LogitNormal.from_mean(mu - e).entropy()) / (2 * h)
        assert_allclose(g[..., j], fd, rtol=1e-6, atol=1e-7)


def test_expected_log_jacobian_at_small_scale():
    # E[f(x)] → f(m) + ½ f″(m) v: its derivatives tend to f′(m) and ½ f″(m), with
    # f′ = −tanh(x/2) and f″ = −½ sech²(x/2); no rounding residue / scale blows up.
    m = np.array([2.0, -0.7, 12.0])
    q = LogitNormal(loc=m, scale=1e-7)
    value, grad_loc, grad_var = q._expected_log_jacobian()
    assert_allclose(value, LogitNormal.log_abs_det_jacobian(m), rtol=1e-12)
    assert_allclose(grad_loc, -np.tanh(m / 2), rtol=1e-10)
    assert_allclose(grad_var, -0.25 / np.cosh(m / 2) ** 2, rtol=1e-6)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 50_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape
    assert np.all((z > 0) & (z < 1))
    assert np.all(np.abs(z.mean(axis=0) - q.mean()) < 5 * np.sqrt(q.var() / n))
    c = z - z.mean(axis=0)
    s2 = np.mean(c**2, axis=0)
    se_var = np.sqrt((np.mean(c**4, axis=0) - s2**2) / n)
    assert np.all(np.abs(s2 - q.var()) < 5 * se_var)
    # the whole distribution: Kolmogorov–Smirnov against Φ((logit z − m)/s)
    for idx in np.ndindex(batch_shape):
        m, s = q.loc[idx], q.scale[idx]
        cdf = lambda t, m=m, s=s: stats.norm.cdf((np.log(t) - np.log1p(-t) - m) / s)  # noqa: E731
        assert stats.kstest(z[(slice(None),) + idx], cdf).pvalue > 1e-3


def test_same_seed_same_samples():
    q = random_q(3, (2, 4))
    a = q.sample(np.random.default_rng(42), 10)
    b = q.sample(np.random.default_rng(42), 10)
    c = q.sample(np.random.default_rng(43), 10)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_support():
    q = LogitNormal(loc=[0.0, 1.0], scale=[1.0, 2.0])
    assert np.all(np.isneginf(q.log_prob([[0.0, 1.0], [-0.5, 1.5], [np.nan, np.inf]])))
    assert np.all(np.isneginf(q.log_base_measure([0.0, 1.0])))
    for z in ([0.0], [1.0], [0.5, 2.0], [np.nan]):
        with pytest.raises(ValueError, match="^z:"):
            LogitNormal.sufficient_statistics(np.array(z))


# ---- conversions ------------------------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_round_trips(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = LogitNormal(loc=loc, scale=scale)
    v = scale**2
    assert_allclose(q.natural, np.stack([loc / v, -0.5 / v], -1), rtol=1e-13)
    for p in (LogitNormal.from_natural(q.natural), LogitNormal.from_mean(q.mean_params),
              LogitNormal(loc=q.loc, scale=q.scale)):
        assert type(p) is LogitNormal
        assert p.batch_shape == batch_shape
        assert_allclose(p.natural, q.natural, rtol=1e-10)
        assert_allclose(p.loc, loc, rtol=1e-10, atol=1e-12)
        assert_allclose(p.scale, scale, rtol=1e-10)
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = LogitNormal(loc=loc, scale=scale)
    u = q.unconstrained
    assert_allclose(u, np.stack([loc, np.log(scale)], -1), rtol=1e-13, atol=1e-15)
    p = LogitNormal.from_unconstrained(u)
    assert type(p) is LogitNormal
    assert_allclose(p.natural, q.natural, rtol=1e-12)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)

    def mean_from_unconstrained(u):
        m, v = u[..., 0], anp.exp(2 * u[..., 1])
        return anp.stack([m, m**2 + v], axis=-1)

    grad_u = autograd.grad(lambda u: objective_of_mean(mean_from_unconstrained(u)))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-10)


def test_batch_broadcasting():
    q = LogitNormal(loc=np.array([[0.0], [1.0]]), scale=np.array([0.5, 1.0, 2.0]))
    assert q.batch_shape == (2, 3)
    assert q.fisher().shape == (2, 3, 2, 2)
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3)
    assert q.log_prob(np.full((5, 1, 3), 0.3)).shape == (5, 2, 3)
    assert q.mean().shape == q.var().shape == q.entropy().shape == (2, 3)
    assert q.entropy_grad().shape == (2, 3, 2)
    assert q.kl(LogitNormal(loc=0.0, scale=np.ones(3))).shape == (2, 3)
    assert LogitNormal().batch_shape == ()
    assert_allclose(LogitNormal().mean(), 0.5, rtol=1e-15)


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"scale": 0.0}, "scale"),
    ({"scale": -1.0}, "scale"),
    ({"scale": np.inf}, "scale"),
    ({"loc": np.nan}, "loc"),
    ({"loc": [0.0, "a"]}, "loc"),
], ids=lambda x: str(x))
def test_bad_usual_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        LogitNormal(**kwargs)


@pytest.mark.parametrize("eta", [np.zeros(1), np.array([np.inf, -1.0]), np.array([0.5, 1.0])],
                         ids=["size1", "inf", "eta2>0"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        LogitNormal.from_natural(eta)


def test_bad_mean_and_unconstrained_parameters():
    with pytest.raises(ValueError, match="^mean_params:"):
        LogitNormal.from_mean(np.array([[0.0, 1.0], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="^u:"):
        LogitNormal.from_unconstrained(np.zeros(3))


def test_kl_against_another_family():
    q = LogitNormal()
    for other in (MeanFieldGaussian(), LogNormal(), np.zeros(2)):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)


def test_sample_validates_n_and_rng():
    q = LogitNormal()
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
