"""Eight schools, non-centered and centered: the fit against independent references.

References written here without natvi:

* the exact posterior of (μ, τ), by numerical integration on a grid over (μ, log τ) of
  p(μ) p(τ) Πⱼ N(yⱼ; μ, σⱼ² + τ²) (θ integrated out in closed form);
* each form's mean-field ELBO in closed form — Gaussian μ and θ (or θ̃), LogNormal τ,
  with E[τᵏ] = exp(k m + k² s²/2), and the half-Cauchy term by Gauss–Hermite quadrature —
  maximized by scipy's L-BFGS-B: the optimum a converged fit must reach.
"""

import functools

import numpy as np
import pytest
from scipy import integrate, optimize, stats

import natvi
from natvi.models import EightSchools

Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
J = len(Y)
MU_SCALE = TAU_SCALE = 5.0  # the model's defaults
SEED = 0
FORMS = {"non-centered": False, "centered": True}


# ---- the exact posterior of (μ, τ) -------------------------------------------------------
@pytest.fixture(scope="module")
def exact():
    """E[μ], sd[μ] and log p(y) by the trapezoid rule on a fine (μ, log τ) grid."""
    mu = np.linspace(-30.0, 40.0, 351)
    log_tau = np.linspace(-12.0, 6.0, 451)
    M, LT = np.meshgrid(mu, log_tau, indexing="ij")
    T = np.exp(LT)
    lp = (stats.norm.logpdf(M, 0, MU_SCALE) + stats.halfcauchy.logpdf(T, scale=TAU_SCALE)
          + LT)  # the Jacobian of τ = e^{log τ}
    for yj, sj in zip(Y, SIGMA, strict=True):
        lp += stats.norm.logpdf(yj, M, np.sqrt(sj**2 + T**2))
    w = np.exp(lp - lp.max())

    def integral(f):
        return integrate.trapezoid(integrate.trapezoid(f, log_tau, axis=1), mu)

    z = integral(w)
    mean = integral(w * M) / z
    sd = np.sqrt(integral(w * (M - mean) ** 2) / z)
    return {"mu_mean": mean, "mu_sd": sd, "log_evidence": np.log(z) + lp.max()}


# ---- the mean-field ELBO in closed form --------------------------------------------------
_X, _W = np.polynomial.hermite.hermgauss(64)
_NODES, _WEIGHTS = np.sqrt(2.0) * _X, _W / np.sqrt(np.pi)


def _closed_form_elbo(p, centered):
    """p = (m_μ, m_logτ, m_θ (J), log s_μ, log s_logτ, log s_θ (J))."""
    m_mu, m_t, m = p[0], p[1], p[2:2 + J]
    s_mu, s_t, s = np.exp(p[2 + J]), np.exp(p[3 + J]), np.exp(p[4 + J:])
    log_2pi = np.log(2 * np.pi)
    value = -0.5 * np.log(2 * np.pi * MU_SCALE**2) - (m_mu**2 + s_mu**2) / (2 * MU_SCALE**2)
    log_tau = m_t + s_t * _NODES
    value += (np.log(2 / (np.pi * TAU_SCALE))
              - np.log1p(np.exp(2 * log_tau) / TAU_SCALE**2) @ _WEIGHTS)
    if centered:
        e_inv_tau2 = np.exp(-2 * m_t + 2 * s_t**2)
        value += np.sum(-0.5 * log_2pi - m_t
                        - 0.5 * ((m - m_mu) ** 2 + s**2 + s_mu**2) * e_inv_tau2)
        sq_err = (Y - m) ** 2 + s**2
    else:
        e_tau, e_tau2 = np.exp(m_t + s_t**2 / 2), np.exp(2 * m_t + 2 * s_t**2)
        value += np.sum(-0.5 * log_2pi - (m**2 + s**2) / 2)
        sq_err = ((Y - m_mu) ** 2 + s_mu**2 - 2 * (Y - m_mu) * e_tau * m
                  + e_tau2 * (m**2 + s**2))
    value += np.sum(-0.5 * np.log(2 * np.pi * SIGMA**2) - sq_err / (2 * SIGMA**2))
    # entropies: Gaussians, and H[LogNormal] = H[N(m_t, s_t²)] + m_t
    value += (0.5 * (J + 2) * np.log(2 * np.pi * np.e) + np.log(s_mu) + np.log(s_t) + m_t
              + np.sum(np.log(s)))
    return float(value)


def _params_of(posterior, centered):
    theta = posterior["theta" if centered else "theta_raw"]
    return np.concatenate([[posterior["mu"].loc, posterior["tau"].loc], theta.loc,
                           np.log([posterior["mu"].scale, posterior["tau"].scale]),
                           np.log(theta.scale)])


@functools.cache
def _default_fit(centered):
    """The default fit ("ngd", default tolerance) with a fixed seed."""
    return natvi.fit(EightSchools(centered=centered), seed=SEED)


@functools.cache
def _optimum(centered):
    """The independent mean-field optimum: L-BFGS-B on the closed-form ELBO."""
    res = optimize.minimize(lambda p: -_closed_form_elbo(p, centered), np.zeros(2 * J + 4),
                            method="L-BFGS-B", options={"maxiter": 10000, "ftol": 0.0,
                                                        "gtol": 1e-8})
    return {"elbo": -res.fun, "p": res.x, "grad_norm": float(np.linalg.norm(res.jac))}


@pytest.fixture(params=list(FORMS))
def form(request):
    """(name, centered, default fit, independent mean-field optimum)."""
    centered = FORMS[request.param]
    return request.param, centered, _default_fit(centered), _optimum(centered)


@pytest.mark.slow
def test_closed_form_elbo_matches_natvi_densities(form):
    """The closed form above against Monte Carlo of natvi's log p(y, z) − log q(z) at the
    fitted q (50 000 draws, 5 standard errors): checks the reference and natvi's log joint."""
    _, centered, result, _ = form
    draws = result.sample(50_000, seed=1)
    log_w = result.model.log_joint(draws) - result.log_q(draws)
    se = log_w.std(ddof=1) / np.sqrt(log_w.size)
    value = _closed_form_elbo(_params_of(result.posterior, centered), centered)
    assert abs(log_w.mean() - value) < 5 * se, (log_w.mean(), value, se)


@pytest.mark.parametrize("name", list(FORMS))
def test_mean_field_optimum_is_a_bound(name, exact):
    """The independent optimum is stationary, and below log p(y) as any ELBO must be."""
    optimum = _optimum(FORMS[name])
    print(f"{name}: mean-field optimum {optimum['elbo']:.4f}, "
          f"log p(y) {exact['log_evidence']:.4f}")
    assert optimum["grad_norm"] < 1e-4
    assert optimum["elbo"] < exact["log_evidence"]


@pytest.mark.slow
def test_default_fit_reaches_the_mean_field_optimum(form):
    """A fit reported converged is within 0.2 nats of the mean-field optimum (its ELBO
    evaluated in closed form), with E_q[μ] within a quarter of the optimal q's sd of μ."""
    name, centered, result, optimum = form
    value = _closed_form_elbo(_params_of(result.posterior, centered), centered)
    m_mu, s_mu = optimum["p"][0], np.exp(optimum["p"][2 + J])
    print(f"{name}: status {result.status} after {result.n_iter} iterations, ELBO gap "
          f"{optimum['elbo'] - value:.3f} nats; E_q[mu] {result.posterior['mu'].loc:.3f} vs "
          f"optimum {m_mu:.3f}")
    # the optimizer converged; the centered form's check may call its q unreliable (k̂)
    assert result.state.status == "converged"
    assert result.status in ("converged", "unreliable")
    assert optimum["elbo"] - value < 0.2
    assert abs(result.posterior["mu"].loc - m_mu) < 0.25 * s_mu


@pytest.mark.slow
def test_non_centered_mu_matches_the_exact_posterior(exact):
    """E_q[μ] of the default non-centered fit is within 0.1 posterior sd of the exact
    posterior mean (quadrature)."""
    result = _default_fit(False)
    m = result.posterior["mu"].loc
    print(f"E_q[mu] {m:.4f}; exact E[mu] {exact['mu_mean']:.4f} (sd {exact['mu_sd']:.3f})")
    assert abs(m - exact["mu_mean"]) < 0.1 * exact["mu_sd"]


@pytest.mark.slow
def test_pareto_k_and_its_message(form):
    """k̂ of each form is reported; whenever it exceeds 0.7 the diagnosis says the fit is
    unreliable and suggests what to try next."""
    name, _, result, _ = form
    diagnosis = result.diagnose()
    print(f"{name}: k_hat = {diagnosis.k_hat:.3f}: {diagnosis.message}")
    assert np.isfinite(diagnosis.k_hat)
    _check_message(diagnosis)


def test_a_poor_fit_is_called_unreliable():
    """Five steps on the centered form leave q far from the posterior: k̂ > 0.7, so the
    message branch above is exercised for sure."""
    diagnosis = natvi.fit(EightSchools(centered=True), seed=SEED, max_iter=5).diagnose()
    print(f"centered, 5 steps: k_hat = {diagnosis.k_hat:.3f}")
    assert diagnosis.k_hat > 0.7
    _check_message(diagnosis)


def _check_message(diagnosis):
    if diagnosis.k_hat > 0.7:
        assert "unreliable" in diagnosis.message
        assert any(hint in diagnosis.message for hint in ("full-rank", "reparameteriz",
                                                         "non-centered", "more draws"))


# ---- draws and ArviZ ----------------------------------------------------------------------
def test_to_arviz_has_theta_for_the_non_centered_model():
    result = natvi.fit(EightSchools(), seed=SEED, max_iter=20)
    idata = result.to_arviz(draws=200, seed=2)
    post = idata["posterior"]
    for name in ("mu", "tau", "theta_raw", "theta"):
        assert name in post.data_vars
    theta = np.asarray(post["theta"].transpose("chain", "draw", ...))
    assert theta.shape == (1, 200, J)
    expected = (np.asarray(post["mu"].transpose("chain", "draw"))[..., None]
                + np.asarray(post["tau"].transpose("chain", "draw"))[..., None]
                * np.asarray(post["theta_raw"].transpose("chain", "draw", ...)))
    np.testing.assert_allclose(theta, expected, rtol=1e-12)
    assert "y" in idata["log_likelihood"].data_vars


def test_centered_draws_are_theta_itself():
    model = EightSchools(centered=True)
    assert "theta" in model.latents and "theta_raw" not in model.latents
    assert model.deterministics({"mu": np.zeros(2), "tau": np.ones(2),
                                 "theta": np.zeros((2, J))}) == {}


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("data", [(Y, SIGMA), (np.array([3.0]), np.array([2.0]))],
                         ids=["eight", "one-school"])
def test_log_joint_and_pointwise_against_scipy(centered, data):
    """Also for J = 1, which is allowed."""
    y, sigma = data
    j = len(y)
    model = EightSchools(y=y, sigma=sigma, centered=centered)
    rng = np.random.default_rng(3)
    mu, tau, t = rng.normal(size=5), rng.gamma(2.0, size=5), rng.normal(size=(5, j))
    theta = t if centered else mu[:, None] + tau[:, None] * t
    draws = {"mu": mu, "tau": tau, "theta" if centered else "theta_raw": t}
    pw = stats.norm.logpdf(y, theta, sigma)
    np.testing.assert_allclose(model.pointwise_log_likelihood(draws)["y"], pw, rtol=1e-12)
    prior_t = (stats.norm.logpdf(t, mu[:, None], tau[:, None]) if centered
               else stats.norm.logpdf(t))
    expected = (stats.norm.logpdf(mu, 0, MU_SCALE)
                + stats.halfcauchy.logpdf(tau, scale=TAU_SCALE)
                + prior_t.sum(axis=1) + pw.sum(axis=1))
    np.testing.assert_allclose(model.log_joint(draws), expected, rtol=1e-12)


def test_one_school_fits():
    result = natvi.fit(EightSchools(y=[3.0], sigma=[2.0]), seed=SEED, max_iter=10)
    assert np.isfinite(result.elbo) and result.posterior["theta_raw"].loc.shape == (1,)


# ---- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("y, sigma, arg", [
    ([], [], "y"),                                   # J = 0
    ([[1.0, 2.0]], [[1.0, 1.0]], "y"),               # 2-D
    (1.0, 1.0, "y"),                                 # 0-D
    ([1.0, np.nan], [1.0, 1.0], "y"),
    ([1.0, np.inf], [1.0, 1.0], "y"),
    (["a", "b"], [1.0, 1.0], "y"),
    ([1.0, 2.0], [1.0, 0.0], "sigma"),
    ([1.0, 2.0], [1.0, -1.0], "sigma"),
    ([1.0, 2.0], [1.0, np.nan], "sigma"),
    ([1.0, 2.0], [1.0, np.inf], "sigma"),
    ([1.0, 2.0], [1.0, 1.0, 1.0], "sigma"),
    ([1.0, 2.0], [1.0], "sigma"),
], ids=["empty", "2d", "0d", "y-nan", "y-inf", "y-str", "sigma-zero", "sigma-negative",
        "sigma-nan", "sigma-inf", "sigma-long", "sigma-short"])
def test_bad_data(y, sigma, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        EightSchools(y=y, sigma=sigma)


@pytest.mark.parametrize("kwargs, arg", [
    ({"centered": "yes"}, "centered"),
    ({"centered": 1}, "centered"),
    ({"mu_scale": 0.0}, "mu_scale"),
    ({"mu_scale": np.nan}, "mu_scale"),
    ({"tau_scale": -1.0}, "tau_scale"),
    ({"tau_scale": np.inf}, "tau_scale"),
    ({"n_samples": 0}, "n_samples"),
    ({"n_samples": 2.5}, "n_samples"),
])
def test_bad_options(kwargs, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        EightSchools(**kwargs)
