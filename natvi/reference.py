"""An independent reference for the ELBO of a generalized linear model: slow, exact, and
sharing no code with the engine.

The engine (:mod:`natvi.quadrature`, :mod:`natvi.likelihoods`) picks a rule per row: a
series for narrow predictors, Gauss–Hermite with as many nodes as the width needs, or a
split at the bend of the log-likelihood for wide ones. This module computes the same
expectations another way, so that the two can check each other (the tests and
``examples/benchmark.py`` do, at every iterate of a fit):

- logistic, sd < 2 or |a| ≥ 8 sd (the bend in the far tail): Gauss–Hermite in the
  standardized predictor, 64 nodes below sd 0.8, else 200;
- logistic, otherwise: E[min(η, 0)] in closed form plus E[r(η)], r(x) = −log(1 + e^−|x|), in
  Fourier space: r̂(ω) = π/(ω sinh πω) − 1/ω², so E[r(η)] = (1/π) ∫₀^∞ r̂(ω) cos(aω)
  e^(−bω²/2) dω, integrated by 200-node Gauss–Hermite in ω√b (r̂ is analytic for
  |Im ω| < 1, so the integrand is smooth on the scale √b ≥ 2);
- probit, sd ≤ 2: 200-node Gauss–Hermite; wider: adaptive quadrature (scipy's ``quad``)
  split where log Φ bends;
- Poisson and Gaussian: closed forms.

Each is accurate to about 1e-15 per row, relative to max(1, |value|) (checked against
mpmath in the tests). Derivatives in the predictor's mean a and variance b come from
Bonnet's and Stein's identities, ∂/∂a E[f] = E[f′] and ∂/∂b E[f] = ½ E[f″] = E[f′(η)(η −
a)] / (2b) (the last form: f″ of log Φ cancels in the far left tail).
"""

import functools

import numpy as np
from scipy import integrate, special

_NODES = 200
_LOG_2PI = np.log(2 * np.pi)


@functools.cache
def _gauss_hermite(n=_NODES):
    t, w = np.polynomial.hermite_e.hermegauss(n)
    return t, w / w.sum()


def _r_hat(omega):
    """r̂(ω) = π/(ω sinh πω) − 1/ω² = π²(x − sinh x)/(x² sinh x) with x = πω; r̂(0) = −π²/6.
    Near 0 the difference is summed as a series, free of cancellation."""
    x = np.pi * np.abs(np.asarray(omega, dtype=float))
    out = np.empty_like(x)
    small = x < 1.0
    xs = x[small]
    # x − sinh x = −Σₖ x^(2k+1)/(2k+1)!, k ≥ 1: 12 terms reach 1e-22 at x = 1
    term, series = xs**3 / 6, np.zeros_like(xs)
    for k in range(1, 13):
        series += term
        term = term * xs * xs / ((2 * k + 2) * (2 * k + 3))
    sinh_small = np.sinh(xs)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(xs > 0, series / np.where(xs > 0, xs**2 * sinh_small, 1.0), 0.0)
    out[small] = np.where(xs > 0, -np.pi**2 * ratio, -np.pi**2 / 6)
    xl = x[~small]
    with np.errstate(over="ignore"):
        out[~small] = np.pi**2 * (xl - np.sinh(xl)) / (xl**2 * np.sinh(xl))
    return out


def logistic(y, a, b):
    """Per row: E[log σ(sη)], s = 2y − 1, η ~ N(a, b), and its derivatives in a and b.

    Parameters
    ----------
    y : ndarray (N,)
        Labels in {0, 1}.
    a, b : ndarray (N,)
        Mean and variance (> 0) of each predictor.

    Returns
    -------
    value, d_a, d_b : ndarray (N,)
    """
    y, a, b = (np.asarray(v, dtype=float) for v in (y, a, b))
    s = 2 * y - 1
    a = s * a
    sd = np.sqrt(b)
    value, d_a, d_b = (np.empty_like(a) for _ in range(3))
    near = (sd < 2.0) | (np.abs(a) >= 8 * sd)  # the Fourier integrand oscillates there
    for rows, n in ((near & (sd < 0.8), 64), (near & (sd >= 0.8), _NODES)):
        t, w = _gauss_hermite(n)  # 64 nodes: exact to rounding up to sd 1.2
        x = a[rows, None] + sd[rows, None] * t
        value[rows] = special.log_expit(x) @ w
        d_a[rows] = special.expit(-x) @ w
        d_b[rows] = -0.5 * (special.expit(x) * special.expit(-x)) @ w
    t, w = _gauss_hermite()
    far = ~near
    af, sf = a[far], sd[far]
    u = af / sf
    pdf = np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)
    cdf = special.ndtr(-u)
    omega = t / sf[:, None]
    r_hat = _r_hat(omega)
    cos, sin = np.cos(af[:, None] * omega), np.sin(af[:, None] * omega)
    scale = 1.0 / (sf * np.sqrt(2 * np.pi))
    value[far] = af * cdf - sf * pdf + scale * ((r_hat * cos) @ w)
    d_a[far] = cdf - scale * ((r_hat * omega * sin) @ w)
    d_b[far] = -pdf / (2 * sf) - 0.5 * scale * ((r_hat * omega**2 * cos) @ w)
    return value, s * d_a, d_b


def _mills(x):
    """φ(x)/Φ(x), finite for any x: √(2/π) / erfcx(−x/√2), whose Gaussian factors cancel
    exactly."""
    with np.errstate(over="ignore"):
        return np.sqrt(2 / np.pi) / special.erfcx(-x / np.sqrt(2))


def probit(y, a, b):
    """Per row: E[log Φ(sη)], s = 2y − 1, η ~ N(a, b), and its derivatives in a and b
    (arguments and returns as :func:`logistic`)."""
    y, a, b = (np.asarray(v, dtype=float) for v in (y, a, b))
    s = 2 * y - 1
    a = s * a
    sd = np.sqrt(b)
    value, d_a, d_b = (np.empty_like(a) for _ in range(3))
    t, w = _gauss_hermite()
    near = sd <= 2.0
    x = a[near, None] + sd[near, None] * t
    m = _mills(x)
    value[near] = special.log_ndtr(x) @ w
    d_a[near] = m @ w
    d_b[near] = (m @ (w * t)) / (2 * sd[near])
    for i in np.flatnonzero(~near):
        ai, si = a[i], sd[i]
        parts = [special.log_ndtr, _mills,
                 lambda x, ai=ai, si=si: _mills(x) * (x - ai) / (2 * si**2)]
        value[i], d_a[i], d_b[i] = (_gaussian_integral(f, ai, si) for f in parts)
    return value, s * d_a, d_b


def _gaussian_integral(f, loc, sd):
    """E[f(η)], η ~ N(loc, sd²), by adaptive quadrature over ±40 sd, split at η = 0."""
    lo, hi = loc - 40 * sd, loc + 40 * sd
    cuts = sorted({lo, hi, min(max(0.0, lo), hi), loc})
    total = 0.0
    for left, right in zip(cuts[:-1], cuts[1:], strict=True):
        if right > left:
            total += integrate.quad(
                lambda x: f(x) * np.exp(-0.5 * ((x - loc) / sd) ** 2), left, right,
                epsabs=0.0, epsrel=1e-13, limit=400)[0]
    return total / (sd * np.sqrt(2 * np.pi))


def poisson(y, a, b):
    """Per row: E[log Poisson(y; e^η)] = ya − e^(a + b/2) − log y!, and its derivatives."""
    y, a, b = (np.asarray(v, dtype=float) for v in (y, a, b))
    rate = np.exp(a + 0.5 * b)
    return y * a - rate - special.gammaln(y + 1), y - rate, -0.5 * rate


EXPECTATIONS = {"logistic": logistic, "probit": probit, "poisson": poisson}


def elbo(model, mean, cov, rows=8192):
    """The ELBO of q = N(mean, cov) over a GLM's intercept and coefficients, and its
    gradient in the mean and the covariance.

    Parameters
    ----------
    model : LogisticRegression, ProbitRegression or PoissonRegression
        Its data (``X``, ``y``, ``offset``), prior scales and whether it has an intercept.
    mean : ndarray (k,)
        Mean of (intercept, coefficients), or of the coefficients without an intercept.
    cov : ndarray (k,) or (k, k)
        Variances (a mean-field q) or the covariance (a full-rank q).
    rows : int
        Rows of X taken at a time.

    Returns
    -------
    value : float
    d_mean : ndarray (k,)
    d_cov : ndarray, shaped as ``cov``
    """
    expectation = EXPECTATIONS[model.likelihood.name]
    mean = np.asarray(mean, dtype=float)
    cov = np.asarray(cov, dtype=float)
    full = cov.ndim == 2
    names = [n for n in ("intercept", "coef") if n in model.latents]
    prior_var = np.concatenate([np.ravel(model.prior_scales[n]) ** 2 for n in names])
    value, d_mean = 0.0, np.zeros_like(mean)
    d_cov = np.zeros_like(cov)
    for start in range(0, model.X.shape[0], rows):
        sl = slice(start, start + rows)
        x = np.asarray(model.X[sl], dtype=float)
        z = np.column_stack([np.ones(len(x)), x]) if "intercept" in names else x
        loc = z @ mean + model.offset[sl]
        var = np.einsum("ij,ij->i", z @ cov, z) if full else (z * z) @ cov
        v, g_a, g_b = expectation(model.y[sl], loc, var)
        value += float(np.sum(v))
        d_mean += z.T @ g_a
        d_cov += z.T @ (g_b[:, None] * z) if full else g_b @ (z * z)
    variances = np.diagonal(cov) if full else cov
    value += float(np.sum(-0.5 * (_LOG_2PI + np.log(prior_var))
                          - (mean**2 + variances) / (2 * prior_var)))
    d_mean -= mean / prior_var
    if full:
        sign, log_det = np.linalg.slogdet(cov)
        value += 0.5 * (len(mean) * (_LOG_2PI + 1) + log_det)
        d_cov += 0.5 * np.linalg.inv(cov) - np.diag(0.5 / prior_var)
    else:
        value += float(np.sum(0.5 * (_LOG_2PI + 1 + np.log(cov))))
        d_cov += 0.5 / cov - 0.5 / prior_var
    return value, d_mean, d_cov
