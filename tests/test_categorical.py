"""Categorical: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py.

q(z | η) = p_z, z ∈ {0, …, K−1}, T(z) = the first K−1 one-hot indicators,
η_k = log(p_k / p_K), μ = (p_1, …, p_{K−1}), A(η) = log(1 + Σ e^η),
F = diag(p) − ppᵀ on the first K−1 categories.
"""

from fractions import Fraction

import numpy as np
import pytest
from numpy.testing import assert_allclose

from natvi.families.categorical import Categorical


def test_fisher_quadratic_form_without_cancellation():
    # one dominant category and a large common offset in v: Σ p v² − (p·v)² would cancel
    q = Categorical.from_natural(np.array([[30.0, 0.0], [-5.0, 25.0]]))
    v = np.array([[1e8, 1e8 + 1.0], [3e7 + 2.0, 3e7]])
    got = q.fisher_quadratic_form(v)
    p = q.p
    for i in range(2):
        pf = [Fraction(x) for x in p[i]]
        vf = [Fraction(x) for x in v[i]] + [Fraction(0)]
        mean = sum(a * b for a, b in zip(pf, vf, strict=True))
        exact = sum(a * (b - mean) ** 2 for a, b in zip(pf, vf, strict=True))
        assert got[i] >= 0
        assert_allclose(got[i], float(exact), rtol=1e-8)


def test_precision_near_degenerate_probabilities():
    # 1 − p of the dominant category without cancellation, no overflow at large η
    q = Categorical.from_natural(np.array([40.0, 0.0]))
    rest = 2 / (np.exp(40.0) + 2)
    assert_allclose(q.var(), [rest * (1 - rest), np.exp(-40.0) * (1 - np.exp(-40.0)),
                              np.exp(-40.0) * (1 - np.exp(-40.0))], rtol=1e-13)
    assert_allclose(q.fisher()[0, 0], rest * (1 - rest), rtol=1e-13)
    assert_allclose(q.log_prob(0), -np.log1p(2 * np.exp(-40.0)), rtol=1e-13)
    q = Categorical.from_natural(np.array([800.0, -800.0]))
    assert_allclose(q.log_partition(), 800.0, rtol=1e-15)
    assert np.all(np.isfinite(q.entropy())) and q.entropy() >= 0
    assert_allclose(q.log_prob([0, 1, 2]), [0.0, -1600.0, -800.0], rtol=1e-14)
    assert np.isfinite(q.kl(Categorical(p=[0.2, 0.3, 0.5])))


def test_codes_validation_and_log_prob_off_support():
    q = Categorical(p=[0.2, 0.3, 0.5])
    assert_allclose(q.sufficient_statistics(np.array([0, 1, 2])),
                    [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert_allclose(q.sufficient_statistics(np.array([2.0, 1.0])), [[0.0, 0.0], [0.0, 1.0]])
    for z in ([3], [-1], [1.5], [np.nan], [np.inf]):
        with pytest.raises(ValueError, match="^z:"):
            q.sufficient_statistics(np.array(z))
    with pytest.raises(ValueError, match="^z:"):
        q.sufficient_statistics(np.array(["a"]))
    assert_allclose(q.log_prob([0, 3, -1, 1.5, np.nan, 2.0]),
                    [np.log(0.2), -np.inf, -np.inf, -np.inf, -np.inf, np.log(0.5)], rtol=1e-14)
    assert_allclose(q.log_base_measure([0, 3, 1.5]), [0.0, -np.inf, -np.inf])


def test_probabilities_are_renormalized():
    p = np.array([0.2, 0.3, 0.5]) * (1 + 5e-9)  # within the tolerance of Σ p = 1
    q = Categorical(p=p)
    assert_allclose(q.p.sum(), 1.0, rtol=1e-15)
    assert_allclose(q.p, [0.2, 0.3, 0.5], rtol=1e-14)


def test_size_message_names_k():
    with pytest.raises(ValueError, match=r"^natural: .*K − 1 ≥ 1"):
        Categorical.from_natural(np.zeros((3, 0)))
