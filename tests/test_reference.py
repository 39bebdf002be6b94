"""natvi.reference, the independent check of the engine, against 30-digit quadrature
(mpmath) of the same Gaussian expectations and of their derivatives."""

import mpmath as mp
import numpy as np
import pytest

from natvi import reference

mp.mp.dps = 30


def _exact(kind, y, a, sd):
    """E[f], E[f′] and ½E[f″] for f = log p(y | η), η ~ N(a, sd²), by mpmath."""
    s = 2 * y - 1
    if kind == "logistic":
        def f(x):
            return -mp.log1p(mp.exp(-s * x))

        def f1(x):
            return s / (1 + mp.exp(s * x))

        def f2(x):
            return -1 / ((1 + mp.exp(x)) * (1 + mp.exp(-x)))
    else:
        def f(x):
            return mp.log(mp.ncdf(s * x))

        def f1(x):
            return s * mp.npdf(s * x) / mp.ncdf(s * x)

        def f2(x):
            m = mp.npdf(s * x) / mp.ncdf(s * x)
            return -m * (s * x + m)
    cuts = [a - 40 * sd, a - 8 * sd, a, a + 8 * sd, a + 40 * sd]
    cuts = sorted(set(cuts + ([0.0] if cuts[0] < 0 < cuts[-1] else [])))
    return [float(mp.quad(lambda x, g=g: g(x) * mp.npdf(x, a, sd), cuts))
            for g in (f, f1, lambda x: f2(x) / 2)]


def _check(kind, sd, ratio, y):
    a = ratio * sd + (2.0 if sd < 1 else 0.0)
    got = [v[0] for v in getattr(reference, kind)(np.array([y]), np.array([a]),
                                                   np.array([sd * sd]))]
    want = _exact(kind, y, a, sd)
    scale = max(1.0, abs(want[0]))
    return [abs(g - w) / scale for g, w in zip(got, want, strict=True)]


# every branch: 64 and 200 Gauss–Hermite nodes, the Fourier split, the bend in the far tail
LOGISTIC = [(0.05, 0.0), (0.5, 1.0), (1.5, -2.0), (2.0, 0.0), (3.0, 1.0), (10.0, 3.0),
            (100.0, -5.0), (1e4, 0.3), (2.0, 20.0), (3.0, 40.0)]


@pytest.mark.parametrize("sd, ratio", LOGISTIC)
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_logistic_reference_to_2e_13(sd, ratio, y):
    """Value and derivatives to 2e-13 relative to max(1, |value|), predictor sd from 0.05 to
    1e4 and locations up to 40 sd from the bend."""
    assert max(_check("logistic", sd, ratio, y)) < 2e-13


@pytest.mark.parametrize("sd, ratio", [(0.5, 1.0), (1.99, -5.0), (3.0, 0.0), (10.0, 3.0)])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_probit_reference(sd, ratio, y):
    """Value to 1e-15 and derivatives to 1e-11 relative to max(1, |value|) (the tail of the
    Mills ratio costs scipy's quad a few digits), Gauss–Hermite and adaptive branches."""
    errors = _check("probit", sd, ratio, y)
    assert errors[0] < 1e-15 and max(errors[1:]) < 1e-11


@pytest.mark.parametrize("w", [0.0, 1e-8, 1e-3, 0.3, 1 / np.pi * (1 - 1e-12),
                               1 / np.pi * (1 + 1e-12), 1.0, 30.0])
def test_r_hat_against_mpmath(w):
    """r̂(ω) = π/(ω sinh πω) − 1/ω², by its series below πω = 1 (free of the cancellation of
    the direct form) and directly above; r̂(0) = −π²/6."""
    want = -mp.pi**2 / 6 if w == 0 else mp.pi / (w * mp.sinh(mp.pi * w)) - 1 / mp.mpf(w) ** 2
    assert reference._r_hat(np.array([w]))[0] == pytest.approx(float(want), rel=1e-14)
