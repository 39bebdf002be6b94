"""The bijections of natvi.bijections and a joint full-rank Gaussian over constrained latents:
round trips, log-Jacobians against autograd's Jacobian, and the densities they give against
the transformed families that have them in closed form."""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.stats

import natvi
from natvi import bijections, factors
from natvi.model import Latent

CASES = [("real", (3,)), ("positive", (2,)), ("unit_interval", ()), ("simplex", (4,)),
         ("simplex", (2, 3))]


@pytest.mark.parametrize("support, shape", CASES)
def test_round_trip_and_support(support, shape):
    rng = np.random.default_rng(0)
    n = bijections.size(support, shape)
    x = rng.normal(scale=2.0, size=(5, n))
    z = bijections.forward(support, x, shape)
    assert z.shape == (5, *shape)
    if support == "positive":
        assert np.all(z > 0)
    if support == "unit_interval":
        assert np.all((z > 0) & (z < 1))
    if support == "simplex":
        np.testing.assert_allclose(z.sum(axis=-1), 1.0, rtol=1e-14)
        assert np.all(z > 0)
    np.testing.assert_allclose(bijections.inverse(support, z, shape), x, rtol=1e-10,
                               atol=1e-10)


@pytest.mark.parametrize("support, shape", CASES)
def test_log_det_jacobian_is_autograds(support, shape):
    """log |det dz/dx| from autograd's full Jacobian (for the simplex, of the first K − 1
    components of each simplex, the coordinates its densities are written in)."""
    rng = np.random.default_rng(1)
    n = bijections.size(support, shape)
    x = rng.normal(size=n)

    def free(v):
        z = bijections.forward(support, v, shape)
        return anp.reshape(z[..., :-1] if support == "simplex" else z, (-1,))

    jac = autograd.jacobian(free)(x)
    expected = np.linalg.slogdet(jac)[1]
    assert bijections.log_det_jacobian(support, x, shape) == pytest.approx(expected, abs=1e-12)


def test_the_uniform_simplex_is_at_zero():
    z = bijections.forward("simplex", np.zeros(4), (5,))
    np.testing.assert_allclose(z, np.full(5, 0.2), rtol=1e-14)


@pytest.mark.parametrize("support, family", [("positive", natvi.LogNormal),
                                             ("unit_interval", natvi.LogitNormal)])
def test_joint_density_equals_the_transformed_family(support, family):
    """A full-rank Gaussian over one positive (unit-interval) latent is the LogNormal
    (LogitNormal) with the same Gaussian: same log q(z) at the same points."""
    latents = {"a": Latent((), support)}
    loc, var = 0.3, 0.49
    joint = natvi.FullRankGaussian(loc=np.array([loc]), cov=np.array([[var]]))
    single = family.from_natural(np.array([loc / var, -0.5 / var]))
    z = {"a": single.sample(np.random.default_rng(2), 7)}
    np.testing.assert_allclose(factors.log_prob(latents, ("a",), joint, z, (7,)),
                               single.log_prob(z["a"]), rtol=1e-12)


def test_joint_simplex_density_is_a_density():
    """q(z) of a full-rank Gaussian through the stick-breaking map integrates to 1 over the
    2-simplex (numerically, over its first coordinate)."""
    latents = {"w": Latent((2,), "simplex")}
    q = natvi.FullRankGaussian(loc=np.array([0.4]), cov=np.array([[0.8]]))
    grid = np.linspace(1e-9, 1 - 1e-9, 200_001)
    values = {"w": np.stack([grid, 1 - grid], axis=-1)}
    density = np.exp(factors.log_prob(latents, ("w",), q, values, (grid.size,)))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)


def _mixed_model():
    """y ~ N(mu, sigma²) with mu ~ N(0, 1), sigma ~ HalfNormal(1), and a weight w ~ U(0, 1)
    that multiplies nothing: three supports under one joint factor."""
    y = np.array([0.3, -0.2, 1.1, 0.7, 0.1, 0.5])

    def log_joint(z):
        mu, sigma, w = z["mu"], z["sigma"], z["w"]
        return (scipy_norm_logpdf(mu, 0.0, 1.0) + np.log(2) + scipy_norm_logpdf(sigma, 0.0, 1.0)
                + anp.sum(scipy_norm_logpdf(y, mu, sigma)) + 0.0 * w)

    return natvi.Model(log_joint, {"mu": "real", "sigma": "positive", "w": "unit_interval"})


def scipy_norm_logpdf(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - anp.log(scale) - 0.5 * np.log(2 * np.pi)


def test_full_rank_covers_every_continuous_latent_jointly():
    model = _mixed_model()
    result = natvi.fit(model, family=natvi.FullRankGaussian, seed=0)
    assert list(result.posterior) == [("mu", "sigma", "w")]
    assert result.converged
    draws = result.sample(2000, seed=1)
    assert np.all(draws["sigma"] > 0) and np.all((draws["w"] > 0) & (draws["w"] < 1))
    # w does not enter the likelihood: its posterior is its U(0, 1) prior, whose logit is
    # logistic (sd π/√3); the best Gaussian fit to it has mean 0
    loc, sd = result.posterior[("mu", "sigma", "w")].location_scale()
    assert abs(loc[2]) < 0.05 and 1.4 < sd[2] < 1.9
    # the ELBO the fit reports (on its fixed draws) and a fresh-draw estimate, whose code
    # path samples z on the supports and evaluates log q(z) with the Jacobians, agree
    check = result.draw_check
    assert abs(check.elbo - result.elbo) < 4 * check.elbo_se + 0.05
    assert np.all(np.isfinite(result.pareto_k(500, seed=2)))


def test_a_joint_factor_needs_an_engine_that_transforms():
    """Closed-form and quadrature engines see real latents only: a FullRankGaussian there
    covers the real ones and the positive noise precision keeps its family."""
    from natvi.models import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    model = LinearRegression(X, X @ [1.0, -1.0] + rng.normal(size=40))
    families = natvi.VI(model, family=natvi.FullRankGaussian).families
    assert families[("intercept", "coef")] is natvi.FullRankGaussian
    assert families["noise_precision"] is not natvi.FullRankGaussian
    with pytest.raises(ValueError, match="noise_precision.*bijections"):
        natvi.VI(model, family={tuple(model.latents): natvi.FullRankGaussian})


def test_lognormal_check_against_scipy():
    """factors.log_prob for a positive latent under a joint factor against scipy.stats."""
    latents = {"s": Latent((), "positive")}
    q = natvi.FullRankGaussian(loc=np.array([-0.2]), cov=np.array([[0.3]]))
    z = {"s": np.array([0.1, 0.8, 2.5])}
    expected = scipy.stats.lognorm(s=np.sqrt(0.3), scale=np.exp(-0.2)).logpdf(z["s"])
    np.testing.assert_allclose(factors.log_prob(latents, ("s",), q, z, (3,)), expected,
                               rtol=1e-12)
