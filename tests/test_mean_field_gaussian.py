"""MeanFieldGaussian: every identity of the exponential-family theory, checked on
random valid parameters, and the closed forms against scipy.stats.norm.

q(z | η) = N(z; m, v) per batch element, T(z) = (z, z²), η = (m/v, −1/(2v)),
μ = (m, m² + v), A(η) = −η₁²/(4η₂) − ½ log(−2η₂).
"""

from fractions import Fraction

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, stats

from natvi.families import ExponentialFamily, MeanFieldGaussian

BATCH_SHAPES = [(), (3,), (2, 4)]
SEEDS = [0, 1, 2]
CASES = [(seed, shape) for seed in SEEDS for shape in BATCH_SHAPES]
CASE_IDS = [f"seed{seed}-batch{shape}" for seed, shape in CASES]


def random_params(seed, batch_shape):
    """Random loc and scale (moderate values, so tolerances stay meaningful)."""
    rng = np.random.default_rng(seed)
    loc = rng.normal(0.0, 1.5, size=batch_shape)
    scale = rng.uniform(0.3, 2.0, size=batch_shape)
    return loc, scale


def random_q(seed, batch_shape):
    return MeanFieldGaussian(*random_params(seed, batch_shape))


def random_vector(seed, batch_shape):
    """A random vector shaped like the natural parameters, (*batch, 2)."""
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (2,))


def objective_of_mean(mu):
    """A smooth, nonlinear test function L(μ) that couples the batch elements."""
    m1, m2 = mu[..., 0], mu[..., 1]
    return (anp.sum(anp.sin(m1) * m2 + anp.log1p(m2**2) + 0.3 * m1**3)
            + 0.1 * anp.sum(m1) ** 2)


def objective_of_moments(m, v):
    """A smooth, nonlinear function of the distribution, through its mean and variance."""
    return (anp.sum(anp.sin(m) * v + anp.log1p(v**2) + 0.2 * m**2 * anp.sqrt(v))
            + 0.1 * anp.sum(m) ** 2)


# Parameterizations of the same distribution, written here independently of the library.
def moments_from_natural(eta):
    v = -0.5 / eta[..., 1]
    return eta[..., 0] * v, v


def moments_from_mean(mu):
    return mu[..., 0], mu[..., 1] - mu[..., 0] ** 2


def moments_from_unconstrained(u):
    return u[..., 0], anp.exp(2 * u[..., 1])


def natural_from_unconstrained(u):
    m, v = moments_from_unconstrained(u)
    return anp.stack([m / v, -0.5 / v], axis=-1)


def moments(q):
    """(loc, variance) of a family, flattened into one vector for comparisons."""
    return np.concatenate([np.ravel(q.loc), np.ravel(q.variance)])


# ---- the identities of the one idea ------------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_mean_params_is_gradient_of_log_partition(seed, batch_shape):
    q = random_q(seed, batch_shape)
    grad_a = autograd.grad(lambda eta: anp.sum(MeanFieldGaussian.log_partition_fn(eta)))
    assert q.mean_params.shape == batch_shape + (2,)
    assert_allclose(q.mean_params, grad_a(q.natural), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_hessian_of_log_partition(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = MeanFieldGaussian(loc, scale)
    fisher = q.fisher()
    assert fisher.shape == batch_shape + (2, 2)
    hess_a = autograd.hessian(MeanFieldGaussian.log_partition_fn)
    for idx in np.ndindex(batch_shape):
        assert_allclose(fisher[idx], hess_a(q.natural[idx]), rtol=1e-11, atol=1e-12)
    # and the closed form of DESIGN.md: [[v, 2mv], [2mv, 2v² + 4m²v]]
    m, v = loc, scale**2
    row0 = np.stack([v, 2 * m * v], -1)
    row1 = np.stack([2 * m * v, 2 * v**2 + 4 * m**2 * v], -1)
    table = np.stack([row0, row1], -2)
    assert_allclose(fisher, table, rtol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_fisher_is_monte_carlo_covariance_of_sufficient_statistics(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    t = MeanFieldGaussian.sufficient_statistics(q.sample(np.random.default_rng(seed), n))
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


def test_fisher_quadratic_form():
    q = random_q(0, (2, 4))
    v = random_vector(0, (2, 4))
    assert_allclose(q.fisher_quadratic_form(v), np.einsum("...i,...ij,...j->...", v, q.fisher(), v),
                    rtol=1e-10)
    # tiny variance, large mean: ⟨v, Fv⟩ against exact rational arithmetic on the same floats
    q = MeanFieldGaussian(loc=[1e4, -3e3, 50.0], scale=[1e-6, 1e-5, 1e-8])
    v = np.array([[1.0, -0.5e-4], [2.0, 1 / 3e3], [1.0, -1e-2]])
    got = q.fisher_quadratic_form(v)
    for i in range(3):
        m, var = Fraction(q.loc[i]), Fraction(q.variance[i])
        a, b = Fraction(v[i, 0]), Fraction(v[i, 1])
        exact = var * a * a + 4 * m * var * a * b + (2 * var**2 + 4 * m**2 * var) * b * b
        assert got[i] >= 0
        assert_allclose(got[i], float(exact), rtol=1e-9)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_natural_gradient_is_gradient_in_mean_parameters(seed, batch_shape):
    # F⁻¹ ∇_η L = ∇_μ L: the route through η (autograd through μ(η)) and the direct one.
    q = random_q(seed, batch_shape)
    def objective_of_natural(eta):
        return objective_of_mean(MeanFieldGaussian.mean_from_natural(eta))

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
    for kl in (MeanFieldGaussian.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * direction
            other = MeanFieldGaussian.from_natural(q.natural + d)
            exact = np.sum(kl(q, other))
            quadratic = 0.5 * np.sum(np.einsum("...i,...ij,...j->...", d, fisher, d))
            rel_errors.append(abs(exact - quadratic) / quadratic)
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5  # O(|d|), not O(1)


def log_density_in_natural(eta, z):
    """log q(z | η) for one element, written in the usual (m, v) form."""
    m, v = moments_from_natural(eta)
    return -0.5 * anp.log(2 * np.pi * v) - (z - m) ** 2 / (2 * v)


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
    """A natural-gradient step lands on the same distribution, to first order, in
    natural, mean and unconstrained (m, log s) coordinates; Euclidean steps do not."""
    q = random_q(seed, batch_shape)
    eta, mu, u = q.natural, q.mean_params, q.unconstrained

    def objective(to_moments):
        return lambda theta: objective_of_moments(*to_moments(theta))

    g_eta = autograd.grad(objective(moments_from_natural))(eta)
    g_mu = autograd.grad(objective(moments_from_mean))(mu)
    g_u = autograd.grad(objective(moments_from_unconstrained))(u)

    # Fisher in μ-coordinates is F⁻¹ (∂η/∂μ = F⁻¹), so its natural step is F ∇_μ L.
    # Fisher in u-coordinates is Jᵀ F J with J = ∂η/∂u; for (m, log s) it is diag(1/v, 2).
    fisher = q.fisher()
    fisher_u = np.empty(batch_shape + (2, 2))
    for idx in np.ndindex(batch_shape):
        jac = autograd.jacobian(natural_from_unconstrained)(u[idx])
        fisher_u[idx] = jac.T @ fisher[idx] @ jac
    v = q.variance
    assert_allclose(fisher_u[..., 0, 0], 1 / v, rtol=1e-10)
    assert_allclose(fisher_u[..., 1, 1], 2.0, rtol=1e-10)
    assert_allclose(fisher_u[..., 0, 1], 0.0, atol=1e-10)
    nat_u = np.linalg.solve(fisher_u, g_u[..., None])[..., 0]

    def steps(eps):
        natural = [MeanFieldGaussian.from_natural(eta + eps * q.fisher_solve(g_eta)),
                   MeanFieldGaussian.from_mean(mu + eps * q.fisher_vector_product(g_mu)),
                   MeanFieldGaussian.from_unconstrained(u + eps * nat_u)]
        euclidean = [MeanFieldGaussian.from_natural(eta + eps * g_eta),
                     MeanFieldGaussian.from_mean(mu + eps * g_mu),
                     MeanFieldGaussian.from_unconstrained(u + eps * g_u)]
        return [moments(p) for p in natural], [moments(p) for p in euclidean]

    def spread(points):
        return max(np.max(np.abs(p - points[0])) for p in points[1:])

    eps1, eps2 = 1e-3, 1e-4
    nat1, euc1 = steps(eps1)
    nat2, euc2 = steps(eps2)
    moved = np.max(np.abs(nat2[0] - moments(q)))  # O(ε) displacement of the step itself
    assert moved > 0
    # natural: the three end points differ at O(ε²) — a tenth of ε, a hundredth of the gap
    assert spread(nat2) < 1e-2 * moved
    assert spread(nat2) < spread(nat1) * (eps2 / eps1) ** 2 * 1.5
    # Euclidean: they differ at O(ε), comparable to the step itself
    assert spread(euc2) > 0.3 * moved
    assert spread(euc2) > 100 * spread(nat2)
    assert spread(euc2) > spread(euc1) * (eps2 / eps1) * 0.3


# ---- closed forms against scipy.stats.norm -------------------------------------------


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_closed_forms_match_scipy(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = MeanFieldGaussian(loc=loc, scale=scale)
    ref = stats.norm(loc, scale)
    assert_allclose(q.mean(), ref.mean(), rtol=1e-13)
    assert_allclose(q.var(), ref.var(), rtol=1e-13)
    assert_allclose(q.loc, loc, rtol=1e-13, atol=1e-15)
    assert_allclose(q.scale, scale, rtol=1e-13)
    assert_allclose(q.entropy(), ref.entropy(), rtol=1e-12, atol=1e-14)
    z = np.random.default_rng(seed + 7).normal(0, 3, size=(5,) + batch_shape)
    assert q.log_prob(z).shape == (5,) + batch_shape
    assert_allclose(q.log_prob(z), ref.logpdf(z), rtol=1e-12, atol=1e-12)
    # the generic exponential-family formulas agree with the overrides
    assert_allclose(ExponentialFamily.log_prob(q, z), q.log_prob(z), rtol=1e-10, atol=1e-10)
    assert_allclose(ExponentialFamily.entropy(q), q.entropy(), rtol=1e-10, atol=1e-12)
    other = random_q(seed + 50, batch_shape)
    assert_allclose(ExponentialFamily.kl(q, other), q.kl(other), rtol=1e-10, atol=1e-12)
    assert_allclose(q.kl(q), 0.0, atol=1e-12)
    assert np.all(q.kl(other) >= 0)


def test_kl_matches_numerical_integral():
    q = random_q(0, (3,))
    other = random_q(1, (3,))
    kl = q.kl(other)
    for i in range(3):
        p0, p1 = stats.norm(q.loc[i], q.scale[i]), stats.norm(other.loc[i], other.scale[i])
        ref, _ = integrate.quad(lambda z, p0=p0, p1=p1: p0.pdf(z) * (p0.logpdf(z) - p1.logpdf(z)),
                                -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12)
        assert_allclose(kl[i], ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_sample_moments(seed, batch_shape):
    q = random_q(seed, batch_shape)
    n = 100_000
    z = q.sample(np.random.default_rng(seed + 100), n)
    assert z.shape == (n,) + batch_shape
    # mean: SE = scale/√n; variance: SE = √((m₄ − s⁴)/n), with the 4th central moment from the draws
    assert np.all(np.abs(z.mean(axis=0) - q.mean()) < 5 * q.scale / np.sqrt(n))
    c = z - z.mean(axis=0)
    s2 = np.mean(c**2, axis=0)
    se_var = np.sqrt((np.mean(c**4, axis=0) - s2**2) / n)
    assert np.all(np.abs(s2 - q.var()) < 5 * se_var)


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
    loc, scale = random_params(seed, batch_shape)
    q = MeanFieldGaussian(loc=loc, scale=scale)
    v = scale**2
    assert_allclose(q.natural, np.stack([loc / v, -0.5 / v], -1), rtol=1e-13)
    assert_allclose(q.mean_params, np.stack([loc, loc**2 + v], -1), rtol=1e-13)
    # natural ↔ mean
    assert_allclose(MeanFieldGaussian.natural_from_mean(MeanFieldGaussian.mean_from_natural(q.natural)),
                    q.natural, rtol=1e-10)
    # constructors: from_natural, from_mean, usual parameters
    for p in (MeanFieldGaussian.from_natural(q.natural), MeanFieldGaussian.from_mean(q.mean_params),
              MeanFieldGaussian(loc=q.loc, scale=q.scale)):
        assert type(p) is MeanFieldGaussian
        assert p.batch_shape == batch_shape
        assert_allclose(p.natural, q.natural, rtol=1e-10)
        assert_allclose(p.loc, loc, rtol=1e-10, atol=1e-12)
        assert_allclose(p.scale, scale, rtol=1e-10)
    np.testing.assert_array_equal(MeanFieldGaussian.from_natural(q.natural).natural, q.natural)
    # the natural parameters are read-only
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_unconstrained_round_trip_and_chain_rule(seed, batch_shape):
    loc, scale = random_params(seed, batch_shape)
    q = MeanFieldGaussian(loc=loc, scale=scale)
    u = q.unconstrained
    assert_allclose(u, np.stack([loc, np.log(scale)], -1), rtol=1e-13, atol=1e-15)
    p = MeanFieldGaussian.from_unconstrained(u)
    assert_allclose(p.natural, q.natural, rtol=1e-12)
    # ∇_u L from ∇_μ L equals autograd through μ(u) = (m, m² + e^{2 log s})
    grad_mu = autograd.grad(objective_of_mean)(q.mean_params)

    def mean_from_unconstrained(u):
        m, v = moments_from_unconstrained(u)
        return anp.stack([m, m**2 + v], axis=-1)

    grad_u = autograd.grad(lambda u: objective_of_mean(mean_from_unconstrained(u)))(u)
    assert_allclose(q.unconstrained_grad(grad_mu), grad_u, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed, batch_shape", CASES, ids=CASE_IDS)
def test_grad_mean_from_moments_is_chain_rule(seed, batch_shape):
    q = random_q(seed, batch_shape)
    grad_m, grad_v = autograd.grad(objective_of_moments, argnum=(0, 1))(q.loc, q.variance)
    expected = autograd.grad(lambda mu: objective_of_moments(*moments_from_mean(mu)))(q.mean_params)
    assert_allclose(q.grad_mean_from_moments(grad_m, grad_v), expected, rtol=1e-10, atol=1e-10)


def test_batch_broadcasting():
    loc = np.array([[0.0], [1.0]])
    scale = np.array([0.5, 1.0, 2.0])
    q = MeanFieldGaussian(loc=loc, scale=scale)
    assert q.batch_shape == (2, 3)
    assert q.natural.shape == (2, 3, 2)
    assert q.fisher().shape == (2, 3, 2, 2)
    assert_allclose(q.loc, np.broadcast_to(loc, (2, 3)))
    assert_allclose(q.scale, np.broadcast_to(scale, (2, 3)))
    assert q.sample(np.random.default_rng(0), 7).shape == (7, 2, 3)
    assert q.log_prob(np.zeros((5, 1, 3))).shape == (5, 2, 3)
    assert q.entropy().shape == (2, 3)
    assert q.kl(MeanFieldGaussian(loc=0.0, scale=scale)).shape == (2, 3)
    # a scalar loc against an array of scales, and the scalar default
    assert MeanFieldGaussian(loc=1.0, scale=[1.0, 2.0, 3.0, 4.0]).batch_shape == (4,)
    assert MeanFieldGaussian().batch_shape == ()
    assert_allclose(MeanFieldGaussian().natural, [0.0, -0.5])


# ---- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"scale": 0.0}, "scale"),
    ({"scale": -1.0}, "scale"),
    ({"scale": [1.0, 0.0]}, "scale"),
    ({"scale": np.nan}, "scale"),
    ({"scale": np.inf}, "scale"),
    ({"loc": np.nan}, "loc"),
    ({"loc": [0.0, np.inf]}, "loc"),
    ({"loc": "a"}, "loc"),
], ids=lambda x: str(x))
def test_bad_usual_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        MeanFieldGaussian(**kwargs)


@pytest.mark.parametrize("eta", [
    np.array(1.0),                      # no parameter axis
    np.zeros(3),                        # wrong last-axis size
    np.zeros((4, 1)),
    np.array([0.0, np.nan]),            # non-finite
    np.array([[np.inf, -1.0]]),
    np.array([0.5, 0.0]),               # η₂ >= 0
    np.array([[0.5, -1.0], [0.5, 2.0]]),
], ids=["0d", "size3", "size1", "nan", "inf", "eta2=0", "eta2>0"])
def test_bad_natural_parameters(eta):
    with pytest.raises(ValueError, match="^natural:"):
        MeanFieldGaussian.from_natural(eta)


def test_bad_mean_parameters():
    # μ₂ − μ₁² must be a positive variance
    with pytest.raises(ValueError, match="^mean_params:"):
        MeanFieldGaussian.from_mean(np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="^mean_params:"):
        MeanFieldGaussian.from_mean(np.array([[0.0, 1.0], [2.0, 3.0]]))


def test_kl_against_another_family():
    class Other(ExponentialFamily):
        n_params = 2

        @staticmethod
        def in_domain(eta):
            return np.ones(eta.shape[:-1], dtype=bool)

    q = MeanFieldGaussian()
    for other in (Other(np.zeros(2)), np.zeros(2), stats.norm(0, 1)):
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)
        with pytest.raises(ValueError, match="^other:"):
            ExponentialFamily.kl(q, other)


# ---- boundary checks found in review --------------------------------------------------
def test_wrong_last_axis_and_extreme_scales_name_the_argument():
    with pytest.raises(ValueError, match="^mean_params:"):
        MeanFieldGaussian.from_mean([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="^mean_params:"):
        MeanFieldGaussian.from_mean([1.0])
    with pytest.raises(ValueError, match="^u:"):
        MeanFieldGaussian.from_unconstrained([1.0])
    for scale in (1e-200, 1e200):
        with pytest.raises(ValueError, match="^scale:"):
            MeanFieldGaussian(loc=0.0, scale=scale)


def test_sample_validates_n_and_rng():
    q = MeanFieldGaussian(loc=0.0, scale=1.0)
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    with pytest.raises(ValueError, match="^rng:"):
        q.sample(0, 3)
