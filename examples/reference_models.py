"""Ten custom models of the kinds users write with ``natvi.Model``, for reference posteriors.

Each builder returns a :class:`Reference`: the ``natvi.Model``, its data (fixed seeds for
synthetic data) and its log-joint function. ``examples/reference_nuts.py`` writes the same
models in PyMC, checks that the two are the same density, and stores long-NUTS summaries in
``tests/data/reference_posteriors.json``, keyed ``"model/latent[index]"`` on the
constrained scale; ``examples/custom_models_benchmark.py`` compares natvi and its peers
against them. This module needs natvi only.

The models (N observations, D latent coordinates):

- ``linear_halfcauchy``: linear regression, σ ~ HalfCauchy(2.5) (N = 100, D = 5).
- ``interaction_halfnormal``: a regression with two interactions, coefficients
  N(0, τ²) with τ ~ HalfNormal(1), σ ~ HalfNormal(1) (N = 200, D = 8).
- ``correlated_regression``: 26 predictors driven by three factors plus a little noise,
  condition number of X ≈ 2·10⁴ (:func:`condition_number`), σ ~ HalfNormal(1) (N = 250,
  D = 28).
- ``eight_schools_centered`` and ``eight_schools_noncentered``: Rubin's eight schools with
  μ ~ N(0, 5²), τ ~ HalfCauchy(5) (the priors of ``natvi.models.EightSchools``), D = 10.
- ``gp_poisson``: a Poisson regression on twelve squared-exponential kernel features whose
  length scale is a latent (log ℓ ~ N(0, 1)) (N = 40, D = 14).
- ``ordered_mixture``: a two-component normal mixture with ordered means
  (μ₂ = μ₁ + gap, gap > 0), weight w ∈ (0, 1), common σ (N = 200, D = 4).
- ``poisson_re_centered`` and ``poisson_re_noncentered``: the random-effects Poisson model
  of issue 14, with its data-generation code as given there (N = 300, D = 304: over the
  suite's 100-latent budget, but it is the case users reported).
- ``robust_regression``: Student-t regression with latent degrees of freedom
  ν ~ Gamma(2, 0.1) (N = 150, D = 5).

Log densities are written with ``autograd.scipy.stats`` and keep their normalizing
constants, so the PyMC versions agree up to rounding, not just up to a constant.
"""

from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.scipy.special import gammaln, logsumexp
from autograd.scipy.stats import beta as beta_dist
from autograd.scipy.stats import norm, poisson, t

import natvi
from natvi.models.eight_schools import EIGHT_SCHOOLS_SIGMA, EIGHT_SCHOOLS_Y

LOG_2 = np.log(2.0)


class Reference(NamedTuple):
    """A reference model: the natvi model, its data, and its log joint.

    model : natvi.Model
    data : dict
        {name: array or number}: everything the model conditions on (for the PyMC copy).
    log_joint : callable
        ``log_joint(z)`` = log p(data, z) for one draw {latent name: array}, with
        autograd.
    """

    model: natvi.Model
    data: dict
    log_joint: object


def half_normal_logpdf(x, scale):
    """log density of HalfNormal(scale) at x > 0."""
    return LOG_2 + norm.logpdf(x, 0.0, scale)


def half_cauchy_logpdf(x, scale):
    """log density of HalfCauchy(scale) at x > 0."""
    return LOG_2 - anp.log(np.pi * scale) - anp.log1p((x / scale) ** 2)


def gamma_logpdf(x, shape, rate):
    """log density of Gamma(shape, rate) at x > 0 (autograd's gamma has no scale)."""
    return shape * np.log(rate) - gammaln(shape) + (shape - 1) * anp.log(x) - rate * x


def _reference(log_joint, latents, data):
    return Reference(natvi.Model(log_joint, latents), data, log_joint)


def condition_number(X):
    """The 2-norm condition number of a design matrix X (ratio of its singular values)."""
    s = np.linalg.svd(np.asarray(X, float), compute_uv=False)
    return float(s[0] / s[-1])


def linear_halfcauchy():
    """y ~ N(α + Xβ, σ²); α ~ N(0, 5²), β ~ N(0, 2.5²), σ ~ HalfCauchy(2.5)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    y = 1.0 + X @ np.array([0.5, -1.0, 0.2]) + rng.normal(0.0, 0.7, size=100)
    data = {"X": X, "y": y}

    def log_joint(z):
        mu = z["alpha"] + X @ z["beta"]
        return (norm.logpdf(z["alpha"], 0.0, 5.0) + anp.sum(norm.logpdf(z["beta"], 0.0, 2.5))
                + half_cauchy_logpdf(z["sigma"], 2.5) + anp.sum(norm.logpdf(y, mu, z["sigma"])))

    return _reference(log_joint, {"alpha": "real", "beta": ((3,), "real"), "sigma": "positive"},
                      data)


def interaction_halfnormal():
    """y ~ N(α + Xβ, σ²) with X = (x₁, x₂, g, x₁x₂, x₁g); α ~ N(0, 5²), β ~ N(0, τ²),
    τ ~ HalfNormal(1), σ ~ HalfNormal(1)."""
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(size=200), rng.normal(size=200)
    g = (rng.random(200) < 0.4).astype(float)
    X = np.column_stack([x1, x2, g, x1 * x2, x1 * g])
    y = 0.3 + X @ np.array([0.8, -0.5, 1.2, 0.4, -0.6]) + rng.normal(0.0, 1.0, size=200)
    data = {"X": X, "y": y}

    def log_joint(z):
        mu = z["alpha"] + X @ z["beta"]
        return (norm.logpdf(z["alpha"], 0.0, 5.0)
                + anp.sum(norm.logpdf(z["beta"], 0.0, z["tau"]))
                + half_normal_logpdf(z["tau"], 1.0) + half_normal_logpdf(z["sigma"], 1.0)
                + anp.sum(norm.logpdf(y, mu, z["sigma"])))

    return _reference(log_joint, {"alpha": "real", "beta": ((5,), "real"), "tau": "positive",
                                  "sigma": "positive"}, data)


def correlated_regression():
    """y ~ N(α + Xβ, σ²) with 26 predictors from three factors plus noise of sd 5·10⁻⁴
    (condition number of X ≈ 2·10⁴); α ~ N(0, 5²), β ~ N(0, 1), σ ~ HalfNormal(1)."""
    rng = np.random.default_rng(3)
    factors = rng.normal(size=(250, 3))
    loadings = rng.normal(size=(3, 26))
    X = factors @ loadings + 5e-4 * rng.normal(size=(250, 26))
    coef = rng.normal(0.0, 0.5, size=26)
    y = 0.5 + X @ coef + rng.normal(0.0, 1.0, size=250)
    data = {"X": X, "y": y}

    def log_joint(z):
        mu = z["alpha"] + X @ z["beta"]
        return (norm.logpdf(z["alpha"], 0.0, 5.0) + anp.sum(norm.logpdf(z["beta"], 0.0, 1.0))
                + half_normal_logpdf(z["sigma"], 1.0) + anp.sum(norm.logpdf(y, mu, z["sigma"])))

    return _reference(log_joint, {"alpha": "real", "beta": ((26,), "real"),
                                  "sigma": "positive"}, data)


def _eight_schools(centered):
    y, sigma = EIGHT_SCHOOLS_Y, EIGHT_SCHOOLS_SIGMA
    data = {"y": y, "sigma": sigma}
    name = "theta" if centered else "theta_raw"

    def log_joint(z):
        mu, tau = z["mu"], z["tau"]
        if centered:
            theta, prior = z["theta"], anp.sum(norm.logpdf(z["theta"], mu, tau))
        else:
            theta, prior = mu + tau * z["theta_raw"], anp.sum(norm.logpdf(z["theta_raw"]))
        return (norm.logpdf(mu, 0.0, 5.0) + half_cauchy_logpdf(tau, 5.0) + prior
                + anp.sum(norm.logpdf(y, theta, sigma)))

    return _reference(log_joint, {"mu": "real", "tau": "positive", name: ((8,), "real")}, data)


def eight_schools_centered():
    """θⱼ ~ N(μ, τ²), yⱼ ~ N(θⱼ, σⱼ²); μ ~ N(0, 5²), τ ~ HalfCauchy(5); latent θ."""
    return _eight_schools(centered=True)


def eight_schools_noncentered():
    """θⱼ = μ + τ θ̃ⱼ with θ̃ⱼ ~ N(0, 1); otherwise as the centered model; latent θ̃."""
    return _eight_schools(centered=False)


def gp_poisson():
    """yᵢ ~ Poisson(exp(b₀ + Σₖ wₖ φₖ(xᵢ))), φₖ(x) = exp(−(x − cₖ)² / (2ℓ²)) on twelve
    centres cₖ over [0, 10]; b₀ ~ N(0, 2²), wₖ ~ N(0, 1), log ℓ ~ N(0, 1)."""
    rng = np.random.default_rng(4)
    x = np.sort(rng.uniform(0.0, 10.0, size=40))
    centres = np.linspace(0.0, 10.0, 12)
    y = rng.poisson(np.exp(1.0 + np.sin(x)))
    data = {"x": x, "centres": centres, "y": y}

    def log_joint(z):
        ell = anp.exp(z["log_ell"])
        features = anp.exp(-0.5 * ((x[:, None] - centres[None, :]) / ell) ** 2)
        eta = z["b0"] + features @ z["w"]
        return (norm.logpdf(z["b0"], 0.0, 2.0) + anp.sum(norm.logpdf(z["w"], 0.0, 1.0))
                + norm.logpdf(z["log_ell"], 0.0, 1.0) + anp.sum(poisson.logpmf(y, anp.exp(eta))))

    return _reference(log_joint, {"b0": "real", "w": ((12,), "real"), "log_ell": "real"}, data)


def ordered_mixture():
    """yᵢ ~ (1 − w) N(μ₁, σ²) + w N(μ₁ + gap, σ²); μ₁ ~ N(0, 5²), gap ~ HalfNormal(5),
    w ~ Beta(2, 2), σ ~ HalfNormal(2)."""
    rng = np.random.default_rng(5)
    second = rng.random(200) < 0.6
    y = np.where(second, rng.normal(2.5, 1.0, size=200), rng.normal(-1.0, 1.0, size=200))
    data = {"y": y}

    def log_joint(z):
        mu1, gap, w, sigma = z["mu1"], z["gap"], z["w"], z["sigma"]
        components = anp.stack([anp.log1p(-w) + norm.logpdf(y, mu1, sigma),
                                anp.log(w) + norm.logpdf(y, mu1 + gap, sigma)])
        return (norm.logpdf(mu1, 0.0, 5.0) + half_normal_logpdf(gap, 5.0)
                + beta_dist.logpdf(w, 2.0, 2.0) + half_normal_logpdf(sigma, 2.0)
                + anp.sum(logsumexp(components, axis=0)))

    return _reference(log_joint, {"mu1": "real", "gap": "positive", "w": "unit_interval",
                                  "sigma": "positive"}, data)


def poisson_re_data(n=300):
    """The data of issue 14's random-effects Poisson example, generated as there."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 2))
    eps = rng.normal(0, 0.5, size=n)
    y = rng.poisson(np.exp(1.0 + x @ np.array([0.5, -0.3]) + eps))
    return {"x": x, "y": y}


def _poisson_re(centered):
    data = poisson_re_data()
    x, y = data["x"], data["y"]
    n = y.size
    name = "eps" if centered else "eps_raw"

    def log_joint(z):
        sigma = z["sigma"]
        if centered:
            eps, prior = z["eps"], anp.sum(norm.logpdf(z["eps"], 0.0, sigma))
        else:
            eps, prior = sigma * z["eps_raw"], anp.sum(norm.logpdf(z["eps_raw"]))
        eta = z["b0"] + x @ z["beta"] + eps
        return (norm.logpdf(z["b0"], 0.0, 2.0) + anp.sum(norm.logpdf(z["beta"], 0.0, 1.0))
                + half_normal_logpdf(sigma, 1.0) + prior
                + anp.sum(poisson.logpmf(y, anp.exp(eta))))

    return _reference(log_joint, {"b0": "real", "beta": ((2,), "real"), "sigma": "positive",
                                  name: ((n,), "real")}, data)


def poisson_re_centered():
    """yᵢ ~ Poisson(exp(b₀ + xᵢβ + εᵢ)), εᵢ ~ N(0, σ²); b₀ ~ N(0, 2²), β ~ N(0, 1),
    σ ~ HalfNormal(1); latent ε."""
    return _poisson_re(centered=True)


def poisson_re_noncentered():
    """As the centered model with εᵢ = σ ε̃ᵢ, ε̃ᵢ ~ N(0, 1); latent ε̃."""
    return _poisson_re(centered=False)


def robust_regression():
    """yᵢ ~ Student-t(ν, α + xᵢβ, σ); α ~ N(0, 5²), β ~ N(0, 2.5²), σ ~ HalfNormal(2),
    ν ~ Gamma(2, rate 0.1)."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(150, 2))
    y = -0.5 + X @ np.array([1.0, 0.5]) + 0.8 * rng.standard_t(3.0, size=150)
    data = {"X": X, "y": y}

    def log_joint(z):
        mu = z["alpha"] + X @ z["beta"]
        return (norm.logpdf(z["alpha"], 0.0, 5.0) + anp.sum(norm.logpdf(z["beta"], 0.0, 2.5))
                + half_normal_logpdf(z["sigma"], 2.0)
                + gamma_logpdf(z["nu"], 2.0, 0.1)
                + anp.sum(t.logpdf(y, z["nu"], mu, z["sigma"])))

    return _reference(log_joint, {"alpha": "real", "beta": ((2,), "real"), "sigma": "positive",
                                  "nu": "positive"}, data)


#: {model name: builder}, in the order tables list them
MODELS = {f.__name__: f for f in (
    linear_halfcauchy, interaction_halfnormal, correlated_regression, eight_schools_centered,
    eight_schools_noncentered, gp_poisson, ordered_mixture, poisson_re_centered,
    poisson_re_noncentered, robust_regression)}


def coordinate_names(model):
    """``"latent[index]"`` for every coordinate of every latent of ``model`` (``"latent"``
    for a scalar), in the order of its latents and C order within each."""
    names = []
    for name, latent in model.latents.items():
        if latent.shape == ():
            names.append(name)
        else:
            names.extend(f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(latent.shape))
    return names


def flatten(model, values):
    """{latent name: array} → one vector, in the order of :func:`coordinate_names`."""
    return np.concatenate([np.ravel(values[name]) for name in model.latents])


def unflatten(model, vector):
    """One vector → {latent name: array of the latent's shape} (works on autograd boxes)."""
    out, start = {}, 0
    for name, latent in model.latents.items():
        size = int(np.prod(latent.shape))
        part = vector[start:start + size]
        out[name] = part[0] if latent.shape == () else anp.reshape(part, latent.shape)
        start += size
    return out


__all__ = ["MODELS", "Reference", "condition_number", "coordinate_names", "flatten",
           "gamma_logpdf", "half_cauchy_logpdf", "half_normal_logpdf", "unflatten"]
