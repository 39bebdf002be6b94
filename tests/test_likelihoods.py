"""Pointwise log-likelihoods against 50-digit references (mpmath), at |η| up to 700.

log p(y | η) is what ``to_arviz`` stores per draw and observation for LOO. Written as
y·η − log(1 + e^η), the logistic one rounded to exactly 0.0 for y = 1 and η ≳ 37; a row of
zeros in every draw made ArviZ 0.x's PSIS-LOO divide by zero (elpd_loo = nan). Each value
must have the relative accuracy its formula allows: a few ulps for logistic and probit;
for Poisson, y·η − e^η − log y! is a sum whose rounding is relative to its largest term.
"""

import mpmath as mp
import numpy as np
import pytest

from natvi import likelihoods

mp.mp.dps = 50
ETAS = np.concatenate([-np.geomspace(700, 1e-3, 40), [0.0], np.geomspace(1e-3, 700, 40)])


def _reference(name, y, eta):
    x = mp.mpf(float(eta))
    if name == "logistic":
        s = 2 * y - 1
        return -mp.log1p(mp.exp(-s * x))
    if name == "probit":  # log Φ(u) = log1p(−Φ(−u)): 1 − Φ(u) is below 50 digits for u ≫ 0
        u = (2 * y - 1) * x
        return mp.log1p(-mp.ncdf(-u)) if u > 0 else mp.log(mp.ncdf(u))
    if name == "poisson":
        return y * x - mp.exp(x) - mp.loggamma(y + 1)
    return -mp.log(2 * mp.pi) / 2 - mp.log(2) - (y - x) ** 2 / 8  # gaussian, noise sd 2


# logistic: a few ulps; probit: SciPy's log_ndtr, whose right tail (log Φ(u) ≈ −Φ(−u))
# is accurate to 8e-14 relative (seen at u = 31)
@pytest.mark.parametrize("name, rtol", [("logistic", 8 * np.finfo(float).eps),
                                        ("probit", 1e-12)])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_binary_log_likelihoods_to_a_few_ulps(name, rtol, y):
    lik = getattr(likelihoods, name)
    got = lik.log_prob(np.full(ETAS.size, y), ETAS)
    want = np.array([float(_reference(name, y, e)) for e in ETAS])
    # relative to the value itself: no cancellation, so a saturated row keeps its tiny
    # log-likelihood (−e^−700 ≈ −1e-304 for logistic, not 0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
    assert np.all(got[want < 0] < 0)  # 0 only where the true value underflows


@pytest.mark.parametrize("y", [0.0, 1.0, 3.0, 1e3, 1e6])
def test_poisson_log_likelihood_to_rounding_of_its_terms(y):
    eta = ETAS[ETAS <= 700]
    got = likelihoods.poisson.log_prob(np.full(eta.size, y), eta)
    want = np.array([float(_reference("poisson", y, e)) for e in eta])
    terms = np.abs(y * eta) + np.exp(eta) + float(mp.loggamma(y + 1))
    np.testing.assert_array_less(np.abs(got - want), 8 * np.finfo(float).eps * terms)


def test_gaussian_log_likelihood():
    lik = likelihoods.gaussian(2.0)
    y = 0.5
    got = lik.log_prob(np.full(ETAS.size, y), ETAS)
    want = np.array([float(_reference("gaussian", y, e)) for e in ETAS])
    np.testing.assert_allclose(got, want, rtol=8 * np.finfo(float).eps, atol=0)
