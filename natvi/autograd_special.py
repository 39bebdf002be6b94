"""Special functions that autograd differentiates, without importing ``autograd.scipy``.

Importing any module of ``autograd.scipy`` runs its package, which imports scipy.stats,
scipy.integrate and scipy.signal: half a second, five times ``import natvi``. The
families need six functions; they are wrapped here as autograd wraps them, around
scipy.special imported on first use (:mod:`natvi.lazy_modules`).
"""

import autograd.numpy as anp
from autograd.extend import defvjp, primitive
from autograd.numpy.numpy_vjps import repeat_to_match_shape

from natvi.lazy_modules import special


@primitive
def polygamma(n, x):
    """ψ⁽ⁿ⁾(x), as :func:`scipy.special.polygamma`."""
    return special.polygamma(n, x)


@primitive
def gammaln(x):
    """log |Γ(x)|, as :func:`scipy.special.gammaln`."""
    return special.gammaln(x)


@primitive
def digamma(x):
    """ψ(x), as :func:`scipy.special.digamma`."""
    return special.digamma(x)


@primitive
def expit(x):
    """1 / (1 + e⁻ˣ), as :func:`scipy.special.expit`."""
    return special.expit(x)


@primitive
def logit(p):
    """log(p / (1 − p)), as :func:`scipy.special.logit`."""
    return special.logit(p)


defvjp(polygamma, None, lambda ans, n, x: lambda g: g * polygamma(n + 1, x))
defvjp(gammaln, lambda ans, x: lambda g: g * digamma(x))
defvjp(digamma, lambda ans, x: lambda g: g * polygamma(1, x))
defvjp(expit, lambda ans, x: lambda g: g * ans * (1 - ans))
defvjp(logit, lambda ans, x: lambda g: g / (x * (1 - x)))


@primitive
def logsumexp(x, axis=None, keepdims=False):
    """log Σ exp(x) over ``axis``, as :func:`scipy.special.logsumexp`."""
    return special.logsumexp(x, axis=axis, keepdims=keepdims)


def _logsumexp_vjp(ans, x, axis=None, keepdims=False):
    shape, dtype = anp.shape(x), anp.result_type(x)

    def vjp(g):
        g_full, _ = repeat_to_match_shape(g, shape, dtype, axis, keepdims)
        ans_full, _ = repeat_to_match_shape(ans, shape, dtype, axis, keepdims)
        return g_full * anp.exp(x - ans_full)

    return vjp


defvjp(logsumexp, _logsumexp_vjp)
