"""Special-function helpers shared by the Gamma, Beta and Dirichlet families.

log x − ψ(x), x ψ′(x) − 1 and the Stirling remainder, each computed without the
cancellation of its direct difference at large x; Newton iterations, broadcasting and
sampling in log space.
"""

import numpy as np
from numpy.polynomial import polynomial

from natvi.lazy_modules import special

_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)

# ---- special functions -------------------------------------------------------------------
# Above _SERIES_FROM the asymptotic (Bernoulli-number) series replace the direct differences,
# which lose about log10(x) digits; with the terms below they are exact to rounding there.
_SERIES_FROM = 10.0
_BERNOULLI = np.array([1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510])
_K = np.arange(1, len(_BERNOULLI) + 1)
_LOG_MINUS_DIGAMMA = np.concatenate([[0.0], _BERNOULLI / (2 * _K)])  # powers of 1/x²
_X_TRIGAMMA = np.concatenate([[0.0], _BERNOULLI])  # powers of 1/x²
_STIRLING = _BERNOULLI / (2 * _K * (2 * _K - 1))  # times 1/x, in powers of 1/x²


def _split(x):
    """``x`` clipped below and above the series threshold (each branch sees valid input)."""
    return np.minimum(x, _SERIES_FROM), np.maximum(x, _SERIES_FROM)


def _log_minus_digamma(x):
    """log x − ψ(x) (> 0, ≈ 1/(2x) for large x), for x > 0."""
    small, large = _split(np.asarray(x, dtype=float))
    w = 1 / large**2
    series = 0.5 / large + polynomial.polyval(w, _LOG_MINUS_DIGAMMA)
    return np.where(x < _SERIES_FROM, np.log(small) - special.digamma(small), series)


def _x_trigamma_minus_one(x):
    """x ψ′(x) − 1 (> 0, ≈ 1/(2x) for large x), for x > 0."""
    small, large = _split(np.asarray(x, dtype=float))
    w = 1 / large**2
    series = 0.5 / large + polynomial.polyval(w, _X_TRIGAMMA)
    return np.where(x < _SERIES_FROM, small * special.polygamma(1, small) - 1, series)


def _stirling_remainder(x):
    """log Γ(x) − (x − ½) log x + x − ½ log 2π (≈ 1/(12x) for large x), for x > 0."""
    small, large = _split(np.asarray(x, dtype=float))
    series = polynomial.polyval(1 / large**2, _STIRLING) / large
    direct = special.gammaln(small) - (small - 0.5) * np.log(small) + small - _HALF_LOG_2PI
    return np.where(x < _SERIES_FROM, direct, series)


def _entropy_core(x):
    """log Γ(x) − (x − 1) ψ(x) − ½ log x + x, bounded for large x (→ ½ log 2π + ½).

    The entropies of the Gamma, Beta and Dirichlet are sums of this term and logarithms;
    written so, the O(x log x) parts cancel analytically rather than in floating point.
    """
    return _HALF_LOG_2PI + _stirling_remainder(x) + (x - 1) * _log_minus_digamma(x)


def _log_ratio_excess(u, log_t):
    """D(t) = t − 1 − log t ≥ 0 from u = t − 1 (accurate near t = 1) and log t (accurate away).

    The log-densities are written as −α D(·) + bounded terms, which avoids the cancellation
    of O(α log α) terms in the direct forms at large shapes or concentrations.
    """
    return np.where(np.abs(u) < 0.5, u - np.log1p(u), np.expm1(log_t) - log_t)


def _shape_from_log_minus_digamma(s):
    """The x > 0 with log x − ψ(x) = s, for s > 0 (the Gamma's maximum-likelihood shape).

    Newton in log x from Minka's (2002) closed-form start, which is within 1.5%. In log x the
    left side is convex and decreasing, so after the first step the iterates approach the root
    monotonically and quadratically.
    """
    root = np.hypot(s - 3, np.sqrt(24 * s))
    with np.errstate(divide="ignore"):  # the branch not taken may divide by zero
        x = np.log(np.where(s > 3, 2 / (root + s - 3),  # the same, without cancellation
                            (3 - s + root) / (12 * s)))
    return np.exp(_newton(lambda x: (_log_minus_digamma(np.exp(x)) - s)
                          / _x_trigamma_minus_one(np.exp(x)), x))


def _newton(step_fn, x, axis=None, max_iter=100):
    """Iterate x ← x + step_fn(x) to convergence.

    Steps are capped at 1 in max-norm, per element or per slice along ``axis``. Converged
    one step after the largest step falls below 1e-8 (quadratic convergence then leaves an
    error at rounding level), or once steps stop shrinking near the root, where they are
    rounding noise of an ill-conditioned problem.
    """
    previous, polish = np.inf, False
    for _ in range(max_iter):
        with np.errstate(all="ignore"):  # a non-finite step is caught just below
            step = step_fn(x)
        if not np.all(np.isfinite(step)):
            break
        size = np.max(np.abs(step), initial=0.0)
        cap = (np.abs(step) if axis is None
               else np.max(np.abs(step), axis=axis, keepdims=True, initial=0.0))
        x = x + step / np.maximum(1.0, cap)
        if polish or (previous < 1e-5 and size > previous / 2):
            return x
        polish = size < 1e-8
        previous = size
    raise ValueError("mean_params: the Newton iteration for the natural parameters did not "
                     "converge (parameters too extreme to represent?)")


def _broadcast(x, name_x, y, name_y):
    """``x`` and ``y`` broadcast together; a mismatch names ``y``."""
    try:
        return np.broadcast_arrays(x, y)
    except ValueError:
        raise ValueError(f"{name_y}: shape {np.shape(y)} does not broadcast against "
                         f"{name_x}'s shape {np.shape(x)}") from None


def _log_standard_gamma(rng, alpha, size):
    """log G, G ~ Gamma(alpha, 1), finite even where G itself would underflow to 0.

    Uses Gamma(α) = Gamma(α + 1) · U^{1/α}: for small α most of G's range sits in U^{1/α},
    which is kept as log(U)/α instead of being exponentiated.
    """
    u = rng.random(size)
    return np.log(rng.standard_gamma(alpha + 1, size)) + np.log1p(-u) / alpha


