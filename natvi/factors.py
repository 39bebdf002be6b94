"""Factors of a variational posterior: each covers one latent, or several real latents jointly.

A fit's posterior is a dict {factor key: family instance}. The key of a factor over
one latent is that latent's name; a joint factor (a ``FullRankGaussian`` over, say, an
intercept and coefficients, keeping their correlations) is keyed by the tuple of its
latents' names, and its event vector is their flattened values, concatenated in order.
"""

import autograd.numpy as anp
import numpy as np


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
    """Number of scalar values a factor covers."""
    return sum(int(np.prod(latents[name].shape)) for name in latent_names(key))


def split(latents, key, x):
    """Joint values ``x`` of shape (*lead, d) → {latent name: (*lead, *shape)}; autograd-safe."""
    out, start = {}, 0
    lead = np.shape(x)[:-1]
    for name in latent_names(key):
        shape = latents[name].shape
        n = int(np.prod(shape))
        out[name] = anp.reshape(x[..., start:start + n], lead + tuple(shape))
        start += n
    return out


def join(latents, key, values, lead=()):
    """Inverse of :func:`split`: {latent name: (*lead, *shape)} → (*lead, d)."""
    parts = [anp.reshape(values[name], tuple(lead) + (-1,)) for name in latent_names(key)]
    return anp.concatenate(parts, axis=-1)
