"""Beta: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py.

q(z | η) = z^{a−1} (1 − z)^{b−1} / B(a, b), T(z) = (log z, log(1 − z)), η = (a − 1, b − 1),
μ = (ψ(a) − ψ(a + b), ψ(b) − ψ(a + b)), A(η) = log Γ(a) + log Γ(b) − log Γ(a + b).
"""

import numpy as np
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from natvi.families.beta import Beta


def random_vector(seed, batch_shape):
    """A random vector shaped like the natural parameters, (*batch, 2)."""
    return np.random.default_rng(1000 + seed).normal(size=batch_shape + (2,))


def test_fisher_operations_at_small_and_large_parameters():
    # small a + b: the Sherman–Morrison denominator G = 1/ψ′(a+b) − 1/ψ′(a) − 1/ψ′(b) is
    # taken directly; against the dense forms, which are well conditioned there
    q = Beta(a=[0.01, 1e-3, 0.2], b=[0.02, 0.5, 1e-4])
    v = random_vector(5, (3,))
    assert_allclose(q.fisher_solve(v), np.linalg.solve(q.fisher(), v[..., None])[..., 0],
                    rtol=1e-11)
    v = random_vector(1, (3,))
    assert_allclose(q.fisher_quadratic_form(v), np.einsum("...i,...ij,...j->...", v, q.fisher(), v),
                    rtol=1e-10)
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
