"""natvi.autograd_special against autograd.scipy.special (an independent wrapping of the
same SciPy functions) and central finite differences."""

import autograd.numpy as anp
import autograd.scipy.special as asp
import numpy as np
import pytest
from autograd import elementwise_grad, grad
from numpy.testing import assert_allclose

from natvi import autograd_special as ours

X = np.array([0.03, 0.4, 1.0, 2.5, 17.0, 300.0])
U = np.array([1e-6, 0.1, 0.5, 0.77, 1 - 1e-3])


@pytest.mark.parametrize("name, points", [("gammaln", X), ("digamma", X), ("expit", X - 3.0),
                                          ("logit", U)])
def test_values_and_first_two_derivatives(name, points):
    f, ref = getattr(ours, name), getattr(asp, name)
    assert_allclose(f(points), ref(points), rtol=1e-15)
    assert_allclose(elementwise_grad(f)(points), elementwise_grad(ref)(points), rtol=1e-14)
    assert_allclose(elementwise_grad(elementwise_grad(f))(points),
                    elementwise_grad(elementwise_grad(ref))(points), rtol=1e-13)
    h = 1e-6 * np.minimum(points, 1 - points) if name == "logit" else 1e-6 * np.abs(points)
    fd = (f(points + h) - f(points - h)) / (2 * h)
    assert_allclose(elementwise_grad(f)(points), fd, rtol=1e-6, atol=1e-10)


def test_polygamma_order_is_not_differentiated():
    g = elementwise_grad(lambda x: ours.polygamma(2, x))(X)
    assert_allclose(g, asp.polygamma(3, X), rtol=1e-14)


@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (-1, True), (1, False)])
def test_logsumexp_gradient_is_softmax(axis, keepdims):
    x = np.random.default_rng(0).normal(size=(3, 4)) * 30
    shape = np.shape(asp.logsumexp(x, axis, keepdims=keepdims))
    weights = np.random.default_rng(1).normal(size=shape)

    def loss(f):
        return lambda v: anp.sum(weights * f(v, axis=axis, keepdims=keepdims))

    assert_allclose(ours.logsumexp(x, axis=axis, keepdims=keepdims),
                    asp.logsumexp(x, axis=axis, keepdims=keepdims), rtol=1e-15)
    assert_allclose(grad(loss(ours.logsumexp))(x), grad(loss(asp.logsumexp))(x), rtol=1e-14,
                    atol=1e-300)
