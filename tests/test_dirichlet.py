"""Dirichlet: every identity of the exponential-family theory, checked on random valid
parameters, and the closed forms against scipy.stats.dirichlet.

q(z | η) = Π z_k^{α_k − 1} / B(α) on the simplex, T(z) = log z, η = α − 1,
μ = ψ(α) − ψ(Σα), A(η) = Σ log Γ(α_k) − log Γ(Σα). The number of categories K is the last
axis of η; the cases below use K = 2, 3 and 5.
"""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.scipy.special import digamma as a_digamma
from autograd.scipy.special import gammaln as a_gammaln
from numpy.testing import assert_allclose
from scipy import special, stats

from natvi.families.base import ExponentialFamily
from natvi.families.beta import Beta
from natvi.families.dirichlet import Dirichlet
from natvi.families.gamma import Gamma

BATCH_SHAPES = [(), (3,), (2, 4)]
SEEDS = [0, 1, 2]
CASES = [(seed, shape) for seed in SEEDS for shape in BATCH_SHAPES]
CASE_IDS = [f"seed{seed}-K{(2, 3, 5)[seed]}-batch{shape}" for seed, shape in CASES]


def random_alpha(seed, batch_shape):
    """Random concentrations, K = 2, 3, 5 for seeds 0, 1, 2 (moderate values).

    All ≥ 0.6, so that no coordinate of a draw comes within 1.1e-16 of 1 (where float z rounds
    to 1 and the other coordinates to 0) often enough to spoil Monte Carlo moments of log z.
    """
    k = (2, 3, 5)[seed % 3]
    return np.random.default_rng(seed).uniform(0.6, 5.0, size=batch_shape + (k,))


def random_q(seed, batch_shape):
    return Dirichlet(random_alpha(seed, batch_shape))


def random_vector(seed, batch_shape, k):
    """A random vector shaped like the natural parameters, (*batch, K)."""
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (k,))


def objective_of_mean(mu):
    """A smooth, nonlinear test function L(μ) that couples components and batch elements."""
    return (anp.sum(anp.sin(mu[..., :1]) * mu + anp.log1p(mu**2) + 0.3 * mu**3)
            + 0.1 * anp.sum(mu) ** 2)


def objective_of_alpha(alpha):
    """A smooth, nonlinear function of the distribution, through its concentrations."""
    return (anp.sum(anp.sin(alpha) * alpha[..., :1] + anp.log1p(alpha**2))
            + 0.1 * anp.sum(anp.sqrt(alpha)) ** 2)


# Parameterizations of the same distribution, written here independently of the library.
def alpha_from_natural(eta):
    return eta + 1


def alpha_from_unconstrained(u):
    return anp.exp(u)


def natural_from_unconstrained(u):
    return anp.exp(u) - 1


def log_partition(eta):
    alpha = alpha_from_natural(eta)
    return anp.sum(a_gammaln(alpha), axis=-1) - a_gammaln(anp.sum(alpha, axis=-1))


def fisher_table(alpha):
    """The closed form of DESIGN.md: diag(ψ′(α)) − ψ′(Σα) 11ᵀ."""
    k = alpha.shape[-1]
    return (special.polygamma(1, alpha)[..., None, :] * np.eye(k)
            - special.polygamma(1, alpha.sum(-1))[..., None, None])


# ---- the identities of the one idea ------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_is_gradient_of_log_partition(seed, batch_shape):
    q = random_q(seed, batch_shape)
    k = q.n_params
    grad_a = autograd.grad(lambda eta: anp.sum(Dirichlet.log_partition_fn(eta)))
    assert q.mean_params.shape == batch_shape + (k,)
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-12, atol=1e-12)
    assert_allclose(q.log_partition(), log_partition(q.natural), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_hessian_of_log_partition(seed, batch_shape):
    alpha = random_alpha(seed, batch_shape)
    q = Dirichlet(alpha)
    k = alpha.shape[-1]
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (k, k)
    hess_a = autograd.hessian(log_partition)
    for idx in np.ndindex(batch_shape):
        assert_allclose(fisher[idx], hess_a(q.natural[idx]), rtol=1e-11, atol=1e-12)
    assert_allclose(fisher, fisher_table(alpha), rtol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, batch_shape):
    q = random_q(seed, batch_shape)
    k = q.n_params
    n = 100_000 if k < 5 else 40_000
    t = Dirichlet.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
    assert t.shape == (n,) + batch_shape + (k,)
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
    v = random_vector(seed, batch_shape, q.n_params)
    fisher = q.fisher()
    fv = q.fisher_vector_product(v)
    solved = q.fisher_solve(v)
    assert fv.shape == v.shape and solved.shape == v.shape
    assert_allclose(q.fisher_solve(fv), v, rtol=1e-10, atol=1e-12)
    assert_allclose(q.fisher_vector_product(solved), v, rtol=1e-10, atol=1e-12)
    assert_allclose(fv, np.einsum("...ij,...j->...i", fisher, v), rtol=1e-12, atol=1e-12)
    assert_allclose(solved, np.linalg.solve(fisher, v[..., None])[..., 0], rtol=1e-10, atol=1e-12)
    assert_allclose(solved, ExponentialFamily.fisher_solve(q, v), rtol=1e-10, atol=1e-12)
    assert_allclose(fv, ExponentialFamily.fisher_vector_product(q, v), rtol=1e-12, atol=1e-12)


def test_fisher_solve_at_small_and_large_concentrations():
    # small Σα: the Sherman–Morrison denominator G = 1/ψ′(Σα) − Σ 1/ψ′(α_k) taken directly,
    # against the dense solve, which is well conditioned there
    q = Dirichlet([[0.01, 0.02, 0.005], [1e-3, 0.5, 1e-4], [1e-5, 2e-5, 3e-6]])
    v = random_vector(5, (3,), 3)
    assert_allclose(q.fisher_solve(v), np.linalg.solve(q.fisher(), v[..., None])[..., 0],
                    rtol=1e-13)
    assert_allclose(q.fisher_quadratic_form(v),
                    np.einsum("...i,...ij,...j->...", v, q.fisher(), v), rtol=1e-12)
    # large α: the direct G cancels O(Σα) terms. With R(x) = x − 1/ψ′(x)
    # = ½ − 1/(12x) − 1/(24x²) + O(x⁻³), G = Σ R(α_k) − R(Σα).
    alpha = np.array([[1e8, 3e9, 2e8], [5e9, 1e10, 3e11]])
    q = Dirichlet(alpha)

    def r(x):
        return 0.5 - 1 / (12 * x) - 1 / (24 * x**2)

    gap = r(alpha).sum(-1) - r(alpha.sum(-1))
    inv_d = 1 / special.polygamma(1, alpha)
    v = random_vector(6, (2,), 3)
    expected = inv_d * v + inv_d * (np.sum(inv_d * v, -1) / gap)[:, None]
    assert_allclose(q.fisher_solve(v), expected, rtol=1e-13)
    # ⟨u, Fu⟩ along the near-null direction u = 1/ψ′(α) is S ψ′(Σα) G, S = Σ 1/ψ′(α_k)
    got = q.fisher_quadratic_form(inv_d)
    assert np.all(got >= 0)
    assert_allclose(got, inv_d.sum(-1) * special.polygamma(1, alpha.sum(-1)) * gap, rtol=1e-12)


def test_fisher_quadratic_form():
    q = random_q(1, (2, 4))
    v = random_vector(1, (2, 4), 3)
    assert_allclose(q.fisher_quadratic_form(v), np.einsum("...i,...ij,...j->...", v, q.fisher(), v),
                    rtol=1e-10)
    assert np.all(q.fisher_quadratic_form(np.ones(3)) > 0)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_natural_gradient_is_gradient_in_mean_parameters(seed, batch_shape):
    # F⁻¹ ∇_η L = ∇_μ L: the route through η (autograd through μ(η)) and the direct one.
    q = random_q(seed, batch_shape)

    def objective_of_natural(eta):
        return objective_of_mean(Dirichlet.mean_from_natural(eta))

    grad_eta = autograd.grad(objective_of_natural)(q.natural)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)
    assert_allclose(q.fisher_solve(grad_eta), grad_mu, rtol=1e-9, atol=1e-10)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_kl_of_small_step_is_half_fisher_quadratic_form(seed, batch_shape):
    # KL(q_η ‖ q_{η+d}) = ½ dᵀF d + O(|d|³): the relative error shrinks like |d|.
    q = random_q(seed, batch_shape)
    direction = random_vector(seed, batch_shape, q.n_params) * q.alpha
    fisher = q.fisher()
    for kl in (Dirichlet.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * direction
            other = Dirichlet.from_natural(q.natural + d)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", d, fisher, d))
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5  # O(|d|), not O(1)


def log_density_in_natural(eta, z):
    """log q(z | η) for one element, written in the usual α form."""
    alpha = alpha_from_natural(eta)
    return (anp.sum((alpha - 1) * anp.log(z)) - anp.sum(a_gammaln(alpha))
            + a_gammaln(anp.sum(alpha)))


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
    mean and unconstrained (log α) coordinates; Euclidean steps do not."""
    q = random_q(seed, batch_shape)
    eta, mu, u = q.natural, q.mean_params, q.unconstrained
    k = q.n_params

    g_eta = autograd.grad(lambda e: objective_of_alpha(alpha_from_natural(e)))(eta)
    g_u = autograd.grad(lambda u: objective_of_alpha(alpha_from_unconstrained(u)))(u)
    # ∇_μ L by the chain rule ∇_η L = (∂μ/∂η)ᵀ ∇_μ L, with ∂μ/∂η the autograd Hessian of A
    hess_a = autograd.hessian(log_partition)
    g_mu = np.empty_like(g_eta)
    fisher_u = np.empty(batch_shape + (k, k))
    fisher = q.fisher()
    for idx in np.ndindex(batch_shape):
        g_mu[idx] = np.linalg.solve(hess_a(eta[idx]), g_eta[idx])
        jac = autograd.jacobian(natural_from_unconstrained)(u[idx])
        fisher_u[idx] = jac.T @ fisher[idx] @ jac
    # Fisher in log α: diag(α) F diag(α)
    alpha = q.alpha
    assert_allclose(fisher_u, alpha[..., :, None] * fisher_table(alpha) * alpha[..., None, :],
                    rtol=1e-10)
    nat_u = np.linalg.solve(fisher_u, g_u[..., None])[..., 0]

    def steps(eps):
        natural = [Dirichlet.from_natural(eta + eps * q.fisher_solve(g_eta)),
                   Dirichlet.from_mean(mu + eps * q.fisher_vector_product(g_mu)),
                   Dirichlet.from_unconstrained(u + eps * nat_u)]
        euclidean = [Dirichlet.from_natural(eta + eps * g_eta),
                     Dirichlet.from_mean(mu + eps * g_mu),
                     Dirichlet.from_unconstrained(u + eps * g_u)]
        return [np.ravel(p.alpha) for p in natural], [np.ravel(p.alpha) for p in euclidean]

    def spread(points):
        return max(np.max(np.abs(p - points[0])) for p in points[1:])

    eps1, eps2 = 1e-4, 1e-5  # a Euclidean step of 1e-3 in μ can leave the mean domain
    nat1, euc1 = steps(eps1)
    nat2, euc2 = steps(eps2)
    moved = np.max(np.abs(nat2[0] - np.ravel(alpha)))  # O(ε) displacement of the step itself
    assert moved > 0
    assert spread(nat2) < 1e-2 * moved
    assert spread(nat2) < spread(nat1) * (eps2 / eps1) ** 2 * 1.5
    assert spread(euc2) > 0.1 * moved
    assert spread(euc2) > 100 * spread(nat2)
    assert spread(euc2) > spread(euc1) * (eps2 / eps1) * 0.3


# ---- closed forms against scipy.stats.dirichlet ---------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_closed_forms_match_scipy(seed, batch_shape):
    alpha = random_alpha(seed, batch_shape)
    q = Dirichlet(alpha=alpha)
    assert_allclose(q.alpha, alpha, rtol=1e-13)
    z = q.sample(np.random.default_rng(seed + 7), 5)
    log_prob = q.log_prob(z)
    assert log_prob.shape == (5,) + batch_shape
    mean, var, entropy = q.mean(), q.var(), q.entropy()
    assert mean.shape == var.shape == batch_shape + (q.n_params,)
    for idx in np.ndindex(batch_shape):  # scipy.stats.dirichlet does not batch
        ref = stats.dirichlet(alpha[idx])
        assert_allclose(mean[idx], ref.mean(), rtol=1e-13)
        assert_allclose(var[idx], ref.var(), rtol=1e-13)
        assert_allclose(entropy[idx], ref.entropy(), rtol=1e-12, atol=1e-13)
        zi = z[(slice(None),) + idx]
        assert_allclose(log_prob[(slice(None),) + idx], ref.logpdf(zi.T), rtol=1e-12, atol=1e-12)
    # the generic exponential-family formulas agree with the overrides
    assert_allclose(ExponentialFamily.log_prob(q, z), log_prob, rtol=1e-10, atol=1e-10)
    assert_allclose(ExponentialFamily.entropy(q), entropy, rtol=1e-10, atol=1e-12)
    assert_allclose(q.entropy_grad(), -q.natural)
    other = Dirichlet(random_alpha(seed + 3, batch_shape))  # same K
    assert_allclose(ExponentialFamily.kl(q, other), q.kl(other), rtol=1e-10, atol=1e-12)
    assert_allclose(q.kl(q), 0.0, atol=1e-12)
    assert np.all(q.kl(other) >= 0)


def test_two_categories_is_the_beta():
    # Dir(a, b) is the law of (z, 1 − z) for z ~ Beta(a, b), in the same natural parameters
    rng = np.random.default_rng(11)
    a, b = rng.uniform(0.3, 5, 4), rng.uniform(0.3, 5, 4)
    d, beta = Dirichlet(np.stack([a, b], -1)), Beta(a=a, b=b)
    other_d, other_beta = Dirichlet(np.stack([b, a], -1)), Beta(a=b, b=a)
    assert_allclose(d.natural, beta.natural)
    assert_allclose(d.mean_params, beta.mean_params, rtol=1e-14)
    assert_allclose(d.fisher(), beta.fisher(), rtol=1e-14)
    assert_allclose(d.entropy(), beta.entropy(), rtol=1e-14)
    assert_allclose(d.kl(other_d), beta.kl(other_beta), rtol=1e-14)
    z = rng.uniform(size=(6, 4))
    assert_allclose(d.log_prob(np.stack([z, 1 - z], -1)), beta.log_prob(z), rtol=1e-12)
    assert_allclose(d.mean()[..., 0], beta.mean(), rtol=1e-14)
    assert_allclose(d.var()[..., 0], beta.var(), rtol=1e-14)


def test_log_prob_at_the_boundary_and_large_concentrations():
    q = Dirichlet([[0.5, 1.0, 2.0], [1.0, 1.0, 1.0]])
    z = np.array([0.0, 0.4, 0.6])
    assert_allclose(q.log_prob(z), [np.inf, np.log(2.0)])
    assert np.all(q.log_prob(np.array([-0.1, 0.5, 0.6])) == -np.inf)
    # large concentrations: the direct form cancels O(Σα log Σα) terms; compare a K = 2
    # Dirichlet with the Beta, whose stable log-density is checked to integrate to one
    alpha = np.array([3e8, 7e8])
    z = alpha[0] / alpha.sum() + np.array([-2e-5, 0.0, 1e-5, 3e-5])
    z = np.round(z * 2.0**40) / 2.0**40  # so that 1 − z is exact and both see the same point
    expected = Beta(a=alpha[0], b=alpha[1]).log_prob(z)
    assert_allclose(Dirichlet(alpha).log_prob(np.stack([z, 1 - z], -1)), expected, rtol=1e-13)


def test_large_concentration_entropy():
    # H = Σ g(α_k) − g(σ) + (K−1)(log σ − ψ(σ)) + ½ Σ log α_k − (K − ½) log σ with
    # g(x) = ½ log 2π + ½ − 1/(3x) − 1/(12x²) + O(x⁻³) and log σ − ψ(σ) = 1/(2σ) + 1/(12σ²) + …
    alpha = np.array([[1e7, 3e8, 2e9], [4e10, 1e9, 1e8]])
    sigma = alpha.sum(-1)

    def g(x):
        return 0.5 * np.log(2 * np.pi) + 0.5 - 1 / (3 * x) - 1 / (12 * x**2)

    expected = (g(alpha).sum(-1) - g(sigma) + 2 * (1 / (2 * sigma) + 1 / (12 * sigma**2))
                + 0.5 * np.log(alpha).sum(-1) - 2.5 * np.log(sigma))
    assert_allclose(Dirichlet(alpha).entropy(), expected, rtol=1e-14)


def test_kl_matches_monte_carlo():
    # KL(p ‖ r) = E_p[log p(z) − log r(z)], with the log-densities from scipy
    alpha0, alpha1 = np.array([0.8, 2.0, 3.5]), np.array([1.5, 1.0, 4.0])
    n = 200_000
    z = Dirichlet(alpha0).sample(np.random.default_rng(3), n)
    diff = stats.dirichlet(alpha0).logpdf(z.T) - stats.dirichlet(alpha1).logpdf(z.T)
    kl = Dirichlet(alpha0).kl(Dirichlet(alpha1))
    assert abs(diff.mean() - kl) < 5 * diff.std() / np.sqrt(n)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 50_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape + (q.n_params,)
    assert z.dtype == np.float64 and np.all(z > 0)
    assert_allclose(z.sum(-1), 1.0, rtol=1e-15)
    assert np.all(np.abs(z.mean(axis=0) - q.mean()) < 5 * np.sqrt(q.var() / n))
    c = z - z.mean(axis=0)
    s2 = np.mean(c**2, axis=0)
    se_var = np.sqrt((np.mean(c**4, axis=0) - s2**2) / n)
    assert np.all(np.abs(s2 - q.var()) < 5 * se_var)


def test_sample_tiny_concentrations():
    # At α = (1e-3, 2e-3, 3e-3) every Gamma draw usually underflows and normalizing them
    # directly gives 0/0; in log space each draw sits at a vertex, vertex k with probability
    # ≈ α_k / Σα.
    alpha = np.array([1e-3, 2e-3, 3e-3])
    n = 20_000
    z = Dirichlet(alpha).sample(np.random.default_rng(0), n)
    assert np.all(np.isfinite(z))
    assert_allclose(z.sum(-1), 1.0, rtol=1e-15)
    p = np.mean(z > 0.99, axis=0)
    assert np.all(np.abs(p - alpha / alpha.sum()) < 5 * np.sqrt(p * (1 - p) / n) + 0.01)
    # at α = 0.05 the coordinates still resolve: all positive, so log z is finite
    z = Dirichlet(np.full(4, 0.05)).sample(np.random.default_rng(1), n)
    assert np.all(z > 0)


def test_same_seed_same_samples():
    q = random_q(1, (2, 4))
    a = q.sample(np.random.default_rng(42), 10)
    b = q.sample(np.random.default_rng(42), 10)
    c = q.sample(np.random.default_rng(43), 10)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# ---- conversions ------------------------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_round_trips(seed, batch_shape):
    alpha = random_alpha(seed, batch_shape)
    q = Dirichlet(alpha=alpha)
    assert_allclose(q.natural, alpha - 1, rtol=1e-13, atol=1e-15)
    assert_allclose(q.mean_params,
                    special.digamma(alpha) - special.digamma(alpha.sum(-1, keepdims=True)),
                    rtol=1e-13, atol=1e-15)
    assert_allclose(Dirichlet.natural_from_mean(Dirichlet.mean_from_natural(q.natural)),
                    q.natural, rtol=1e-11, atol=1e-12)
    for p in (Dirichlet.from_natural(q.natural), Dirichlet.from_mean(q.mean_params),
              Dirichlet.from_unconstrained(q.unconstrained), Dirichlet(alpha=q.alpha)):
        assert type(p) is Dirichlet
        assert p.batch_shape == batch_shape
        assert p.event_shape == (alpha.shape[-1],) and p.n_params == alpha.shape[-1]
        assert_allclose(p.natural, q.natural, rtol=1e-11, atol=1e-12)
        assert_allclose(p.alpha, alpha, rtol=1e-11)
    np.testing.assert_array_equal(Dirichlet.from_natural(q.natural).natural, q.natural)
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


def test_natural_from_mean_converges_over_a_wide_range():
    # Minka's start, then Newton in log α: the backward error |μ(α̂) − μ| is at rounding
    # level for concentrations from 1e-4 to 1e7 and K up to 20; α is recovered where the
    # problem is well conditioned. (Minka's fixed point alone contracts at rate 1 − O(1/Σα):
    # it would need ~1e5 iterations at Σα = 1e4.)
    rng = np.random.default_rng(5)
    for k in (2, 3, 8, 20):
        alpha = 10 ** rng.uniform(-4, 7, size=(30, k))
        q = Dirichlet(alpha)
        eta = Dirichlet.natural_from_mean(q.mean_params)
        assert_allclose(Dirichlet.mean_from_natural(eta), q.mean_params, rtol=1e-12, atol=1e-13)
    alpha = rng.uniform(0.05, 50, size=(40, 4))
    q = Dirichlet(alpha)
    assert_allclose(Dirichlet.natural_from_mean(q.mean_params), q.natural, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, batch_shape):
    alpha = random_alpha(seed, batch_shape)
    q = Dirichlet(alpha)
    u = q.unconstrained
    assert_allclose(u, np.log(alpha), rtol=1e-13, atol=1e-14)
    assert_allclose(Dirichlet.from_unconstrained(u).natural, q.natural, rtol=1e-12, atol=1e-14)
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)

    def mean_from_unconstrained(u):
        alpha = anp.exp(u)
        return a_digamma(alpha) - a_digamma(anp.sum(alpha, axis=-1))[..., None]

    grad_u = autograd.grad(lambda u: objective_of_mean(mean_from_unconstrained(u)))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-10)


def test_batch_broadcasting_and_event_shape():
    q = Dirichlet(np.full((2, 3, 4), 1.5))
    assert q.batch_shape == (2, 3) and q.event_shape == (4,) and q.n_params == 4
    assert Dirichlet.n_params is None and Dirichlet.support == "simplex"
    assert q.natural.shape == (2, 3, 4)
    assert q.fisher().shape == (2, 3, 4, 4)
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3, 4)
    assert q.log_prob(np.full((5, 1, 3, 4), 0.25)).shape == (5, 2, 3)
    assert q.log_prob(np.full(4, 0.25)).shape == (2, 3)
    assert q.entropy().shape == (2, 3)
    assert q.kl(Dirichlet(np.ones((3, 4)))).shape == (2, 3)
    assert q.mean().shape == q.var().shape == (2, 3, 4)
    assert Dirichlet([1.0, 2.0]).batch_shape == ()
    # the event shape follows each instance's K, however it was built
    for p in (Dirichlet.from_natural(np.zeros(7)), Dirichlet.from_mean(np.full(2, -1.0)),
              Dirichlet.from_unconstrained(np.zeros((5, 3)))):
        assert p.event_shape == (p.natural.shape[-1],) == (p.n_params,)


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [
    1.0,                           # no category axis
    [1.0],                         # K = 1
    np.ones((3, 1)),
    [1.0, 0.0],
    [[1.0, 2.0], [-1.0, 2.0]],
    [1.0, np.nan],
    [np.inf, 1.0],
    ["a", "b"],
    [1.0, 1e-17],                  # η = alpha − 1 rounds to −1
], ids=str)
def test_bad_usual_parameters(alpha):
    with pytest.raises(ValueError, match="^alpha:"):
        Dirichlet(alpha)


@pytest.mark.parametrize("eta", [
    np.array(1.0),
    np.zeros(1),                        # K = 1
    np.zeros((4, 1)),
    np.array([0.0, np.nan, 0.0]),
    np.array([[np.inf, 0.0]]),
    np.array([-1.0, 0.0]),              # α₁ = 0
    np.array([[0.5, 1.0, 2.0], [0.5, 1.0, -3.0]]),
], ids=["0d", "K1", "batch-K1", "nan", "inf", "alpha=0", "batch-alpha<0"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        Dirichlet.from_natural(eta)


@pytest.mark.parametrize("mu", [
    [0.0, -1.0],                 # E[log z_k] must be < 0
    [-1.0, -1.0, 0.1],
    [-0.1, -0.1],                # Σ exp(μ_k) ≥ 1: no distribution on the simplex
    [-1.0, -1.0, -1.0],          # 3/e > 1
    [[-2.0, -2.0, -2.0], [-0.5, -0.5, -2.0]],
    [np.nan, -1.0],
    [-np.inf, -1.0],
    [-1e20, -1e-30],             # α₁ ≈ 1e-20 and a huge α₂: not representable
    [-1.0],                      # K = 1
    -1.0,
], ids=str)
def test_bad_mean_parameters(mu):
    with pytest.raises(ValueError, match="^mean_params:"):
        Dirichlet.from_mean(np.array(mu))


def test_kl_against_another_family_or_another_k():
    q = Dirichlet([1.0, 2.0, 3.0])
    for other in (Dirichlet([1.0, 2.0]), Beta(), Gamma(), np.ones(3)):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)
    for other in (Beta(), np.ones(3)):
        with pytest.raises(ValueError, match="^other:"):
            ExponentialFamily.kl(q, other)


def test_bad_unconstrained():
    for u in (0.0, [1.0], [[1.0], [2.0]], [np.nan, 0.0], [800.0, 0.0], [0.0, -800.0]):
        with pytest.raises(ValueError, match="^u:"):
            Dirichlet.from_unconstrained(u)


def test_sample_validates_n_and_rng():
    q = Dirichlet([2.0, 3.0])
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
