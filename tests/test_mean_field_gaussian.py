"""MeanFieldGaussian: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py.

q(z | η) = N(z; m, v) per batch element, T(z) = (z, z²), η = (m/v, −1/(2v)),
μ = (m, m² + v), A(η) = −η₁²/(4η₂) − ½ log(−2η₂).
"""

from fractions import Fraction

import autograd
import autograd.numpy as anp
import numpy as np
from numpy.testing import assert_allclose

from natvi.families import MeanFieldGaussian


def test_fisher_quadratic_form_without_cancellation():
    # tiny variance, large mean: ⟨v, Fv⟩ against exact rational arithmetic on the same floats
    q = MeanFieldGaussian(loc=[1e4, -3e3, 50.0], scale=[1e-6, 1e-5, 1e-8])
    v = np.array([[1.0, -0.5e-4], [2.0, 1 / 3e3], [1.0, -1e-2]])
    got = q.fisher_quadratic_form(v)
    for i in range(3):
        m, var = Fraction(q.loc[i]), Fraction(q.variance[i])
        a, b = Fraction(v[i, 0]), Fraction(v[i, 1])
        exact = var * a * a + 4 * m * var * a * b + (2 * var**2 + 4 * m**2 * var) * b * b
        assert got[i] >= 0
        assert_allclose(got[i], float(exact), rtol=1e-9)


def objective_of_moments(m, v):
    """A smooth, nonlinear function of the distribution, through its mean and variance."""
    return (anp.sum(anp.sin(m) * v + anp.log1p(v**2) + 0.2 * m**2 * anp.sqrt(v))
            + 0.1 * anp.sum(m) ** 2)


def test_grad_mean_from_moments_is_chain_rule():
    rng = np.random.default_rng(0)
    q = MeanFieldGaussian(rng.normal(0.0, 1.5, (2, 4)), rng.uniform(0.3, 2.0, (2, 4)))
    grad_m, grad_v = autograd.grad(objective_of_moments, argnum=(0, 1))(q.loc, q.variance)
    expected = autograd.grad(lambda mu: objective_of_moments(
        mu[..., 0], mu[..., 1] - mu[..., 0] ** 2))(q.mean_params)
    assert_allclose(q.grad_mean_from_moments(grad_m, grad_v), expected, rtol=1e-10, atol=1e-10)
