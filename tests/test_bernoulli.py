"""Bernoulli: what is particular to it. The identities every family satisfies are in
tests/test_family_conformance.py.

q(z | η) = p^z (1 − p)^(1−z), z ∈ {0, 1}, T(z) = z, η = logit p, μ = p,
A(η) = log(1 + e^η), F = p(1 − p).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from natvi.families.bernoulli import Bernoulli


def test_fisher_keeps_precision_near_0_and_1():
    # p(1 − p) with p = σ(η), 1 − p = σ(−η): no 1 − p cancellation at η = 40, no
    # overflow of A at η = ±800.
    eta = np.array([[-800.0], [-40.0], [40.0], [800.0]])
    q = Bernoulli.from_natural(eta)
    assert_allclose(q.fisher()[1:3, 0, 0], np.exp(-40.0) / (1 + np.exp(-40.0)) ** 2, rtol=1e-14)
    inner = Bernoulli.from_natural(eta[1:3])
    assert_allclose(inner.fisher_solve(np.ones((2, 1)))[:, 0], 1 / q.fisher()[1:3, 0, 0],
                    rtol=1e-14)
    assert_allclose(q.log_partition(), [0.0, np.log1p(np.exp(-40.0)), 40 + np.exp(-40.0), 800],
                    rtol=1e-14, atol=1e-300)
    assert_allclose(q.var()[1:3], np.exp(-40.0), rtol=1e-12)
    # entropy ≈ p(1 − log p) for small p; log_prob of the unlikely value is −|η|
    h = q.entropy()
    assert np.all(np.isfinite(h)) and np.all(h >= 0)
    assert_allclose(h[1:3], np.exp(-40.0) * 41, rtol=1e-12)
    assert_allclose(q.log_prob(np.array([1.0, 1.0, 0.0, 0.0])), [-800, -40, -40, -800],
                    rtol=1e-12)
    assert np.all(np.isfinite(q.kl(Bernoulli.from_natural(-eta))))
    # p itself at 1e-300 builds and comes back
    assert_allclose(Bernoulli(p=1e-300).p, 1e-300, rtol=1e-13)


def test_log_prob_off_support_and_sufficient_statistics_checks():
    q = Bernoulli(p=[0.3, 0.6])
    assert_allclose(q.log_prob([[0.5, 2.0], [1.0, -1.0]]),
                    [[-np.inf, -np.inf], [np.log(0.3), -np.inf]])
    assert_allclose(q.log_base_measure([0.0, 1.0, 0.5]), [0.0, 0.0, -np.inf])
    # booleans are valid draws
    assert_allclose(q.log_prob(np.array([True, False])), [np.log(0.3), np.log(0.4)], rtol=1e-14)
    assert_allclose(Bernoulli.sufficient_statistics(np.array([True, False])), [[1.0], [0.0]])
    for z in ([0.0, 0.5], [2.0], [np.nan]):
        with pytest.raises(ValueError, match="^z:"):
            Bernoulli.sufficient_statistics(np.array(z))
