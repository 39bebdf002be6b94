"""Gamma: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py.

q(z | η) = β^α z^{α−1} e^{−βz} / Γ(α), T(z) = (log z, z), η = (α − 1, −β),
μ = (ψ(α) − log β, α/β), A(η) = log Γ(α) − α log β.
"""

from fractions import Fraction

import numpy as np
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from natvi.families.gamma import Gamma


def x_trigamma_minus_one(alpha):
    """αψ′(α) − 1 for large α, from its asymptotic series."""
    return 1 / (2 * alpha) + 1 / (6 * alpha**2) - 1 / (30 * alpha**4)


def test_fisher_solve_at_large_shape():
    # F is nearly singular for large α (det F = (αψ′(α) − 1)/β² ≈ 1/(2αβ²)); the closed form
    # keeps αψ′(α) − 1 free of cancellation. Reference: its asymptotic series.
    alpha, beta = np.array([1e4, 1e8, 3e11]), np.array([3.0, 0.5, 2.0])
    q = Gamma(shape=alpha, rate=beta)
    det = x_trigamma_minus_one(alpha)
    v = np.stack([np.ones(3), np.zeros(3)], -1)
    assert_allclose(q.fisher_solve(v), np.stack([alpha / det, -beta / det], -1), rtol=1e-13)


def test_fisher_quadratic_form_at_large_shape():
    # v close to the near-null direction (α, −β) of F: the dense ⟨v, Fv⟩ cancels O(α) terms
    # down to O(1). Exactly, ⟨v, Fv⟩ = α (v₂/β + v₁/α)² + (αψ′(α) − 1) v₁²/α.
    alpha, beta = np.array([1e6, 1e8, 3e10]), np.array([3.0, 0.5, 2.0])
    q = Gamma(shape=alpha, rate=beta)
    v = np.stack([alpha, -beta * np.array([1.0, 1 + 1e-6, 1 - 1e-9])], -1)
    got = q.fisher_quadratic_form(v)
    det = x_trigamma_minus_one(alpha)
    for i in range(3):
        a_, b_ = Fraction(v[i, 0]), Fraction(v[i, 1])
        first = Fraction(alpha[i]) * (b_ / Fraction(beta[i]) + a_ / Fraction(alpha[i])) ** 2
        expected = float(first) + det[i] * alpha[i]
        assert got[i] >= 0
        assert_allclose(got[i], expected, rtol=1e-12)


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
