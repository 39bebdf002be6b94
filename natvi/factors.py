"""Factors of a variational posterior: each covers one latent, or several latents jointly.

A fit's posterior is a dict {factor key: family instance}. The key of a factor over
one latent is that latent's name; a joint factor (a ``FullRankGaussian`` over, say, an
intercept and coefficients, keeping their correlations) is keyed by the tuple of its
latents' names, and its event vector x is their unconstrained coordinates, concatenated
in order: a real latent's flattened values, and for positive, unit-interval and simplex
latents the coordinates of :mod:`natvi.bijections` (so z = forward(x), and log q(z) =
log q(x) − log |dz/dx|).
"""

import autograd.numpy as anp
import numpy as np

from natvi import bijections

#: the supports a joint family covers through a bijection
CONTINUOUS = ("real", "positive", "unit_interval", "simplex")


def covers(family, support, transforms=True):
    """Whether a factor of ``family`` can cover a latent of ``support``: its own support,
    or, for a joint family on an engine that ``transforms``, any continuous one (through
    :mod:`natvi.bijections`)."""
    return family.support == support or (transforms and family.joint
                                         and support in CONTINUOUS)


def transformed(latents, key, q):
    """Whether factor ``q`` over ``key`` maps some latent through a bijection."""
    return q.joint and any(latents[n].support != "real" for n in latent_names(key))


def to_latents(latents, key, q, z):
    """Values ``z`` of factor ``q`` (leading axes first) → {latent name: values}."""
    return split(latents, key, z) if q.joint else {key: z}


def from_latents(latents, key, q, values, lead=()):
    """Inverse of :func:`to_latents`."""
    return join(latents, key, values, lead) if q.joint else values[key]


def latent_names(key):
    """The latent names a factor key covers, as a tuple."""
    return key if isinstance(key, tuple) else (key,)


def size(latents, key):
    """Number of unconstrained coordinates of a joint factor over ``key``."""
    return sum(bijections.size(latents[name].support, latents[name].shape)
               for name in latent_names(key))


def _pieces(latents, key):
    """(name, support, shape, start, stop) of each latent in a joint factor's vector."""
    start = 0
    for name in latent_names(key):
        latent = latents[name]
        stop = start + bijections.size(latent.support, latent.shape)
        yield name, latent.support, latent.shape, start, stop
        start = stop


def split(latents, key, x):
    """Joint values ``x`` of shape (*lead, d) → {latent name: (*lead, *shape)}, each on its
    support; autograd-safe."""
    return {name: bijections.forward(support, x[..., start:stop], shape)
            for name, support, shape, start, stop in _pieces(latents, key)}


def join(latents, key, values, lead=()):
    """Inverse of :func:`split`: {latent name: (*lead, *shape)} → (*lead, d)."""
    parts = [anp.reshape(bijections.inverse(support, values[name], shape), tuple(lead) + (-1,))
             for name, support, shape, _, _ in _pieces(latents, key)]
    return anp.concatenate(parts, axis=-1)


def log_det_jacobian(latents, key, q, x):
    """log |dz/dx| of factor ``q``'s bijections at its values ``x`` (*lead, d): (*lead,);
    0 for a factor that maps nothing."""
    if not transformed(latents, key, q):
        return 0.0
    return sum(bijections.log_det_jacobian(support, x[..., start:stop], shape)
               for name, support, shape, start, stop in _pieces(latents, key))


def log_prob(latents, key, q, values, lead):
    """log q(z) of factor ``q`` at latent values {name: (*lead, *shape)}: (*lead,) summed
    over the factor's events."""
    x = from_latents(latents, key, q, values, lead)
    lp = q.log_prob(x)
    lp = np.reshape(lp, tuple(lead) + (-1,)).sum(axis=-1)
    return lp - log_det_jacobian(latents, key, q, x)
