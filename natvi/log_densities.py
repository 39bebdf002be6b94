"""Log densities for priors and likelihoods of a :class:`natvi.Model` that
``autograd.scipy.stats`` lacks, written with ``autograd.numpy`` so that autograd
differentiates them in every real argument.

Each function returns elementwise log densities (log probabilities for the counts), its
arguments broadcast against each other, and ``-inf`` outside the support as
``scipy.stats`` does. They stay finite where the textbook formulas overflow or cancel:
log(1 + r²) for a standardized residual r up to 1e300, binomial and negative-binomial
probabilities at any logit or log mean, and a Student-t or negative binomial whose degrees
of freedom or dispersion go to infinity.

Arguments are checked where they are concrete (data, constants): a non-positive scale,
degrees of freedom, mean or dispersion, a count that is negative, not a whole number or
above its number of trials, or shapes that do not broadcast raise a ValueError naming the
argument. Values that autograd is tracing (latents) are not checked: a draw that falls
outside the domain gives a non-finite log density, which the fit reports.
"""

import numpy as np
from autograd import numpy as anp
from autograd.tracer import Box, getval

from natvi.autograd_special import gammaln

_LOG_HALF_PI = 0.5 * np.log(0.5 * np.pi)
_LOG_2_OVER_PI = np.log(2.0 / np.pi)
_LOG_PI = np.log(np.pi)
#: B₂ₖ / (2k(2k − 1)), k = 1..4: the terms of Stirling's series for log Γ
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680)
#: from here on Stirling's series with the terms above is exact to rounding (its remainder
#: is below 1e-15 at x = 20); below it the log-gammas are small and cancel harmlessly
_STIRLING_FROM = 20.0


def _concrete(value):
    """``value`` as an array when it is concrete, None when autograd traces it."""
    return None if isinstance(value, Box) else np.asarray(value)


def _check_positive(value, name):
    arr = _concrete(value)
    if arr is None:
        return
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected positive real numbers, got {arr.dtype} values")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if np.any(bad):
        raise ValueError(f"{name}: expected finite positive values, got {arr[bad].flat[0]!r}")


def _check_counts(value, name):
    arr = np.asarray(getval(value))
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected non-negative whole numbers, got {arr.dtype} values")
    bad = ~(np.isfinite(arr) & (arr >= 0)) | (arr != np.round(arr))
    if np.any(bad):
        raise ValueError(f"{name}: expected non-negative whole numbers, got "
                         f"{arr[bad].flat[0]!r}")
    return arr.astype(float)


def _check_shapes(**args):
    shapes = {name: np.shape(getval(value)) for name, value in args.items()}
    try:
        np.broadcast_shapes(*shapes.values())
    except ValueError:
        shown = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"{', '.join(shapes)}: shapes do not broadcast together: "
                         f"{shown}") from None


def _log_gamma_ratio(x, a):
    """log Γ(x + a) − log Γ(x) − a log x, for x > 0 and a ≥ 0, accurate when x ≫ a: written
    as the two log-gammas it loses ~x log x · 1e-16 (1e-12 at x = 5000; SciPy's betaln
    does the same below 1e6). By Stirling's series it is (x + a − ½) log(1 + a/x) − a +
    Σₖ cₖ ((x + a)^(1−2k) − x^(1−2k))."""
    big = x >= _STIRLING_FROM
    # both branches finite at every x: anp.where passes NaN gradients through otherwise
    xb = anp.where(big, x, _STIRLING_FROM)
    xs = anp.where(big, 1.0, x)
    series = (xb + a - 0.5) * anp.log1p(a / xb) - a
    for k, c in enumerate(_STIRLING, start=1):
        series = series + c * ((xb + a) ** (1 - 2 * k) - xb ** (1 - 2 * k))
    return anp.where(big, series, gammaln(xs + a) - gammaln(xs) - a * anp.log(xs))


def _softplus(x):
    return anp.logaddexp(0.0, x)  # log(1 + eˣ), without overflow


def _log1p_square(u):
    """log(1 + u²), finite for |u| up to the largest float (u² overflows beyond 1e154):
    softplus(2 log |u|) for |u| > 1."""
    big = anp.abs(u) > 1.0
    # both branches stay finite everywhere: anp.where passes NaN gradients through otherwise
    large = anp.where(big, anp.abs(u), 2.0)
    small = anp.where(big, 0.0, u)
    return anp.where(big, _softplus(2.0 * anp.log(large)), anp.log1p(small**2))


def _on_half_line(x, log_density):
    return anp.where(x >= 0, log_density, -np.inf)


def half_normal(x, scale=1.0):
    """log of the half-normal density of scale σ: √(2/π)/σ · exp(−x²/2σ²) for x ≥ 0
    (``scipy.stats.halfnorm(scale=σ)``), −inf for x < 0.

    Parameters
    ----------
    x : array_like
        Values.
    scale : array_like
        σ > 0, the scale of the normal folded at 0.
    """
    _check_positive(scale, "scale")
    _check_shapes(x=x, scale=scale)
    z = x / scale
    return _on_half_line(x, -_LOG_HALF_PI - anp.log(scale) - 0.5 * z * z)


def half_cauchy(x, scale=1.0):
    """log of the half-Cauchy density of scale σ: 2 / (πσ(1 + (x/σ)²)) for x ≥ 0
    (``scipy.stats.halfcauchy(scale=σ)``), −inf for x < 0.

    Parameters
    ----------
    x : array_like
        Values.
    scale : array_like
        σ > 0, the median.
    """
    _check_positive(scale, "scale")
    _check_shapes(x=x, scale=scale)
    return _on_half_line(x, _LOG_2_OVER_PI - anp.log(scale) - _log1p_square(x / scale))


def _student_t(x, nu, loc, scale):
    # log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(νπ) = ratio(ν/2, ½) − ½ log 2π: the log-gammas
    # (~ν log ν each) and ½ log ν cancel in the textbook form, and here they do not
    return (_log_gamma_ratio(0.5 * nu, 0.5) - 0.5 * (np.log(2.0) + _LOG_PI) - anp.log(scale)
            - 0.5 * (nu + 1.0) * _log1p_square((x - loc) / (scale * anp.sqrt(nu))))


def student_t(x, nu, loc=0.0, scale=1.0):
    """log of the Student-t density with ν degrees of freedom, location μ and scale σ
    (``scipy.stats.t(ν, loc=μ, scale=σ)``):

        log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(νπ) − log σ − (ν+1)/2 · log(1 + ((x−μ)/σ)²/ν)

    ``autograd.scipy.stats.t`` gives the same in its bulk; this one stays finite for
    |x − μ|/σ beyond 1e154 and accurate for ν up to 1e300.

    Parameters
    ----------
    x : array_like
        Values.
    nu : array_like
        ν > 0, the degrees of freedom (finite; for ν → ∞ use the normal).
    loc : array_like
        μ, the centre.
    scale : array_like
        σ > 0.
    """
    _check_positive(nu, "nu")
    _check_positive(scale, "scale")
    _check_shapes(x=x, nu=nu, loc=loc, scale=scale)
    return _student_t(x, nu, loc, scale)


def half_t(x, nu, scale=1.0):
    """log of the half-t density: twice the Student-t density of ν degrees of freedom,
    centre 0 and scale σ, for x ≥ 0; −inf for x < 0. ν = 1 is the half-Cauchy, ν → ∞
    the half-normal.

    Parameters
    ----------
    x : array_like
        Values.
    nu : array_like
        ν > 0, the degrees of freedom.
    scale : array_like
        σ > 0.
    """
    _check_positive(nu, "nu")
    _check_positive(scale, "scale")
    _check_shapes(x=x, nu=nu, scale=scale)
    return _on_half_line(x, np.log(2.0) + _student_t(x, nu, 0.0, scale))


def _log_choose(n, k):
    """log C(n, k) of concrete counts, accurate for n ≫ k: log Γ(x + m) − log Γ(x) −
    log m! with m = min(k, n − k) and x = n − m + 1; exactly 0 for k = 0 and k = n."""
    m = np.minimum(k, n - k)
    x = n - m + 1.0
    return _log_gamma_ratio(x, m) + m * np.log(x) - gammaln(m + 1.0)


def _two_outcomes(k, n, logit):
    """k log σ(t) + (n − k) log σ(−t) = −k·softplus(−t) − (n − k)·softplus(t): each term is
    the log of a probability and never cancels, where k·t − n·softplus(t) rounds to 0 for
    k = n and t ≳ 37 (the true value is −n e⁻ᵗ) and loses all digits beyond."""
    rest = n - k
    # 0 · softplus(±t) for the empty outcome, not 0 · inf when t is ±inf
    first = anp.where(k > 0, k * _softplus(-logit), 0.0)
    second = anp.where(rest > 0, rest * _softplus(logit), 0.0)
    return -first - second


def binomial_logit(k, n, logit_p):
    """log of the binomial probability of k successes in n trials, with success
    probability p = 1/(1 + e^(−η)) given by its logit η (``scipy.stats.binom(n, p)``):

        log C(n, k) + k log p + (n − k) log(1 − p)

    computed without rounding p to 0 or 1: accurate for any η (|η| ≤ 700 tested against
    50-digit arithmetic). n = 1 is the Bernoulli likelihood of logistic regression.

    Parameters
    ----------
    k : array_like
        Successes: whole numbers 0 ≤ k ≤ n (data).
    n : array_like
        Trials: non-negative whole numbers (data).
    logit_p : array_like
        η = log(p / (1 − p)), real (typically a linear predictor).
    """
    k_arr, n_arr = _check_counts(k, "k"), _check_counts(n, "n")
    _check_shapes(k=k, n=n, logit_p=logit_p)
    k_all, n_all = np.broadcast_arrays(k_arr, n_arr)
    if np.any(k_all > n_all):
        i = tuple(int(j) for j in np.argwhere(k_all > n_all)[0])
        raise ValueError(f"k: successes must not exceed the trials n, got k = {k_all[i]:g} > "
                         f"n = {n_all[i]:g}" + (f" at index {i}" if i else ""))
    return _log_choose(n_arr, k_arr) + _two_outcomes(k_arr, n_arr, logit_p)


def _negative_binomial(y, log_mu, phi):
    # With t = log μ − log φ, p = μ/(μ + φ) = σ(t), and log C(y + φ − 1, y) = ratio(φ, y) +
    # y log φ − log y!. The rest, y log σ(t) + φ log σ(−t), is written two ways that are
    # equal: −y·softplus(−t) − φ·softplus(t) (with y log φ) for μ > φ, where each term is
    # small or ~φ·t; y log μ − (y + φ)·softplus(t) (with y log μ, the y log φ absorbed) for
    # μ ≤ φ, where it tends to the Poisson y log μ − μ and y log φ would cancel.
    log_phi = anp.log(phi)
    t = log_mu - log_phi
    head = _log_gamma_ratio(phi, y) - gammaln(y + 1.0)
    wide = y * log_phi - y * _softplus(-t) - phi * _softplus(t)
    narrow = y * log_mu - (y + phi) * _softplus(t)
    return head + anp.where(t > 0, wide, narrow)


def negative_binomial(y, mu, phi):
    """log of the negative-binomial probability of a count y with mean μ and dispersion φ,
    variance μ + μ²/φ (Stan's ``neg_binomial_2``; ``scipy.stats.nbinom(n=φ, p=φ/(φ+μ))``):

        log Γ(y + φ) − log Γ(y + 1) − log Γ(φ) + y log(μ/(μ+φ)) + φ log(φ/(μ+φ))

    accurate for φ ≫ μ, where it tends to the Poisson probability.

    Parameters
    ----------
    y : array_like
        Counts: non-negative whole numbers (data).
    mu : array_like
        μ > 0, the mean.
    phi : array_like
        φ > 0, the dispersion (smaller is more overdispersed).
    """
    y_arr = _check_counts(y, "y")
    _check_positive(mu, "mu")
    _check_positive(phi, "phi")
    _check_shapes(y=y, mu=mu, phi=phi)
    return _negative_binomial(y_arr, anp.log(mu), phi)


def negative_binomial_log_mean(y, log_mu, phi):
    """:func:`negative_binomial` with the mean given by its log η = log μ (Stan's
    ``neg_binomial_2_log``), finite for any real η: the likelihood of a negative-binomial
    regression with linear predictor η.

    Parameters
    ----------
    y : array_like
        Counts: non-negative whole numbers (data).
    log_mu : array_like
        η = log μ, real.
    phi : array_like
        φ > 0, the dispersion.
    """
    y_arr = _check_counts(y, "y")
    _check_positive(phi, "phi")
    _check_shapes(y=y, log_mu=log_mu, phi=phi)
    return _negative_binomial(y_arr, log_mu, phi)
