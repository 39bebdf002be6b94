"""Gauss–Hermite expected log-likelihood of the logistic GLM, against the exact 1-D
Gaussian integral (scipy.integrate.quad), finite differences of the rule itself and
the Bonnet/Price identities d/da E[f] = E[f′], d/db E[f] = ½ E[f″].

f(x) = log p(y | x) = y x − log(1 + eˣ), x ~ N(a, b). Its derivatives are
f′ = y − σ(x) ∈ [−1, 1] and f″ = −σ(x) σ(−x) ∈ [−¼, 0].

Accuracy of the rule (max |error| of the value over a ∈ [−3, 2.5], y ∈ {0, 1}),
measured against quad:

    var \\ n_points    16      24      32      48      64     100     150
    0.25           6e-16   4e-16   4e-16   4e-16   4e-16   4e-16   4e-16
    1              6e-10   2e-12   1e-14   4e-16   4e-16   9e-16   7e-16
    2              1e-07   2e-09   5e-11   2e-13   1e-15   7e-16   7e-16
    4              7e-06   3e-07   3e-08   4e-10   1e-11   2e-14   1e-15
    9              2e-04   3e-05   5e-06   3e-07   3e-08   3e-10   3e-12
    25             5e-03   1e-03   4e-04   7e-05   2e-05   1e-06   5e-08

so the default n_points = 32 reaches 1e-10 up to var ≈ 2; var 4 needs 64 points and
var 9 about 150. For var ≫ 1 (a predictor whose sd dwarfs the curvature scale of the
log-sigmoid) the error is relative, about 1% at n_points = 32.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, special

import natvi.quadrature
from natvi import likelihoods, quadrature, reference
from natvi.likelihoods import logistic
from natvi.quadrature import expectation as expected_log_likelihood
from natvi.quadrature import gauss_hermite

LOCS = [-3.0, -1.0, 0.0, 0.7, 2.5]
YS = [0.0, 1.0]


def f(y, x):
    # y log σ(x) + (1 − y) log σ(−x) with scipy's log_expit: exact to the last bit also
    # where y·x − log(1 + eˣ) cancels (log σ(500) = −7.1e-218, not 0).
    return y * special.log_expit(x) + (1 - y) * special.log_expit(-x)


def f1(y, x):
    return y - special.expit(x)


def f2(y, x):
    return -special.expit(x) * special.expit(-x)


def gaussian_expectation(g, loc, var):
    """E[g(x)], x ~ N(loc, var), by adaptive quadrature in the standardized variable,
    split where the log-sigmoid bends (x = 0)."""
    sd = np.sqrt(var)
    kink = float(np.clip(-loc / sd, -30.0, 30.0))
    total = 0.0
    for lo, hi in [(-40.0, kink), (kink, 40.0)]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # quad must reach its tolerance
            total += integrate.quad(lambda e: g(loc + sd * e) * np.exp(-0.5 * e * e),
                                    lo, hi, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
    return total / np.sqrt(2 * np.pi)


#: the logistic likelihood without its rule for wide predictors: the Gauss–Hermite rule alone
GH_ONLY = logistic._replace(wide=None)


def rule(y, loc, var, n_points=32):
    """The Gauss–Hermite value and gradients for one row."""
    value, grad_loc, grad_var = expected_log_likelihood(
        GH_ONLY, np.array([y]), np.array([loc]), np.array([var]), n_points)
    return value, grad_loc[0], grad_var[0]


# ---- the rule ---------------------------------------------------------------------


@pytest.mark.parametrize("n_points", [1, 2, 5, 8, 32, 101])
def test_gauss_hermite_rule_is_a_standard_normal_rule(n_points):
    t, w = gauss_hermite(n_points)
    assert_allclose(w.sum(), 1.0, rtol=1e-14)
    # exact for polynomials of degree ≤ 2n − 1: E[ε^k] = (k − 1)!! for even k, 0 for odd k
    normal_moments = [1.0, 0.0, 1.0, 0.0, 3.0, 0.0, 15.0, 0.0, 105.0, 0.0, 945.0, 0.0]
    for k, moment in enumerate(normal_moments[:2 * n_points]):
        scale = np.sum(w * np.abs(t) ** k)  # what the rounding error is relative to
        assert_allclose(np.sum(w * t**k), moment, rtol=1e-11, atol=1e-13 * scale)
    # exactly symmetric: the gradient in var sums mirrored pairs
    np.testing.assert_array_equal(t, -t[::-1])
    np.testing.assert_array_equal(w, w[::-1])


# ---- value against the exact integral ------------------------------------------------


@pytest.mark.parametrize("var, n_points", [(0.05, 32), (0.25, 32), (1.0, 32), (2.0, 32),
                                           (4.0, 64), (9.0, 150)])
def test_value_matches_exact_integral(var, n_points):
    for loc in LOCS:
        for y in YS:
            exact = gaussian_expectation(lambda x, y=y: f(y, x), loc, var)
            value, _, _ = rule(y, loc, var, n_points)
            assert abs(value - exact) < 1e-10, (loc, y, value - exact)


def test_value_is_sum_over_rows():
    """Each row gets its own rule (series, nodes by width, or the wide split): the value is
    the sum of the rows integrated one at a time, and each row is the exact integral."""
    rng = np.random.default_rng(0)
    n = 17
    y = rng.integers(0, 2, n).astype(float)
    loc = rng.normal(0, 2, n)
    var = np.exp(rng.uniform(np.log(1e-3), np.log(9.0), n))
    value, grad_loc, grad_var = expected_log_likelihood(logistic, y, loc, var)
    rows = np.array([[v[0] if np.ndim(v) else v for v in expected_log_likelihood(
        logistic, np.array([yi]), np.array([li]), np.array([vi]))]
        for yi, li, vi in zip(y, loc, var, strict=True)])
    assert_allclose(value, rows[:, 0].sum(), rtol=1e-14)
    assert_allclose(grad_loc, rows[:, 1], rtol=1e-14, atol=1e-16)
    assert_allclose(grad_var, rows[:, 2], rtol=1e-14, atol=1e-16)
    exact = [gaussian_expectation(lambda x, yi=yi: f(yi, x), li, vi)
             for yi, li, vi in zip(y, loc, var, strict=True)]
    assert_allclose(rows[:, 0], exact, rtol=0, atol=2e-14)


# ---- gradients ------------------------------------------------------------------------


@pytest.mark.parametrize("var", [0.05, 0.5, 1.0, 4.0])
@pytest.mark.parametrize("n_points", [8, 32])
def test_gradients_are_exact_derivatives_of_the_rule(var, n_points):
    # Central differences of the quadrature value itself: truncation O(h²) and rounding
    # O(ε/h) are both ≲ 1e-10 here, far below the rule's own error at n_points = 8, var = 4.
    h_loc, h_var = 1e-5, 1e-4 * var
    for loc in LOCS:
        for y in YS:
            _, grad_loc, grad_var = rule(y, loc, var, n_points)
            fd_loc = (rule(y, loc + h_loc, var, n_points)[0]
                      - rule(y, loc - h_loc, var, n_points)[0]) / (2 * h_loc)
            fd_var = (rule(y, loc, var + h_var, n_points)[0]
                      - rule(y, loc, var - h_var, n_points)[0]) / (2 * h_var)
            assert abs(grad_loc - fd_loc) < 1e-9, (loc, y)
            assert abs(grad_var - fd_var) < 1e-9, (loc, y)


@pytest.mark.parametrize("var, n_points, tol", [(0.05, 32, 1e-13), (0.5, 32, 1e-13),
                                                (1.0, 32, 1e-12), (4.0, 32, 1e-6),
                                                (4.0, 100, 1e-12)])
def test_gradients_match_bonnet_and_price(var, n_points, tol):
    # d/da E[f] = E[f′] (Bonnet), d/db E[f] = ½ E[f″] (Price), up to the rule's accuracy.
    for loc in LOCS:
        for y in YS:
            _, grad_loc, grad_var = rule(y, loc, var, n_points)
            bonnet = gaussian_expectation(lambda x, y=y: f1(y, x), loc, var)
            price = 0.5 * gaussian_expectation(lambda x, y=y: f2(y, x), loc, var)
            assert abs(grad_loc - bonnet) < tol, (loc, y, grad_loc - bonnet)
            assert abs(grad_var - price) < tol, (loc, y, grad_var - price)


def test_gradient_is_the_rules_not_a_second_rule():
    # With few nodes and a wide predictor the rule is inexact; its gradient follows the
    # rule (finite differences, above) and so differs from the exact E[f′], ½E[f″].
    _, grad_loc, grad_var = rule(1.0, 0.7, 4.0, n_points=8)
    price = 0.5 * gaussian_expectation(lambda x: f2(1.0, x), 0.7, 4.0)
    assert abs(grad_var - price) > 1e-6


# ---- extremes ---------------------------------------------------------------------------


@pytest.mark.parametrize("loc", [-500.0, 500.0])
@pytest.mark.parametrize("var", [1e-12, 1e-30, 1e-300])
@pytest.mark.parametrize("y", YS)
def test_saturated_predictor_with_tiny_variance(loc, var, y):
    # The limit var → 0 is the point mass: f(a), f′(a), ½f″(a) (≈ e^{−500} ≈ 0).
    value, grad_loc, grad_var = rule(y, loc, var)
    assert np.isfinite([value, grad_loc, grad_var]).all()
    assert_allclose(value, f(y, loc), rtol=1e-12, atol=1e-300)
    # atol: the exact E[f′] here is about e^{−500} ≈ 7e-218, which f1 rounds to 0
    assert_allclose(grad_loc, f1(y, loc), rtol=1e-12, atol=1e-200)
    assert abs(grad_var - 0.5 * f2(y, loc)) < 1e-12


@pytest.mark.parametrize("loc", [-500.0, 0.3, 500.0])
@pytest.mark.parametrize("var", [1e-300, 1e-12, 1.0, 1e4, 1e8])
@pytest.mark.parametrize("y", YS)
def test_extreme_predictors_stay_finite_and_bounded(loc, var, y):
    # Bounds that hold for the exact integral and for the rule (Σw = 1, Σwt² = 1):
    # f ≤ 0, |f′| ≤ 1, −¼ ≤ f″ ≤ 0 ⇒ value ≤ 0, |grad_loc| ≤ 1, −⅛ ≤ grad_var ≤ 0.
    value, grad_loc, grad_var = rule(y, loc, var)
    assert np.isfinite([value, grad_loc, grad_var]).all()
    assert value <= 0.0
    assert abs(grad_loc) <= 1.0
    assert -0.125 - 1e-12 <= grad_var <= 1e-15


@pytest.mark.parametrize("loc", [-500.0, 0.3, 500.0])
@pytest.mark.parametrize("var", [1e4, 1e8])
def test_very_wide_predictor_is_accurate_to_a_few_percent(loc, var):
    for y in YS:
        exact = gaussian_expectation(lambda x, y=y: f(y, x), loc, var)
        value, _, _ = rule(y, loc, var)
        assert abs(value - exact) <= 0.03 * abs(exact) + 1e-5, (y, value, exact)


def test_zero_variance_row():
    # var = 0 comes from an all-zero design row: the value is f(a), the var-gradient its
    # limit ½f″(a) from the narrow series (it multiplies the row's zeros), or 0 by
    # Gauss–Hermite.
    value, grad_loc, grad_var = rule(1.0, 0.4, 0.0)
    assert_allclose(value, f(1.0, 0.4), rtol=1e-14)
    assert_allclose(grad_loc, f1(1.0, 0.4), rtol=1e-14)
    assert_allclose(grad_var, 0.5 * f2(1.0, 0.4), rtol=1e-14)
    no_series = logistic._replace(narrow=None)
    _, _, grad_var = expected_log_likelihood(no_series, np.ones(1), np.full(1, 0.4),
                                             np.zeros(1))
    assert grad_var[0] == 0.0


# ---- chunking ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 16])
def test_chunking_gives_the_same_result(monkeypatch, chunk_rows):
    rng = np.random.default_rng(1)
    n = 23
    y = rng.integers(0, 2, n).astype(float)
    loc = rng.normal(0, 3, n)
    var = rng.uniform(0.01, 5.0, n)
    whole = expected_log_likelihood(logistic, y, loc, var)
    monkeypatch.setattr(natvi.quadrature, "CHUNK_ROWS", chunk_rows)
    chunked = expected_log_likelihood(logistic, y, loc, var)
    # Equal up to the summation order of the value and BLAS blocking of the row products.
    assert_allclose(chunked[0], whole[0], rtol=1e-14)
    assert_allclose(chunked[1], whole[1], rtol=1e-14, atol=1e-15)
    assert_allclose(chunked[2], whole[2], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", ["logistic", "probit"])
def test_each_rows_rule_is_exact_to_2e_14(name):
    """Rows are integrated with as many nodes as their width needs (the likelihood's
    ``nodes`` table), or by the wide rule beyond it: at the widest sd of every tier, and
    just beyond the last, each row agrees with the independent reference
    (:mod:`natvi.reference`) to 2e-14 relative to max(1, |value|), over locations within
    4 sd + 4 of the bend, and its derivatives (the gradient, which only has to point to the
    same optimum) to 1e-11."""
    lik = getattr(likelihoods, name)
    ref = getattr(reference, name)
    limits = [limit for limit, _ in lik.nodes]
    sds = limits + [1.001 * limits[-1]] * (lik.wide is not None)
    for sd in sds:
        a = np.linspace(-4 * sd - 4, 4 * sd + 4, 81)
        for y in YS:
            yy, b = np.full_like(a, y), np.full_like(a, sd * sd)
            chosen = quadrature.rules(lik, b)
            if sd in limits:
                assert np.all(chosen == dict(lik.nodes)[sd])
            _, g_a, g_b = expected_log_likelihood(lik, yy, a, b)
            rows = np.array([expected_log_likelihood(lik, yy[i:i + 1], a[i:i + 1],
                                                     b[i:i + 1])[0] for i in range(a.size)])
            want = ref(yy, a, b)
            scale = np.maximum(1.0, np.abs(want[0]))
            for got, w, tol in zip((rows, g_a, g_b), want, (2e-14, 1e-11, 1e-11), strict=True):
                assert np.max(np.abs(got - w) / scale) < tol, (name, sd, y)


def test_rules_per_row():
    """The series for variances ≤ NARROW_VAR, then the tiers of the table, then the wide
    rule; ``n_points`` replaces the table's choice only."""
    var = np.array([0.0, quadrature.NARROW_VAR, 0.011, 0.25**2, 0.3**2, 0.99, 1.01, 1e6])
    assert list(quadrature.rules(logistic, var)) == [quadrature.NARROW, quadrature.NARROW, 8,
                                                     8, 12, 48, quadrature.WIDE, quadrature.WIDE]
    assert list(quadrature.rules(logistic, var, 64)) == [quadrature.NARROW] * 2 + [64] * 4 + [
        quadrature.WIDE] * 2
    assert list(quadrature.rules(likelihoods.probit, var)) == [8, 8, 8, 12, 12, 48, 48,
                                                                 quadrature.WIDE]
    bare = logistic._replace(narrow=None, wide=None, nodes=())
    assert list(quadrature.rules(bare, var)) == [quadrature.DEFAULT_NODES] * var.size


@pytest.mark.parametrize("y", YS)
@pytest.mark.parametrize("loc, var", [(0.3, 1.01), (-2.0, 4.0), (5.0, 100.0), (1e6, 1e12),
                                      (-3e6, 4e13)])
def test_wide_predictors_use_the_exact_split(y, loc, var):
    """Predictors with sd > 1 (separable data, flat priors) are integrated as E[min(η, 0)]
    in closed form plus the smooth remainder on a fixed grid: equal to adaptive quadrature
    of the density to 1e-11 relative (the nodes of Gauss–Hermite would land ~sd apart and
    miss the bend of log σ), with derivatives equal to finite differences."""
    a, b = np.array([loc]), np.array([var])
    value, g_a, g_b = expected_log_likelihood(logistic, np.array([y]), a, b)
    sd = np.sqrt(var)
    ref = integrate.quad(lambda t: f(y, loc + sd * t) * np.exp(-t * t / 2) / np.sqrt(2 * np.pi),
                         -40, 40, points=[-loc / sd], limit=500, epsabs=1e-14, epsrel=1e-13)[0]
    assert abs(value - ref) <= 1e-11 * max(1.0, abs(ref))
    for h, i in ((1e-6 * max(1.0, abs(loc)), 0), (1e-6 * var, 1)):
        up = [a + h, b] if i == 0 else [a, b + h]
        down = [a - h, b] if i == 0 else [a, b - h]
        fd = (expected_log_likelihood(logistic, np.array([y]), *up)[0]
              - expected_log_likelihood(logistic, np.array([y]), *down)[0]) / (2 * h)
        got = (g_a if i == 0 else g_b)[0]
        assert abs(got - fd) <= 1e-5 * max(abs(fd), 1e-12)


@pytest.mark.parametrize("y", YS)
def test_narrow_predictors_use_the_series_exact_to_rounding(y):
    """Predictors of variance ≤ NARROW_VAR (big data sets) use the five-term series
    Σₖ bᵏ f⁽²ᵏ⁾(a)/(2ᵏk!): equal to 120-node Gauss–Hermite to rounding in the value and
    the a-derivative, and its b-derivative within 3e-12 of Price's ½E[f″] (the
    truncation shows there first), over a ∈ [−40, 40]."""
    a = np.linspace(-40.0, 40.0, 801)
    yy = np.full_like(a, y)
    for var in (1e-6, 1e-4, 1e-3, quadrature.NARROW_VAR):
        b = np.full_like(a, var)
        rows, g_a, g_b = logistic.narrow(yy, a, b)
        t, w = gauss_hermite(120)
        eta = a[:, None] + np.sqrt(var) * t
        ref = f(y, eta) @ w
        assert_allclose(rows, ref, rtol=4e-15, atol=4e-15)
        assert_allclose(g_a, (yy[:, None] - special.expit(eta)) @ w, rtol=0, atol=1e-14)
        # Price: d/db E[f] = ½ E[f″]; the series' truncation shows at the largest b only
        ref_b = 0.5 * (-special.expit(eta) * special.expit(-eta)) @ w
        assert_allclose(g_b, ref_b, rtol=0, atol=3e-12)
        # any shape, as the other rules: the same numbers for the rows as a 2-D array
        for got, want in zip(logistic.narrow(yy.reshape(-1, 9), a.reshape(-1, 9),
                                             b.reshape(-1, 9)), (rows, g_a, g_b), strict=True):
            assert_allclose(got.ravel(), want, rtol=1e-15, atol=1e-15)


def test_narrow_rows_go_through_the_series_and_others_do_not():
    """The rule is chosen per row: in a chunk with one predictor above NARROW_VAR, the
    others still go through the series (one call, for all of them at once), and that row
    through Gauss–Hermite; both agree with the 200-node rule to rounding at the boundary."""
    rng = np.random.default_rng(4)
    a = rng.normal(0.0, 3.0, 1000)
    y = (rng.random(1000) < 0.5).astype(float)
    b = rng.uniform(0.0, quadrature.NARROW_VAR, 1000)
    b[17] = 1.5 * quadrature.NARROW_VAR
    calls = []
    narrow = logistic.narrow
    lik = logistic._replace(narrow=lambda *args: calls.append(len(args[0])) or narrow(*args))
    got = expected_log_likelihood(lik, y, a, b)
    assert calls == [999]
    ref = expected_log_likelihood(logistic._replace(narrow=None), y, a, b, 200)
    assert abs(got[0] - ref[0]) < 1e-12 * np.sum(np.abs(f(y, a)))
    assert_allclose(got[1], ref[1], rtol=0, atol=1e-14)
    assert_allclose(got[2], ref[2], rtol=0, atol=3e-12)


@pytest.mark.parametrize("y", YS)
@pytest.mark.parametrize("k, sd", [(0.0, 2.5), (-1.0, 5.0), (3.0, 30.0), (-5.0, 1e3),
                                   (0.5, 1e6)])
def test_probit_wide_rule_against_mpmath(y, k, sd):
    """Probit predictors wider than sd 2 (where 128 Gauss–Hermite nodes stop sufficing) use
    composite Gauss–Legendre panels graded towards the bend of log Φ: the value to 1e-14
    relative to max(1, |value|), the derivatives (Bonnet, Stein, with the Mills ratio from
    erfcx) to 1e-12 relative to their own size, against 30-digit quadrature."""
    import mpmath as mp

    mp.mp.dps = 30
    s, a = 2 * y - 1, k * sd

    def log_cdf(x):  # log Φ(u) = log1p(−Φ(−u)) where 1 − Φ(u) is below 30 digits
        u = s * x
        return mp.log1p(-mp.ncdf(-u)) if u > 0 else mp.log(mp.ncdf(u))

    def mills(x):
        return s * mp.npdf(s * x) / mp.ncdf(s * x)

    cuts = sorted({a - 40 * sd, a - 8 * sd, a, a + 8 * sd, a + 40 * sd} | (
        {-1.0, 0.0, 1.0} if a - 40 * sd < 0 < a + 40 * sd else set()))
    want = [float(mp.quad(lambda x, g=g: g(x) * mp.npdf(x, a, sd), cuts)) for g in
            (log_cdf, mills, lambda x: mills(x) * (x - a) / (2 * sd * sd))]
    got = [v[0] for v in likelihoods.probit.wide(np.array([y]), np.array([a]),
                                                  np.array([sd * sd]))]
    assert abs(got[0] - want[0]) <= 1e-14 * max(1.0, abs(want[0]))
    for g, w in zip(got[1:], want[1:], strict=True):
        assert abs(g - w) <= 1e-12 * abs(w) + 1e-300
