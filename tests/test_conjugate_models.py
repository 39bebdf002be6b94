"""Beta–Bernoulli and Gamma–Poisson: one natural-gradient step of 1 is exact, from any start.

The exact posteriors and log evidences are written here again from the textbook formulas
(Beta-binomial, and the Gamma–Poisson marginal as a product of negative-binomial
predictives via scipy.stats), not taken from the models' own ``exact_posterior`` and
``log_evidence``, which are checked against them separately.
"""

import numpy as np
import pytest
from scipy import special, stats

import natvi
from natvi.families import Beta, Gamma
from natvi.models import BetaBernoulli, GammaPoisson

Y_BINARY = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1])
COUNTS = np.array([3, 0, 2, 5, 1, 7, 0, 4])
EXPOSURE = np.array([1.0, 2.0, 0.5, 3.0, 1.5, 2.5, 0.25, 1.0])


def _random_starts(make, n=6, seed=0):
    """``n`` valid starting factors with both parameters log-uniform on [0.05, 50]."""
    rng = np.random.default_rng(seed)
    return [make(*np.exp(rng.uniform(np.log(0.05), np.log(50.0), size=2))) for _ in range(n)]


def _one_step(model, q):
    """η ← η + ∇_μ L: a natural-gradient step of size 1 on every factor."""
    _, grads = natvi.elbo(model, q)
    return {k: type(f).from_natural(f.natural + grads[k]) for k, f in q.items()}


def _plain_step_fit(model):
    return natvi.fit(model, natvi.optim.natural_gradient(1.0, line_search=False), max_iter=1)


# ---- Beta–Bernoulli ----------------------------------------------------------------------
A0, B0 = 2.0, 3.0


def _beta_bernoulli_truth(y, a, b):
    """Exact posterior (a', b') and log p(y) of the sequence y: the Beta-binomial pmf of
    the number of successes divided by the number of sequences with that many."""
    n, s = len(y), int(np.sum(y))
    log_evidence = stats.betabinom.logpmf(s, n, a, b) - np.log(special.comb(n, s))
    return a + s, b + n - s, float(log_evidence)


def _beta_kl(a1, b1, a2, b2):
    """KL(Beta(a1, b1) ‖ Beta(a2, b2)), the textbook closed form."""
    return (special.betaln(a2, b2) - special.betaln(a1, b1) + (a1 - a2) * special.digamma(a1)
            + (b1 - b2) * special.digamma(b1)
            + (a2 - a1 + b2 - b1) * special.digamma(a1 + b1))


@pytest.mark.parametrize("start", _random_starts(lambda a, b: Beta(a=a, b=b)),
                         ids=lambda q: f"a{float(q.a):.3g}-b{float(q.b):.3g}")
def test_beta_bernoulli_one_step_from_any_start_is_exact(start):
    """From a random Beta, one step of 1 lands on Beta(a + Σy, b + N − Σy) and the ELBO
    there is log p(y): the bound is tight because the family holds the posterior."""
    model = BetaBernoulli(Y_BINARY, a=A0, b=B0)
    a_post, b_post, log_evidence = _beta_bernoulli_truth(Y_BINARY, A0, B0)
    q = _one_step(model, {"p": start})
    np.testing.assert_allclose([q["p"].a, q["p"].b], [a_post, b_post], rtol=1e-10, atol=0)
    assert natvi.elbo(model, q)[0] == pytest.approx(log_evidence, abs=1e-8)


def test_beta_bernoulli_fit_one_plain_step_from_default_start():
    """natvi.fit with a single plain natural-gradient step of 1 is already exact."""
    model = BetaBernoulli(Y_BINARY, a=A0, b=B0)
    a_post, b_post, log_evidence = _beta_bernoulli_truth(Y_BINARY, A0, B0)
    result = _plain_step_fit(model)
    assert result.n_iter == 1
    q = result.posterior["p"]
    np.testing.assert_allclose([q.a, q.b], [a_post, b_post], rtol=1e-10, atol=0)
    assert result.elbo == pytest.approx(log_evidence, abs=1e-8)


def test_beta_bernoulli_exact_answers_of_the_model():
    model = BetaBernoulli(Y_BINARY, a=A0, b=B0)
    a_post, b_post, log_evidence = _beta_bernoulli_truth(Y_BINARY, A0, B0)
    exact = model.exact_posterior()
    np.testing.assert_allclose([exact.a, exact.b], [a_post, b_post], rtol=1e-14)
    assert model.log_evidence() == pytest.approx(log_evidence, abs=1e-10)


@pytest.mark.parametrize("start", _random_starts(lambda a, b: Beta(a=a, b=b), n=4, seed=1),
                         ids=lambda q: f"a{float(q.a):.3g}-b{float(q.b):.3g}")
def test_beta_bernoulli_elbo_is_evidence_minus_kl(start):
    """ELBO(q) = log p(y) − KL(q ‖ p(p | y)) for every Beta q (the KL in closed form here)."""
    model = BetaBernoulli(Y_BINARY, a=A0, b=B0)
    a_post, b_post, log_evidence = _beta_bernoulli_truth(Y_BINARY, A0, B0)
    value = natvi.elbo(model, {"p": start})[0]
    kl = _beta_kl(float(start.a), float(start.b), a_post, b_post)
    assert value == pytest.approx(log_evidence - kl, abs=1e-9)


def test_beta_bernoulli_densities_against_scipy():
    model = BetaBernoulli(Y_BINARY, a=A0, b=B0)
    p = np.array([0.1, 0.5, 0.93])
    pw = model.pointwise_log_likelihood({"p": p})["y"]
    np.testing.assert_allclose(pw, stats.bernoulli.logpmf(Y_BINARY, p[:, None]), rtol=1e-12)
    expected = stats.beta.logpdf(p, A0, B0) + pw.sum(axis=1)
    np.testing.assert_allclose(model.log_joint({"p": p}), expected, rtol=1e-12)


def test_beta_bernoulli_boolean_labels():
    as_bool = BetaBernoulli(Y_BINARY.astype(bool), a=A0, b=B0)
    assert as_bool.log_evidence() == BetaBernoulli(Y_BINARY, a=A0, b=B0).log_evidence()


@pytest.mark.parametrize("y", [
    [[0, 1], [1, 1]],          # 2-D
    1,                         # 0-D
    [0, np.nan, 1],
    [0, np.inf, 1],
    [0, 2, 1],
    [0, -1, 1],
    [0, 0.5, 1],
    ["0", "1"],
], ids=["2d", "0d", "nan", "inf", "two", "minus-one", "half", "str"])
def test_beta_bernoulli_bad_y(y):
    with pytest.raises(ValueError, match="^y:"):
        BetaBernoulli(y)


def test_beta_bernoulli_needs_at_least_one_outcome():
    """The docstring promises N ≥ 1: an empty y must be refused, like GammaPoisson does."""
    with pytest.raises(ValueError, match="^y:"):
        BetaBernoulli([])


@pytest.mark.parametrize("arg", ["a", "b"])
@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf, "1", None])
def test_beta_bernoulli_bad_prior(arg, value):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        BetaBernoulli(Y_BINARY, **{arg: value})


def test_beta_bernoulli_refuses_other_families():
    model = BetaBernoulli(Y_BINARY)
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(model, family=natvi.LogitNormal)


# ---- Gamma–Poisson -----------------------------------------------------------------------
SHAPE0, RATE0 = 2.0, 0.5


def _gamma_poisson_truth(y, e, a, b):
    """Exact posterior (shape, rate) and log p(y). The evidence is built as a product of
    one-step-ahead predictives: yᵢ | y₍<ᵢ₎ is negative binomial with n = aᵢ,
    p = bᵢ / (bᵢ + eᵢ), where (aᵢ, bᵢ) is the posterior after the first i − 1 counts."""
    log_evidence = 0.0
    for yi, ei in zip(y, e, strict=True):
        log_evidence += stats.nbinom.logpmf(yi, a, b / (b + ei))
        a, b = a + yi, b + ei
    return a, b, float(log_evidence)


def _gamma_kl(a1, b1, a2, b2):
    """KL(Gamma(a1, rate b1) ‖ Gamma(a2, rate b2)), the textbook closed form."""
    return ((a1 - a2) * special.digamma(a1) - special.gammaln(a1) + special.gammaln(a2)
            + a2 * (np.log(b1) - np.log(b2)) + a1 * (b2 - b1) / b1)


@pytest.mark.parametrize("start", _random_starts(lambda a, b: Gamma(shape=a, rate=b), seed=2),
                         ids=lambda q: f"shape{float(q.shape):.3g}-rate{float(q.rate):.3g}")
@pytest.mark.parametrize("exposure", [None, EXPOSURE], ids=["no-exposure", "exposure"])
def test_gamma_poisson_one_step_from_any_start_is_exact(start, exposure):
    """From a random Gamma, one step of 1 lands on Gamma(α + Σy, β + Σe) and the ELBO there
    is log p(y)."""
    model = GammaPoisson(COUNTS, shape=SHAPE0, rate=RATE0, exposure=exposure)
    e = np.ones(len(COUNTS)) if exposure is None else exposure
    shape_post, rate_post, log_evidence = _gamma_poisson_truth(COUNTS, e, SHAPE0, RATE0)
    q = _one_step(model, {"rate": start})
    np.testing.assert_allclose([q["rate"].shape, q["rate"].rate], [shape_post, rate_post],
                               rtol=1e-10, atol=0)
    assert natvi.elbo(model, q)[0] == pytest.approx(log_evidence, abs=1e-8)


def test_gamma_poisson_fit_one_plain_step_from_default_start():
    model = GammaPoisson(COUNTS, shape=SHAPE0, rate=RATE0, exposure=EXPOSURE)
    shape_post, rate_post, log_evidence = _gamma_poisson_truth(COUNTS, EXPOSURE, SHAPE0, RATE0)
    result = _plain_step_fit(model)
    assert result.n_iter == 1
    q = result.posterior["rate"]
    np.testing.assert_allclose([q.shape, q.rate], [shape_post, rate_post], rtol=1e-10, atol=0)
    assert result.elbo == pytest.approx(log_evidence, abs=1e-8)


def test_gamma_poisson_exact_answers_of_the_model():
    model = GammaPoisson(COUNTS, shape=SHAPE0, rate=RATE0, exposure=EXPOSURE)
    shape_post, rate_post, log_evidence = _gamma_poisson_truth(COUNTS, EXPOSURE, SHAPE0, RATE0)
    exact = model.exact_posterior()
    np.testing.assert_allclose([exact.shape, exact.rate], [shape_post, rate_post], rtol=1e-14)
    assert model.log_evidence() == pytest.approx(log_evidence, abs=1e-10)


@pytest.mark.parametrize("start", _random_starts(lambda a, b: Gamma(shape=a, rate=b), n=4,
                                                 seed=3),
                         ids=lambda q: f"shape{float(q.shape):.3g}-rate{float(q.rate):.3g}")
def test_gamma_poisson_elbo_is_evidence_minus_kl(start):
    model = GammaPoisson(COUNTS, shape=SHAPE0, rate=RATE0, exposure=EXPOSURE)
    shape_post, rate_post, log_evidence = _gamma_poisson_truth(COUNTS, EXPOSURE, SHAPE0, RATE0)
    value = natvi.elbo(model, {"rate": start})[0]
    kl = _gamma_kl(float(start.shape), float(start.rate), shape_post, rate_post)
    assert value == pytest.approx(log_evidence - kl, abs=1e-9)


def test_gamma_poisson_densities_against_scipy():
    model = GammaPoisson(COUNTS, shape=SHAPE0, rate=RATE0, exposure=EXPOSURE)
    lam = np.array([0.2, 1.3, 4.0])
    pw = model.pointwise_log_likelihood({"rate": lam})["counts"]
    np.testing.assert_allclose(pw, stats.poisson.logpmf(COUNTS, lam[:, None] * EXPOSURE),
                               rtol=1e-12)
    expected = stats.gamma.logpdf(lam, SHAPE0, scale=1 / RATE0) + pw.sum(axis=1)
    np.testing.assert_allclose(model.log_joint({"rate": lam}), expected, rtol=1e-12)


@pytest.mark.parametrize("counts", [
    [],
    [[1, 2], [3, 4]],
    3,
    [1, -1, 2],
    [1, 1.5, 2],
    [1, np.nan, 2],
    [1, np.inf, 2],
    ["1", "2"],
], ids=["empty", "2d", "0d", "negative", "non-integer", "nan", "inf", "str"])
def test_gamma_poisson_bad_counts(counts):
    with pytest.raises(ValueError, match="^counts:"):
        GammaPoisson(counts)


@pytest.mark.parametrize("exposure", [
    [1.0, 0.0, 1.0],
    [1.0, -2.0, 1.0],
    [1.0, np.nan, 1.0],
    [1.0, np.inf, 1.0],
    [1.0, 1.0],
    [[1.0, 1.0, 1.0]],
], ids=["zero", "negative", "nan", "inf", "short", "2d"])
def test_gamma_poisson_bad_exposure(exposure):
    with pytest.raises(ValueError, match="^exposure:"):
        GammaPoisson([1, 2, 3], exposure=exposure)


@pytest.mark.parametrize("arg", ["shape", "rate"])
@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf, "1", None])
def test_gamma_poisson_bad_prior(arg, value):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        GammaPoisson([1, 2, 3], **{arg: value})


def test_gamma_poisson_refuses_other_families():
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(GammaPoisson([1, 2, 3]), family=natvi.LogNormal)
