"""natvi.log_densities against scipy.stats in the bulk and 50-digit references (mpmath) in
the tails, their autograd gradients against closed forms and finite differences of
scipy.stats, and their errors for bad arguments."""

import mpmath as mp
import numpy as np
import pytest
from autograd import elementwise_grad, grad
from autograd.tracer import getval
from numpy.testing import assert_allclose
from scipy import stats
from scipy.special import expit, gammaln

import natvi
from natvi import log_densities as ld

mp.mp.dps = 50
X = np.array([0.0, 1e-300, 1e-8, 0.3, 1.0, 2.5, 17.0, 400.0, 1e5])
SCALES = np.array([1e-3, 0.7, 1.0, 7.5, 1e4])
NUS = np.array([0.3, 1.0, 2.5, 4.0, 30.0])  # SciPy loses 1e-12 by ν = 1e3 (see below)
ETAS = np.concatenate([-np.geomspace(700, 1e-3, 25), [0.0], np.geomspace(1e-3, 700, 25)])


def _grid(*axes):
    return [a.ravel() for a in np.meshgrid(*axes, indexing="ij")]


def _mp(f, *arrays):
    """f at every element of the broadcast ``arrays``, in 50-digit arithmetic, as floats."""
    arrays = np.broadcast_arrays(*arrays)
    return np.array([float(f(*(mp.mpf(float(a[i])) for a in arrays)))
                     for i in np.ndindex(arrays[0].shape)]).reshape(arrays[0].shape)


def _mp_t(x, nu, loc, scale):
    r = (x - loc) / scale
    # log Γ((ν+1)/2) − log Γ(ν/2) cancels ~log10(ν) + 2 digits: carry that many more
    with mp.workdps(60 + int(mp.log10(nu))):
        return (mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2
                - mp.log(scale) - (nu + 1) / 2 * mp.log1p(r * r / nu))


def _mp_log_sigmoid(t):
    return -mp.log1p(mp.exp(-t))


def _mp_binomial(k, n, eta):
    return (mp.log(mp.binomial(n, k)) + k * _mp_log_sigmoid(eta)
            + (n - k) * _mp_log_sigmoid(-eta))


def _mp_negative_binomial(y, log_mu, phi):
    # log Γ(y + φ) − log Γ(φ) cancels ~log10(φ) digits, log(μ + φ) ~|log μ|/2.3 of them
    with mp.workdps(60 + int(mp.log10(phi)) + int(abs(log_mu) / 2.3)):
        mu = mp.exp(log_mu)
        return (mp.loggamma(y + phi) - mp.loggamma(y + 1) - mp.loggamma(phi)
                + y * (log_mu - mp.log(mu + phi)) + phi * (mp.log(phi) - mp.log(mu + phi)))


# ---------------------------------------------------------------- values against scipy.stats


def test_half_normal_and_half_cauchy_match_scipy():
    x, s = _grid(X, SCALES)
    assert_allclose(ld.half_normal(x, s), stats.halfnorm.logpdf(x, scale=s), rtol=1e-14,
                    atol=1e-14)
    assert_allclose(ld.half_cauchy(x, s), stats.halfcauchy.logpdf(x, scale=s), rtol=1e-14,
                    atol=1e-14)
    # the default scale is 1
    assert_allclose(ld.half_cauchy(X), stats.halfcauchy.logpdf(X), rtol=1e-14, atol=1e-14)


def test_student_t_matches_scipy_with_location_and_scale():
    x, nu, loc, s = _grid(np.concatenate([-X, X]), NUS, [-3.0, 0.0, 250.0], SCALES)
    assert_allclose(ld.student_t(x, nu, loc, s), stats.t.logpdf(x, nu, loc=loc, scale=s),
                    rtol=1e-13, atol=1e-13)


def test_half_t_is_twice_student_t_on_the_half_line():
    x, nu, s = _grid(X, NUS, SCALES)
    assert_allclose(ld.half_t(x, nu, s), np.log(2) + stats.t.logpdf(x, nu, scale=s),
                    rtol=1e-13, atol=1e-13)
    # ν = 1 is the half-Cauchy; ν → ∞ the half-normal (the remainder is O(1/ν))
    assert_allclose(ld.half_t(x, 1.0, s), ld.half_cauchy(x, s), rtol=1e-14, atol=1e-14)
    bulk, nu = X[X < 20], 1e12
    remainder = ld.half_t(bulk, nu, 2.0) - ld.half_normal(bulk, 2.0)
    # log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(ν/2) = −1/(4ν) + O(ν⁻²), and
    # (ν+1)/2·log(1 + r²/ν) − r²/2 = (r² − r⁴/2)/(2ν) + O(ν⁻²)
    r2 = (bulk / 2.0) ** 2
    assert np.all(np.abs(remainder - (r2 * r2 / 2 - r2 - 0.5) / (2 * nu)) < 1e-14)


@pytest.mark.parametrize("density", [ld.half_normal, ld.half_cauchy,
                                     lambda x, s: ld.half_t(x, 3.0, s)])
def test_half_densities_are_minus_infinity_below_zero(density):
    out = density(np.array([-1e-300, -2.0, -np.inf]), 1.5)
    assert np.all(out == -np.inf)


def test_binomial_logit_matches_scipy_binom_with_expit():
    n = np.array([1, 2, 10, 57, 1000])
    k = np.concatenate([np.arange(3), [5, 10, 23, 57, 400, 1000]])
    # scipy's 1 − expit(η) loses the digits of a small 1 − p beyond |η| ≈ 4 (1e-3 at η = 30)
    eta = np.array([-4.0, -0.5, 0.0, 0.3, 2.0, 4.0])
    k, n, eta = _grid(k, n, eta)
    keep = k <= n
    k, n, eta = k[keep], n[keep], eta[keep]
    assert_allclose(ld.binomial_logit(k, n, eta), stats.binom.logpmf(k, n, expit(eta)),
                    rtol=1e-12, atol=1e-12)


def test_negative_binomial_matches_scipy_nbinom():
    # scipy's log(1 − p) loses the digits of μ/(μ + φ) ≪ 1 (4e-8 at y = 1000, μ/φ = 3e-6)
    y, mu, phi = _grid(np.array([0, 1, 2, 7, 50, 1000]), np.array([0.5, 3.0, 200.0]),
                       np.array([0.05, 1.0, 10.0]))
    ref = stats.nbinom.logpmf(y, phi, phi / (phi + mu))
    assert_allclose(ld.negative_binomial(y, mu, phi), ref, rtol=1e-12, atol=1e-12)
    assert_allclose(ld.negative_binomial_log_mean(y, np.log(mu), phi), ref, rtol=1e-12,
                    atol=1e-12)
    # its moments: mean μ and variance μ + μ²/φ (the parameterization of Stan's neg_binomial_2)
    support = np.arange(4000)
    p = np.exp(ld.negative_binomial(support, 3.0, 0.8))
    assert_allclose([p.sum(), p @ support, p @ (support - 3.0) ** 2], [1, 3, 3 + 9 / 0.8],
                    rtol=1e-12)


# ---------------------------------------------------------- tails against 50-digit references


def test_heavy_tails_stay_finite_where_the_square_overflows():
    """log(1 + r²) for r up to 1e300 (r² overflows beyond 1e154, where scipy gives −inf)."""
    r = np.array([1e-200, 0.5, 1.0, 1.0 + 1e-12, 3.0, 1e20, 1e154, 1e200, 1e300])
    x = np.concatenate([-r, r])
    assert_allclose(ld.half_cauchy(r, 2.0),
                    _mp(lambda v, s: mp.log(2 / (mp.pi * s)) - mp.log1p((v / s) ** 2), r, 2.0),
                    rtol=4e-16)
    for nu in (0.7, 5.0, 1e6):
        assert_allclose(ld.student_t(x, nu, 0.0, 1.0), _mp(_mp_t, x, nu, 0.0, 1.0), rtol=4e-15)
    assert np.all(np.isfinite(ld.student_t(x, 3.0)))


def test_student_t_is_accurate_for_huge_degrees_of_freedom():
    """The log-gammas of (ν+1)/2 and ν/2 (each ~ν log ν) cancel in the normalizer; written
    that way, as scipy.stats.t does, it is off by 2e-12 at ν = 1e4, 1e-4 at ν = 1e12."""
    nu = np.concatenate([[45.0, 1e3, 1e4], np.geomspace(1e5, 1e300, 10)])
    x = np.array([0.0, 1.3, -4.0])[:, None]
    assert_allclose(ld.student_t(x, nu, 0.5, 2.0), _mp(_mp_t, x, nu, 0.5, 2.0), rtol=1e-14,
                    atol=1e-14)


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (500, 1000)])
def test_binomial_logit_is_accurate_at_any_logit(k, n):
    """|η| up to 700, where p = σ(η) rounds to 1 (scipy gives −inf) and k·η − n·log(1 + e^η)
    rounds to 0 for k = n (true −n e^(−η)): the value is relatively accurate to a few ulps
    of its largest term."""
    ours = ld.binomial_logit(k, n, ETAS)
    ref = _mp(lambda e: _mp_binomial(k, n, e), ETAS)
    scale = np.abs(ref) + abs(float(mp.log(mp.binomial(n, k))))
    assert np.all(np.abs(ours - ref) <= 1e-15 * scale + 4e-16 * np.abs(ref)), (ours - ref)
    assert np.all(ours < 0) or k == n == 0


def test_negative_binomial_is_accurate_in_the_tails():
    """Log means η from −700 to 700, dispersions φ from 1e-3 to 1e15 (where it is Poisson
    and log Γ(y + φ) − log Γ(φ) would cancel): within 10 ulps of the value's condition
    |log p| + |η ∂log p/∂η| + log y! (rounding η alone moves it that much). Either of its
    two forms alone, for all μ/φ, is off by 13 ulps (μ ≪ φ) and 89 ulps (μ ≫ φ)."""
    y, log_mu, phi = _grid(np.array([0, 1, 4, 60, 1000]),
                           np.array([-700, -30, -2, 0.0, 1.5, 7.0, 40, 700]),
                           np.array([1e-3, 0.4, 25.0, 1e8, 1e15]))
    ours = ld.negative_binomial_log_mean(y, log_mu, phi)
    ref = _mp(_mp_negative_binomial, y, log_mu, phi)
    score = y - (y + phi) * expit(log_mu - np.log(phi))
    condition = np.abs(ref) + np.abs(score * log_mu) + gammaln(y + 1.0)
    # less 1e-300: at μ ≈ e⁻⁷⁰⁰ ≪ φ, log p ≈ −μ is φ times a subnormal number of few digits
    ulps = np.maximum(np.abs(ours - ref) - 1e-300, 0) / (np.finfo(float).eps * condition)
    assert np.max(ulps) < 10, (np.max(ulps), np.argmax(ulps))
    poisson = stats.poisson.logpmf(np.arange(30), 3.7)
    assert_allclose(ld.negative_binomial(np.arange(30), 3.7, 1e15), poisson, rtol=1e-13)


# ------------------------------------------------------------------------------- gradients


def _fd(f, value, h):
    return (f(value + h) - f(value - h)) / (2 * h)


def test_gradients_in_every_real_argument_match_finite_differences_of_scipy():
    """Each density's autograd derivative in each real argument (central differences of the
    scipy.stats density as the reference)."""
    x, s, nu, loc = 1.7, 2.3, 3.5, -0.4
    cases = [
        (lambda v: ld.half_normal(x, v), lambda v: stats.halfnorm.logpdf(x, scale=v), s),
        (lambda v: ld.half_normal(v, s), lambda v: stats.halfnorm.logpdf(v, scale=s), x),
        (lambda v: ld.half_cauchy(x, v), lambda v: stats.halfcauchy.logpdf(x, scale=v), s),
        (lambda v: ld.half_cauchy(v, s), lambda v: stats.halfcauchy.logpdf(v, scale=s), x),
        (lambda v: ld.half_t(x, v, s), lambda v: np.log(2) + stats.t.logpdf(x, v, scale=s), nu),
        (lambda v: ld.half_t(x, nu, v), lambda v: np.log(2) + stats.t.logpdf(x, nu, scale=v), s),
        (lambda v: ld.student_t(x, v, loc, s), lambda v: stats.t.logpdf(x, v, loc, s), nu),
        (lambda v: ld.student_t(x, nu, v, s), lambda v: stats.t.logpdf(x, nu, v, s), loc),
        (lambda v: ld.student_t(x, nu, loc, v), lambda v: stats.t.logpdf(x, nu, loc, v), s),
        (lambda v: ld.student_t(v, nu, loc, s), lambda v: stats.t.logpdf(v, nu, loc, s), x),
        (lambda v: ld.negative_binomial(7, v, 1.9),
         lambda v: stats.nbinom.logpmf(7, 1.9, 1.9 / (1.9 + v)), 4.2),
        (lambda v: ld.negative_binomial(7, 4.2, v),
         lambda v: stats.nbinom.logpmf(7, v, v / (v + 4.2)), 1.9),
        (lambda v: ld.negative_binomial_log_mean(0, 1.1, v),
         lambda v: stats.nbinom.logpmf(0, v, v / (v + np.exp(1.1))), 1.9),
    ]
    for i, (ours, scipy_f, at) in enumerate(cases):
        assert_allclose(grad(ours)(at), _fd(scipy_f, at, 1e-5 * abs(at)), rtol=1e-7,
                        err_msg=f"case {i}")


def test_binomial_and_negative_binomial_logit_gradients_in_closed_form():
    """∂/∂η binomial_logit = k − n σ(η) and ∂/∂η negative_binomial_log_mean = y − (y + φ)
    σ(η − log φ), at every logit up to ±700 (the score of a logistic or NB2 regression)."""
    for k, n in ((0, 1), (1, 1), (3, 10), (10, 10)):
        assert_allclose(elementwise_grad(lambda e, k=k, n=n: ld.binomial_logit(k, n, e))(ETAS),
                        k - n * expit(ETAS), rtol=1e-13, atol=1e-13)
    for y, phi in ((0, 0.5), (6, 2.0), (40, 1e6)):
        g = elementwise_grad(lambda e, y=y, phi=phi: ld.negative_binomial_log_mean(y, e, phi))
        assert_allclose(g(ETAS), y - (y + phi) * expit(ETAS - np.log(phi)), rtol=1e-12,
                        atol=1e-12)


def test_gradients_stay_finite_in_the_tails():
    r = np.array([-1e300, -1e160, 1e160, 1e300])
    g = elementwise_grad(lambda v: ld.student_t(v, 4.0, 0.0, 1.0))(r)
    assert_allclose(g, -5.0 / r, rtol=1e-14)  # −(ν+1) r / (ν + r²), to rounding
    assert_allclose(elementwise_grad(lambda s: ld.half_cauchy(1e300, s))(np.array([1e-3, 1.0])),
                    [1e3, 1.0], rtol=1e-14)  # −1/σ + 2x²/(σ(σ² + x²)) → 1/σ


def test_traced_arguments_are_not_checked():
    """A latent drawn out of the domain gives a non-finite value, which the fit reports; a
    ValueError would stop the fit."""
    seen = []

    def log_density(scale):
        value = ld.half_normal(1.0, scale)
        seen.append(getval(value))
        return value

    with np.errstate(invalid="ignore"):
        grad(log_density)(-1.0)
    assert not np.isfinite(seen[0])


def test_in_a_model_the_log_joint_is_the_scipy_one():
    """A natvi.Model written with these densities: its log joint at draws is the same sum
    written with scipy.stats."""
    y = np.array([0, 3, 1, 9, 2])
    trials = np.array([4, 5, 2, 9, 6])

    def log_joint(z):
        return (ld.half_cauchy(z["sigma"], 2.0) + ld.student_t(z["b"], 3.0, 0.0, z["sigma"])
                + np.sum(ld.binomial_logit(y, trials, z["b"])))

    model = natvi.Model(log_joint, {"sigma": "positive", "b": "real"})
    draws = {"sigma": np.array([0.2, 1.0, 30.0]), "b": np.array([-2.0, 0.1, 4.0])}
    ref = [stats.halfcauchy.logpdf(s, scale=2.0) + stats.t.logpdf(b, 3.0, scale=s)
           + np.sum(stats.binom.logpmf(y, trials, expit(b)))
           for s, b in zip(draws["sigma"], draws["b"], strict=True)]
    assert_allclose(model.log_joint(draws), ref, rtol=1e-13)
    value, grads = natvi.elbo(model, {"sigma": natvi.LogNormal(0.0, 0.5),
                                      "b": natvi.MeanFieldGaussian(0.0, 1.0)},
                              np.random.default_rng(0))
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads.values())


# ---------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("call, name", [
    (lambda: ld.half_normal(1.0, 0.0), "scale"),
    (lambda: ld.half_normal(1.0, np.array([1.0, -2.0])), "scale"),
    (lambda: ld.half_cauchy(1.0, np.nan), "scale"),
    (lambda: ld.half_t(1.0, 0.0), "nu"),
    (lambda: ld.half_t(1.0, 2.0, np.inf), "scale"),
    (lambda: ld.student_t(1.0, np.inf), "nu"),
    (lambda: ld.student_t(1.0, -1.0), "nu"),
    (lambda: ld.student_t(1.0, 3.0, 0.0, "1"), "scale"),
    (lambda: ld.binomial_logit(-1, 5, 0.0), "k"),
    (lambda: ld.binomial_logit(1.5, 5, 0.0), "k"),
    (lambda: ld.binomial_logit(1, 2.5, 0.0), "n"),
    (lambda: ld.binomial_logit(np.array([1, 7]), 5, 0.0), "k"),
    (lambda: ld.binomial_logit([1, 2], 5, np.zeros(3)), "k, n, logit_p"),
    (lambda: ld.negative_binomial(-2, 1.0, 1.0), "y"),
    (lambda: ld.negative_binomial(np.nan, 1.0, 1.0), "y"),
    (lambda: ld.negative_binomial(2, 0.0, 1.0), "mu"),
    (lambda: ld.negative_binomial(2, 1.0, -1.0), "phi"),
    (lambda: ld.negative_binomial_log_mean(2, 0.0, 0.0), "phi"),
    (lambda: ld.negative_binomial_log_mean(np.ones(4), np.zeros(3), 1.0), "y, log_mu, phi"),
    (lambda: ld.half_normal(np.ones(2), np.ones(3)), "x, scale"),
])
def test_bad_arguments_raise_naming_them(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        call()


def test_k_above_n_names_the_index():
    with pytest.raises(ValueError, match=r"k = 7 > n = 5 at index \(1,\)$"):
        ld.binomial_logit(np.array([1, 7, 2]), 5, np.zeros(3))
    with pytest.raises(ValueError, match=r"k = 3 > n = 1 at index \(1, 0\)$"):
        ld.binomial_logit(np.array([[0], [3]]), np.array([1, 2]), 0.0)
    with pytest.raises(ValueError, match=r"k = 6 > n = 5$"):
        ld.binomial_logit(6, 5, 0.0)
