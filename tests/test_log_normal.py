"""LogNormal: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py.

z = exp(x), x ~ N(m, v): T(z) = (log z, (log z)²), η = (m/v, −1/(2v)),
μ = (m, m² + v), h(z) = (2π)^(−½)/z; scipy's lognorm(s=√v, scale=e^m).
"""

import autograd
import numpy as np
import pytest
from numpy.testing import assert_allclose

from natvi.families.log_normal import LogNormal
from natvi.families.mean_field_gaussian import MeanFieldGaussian
from natvi.families.transformed_gaussian import TransformedGaussian


def test_is_a_transformed_gaussian():
    """A Gaussian x = log z held by the family (composition, not inheritance: a LogNormal is
    not a MeanFieldGaussian), with the same natural parameters."""
    q = LogNormal(loc=0.5, scale=2.0)
    assert isinstance(q, TransformedGaussian) and not isinstance(q, MeanFieldGaussian)
    assert isinstance(q.gaussian, MeanFieldGaussian)
    np.testing.assert_array_equal(q.gaussian.natural, q.natural)
    assert LogNormal.support == "positive"
    assert LogNormal.n_params == 2 and LogNormal.event_shape == ()
    # loc and scale are those of x = log z, as scipy's lognorm(s=scale, scale=exp(loc))
    assert_allclose([q.loc, q.scale, q.variance], [0.5, 2.0, 4.0], rtol=1e-15)


def test_transform_inverse_and_jacobian():
    x = np.linspace(-5, 5, 11)
    assert_allclose(LogNormal.inverse(LogNormal.transform(x)), x, rtol=1e-14, atol=1e-15)
    dz_dx = autograd.elementwise_grad(LogNormal.transform)(x)
    assert_allclose(LogNormal.log_abs_det_jacobian(x), np.log(dz_dx), rtol=1e-14, atol=1e-14)


def test_entropy_grad_closed_form():
    # ∇_μ H = −η + ∇_μ E[log z] = −η + (1, 0)
    q = LogNormal(loc=[[0.3, -1.0, 2.0]], scale=[[0.5], [1.4]])
    assert_allclose(q.entropy_grad(), -q.natural + np.array([1.0, 0.0]), rtol=1e-14)


def test_support():
    q = LogNormal(loc=[0.0, 1.0], scale=[1.0, 2.0])
    assert_allclose(q.log_prob([[0.0, -1.0], [np.inf, 1.0]])[0], [-np.inf, -np.inf])
    assert np.all(np.isneginf(q.log_prob([[np.nan, np.inf]])))
    assert np.all(np.isneginf(q.log_base_measure([0.0, -2.0])))
    for z in ([0.0], [-1.0], [1.0, np.inf], [np.nan]):
        with pytest.raises(ValueError, match="^z:"):
            LogNormal.sufficient_statistics(np.array(z))
