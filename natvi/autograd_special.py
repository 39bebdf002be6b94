"""Special functions that autograd differentiates, without importing ``autograd.scipy``.

Importing any module of ``autograd.scipy`` runs its package, which imports scipy.stats,
scipy.integrate and scipy.signal: half a second, a third of ``import natvi``. The
families need six functions; they are wrapped here as autograd wraps them.
"""

import autograd.numpy as anp
from autograd.extend import defvjp, primitive
from autograd.numpy.numpy_vjps import repeat_to_match_shape
from scipy import special

polygamma = primitive(special.polygamma)
gammaln = primitive(special.gammaln)
digamma = primitive(special.digamma)
expit = primitive(special.expit)
logit = primitive(special.logit)

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
