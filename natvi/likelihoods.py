"""Observation models of generalized linear models, as functions of the linear predictor.

Each likelihood gives log p(y | η) and its derivative in η, vectorized and
overflow-safe, so the GLM engine and the pointwise log-likelihood share them. Where
E[log p(y | η)] under η ~ N(a, b) has a closed form (Gaussian, Poisson), ``expected``
gives it with its derivatives in a and b; the others use Gauss–Hermite quadrature.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from natvi.lazy_modules import special

_LOG_2PI = np.log(2 * np.pi)


class Likelihood(NamedTuple):
    """log p(y | η) of a GLM, with ``grad`` = ∂/∂η log p(y | η).

    ``ggn(y, η)`` is the generalized Gauss–Newton (Fisher) curvature −E_y[−∂²log p/∂η²]
    at η, ≤ 0: the expected Hessian for a canonical link. ``expected(y, a, b)``, when not
    None, returns Σᵢ E[log p(yᵢ | ηᵢ)] for ηᵢ ~ N(aᵢ, bᵢ) and its derivatives in a and in
    b, each of shape (N,). ``both(y, η)``, when not None, returns (log p, ∂/∂η log p) at
    once, sharing the expensive elementwise functions. ``wide(y, a, b)``, like
    ``expected`` but per row, serves predictors with sd > 1, where Gauss–Hermite nodes
    land too far apart to see the likelihood's bend; ``narrow(y, a, b)``, also per row,
    serves predictors of variance at most :data:`natvi.quadrature.NARROW_VAR`, where a
    short series in b gives the value and ∂/∂a to rounding (∂/∂b, the derivative of the
    truncated series, to 3e-12), cheaper than any quadrature rule.
    """

    name: str
    log_prob: Callable
    grad: Callable
    ggn: Callable | None = None
    expected: Callable | None = None
    both: Callable | None = None
    wide: Callable | None = None
    narrow: Callable | None = None
    nodes: tuple = ()


def _logistic_log_prob(y, eta):
    # log σ(sη) = −log(1 + e^(−sη)), s = 2y − 1: y·η − log(1 + e^η) rounds to 0.0 for y = 1
    # and η ≳ 37 (the two terms cancel), where the true value is −e^(−η); a log-likelihood
    # of exactly 0 in every draw made ArviZ 0.x's PSIS-LOO divide by zero.
    return -np.logaddexp(0.0, -(2 * y - 1) * eta)


def _logistic_grad(y, eta):
    return y - special.expit(eta)


def _exp_sigmoid(eta):
    """(e, 1/(1 + e), σ(η)) from one exp, e = exp(−|η|): log(1 + e^η) is then
    max(η, 0) + log1p(e) and σ(η) = 1/(1 + e) for η ≥ 0, e/(1 + e) otherwise. Measured
    1.3× faster than logaddexp and expit separately, in the quadrature's inner loop."""
    e = np.exp(-np.abs(eta))
    inv = 1.0 / (1.0 + e)
    return e, inv, np.where(eta >= 0, inv, e * inv)


def _logistic_both(y, eta):
    # y·η − max(η, 0) before − log1p(e): a saturated row keeps its tiny log-likelihood
    e, _, sigma = _exp_sigmoid(eta)
    return y * eta - np.maximum(eta, 0.0) - np.log1p(e), y - sigma


def _logistic_ggn(y, eta):
    return -special.expit(eta) * special.expit(-eta)


def _half_line_rule(panels=7, width=5.0, nodes=16):
    """Composite Gauss–Legendre nodes and weights on [0, panels·width]."""
    t, w = np.polynomial.legendre.leggauss(nodes)
    left = width * np.arange(panels)[:, None]
    return (left + width * (t + 1) / 2).ravel(), np.tile(w * width / 2, panels)


# The remainder r(x) = log σ(x) − min(x, 0) = −log(1 + e^−|x|) is even, below e^−35 beyond
# |x| = 35 (what lies there adds less than 3e-16), and on [0, 35] analytic up to a distance π
# from the axis: 16-node Gauss–Legendre panels of width 5 integrate it against any Gaussian
# density of sd ≥ 1 to rounding. Columns: the weights times r(x), x·r(x) and x²·r(x).
_WIDE_X, _WIDE_W = _half_line_rule()
_WIDE_R = -np.log1p(np.exp(-_WIDE_X)) * _WIDE_W
_WIDE_MOMENTS = tuple(np.ascontiguousarray(m) for m in (_WIDE_R, _WIDE_X * _WIDE_R,
                                                         _WIDE_X**2 * _WIDE_R))
#: rows of densities formed at a time: a (rows × 112) block stays in a core's L2 cache
#: (1.7× faster than the whole block at once). Three matrix-vector products, not one
#: product with a (112 × 3) matrix: OpenBLAS's threaded path for skinny products was 25×
#: slower here.
_WIDE_ROWS = 256


#: erfc without SciPy, whose special functions take 0.17 s to import (a mean-field logistic
#: fit loads none of them); 0.1 µs a row, a tenth of the wide rule's own cost
_erfc = np.vectorize(math.erfc, otypes=[float])


def _wide_moments(centres, scales):
    """Σⱼ wⱼ r(xⱼ) xⱼᵏ N(xⱼ; c, s²) for k = 0, 1, 2, per row of ``centres`` c, ``scales`` s."""
    out = np.empty((3, len(centres)))
    for start in range(0, len(centres), _WIDE_ROWS):
        rows = slice(start, start + _WIDE_ROWS)
        inv = 1.0 / scales[rows]
        dens = (_WIDE_X - centres[rows, None]) * inv[:, None]
        np.multiply(dens, dens, out=dens)
        dens *= -0.5
        np.exp(dens, out=dens)
        for k, column in enumerate(_WIDE_MOMENTS):
            out[k, rows] = (dens @ column) * inv
    return out / np.sqrt(2 * np.pi)


def _logistic_wide(y, a, b):
    # log p(y | η) = log σ(sη) with s = 2y − 1; E[log σ(η)] for η ~ N(a, b) splits into
    # E[min(η, 0)] = aΦ(−a/σ) − σφ(a/σ) in closed form (exact however wide) and E[r(η)] =
    # ∫₀^∞ r(x) (N(x; a, b) + N(x; −a, b)) dx by the rule above. The derivatives of the
    # density, N·(x − c)/b and N·((x − c)² − b)/(2b²), are sums of the rule's moments of
    # x, so the densities at the nodes (rows centred at a and at −a) are formed once.
    # Per row: (value, ∂/∂a, ∂/∂b), each of shape (N,).
    sign = 2 * y - 1
    a = sign * a
    sd = np.sqrt(b)
    u = a / sd
    pdf = np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)
    cdf = 0.5 * _erfc(u / np.sqrt(2))  # Φ(−u)
    c = np.concatenate([a, -a])
    bb = np.concatenate([b, b])
    m0, m1, m2 = _wide_moments(c, np.concatenate([sd, sd]))
    first = (m1 - c * m0) / bb  # Σ r N (x − c) / b
    second = (m2 - 2 * c * m1 + c * c * m0) / bb  # Σ r N (x − c)² / b
    n = len(a)
    value = a * cdf - sd * pdf + m0[:n] + m0[n:]
    g_a = cdf + first[:n] - first[n:]
    g_b = -pdf / (2 * sd) + (second[:n] + second[n:] - m0[:n] - m0[n:]) / (2 * b)
    return value, sign * g_a, g_b


# E[f(a + √b ε)] = Σₖ bᵏ f⁽²ᵏ⁾(a) / (2ᵏ k!) for ε ~ N(0, 1). For f = log σ(±η) the
# derivatives are polynomials in s = σ(1 − σ) and u = 1 − 2σ: σ⁽²ᵏ⁻¹⁾ = s Aₖ(s) and
# σ⁽²ᵏ⁾ = s u Bₖ(s). Five terms leave a truncation error below 3e-15 per row (relative to
# max(1, |value|)) for b ≤ 1e-2; tested against 120-node Gauss–Hermite.
_SERIES_A = ((1.0,), (1.0, -6.0), (1.0, -30.0, 120.0), (1.0, -126.0, 1680.0, -5040.0),
             (1.0, -510.0, 17640.0, -151200.0, 362880.0))
# Bₖ = d/ds (s Aₖ(s)), since σ⁽²ᵏ⁾ = d/da (s Aₖ) and ds/da = s u
_SERIES_B = tuple(tuple((j + 1) * c for j, c in enumerate(a)) for a in _SERIES_A)
_SERIES_FACT = (2.0, 8.0, 48.0, 384.0, 3840.0)  # 2ᵏ k!


# The value and the two derivatives need Σₖ bᵏ⁻¹ Aₖ(s), Σₖ bᵏ⁻¹ Bₖ(s) and Σₖ k bᵏ⁻¹ Aₖ(s)
# (each over 2ᵏ k!, k from 1): three polynomials over the same 15 monomials sⁱ bʲ, i ≤ j ≤ 4.
# One (3 × 15) matrix product evaluates all three, 2.5× faster than Horner's rule on each.
_SERIES_MONOMIALS = tuple((i, j) for j in range(5) for i in range(j + 1))
_SERIES_MATRIX = np.array([(_SERIES_A[j][i] / _SERIES_FACT[j], _SERIES_B[j][i] / _SERIES_FACT[j],
                            (j + 1) * _SERIES_A[j][i] / _SERIES_FACT[j])
                           for i, j in _SERIES_MONOMIALS]).T


def _powers(x):
    """[1, x, x², x³, x⁴]."""
    x2 = x * x
    return [1.0, x, x2, x2 * x, x2 * x2]


def _logistic_narrow(y, a, b):
    # Per row: (value, ∂/∂a, ∂/∂b) of the five-term series; the derivatives are those of
    # the truncated series itself, so the objective and its gradient stay consistent.
    e, inv, sigma = _exp_sigmoid(a)
    s = e * inv * inv  # σ(1 − σ) without cancellation
    s_pow, b_pow = _powers(s), _powers(b)
    monomials = np.empty((len(_SERIES_MONOMIALS), *np.broadcast_shapes(np.shape(s), np.shape(b))))
    for row, (i, j) in zip(monomials, _SERIES_MONOMIALS, strict=True):
        np.multiply(s_pow[i], b_pow[j], out=row)
    sum_a, sum_b, sum_ka = np.tensordot(_SERIES_MATRIX, monomials, axes=1)
    value = y * a - np.maximum(a, 0.0) - np.log1p(e) - s * b * sum_a
    return value, y - sigma - s * (1.0 - 2.0 * sigma) * b * sum_b, -s * sum_ka


logistic = Likelihood("logistic", _logistic_log_prob, _logistic_grad, _logistic_ggn,
                      both=_logistic_both, wide=_logistic_wide, narrow=_logistic_narrow,
                      nodes=((0.25, 8), (0.4, 12), (0.55, 16), (0.8, 24), (0.95, 32), (1.0, 48)))


def _probit_log_prob(y, eta):
    # log Φ(±η) with log_ndtr: accurate far into the tails, where log(Φ) would give −inf.
    return special.log_ndtr((2 * y - 1) * eta)


def _mills(x):
    """φ(x)/Φ(x), the inverse Mills ratio, to rounding for any x: with Φ(x) =
    ½ erfcx(−x/√2) e^(−x²/2) the Gaussian factors cancel exactly (exp(log φ − log Φ)
    subtracts two values of ~x²/2 and loses 1e-16·x²/2 of the result: 1e-4 at |x| = 1e6)."""
    with np.errstate(over="ignore"):  # erfcx overflows for x ≫ 0, where the ratio is 0
        return np.sqrt(2 / np.pi) / special.erfcx(-x / np.sqrt(2))


def _probit_grad(y, eta):
    sign = 2 * y - 1
    return sign * _mills(sign * eta)


def _probit_ggn(y, eta):
    # −φ(η)² / (Φ(η) Φ(−η)), in logs so that it stays finite in the tails
    return -np.exp(-eta * eta - _LOG_2PI - special.log_ndtr(eta) - special.log_ndtr(-eta))


def _bend_panels(bend, width, reach=10.0, fine=32, graded=44):
    """Per row, composite-quadrature panels in the standardized predictor t over [−reach,
    reach], fine around a ``bend`` of the log-likelihood at t = bend (of ``width`` in t):
    ``fine`` panels over bend ± 40·width, then on each side panels doubling in width away
    from it up to a width of 1. Returns (left ends, widths), each (rows, panels), empty
    panels (width 0) last and columns empty in every row dropped."""
    span = 40.0 * width[:, None]
    offsets = span + np.cumsum(np.minimum(span * 2.0 ** np.arange(graded), 1.0), axis=1)
    edges = np.concatenate([bend[:, None] + span * np.linspace(-1.0, 1.0, fine + 1),
                            bend[:, None] - offsets, bend[:, None] + offsets], axis=1)
    edges = np.sort(np.clip(edges, -reach, reach), axis=1)
    widths = np.diff(edges, axis=1)
    order = np.argsort(widths == 0, axis=1, kind="stable")
    used = int(np.max(np.sum(widths > 0, axis=1), initial=1))
    return (np.take_along_axis(edges[:, :-1], order, axis=1)[:, :used],
            np.take_along_axis(widths, order, axis=1)[:, :used])


_GL_T, _GL_W = np.polynomial.legendre.leggauss(16)


def _probit_wide(y, a, b):
    # log Φ bends at η = 0, over a width of ~1, from −η²/2 to 0: Gauss–Hermite nodes ~sd
    # apart miss it (128 nodes lose 4e-7 per row at sd 5). Composite 16-node Gauss–Legendre
    # in t = (η − a)/sd, panels graded towards the bend (_bend_panels), integrates
    # log Φ(a + sd t) φ(t) to ~1e-15 relative for any sd ≥ 2, and its derivatives by
    # Bonnet's and Stein's identities on the same nodes: ∂/∂a = E[f′], ∂/∂b = E[f′ t]/(2 sd).
    # Per row: (value, ∂/∂a, ∂/∂b), each of shape (N,).
    sign = 2 * y - 1
    a = sign * a
    sd = np.sqrt(b)
    left, widths = _bend_panels(-a / sd, 1.0 / sd)
    half = 0.5 * widths  # (rows, panels)
    t = (left + half)[:, :, None] + half[:, :, None] * _GL_T  # (rows, panels, 16)
    weight = half[:, :, None] * _GL_W * np.exp(-0.5 * t * t - 0.5 * _LOG_2PI)
    x = a[:, None, None] + sd[:, None, None] * t
    log_cdf = special.log_ndtr(x)
    mills = _mills(x)
    value = np.sum(weight * log_cdf, axis=(1, 2))
    g_a = np.sum(weight * mills, axis=(1, 2))
    g_b = np.sum(weight * mills * t, axis=(1, 2)) / (2 * sd)
    return value, sign * g_a, g_b


probit = Likelihood("probit", _probit_log_prob, _probit_grad, _probit_ggn, wide=_probit_wide,
                    nodes=((0.2, 8), (0.35, 12), (0.5, 16), (0.7, 24), (0.85, 32), (1.1, 48),
                           (1.35, 64), (1.7, 96), (2.0, 128)))


def _poisson_log_prob(y, eta):
    with np.errstate(over="ignore"):  # e^η = inf gives log p = −inf, reported by the fit
        return y * eta - np.exp(eta) - special.gammaln(y + 1)


def _poisson_grad(y, eta):
    with np.errstate(over="ignore"):
        return y - np.exp(eta)


def _poisson_expected(y, a, b):
    # E[e^η] = e^{a + b/2} under η ~ N(a, b)
    with np.errstate(over="ignore"):
        rate = np.exp(a + 0.5 * b)
    value = float(np.sum(y * a - rate - special.gammaln(y + 1)))
    return value, y - rate, -0.5 * rate


def _poisson_ggn(y, eta):
    with np.errstate(over="ignore"):
        return -np.exp(eta)


poisson = Likelihood("poisson", _poisson_log_prob, _poisson_grad, _poisson_ggn,
                     _poisson_expected)


def gaussian(noise_scale):
    """The Gaussian likelihood N(y; η, σ²) with known noise standard deviation σ."""
    s2 = float(noise_scale) ** 2

    def log_prob(y, eta):
        return -0.5 * (_LOG_2PI + np.log(s2)) - (y - eta) ** 2 / (2 * s2)

    def grad(y, eta):
        return (y - eta) / s2

    def expected(y, a, b):
        # E[(y − η)²] = (y − a)² + b
        value = float(np.sum(-0.5 * (_LOG_2PI + np.log(s2)) - ((y - a) ** 2 + b) / (2 * s2)))
        return value, (y - a) / s2, np.full(np.shape(a), -0.5 / s2)

    def ggn(y, eta):
        return np.full(np.shape(eta), -1 / s2)

    return Likelihood("gaussian", log_prob, grad, ggn, expected)
