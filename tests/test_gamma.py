"""Gamma: every identity of the exponential-family theory, checked on random valid
parameters, and the closed forms against scipy.stats.gamma (scale = 1/rate).

q(z | η) = β^α z^{α−1} e^{−βz} / Γ(α), T(z) = (log z, z), η = (α − 1, −β),
μ = (ψ(α) − log β, α/β), A(η) = log Γ(α) − α log β.
"""

from fractions import Fraction

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.scipy.special import digamma as a_digamma
from autograd.scipy.special import gammaln as a_gammaln
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from natvi.families.base import ExponentialFamily
from natvi.families.beta import Beta
from natvi.families.gamma import Gamma

BATCH_SHAPES = [(), (3,), (2, 4)]
SEEDS = [0, 1, 2]
CASES = [(seed, shape) for seed in SEEDS for shape in BATCH_SHAPES]
CASE_IDS = [f"seed{seed}-batch{shape}" for seed, shape in CASES]


def random_params(seed, batch_shape):
    """Random shape and rate (moderate values, so tolerances stay meaningful)."""
    rng = np.random.default_rng(seed)
    shape = rng.uniform(0.3, 5.0, size=batch_shape)
    rate = rng.uniform(0.5, 3.0, size=batch_shape)
    return shape, rate


def random_q(seed, batch_shape):
    return Gamma(*random_params(seed, batch_shape))


def random_vector(seed, batch_shape):
    """A random vector shaped like the natural parameters, (*batch, 2)."""
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (2,))


def objective_of_mean(mu):
    """A smooth, nonlinear test function L(μ) that couples the batch elements."""
    m1, m2 = mu[..., 0], mu[..., 1]
    return (anp.sum(anp.sin(m1) * m2 + anp.log1p(m2**2) + 0.3 * m1**3)
            + 0.1 * anp.sum(m1) ** 2)


def objective_of_moments(shape, rate):
    """A smooth, nonlinear function of the distribution, through its shape and rate."""
    return (anp.sum(anp.sin(shape) * rate + anp.log1p(rate**2) + 0.2 * shape**2 * anp.sqrt(rate))
            + 0.1 * anp.sum(shape) ** 2)


# Parameterizations of the same distribution, written here independently of the library.
def moments_from_natural(eta):
    return eta[..., 0] + 1, -eta[..., 1]


def moments_from_unconstrained(u):
    return anp.exp(u[..., 0]), anp.exp(u[..., 1])


def natural_from_unconstrained(u):
    shape, rate = moments_from_unconstrained(u)
    return anp.stack([shape - 1, -rate], axis=-1)


def log_partition(eta):
    shape, rate = moments_from_natural(eta)
    return a_gammaln(shape) - shape * anp.log(rate)


def moments(q):
    """(shape, rate) of a family, flattened into one vector for comparisons."""
    return np.concatenate([np.ravel(q.shape), np.ravel(q.rate)])


# ---- the identities of the one idea ------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_is_gradient_of_log_partition(seed, batch_shape):
    q = random_q(seed, batch_shape)
    grad_a = autograd.grad(lambda eta: anp.sum(Gamma.log_partition_fn(eta)))
    assert q.mean_params.shape == batch_shape + (2,)
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-12, atol=1e-12)
    assert_allclose(q.log_partition(), log_partition(q.natural), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_hessian_of_log_partition(seed, batch_shape):
    shape, rate = random_params(seed, batch_shape)
    q = Gamma(shape=shape, rate=rate)
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (2, 2)
    hess_a = autograd.hessian(log_partition)
    for idx in np.ndindex(batch_shape):
        assert_allclose(fisher[idx], hess_a(q.natural[idx]), rtol=1e-11, atol=1e-12)
    # and the closed form of DESIGN.md: [[ψ′(α), 1/β], [1/β, α/β²]]
    row0 = np.stack([special.polygamma(1, shape), 1 / rate], -1)
    row1 = np.stack([1 / rate, shape / rate**2], -1)
    assert_allclose(fisher, np.stack([row0, row1], -2), rtol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    t = Gamma.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
    assert t.shape == (n,) + batch_shape + (2,)
    # E[T] = μ, within 5 standard errors
    t_mean = t.mean(axis=0)
    assert np.all(np.abs(t_mean - q.mean_params) < 5 * t.std(axis=0) / np.sqrt(n))
    # Cov[T] = F: each entry is the mean of the products p_ij = (T_i − T̄_i)(T_j − T̄_j),
    # whose standard error is std(p_ij)/√n.
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
    assert_allclose(fv, np.einsum("...ij,...j->...i", fisher, v), rtol=1e-12, atol=1e-12)
    assert_allclose(solved, np.linalg.solve(fisher, v[..., None])[..., 0], rtol=1e-10, atol=1e-12)
    # the closed-form overrides agree with the base class's dense versions
    assert_allclose(solved, ExponentialFamily.fisher_solve(q, v), rtol=1e-10, atol=1e-12)
    assert_allclose(fv, ExponentialFamily.fisher_vector_product(q, v), rtol=1e-12, atol=1e-12)


def test_fisher_solve_at_large_shape():
    # F is nearly singular for large α (det F = (αψ′(α) − 1)/β² ≈ 1/(2αβ²)); the closed form
    # keeps αψ′(α) − 1 free of cancellation. Reference: its asymptotic series.
    alpha, beta = np.array([1e4, 1e8, 3e11]), np.array([3.0, 0.5, 2.0])
    q = Gamma(shape=alpha, rate=beta)
    det = 1 / (2 * alpha) + 1 / (6 * alpha**2) - 1 / (30 * alpha**4)  # αψ′(α) − 1
    v = np.stack([np.ones(3), np.zeros(3)], -1)
    assert_allclose(q.fisher_solve(v), np.stack([alpha / det, -beta / det], -1), rtol=1e-13)


def test_fisher_quadratic_form():
    q = random_q(0, (2, 4))
    v = random_vector(0, (2, 4))
    assert_allclose(q.fisher_quadratic_form(v), np.einsum("...i,...ij,...j->...", v, q.fisher(), v),
                    rtol=1e-10)
    # large shapes, v close to the near-null direction (α, −β) of F: the dense ⟨v, Fv⟩ cancels
    # O(α) terms down to O(1). Exactly, ⟨v, Fv⟩ = α (v₂/β + v₁/α)² + (αψ′(α) − 1) v₁²/α.
    alpha, beta = np.array([1e6, 1e8, 3e10]), np.array([3.0, 0.5, 2.0])
    q = Gamma(shape=alpha, rate=beta)
    v = np.stack([alpha, -beta * np.array([1.0, 1 + 1e-6, 1 - 1e-9])], -1)
    got = q.fisher_quadratic_form(v)
    det = 1 / (2 * alpha) + 1 / (6 * alpha**2) - 1 / (30 * alpha**4)  # αψ′(α) − 1
    for i in range(3):
        a_, b_ = Fraction(v[i, 0]), Fraction(v[i, 1])
        first = Fraction(alpha[i]) * (b_ / Fraction(beta[i]) + a_ / Fraction(alpha[i])) ** 2
        expected = float(first) + det[i] * alpha[i]
        assert got[i] >= 0
        assert_allclose(got[i], expected, rtol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_natural_gradient_is_gradient_in_mean_parameters(seed, batch_shape):
    # F⁻¹ ∇_η L = ∇_μ L: the route through η (autograd through μ(η)) and the direct one.
    q = random_q(seed, batch_shape)

    def objective_of_natural(eta):
        return objective_of_mean(Gamma.mean_from_natural(eta))

    grad_eta = autograd.grad(objective_of_natural)(q.natural)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    assert_allclose(q.fisher_solve(grad_eta), grad_mu, rtol=1e-9, atol=1e-10)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_kl_of_small_step_is_half_fisher_quadratic_form(seed, batch_shape):
    # KL(q_η ‖ q_{η+d}) = ½ dᵀF d + O(|d|³): the relative error shrinks like |d|.
    q = random_q(seed, batch_shape)
    direction = random_vector(seed, batch_shape) * np.abs(q.natural)
    fisher = q.fisher()
    for kl in (Gamma.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * direction
            other = Gamma.from_natural(q.natural + d)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", d, fisher, d))
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5  # O(|d|), not O(1)


def log_density_in_natural(eta, z):
    """log q(z | η) for one element, written in the usual (shape, rate) form."""
    shape, rate = moments_from_natural(eta)
    return shape * anp.log(rate) - a_gammaln(shape) + (shape - 1) * anp.log(z) - rate * z


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_minus_expected_hessian_of_log_density(seed, batch_shape):
    # ∇²_η log q(z | η) = −∇²A(η) for every z, so the expectation holds draw by draw.
    q = random_q(seed, batch_shape)
    draws = q.sample(np.random.default_rng(seed), 4)
    hess = autograd.hessian(log_density_in_natural)
    fisher = q.fisher()
    for idx in np.ndindex(batch_shape):
        hessians = [hess(q.natural[idx], z[idx]) for z in draws]
        for h in hessians:
            assert_allclose(-h, fisher[idx], rtol=1e-9, atol=1e-10)
        assert_allclose(-np.mean(hessians, axis=0), fisher[idx], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_natural_step_is_invariant_to_reparameterization(seed, batch_shape):
    """A natural-gradient step lands on the same distribution, to first order, in natural,
    mean and unconstrained (log α, log β) coordinates; Euclidean steps do not."""
    q = random_q(seed, batch_shape)
    eta, mu, u = q.natural, q.mean_params, q.unconstrained

    def objective(to_moments):
        return lambda theta: objective_of_moments(*to_moments(theta))

    g_eta = autograd.grad(objective(moments_from_natural))(eta)
    g_u = autograd.grad(objective(moments_from_unconstrained))(u)
    # ∇_μ L by the chain rule ∇_η L = (∂μ/∂η)ᵀ ∇_μ L, with ∂μ/∂η the autograd Hessian of A
    hess_a = autograd.hessian(log_partition)
    g_mu = np.empty_like(g_eta)
    fisher_u = np.empty(batch_shape + (2, 2))
    fisher = q.fisher()
    for idx in np.ndindex(batch_shape):
        g_mu[idx] = np.linalg.solve(hess_a(eta[idx]), g_eta[idx])
        jac = autograd.jacobian(natural_from_unconstrained)(u[idx])
        fisher_u[idx] = jac.T @ fisher[idx] @ jac
    # Fisher in (log α, log β): diag(α, −β) F diag(α, −β) = [[α²ψ′(α), −α], [−α, α]]
    shape = q.shape
    assert_allclose(fisher_u[..., 0, 0], shape**2 * special.polygamma(1, shape), rtol=1e-10)
    assert_allclose(fisher_u[..., 0, 1], -shape, rtol=1e-10)
    assert_allclose(fisher_u[..., 1, 1], shape, rtol=1e-10)
    nat_u = np.linalg.solve(fisher_u, g_u[..., None])[..., 0]

    def steps(eps):
        natural = [Gamma.from_natural(eta + eps * q.fisher_solve(g_eta)),
                   Gamma.from_mean(mu + eps * q.fisher_vector_product(g_mu)),
                   Gamma.from_unconstrained(u + eps * nat_u)]
        euclidean = [Gamma.from_natural(eta + eps * g_eta),
                     Gamma.from_mean(mu + eps * g_mu),
                     Gamma.from_unconstrained(u + eps * g_u)]
        return [moments(p) for p in natural], [moments(p) for p in euclidean]

    def spread(points):
        return max(np.max(np.abs(p - points[0])) for p in points[1:])

    eps1, eps2 = 1e-4, 1e-5  # a Euclidean step of 1e-3 in μ can leave the mean domain
    nat1, euc1 = steps(eps1)
    nat2, euc2 = steps(eps2)
    moved = np.max(np.abs(nat2[0] - moments(q)))  # O(ε) displacement of the step itself
    assert moved > 0
    # natural: the three end points differ at O(ε²)
    assert spread(nat2) < 1e-2 * moved
    assert spread(nat2) < spread(nat1) * (eps2 / eps1) ** 2 * 1.5
    # Euclidean: they differ at O(ε), comparable to the step itself
    assert spread(euc2) > 0.1 * moved
    assert spread(euc2) > 100 * spread(nat2)
    assert spread(euc2) > spread(euc1) * (eps2 / eps1) * 0.3


# ---- closed forms against scipy.stats.gamma -------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_closed_forms_match_scipy(seed, batch_shape):
    shape, rate = random_params(seed, batch_shape)
    q = Gamma(shape=shape, rate=rate)
    ref = stats.gamma(shape, scale=1 / rate)
    assert_allclose(q.mean(), ref.mean(), rtol=1e-13)
    assert_allclose(q.var(), ref.var(), rtol=1e-13)
    assert_allclose(q.shape, shape, rtol=1e-13)
    assert_allclose(q.rate, rate, rtol=1e-13)
    assert_allclose(q.entropy(), ref.entropy(), rtol=1e-12, atol=1e-13)
    z = np.random.default_rng(seed + 7).exponential(3.0, size=(5,) + batch_shape)
    assert q.log_prob(z).shape == (5,) + batch_shape
    assert_allclose(q.log_prob(z), ref.logpdf(z), rtol=1e-12, atol=1e-12)
    # the generic exponential-family formulas agree with the overrides
    assert_allclose(ExponentialFamily.log_prob(q, z), q.log_prob(z), rtol=1e-10, atol=1e-10)
    assert_allclose(ExponentialFamily.entropy(q), q.entropy(), rtol=1e-10, atol=1e-12)
    assert_allclose(q.entropy_grad(), -q.natural)
    other = random_q(seed + 50, batch_shape)
    assert_allclose(ExponentialFamily.kl(q, other), q.kl(other), rtol=1e-10, atol=1e-12)
    assert_allclose(q.kl(q), 0.0, atol=1e-12)
    assert np.all(q.kl(other) >= 0)


def test_log_prob_at_the_boundary():
    q = Gamma(shape=[0.5, 1.0, 2.0], rate=2.0)
    ref = stats.gamma([0.5, 1.0, 2.0], scale=0.5)
    assert_allclose(q.log_prob(0.0), ref.logpdf(0.0))  # +inf, log β, −inf
    assert np.all(q.log_prob(-1.0) == -np.inf)
    assert np.all(q.log_prob(np.inf) == -np.inf)
    # tiny shapes and tiny z: the stable form must not hit log 0 or ∞ − ∞
    q = Gamma(shape=[0.01, 0.03], rate=[1.0, 50.0])
    z = np.array([[1e-40, 1e-30], [1e-300, 1e-200]])
    ref = stats.gamma([0.01, 0.03], scale=[1.0, 1 / 50.0]).logpdf(z)
    assert_allclose(q.log_prob(z), ref, rtol=1e-12)


def test_large_shape_entropy_and_log_prob():
    # Direct formulas cancel O(α log α) terms. Entropy: the asymptotic expansion
    # ½ log(2πeα) − 1/(3α) − 1/(12α²) + O(α⁻³) − log β is exact to rounding here.
    alpha, beta = np.array([1e6, 1e9, 1e12]), np.array([0.5, 2.0, 7.0])
    q = Gamma(shape=alpha, rate=beta)
    expected = (0.5 * np.log(2 * np.pi * np.e * alpha) - 1 / (3 * alpha) - 1 / (12 * alpha**2)
                - np.log(beta))
    assert_allclose(q.entropy(), expected, rtol=1e-14)
    # log_prob integrates to one
    for i in range(2):
        m, s = alpha[i] / beta[i], np.sqrt(alpha[i]) / beta[i]
        total, _ = integrate.quad(lambda z, i=i: np.exp(q.log_prob(z)[i]), m - 40 * s, m + 40 * s,
                                  points=[m], epsabs=0, epsrel=1e-13, limit=200)
        assert_allclose(total, 1.0, rtol=1e-11)


def test_kl_matches_numerical_integral():
    q = random_q(0, (3,))
    other = random_q(1, (3,))
    kl = q.kl(other)
    for i in range(3):
        p0 = stats.gamma(q.shape[i], scale=1 / q.rate[i])
        p1 = stats.gamma(other.shape[i], scale=1 / other.rate[i])

        def integrand(t, p0=p0, p1=p1):  # in t = log z, where the integrand is smooth
            z = np.exp(t)
            return np.exp(p0.logpdf(z) + t) * (p0.logpdf(z) - p1.logpdf(z))

        lo, hi = np.log(p0.ppf(1e-20)), np.log(p0.isf(1e-20))  # tails of mass 1e-20 left out
        ref, _ = integrate.quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)
        assert_allclose(kl[i], ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape
    assert z.dtype == np.float64 and np.all(z > 0)
    # mean: SE = sd/√n; variance: SE = √((m₄ − s⁴)/n), with the 4th central moment from the draws
    assert np.all(np.abs(z.mean(axis=0) - q.mean()) < 5 * np.sqrt(q.var() / n))
    c = z - z.mean(axis=0)
    s2 = np.mean(c**2, axis=0)
    se_var = np.sqrt((np.mean(c**4, axis=0) - s2**2) / n)
    assert np.all(np.abs(s2 - q.var()) < 5 * se_var)


def test_sample_tiny_shape_stays_positive():
    # Most of Gamma(0.05)'s mass lies far below 1e-5; the log-space sampler keeps draws positive
    # and the rate applied after the log (a tiny rate scales them back to representable values).
    q = Gamma(shape=[0.05, 0.02], rate=[1.0, 1e-280])
    z = q.sample(np.random.default_rng(0), 20_000)
    assert np.all(np.isfinite(q.log_prob(z[:, :1])))
    assert np.all(z[:, 1] > 0)
    # P(z < t) = P(G < βt) for G ~ Gamma(α): compare the empirical CDF at a few points
    for t in (1e-30, 1e-10, 1e-3):
        expected = special.gammainc(0.05, t)
        se = np.sqrt(expected * (1 - expected) / z.shape[0])
        assert abs(np.mean(z[:, 0] < t) - expected) < 5 * se


def test_same_seed_same_samples():
    q = random_q(3, (2, 4))
    a = q.sample(np.random.default_rng(42), 10)
    b = q.sample(np.random.default_rng(42), 10)
    c = q.sample(np.random.default_rng(43), 10)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# ---- conversions ------------------------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_round_trips(seed, batch_shape):
    shape, rate = random_params(seed, batch_shape)
    q = Gamma(shape=shape, rate=rate)
    assert_allclose(q.natural, np.stack([shape - 1, -rate], -1), rtol=1e-13, atol=1e-15)
    assert_allclose(q.mean_params,
                    np.stack([special.digamma(shape) - np.log(rate), shape / rate], -1),
                    rtol=1e-13, atol=1e-15)
    # natural ↔ mean
    assert_allclose(Gamma.natural_from_mean(Gamma.mean_from_natural(q.natural)), q.natural,
                    rtol=1e-11, atol=1e-12)
    # constructors: from_natural, from_mean, usual parameters
    for p in (Gamma.from_natural(q.natural), Gamma.from_mean(q.mean_params),
              Gamma(shape=q.shape, rate=q.rate)):
        assert type(p) is Gamma
        assert p.batch_shape == batch_shape
        assert_allclose(p.natural, q.natural, rtol=1e-11, atol=1e-12)
        assert_allclose(p.shape, shape, rtol=1e-11)
        assert_allclose(p.rate, rate, rtol=1e-11)
    np.testing.assert_array_equal(Gamma.from_natural(q.natural).natural, q.natural)
    # the natural parameters are read-only
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


def test_natural_from_mean_converges_over_a_wide_range():
    # Newton from Minka's start: the backward error |μ(η̂) − μ| is at rounding level for
    # shapes from 1e-6 to 1e10, and η is recovered where the problem is well conditioned
    # (for large shapes log E[z] − E[log z] ≈ 1/(2α) is a difference of rounded numbers).
    shape = np.logspace(-6, 10, 81)
    rate = np.logspace(3, -3, 81)
    q = Gamma(shape=shape, rate=rate)
    eta = Gamma.natural_from_mean(q.mean_params)
    assert_allclose(Gamma.mean_from_natural(eta), q.mean_params, rtol=1e-14, atol=1e-14)
    moderate = shape < 1e3
    assert_allclose(eta[moderate], q.natural[moderate], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, batch_shape):
    shape, rate = random_params(seed, batch_shape)
    q = Gamma(shape=shape, rate=rate)
    u = q.unconstrained
    assert_allclose(u, np.stack([np.log(shape), np.log(rate)], -1), rtol=1e-13, atol=1e-14)
    p = Gamma.from_unconstrained(u)
    assert_allclose(p.natural, q.natural, rtol=1e-12, atol=1e-14)
    # ∇_u L from ∇_μ L equals autograd through μ(u) = (ψ(e^{u₁}) − u₂, e^{u₁ − u₂})
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)

    def mean_from_unconstrained(u):
        return anp.stack([a_digamma(anp.exp(u[..., 0])) - u[..., 1],
                          anp.exp(u[..., 0] - u[..., 1])], axis=-1)

    grad_u = autograd.grad(lambda u: objective_of_mean(mean_from_unconstrained(u)))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-10)


def test_batch_broadcasting():
    shape = np.array([[0.5], [2.0]])
    rate = np.array([0.5, 1.0, 2.0])
    q = Gamma(shape=shape, rate=rate)
    assert q.batch_shape == (2, 3)
    assert q.natural.shape == (2, 3, 2)
    assert q.fisher().shape == (2, 3, 2, 2)
    assert_allclose(q.shape, np.broadcast_to(shape, (2, 3)))
    assert_allclose(q.rate, np.broadcast_to(rate, (2, 3)))
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3)
    assert q.log_prob(np.ones((5, 1, 3))).shape == (5, 2, 3)
    assert q.entropy().shape == (2, 3)
    assert q.kl(Gamma(shape=1.0, rate=rate)).shape == (2, 3)
    assert q.mean().shape == q.var().shape == (2, 3)
    assert Gamma(shape=1.0, rate=[1.0, 2.0, 3.0, 4.0]).batch_shape == (4,)
    assert Gamma().batch_shape == ()
    assert_allclose(Gamma().natural, [0.0, -1.0])
    assert Gamma.n_params == 2 and Gamma.support == "positive" and Gamma.event_shape == ()


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"shape": 0.0}, "shape"),
    ({"shape": -1.0}, "shape"),
    ({"shape": [1.0, 0.0]}, "shape"),
    ({"shape": np.nan}, "shape"),
    ({"shape": np.inf}, "shape"),
    ({"shape": "a"}, "shape"),
    ({"shape": 1e-17}, "shape"),  # η₁ = shape − 1 rounds to −1
    ({"rate": 0.0}, "rate"),
    ({"rate": [1.0, -2.0]}, "rate"),
    ({"rate": np.inf}, "rate"),
    ({"shape": [1.0, 2.0], "rate": [1.0, 2.0, 3.0]}, "rate"),
], ids=lambda x: str(x))
def test_bad_usual_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        Gamma(**kwargs)


@pytest.mark.parametrize("eta", [
    np.array(1.0),                      # no parameter axis
    np.zeros(3),                        # wrong last-axis size
    np.zeros((4, 1)),
    np.array([0.0, np.nan]),            # non-finite
    np.array([[np.inf, -1.0]]),
    np.array([-1.0, -1.0]),             # shape = 0
    np.array([-2.0, -1.0]),             # shape < 0
    np.array([0.5, 0.0]),               # rate = 0
    np.array([[0.5, -1.0], [0.5, 2.0]]),
], ids=["0d", "size3", "size1", "nan", "inf", "shape=0", "shape<0", "rate=0", "rate<0"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        Gamma.from_natural(eta)


@pytest.mark.parametrize("mu", [
    [0.0, 1.0],                  # log E[z] = E[log z]: Jensen's inequality fails
    [1.0, 2.0],                  # log 2 < 1
    [[-1.0, 1.0], [0.0, 0.5]],
    [0.0, 0.0],                  # E[z] must be > 0
    [0.0, -1.0],
    [np.nan, 1.0],
    [-np.inf, 1.0],
    [-1e20, 1.0],                # shape ≈ 1e-20, not representable as η₁ = shape − 1
    [1.0, 2.0, 3.0],             # wrong size
    [1.0],
], ids=str)
def test_bad_mean_parameters(mu):
    with pytest.raises(ValueError, match="^mean_params:"):
        Gamma.from_mean(np.array(mu))


def test_kl_against_another_family():
    q = Gamma()
    for other in (Beta(), np.zeros(2), stats.gamma(1.0)):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)
        with pytest.raises(ValueError, match="^other:"):
            ExponentialFamily.kl(q, other)


def test_bad_unconstrained():
    for u in ([1.0], [[1.0, 2.0, 3.0]], [np.nan, 0.0], [800.0, 0.0], [0.0, 800.0]):
        with pytest.raises(ValueError, match="^u:"):
            Gamma.from_unconstrained(u)


def test_sample_validates_n_and_rng():
    q = Gamma(shape=2.0, rate=1.0)
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
