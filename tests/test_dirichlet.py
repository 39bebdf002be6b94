"""Dirichlet: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py.

q(z | η) = Π z_k^{α_k − 1} / B(α) on the simplex, T(z) = log z, η = α − 1,
μ = ψ(α) − ψ(Σα), A(η) = Σ log Γ(α_k) − log Γ(Σα).
"""

import numpy as np
from numpy.testing import assert_allclose
from scipy import special

from natvi.families.beta import Beta
from natvi.families.dirichlet import Dirichlet


def random_vector(seed, batch_shape, k):
    """A random vector shaped like the natural parameters, (*batch, K)."""
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (k,))


def test_fisher_operations_at_small_and_large_concentrations():
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
