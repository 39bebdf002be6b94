"""Beta: every identity of the exponential-family theory, checked on random valid
parameters, and the closed forms against scipy.stats.beta.

q(z | η) = z^{a−1} (1 − z)^{b−1} / B(a, b), T(z) = (log z, log(1 − z)), η = (a − 1, b − 1),
μ = (ψ(a) − ψ(a + b), ψ(b) − ψ(a + b)), A(η) = log Γ(a) + log Γ(b) − log Γ(a + b).
"""

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
    """Random a and b (moderate values, so tolerances stay meaningful).

    Both ≥ 0.6: for b ≲ 0.3 a draw falls within 1.1e-16 of 1, where float z rounds to 1 and
    log(1 − z) = −inf, often enough to spoil the Monte Carlo moments of T(z).
    """
    rng = np.random.default_rng(seed)
    return rng.uniform(0.6, 5.0, size=batch_shape), rng.uniform(0.6, 5.0, size=batch_shape)


def random_q(seed, batch_shape):
    return Beta(*random_params(seed, batch_shape))


def random_vector(seed, batch_shape):
    """A random vector shaped like the natural parameters, (*batch, 2)."""
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (2,))


def objective_of_mean(mu):
    """A smooth, nonlinear test function L(μ) that couples the batch elements."""
    m1, m2 = mu[..., 0], mu[..., 1]
    return (anp.sum(anp.sin(m1) * m2 + anp.log1p(m2**2) + 0.3 * m1**3)
            + 0.1 * anp.sum(m1) ** 2)


def objective_of_moments(a, b):
    """A smooth, nonlinear function of the distribution, through a and b."""
    return (anp.sum(anp.sin(a) * b + anp.log1p(b**2) + 0.2 * a**2 * anp.sqrt(b))
            + 0.1 * anp.sum(a) ** 2)


# Parameterizations of the same distribution, written here independently of the library.
def moments_from_natural(eta):
    return eta[..., 0] + 1, eta[..., 1] + 1


def moments_from_unconstrained(u):
    return anp.exp(u[..., 0]), anp.exp(u[..., 1])


def natural_from_unconstrained(u):
    return anp.exp(u) - 1


def log_partition(eta):
    a, b = moments_from_natural(eta)
    return a_gammaln(a) + a_gammaln(b) - a_gammaln(a + b)


def moments(q):
    """(a, b) of a family, flattened into one vector for comparisons."""
    return np.concatenate([np.ravel(q.a), np.ravel(q.b)])


def fisher_table(a, b):
    """The closed form of DESIGN.md."""
    c = special.polygamma(1, a + b)
    row0 = np.stack([special.polygamma(1, a) - c, -c], -1)
    row1 = np.stack([-c, special.polygamma(1, b) - c], -1)
    return np.stack([row0, row1], -2)


# ---- the identities of the one idea ------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_is_gradient_of_log_partition(seed, batch_shape):
    q = random_q(seed, batch_shape)
    grad_a = autograd.grad(lambda eta: anp.sum(Beta.log_partition_fn(eta)))
    assert q.mean_params.shape == batch_shape + (2,)
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-12, atol=1e-12)
    assert_allclose(q.log_partition(), special.betaln(q.a, q.b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_hessian_of_log_partition(seed, batch_shape):
    a, b = random_params(seed, batch_shape)
    q = Beta(a=a, b=b)
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (2, 2)
    hess_a = autograd.hessian(log_partition)
    for idx in np.ndindex(batch_shape):
        assert_allclose(fisher[idx], hess_a(q.natural[idx]), rtol=1e-11, atol=1e-12)
    assert_allclose(fisher, fisher_table(a, b), rtol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    t = Beta.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
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


def test_fisher_solve_at_small_and_large_parameters():
    # small a + b: the Sherman–Morrison denominator G = 1/ψ′(a+b) − 1/ψ′(a) − 1/ψ′(b) is
    # taken directly; against the dense solve, which is well conditioned there
    q = Beta(a=[0.01, 1e-3, 0.2], b=[0.02, 0.5, 1e-4])
    v = random_vector(5, (3,))
    assert_allclose(q.fisher_solve(v), np.linalg.solve(q.fisher(), v[..., None])[..., 0],
                    rtol=1e-11)
    # large a, b: F is nearly singular and the direct G cancels O(a + b) terms; with
    # R(x) = x − 1/ψ′(x) = ½ − 1/(12x) − 1/(24x²) + O(x⁻³), G = R(a) + R(b) − R(a+b)
    a, b = np.array([1e8, 3e9, 2e10]), np.array([2e8, 1e8, 5e11])
    c = a + b
    q = Beta(a=a, b=b)
    gap = 0.5 - 1 / (12 * a) - 1 / (12 * b) + 1 / (12 * c) - 1 / (24 * a**2) - 1 / (24 * b**2)
    inv_d = 1 / special.polygamma(1, np.stack([a, b], -1))
    v = random_vector(6, (3,))
    expected = inv_d * v + inv_d * (np.sum(inv_d * v, -1) / gap)[:, None]
    assert_allclose(q.fisher_solve(v), expected, rtol=1e-13)
    # ⟨u, Fu⟩ along the near-null direction u = (1/ψ′(a), 1/ψ′(b)) is S ψ′(a+b) G with
    # S = 1/ψ′(a) + 1/ψ′(b): O(1), from O(a + b) terms in the dense form
    got = q.fisher_quadratic_form(inv_d)
    expected = np.sum(inv_d, -1) * special.polygamma(1, c) * gap
    assert np.all(got >= 0)
    assert_allclose(got, expected, rtol=1e-12)


def test_fisher_quadratic_form():
    q = random_q(0, (2, 4))
    v = random_vector(0, (2, 4))
    assert_allclose(q.fisher_quadratic_form(v), np.einsum("...i,...ij,...j->...", v, q.fisher(), v),
                    rtol=1e-10)
    q = Beta(a=[0.01, 1e-3, 0.2], b=[0.02, 0.5, 1e-4])
    v = random_vector(1, (3,))
    assert_allclose(q.fisher_quadratic_form(v), np.einsum("...i,...ij,...j->...", v, q.fisher(), v),
                    rtol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_natural_gradient_is_gradient_in_mean_parameters(seed, batch_shape):
    # F⁻¹ ∇_η L = ∇_μ L: the route through η (autograd through μ(η)) and the direct one.
    q = random_q(seed, batch_shape)

    def objective_of_natural(eta):
        return objective_of_mean(Beta.mean_from_natural(eta))

    grad_eta = autograd.grad(objective_of_natural)(q.natural)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    assert_allclose(q.fisher_solve(grad_eta), grad_mu, rtol=1e-9, atol=1e-10)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_kl_of_small_step_is_half_fisher_quadratic_form(seed, batch_shape):
    # KL(q_η ‖ q_{η+d}) = ½ dᵀF d + O(|d|³): the relative error shrinks like |d|.
    q = random_q(seed, batch_shape)
    direction = random_vector(seed, batch_shape) * np.abs(q.natural + 1)
    fisher = q.fisher()
    for kl in (Beta.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * direction
            other = Beta.from_natural(q.natural + d)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", d, fisher, d))
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5  # O(|d|), not O(1)


def log_density_in_natural(eta, z):
    """log q(z | η) for one element, written in the usual (a, b) form."""
    a, b = moments_from_natural(eta)
    return ((a - 1) * anp.log(z) + (b - 1) * anp.log1p(-z)
            - a_gammaln(a) - a_gammaln(b) + a_gammaln(a + b))


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
    mean and unconstrained (log a, log b) coordinates; Euclidean steps do not."""
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
    # Fisher in (log a, log b): diag(a, b) F diag(a, b)
    ab = q.natural + 1
    assert_allclose(fisher_u, ab[..., :, None] * fisher_table(q.a, q.b) * ab[..., None, :],
                    rtol=1e-10)
    nat_u = np.linalg.solve(fisher_u, g_u[..., None])[..., 0]

    def steps(eps):
        natural = [Beta.from_natural(eta + eps * q.fisher_solve(g_eta)),
                   Beta.from_mean(mu + eps * q.fisher_vector_product(g_mu)),
                   Beta.from_unconstrained(u + eps * nat_u)]
        euclidean = [Beta.from_natural(eta + eps * g_eta),
                     Beta.from_mean(mu + eps * g_mu),
                     Beta.from_unconstrained(u + eps * g_u)]
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


# ---- closed forms against scipy.stats.beta --------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_closed_forms_match_scipy(seed, batch_shape):
    a, b = random_params(seed, batch_shape)
    q = Beta(a=a, b=b)
    ref = stats.beta(a, b)
    assert_allclose(q.mean(), ref.mean(), rtol=1e-13)
    assert_allclose(q.var(), ref.var(), rtol=1e-13)
    assert_allclose(q.a, a, rtol=1e-13)
    assert_allclose(q.b, b, rtol=1e-13)
    assert_allclose(q.entropy(), ref.entropy(), rtol=1e-12, atol=1e-13)
    z = np.random.default_rng(seed + 7).uniform(size=(5,) + batch_shape)
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
    q = Beta(a=[0.5, 1.0, 2.0], b=[2.0, 1.0, 0.5])
    for z in (0.0, 1.0):
        assert_allclose(q.log_prob(z), stats.beta([0.5, 1.0, 2.0], [2.0, 1.0, 0.5]).logpdf(z))
    assert np.all(q.log_prob(-0.5) == -np.inf) and np.all(q.log_prob(1.5) == -np.inf)
    # tiny z and 1 − z with small parameters: the stable form must not hit log 0 or ∞ − ∞
    q = Beta(a=[0.01, 0.5], b=[0.02, 3.0])
    z = np.array([[1e-200, 1e-300], [1 - 1e-16, 1e-20]])
    assert_allclose(q.log_prob(z), stats.beta([0.01, 0.5], [0.02, 3.0]).logpdf(z), rtol=1e-12)


def test_large_parameter_entropy_and_log_prob():
    # Direct formulas cancel O((a+b) log(a+b)) terms (scipy's entropy is off by ~1e-9 here).
    # With c = a + b, H = ½ log(2πe ab/c³) − 1/(3a) − 1/(3b) + 5/(6c) − 1/(12a²) − 1/(12b²)
    # + 1/(6c²) + O(x⁻³).
    a, b = np.array([1e6, 3e8, 1e10]), np.array([2e6, 1e8, 5e11])
    c = a + b
    q = Beta(a=a, b=b)
    expected = (0.5 * np.log(2 * np.pi * np.e * a * b / c**3) - 1 / (3 * a) - 1 / (3 * b)
                + 5 / (6 * c) - 1 / (12 * a**2) - 1 / (12 * b**2) + 1 / (6 * c**2))
    assert_allclose(q.entropy(), expected, rtol=1e-14)
    # log_prob integrates to one (in the standardized variable)
    for i in range(2):
        m, s = q.mean()[i], np.sqrt(q.var()[i])
        total, _ = integrate.quad(lambda x, i=i, m=m, s=s: s * np.exp(q.log_prob(m + s * x)[i]),
                                  -40, 40, points=[0], epsabs=0, epsrel=1e-13, limit=200)
        assert_allclose(total, 1.0, rtol=1e-12)


def test_kl_matches_numerical_integral():
    q = random_q(0, (3,))
    other = random_q(1, (3,))
    kl = q.kl(other)
    for i in range(3):
        (a0, b0), (a1, b1) = (q.a[i], q.b[i]), (other.a[i], other.b[i])

        def integrand(t, a0=a0, b0=b0, a1=a1, b1=b1):
            # in t = logit z, where the integrand is smooth and log z, log(1 − z) exact
            log_z, log_1mz = special.log_expit(t), special.log_expit(-t)
            log_p0 = (a0 - 1) * log_z + (b0 - 1) * log_1mz - special.betaln(a0, b0)
            log_p1 = (a1 - 1) * log_z + (b1 - 1) * log_1mz - special.betaln(a1, b1)
            return np.exp(log_p0 + log_z + log_1mz) * (log_p0 - log_p1)

        # tails of mass 1e-20 left out; the upper one through 1 − z ~ Beta(b, a)
        lo, hi = special.logit(stats.beta(a0, b0).ppf(1e-20)), -special.logit(
            stats.beta(b0, a0).ppf(1e-20))
        ref, _ = integrate.quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)
        assert_allclose(kl[i], ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape
    assert z.dtype == np.float64 and np.all((z > 0) & (z < 1))
    # mean: SE = sd/√n; variance: SE = √((m₄ − s⁴)/n), with the 4th central moment from the draws
    assert np.all(np.abs(z.mean(axis=0) - q.mean()) < 5 * np.sqrt(q.var() / n))
    c = z - z.mean(axis=0)
    s2 = np.mean(c**2, axis=0)
    se_var = np.sqrt((np.mean(c**4, axis=0) - s2**2) / n)
    assert np.all(np.abs(s2 - q.var()) < 5 * se_var)


def test_sample_tiny_parameters():
    # Beta(0.002, 0.004) sits almost entirely at 0 or 1, with P(z > ½) ≈ a/(a+b) = 1/3; both
    # Gamma draws usually underflow, and a sampler normalizing them directly returns 0/0.
    q = Beta(a=[0.002, 0.05], b=[0.004, 0.05])
    n = 20_000
    z = q.sample(np.random.default_rng(0), n)
    assert np.all((z >= 0) & (z <= 1))
    p = np.mean(z[:, 0] > 0.5)
    assert abs(p - stats.beta(0.002, 0.004).sf(0.5)) < 5 * np.sqrt(p * (1 - p) / n)
    # at 0.05 the draws still resolve near 0 (near 1, float z cannot: about 8% round to 1)
    assert np.all(z[:, 1] > 0)
    expected = stats.beta(0.05, 0.05).cdf(1e-10)
    assert abs(np.mean(z[:, 1] < 1e-10) - expected) < 5 * np.sqrt(expected * (1 - expected) / n)


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
    a, b = random_params(seed, batch_shape)
    q = Beta(a=a, b=b)
    assert_allclose(q.natural, np.stack([a - 1, b - 1], -1), rtol=1e-13, atol=1e-15)
    psi_c = special.digamma(a + b)
    assert_allclose(q.mean_params,
                    np.stack([special.digamma(a) - psi_c, special.digamma(b) - psi_c], -1),
                    rtol=1e-13, atol=1e-15)
    # natural ↔ mean
    assert_allclose(Beta.natural_from_mean(Beta.mean_from_natural(q.natural)), q.natural,
                    rtol=1e-11, atol=1e-12)
    # constructors: from_natural, from_mean, usual parameters
    for p in (Beta.from_natural(q.natural), Beta.from_mean(q.mean_params), Beta(a=q.a, b=q.b)):
        assert type(p) is Beta
        assert p.batch_shape == batch_shape
        assert_allclose(p.natural, q.natural, rtol=1e-11, atol=1e-12)
        assert_allclose(p.a, a, rtol=1e-11)
        assert_allclose(p.b, b, rtol=1e-11)
    np.testing.assert_array_equal(Beta.from_natural(q.natural).natural, q.natural)
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


def test_natural_from_mean_converges_over_a_wide_range():
    # Newton from Minka's start: the backward error |μ(η̂) − μ| is at rounding level from
    # 1e-4 to 1e8, and η is recovered where the problem is well conditioned.
    rng = np.random.default_rng(7)
    a, b = 10 ** rng.uniform(-4, 8, size=200), 10 ** rng.uniform(-4, 8, size=200)
    q = Beta(a=a, b=b)
    eta = Beta.natural_from_mean(q.mean_params)
    assert_allclose(Beta.mean_from_natural(eta), q.mean_params, rtol=1e-12, atol=1e-13)
    moderate = (a > 0.01) & (b > 0.01) & (a + b < 1e3)
    assert moderate.sum() > 20
    assert_allclose(eta[moderate], q.natural[moderate], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, batch_shape):
    a, b = random_params(seed, batch_shape)
    q = Beta(a=a, b=b)
    u = q.unconstrained
    assert_allclose(u, np.stack([np.log(a), np.log(b)], -1), rtol=1e-13, atol=1e-14)
    assert_allclose(Beta.from_unconstrained(u).natural, q.natural, rtol=1e-12, atol=1e-14)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)

    def mean_from_unconstrained(u):
        ab = anp.exp(u)
        return a_digamma(ab) - a_digamma(anp.sum(ab, axis=-1))[..., None]

    grad_u = autograd.grad(lambda u: objective_of_mean(mean_from_unconstrained(u)))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-10)


def test_batch_broadcasting():
    a = np.array([[0.5], [2.0]])
    b = np.array([0.5, 1.0, 2.0])
    q = Beta(a=a, b=b)
    assert q.batch_shape == (2, 3)
    assert q.natural.shape == (2, 3, 2)
    assert q.fisher().shape == (2, 3, 2, 2)
    assert_allclose(q.a, np.broadcast_to(a, (2, 3)))
    assert_allclose(q.b, np.broadcast_to(b, (2, 3)))
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3)
    assert q.log_prob(np.full((5, 1, 3), 0.3)).shape == (5, 2, 3)
    assert q.entropy().shape == (2, 3)
    assert q.kl(Beta(a=1.0, b=b)).shape == (2, 3)
    assert q.mean().shape == q.var().shape == (2, 3)
    assert Beta(a=1.0, b=[1.0, 2.0, 3.0, 4.0]).batch_shape == (4,)
    assert Beta().batch_shape == ()
    assert_allclose(Beta().natural, [0.0, 0.0])
    assert Beta.n_params == 2 and Beta.support == "unit_interval" and Beta.event_shape == ()


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"a": 0.0}, "a"),
    ({"a": -1.0}, "a"),
    ({"a": [1.0, 0.0]}, "a"),
    ({"a": np.nan}, "a"),
    ({"a": np.inf}, "a"),
    ({"a": "x"}, "a"),
    ({"a": 1e-17}, "a"),  # η₁ = a − 1 rounds to −1
    ({"b": 0.0}, "b"),
    ({"b": [1.0, -2.0]}, "b"),
    ({"b": np.nan}, "b"),
    ({"b": 1e-20}, "b"),
    ({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]}, "b"),
], ids=lambda x: str(x))
def test_bad_usual_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        Beta(**kwargs)


@pytest.mark.parametrize("eta", [
    np.array(1.0),
    np.zeros(3),
    np.zeros((4, 1)),
    np.array([0.0, np.nan]),
    np.array([[np.inf, 0.0]]),
    np.array([-1.0, 0.0]),              # a = 0
    np.array([0.0, -1.5]),              # b < 0
    np.array([[0.5, 1.0], [0.5, -3.0]]),
], ids=["0d", "size3", "size1", "nan", "inf", "a=0", "b<0", "batch-b<0"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        Beta.from_natural(eta)


@pytest.mark.parametrize("mu", [
    [0.0, -1.0],                 # E[log z] must be < 0
    [-1.0, 0.5],
    [-0.1, -0.1],                # exp(μ₁) + exp(μ₂) ≥ 1: no distribution on (0, 1)
    [-0.6931, -0.6931],
    [[-2.0, -0.2], [-0.5, -0.5]],
    [np.nan, -1.0],
    [-np.inf, -1.0],
    [-1e20, -1e-30],             # a ≈ 1e-20 and a huge b: not representable
    [-1.0, -1.0, -1.0],          # wrong size
    [-1.0],
], ids=str)
def test_bad_mean_parameters(mu):
    with pytest.raises(ValueError, match="^mean_params:"):
        Beta.from_mean(np.array(mu))


def test_kl_against_another_family():
    q = Beta()
    for other in (Gamma(), np.zeros(2), stats.beta(1.0, 1.0)):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)
        with pytest.raises(ValueError, match="^other:"):
            ExponentialFamily.kl(q, other)


def test_bad_unconstrained():
    for u in ([1.0], [[1.0, 2.0, 3.0]], [np.nan, 0.0], [800.0, 0.0], [0.0, -800.0]):
        with pytest.raises(ValueError, match="^u:"):
            Beta.from_unconstrained(u)


def test_sample_validates_n_and_rng():
    q = Beta(a=2.0, b=3.0)
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
