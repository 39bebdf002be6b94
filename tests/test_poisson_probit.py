"""Poisson and probit regression: the ELBO against independent evaluations, and its optimum.

Each model's ELBO under a Gaussian posterior is written again here in plain NumPy: the
data terms by Gauss–Hermite quadrature over each linear predictor ηᵢ ~ N(aᵢ, bᵢ) of
scipy's own log densities (``stats.poisson.logpmf``; ``special.log_ndtr`` for probit), and
checked against Monte Carlo. The mean-field optimum is found by scipy's L-BFGS-B over
(mean, log-scale) with an analytic gradient (Poisson: E[e^η] = e^{a + b/2}; probit:
quadrature), as tests/test_logistic_regression.py does for logistic regression.
"""

import numpy as np
import pytest
from optimum import maximize
from scipy import optimize, special, stats

import natvi
from natvi import reference
from natvi.families import FullRankGaussian, MeanFieldGaussian
from natvi.models import PoissonRegression, ProbitRegression

N, D = 200, 3


def _poisson_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D))
    exposure = rng.uniform(0.5, 3.0, size=N)
    y = rng.poisson(exposure * np.exp(0.5 + X @ np.array([0.4, -0.3, 0.2])))
    return X, y, exposure


def _probit_data(seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D))
    y = (rng.random(N) < special.ndtr(0.3 + X @ np.array([1.0, -0.5, 0.2]))).astype(int)
    return X, y


PX, PY, PE = _poisson_data()
BX, BY = _probit_data()
POISSON_SCALES = dict(prior_scale=1.5, intercept_scale=2.0)
PROBIT_SCALES = dict(prior_scale=1.0, intercept_scale=2.0)


def _poisson_model(exposure=PE, **kw):
    return PoissonRegression(PX, PY, exposure=exposure, **{**POISSON_SCALES, **kw})


def _probit_model(**kw):
    return ProbitRegression(BX, BY, **{**PROBIT_SCALES, **kw})


def _prior_sd(scales):
    return np.array([scales["intercept_scale"]] + [scales["prior_scale"]] * D)


# ---- expected log-likelihood terms, Σᵢ E log p(yᵢ | ηᵢ) for ηᵢ ~ N(aᵢ, bᵢ) ------------------
def _nodes(n):
    """Gauss–Hermite for E f(a + √b ε), ε ~ N(0, 1): nodes √2 xₖ, weights wₖ/√π."""
    x, w = np.polynomial.hermite.hermgauss(n)
    return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


def _poisson_closed(y, a, b):
    """Value and derivatives in a and b, from E[e^η] = e^{a + b/2}."""
    rate = np.exp(a + 0.5 * b)
    return np.sum(y * a - rate - special.gammaln(y + 1)), y - rate, -0.5 * rate


def _poisson_quadrature(y, a, b, n=80):
    t, w = _nodes(n)
    eta = a[:, None] + np.sqrt(b)[:, None] * t
    return float(np.sum(stats.poisson.logpmf(y[:, None], np.exp(eta)) @ w))


# ---- an independent mean-field ELBO in u = (m, log s), intercept as a column of ones -----------
def _mf_elbo(u, Z, offset, prior_sd, terms):
    k = Z.shape[1]
    m, log_s = u[:k], u[k:]
    s2 = np.exp(2 * log_s)
    value, g_a, g_b = terms(Z @ m + offset, (Z**2) @ s2)
    p2 = prior_sd**2
    value = (value + np.sum(-0.5 * np.log(2 * np.pi * p2) - (m**2 + s2) / (2 * p2))
             + np.sum(0.5 * np.log(2 * np.pi * np.e) + log_s))
    grad_m = Z.T @ g_a - m / p2
    grad_log_s = 2 * s2 * ((Z**2).T @ g_b) - s2 / p2 + 1.0  # ∂bᵢ/∂log sⱼ = 2 zᵢⱼ² sⱼ²
    return value, np.concatenate([grad_m, grad_log_s])


def _lbfgs(Z, offset, prior_sd, terms):
    """The optimum of the independent ELBO: L-BFGS-B, polished by Newton steps."""
    k = Z.shape[1]
    opt = maximize(lambda u: _mf_elbo(u, Z, offset, prior_sd, terms), np.zeros(2 * k))
    return {"elbo": opt["value"], "u": opt["u"], "loc": opt["u"][:k],
            "scale": np.exp(opt["u"][k:]), "grad_norm": opt["grad_norm"]}


def _poisson_terms(y):
    return lambda a, b: _poisson_closed(y, a, b)


def _probit_terms(y):
    def terms(a, b):  # natvi.reference: no code shared with natvi's engine
        rows, g_a, g_b = reference.probit(y, a, b)
        return float(np.sum(rows)), g_a, g_b

    return terms


PZ = np.column_stack([np.ones(N), PX])
BZ = np.column_stack([np.ones(N), BX])


@pytest.fixture(scope="module")
def poisson_optimum():
    return _lbfgs(PZ, np.log(PE), _prior_sd(POISSON_SCALES), _poisson_terms(PY))


@pytest.fixture(scope="module")
def probit_optimum():
    return _lbfgs(BZ, np.zeros(N), _prior_sd(PROBIT_SCALES), _probit_terms(BY))


CASES = {
    "poisson": (_poisson_model, PZ, lambda: np.log(PE), POISSON_SCALES, _poisson_terms(PY)),
    "probit": (_probit_model, BZ, lambda: np.zeros(N), PROBIT_SCALES, _probit_terms(BY)),
}


def _random_mf(seed, k=D + 1):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.3, size=k), rng.uniform(0.05, 0.4, size=k)


def _mf_posterior(loc, scale):
    return {"intercept": MeanFieldGaussian(loc=loc[0], scale=scale[0]),
            "coef": MeanFieldGaussian(loc=loc[1:], scale=scale[1:])}


def _stack(posterior, attr):
    return np.concatenate([np.atleast_1d(getattr(posterior["intercept"], attr)),
                           getattr(posterior["coef"], attr)])


@pytest.mark.parametrize("case", list(CASES))
def test_independent_elbo_gradient_is_consistent(case):
    _, Z, offset, scales, terms = CASES[case]
    u = np.concatenate(_random_mf(0))
    u[D + 1:] = np.log(u[D + 1:])
    grad = _mf_elbo(u, Z, offset(), _prior_sd(scales), terms)[1]
    err = optimize.check_grad(lambda v: _mf_elbo(v, Z, offset(), _prior_sd(scales), terms)[0],
                              lambda v: _mf_elbo(v, Z, offset(), _prior_sd(scales), terms)[1], u)
    assert err < 1e-6 * np.linalg.norm(grad)


# ---- the ELBO at a given posterior -----------------------------------------------------------
def _full_rank_elbo(q, Z, offset, prior_sd, expected_loglik):
    a = Z @ q.loc + offset
    b = np.einsum("ij,jk,ik->i", Z, q.cov, Z)
    p2 = prior_sd**2
    prior = np.sum(-0.5 * np.log(2 * np.pi * p2) - (q.loc**2 + np.diag(q.cov)) / (2 * p2))
    return expected_loglik(a, b) + prior + 0.5 * np.linalg.slogdet(2 * np.pi * np.e * q.cov)[1]


def _random_full_rank(seed, k=D + 1):
    rng = np.random.default_rng(seed)
    a = rng.normal(scale=0.2, size=(k, k))
    return FullRankGaussian(loc=rng.normal(scale=0.3, size=k), cov=a @ a.T + 0.01 * np.eye(k))


def test_poisson_elbo_against_quadrature_of_scipy_logpmf():
    """natvi's closed form equals an 80-node quadrature of scipy's Poisson log pmf (1e-9),
    for mean-field and full-rank posteriors, with exposures."""
    model, prior_sd = _poisson_model(), _prior_sd(POISSON_SCALES)

    def quad(a, b):
        return _poisson_quadrature(PY, a, b)

    loc, scale = _random_mf(1)
    u = np.concatenate([loc, np.log(scale)])
    ref = _mf_elbo(u, PZ, np.log(PE), prior_sd, lambda a, b: (quad(a, b), 0 * a, 0 * b))[0]
    assert natvi.elbo(model, _mf_posterior(loc, scale))[0] == pytest.approx(ref, abs=1e-9)
    q = _random_full_rank(2)
    ref = _full_rank_elbo(q, PZ, np.log(PE), prior_sd, quad)
    assert natvi.elbo(model, {("intercept", "coef"): q})[0] == pytest.approx(ref, abs=1e-9)


def test_probit_elbo_against_the_reference():
    """natvi's probit ELBO equals the one written here on :func:`natvi.reference.probit`
    (1e-9), for mean-field and full-rank posteriors."""
    model, prior_sd = _probit_model(), _prior_sd(PROBIT_SCALES)
    loc, scale = _random_mf(3)
    u = np.concatenate([loc, np.log(scale)])
    ref = _mf_elbo(u, BZ, np.zeros(N), prior_sd, _probit_terms(BY))[0]
    assert natvi.elbo(model, _mf_posterior(loc, scale))[0] == pytest.approx(ref, abs=1e-9)
    q = _random_full_rank(4)
    ref = _full_rank_elbo(q, BZ, 0.0, prior_sd, lambda a, b: _probit_terms(BY)(a, b)[0])
    assert natvi.elbo(model, {("intercept", "coef"): q})[0] == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("case", list(CASES))
def test_expected_log_joint_against_monte_carlo(case):
    """E_q[log p(y, w)] against 20 000 draws of scipy's log densities, within 5 standard
    errors (exposure included for Poisson)."""
    make, _, _, scales, _ = CASES[case]
    model = make()
    loc, scale = _random_mf(5)
    value, _ = model.expected_log_joint(_mf_posterior(loc, scale), None)
    rng = np.random.default_rng(6)
    S = 20_000
    w = loc + scale * rng.standard_normal((S, D + 1))
    if case == "poisson":
        eta = w @ PZ.T
        loglik = np.sum(stats.poisson.logpmf(PY, PE * np.exp(eta)), axis=1)
    else:
        eta = w @ BZ.T
        loglik = np.sum(stats.bernoulli.logpmf(BY, special.ndtr(eta)), axis=1)
    lj = loglik + np.sum(stats.norm.logpdf(w, 0, _prior_sd(scales)), axis=1)
    se = lj.std(ddof=1) / np.sqrt(S)
    assert abs(value - lj.mean()) < 5 * se, (value, lj.mean(), se)


# ---- the optimum ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_lbfgs_reaches_a_stationary_point(case, request):
    opt = request.getfixturevalue(f"{case}_optimum")
    assert opt["grad_norm"] < 1e-6


@pytest.mark.parametrize("case", list(CASES))
def test_natvi_fit_is_the_lbfgs_optimum(case, request):
    """natvi's default fit converges to L-BFGS's optimum of the independent ELBO: the same
    ELBO (1e-7, and never above it), sds to 1e-4 relative, means to 1e-4·(|m| + sd); and
    at L-BFGS's point natvi's ELBO gradient, chained to (m, log s), is L-BFGS's (≈ 0)."""
    opt = request.getfixturevalue(f"{case}_optimum")
    make, Z, offset, scales, terms = CASES[case]
    model = make()
    result = natvi.fit(model, family=MeanFieldGaussian)
    print(f"{case}: n_iter {result.n_iter}, ELBO {result.elbo:.10f}, L-BFGS {opt['elbo']:.10f}")
    assert result.converged
    assert result.elbo == pytest.approx(opt["elbo"], abs=1e-7)
    assert result.elbo <= opt["elbo"] + 1e-9
    loc, scale = _stack(result.posterior, "loc"), _stack(result.posterior, "scale")
    np.testing.assert_allclose(scale, opt["scale"], rtol=1e-4, atol=0)
    np.testing.assert_array_less(np.abs(loc - opt["loc"]), 1e-4 * (np.abs(opt["loc"])
                                                                   + opt["scale"]))

    at_opt = _mf_posterior(opt["loc"], opt["scale"])
    value, nat = natvi.elbo(model, at_opt)
    assert value == pytest.approx(opt["elbo"], abs=1e-9)
    u_grad = np.concatenate([at_opt["intercept"].unconstrained_grad(nat["intercept"])[None],
                             at_opt["coef"].unconstrained_grad(nat["coef"])])
    g_indep = _mf_elbo(opt["u"], Z, offset(), _prior_sd(scales), terms)[1]
    np.testing.assert_allclose(u_grad[:, 0], g_indep[:D + 1], atol=1e-8)
    np.testing.assert_allclose(u_grad[:, 1], g_indep[D + 1:], atol=1e-8)


def test_poisson_full_rank_fit_satisfies_the_gaussian_fixed_point():
    """At a full-rank Gaussian optimum, E_q[∇ log p] = 0 and Σ⁻¹ = E_q[−∇² log p]; for
    Poisson both are closed forms: Zᵀ(y − r) − S⁻¹m and Zᵀ diag(r) Z + S⁻¹ with
    rᵢ = eᵢ exp(aᵢ + bᵢ/2)."""
    model = _poisson_model()
    result = natvi.fit(model, family=FullRankGaussian)
    assert result.converged
    q = result.posterior[("intercept", "coef")]
    prior_prec = np.diag(_prior_sd(POISSON_SCALES) ** -2.0)
    a = PZ @ q.loc + np.log(PE)
    b = np.einsum("ij,jk,ik->i", PZ, q.cov, PZ)
    r = np.exp(a + 0.5 * b)
    grad = PZ.T @ (PY - r) - prior_prec @ q.loc
    hess = PZ.T @ (r[:, None] * PZ) + prior_prec
    sd = np.sqrt(np.diag(q.cov))
    np.testing.assert_array_less(np.abs(grad) * sd, 1e-4)  # in posterior-sd units
    np.testing.assert_allclose(np.linalg.inv(hess), q.cov, rtol=1e-4,
                               atol=1e-4 * np.max(np.diag(q.cov)))
    # Full rank can only improve on mean field.
    assert result.elbo >= natvi.fit(model, family=MeanFieldGaussian).elbo - 1e-9


# ---- exposure ---------------------------------------------------------------------------------
def test_doubling_exposure_shifts_the_intercept_by_log_2_in_the_likelihood():
    """Poisson(2e·e^{α+xβ}) = Poisson(e·e^{α + log 2 + xβ}): pointwise, at draws; and in
    the ELBO, up to the intercept prior's closed-form change E log N(α; 0, s₀²)."""
    single, double = _poisson_model(), _poisson_model(exposure=2 * PE)
    rng = np.random.default_rng(8)
    draws = {"intercept": rng.normal(size=5), "coef": rng.normal(scale=0.3, size=(5, D))}
    shifted = dict(draws, intercept=draws["intercept"] + np.log(2))
    np.testing.assert_allclose(double.pointwise_log_likelihood(draws)["y"],
                               single.pointwise_log_likelihood(shifted)["y"], rtol=1e-12)

    loc, scale = _random_mf(9)
    q = _mf_posterior(loc, scale)
    q_shifted = _mf_posterior(loc + np.r_[np.log(2), np.zeros(D)], scale)
    s0 = POISSON_SCALES["intercept_scale"]
    prior_change = -(loc[0] ** 2 - (loc[0] + np.log(2)) ** 2) / (2 * s0**2)
    assert (natvi.elbo(double, q)[0] - natvi.elbo(single, q_shifted)[0]
            == pytest.approx(prior_change, abs=1e-9))


def test_doubling_exposure_fits_an_intercept_log_2_lower():
    """With a vague intercept prior (s₀ = 1e4, whose pull is ~1e-9), the fit under doubled
    exposure has its intercept mean log 2 lower and everything else unchanged."""
    single = natvi.fit(_poisson_model(intercept_scale=1e4), family=MeanFieldGaussian)
    double = natvi.fit(_poisson_model(exposure=2 * PE, intercept_scale=1e4),
                       family=MeanFieldGaussian)
    assert single.converged and double.converged
    shift = single.posterior["intercept"].loc - double.posterior["intercept"].loc
    assert shift == pytest.approx(np.log(2), abs=1e-7)
    np.testing.assert_allclose(double.posterior["coef"].loc, single.posterior["coef"].loc,
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(_stack(double.posterior, "scale"),
                               _stack(single.posterior, "scale"), rtol=1e-6)
    assert double.elbo == pytest.approx(single.elbo, abs=1e-6)


def test_no_exposure_means_exposure_one():
    q = _mf_posterior(*_random_mf(10))
    assert (natvi.elbo(_poisson_model(exposure=None), q)[0]
            == natvi.elbo(_poisson_model(exposure=np.ones(N)), q)[0])


# ---- densities at draws ---------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_log_joint_and_pointwise_against_scipy(case):
    make, Z, _, scales, _ = CASES[case]
    model = make()
    rng = np.random.default_rng(11)
    draws = {"intercept": rng.normal(size=7), "coef": rng.normal(scale=0.3, size=(7, D))}
    eta = draws["intercept"][:, None] + draws["coef"] @ Z[:, 1:].T
    if case == "poisson":
        pw = stats.poisson.logpmf(PY, PE * np.exp(eta))
    else:
        pw = stats.bernoulli.logpmf(BY, special.ndtr(eta))
    np.testing.assert_allclose(model.pointwise_log_likelihood(draws)["y"], pw, rtol=1e-12)
    w = np.column_stack([draws["intercept"], draws["coef"]])
    expected = pw.sum(axis=1) + np.sum(stats.norm.logpdf(w, 0, _prior_sd(scales)), axis=1)
    np.testing.assert_allclose(model.log_joint(draws), expected, rtol=1e-12)


def test_probit_far_tails_stay_finite():
    """log Φ at |η| ≈ 40 is about −800: the pointwise log-likelihood must not be −inf."""
    model = ProbitRegression(np.array([[1.0], [-1.0]]), [0, 1])
    pw = model.pointwise_log_likelihood({"intercept": np.zeros(1), "coef": np.array([[40.0]])})
    np.testing.assert_allclose(pw["y"], special.log_ndtr(-40.0) * np.ones((1, 2)), rtol=1e-12)


# ---- bad input --------------------------------------------------------------------------------
_X = np.array([[0.1, 0.2], [0.3, -0.4], [1.0, 0.0]])


@pytest.mark.parametrize("X", [
    np.ones(3),
    np.array([[0.1, np.nan], [0.3, 0.4], [1.0, 0.0]]),
    np.array([[0.1, np.inf], [0.3, 0.4], [1.0, 0.0]]),
    np.array([["1", "2"], ["3", "4"], ["5", "6"]]),
], ids=["1d", "nan", "inf", "str"])
@pytest.mark.parametrize("cls", [PoissonRegression, ProbitRegression])
def test_bad_X(cls, X):
    with pytest.raises(ValueError, match="^X:"):
        cls(X, [0, 1, 1])


@pytest.mark.parametrize("counts", [
    [1, 2],
    [[1], [2], [3]],
    [1, -1, 2],
    [1, 0.5, 2],
    [1, np.nan, 2],
    [1, np.inf, 2],
    ["1", "2", "3"],
], ids=["short", "2d", "negative", "non-integer", "nan", "inf", "str"])
def test_poisson_bad_counts(counts):
    with pytest.raises(ValueError, match="^counts:"):
        PoissonRegression(_X, counts)


@pytest.mark.parametrize("exposure", [
    [1.0, 0.0, 1.0],
    [1.0, -1.0, 1.0],
    [1.0, np.nan, 1.0],
    [1.0, np.inf, 1.0],
    [1.0, 1.0],
], ids=["zero", "negative", "nan", "inf", "short"])
def test_poisson_bad_exposure(exposure):
    with pytest.raises(ValueError, match="^exposure:"):
        PoissonRegression(_X, [1, 2, 3], exposure=exposure)


@pytest.mark.parametrize("y", [
    [0, 1],
    [0, 1, 2],
    [0, -1, 1],
    [0, 0.5, 1],
    [0, np.nan, 1],
    [[0], [1], [1]],
], ids=["short", "two", "minus-one", "half", "nan", "2d"])
def test_probit_bad_y(y):
    with pytest.raises(ValueError, match="^y:"):
        ProbitRegression(_X, y)


@pytest.mark.parametrize("cls", [PoissonRegression, ProbitRegression])
@pytest.mark.parametrize("arg", ["prior_scale", "intercept_scale"])
@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf, "1"])
def test_bad_scales(cls, arg, value):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        cls(_X, [0, 1, 1], **{arg: value})


def test_probit_bad_n_points():
    with pytest.raises(ValueError, match="^n_points:"):
        ProbitRegression(_X, [0, 1, 1], n_points=0)


@pytest.mark.parametrize("cls", [PoissonRegression, ProbitRegression])
def test_refuses_non_gaussian_families(cls):
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(cls(_X, [0, 1, 1]), family={"intercept": natvi.LogNormal})
