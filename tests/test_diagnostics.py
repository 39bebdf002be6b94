"""Pareto k̂, its verdict and approximate-posterior LOO, on whichever ArviZ is installed.

The real check is a conjugate Gaussian linear regression: its posterior and its exact
leave-one-out predictive densities are known in closed form, so q can be set to the
exact posterior, to a wider or shifted one, or to one far too narrow.
"""

import re
import types
import warnings

import arviz as az
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from natvi.arviz_bridge import arviz_1, to_arviz
from natvi.diagnostics import (
    LooResult,
    k_hat_se,
    k_threshold,
    loo_approximate_posterior,
    pareto_k,
    verdict,
)

SIGMA, TAU, N_OBS = 1.0, 2.0, 20


def _data():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(N_OBS), rng.normal(size=N_OBS)])
    y = X @ np.array([0.5, -1.0]) + SIGMA * rng.normal(size=N_OBS)
    return X, y


def _gaussian_posterior(X, y):
    """Exact posterior N(mean, cov) of β for y ~ N(Xβ, σ²), β ~ N(0, τ²I)."""
    cov = np.linalg.inv(X.T @ X / SIGMA**2 + np.eye(X.shape[1]) / TAU**2)
    return cov @ X.T @ y / SIGMA**2, cov


def _exact_loo_elpd(X, y):
    """Σᵢ log p(yᵢ | y₋ᵢ): each leave-one-out predictive is Gaussian in closed form."""
    total = 0.0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        mean, cov = _gaussian_posterior(X[keep], y[keep])
        scale = np.sqrt(SIGMA**2 + X[i] @ cov @ X[i])
        total += stats.norm.logpdf(y[i], X[i] @ mean, scale)
    return total


def _toy(q_scale=1.0, q_shift=0.0, n_draws=2000, seed=0):
    """Draws from q = N(mean + shift·sd, (scale²)·cov) around the exact posterior."""
    X, y = _data()
    mean, cov = _gaussian_posterior(X, y)
    q_mean = mean + q_shift * np.sqrt(np.diag(cov))
    q_cov = q_scale**2 * cov
    # Cholesky, not multivariate_normal: its factor is unique, so draws are reproducible.
    rng = np.random.default_rng(seed)
    z = q_mean + rng.standard_normal((n_draws, 2)) @ np.linalg.cholesky(q_cov).T
    log_lik = stats.norm.logpdf(y, z @ X.T, SIGMA)
    log_p = log_lik.sum(axis=1) + stats.norm.logpdf(z, 0.0, TAU).sum(axis=1)
    log_q = stats.multivariate_normal(q_mean, q_cov).logpdf(z)
    model = types.SimpleNamespace(observed_data={"y": y}, coords={"coef": ["a", "b"]},
                                  dims={"beta": ["coef"], "y": ["obs"]})
    data = to_arviz(model, {"beta": z}, log_p, log_q, {"y": log_lik})
    return types.SimpleNamespace(data=data, log_p=log_p, log_q=log_q, log_lik=log_lik,
                                 exact_elpd=_exact_loo_elpd(X, y))


def _arviz_psis(log_w):
    """ArviZ's own PSIS of the raw log-weights ``log_w`` (S,): (smoothed, k̂)."""
    if arviz_1():
        from arviz_stats.base import array_stats

        return array_stats.psislw(-log_w, r_eff=1.0)  # it smooths −ary
    return az.psislw(log_w, reff=1.0)


def _reference_loo(log_lik, log_p, log_q):
    """Magnusson et al. (2019), one observation at a time, straight from the paper."""
    elpd_i, k_i, lppd_i = [], [], []
    for ll in log_lik.T:
        smoothed, k = _arviz_psis(log_p - log_q - ll)
        smoothed = smoothed - logsumexp(smoothed)
        elpd_i.append(logsumexp(smoothed + ll))
        lppd_i.append(logsumexp(ll) - np.log(ll.size))
        k_i.append(float(k))
    elpd_i = np.array(elpd_i)
    return elpd_i, np.array(k_i), np.sum(lppd_i) - elpd_i.sum()


def _quiet_loo(data, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return loo_approximate_posterior(data, **kwargs)


# ---- pareto_k ------------------------------------------------------------------


def test_pareto_k_exact_posterior_is_good():
    toy = _toy(q_scale=1.0)
    k = pareto_k(toy.log_p, toy.log_q)
    # q is the posterior: log w = log p(x) at every draw, up to rounding.
    assert k < 0.5
    assert "good" in verdict(k, 2000)


def test_pareto_k_equal_weights_is_minus_inf():
    # ArviZ's own PSIS gives inf (0.23) or nan (1.x) on weights equal up to rounding.
    rng = np.random.default_rng(0)
    log_q = rng.normal(size=200)
    assert pareto_k(log_q - 7.0 + 1e-14 * rng.normal(size=200), log_q) == -np.inf
    assert "good" in verdict(-np.inf, 200)


def test_pareto_k_wider_q_is_good_and_is_arviz_psis():
    toy = _toy(q_scale=1.3, q_shift=0.3)
    k = pareto_k(toy.log_p, toy.log_q)
    assert np.isfinite(k) and k < 0.5
    assert k == pytest.approx(float(_arviz_psis(toy.log_p - toy.log_q)[1]), abs=1e-12)


def test_pareto_k_too_narrow_q_is_large():
    # True k = 1 − 0.2² ≈ 0.96 without the shift; k̂ of so heavy a tail is itself noisy
    # (over seeds it ranges 0.5–1.2), so the q is far off and the seed fixed.
    toy = _toy(q_scale=0.2, q_shift=1.0)
    k = pareto_k(toy.log_p, toy.log_q)
    assert k > 0.7
    assert "unreliable" in verdict(k, 2000)


def test_pareto_k_nonfinite_log_p_is_inf():
    toy = _toy(n_draws=100)
    for bad in (np.nan, -np.inf, np.inf):
        log_p = toy.log_p.copy()
        log_p[3] = bad
        assert pareto_k(log_p, toy.log_q) == np.inf


@pytest.mark.parametrize(
    ("log_p", "log_q", "match"),
    [
        (np.zeros((30, 2)), np.zeros((30, 2)), "1-D"),
        (np.zeros(30), np.zeros(31), "same number of draws"),
        (np.zeros(10), np.zeros(10), "at least 25"),
        (np.zeros(30), np.r_[np.zeros(29), np.nan], "log_q"),
        (["a"] * 30, np.zeros(30), "log_p"),
    ],
)
def test_pareto_k_validates_inputs(log_p, log_q, match):
    with pytest.raises(ValueError, match=match):
        pareto_k(log_p, log_q)


# ---- verdict -------------------------------------------------------------------


def test_k_threshold():
    assert k_threshold(1000) == pytest.approx(1 - 1 / 3)
    assert k_threshold(10**6) == 0.7


@pytest.mark.parametrize(
    ("k", "n_draws", "word"),
    [
        (-np.inf, 1000, "good"),
        (0.3, 10**6, ": good"),
        (0.6, 10**6, ": ok, but"),
        (0.8, 10**6, ": unreliable"),
        (np.inf, 1000, ": unreliable"),
        (0.45, 50, "unreliable with so few draws"),  # threshold 0.41 for 50 draws
        (0.1, 4000, ": good"),  # 0.1 + 2 × 0.083 < 0.5
        (0.45, 4000, ": borderline, good to ok"),
        (0.6, 1000, ": borderline, good to unreliable"),  # threshold 0.667, se 0.16
        (0.9, 4000, ": borderline, ok to unreliable"),
        (1.3, 4000, ": unreliable"),
    ],
)
def test_verdict_tiers(k, n_draws, word):
    """Good, ok, unreliable, or borderline where k̂ ± 2 standard errors spans more than one."""
    text = verdict(k, n_draws)
    assert word in text
    if word.endswith("unreliable"):
        assert "full-rank" in text and "more draws" in text and "reparameteriz" in text
    if np.isfinite(k) and n_draws >= 1000:
        assert f"± {k_hat_se(k, n_draws):.2f}" in text


def test_k_hat_se_is_the_spread_over_seeds():
    """Log weights with a generalized-Pareto tail of known shape k (w = U^−k, U uniform):
    over 60 seeds of 2000 draws, k̂'s standard deviation is k_hat_se's within 25%, and
    its mean is k within 2 standard errors of that mean."""
    for k in (0.3, 0.7):
        ks = np.array([pareto_k(-k * np.log(np.random.default_rng(seed).random(2000)),
                                np.zeros(2000)) for seed in range(60)])
        se = k_hat_se(k, 2000)
        assert abs(ks.std(ddof=1) / se - 1) < 0.25, (k, ks.std(ddof=1), se)
        assert abs(ks.mean() - k) < 2 * se / np.sqrt(60) + 0.02, (k, ks.mean())


def test_verdict_validates_inputs():
    with pytest.raises(ValueError, match="k_hat"):
        verdict(np.nan, 1000)
    with pytest.raises(ValueError, match="n_draws"):
        verdict(0.3, 10)
    with pytest.raises(ValueError, match="n_draws"):
        verdict(0.3, 100.0)


# ---- approximate-posterior LOO -------------------------------------------------


def test_loo_exact_posterior_matches_exact_loo():
    toy = _toy(q_scale=1.0)
    res = _quiet_loo(toy.data)
    assert isinstance(res, LooResult)
    # Monte Carlo sd of elpd is about 0.05 with 2000 draws here.
    assert res.elpd == pytest.approx(toy.exact_elpd, abs=0.25)
    assert np.all(res.pareto_k < 0.7)


def test_loo_corrects_for_a_q_that_is_not_the_posterior():
    toy = _toy(q_scale=1.3, q_shift=0.3)
    res = _quiet_loo(toy.data)
    assert res.elpd == pytest.approx(toy.exact_elpd, abs=0.25)
    # Plain PSIS-LOO treats q as the posterior and is off by far more.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain = az.loo(toy.data)
    plain_elpd = plain.elpd if arviz_1() else plain["elpd_loo"]
    assert abs(plain_elpd - toy.exact_elpd) > 0.5


@pytest.mark.parametrize(("q_scale", "q_shift"), [(1.0, 0.0), (1.3, 0.3), (0.5, 0.5)])
def test_loo_matches_reference_implementation(q_scale, q_shift):
    toy = _toy(q_scale=q_scale, q_shift=q_shift, n_draws=1000)
    res = _quiet_loo(toy.data)
    elpd_i, k_i, p_loo = _reference_loo(toy.log_lik, toy.log_p, toy.log_q)
    np.testing.assert_allclose(res.elpd_i, elpd_i, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.pareto_k, k_i, rtol=1e-9, atol=1e-9)
    assert res.elpd == pytest.approx(elpd_i.sum(), abs=1e-9)
    assert res.p_loo == pytest.approx(p_loo, abs=1e-9)
    assert res.se == pytest.approx(np.sqrt(N_OBS * np.var(elpd_i, ddof=1)), abs=1e-9)


# Computed with ArviZ 0.23.4 (Python 3.11) and ArviZ 1.3.0 (Python 3.12): identical to
# every digit shown. 900 draws: both generations then fit the same 90 tail draws (they
# round S/5 and 3√S differently for other S, which moves k̂ in the third decimal).
SAME_ON_BOTH_GENERATIONS = [
    ((1.3, 0.3), {"elpd": -32.93602424, "se": 3.98034604, "p_loo": 2.13302534,
                  "max_k": -0.67896705, "k": -0.79369853}),
    ((0.5, 0.5), {"elpd": -32.29577419, "se": 3.91506383, "p_loo": 1.27637912,
                  "max_k": 1.08357627, "k": 1.00774973}),
]


@pytest.mark.parametrize(("q", "expected"), SAME_ON_BOTH_GENERATIONS)
def test_loo_same_numbers_on_both_arviz_generations(q, expected):
    toy = _toy(q_scale=q[0], q_shift=q[1], n_draws=900)
    res = _quiet_loo(toy.data)
    assert res.elpd == pytest.approx(expected["elpd"], abs=1e-6)
    assert res.se == pytest.approx(expected["se"], abs=1e-6)
    assert res.p_loo == pytest.approx(expected["p_loo"], abs=1e-6)
    assert res.pareto_k.max() == pytest.approx(expected["max_k"], abs=1e-6)
    assert pareto_k(toy.log_p, toy.log_q) == pytest.approx(expected["k"], abs=1e-6)


def test_loo_result_shapes():
    toy = _toy(n_draws=500)
    res = _quiet_loo(toy.data)
    assert res.pareto_k.shape == (N_OBS,) and res.elpd_i.shape == (N_OBS,)
    assert all(isinstance(v, float) for v in (res.elpd, res.se, res.p_loo))
    assert res.elpd == pytest.approx(res.elpd_i.sum())
    lppd = np.sum(logsumexp(toy.log_lik, axis=0) - np.log(500))
    assert res.p_loo == pytest.approx(lppd - res.elpd)


def test_loo_warns_when_k_is_large():
    toy = _toy(q_scale=0.3, q_shift=1.0, n_draws=500)
    with pytest.warns(UserWarning, match="Pareto"):
        loo_approximate_posterior(toy.data)


def test_loo_var_name_and_missing_groups():
    toy = _toy(n_draws=100)
    model = types.SimpleNamespace(observed_data={}, coords={}, dims={})
    draws = {"beta": np.zeros((100, 2))}
    two = to_arviz(model, draws, toy.log_p, toy.log_q,
                   {"y": toy.log_lik, "y2": toy.log_lik[:, :5]})
    with pytest.raises(ValueError, match="var_name"):
        loo_approximate_posterior(two)
    with pytest.raises(ValueError, match="var_name"):
        loo_approximate_posterior(two, var_name="nope")
    assert _quiet_loo(two, var_name="y2").elpd_i.shape == (5,)
    no_lik = to_arviz(model, draws, toy.log_p, toy.log_q, None)
    with pytest.raises(ValueError, match="log_likelihood"):
        loo_approximate_posterior(no_lik)


# ---- printing a LooResult (issue 12, item 14) ---------------------------------------

LOO_TABLE = """\
Approximate-posterior PSIS-LOO: draws from q, PSIS-corrected for q (Magnusson et al. 2019)
Computed from 1000 draws from q and 8 observations log-likelihood matrix.

         Estimate       SE
elpd_loo   -75.34     8.55
p_loo       12.30        -
------

Pareto k diagnostic values:
                          Count   Pct.
(-Inf, 0.67]   (good)         4   50.0%
   (0.67, 1]   (bad)          3   37.5%
    (1, Inf)   (very bad)     1   12.5%"""


def test_loo_result_prints_as_arviz_prints_loo():
    """The table of az.loo: estimates, then counts of k̂ against min(1 − 1/log10 S, 0.7)
    (0.67 for S = 1000; 1 is still bad, as the interval says)."""
    k = np.array([0.1, 0.5, 0.69, 0.8, 1.0, 1.2, -np.inf, 0.3])
    res = LooResult(-75.341, 8.548, 12.3, k, np.zeros(8), 1000)
    assert str(res) == LOO_TABLE
    assert repr(res) == ("LooResult(elpd=-75.341, se=8.548, p_loo=12.3, pareto_k=<array (8,)>, "
                         "elpd_i=<array (8,)>, n_draws=1000)")


def test_loo_result_of_loo_approximate_posterior_prints_its_draws():
    toy = _toy(q_scale=1.3, q_shift=0.3)
    res = _quiet_loo(toy.data)
    assert res.n_draws == 2000
    text = str(res)
    assert "Computed from 2000 draws from q and 20 observations" in text
    assert f"elpd_loo {res.elpd:8.2f}  {res.se:7.2f}" in text
    good = int(np.sum(res.pareto_k <= k_threshold(2000)))
    assert re.search(rf"\(-Inf, {k_threshold(2000):.2f}\]   \(good\)\s+{good} ", text)
    assert "array(" not in repr(res) and len(repr(res)) < 150


def test_loo_result_made_without_n_draws_keeps_its_five_fields():
    """Positional construction from the five original fields still works; without S the
    threshold is 0.7 and no draw count is printed."""
    res = LooResult(-1.0, 0.5, 0.2, np.array([0.65, 0.75]), np.array([-0.4, -0.6]))
    assert res.n_draws is None and res.elpd == -1.0
    assert "Computed from 2 observations" in str(res)
    assert "(-Inf, 0.70]   (good)         1   50.0%" in str(res)


def test_default_draws_follow_the_cost_of_log_p():
    """4000 draws where log p(x, z) at them is cheap, fewer as the data grow, 1000 at
    least; diagnose and importance use them."""
    import natvi
    from natvi.models import LogisticRegression

    rng = np.random.default_rng(0)
    for n, want in ((200, 4000), (200_000, 2000), (700_000, 1000)):
        X = rng.normal(size=(n, 30))
        model = LogisticRegression(X, (X[:, 0] > 0).astype(float))
        result = natvi.FitResult(model=model, posterior=model.initial_posterior(
            {"intercept": natvi.MeanFieldGaussian, "coef": natvi.MeanFieldGaussian}),
            elbo=0.0, history={}, status="max_iter", n_iter=0, optimizer="none", gain=0.0)
        assert result.default_draws() == want
    small = natvi.fit(LogisticRegression(X[:200], (X[:200, 0] > 0).astype(float)))
    assert "from 4000 draws" in small.diagnose().message
    assert len(small.importance(seed=1).weights) == 4000
