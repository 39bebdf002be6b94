"""The fixed-draw engine (deterministic ADVI), the default of custom models: a deterministic
ELBO whose gradient is the exact gradient of the function it evaluates, exact optima on
Gaussian log joints, the fallback for families without base draws, and the draw check."""

import autograd.numpy as anp
import numpy as np
import pytest

import natvi
from natvi import draw_check
from natvi.engines import FixedDraws, MonteCarlo
from natvi.engines.fixed_draws import WHITENED_DRAWS
from natvi.families import MeanFieldGaussian
from natvi.model import INIT_SCALE, Latent


def _correlated_gaussian(dim=3):
    """log p = log N(z; b, P⁻¹) for a correlated precision P: its posterior is exact."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(dim, dim))
    precision = a @ a.T + dim * np.eye(dim)
    b = rng.normal(size=dim)

    def log_joint(z):
        d = z["x"] - b
        return -0.5 * anp.dot(d, anp.dot(precision, d))

    return natvi.Model(log_joint, {"x": ((dim,), "real")}), b, precision


def _positive_model():
    y = np.array([1.2, 0.4, 2.3, 0.9, 1.7])

    def log_joint(z):
        rate = z["rate"]
        return anp.sum(anp.log(rate) - rate * y) - rate + z["shift"] * 0.3 - z["shift"] ** 2

    return natvi.Model(log_joint, {"rate": "positive", "shift": "real"})


def _bound(model, families, seed=0):
    vi = natvi.VI(model, family=families, seed=seed)
    return vi.engine, vi


def test_a_fit_binds_its_draws_and_the_elbo_is_deterministic():
    model = _positive_model()
    engine, vi = _bound(model, None)
    assert isinstance(engine, FixedDraws) and engine.deterministic and vi.deterministic
    assert not model.engine.deterministic  # the model's own engine draws afresh
    q = model.initial_posterior(vi.families)
    first, again = engine.elbo(q), engine.elbo(q)
    assert first.value == again.value
    assert all(np.array_equal(first.grads[k], again.grads[k]) for k in q)
    other, _ = _bound(model, None, seed=1)
    assert other.elbo(q).value != first.value


@pytest.mark.parametrize("family", [None, natvi.FullRankGaussian])
def test_gradient_is_the_exact_gradient_of_the_fixed_draw_elbo(family):
    """⟨∇_η L, v⟩ = ⟨F ∇_μ L, v⟩ against central differences of the engine's own ELBO along
    natural-parameter directions: the fixed-draw ELBO is the function the fit optimizes."""
    model = _positive_model()
    engine, vi = _bound(model, family)
    rng = np.random.default_rng(5)
    posterior = {k: cls.from_natural(_inside(cls, model, k, rng)) for k, cls in
                 vi.families.items()}
    grads = engine.elbo(posterior).grads
    for key, q in posterior.items():
        v = rng.normal(size=q.natural.shape)
        if family is not None:  # keep the matrix part symmetric
            d = q.dim
            m = v[d:].reshape(d, d)
            v[d:] = (0.5 * (m + m.T)).ravel()
        h = 1e-5

        def value(t, key=key, v=v, q=q):
            moved = dict(posterior)
            moved[key] = type(q).from_natural(q.natural + t * v)
            return engine.elbo(moved).value

        numeric = (value(h) - value(-h)) / (2 * h)
        analytic = float(np.sum(q.fisher_vector_product(grads[key]) * v))
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def _inside(cls, model, key, rng):
    """Natural parameters a little away from the standard member."""
    from natvi.model import standard_factor
    q = standard_factor(cls, model.latents, key)
    u = q.unconstrained + 0.3 * rng.normal(size=q.unconstrained.shape)
    return cls.from_unconstrained(u).natural


def test_means_of_a_gaussian_log_joint_are_exact():
    """Antithetic, moment-matched base draws: on a Gaussian log joint the fixed-draw ELBO's
    gradient in the mean is the exact one, so a full-rank fit's mean is the posterior mean
    to rounding, whatever the draws, and mean-field sds are exact on a diagonal one."""
    model, b, precision = _correlated_gaussian()
    for seed in (0, 1):
        result = natvi.fit(model, family=natvi.FullRankGaussian, seed=seed)
        assert result.converged
        q = result.posterior["x"]
        np.testing.assert_allclose(q.loc, b, atol=1e-7)
        assert result.draw_check.shift < 1e-6
    diagonal = natvi.Model(lambda z: -0.5 * anp.sum(4.0 * (z["x"] - 1.0) ** 2),
                           {"x": ((4,), "real")})
    q = natvi.fit(diagonal, seed=0).posterior["x"]
    np.testing.assert_allclose(q.loc, 1.0, atol=1e-8)
    np.testing.assert_allclose(q.scale, 0.5, rtol=1e-8)


def test_default_fit_is_reproducible_and_checked():
    model = _positive_model()
    a, b = natvi.fit(model, seed=4), natvi.fit(model, seed=4)
    # the rate's posterior is Gamma(6, 7.5); in u = log rate its log density falls linearly
    # as u → −∞ while the LogNormal q's falls quadratically, so log w grows as u²/2s² there:
    # the weights' tail index is k = 1, above the check's limit
    assert a.status == "unreliable" and a.draw_check.k_hat > draw_check.K_LIMIT
    assert a.elbo == b.elbo and a.message == b.message
    assert all(np.array_equal(a.posterior[k].natural, b.posterior[k].natural)
               for k in a.posterior)
    check = a.draw_check
    assert check.n_draws == 32 and check.shift <= draw_check.SHIFT_LIMIT
    assert np.isfinite(check.elbo) and check.elbo_se > 0
    # the fixed-draw ELBO and the fresh-draw estimate agree within the Monte Carlo error
    # of both (the fixed draws' own error is about the fresh one's × √(1000 / 32))
    assert abs(check.elbo - a.elbo) < 4 * check.elbo_se * np.sqrt(1 + 1000 / 32)
    assert "fixed draws" in a.message and "fresh draws" in a.message


def test_families_without_base_draws_fall_back_to_monte_carlo():
    model = _positive_model()
    vi = natvi.VI(model, family={"rate": natvi.Gamma}, seed=0)
    assert type(vi.engine) is MonteCarlo and not vi.deterministic
    result = natvi.fit(model, family={"rate": natvi.Gamma}, seed=0, max_iter=5)
    assert result.draw_check is None


def test_monte_carlo_by_choice():
    model = natvi.Model(_positive_model()._log_joint, {"rate": "positive", "shift": "real"},
                        engine="monte_carlo")
    assert type(natvi.VI(model).engine) is MonteCarlo and model.n_samples == 16


@pytest.mark.parametrize("kwargs, match", [
    ({"engine": "exact"}, "engine"),
    ({"n_samples": 7}, "even"),
    ({"n_samples": 0}, "n_samples"),
])
def test_bad_engine_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        natvi.Model(lambda z: -z["a"] ** 2, {"a": "real"}, **kwargs)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        FixedDraws(lambda z: 0.0, {"a": Latent()}, seed=-1)


def test_shift_measures_means_in_sds():
    a = {"x": natvi.MeanFieldGaussian(loc=np.array([0.0, 1.0]), scale=np.array([1.0, 2.0]))}
    b = {"x": natvi.MeanFieldGaussian(loc=np.array([0.1, 0.0]), scale=np.array([1.0, 2.0]))}
    assert draw_check.shift(a, b) == pytest.approx(0.5)


def test_fresh_elbo_is_the_closed_form_elbo():
    """For log p = log N(x; 0, 1) (normalized) and q = N(m, s²) the ELBO is
    −½(m² + s²) − ½ log 2π + ½ log(2πe s²); the fresh-draw estimate is within 4 SE."""
    model = natvi.Model(lambda z: -0.5 * z["x"] ** 2 - 0.5 * np.log(2 * np.pi), {"x": "real"})
    m, s = 0.7, 0.6
    q = {"x": natvi.MeanFieldGaussian(loc=m, scale=s)}
    exact = -0.5 * (m**2 + s**2) + 0.5 * np.log(np.e * s**2)
    value, se, k_hat = draw_check.fresh_elbo(model, q, np.random.default_rng(0), draws=4000)
    assert abs(value - exact) < 4 * se


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.5])
def test_fresh_k_hat_of_a_gaussian_q_is_one_minus_its_variance_ratio(scale):
    """For p = N(0, 1) and q = N(m, s²), log w = x²(1/s² − 1)/2 + O(x) at x ~ q, whose tail
    is Pareto with k = 1 − s² (for s < 1; bounded weights, k ≤ 0, for s ≥ 1): k̂ is within
    three of its standard errors (natvi.diagnostics.k_hat_se) of it."""
    model = natvi.Model(lambda z: -0.5 * z["x"] ** 2, {"x": "real"})
    q = {"x": natvi.MeanFieldGaussian(loc=0.3, scale=scale)}
    k_hat = draw_check.fresh_elbo(model, q, np.random.default_rng(1))[2]
    k = 1 - scale**2
    se = natvi.diagnostics.k_hat_se(max(k, 0.0), draw_check.FRESH_DRAWS)
    assert (abs(k_hat - k) < 3 * se) if k > 0 else k_hat < 3 * se


@pytest.mark.parametrize("rho, status", [(0.2, "converged"), (0.99, "unreliable")])
def test_mean_field_fit_of_a_correlated_gaussian_is_unreliable_by_its_k_hat(rho, status):
    """The mean-field optimum for N(0, [[1, ρ], [ρ, 1]]) has sds √(1 − ρ²), so along (1, 1)
    q's variance is 1 − ρ² against p's 1 + ρ: k = 1 − (1 − ρ)(1 + ρ)/(1 + ρ) = ρ (the
    other direction gives bounded weights). The fit's k̂ is within three standard errors
    of ρ; at ρ = 0.2 the fit is "converged", at 0.99 "unreliable" (confirmed on 4,000
    draws), and the full-rank fit, q = p, "converged" with all weights equal."""
    precision = np.linalg.inv(np.array([[1.0, rho], [rho, 1.0]]))
    model = natvi.Model(lambda z: -0.5 * anp.dot(z["x"], anp.dot(precision, z["x"])),
                        {"x": ((2,), "real")})
    result = natvi.fit(model, seed=0)
    check = result.draw_check
    assert abs(check.k_hat - rho) < 3 * natvi.diagnostics.k_hat_se(rho, check.k_draws)
    assert result.status == status and result.converged == (status == "converged")
    assert check.k_draws == (draw_check.CONFIRM_DRAWS if rho > 0.5 else draw_check.FRESH_DRAWS)
    assert ("Unreliable: k̂ is above 0.70" in result.message) == (status == "unreliable")
    assert ("FullRankGaussian" in result.message) == (status == "unreliable")
    full = natvi.fit(model, family=natvi.FullRankGaussian, seed=0)
    assert full.status == "converged" and full.draw_check.k_hat == -np.inf


def test_the_advice_of_an_unreliable_fit_fits_its_families():
    """A joint factor over two of three equicorrelated coordinates and a mean-field third is
    told to try one full-rank Gaussian; a single positive latent (a LogNormal q of a Gamma
    posterior, k = 1) another family; a full-rank fit neither."""
    log_joint, _, _ = _equicorrelated_gaussian(3, rho=0.95)
    model = natvi.Model(lambda z: log_joint({"x": anp.concatenate([z["a"], z["c"]])}),
                        {"a": ((2,), "real"), "c": ((1,), "real")})
    mixed = natvi.fit(model, family={("a",): natvi.FullRankGaussian, "c": MeanFieldGaussian},
                      seed=0)
    assert mixed.status == "unreliable" and "family=natvi.FullRankGaussian" in mixed.message
    y = np.array([1.2, 0.4, 2.3, 0.9, 1.7])
    single = natvi.fit(natvi.Model(lambda z: anp.sum(anp.log(z["r"]) - z["r"] * y) - z["r"],
                                   {"r": "positive"}), seed=0)
    assert single.status == "unreliable" and "natvi.Gamma" in single.message
    assert "FullRankGaussian" not in single.message
    funnel = natvi.fit(natvi.Model(lambda z: -0.5 * z["v"] ** 2 / 9 - 0.5 * anp.sum(
        z["x"] ** 2) * anp.exp(-z["v"]) - z["v"], {"v": "real", "x": ((2,), "real")}),
        family=natvi.FullRankGaussian, seed=0)
    assert funnel.status == "unreliable" and "FullRankGaussian" not in funnel.message
    assert funnel.message.startswith("unreliable: the optimizer converged")


def test_a_correlated_gaussian_over_two_mean_field_factors_is_exact():
    """Two scalar latents of a correlated Gaussian, each its own mean-field factor: the draws
    are whitened jointly across factors (more pairs than coordinates), so the fixed-draw ELBO
    is the ELBO and the mean-field optimum exact — sds √(1/Pᵢᵢ), means the posterior's."""
    precision = np.array([[2.0, 1.5], [1.5, 2.0]])
    b = np.array([1.0, -1.0])

    def log_joint(z):
        d = anp.stack([z["a"], z["b"]]) - b
        return -0.5 * anp.dot(d, anp.dot(precision, d))

    result = natvi.fit(natvi.Model(log_joint, {"a": "real", "b": "real"}), seed=0)
    for name, mean in zip("ab", b, strict=True):
        loc, sd = result.posterior[name].location_scale()
        assert loc == pytest.approx(mean, abs=1e-7)
        assert sd == pytest.approx(np.sqrt(1 / 2.0), rel=1e-7)


def _equicorrelated_gaussian(d, rho=0.9):
    """N(b, Σ) over one real vector of d coordinates, Σ with unit variances and all
    correlations ρ: the mean-field optimum has means b and sds √(1/Pᵢᵢ)."""
    cov = (1 - rho) * np.eye(d) + rho * np.ones((d, d))
    precision, b = np.linalg.inv(cov), np.linspace(-1.0, 1.0, d)

    def log_joint(z):
        r = z["x"] - b
        return -0.5 * anp.dot(r, anp.dot(precision, r))

    return log_joint, precision, b


def test_the_default_draws_are_whitened_jointly_up_to_their_limit():
    """With the default M, a fit of k = 20 coordinates draws 2(k + 1) = 42, more pairs than
    coordinates: its draws are whitened jointly, and the mean-field optimum of a correlated
    Gaussian is exact at once (with 32 draws, whitened coordinate by coordinate, it is
    not). An explicit n_samples is kept, and above WHITENED_DRAWS the default stays 32."""
    log_joint, precision, b = _equicorrelated_gaussian(20)
    model = natvi.Model(log_joint, {"x": ((20,), "real")})
    assert model.engine.whiten and natvi.VI(model, seed=0).engine.n_draws == 42
    # to the optimum's rounding, not to the default tol's 1e-4 sd
    loc, sd = natvi.fit(model, seed=0, tol=1e-13).posterior["x"].location_scale()
    np.testing.assert_allclose(loc, b, atol=1e-7)
    np.testing.assert_allclose(sd, np.sqrt(1 / np.diag(precision)), rtol=1e-7)
    explicit = natvi.Model(log_joint, {"x": ((20,), "real")}, n_samples=32)
    vi = natvi.VI(explicit, seed=0, tol=1e-13)
    assert not explicit.engine.whiten and vi.engine.n_draws == 32
    coarse = vi.result(vi.run(vi.init())).posterior["x"].location_scale()[1]
    assert np.max(np.abs(coarse * np.sqrt(np.diag(precision)) - 1)) > 1e-3
    big = natvi.Model(lambda z: -0.5 * anp.sum(z["x"] ** 2), {"x": ((64,), "real")})
    assert 2 * 65 > WHITENED_DRAWS
    assert natvi.VI(big, seed=0).engine.n_draws == 32


@pytest.mark.parametrize("engine, scale", [("fixed_draws", INIT_SCALE), ("monte_carlo", 1.0)])
def test_gaussian_factors_start_narrow_on_fixed_draws(engine, scale):
    """On fixed draws every Gaussian factor (also through a bijection, and a joint one)
    starts at sd INIT_SCALE on its unconstrained scale; on fresh draws at 1; and a model's
    own initial_posterior is kept."""

    class Own(natvi.Model):
        def initial_posterior(self, families):
            return {k: q for k, q in super().initial_posterior(families).items()}

    latents = {"x": ((3,), "real"), "s": "positive"}

    def log_joint(z):
        return -0.5 * anp.sum(z["x"] ** 2) - z["s"] + anp.log(z["s"])

    for model, expected in ((natvi.Model(log_joint, latents, engine=engine), scale),
                            (Own(log_joint, latents, engine=engine), 1.0)):
        for family in (None, natvi.FullRankGaussian):
            start = natvi.VI(model, family=family, seed=0).init().evaluation.aux["posterior"]
            for q in start.values():
                np.testing.assert_allclose(q.location_scale()[1], expected)
