"""Posterior predictive draws and predictions on new rows, against exact answers.

- A conjugate linear regression (known noise, full-rank q = the exact posterior): the
  replicated data and the predictive intervals of new rows have the exact predictive
  distribution N(dᵀm, dᵀSd + σ²) (means and variances within Monte Carlo error).
- Every GLM: the replicated responses average to the exact mean of the response under q,
  within Monte Carlo error, and the mean of the response is an exact integral (scipy's
  adaptive quadrature checks it).
- Logistic predictions on new rows match the scikit-learn estimator's.
- ArviZ groups on whichever generation is installed, with ArviZ's own plot_ppc and loo_pit.
"""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import natvi
from natvi import predictive
from natvi.arviz_bridge import arviz_1
from natvi.models import (
    EightSchools,
    LinearRegression,
    LogisticRegression,
    PoissonRegression,
    ProbitRegression,
)
from natvi.models.logistic_regression import expected_sigmoid

matplotlib.use("Agg")

N, D, SIGMA = 60, 3, 0.7
#: |z| bound of the Monte Carlo checks: with ~100 checks per test the chance that one
#: exceeds it under the null is below 1e-3
Z = 4.5


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    eta = 0.3 + X @ np.array([0.8, -0.5, 0.3])
    return X, eta, rng


@pytest.fixture(scope="module")
def conjugate():
    """Linear regression with known noise; full-rank q is its exact posterior."""
    X, eta, rng = _data()
    model = LinearRegression(X, eta + SIGMA * rng.normal(size=N), prior_scale=1.0,
                             noise_scale=SIGMA)
    result = natvi.fit(model, family=natvi.FullRankGaussian, seed=0)
    return model, result


def _exact_predictive(model, X):
    """Mean and variance of the exact posterior predictive of new y at rows X."""
    mean, cov = model.exact_posterior()
    design = np.hstack([np.ones((len(X), 1)), X])
    return design @ mean, np.einsum("ij,jk,ik->i", design, cov, design) + SIGMA**2


def test_conjugate_fit_is_exact(conjugate):
    model, result = conjugate
    mean, cov = model.exact_posterior()
    q = result.posterior["intercept", "coef"]
    np.testing.assert_allclose(q.loc, mean, atol=1e-9)
    np.testing.assert_allclose(q.cov, cov, atol=1e-9)


def _check_moments(draws, mean, var):
    """Per column of ``draws`` (S, N): sample mean and variance against ``mean`` and
    ``var`` within Z standard errors (the variance's for a normal sample, ``√(2/(S−1))``)."""
    s = draws.shape[0]
    z_mean = (draws.mean(axis=0) - mean) / np.sqrt(var / s)
    z_var = (draws.var(axis=0, ddof=1) - var) / (var * np.sqrt(2 / (s - 1)))
    assert np.max(np.abs(z_mean)) < Z, np.max(np.abs(z_mean))
    assert np.max(np.abs(z_var)) < Z, np.max(np.abs(z_var))


def test_posterior_predictive_of_conjugate_regression_is_exact(conjugate):
    model, result = conjugate
    data = result.to_arviz(draws=4000, seed=1, posterior_predictive=True)
    replicated = data["posterior_predictive"]["y"].values[0]
    assert replicated.shape == (4000, N)
    _check_moments(replicated, *_exact_predictive(model, model.X))
    # each data set comes from one posterior draw: E[y_rep − dᵀw] = 0, Var = σ²
    w = np.column_stack([data["posterior"]["intercept"].values[0],
                         data["posterior"]["coef"].values[0]])
    noise = replicated - w @ np.hstack([np.ones((N, 1)), model.X]).T
    _check_moments(noise, 0.0, SIGMA**2)


def test_posterior_predictive_detects_a_wrong_noise(conjugate):
    # the check above can fail: replicated data with the noise scale doubled do not pass
    model, result = conjugate
    replicated = result.to_arviz(draws=4000, seed=1, posterior_predictive=True)[
        "posterior_predictive"]["y"].values[0]
    mean, var = _exact_predictive(model, model.X)
    wrong = mean + 2 * (replicated - mean)
    with pytest.raises(AssertionError):
        _check_moments(wrong, mean, var)


def test_predictions_of_conjugate_regression_are_exact(conjugate):
    model, result = conjugate
    X_new, _, _ = _data(seed=5, n=20)
    prob = 0.8
    pred = result.predict(X_new, draws=4000, seed=2, prob=prob)
    mean, var = _exact_predictive(model, X_new)
    eta_var = var - SIGMA**2
    z = stats.norm.ppf(0.5 + prob / 2)
    np.testing.assert_allclose(pred.linear_predictor.mean, mean, atol=1e-9)
    np.testing.assert_allclose(pred.linear_predictor.upper, mean + z * np.sqrt(eta_var),
                               atol=1e-9)
    np.testing.assert_allclose(pred.linear_predictor.lower, mean - z * np.sqrt(eta_var),
                               atol=1e-9)
    np.testing.assert_allclose(pred.response.mean, mean, atol=1e-9)
    _check_moments(pred.y, mean, var)
    _check_moments(pred.eta, mean, eta_var)
    # sample quantiles: standard error √(p(1 − p)/S) / f(q_p) of the exact normal's
    for p, got in ((0.5 - prob / 2, pred.response.lower), (0.5 + prob / 2, pred.response.upper)):
        exact = stats.norm.ppf(p, mean, np.sqrt(var))
        se = np.sqrt(p * (1 - p) / 4000) / stats.norm.pdf(exact, mean, np.sqrt(var))
        assert np.max(np.abs(got - exact) / se) < Z
    table = pred.to_dataframe()
    assert list(table.columns) == ["eta_mean", "eta_lower", "eta_upper", "mean", "lower",
                                   "upper"]
    np.testing.assert_array_equal(table["upper"], pred.response.upper)


def test_unknown_noise_replicates_with_the_drawn_noise():
    X, eta, rng = _data()
    model = LinearRegression(X, eta + SIGMA * rng.normal(size=N))
    result = natvi.fit(model, seed=0)
    z = result.sample(3000, seed=3)
    y = predictive.replicate(model, z, np.random.default_rng(4))["y"]
    mean = predictive.linear_predictor(z, model.X)
    standardized = (y - mean) * np.sqrt(z["noise_precision"])[:, None]
    _check_moments(standardized, 0.0, 1.0)


# ---- every GLM: the likelihood's replicates and the exact mean of the response ----------
def _glm(cls, seed=0):
    X, eta, rng = _data(seed)
    if cls is PoissonRegression:
        exposure = rng.uniform(0.5, 2.0, size=N)
        return cls(X, rng.poisson(exposure * np.exp(0.5 * eta)), exposure=exposure)
    link = stats.norm.cdf if cls is ProbitRegression else (lambda e: 1 / (1 + np.exp(-e)))
    return cls(X, (rng.random(N) < link(eta)).astype(int))


def _response_var(cls, mean, var):
    """Variance of the posterior predictive of one y, for η ~ N(mean, var)."""
    if cls is PoissonRegression:  # E[λ] + Var[λ], λ = e^η log-normal
        return np.exp(mean + var / 2) + np.expm1(var) * np.exp(2 * mean + var)
    p = _exact_mean(cls, mean, var)
    return p * (1 - p)


def _exact_mean(cls, mean, var):
    """E[E[y | η]] for η ~ N(mean, var), by scipy's adaptive quadrature in t = (η − mean)/sd,
    split at the inverse link's bend at η = 0."""
    inverse_link = {LogisticRegression: lambda e: 1 / (1 + np.exp(-e)),
                    ProbitRegression: stats.norm.cdf, PoissonRegression: np.exp}[cls]
    out = []
    for m, v in zip(mean, var, strict=True):
        sd = np.sqrt(v)
        bend = -m / sd
        out.append(integrate.quad(lambda t, m=m, sd=sd: inverse_link(m + sd * t)
                                  * stats.norm.pdf(t), -12, 12,
                                  points=[bend] if abs(bend) < 12 else None,
                                  epsabs=1e-14, epsrel=1e-12, limit=400)[0])
    return np.array(out)


@pytest.mark.parametrize("cls", [LogisticRegression, ProbitRegression, PoissonRegression])
def test_glm_replicates_follow_the_likelihood(cls):
    model = _glm(cls)
    result = natvi.fit(model, seed=0)
    data = result.to_arviz(draws=4000, seed=1, posterior_predictive=True)
    replicated = data["posterior_predictive"]["y"].values[0]
    assert replicated.dtype.kind == "i"  # labels and counts: ArviZ bins them
    mean, var = model.design.predictor_moments(result.posterior)
    mean = mean + model.offset
    expected = model.expected_response(mean, var)
    np.testing.assert_allclose(expected, _exact_mean(cls, mean, var), rtol=1e-9, atol=1e-12)
    se = np.sqrt(_response_var(cls, mean, var) / 4000)
    assert np.max(np.abs(replicated.mean(axis=0) - expected) / se) < Z


@pytest.mark.parametrize("cls", [LogisticRegression, ProbitRegression, PoissonRegression])
def test_expected_response_is_the_exact_integral(cls):
    # narrow rows, wide ones, and both sides of the logistic rule's switch at |mean| = 8 sd
    mean = np.array([-3.0, -0.4, 0.0, 0.7, 2.5, 0.2, -1.0, 1.5, 8.5, -20.0, -19.0])
    var = np.array([1e-30, 1e-6, 0.3, 1.0, 4.0, 25.0, 100.0, 900.0, 1.1, 6.0, 6.0])
    if cls is PoissonRegression:
        var = var[:6]
        mean = mean[:6]
    np.testing.assert_allclose(_glm(cls).expected_response(mean, var),
                               _exact_mean(cls, mean, var), rtol=1e-9, atol=1e-13)


def test_expected_sigmoid_symmetry():
    # E[σ(η)] + E[σ(−η)] = 1, and E[σ(η)] = ½ at mean 0 for any variance
    mean = np.linspace(-5, 5, 11)
    var = np.geomspace(1e-4, 1e4, 11)
    np.testing.assert_allclose(expected_sigmoid(mean, var) + expected_sigmoid(-mean, var), 1.0,
                               atol=1e-14)
    np.testing.assert_allclose(expected_sigmoid(np.zeros(11), var), 0.5, atol=1e-15)


def test_poisson_predictions_take_exposures():
    model = _glm(PoissonRegression)
    result = natvi.fit(model, seed=0)
    X_new, _, _ = _data(seed=7, n=5)
    one = result.predict(X_new, draws=200, seed=0)
    three = result.predict(X_new, draws=200, seed=0, exposure=np.full(5, 3.0))
    np.testing.assert_allclose(three.linear_predictor.mean,
                               one.linear_predictor.mean + np.log(3.0), atol=1e-12)
    np.testing.assert_allclose(three.response.mean, 3 * one.response.mean, rtol=1e-12)
    constant = three.to_arviz()["predictions_constant_data"]
    np.testing.assert_allclose(constant["exposure"].values, 3.0)


# ---- logistic predictions against the scikit-learn estimator ---------------------------
def test_logistic_predictions_match_the_sklearn_estimator():
    from natvi.sklearn import BayesianLogisticRegression

    X, _, rng = _data(seed=1, n=200)
    y = (rng.random(200) < 1 / (1 + np.exp(-X @ np.array([1.5, -1.0, 0.5])))).astype(int)
    X_new = rng.normal(size=(25, D)) * 2
    result = natvi.fit(LogisticRegression(X, y, prior_scale=1.0), seed=0)
    pred = result.predict(X_new, draws=100, seed=0)
    common = {"prior_scale": 1.0, "intercept_scale": 2.5, "family": "full_rank"}
    probit = BayesianLogisticRegression(**common).fit(X, y)
    mean, var = probit.predictor_moments(X_new)
    np.testing.assert_allclose(pred.linear_predictor.mean, mean, rtol=1e-6, atol=1e-8)
    half = stats.norm.ppf(0.97) * np.sqrt(var)
    np.testing.assert_allclose(pred.linear_predictor.upper, mean + half, rtol=1e-6, atol=1e-8)
    # the estimator's sampling predictive: a Monte Carlo estimate of the same exact mean
    draws = 40_000
    sampling = BayesianLogisticRegression(**common, predictive="sampling", draws=draws,
                                          random_state=3).fit(X, y)
    p_mc = sampling.predict_proba(X_new)[:, 1]
    se = np.sqrt(pred.response.mean * (1 - pred.response.mean) / draws)  # no more than this
    assert np.max(np.abs(p_mc - pred.response.mean) / np.maximum(se, 1e-12)) < Z
    # the probit approximation σ(μ/√(1 + πv/8)) is within its known error (< 0.02)
    np.testing.assert_allclose(probit.predict_proba(X_new)[:, 1], pred.response.mean, atol=0.02)
    np.testing.assert_array_equal(probit.predict(X_new), (pred.response.mean > 0.5).astype(int))


# ---- ArviZ --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def logistic():
    X, eta, rng = _data()
    names = ["age", "dose", "weight"]
    model = LogisticRegression(pd.DataFrame(X, columns=names),
                               (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(int))
    return natvi.fit(model, seed=0)


def test_arviz_groups(logistic):
    data = logistic.to_arviz(draws=300, seed=1, posterior_predictive=True)
    for group in ("posterior", "posterior_predictive", "observed_data", "log_likelihood",
                  "sample_stats"):
        assert group in data
    assert data["posterior_predictive"]["y"].dims == ("chain", "draw", "obs")
    assert data["posterior_predictive"]["y"].shape == (1, 300, N)
    assert "posterior_predictive" not in logistic.to_arviz(draws=30, seed=1)
    # the posterior draws are those of sample() with the same seed, replicates or not
    np.testing.assert_array_equal(data["posterior"]["coef"].values[0],
                                  logistic.sample(300, seed=1)["coef"])


def test_posterior_predictive_is_reproducible(logistic):
    def replicated(seed):
        return logistic.to_arviz(draws=50, seed=seed, posterior_predictive=True)[
            "posterior_predictive"]["y"].values

    np.testing.assert_array_equal(replicated(4), replicated(4))
    assert not np.array_equal(replicated(4), replicated(5))
    a = logistic.to_arviz(draws=50, seed=np.random.default_rng(9), posterior_predictive=True)
    b = logistic.to_arviz(draws=50, seed=np.random.default_rng(9), posterior_predictive=True)
    np.testing.assert_array_equal(a["posterior_predictive"]["y"].values,
                                  b["posterior_predictive"]["y"].values)


def test_arviz_plot_ppc_and_loo_pit(logistic):
    import arviz as az
    import matplotlib.pyplot as plt

    data = logistic.to_arviz(draws=200, seed=1, posterior_predictive=True)
    if arviz_1():
        az.plot_ppc_pava(data, backend="matplotlib")  # binary data: the calibration plot
        pit = az.loo_pit(data)["y"].values
    else:
        az.plot_ppc(data, num_pp_samples=20)
        pit = az.loo_pit(data, y="y")
    plt.close("all")
    assert pit.shape == (N,) and np.all((pit >= 0) & (pit <= 1))


def test_prediction_groups(logistic):
    X_new = pd.DataFrame(np.random.default_rng(3).normal(size=(4, D)),
                         columns=["dose", "weight", "age"])  # another order: by name
    pred = logistic.predict(X_new, draws=100, seed=0)
    data = pred.to_arviz()
    assert data["predictions"]["y"].dims == ("chain", "draw", "obs")
    assert data["predictions"]["y"].shape == (1, 100, 4)
    assert data["predictions"]["eta"].shape == (1, 100, 4)
    assert data["predictions_constant_data"]["X"].dims == ("obs", "feature")
    assert list(data["predictions_constant_data"]["feature"].values) == ["age", "dose",
                                                                           "weight"]
    np.testing.assert_array_equal(data["predictions_constant_data"]["X"].values,
                                  X_new[["age", "dose", "weight"]].to_numpy())
    np.testing.assert_array_equal(data["posterior"]["coef"].values[0], pred.draws["coef"])
    # η of each draw is the draw's own linear predictor
    np.testing.assert_allclose(pred.eta, pred.draws["intercept"][:, None]
                               + pred.draws["coef"] @ pred.X.T, atol=1e-12)


# ---- sizes and bad input ---------------------------------------------------------------
def test_posterior_predictive_memory_is_checked_first(logistic, monkeypatch):
    draws = 1000
    model = logistic.model
    from natvi.validation import DENSITY_VALUES, SAMPLE_ARRAYS

    without = (8 * draws * (SAMPLE_ARRAYS * (D + 1) + DENSITY_VALUES)
               + model.log_density_memory(draws, True))
    monkeypatch.setenv("NATVI_MAX_BYTES", str(without + predictive.replicate_memory(model, draws)
                                               // 2))
    logistic.to_arviz(draws=draws, seed=0)  # fits without the replicated data
    with pytest.raises(ValueError, match=r"^draws: .*replicated data.* over the limit"):
        logistic.to_arviz(draws=draws, seed=0, posterior_predictive=True)
    with pytest.raises(ValueError,
                       match=r"^draws: 1000 draws from q and the predictions at 4000 rows"):
        logistic.predict(np.zeros((4000, D)), draws=draws)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"X_new": np.zeros((2, D + 1))}, r"^X_new: expected 3 columns"),
    ({"X_new": np.zeros(D)}, r"^X_new: expected a 2-D array"),
    ({"X_new": np.array([[0.0, np.nan, 1.0]])}, r"^X_new: .*NaN.*'x1'"),
    ({"X_new": pd.DataFrame(np.zeros((2, D)), columns=["age", "dose", "height"])},
     r"^X_new: expected the training columns by name; missing \['weight'\], "
     r"unexpected \['height'\]"),
    ({"X_new": pd.DataFrame({"age": ["a"], "dose": [1.0], "weight": [1.0]})},
     r"^X_new: .*non-numeric.*'age'"),
    ({"prob": 1.0}, r"^prob: "), ({"prob": "0.9"}, r"^prob: "), ({"prob": True}, r"^prob: "),
    ({"draws": 0}, r"^draws: "), ({"seed": -1}, r"^seed: "),
    ({"exposure": np.ones(2)}, r"^exposure: LogisticRegression has no exposure"),
])
def test_bad_prediction_input(logistic, kwargs, match):
    args = {"X_new": np.zeros((2, D)), **kwargs}
    with pytest.raises(ValueError, match=match):
        logistic.predict(**args)


def test_bad_exposure():
    result = natvi.fit(_glm(PoissonRegression), seed=0)
    with pytest.raises(ValueError, match=r"^exposure: expected a 1-D array of length 2"):
        result.predict(np.zeros((2, D)), exposure=np.ones(3))
    with pytest.raises(ValueError, match=r"^exposure: expected values > 0"):
        result.predict(np.zeros((2, D)), exposure=np.array([1.0, 0.0]))


def test_models_without_replicates_say_so():
    result = natvi.fit(EightSchools(), seed=0, max_iter=5)
    with pytest.raises(ValueError, match=r"^posterior_predictive: EightSchools cannot draw"):
        result.to_arviz(draws=10, posterior_predictive=True)
    with pytest.raises(ValueError, match=r"^model: EightSchools cannot draw"):
        result.predict(np.zeros((2, 1)))


@pytest.mark.parametrize("call", ["to_arviz", "predict"])
def test_memory_estimates_are_the_peak_to_a_factor_of_two(monkeypatch, call):
    from test_sizes import _estimate_and_peak

    from natvi import validation

    X, eta, rng = _data(n=2000)
    result = natvi.fit(LogisticRegression(X, (rng.random(2000) < 0.5).astype(int)), seed=0)
    X_new = rng.normal(size=(2000, D))

    def run(draws):
        if call == "to_arviz":
            return result.to_arviz(draws=draws, seed=0, posterior_predictive=True)
        return result.predict(X_new, draws=draws, seed=0)

    run(30)  # imports and caches out of the measurement
    estimate, peak = _estimate_and_peak(monkeypatch, validation, lambda: run(500))
    assert peak / 2 <= estimate <= 2 * peak, (estimate, peak)
