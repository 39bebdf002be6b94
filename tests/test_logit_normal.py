"""LogitNormal: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py (with moments and entropy by numerical integration, as
scipy.stats has no logit-normal).

z = σ(x), x ~ N(m, v): T(z) = (logit z, (logit z)²), η = (m/v, −1/(2v)),
μ = (m, m² + v), h(z) = (2π)^(−½)/(z(1 − z)).
"""

import autograd
import numpy as np
import pytest
from family_registry import LogitNormalSpec
from numpy.testing import assert_allclose
from scipy import integrate

from natvi.families.logit_normal import LogitNormal
from natvi.families.mean_field_gaussian import MeanFieldGaussian
from natvi.families.transformed_gaussian import TransformedGaussian

LOG_2PI = np.log(2 * np.pi)


def test_is_a_transformed_gaussian():
    q = LogitNormal(loc=0.5, scale=2.0)
    assert isinstance(q, TransformedGaussian) and not isinstance(q, MeanFieldGaussian)
    assert isinstance(q.gaussian, MeanFieldGaussian)
    np.testing.assert_array_equal(q.gaussian.natural, q.natural)
    assert LogitNormal.support == "unit_interval"
    assert LogitNormal.n_params == 2 and LogitNormal.event_shape == ()
    assert_allclose([q.loc, q.scale, q.variance], [0.5, 2.0, 4.0], rtol=1e-15)


def test_transform_inverse_and_jacobian():
    x = np.linspace(-30, 30, 13)
    # z = σ(x) near 1 keeps only an absolute precision, so the round trip is checked to 10
    z = LogitNormal.transform(x)
    assert_allclose(LogitNormal.inverse(z[x <= 10]), x[x <= 10], rtol=1e-11, atol=1e-13)
    assert_allclose(z, 1 / (1 + np.exp(-x)), rtol=1e-15)
    dz_dx = autograd.elementwise_grad(LogitNormal.transform)(x)
    inner = np.abs(x) <= 10  # autograd's σ(x)(1 − σ(x)) cancels further out
    assert_allclose(LogitNormal.log_abs_det_jacobian(x[inner]), np.log(dz_dx[inner]), rtol=1e-12)
    assert_allclose(LogitNormal.log_abs_det_jacobian(x),
                    -np.abs(x) - 2 * np.log1p(np.exp(-np.abs(x))), rtol=1e-15)
    # overflow-safe, and differentiable, far out in the tails
    big = np.array([-800.0, 800.0])
    assert_allclose(LogitNormal.log_abs_det_jacobian(big), [-800.0, -800.0], rtol=1e-15)
    grad = autograd.elementwise_grad(LogitNormal.log_abs_det_jacobian)(big)
    assert_allclose(grad, [1.0, -1.0], rtol=1e-15)


def test_density_integrates_to_one_and_log_prob_is_stable_at_the_ends():
    q = LogitNormal(loc=[-2.0, 0.5], scale=[0.4, 1.7])
    for i in range(2):
        total = integrate.quad(lambda z, i=i: np.exp(q.log_prob(np.full(2, z))[i]), 0, 1,
                               epsabs=1e-14, epsrel=1e-12, limit=400)[0]
        assert_allclose(total, 1.0, rtol=1e-10)
    # far in the tails: log z and log(1 − z) exactly, no cancellation
    q = LogitNormal(loc=0.0, scale=1.0)
    z = np.array([1e-200, 1 - 2.0**-50])
    x = np.array([np.log(1e-200), np.log1p(-2.0**-50) + 50 * np.log(2)])
    expected = -0.5 * LOG_2PI - 0.5 * x**2 - np.log(z) - np.log1p(-z)
    assert_allclose(q.log_prob(z), expected, rtol=1e-12)


@pytest.mark.parametrize("loc, scale", [(0.0, 3.0), (1.5, 4.0), (-2.0, 0.05)])
def test_quadrature_accuracy_beyond_the_random_range(loc, scale):
    q = LogitNormal(loc=loc, scale=scale)
    ref = LogitNormalSpec.reference(loc=loc, scale=scale)
    assert_allclose([q.mean(), q.var(), q.entropy()], [ref.mean, ref.var, ref.entropy],
                    rtol=1e-7, atol=1e-9)
    # symmetric about ½ at loc 0
    assert_allclose(LogitNormal(scale=scale).mean(), 0.5, rtol=1e-15)


def test_var_keeps_precision_for_mass_near_one():
    # x = 30 + ε: 1 − z ≈ e^(−x), so Var z ≈ Var e^(−x) = e^(−2m + v)(e^v − 1); z − E z
    # would cancel to nothing here.
    m, s = 30.0, 0.5
    q = LogitNormal(loc=[m, -m], scale=s)
    approx = np.exp(-2 * m + s**2) * np.expm1(s**2)
    assert_allclose(q.var(), [approx, approx], rtol=1e-10)
    assert_allclose(q.mean()[1], np.exp(-m + s**2 / 2), rtol=1e-10)


def test_expected_log_jacobian_at_small_scale():
    # E[f(x)] → f(m) + ½ f″(m) v: its derivatives tend to f′(m) and ½ f″(m), with
    # f′ = −tanh(x/2) and f″ = −½ sech²(x/2); no rounding residue / scale blows up.
    m = np.array([2.0, -0.7, 12.0])
    q = LogitNormal(loc=m, scale=1e-7)
    value, grad_loc, grad_var = q._expected_log_jacobian()
    assert_allclose(value, LogitNormal.log_abs_det_jacobian(m), rtol=1e-12)
    assert_allclose(grad_loc, -np.tanh(m / 2), rtol=1e-10)
    assert_allclose(grad_var, -0.25 / np.cosh(m / 2) ** 2, rtol=1e-6)


def test_support():
    q = LogitNormal(loc=[0.0, 1.0], scale=[1.0, 2.0])
    assert np.all(np.isneginf(q.log_prob([[0.0, 1.0], [-0.5, 1.5], [np.nan, np.inf]])))
    assert np.all(np.isneginf(q.log_base_measure([0.0, 1.0])))
    for z in ([0.0], [1.0], [0.5, 2.0], [np.nan]):
        with pytest.raises(ValueError, match="^z:"):
            LogitNormal.sufficient_statistics(np.array(z))
