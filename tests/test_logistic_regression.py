"""Bayesian logistic regression: the quadrature ELBO, its optimum, densities and input checks.

The mean-field optimum on the breast-cancer data is computed here independently of
natvi's engine: the ELBO is written again in plain NumPy on the expectations of
:mod:`natvi.reference` (Gauss–Hermite with 200 nodes, or a Fourier-space split for wide
predictors) and maximized by scipy's L-BFGS-B over (mean, log-scale).
"""

import numpy as np
import pytest
from optimum import maximize
from scipy import optimize, special, stats

import natvi
from natvi import reference
from natvi.data import load_breast_cancer
from natvi.families import MeanFieldGaussian
from natvi.models import LogisticRegression


# ---- an independent ELBO ----------------------------------------------------------------
def _independent_elbo(u, Z, y, prior_scales):
    """ELBO of N(m, diag(s²)) over all coefficients (intercept as a column of ones).

    ``u = (m, log s)``. Returns the value and its gradient in ``u``. Each data term is the
    expectation over the 1-D predictor ηᵢ ~ N(zᵢᵀm, Σⱼ zᵢⱼ² sⱼ²), from
    :func:`natvi.reference.logistic` (which shares no code with natvi's engine), with its
    derivatives in the predictor's mean and variance.
    """
    d = Z.shape[1]
    m, log_s = u[:d], u[d:]
    s2 = np.exp(2 * log_s)
    rows, g_a, g_b = reference.logistic(y, Z @ m, (Z**2) @ s2)
    p2 = prior_scales**2
    value = (np.sum(rows)
             + np.sum(-0.5 * np.log(2 * np.pi * p2) - (m**2 + s2) / (2 * p2))   # E log prior
             + np.sum(0.5 * np.log(2 * np.pi * np.e) + log_s))                    # entropy
    grad_m = Z.T @ g_a - m / p2
    grad_log_s = 2 * s2 * ((Z**2).T @ g_b) - s2 / p2 + 1.0  # ∂bᵢ/∂log sⱼ = 2 zᵢⱼ² sⱼ²
    return value, np.concatenate([grad_m, grad_log_s])


@pytest.fixture(scope="module")
def breast_cancer():
    X, y, names = load_breast_cancer()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, y, names


@pytest.fixture(scope="module")
def lbfgs_optimum(breast_cancer):
    """The mean-field optimum of the independent ELBO (all 31 coordinates): L-BFGS-B, then
    Newton steps."""
    X, y, _ = breast_cancer
    Z = np.column_stack([np.ones(len(y)), X])
    scales = np.ones(Z.shape[1])  # prior_scale = intercept_scale = 1

    opt = maximize(lambda u: _independent_elbo(u, Z, y, scales), np.zeros(2 * Z.shape[1]))
    d = Z.shape[1]
    return {"elbo": opt["value"], "grad_norm": opt["grad_norm"], "nfev": opt["nfev"],
            "loc": opt["u"][:d], "scale": np.exp(opt["u"][d:]), "u": opt["u"], "Z": Z}


@pytest.fixture(scope="module")
def ngd_fit(breast_cancer):
    X, y, _ = breast_cancer
    model = LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)
    return natvi.fit(model, "ngd", family=MeanFieldGaussian)


def _stack(posterior, attr):
    return np.concatenate([np.atleast_1d(getattr(posterior["intercept"], attr)),
                           getattr(posterior["coef"], attr)])


def _synthetic(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    eta = 0.3 + X @ np.linspace(1.0, -1.0, d)
    y = (rng.random(n) < special.expit(eta)).astype(int)
    return X, y


# ---- the optimum on breast cancer ----------------------------------------------------
def test_independent_elbo_gradient_is_consistent():
    X, y = _synthetic()
    Z = np.column_stack([np.ones(len(y)), X])
    u = np.random.default_rng(1).normal(scale=0.3, size=2 * Z.shape[1])
    scales = np.array([2.0, 1.0, 1.0, 1.0])
    err = optimize.check_grad(lambda v: _independent_elbo(v, Z, y, scales)[0],
                              lambda v: _independent_elbo(v, Z, y, scales)[1], u)
    assert err < 1e-5


def test_lbfgs_reaches_a_stationary_point(lbfgs_optimum):
    assert lbfgs_optimum["grad_norm"] < 1e-6


def test_natvi_elbo_matches_the_independent_elbo(breast_cancer, lbfgs_optimum):
    X, y, _ = breast_cancer
    model = LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)
    loc, scale = lbfgs_optimum["loc"], lbfgs_optimum["scale"]
    posterior = {"intercept": MeanFieldGaussian(loc=loc[0], scale=scale[0]),
                 "coef": MeanFieldGaussian(loc=loc[1:], scale=scale[1:])}
    value, nat = natvi.elbo(model, posterior)
    assert value == pytest.approx(lbfgs_optimum["elbo"], abs=1e-9)
    # Stationary for natvi too: ∇_μ L, chained to (m, log s), is L-BFGS's gradient.
    u_grad = np.concatenate([posterior["intercept"].unconstrained_grad(nat["intercept"])[None],
                             posterior["coef"].unconstrained_grad(nat["coef"])])
    _, g_indep = _independent_elbo(lbfgs_optimum["u"], lbfgs_optimum["Z"], y,
                                   np.ones(len(loc)))
    d = len(loc)
    np.testing.assert_allclose(u_grad[:, 0], g_indep[:d], atol=1e-9)
    np.testing.assert_allclose(u_grad[:, 1], g_indep[d:], atol=1e-9)


def test_ngd_reaches_the_optimum_within_50_iterations(ngd_fit, lbfgs_optimum):
    elbos = ngd_fit.history["elbo"]
    close = np.flatnonzero(elbos >= lbfgs_optimum["elbo"] - 0.01)
    assert close.size and close[0] <= 50, f"first iteration within 0.01 nats: {close[:1]}"
    assert ngd_fit.converged
    assert ngd_fit.elbo == pytest.approx(lbfgs_optimum["elbo"], abs=1e-7)
    # Rounding aside, NGD cannot beat the optimum.
    assert ngd_fit.elbo <= lbfgs_optimum["elbo"] + 1e-9


def test_ngd_posterior_agrees_with_lbfgs(ngd_fit, lbfgs_optimum):
    loc, scale = _stack(ngd_fit.posterior, "loc"), _stack(ngd_fit.posterior, "scale")
    ref_loc, ref_scale = lbfgs_optimum["loc"], lbfgs_optimum["scale"]
    # Standard deviations: 1e-4 relative.
    np.testing.assert_allclose(scale, ref_scale, rtol=1e-4, atol=0)
    # Means: 1e-4 relative, with an absolute floor of 1e-4 posterior sd for
    # coefficients near 0:  |m − m*| ≤ 1e-4 · (|m*| + sd*).
    np.testing.assert_array_less(np.abs(loc - ref_loc), 1e-4 * (np.abs(ref_loc) + ref_scale))


# ---- the expected log joint -----------------------------------------------------------
def _random_posterior(d, seed):
    rng = np.random.default_rng(seed)
    return {"intercept": MeanFieldGaussian(loc=rng.normal(scale=0.5),
                                           scale=rng.uniform(0.2, 0.8)),
            "coef": MeanFieldGaussian(loc=rng.normal(scale=0.5, size=d),
                                      scale=rng.uniform(0.2, 0.8, size=d))}


def _log_joint_scipy(X, y, draws, prior_scale, intercept_scale):
    eta = draws["intercept"][:, None] + draws["coef"] @ X.T
    loglik = np.sum(stats.bernoulli.logpmf(y, special.expit(eta)), axis=1)
    return (loglik + stats.norm.logpdf(draws["intercept"], 0, intercept_scale)
            + np.sum(stats.norm.logpdf(draws["coef"], 0, prior_scale), axis=1))


def test_expected_log_joint_against_monte_carlo():
    X, y = _synthetic()
    model = LogisticRegression(X, y, prior_scale=1.5, intercept_scale=3.0)
    posterior = _random_posterior(X.shape[1], seed=2)
    value, _ = model.expected_log_joint(posterior, None)

    rng = np.random.default_rng(3)
    S = 200_000
    z = {"intercept": posterior["intercept"].loc
         + posterior["intercept"].scale * rng.standard_normal(S),
         "coef": posterior["coef"].loc
         + posterior["coef"].scale * rng.standard_normal((S, X.shape[1]))}
    eta = z["intercept"][:, None] + z["coef"] @ X.T
    lj = (np.sum(y * special.log_expit(eta) + (1 - y) * special.log_expit(-eta), axis=1)
          + stats.norm.logpdf(z["intercept"], 0, 3.0)
          + np.sum(stats.norm.logpdf(z["coef"], 0, 1.5), axis=1))
    se = lj.std(ddof=1) / np.sqrt(S)
    assert abs(value - lj.mean()) < 5 * se, (value, lj.mean(), se)


def test_expected_log_joint_gradient_in_mean_parameters():
    X, y = _synthetic()
    model = LogisticRegression(X, y, prior_scale=1.5, intercept_scale=3.0)
    posterior = _random_posterior(X.shape[1], seed=4)
    _, grads = model.expected_log_joint(posterior, None)
    h = 1e-6
    for name, q in posterior.items():
        mu = np.array(q.mean_params)
        fd = np.zeros_like(mu)
        for idx in np.ndindex(mu.shape):
            vals = []
            for sign in (1, -1):
                mu2 = mu.copy()
                mu2[idx] += sign * h
                moved = dict(posterior, **{name: MeanFieldGaussian.from_mean(mu2)})
                vals.append(model.expected_log_joint(moved, None)[0])
            fd[idx] = (vals[0] - vals[1]) / (2 * h)
        assert grads[name].shape == mu.shape
        np.testing.assert_allclose(grads[name], fd, rtol=1e-6, atol=1e-6)


# ---- densities at draws ------------------------------------------------------------
def test_log_joint_and_pointwise_against_scipy():
    X, y = _synthetic(n=25, d=4)
    model = LogisticRegression(X, y, prior_scale=0.7, intercept_scale=2.0)
    rng = np.random.default_rng(5)
    S = 7
    draws = {"intercept": rng.normal(size=S), "coef": rng.normal(size=(S, 4))}
    lj = model.log_joint(draws)
    assert lj.shape == (S,)
    np.testing.assert_allclose(lj, _log_joint_scipy(X, y, draws, 0.7, 2.0), rtol=1e-12)
    pw = model.pointwise_log_likelihood(draws)
    assert set(pw) == {"y"} and pw["y"].shape == (S, 25)
    eta = draws["intercept"][:, None] + draws["coef"] @ X.T
    np.testing.assert_allclose(pw["y"], stats.bernoulli.logpmf(y, special.expit(eta)),
                               rtol=1e-12)


def test_without_intercept_only_coef():
    X, y = _synthetic(n=25, d=2)
    model = LogisticRegression(X, y, prior_scale=0.7, fit_intercept=False)
    assert list(model.latents) == ["coef"]
    assert model.latents["coef"].shape == (2,)
    draws = {"coef": np.random.default_rng(6).normal(size=(5, 2))}
    expected = (np.sum(stats.bernoulli.logpmf(y, special.expit(draws["coef"] @ X.T)), axis=1)
                + np.sum(stats.norm.logpdf(draws["coef"], 0, 0.7), axis=1))
    np.testing.assert_allclose(model.log_joint(draws), expected, rtol=1e-12)
    result = natvi.fit(model, "ngd", family=MeanFieldGaussian)
    assert result.converged and list(result.posterior) == ["coef"]


def test_dataframe_columns_become_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _synthetic(n=25, d=3)
    df = pd.DataFrame(X, columns=["age", "dose", "weight"])
    model = LogisticRegression(df, pd.Series(y))
    assert model.feature_names == ["age", "dose", "weight"]
    assert list(model.coords["feature"]) == ["age", "dose", "weight"]
    assert model.dims["coef"] == ["feature"]
    np.testing.assert_array_equal(model.X, X)


def test_dataframe_nullable_numeric_columns_are_accepted():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [0.5, -1.0, 2.0, 0.1],
                       "n": pd.array([1, 2, 3, 4], dtype="Int64"),
                       "flag": pd.array([True, False, True, False], dtype="boolean")})
    model = LogisticRegression(df, [0, 1, 1, 0])
    np.testing.assert_array_equal(model.X, [[0.5, 1, 1], [-1, 2, 0], [2, 3, 1], [0.1, 4, 0]])
    with pytest.raises(ValueError, match="^X:"):  # a missing value in a nullable column
        LogisticRegression(df.assign(n=pd.array([1, None, 3, 4], dtype="Int64")), [0, 1, 1, 0])


def test_boolean_labels_accepted():
    X, y = _synthetic()
    as_int = LogisticRegression(X, y)
    as_bool = LogisticRegression(X, y.astype(bool))
    np.testing.assert_array_equal(as_bool.y, y)
    q = _random_posterior(X.shape[1], seed=7)
    assert as_bool.expected_log_joint(q, None)[0] == as_int.expected_log_joint(q, None)[0]


# ---- bad input -----------------------------------------------------------------------
_X = np.array([[0.1, 0.2], [0.3, -0.4], [1.0, 0.0]])
_Y = np.array([0, 1, 1])


@pytest.mark.parametrize("X", [
    np.ones(3),                                      # 1-D
    np.ones((3, 2, 2)),                              # 3-D
    np.array([[0.1, np.nan], [0.3, 0.4], [1.0, 0.0]]),
    np.array([[0.1, np.inf], [0.3, 0.4], [1.0, 0.0]]),
    np.array([[0.1, -np.inf], [0.3, 0.4], [1.0, 0.0]]),
    np.array([[1, "a"], [2, "b"], [3, "c"]], dtype=object),
    np.array([["1", "2"], ["3", "4"], ["5", "6"]]),
    [[1.0, 2.0], [3.0], [4.0, 5.0]],                 # ragged
], ids=["1d", "3d", "nan", "inf", "-inf", "object", "str", "ragged"])
def test_bad_X(X):
    with pytest.raises(ValueError, match="^X:"):
        LogisticRegression(X, _Y)


def test_X_without_rows():
    with pytest.raises(ValueError, match="^X:"):
        LogisticRegression(np.empty((0, 2)), np.empty(0))


def test_dataframe_with_a_string_column():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [0.1, 0.3, 1.0], "b": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="^X:.*'b'"):
        LogisticRegression(df, _Y)
    with pytest.raises(ValueError, match="^X:.*'b'"):
        LogisticRegression(df.astype({"b": object}), _Y)
    with pytest.raises(ValueError, match="^X:.*'b'"):
        LogisticRegression(df.astype({"b": "category"}), _Y)


@pytest.mark.parametrize("y", [
    [0, 1],                      # too short
    [0, 1, 1, 0],                # too long
    [[0], [1], [1]],             # 2-D
    [0, 1, 2],
    [0, -1, 1],
    [0, 0.5, 1],
    [0, np.nan, 1],
    ["0", "1", "1"],
    np.array(["a", "b", "a"], dtype=object),
], ids=["short", "long", "2d", "two", "minus-one", "half", "nan", "str", "object"])
def test_bad_y(y):
    with pytest.raises(ValueError, match="^y:"):
        LogisticRegression(_X, y)


@pytest.mark.parametrize("arg", ["prior_scale", "intercept_scale"])
@pytest.mark.parametrize("value", [0, 0.0, -1.0, np.nan, np.inf, -np.inf, "1.0", None, True,
                                   [1.0]])
def test_bad_scales(arg, value):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        LogisticRegression(_X, _Y, **{arg: value})


def test_numpy_scalar_scales_accepted():
    model = LogisticRegression(_X, _Y, prior_scale=np.float32(0.5), intercept_scale=np.int64(2))
    assert model.prior_scale == 0.5 and model.intercept_scale == 2.0


def test_n_points_fit_intercept_and_zero_d_scales():
    X, y = np.eye(3), np.array([0, 1, 1])
    for bad in (0, -2, 2.7, "a"):
        with pytest.raises(ValueError, match="^n_points:"):
            LogisticRegression(X, y, n_points=bad)
    with pytest.raises(ValueError, match="^fit_intercept:"):
        LogisticRegression(X, y, fit_intercept="no")
    model = LogisticRegression(X, y, prior_scale=np.array(1.5), fit_intercept=np.bool_(False))
    assert model.prior_scale == 1.5 and list(model.latents) == ["coef"]


def test_pareto_k_needs_enough_draws():
    import natvi

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    result = natvi.fit(LogisticRegression(X, (X[:, 0] > 0).astype(int)), family=MeanFieldGaussian)
    with pytest.raises(ValueError, match="^draws:"):
        result.pareto_k(draws=10)
    assert np.isfinite(result.pareto_k(draws=200))
