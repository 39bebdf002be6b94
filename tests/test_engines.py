"""The gradient engines against exact expectations.

Monte Carlo (natvi.monte_carlo): pathwise gradients for Gaussian-type factors and
score-function gradients for the others are unbiased for E_q[f] and ∇_μ E_q[f], checked over
many seeds against closed forms (or a high-order quadrature written here) differentiated by
autograd; the score function's control variate cuts variance. The closed-form engine
(natvi.closed_form) returns the gradient of its expectation, and a unit natural step on a
conjugate model is coordinate ascent.
"""

import itertools

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.scipy.special import digamma, expit
from scipy import special, stats

import natvi
from natvi.elbo import elbo
from natvi.engines import closed_form, monte_carlo
from natvi.families import (
    Bernoulli,
    Beta,
    Categorical,
    Dirichlet,
    FullRankGaussian,
    Gamma,
    LogitNormal,
    LogNormal,
    MeanFieldGaussian,
)
from natvi.model import Latent

N_SEEDS = 150


def _replicate(log_joint, posterior, latents, n_samples, n_seeds=N_SEEDS):
    """Engine estimates of (E[f], {key: ∇_μ E[f]}) over seeds 0..n_seeds−1."""
    values, grads = [], {k: [] for k in posterior}
    for seed in range(n_seeds):
        v, g = monte_carlo.expected_log_joint(log_joint, posterior, latents,
                                              np.random.default_rng(seed), n_samples)
        values.append(v)
        for k in posterior:
            grads[k].append(g[k])
    return np.array(values), {k: np.array(g) for k, g in grads.items()}


def _assert_unbiased(estimates, exact, n_se=4.0, label=""):
    """Mean over replicates (axis 0) within ``n_se`` standard errors of ``exact``, per entry."""
    estimates = np.asarray(estimates, dtype=float)
    mean = estimates.mean(axis=0)
    se = estimates.std(axis=0, ddof=1) / np.sqrt(estimates.shape[0])
    # 1e-10 absolute slack: entries whose estimator has no variance at all (exact in every draw)
    err = np.abs(mean - np.asarray(exact, dtype=float))
    assert np.all(err <= n_se * se + 1e-10), (label, err, se)


# ---- pathwise: Gaussian-type factors ----------------------------------------------------
# Exact E[f] as a function of each factor's mean parameters μ (autograd gives ∇_μ).

_FR_LOC = np.array([0.2, -0.5, 0.8])
_FR_COV = np.array([[0.5, 0.2, -0.1], [0.2, 0.4, 0.05], [-0.1, 0.05, 0.3]])
_B = np.array([[0.4, 0.1, -0.2], [0.1, -0.3, 0.05], [-0.2, 0.05, 0.2]])
_W = np.array([0.3, -0.2, 0.4])
# c makes ∇f small at the mean of the test's q: the pathwise Σ-gradient's noise grows with
# |∇f|, and a quieter estimate makes the unbiasedness check sharper.
_C = np.array([0.2, -0.1, 0.1]) - 2 * _B @ _FR_LOC - _W * np.exp(_W @ _FR_LOC)


def _quadratic_exp(x):
    """f(x) = cᵀx + xᵀBx + exp(wᵀx) on the last axis of x (d = 3)."""
    return anp.dot(x, _C) + anp.sum(x * anp.dot(x, _B), axis=-1) + anp.exp(anp.dot(x, _W))


def _quadratic_exp_expectation(mu):
    """E[f] under N(m, Σ) from μ = (m, ravel(Σ + mmᵀ)): cᵀm + tr(BΣ) + mᵀBm + exp(wᵀm + ½wᵀΣw)."""
    d = 3
    m = mu[:d]
    second = anp.reshape(mu[d:], (d, d))
    cov = 0.5 * (second + second.T) - anp.outer(m, m)
    return (anp.dot(_C, m) + anp.sum(_B * cov) + anp.dot(m, anp.dot(_B, m))
            + anp.exp(anp.dot(_W, m) + 0.5 * anp.dot(_W, anp.dot(cov, _W))))


@pytest.mark.parametrize("joint", [False, True], ids=["one-latent", "joint-a-b"])
def test_pathwise_full_rank_gaussian_unbiased(joint):
    """A FullRankGaussian factor (over one vector latent, or jointly over a scalar "a" and a
    2-vector "b" with key ("a", "b")): E[f] and ∇_μ E[f] are unbiased against the closed form."""
    q = FullRankGaussian(loc=_FR_LOC, cov=_FR_COV)
    if joint:
        key = ("a", "b")
        latents = {"a": Latent((), "real"), "b": Latent((2,), "real")}

        def log_joint(z):
            assert np.shape(z["a"]) == () and np.shape(z["b"]) == (2,)
            return _quadratic_exp(anp.concatenate([anp.reshape(z["a"], (1,)), z["b"]]))
    else:
        key = "x"
        latents = {"x": Latent((3,), "real")}

        def log_joint(z):
            return _quadratic_exp(z["x"])

    values, grads = _replicate(log_joint, {key: q}, latents, n_samples=4)
    mu = q.mean_params
    _assert_unbiased(values, _quadratic_exp_expectation(mu), label="value")
    exact = autograd.grad(_quadratic_exp_expectation)(mu)
    assert grads[key].shape == (N_SEEDS,) + mu.shape
    _assert_unbiased(grads[key], exact, label="grad")


def _split_gaussian_moments(mu):
    """(m, v) from μ = (m, m² + v) of each element, shape (*batch, 2)."""
    m = mu[..., 0]
    return m, mu[..., 1] - m**2


def _lognormal_expectation(mu):
    """E[Σ (z − 0.5 z² + 2 log z)] for z = exp(x), x ~ N(m, v) elementwise:
    E z^k = exp(km + k²v/2), E log z = m."""
    m, v = _split_gaussian_moments(mu)
    return anp.sum(anp.exp(m + 0.5 * v) - 0.5 * anp.exp(2 * m + 2 * v) + 2 * m)


_GH_T, _GH_W = np.polynomial.hermite_e.hermegauss(80)
_GH_W = _GH_W / _GH_W.sum()


def _logit_normal_f(z):
    return z * (1 - z) + 0.7 * anp.log(z) - 0.2 * z**3


def _logitnormal_expectation(mu):
    """E[Σ f(z)] for z = σ(x), x ~ N(m, v): 80-point Gauss–Hermite in x, exact to ~1e-14
    at these scales (f∘σ is analytic in a strip)."""
    m, v = _split_gaussian_moments(mu)
    x = m[..., None] + anp.sqrt(v)[..., None] * _GH_T
    return anp.sum(anp.dot(_logit_normal_f(expit(x)), _GH_W))


@pytest.mark.parametrize("family, support, expectation, f", [
    (LogNormal, "positive", _lognormal_expectation,
     lambda z: anp.sum(z - 0.5 * z**2 + 2 * anp.log(z))),
    (LogitNormal, "unit_interval", _logitnormal_expectation,
     lambda z: anp.sum(_logit_normal_f(z))),
], ids=["LogNormal", "LogitNormal"])
def test_pathwise_transformed_gaussian_unbiased(family, support, expectation, f):
    """LogNormal and LogitNormal batches (draws pushed through the transform): E[f] and
    ∇_μ E[f] are unbiased against a closed form / an independent quadrature in μ."""
    q = family(loc=np.array([-0.3, 0.2, 0.5]), scale=np.array([0.3, 0.5, 0.4]))
    values, grads = _replicate(lambda z: f(z["z"]), {"z": q},
                               {"z": Latent((3,), support)}, n_samples=4)
    mu = q.mean_params
    _assert_unbiased(values, expectation(mu), label="value")
    _assert_unbiased(grads["z"], autograd.grad(expectation)(mu), label="grad")


def test_pathwise_quadrature_reference_is_accurate():
    """The test's own references: the closed forms and the quadrature agree with direct
    Monte Carlo of f at 2·10⁵ draws (so the unbiasedness tests compare against the truth)."""
    rng = np.random.default_rng(0)
    q = LogitNormal(loc=np.array([-0.3, 0.2, 0.5]), scale=np.array([0.3, 0.5, 0.4]))
    z = q.sample(rng, 2 * 10**5)
    f = _logit_normal_f(z).sum(axis=1)
    assert abs(f.mean() - _logitnormal_expectation(q.mean_params)) < 4 * f.std() / np.sqrt(f.size)
    q = FullRankGaussian(loc=_FR_LOC, cov=_FR_COV)
    f = _quadratic_exp(q.sample(rng, 2 * 10**5))
    assert abs(f.mean() - _quadratic_exp_expectation(q.mean_params)) < 4 * f.std() / np.sqrt(f.size)


# ---- score function: the other families --------------------------------------------------
# Each case: a family instance (mean-field batch where the family allows), f on one draw
# (vectorized over a leading draw axis too), and exact E[f] as a function of (η or μ).

def _gamma_case():
    q = Gamma(shape=np.array([2.0, 3.5, 1.5]), rate=np.array([1.0, 2.0, 0.7]))

    def f(z):
        return (anp.sum(np.array([0.5, -1.0, 0.3]) * z, axis=-1) + z[..., 0] * z[..., 1]
                + anp.sum(np.array([1.0, 0.5, -0.7]) * anp.log(z), axis=-1) + z[..., 2] ** 2)

    def expectation_eta(eta):  # E z = α/β, E z² = α(α+1)/β², E log z = ψ(α) − log β
        a, b = eta[..., 0] + 1, -eta[..., 1]
        ez, elog = a / b, digamma(a) - anp.log(b)
        return (anp.sum(np.array([0.5, -1.0, 0.3]) * ez) + ez[0] * ez[1]
                + anp.sum(np.array([1.0, 0.5, -0.7]) * elog) + a[2] * (a[2] + 1) / b[2] ** 2)

    return q, Latent((3,), "positive"), f, expectation_eta, "eta"


def _beta_case():
    q = Beta(a=np.array([2.0, 0.8]), b=np.array([1.5, 3.0]))

    def f(z):
        return (z[..., 0] + 2 * z[..., 1] ** 2 + anp.log(z[..., 0]) + anp.log1p(-z[..., 1])
                - 3 * z[..., 0] * z[..., 1])

    def expectation_eta(eta):  # E z, E z² = a(a+1)/(c(c+1)), E log z = ψ(a) − ψ(c), ...
        a, b = eta[..., 0] + 1, eta[..., 1] + 1
        c = a + b
        ez = a / c
        return (ez[0] + 2 * a[1] * (a[1] + 1) / (c[1] * (c[1] + 1))
                + digamma(a[0]) - digamma(c[0]) + digamma(b[1]) - digamma(c[1])
                - 3 * ez[0] * ez[1])

    return q, Latent((2,), "unit_interval"), f, expectation_eta, "eta"


def _dirichlet_case():
    q = Dirichlet(alpha=np.array([[2.0, 1.0, 3.0], [0.7, 1.5, 1.2]]))

    def f(z):
        return (anp.sum(np.array([[1.0, -2.0, 0.5], [0.3, 0.0, -1.0]]) * z, axis=(-2, -1))
                + 4 * z[..., 0, 0] * z[..., 0, 1] + z[..., 1, 2] ** 2
                + anp.sum(np.array([[0.5, 0.2, -0.3], [1.0, -0.4, 0.1]]) * anp.log(z),
                          axis=(-2, -1)))

    def expectation_eta(eta):
        # E z_k = α_k/α₀, E z_j z_k = α_j α_k/(α₀(α₀+1)) (j ≠ k), E z_k² = α_k(α_k+1)/(α₀(α₀+1)),
        # E log z_k = ψ(α_k) − ψ(α₀)
        a = eta + 1
        a0 = anp.sum(a, axis=-1, keepdims=True)
        ez, elog = a / a0, digamma(a) - digamma(a0)
        return (anp.sum(np.array([[1.0, -2.0, 0.5], [0.3, 0.0, -1.0]]) * ez)
                + 4 * a[0, 0] * a[0, 1] / (a0[0, 0] * (a0[0, 0] + 1))
                + a[1, 2] * (a[1, 2] + 1) / (a0[1, 0] * (a0[1, 0] + 1))
                + anp.sum(np.array([[0.5, 0.2, -0.3], [1.0, -0.4, 0.1]]) * elog))

    return q, Latent((2, 3), "simplex"), f, expectation_eta, "eta"


def _bernoulli_f(z):
    return anp.exp(0.5 * z[..., 0] + z[..., 1] - z[..., 2]) + 3 * z[..., 0] * z[..., 1] * z[..., 2]


def _bernoulli_case():
    q = Bernoulli(p=np.array([0.3, 0.6, 0.8]))

    def expectation_mu(mu):  # a finite sum over the 2³ configurations
        p = mu[..., 0]
        total = 0.0
        for z in itertools.product([0.0, 1.0], repeat=3):
            z = np.array(z)
            total = total + anp.prod(anp.where(z == 1, p, 1 - p)) * _bernoulli_f(z)
        return total

    return q, Latent((3,), "binary"), _bernoulli_f, expectation_mu, "mu"


_TABLE = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0], [0.2, 4.0, -3.0]])


def _categorical_f(z):
    z = np.asarray(z)
    return _TABLE[z[..., 0], z[..., 1]] + np.sin(z[..., 1] + 2.0 * z[..., 0])


def _categorical_case():
    q = Categorical(p=np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]))

    def expectation_mu(mu):  # μ = first K−1 probabilities; a finite sum over 3² pairs
        p = anp.concatenate([mu, 1 - anp.sum(mu, axis=-1, keepdims=True)], axis=-1)
        total = 0.0
        for i, j in itertools.product(range(3), repeat=2):
            total = total + p[0, i] * p[1, j] * _categorical_f(np.array([i, j]))
        return total

    return q, Latent((2,), "categorical", 3), _categorical_f, expectation_mu, "mu"


SCORE_CASES = {"Gamma": _gamma_case, "Beta": _beta_case, "Dirichlet": _dirichlet_case,
               "Bernoulli": _bernoulli_case, "Categorical": _categorical_case}


def _exact(q, expectation, wrt):
    """Exact (E[f], ∇_μ E[f]): differentiated in μ directly, or in η then F⁻¹ (∇_η = F∇_μ)."""
    if wrt == "mu":
        mu = q.mean_params
        return float(expectation(mu)), autograd.grad(expectation)(mu)
    eta = np.array(q.natural)
    return float(expectation(eta)), q.fisher_solve(autograd.grad(expectation)(eta))


@pytest.mark.parametrize("name", list(SCORE_CASES))
def test_score_function_unbiased(name):
    """Score-function estimates from the engine (sample-mean control variate) are unbiased for
    E[f] and ∇_μ E[f] on mean-field batches, against closed-form / finite-sum expectations."""
    q, latent, f, expectation, wrt = SCORE_CASES[name]()
    # S = 4 draws: dividing by S instead of S − 1 would bias the gradient by 25%.
    values, grads = _replicate(lambda z: f(z["z"]), {"z": q}, {"z": latent}, n_samples=4,
                               n_seeds=600)
    exact_value, exact_grad = _exact(q, expectation, wrt)
    assert grads["z"].shape[1:] == q.mean_params.shape
    _assert_unbiased(values, exact_value, label="value")
    _assert_unbiased(grads["z"], exact_grad, label="grad")


def test_score_function_needs_two_draws():
    """The leave-one-out control variate needs S ≥ 2: n_samples=1 is refused, by name."""
    q, latent, f, _, _ = _gamma_case()
    with pytest.raises(ValueError, match="n_samples"):
        monte_carlo.expected_log_joint(lambda z: f(z["z"]), {"z": q}, {"z": latent},
                                       np.random.default_rng(0), n_samples=1)


@pytest.mark.parametrize("name", list(SCORE_CASES))
def test_control_variate_unbiased_and_reduces_variance(name):
    """score_function_gradient with and without the control variate: both unbiased for
    ∇_μ E[f + 100]; the control variate removes the variance the offset 100 brings (printed:
    the per-family variance ratio plain / control variate, for f and for f + 100)."""
    q, _, f, expectation, wrt = SCORE_CASES[name]()
    _, exact_grad = _exact(q, expectation, wrt)  # the offset does not change the gradient
    n_draws, n_seeds = 8, 300
    ratios = {}
    for offset in (0.0, 100.0):
        est = {True: [], False: []}
        for seed in range(n_seeds):
            z = q.sample(np.random.default_rng(seed), n_draws)
            fz = f(z) + offset
            for cv in (True, False):
                est[cv].append(monte_carlo.score_function_gradient(fz, q, z, control_variate=cv))
        for cv in (True, False):
            _assert_unbiased(est[cv], exact_grad, label=(offset, cv))
        var = {cv: np.var(np.array(e), axis=0, ddof=1).sum() for cv, e in est.items()}
        ratios[offset] = var[False] / var[True]
    print(f"\n{name}: variance ratio plain / control variate: f {ratios[0.0]:.3g}, "
          f"f + 100 {ratios[100.0]:.3g}")
    assert ratios[100.0] > 10


# ---- mixed: pathwise and score-function factors in one log joint --------------------------
_Y = np.array([[0.5, -1.0], [1.5, 0.2], [0.8, -0.4], [2.0, 0.3]])


def _mixed_log_joint(z):
    """Σᵢ [log τ − ½τ‖yᵢ − m‖²] + τ·exp(m₀): m ∈ ℝ² (pathwise), τ > 0 (score function)."""
    m, tau = z["m"], z["tau"]
    resid = _Y - m
    return (len(_Y) * anp.log(tau) - 0.5 * tau * anp.sum(resid**2) + tau * anp.exp(m[0]))


def _mixed_expectation(mu_m, mu_tau):
    """The same in mean parameters: E log τ = μ_τ₁, E τ = μ_τ₂, E m_j² = μ_m,j₂,
    E exp(m₀) = exp(m₀ + v₀/2); q factorizes so E[τ g(m)] = E τ · E g(m)."""
    m, v = _split_gaussian_moments(mu_m)
    e_sq = anp.sum(_Y**2) - 2 * anp.sum(_Y * m) + len(_Y) * anp.sum(mu_m[..., 1])
    return (len(_Y) * mu_tau[0] - 0.5 * mu_tau[1] * e_sq
            + mu_tau[1] * anp.exp(m[0] + 0.5 * v[0]))


def test_mixed_pathwise_and_score_function_unbiased():
    """A MeanFieldGaussian (pathwise) and a Gamma (score function) in one log joint that
    couples them: value and both gradients unbiased against the closed form."""
    posterior = {"m": MeanFieldGaussian(loc=np.array([0.7, -0.2]), scale=np.array([0.4, 0.3])),
                 "tau": Gamma(shape=3.0, rate=2.0)}
    latents = {"m": Latent((2,), "real"), "tau": Latent((), "positive")}
    values, grads = _replicate(_mixed_log_joint, posterior, latents, n_samples=8, n_seeds=300)
    mu_m, mu_tau = posterior["m"].mean_params, posterior["tau"].mean_params
    exact = _mixed_expectation(mu_m, mu_tau)
    g_m, g_tau = autograd.grad(_mixed_expectation, (0, 1))(mu_m, mu_tau)
    _assert_unbiased(values, exact, label="value")
    _assert_unbiased(grads["m"], g_m, label="m")
    _assert_unbiased(grads["tau"], g_tau, label="tau")


# ---- the closed-form engine ------------------------------------------------------------------
def _normal_gamma_closed_form(y, s2, a0, b0, k):
    """E_q log p for y ~ N(m, 1/τ), m ~ N(0, s2), τ ~ Gamma(a0, b0), and a count
    k ~ Poisson(e^m), in expected statistics μ_m = (E m, E m²), μ_τ = (E log τ, E τ).
    E e^m = exp(μ₁ + (μ₂ − μ₁²)/2) makes it nonlinear in μ."""
    n, sy, syy = len(y), float(np.sum(y)), float(np.sum(y**2))
    const = (-0.5 * np.log(2 * np.pi * s2) + a0 * np.log(b0) - special.gammaln(a0)
             - 0.5 * n * np.log(2 * np.pi) - special.gammaln(k + 1))

    def fn(means):
        em, em2 = means["m"][0], means["m"][1]
        elog, etau = means["tau"][0], means["tau"][1]
        return (const - 0.5 * em2 / s2 + (a0 - 1) * elog - b0 * etau
                + 0.5 * n * elog - 0.5 * etau * (syy - 2 * sy * em + n * em2)
                + k * em - anp.exp(em + 0.5 * (em2 - em**2)))

    return fn


def test_closed_form_gradient_matches_finite_differences():
    """closed_form.expected_log_joint returns fn(μ) and ∇_μ fn, equal to central finite
    differences of fn in each mean parameter."""
    y = np.array([0.3, 1.2, -0.4, 0.9, 2.1])
    fn = _normal_gamma_closed_form(y, s2=4.0, a0=2.0, b0=1.5, k=3)
    posterior = {"m": MeanFieldGaussian(loc=0.4, scale=0.6), "tau": Gamma(shape=2.5, rate=1.2)}
    value, grads = closed_form.expected_log_joint(fn, posterior)
    means = {k: np.array(q.mean_params) for k, q in posterior.items()}
    assert value == pytest.approx(fn(means), rel=1e-14)
    h = 1e-5
    for key in posterior:
        assert grads[key].shape == means[key].shape
        for i in range(means[key].size):
            up = {k: v.copy() for k, v in means.items()}
            down = {k: v.copy() for k, v in means.items()}
            up[key][i] += h
            down[key][i] -= h
            fd = (fn(up) - fn(down)) / (2 * h)
            assert grads[key][i] == pytest.approx(fd, rel=1e-8, abs=1e-8), (key, i)


def test_closed_form_unit_step_is_coordinate_ascent():
    """Normal mean with known noise: y ~ N(m, σ²), m ~ N(0, s²). From any q, one natural step
    η + ∇_μ L lands on the exact posterior N(Σy/σ² / λ, 1/λ), λ = 1/s² + n/σ², and the ELBO
    there equals log p(y) (the bound is tight)."""
    y = np.array([0.3, 1.2, -0.4, 0.9, 2.1])
    n, s2, sigma2 = len(y), 4.0, 0.5

    def fn(means):
        em, em2 = means["m"][0], means["m"][1]
        return (-0.5 * np.log(2 * np.pi * s2) - 0.5 * em2 / s2
                - 0.5 * n * np.log(2 * np.pi * sigma2)
                - 0.5 * (np.sum(y**2) - 2 * np.sum(y) * em + n * em2) / sigma2)

    model = natvi.Model(lambda z: 0.0, {"m": "real"}, closed_form=fn)
    prec = 1 / s2 + n / sigma2
    exact = MeanFieldGaussian(loc=np.sum(y) / sigma2 / prec, scale=prec**-0.5)
    evidence = stats.multivariate_normal(np.zeros(n), sigma2 * np.eye(n) + s2).logpdf(y)
    for start in (MeanFieldGaussian(loc=0.0, scale=1.0), MeanFieldGaussian(loc=-3.0, scale=0.05)):
        value0, grads = elbo(model, {"m": start})
        stepped = MeanFieldGaussian.from_natural(start.natural + grads["m"])
        np.testing.assert_allclose(stepped.natural, exact.natural, rtol=1e-12)
        value1, grads1 = elbo(model, {"m": stepped})
        assert value0 < value1 == pytest.approx(evidence, rel=1e-12)
        np.testing.assert_allclose(grads1["m"], 0.0, atol=1e-9)
