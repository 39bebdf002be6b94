"""The conformance suite: every identity of the exponential-family theory, for every family
of the registry (tests/family_registry.py), on random valid parameters with fixed seeds.

For q(z | η) = h(z) exp(η·T(z) − A(η)): μ = ∇A(η) = E[T(z)], F = ∇²A(η) = Cov[T(z)] =
−E[∇²_η log q], F⁻¹∇_η L = ∇_μ L, KL(q_η ‖ q_{η+d}) = ½ dᵀF d + O(|d|³), and
H = A − η·μ − E[log h]. A, the parameter maps and the densities are the registry's
oracles, written independently of natvi. Rounding-level identities hold to 1e-13 … 1e-9
(times the spec's ``loose`` factor); Monte Carlo ones to five standard errors estimated from
the same draws.
"""

import inspect
from typing import NamedTuple

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from family_registry import REGISTRY, SUPPORTS
from numpy.testing import assert_allclose
from scipy import stats

from natvi.families import ExponentialFamily

#: Monte Carlo estimates must be within this many standard errors of the truth
Z = 5


class Case(NamedTuple):
    """One family at one seed and batch shape; ``size`` is K or d (None for fixed sizes)."""

    spec: type
    seed: int
    batch_shape: tuple
    size: int | None

    def __str__(self):
        size = "" if self.size is None else f"-size{self.size}"
        return f"{self.spec.cls.__name__}-seed{self.seed}{size}-batch{self.batch_shape}"

    def rng(self, stream):
        """An independent generator per use (``stream``) and case."""
        return np.random.default_rng([stream, self.seed])

    def params(self, stream=0):
        return self.spec.params(self.rng(stream), self.batch_shape, self.size)

    def family(self, stream=0):
        return self.spec.cls(**self.params(stream))

    def direction(self, stream=1):
        """A random direction of the family's parameter space, shape (*batch, k)."""
        k = self.family().natural.shape[-1]
        return self.spec.project(self.rng(stream).normal(size=self.batch_shape + (k,)))


CASES = [Case(spec, seed, batch_shape, spec.sizes[i % len(spec.sizes)])
         for spec in REGISTRY for i, seed in enumerate(spec.seeds)
         for batch_shape in spec.batch_shapes]
SPECS = pytest.mark.parametrize("spec", REGISTRY, ids=lambda spec: spec.cls.__name__)
each_case = pytest.mark.parametrize("case", CASES, ids=str)


def elements(batch_shape):
    return list(np.ndindex(batch_shape))


def element(params, idx):
    return {name: value[idx] for name, value in params.items()}


def mean_oracle(spec):
    """μ(η) = ∇A(η) of the oracle A, elementwise over the batch."""
    return autograd.grad(lambda eta: anp.sum(spec.log_partition(eta)))


def objective(mu):
    """A smooth, nonlinear L(μ) that couples the parameters and the batch elements."""
    return (anp.sum(anp.sin(mu[..., :1]) * mu + anp.log1p(mu**2) + 0.3 * mu**3)
            + 0.1 * anp.sum(mu) ** 2)


def quadratic(v, f, w):
    return np.einsum("...i,...ij,...j->...", v, f, w)


def assert_monte_carlo(values, expected):
    """The mean of ``values`` (draws on axis 0) within Z standard errors of ``expected``."""
    err = np.abs(values.mean(axis=0) - expected)
    se = values.std(axis=0) / np.sqrt(len(values))
    assert np.all(err < Z * se), f"off by {np.max(err / se):.2f} standard errors"


# ---- A, μ and F --------------------------------------------------------------------------
@each_case
def test_log_partition_and_mean_parameters(case):
    spec, q = case.spec, case.family()
    eta, tol = q.natural, 1e-12 * spec.loose
    assert_allclose(q.log_partition(), spec.log_partition(eta), rtol=tol, atol=1e-14)
    assert_allclose(spec.cls.log_partition_fn(eta), spec.log_partition(eta), rtol=tol, atol=1e-14)
    mu = mean_oracle(spec)(eta)
    assert q.mean_params.shape == eta.shape
    assert_allclose(q.mean_params, mu, rtol=tol, atol=1e-14)
    assert_allclose(spec.cls.mean_from_natural(eta), mu, rtol=tol, atol=1e-14)
    # the family's own A is differentiable by autograd, to the same μ
    grad_a = autograd.grad(lambda eta: anp.sum(spec.cls.log_partition_fn(eta)))
    assert_allclose(grad_a(eta), mu, rtol=tol, atol=1e-14)


@each_case
def test_fisher_is_hessian_of_log_partition(case):
    spec, q = case.spec, case.family()
    fisher, k = q.fisher(), q.natural.shape[-1]
    assert fisher.shape == case.batch_shape + (k, k)
    np.testing.assert_array_equal(fisher, np.swapaxes(fisher, -1, -2))
    hess = autograd.hessian(spec.log_partition)
    # F is positive definite on the directions the parameters move in
    rank = np.linalg.matrix_rank(spec.project(np.eye(k)))
    # ∂μ/∂η = F, also through the family's own (autograd-differentiable) μ(η)
    jac = autograd.jacobian(spec.cls.mean_from_natural)
    for idx in elements(case.batch_shape):
        h, tol = hess(q.natural[idx]), 1e-12 * spec.loose
        assert_allclose(fisher[idx], h, rtol=tol, atol=0.01 * tol * np.max(np.abs(h)))
        assert_allclose(jac(q.natural[idx]), h, rtol=10 * tol, atol=0.1 * tol * np.max(np.abs(h)))
        assert np.linalg.matrix_rank(fisher[idx]) == rank


@each_case
def test_fisher_is_covariance_of_sufficient_statistics(case):
    q = case.family()
    k = q.natural.shape[-1]
    # Cov[⟨uᵢ, T⟩, ⟨uⱼ, T⟩] = ⟨uᵢ, F uⱼ⟩: on all coordinates, or on 4 random directions of
    # the large full-rank Gaussians
    dirs = (np.broadcast_to(np.eye(k), case.batch_shape + (k, k)) if k <= 5 else
            np.stack([case.direction(10 + r) for r in range(4)], axis=-2))
    r = dirs.shape[-2]
    n = min(100_000, 8_000_000 // (int(np.prod(case.batch_shape)) * r * r))
    t = q.sufficient_statistics(q.sample(case.rng(2), n))
    assert t.shape == (n,) + case.batch_shape + (k,)
    assert_monte_carlo(t, q.mean_params)
    proj = np.einsum("n...k,...rk->n...r", t, dirs)
    c = proj - proj.mean(axis=0)
    expected = np.einsum("...rk,...sk->...rs", dirs, np.einsum("...ij,...rj->...ri",
                                                               q.fisher(), dirs))
    assert_monte_carlo(c[..., :, None] * c[..., None, :], expected)


@each_case
def test_fisher_operations_agree(case):
    spec, q = case.spec, case.family()
    v, fisher, tol = case.direction(), q.fisher(), spec.loose
    fv, solved = q.fisher_vector_product(v), q.fisher_solve(v)
    assert fv.shape == solved.shape == v.shape
    assert_allclose(q.fisher_solve(fv), v, rtol=1e-10 * tol, atol=1e-12 * tol)
    assert_allclose(q.fisher_vector_product(solved), v, rtol=1e-10 * tol, atol=1e-12 * tol)
    assert_allclose(fv, np.einsum("...ij,...j->...i", fisher, v), rtol=1e-13, atol=1e-14)
    # on the family's directions the solve is the inverse of F there: its pseudo-inverse
    assert_allclose(solved, np.einsum("...ij,...j->...i", np.linalg.pinv(fisher), v),
                    rtol=1e-10 * tol**2, atol=1e-12 * tol**2)
    # the closed-form overrides agree with the base class's dense versions (its solve where
    # F is invertible: not for a full-rank Gaussian with d ≥ 2)
    assert_allclose(fv, ExponentialFamily.fisher_vector_product(q, v), rtol=1e-13, atol=1e-14)
    k = v.shape[-1]
    if np.linalg.matrix_rank(spec.project(np.eye(k))) == k:
        assert_allclose(solved, ExponentialFamily.fisher_solve(q, v), rtol=1e-10, atol=1e-12)
    quad = q.fisher_quadratic_form(v)
    assert quad.shape == case.batch_shape and np.all(quad >= 0)
    assert_allclose(quad, quadratic(v, fisher, v), rtol=1e-10)


@each_case
def test_natural_gradient_is_gradient_in_mean_parameters(case):
    # F⁻¹ ∇_η L = ∇_μ L, with ∇_η L by autograd through the oracle μ(η)
    spec, q = case.spec, case.family()
    mean = mean_oracle(spec)
    grad_eta = autograd.grad(lambda eta: objective(mean(eta)))(q.natural)
    grad_mu = autograd.grad(objective)(mean(q.natural))
    tol = spec.loose
    assert_allclose(q.fisher_solve(grad_eta), spec.project(grad_mu), rtol=1e-9 * tol,
                    atol=1e-10 * tol)
    assert_allclose(q.fisher_vector_product(grad_mu), grad_eta, rtol=1e-10, atol=1e-12)


# ---- KL divergences ----------------------------------------------------------------------
@each_case
def test_kl_of_small_step_is_half_fisher_quadratic_form(case):
    # KL(q_η ‖ q_{η+d}) = ½ dᵀF d + O(|d|³): the relative error shrinks like |d|. Steps of
    # Fisher length δ in a random direction, per batch element.
    q = case.family()
    fisher, v = q.fisher(), case.direction()
    unit = v / np.sqrt(quadratic(v, fisher, v))[..., None]
    for kl in (case.spec.cls.kl, ExponentialFamily.kl):
        rel_errors = []
        for delta in (1e-2, 1e-3):
            d = delta * unit
            exact = kl(q, case.spec.cls.from_natural(q.natural + d))
            half_quadratic = 0.5 * quadratic(d, fisher, d)
            rel_errors.append(np.max(np.abs(exact - half_quadratic) / half_quadratic))
        assert rel_errors[1] < 1e-2
        assert rel_errors[1] < rel_errors[0] / 5  # O(|d|), not O(1)


@each_case
def test_kl_is_the_bregman_divergence_of_log_partition(case):
    # KL(q ‖ r) = A(η_r) − A(η_q) − (η_r − η_q)·μ_q, with the oracle A
    spec, q, other = case.spec, case.family(), case.family(stream=3)
    a = spec.log_partition
    eta, eta_r = q.natural, other.natural
    expected = a(eta_r) - a(eta) - np.sum((eta_r - eta) * mean_oracle(spec)(eta), axis=-1)
    tol = spec.loose
    assert_allclose(q.kl(other), expected, rtol=1e-10 * tol, atol=1e-12 * tol)
    assert_allclose(ExponentialFamily.kl(q, other), expected, rtol=1e-10 * tol, atol=1e-12 * tol)
    assert np.all(q.kl(other) >= 0)
    assert_allclose(q.kl(q), 0.0, atol=1e-12)


# ---- F = −E[∇²_η log q] ------------------------------------------------------------------
@each_case
def test_fisher_is_minus_expected_hessian_of_log_density(case):
    # ∇²_η log q(z | η) = −∇²A(η) for every z, so the expectation holds draw by draw; over a
    # finite support, the expectation is also taken exactly
    spec, q = case.spec, case.family()
    hess = autograd.hessian(lambda eta, z: spec.log_density(z, **spec.usual(eta)))
    fisher, finite = q.fisher(), spec.support_values(q)
    draws = q.sample(case.rng(4), 4) if finite is None else np.array(finite)
    tol = 1e-9 * spec.loose
    for idx in elements(case.batch_shape):
        eta = q.natural[idx]
        hessians = [hess(eta, z if finite is not None else z[idx]) for z in draws]
        # the full-rank Gaussian's Hessians go through d×d inverses: absolute errors there
        # follow the largest entry
        atol = 0.1 * tol * (np.max(np.abs(hessians)) if spec.loose > 1 else 1.0)
        for h in hessians:
            assert_allclose(-h, fisher[idx], rtol=tol, atol=atol)
        if finite is not None:
            weights = np.exp([spec.log_density(z, **spec.usual(eta)) for z in finite])
            assert_allclose(-np.tensordot(weights, hessians, axes=1), fisher[idx], rtol=tol)


# ---- parameterizations -------------------------------------------------------------------
@each_case
def test_natural_mean_and_usual_round_trips(case):
    spec, cls, params = case.spec, case.spec.cls, case.params()
    q = cls(**params)
    eta, tol = q.natural, spec.loose
    assert_allclose(eta, spec.natural(params), rtol=1e-13 * tol, atol=1e-15 * tol)
    for name, value in spec.usual(eta).items():
        assert_allclose(value, params[name], rtol=1e-13 * tol, atol=1e-15 * tol)
        assert_allclose(getattr(q, name), params[name], rtol=1e-13 * tol, atol=1e-15 * tol)
    assert_allclose(cls.natural_from_mean(cls.mean_from_natural(eta)), eta, rtol=1e-11 * tol,
                    atol=1e-12 * tol)
    np.testing.assert_array_equal(cls.from_natural(eta).natural, eta)
    rebuilt = cls(**{name: getattr(q, name) for name in params})
    for p in (cls.from_natural(eta), cls.from_mean(q.mean_params), rebuilt,
              cls.from_unconstrained(q.unconstrained)):
        assert type(p) is cls
        assert p.batch_shape == case.batch_shape and p.event_shape == q.event_shape
        assert p.n_params == eta.shape[-1]
        assert_allclose(p.natural, eta, rtol=1e-11 * tol, atol=1e-12 * tol)
        for name, value in params.items():
            assert_allclose(getattr(p, name), value, rtol=1e-11 * tol, atol=1e-12 * tol)
    with pytest.raises(ValueError):
        q.natural[...] = 0.0


@each_case
def test_unconstrained_round_trip_and_chain_rule(case):
    spec, q, params = case.spec, case.family(), case.params()
    u = q.unconstrained
    for name, value in spec.usual_from_unconstrained(u).items():
        assert_allclose(value, params[name], rtol=1e-13 * spec.loose, atol=1e-14 * spec.loose)
    assert_allclose(spec.cls.from_unconstrained(u).natural, q.natural, rtol=1e-12 * spec.loose,
                    atol=1e-14 * spec.loose)
    # ∇_u L from ∇_μ L, against autograd through the oracle μ(η(u))
    mean = mean_oracle(spec)

    def objective_of_unconstrained(u):
        return objective(mean(spec.natural(spec.usual_from_unconstrained(u))))

    grad_mu = autograd.grad(objective)(q.mean_params)
    assert_allclose(q.unconstrained_grad(grad_mu), autograd.grad(objective_of_unconstrained)(u),
                    rtol=1e-10, atol=1e-10)


@each_case
def test_natural_step_is_invariant_to_reparameterization(case):
    """A natural-gradient step lands on the same distribution, to first order, in natural,
    mean and unconstrained coordinates; Euclidean steps do not."""
    spec, cls, q = case.spec, case.spec.cls, case.family()
    eta, u = q.natural, q.unconstrained
    mean = mean_oracle(spec)
    mu = mean(eta)

    def natural_of_unconstrained(u):
        return spec.natural(spec.usual_from_unconstrained(u))

    g_eta = autograd.grad(lambda e: objective(mean(e)))(eta)
    g_mu = spec.project(autograd.grad(objective)(mu))
    g_u = autograd.grad(lambda u: objective(mean(natural_of_unconstrained(u))))(u)
    # the Fisher information in u is JᵀFJ, J = ∂η/∂u
    fisher, natural_u = q.fisher(), np.empty_like(g_u)
    for idx in elements(case.batch_shape):
        jac = autograd.jacobian(natural_of_unconstrained)(u[idx])
        natural_u[idx] = np.linalg.solve(jac.T @ fisher[idx] @ jac, g_u[idx])

    def ends(eps):
        natural = [cls.from_natural(eta + eps * q.fisher_solve(g_eta)),
                   cls.from_mean(mu + eps * q.fisher_vector_product(g_mu)),
                   cls.from_unconstrained(u + eps * natural_u)]
        euclidean = [cls.from_natural(eta + eps * g_eta), cls.from_mean(mu + eps * g_mu),
                     cls.from_unconstrained(u + eps * g_u)]
        return [p.natural for p in natural], [p.natural for p in euclidean]

    def distance(a, b):
        """Largest Fisher-metric distance between the batch elements at η = a and η = b."""
        return np.max(np.sqrt(q.fisher_quadratic_form(a - b)))

    def spread(points):
        return max(distance(p, points[0]) for p in points[1:])

    # natural steps of Fisher length ε at most (the end points' spread is O(ε²))
    eps1, eps2 = np.array([1e-3, 1e-4]) / np.max(np.sqrt(q.fisher_quadratic_form(
        q.fisher_solve(g_eta))))
    nat1, euc1 = ends(eps1)
    nat2, euc2 = ends(eps2)
    moved = distance(nat2[0], eta)
    assert moved > 0
    # natural: the three end points differ at O(ε²)
    assert spread(nat2) < 1e-2 * moved
    assert spread(nat2) < spread(nat1) * (eps2 / eps1) ** 2 * 1.5
    # Euclidean: they differ at O(ε), comparable to the step itself
    assert spread(euc2) > 0.1 * moved
    assert spread(euc2) > 100 * spread(nat2)
    assert spread(euc2) > spread(euc1) * (eps2 / eps1) * 0.3


@each_case
def test_family_natural_step_is_the_natural_step_to_first_order(case):
    """``natural_step(η, g, ρ)`` is η at ρ = 0 and has derivative g = ∇_μ L there: the
    plain step η + ρg, or one that differs from it at O(ρ²), so that the error of the
    difference quotient falls tenfold with ρ."""
    spec, cls, q = case.spec, case.spec.cls, case.family()
    eta = q.natural
    grad = spec.project(autograd.grad(objective)(q.mean_params))
    assert_allclose(cls.natural_step(eta, grad, 0.0), eta, rtol=1e-12, atol=1e-12)
    h = 1e-4 / max(1.0, float(np.max(np.abs(grad) / (np.abs(eta) + 1))))

    def error(rho):
        slope = (cls.natural_step(eta, grad, rho) - eta) / rho
        return float(np.max(np.abs(slope - grad)) / np.max(np.abs(grad)))

    assert error(h / 10) < 1e-3
    assert error(h / 10) <= 0.2 * error(h) + 1e-6
    assert np.all(cls.in_domain(cls.natural_step(eta, grad, h)))


# ---- densities, moments and entropy against references -------------------------------------
@each_case
def test_log_prob_moments_and_entropy_match_reference(case):
    spec, params = case.spec, case.params()
    q = spec.cls(**params)
    z = spec.points(case.rng(5), q, 5)
    log_prob, mean, var, entropy = q.log_prob(z), q.mean(), q.var(), q.entropy()
    assert log_prob.shape == (5,) + case.batch_shape and entropy.shape == case.batch_shape
    for idx in elements(case.batch_shape):
        ref = spec.reference(**element(params, idx))
        tol = ref.rtol or 1e-13 * spec.loose
        assert_allclose(mean[idx], ref.mean, rtol=tol, atol=1e-13)
        assert_allclose(var[idx], ref.var, rtol=tol)
        assert_allclose(entropy[idx], ref.entropy, rtol=ref.rtol or 1e-12, atol=1e-13)
        assert_allclose(log_prob[(slice(None),) + idx], ref.logpdf(z[(slice(None),) + idx]),
                        rtol=1e-12 * spec.loose, atol=1e-12 * spec.loose)
    # the generic exponential-family forms η·T(z) − A(η) + log h(z) and A − η·μ − E[log h]
    assert_allclose(ExponentialFamily.log_prob(q, z), log_prob, rtol=1e-10, atol=1e-10)
    assert_allclose(ExponentialFamily.entropy(q), entropy, rtol=1e-10, atol=1e-12)


@each_case
def test_entropy_and_its_gradient(case):
    # H(η) = A − η·μ − E[log h] from the oracles; ∇_η H = F ∇_μ H
    spec, q = case.spec, case.family()
    mean = mean_oracle(spec)

    def entropy(eta):
        return (spec.log_partition(eta) - anp.sum(eta * mean(eta), axis=-1)
                - spec.expected_log_base_measure(eta))

    eta = q.natural
    assert_allclose(q.expected_log_base_measure(), spec.expected_log_base_measure(eta),
                    rtol=1e-12, atol=1e-13)
    assert_allclose(q.entropy(), entropy(eta), rtol=1e-12 * spec.loose, atol=1e-12)
    grad = q.entropy_grad()
    assert grad.shape == eta.shape
    expected = autograd.grad(lambda e: anp.sum(entropy(e)))(eta)
    hess = autograd.hessian(spec.log_partition)
    for idx in elements(case.batch_shape):
        assert_allclose(hess(eta[idx]) @ grad[idx], expected[idx], rtol=1e-10 * spec.loose,
                        atol=1e-11 * spec.loose)


# ---- sampling ------------------------------------------------------------------------------
@each_case
def test_sampling(case):
    spec, q, n = case.spec, case.family(), 100_000
    z = q.sample(case.rng(6), n)
    dtype, inside = SUPPORTS[spec.cls.support]
    assert z.shape == (n,) + case.batch_shape + q.event_shape and z.dtype == dtype
    assert np.all(inside(z, q))
    # mean and var within Z standard errors (of the variance: √((m₄ − s⁴)/n), from the draws)
    x = spec.as_vector(z, q)
    assert_monte_carlo(x, q.mean())
    assert_monte_carlo((x - x.mean(axis=0)) ** 2, q.var())
    assert_monte_carlo(-q.log_prob(z), q.entropy())
    # the whole distribution: Kolmogorov–Smirnov against the reference CDF, at a level that
    # keeps the suite's ~200 such tests from false alarms (it flags a distance of 0.0085)
    params = case.params()
    for idx in elements(case.batch_shape):
        cdf = spec.reference(**element(params, idx)).cdf
        if cdf is not None:
            assert stats.kstest(z[(slice(None),) + idx], cdf).pvalue > 1e-6


@SPECS
def test_same_seed_same_samples(spec):
    q = Case(spec, 3, (2, 4), spec.sizes[-1]).family()
    a, b = (q.sample(np.random.default_rng(42), 20) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, q.sample(np.random.default_rng(43), 20))


# ---- batch shapes ------------------------------------------------------------------------
def _broadcast_params(spec):
    """Parameters of batch shape (2, 3): the first of (2, 1) against the others of (3,)."""
    rng, size = np.random.default_rng(7), spec.sizes[0]
    params = spec.params(rng, (2, 3), size)
    names = list(params)
    if len(names) > 1:
        first = spec.params(rng, (2, 1), size)[names[0]]
        params = {**spec.params(rng, (3,), size), names[0]: first}
    return params


@SPECS
def test_batch_broadcasting(spec):
    params = _broadcast_params(spec)
    q = spec.cls(**params)
    event_ndim = {name: np.ndim(v) for name, v in spec.params(np.random.default_rng(0), (),
                                                               spec.sizes[0]).items()}
    k, rng = q.natural.shape[-1], np.random.default_rng(8)
    assert q.batch_shape == (2, 3)
    assert q.natural.shape == q.mean_params.shape == q.entropy_grad().shape == (2, 3, k)
    assert q.fisher().shape == (2, 3, k, k)
    assert q.log_partition().shape == q.entropy().shape == (2, 3)
    assert q.sample(rng, 7).shape == (7, 2, 3) + q.event_shape
    # z broadcasts against the batch: (5, 1, 3, *event) and one point of the event shape
    z = spec.points(rng, q, 5)[:, :1]
    assert q.log_prob(z).shape == (5, 2, 3)
    assert q.log_prob(z[0, 0, 0]).shape == (2, 3)
    assert q.kl(spec.cls(**spec.params(rng, (3,), spec.sizes[0]))).shape == (2, 3)
    assert q.fisher_solve(np.ones(k)).shape == q.fisher_vector_product(np.ones(k)).shape
    assert q.fisher_solve(np.ones(k)).shape == (2, 3, k)
    # element (i, j) is the family of the broadcast parameters' element (i, j)
    for idx in elements((2, 3)):
        one = spec.cls(**{name: np.broadcast_to(v, (2, 3) + np.shape(v)[np.ndim(v)
                                                                        - event_ndim[name]:])[idx]
                          for name, v in params.items()})
        assert_allclose(q.natural[idx], one.natural, rtol=1e-14, atol=1e-15)
        assert_allclose(q.log_prob(z)[(slice(None),) + idx], one.log_prob(z[:, 0, idx[1]]),
                        rtol=1e-14)
        assert q.mean()[idx].shape == one.mean().shape and q.var()[idx].shape == one.var().shape
        assert q.unconstrained[idx].shape == one.unconstrained.shape


@SPECS
def test_default_parameters(spec):
    parameters = inspect.signature(spec.cls).parameters.values()
    assert {p.name: p.default for p in parameters if p.default is not p.empty} == spec.defaults
    if len(spec.defaults) == len(parameters):
        q = spec.cls()
        assert q.batch_shape == ()
        usual = {name: np.asarray(value, dtype=float) for name, value in spec.defaults.items()}
        assert_allclose(q.natural, spec.natural(usual), rtol=1e-15)


# ---- bad input ---------------------------------------------------------------------------
def _valid(spec):
    return spec.params(np.random.default_rng(0), (), spec.sizes[0])


def _spoiled(value, bad):
    """``value`` with its first entry replaced by ``bad``."""
    spoiled = np.array(value, dtype=float)
    spoiled.flat[0] = bad
    return spoiled


def each_row(names, spec_rows):
    """Parametrize over (spec, *row) for the rows each spec yields."""
    rows = [(spec, *row) for spec in REGISTRY for row in spec_rows(spec)]
    return pytest.mark.parametrize(names, rows,
                                   ids=[f"{row[0].cls.__name__}-{i}" for i, row in enumerate(rows)])


def _bad_usual(spec):
    valid = _valid(spec)
    for name, value in valid.items():
        for bad in (_spoiled(value, np.nan), _spoiled(value, np.inf), "a"):
            yield {**valid, name: bad}, name
    yield from spec.bad_params


def _bad_natural(spec):
    eta = spec.natural(_valid(spec))
    yield from ([np.array(1.0), _spoiled(eta, np.nan), _spoiled(eta, -np.inf)]
                + [np.zeros(shape) for shape in spec.bad_sizes] + spec.outside)


def _bad_mean(spec):
    mu = mean_oracle(spec)(spec.natural(_valid(spec)))
    yield from ([np.array(1.0), _spoiled(mu, np.nan)]
                + [np.zeros(shape) for shape in spec.bad_sizes] + spec.bad_mean)


@each_row("spec, kwargs, name", _bad_usual)
def test_bad_usual_parameters_name_the_argument(spec, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        spec.cls(**kwargs)


@each_row("spec, eta", lambda spec: ((eta,) for eta in _bad_natural(spec)))
def test_from_natural_rejects_what_is_outside_the_domain(spec, eta):
    with pytest.raises(ValueError, match="^natural:"):
        spec.cls.from_natural(eta)


@each_row("spec, eta", lambda spec: ((eta,) for eta in spec.outside))
def test_in_domain_is_false_outside_the_domain(spec, eta):
    assert not np.all(spec.cls.in_domain(eta))


@each_row("spec, mu", lambda spec: ((mu,) for mu in _bad_mean(spec)))
def test_from_mean_rejects_what_is_outside_the_mean_domain(spec, mu):
    with pytest.raises(ValueError, match="^mean_params:"):
        spec.cls.from_mean(mu)


@each_row("spec, u", lambda spec: ((u,) for u in [np.array(1.0)] + spec.bad_unconstrained))
def test_from_unconstrained_rejects_bad_coordinates(spec, u):
    with pytest.raises(ValueError, match="^u:"):
        spec.cls.from_unconstrained(u)


@SPECS
def test_sample_rejects_bad_rng_and_n(spec):
    q = spec.cls(**_valid(spec))
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="^n:"):
            q.sample(np.random.default_rng(0), n)
    for rng in (0, None, np.random.RandomState(0)):
        with pytest.raises(ValueError, match="^rng:"):
            q.sample(rng, 3)


@SPECS
def test_kl_rejects_other_families(spec):
    q = spec.cls(**_valid(spec))
    others = [s.cls(**_valid(s)) for s in REGISTRY if s.cls is not spec.cls]
    for other in others + [q.natural, stats.norm(0, 1)]:
        with pytest.raises(ValueError, match="^other:"):
            q.kl(other)
        with pytest.raises(ValueError, match="^other:"):
            ExponentialFamily.kl(q, other)
    for size in spec.sizes[1:]:  # another K or d
        with pytest.raises(ValueError, match="^other:"):
            q.kl(spec.cls(**spec.params(np.random.default_rng(0), (), size)))
    three, two = (spec.cls(**spec.params(np.random.default_rng(0), shape, spec.sizes[0]))
                  for shape in ((3,), (2,)))
    with pytest.raises(ValueError, match=r"^other: batch shape \(2,\) does not broadcast"):
        three.kl(two)
