"""Bijections from unconstrained vectors to each continuous support, with log-Jacobians.

A joint :class:`natvi.FullRankGaussian` over latents of several supports (as PyMC's
full-rank ADVI) is a Gaussian over x, the latents' unconstrained coordinates,
concatenated; each latent is z = forward(x) on its support. The ELBO in z is then

    L = E_q[log p(data, z(x))] + E_q[log |dz/dx|] + H[q(x)],

and log q(z) = log q(x) − log |dz/dx|. The maps are those of Stan and PyMC:

- ``real``: the identity;
- ``positive``: z = exp(x), log |dz/dx| = x;
- ``unit_interval``: z = σ(x), log |dz/dx| = log σ(x) + log σ(−x);
- ``simplex`` (K components from K − 1 coordinates): Stan's stick-breaking,
  zₖ = σ(xₖ − log(K − k)) · (1 − Σ_{j<k} zⱼ) for k = 1 … K − 1 and z_K the rest, so
  x = 0 is the uniform point; log |dz/dx| = Σₖ log σ(yₖ) + log σ(−yₖ) + log(1 − Σ_{j<k} zⱼ)
  with yₖ = xₖ − log(K − k).

All are written with ``autograd.numpy`` and act on the trailing event axes, any leading
axes (draws) first.
"""

from typing import NamedTuple

import autograd.numpy as anp
import numpy as np

from natvi.autograd_special import expit, logit


class Bijection(NamedTuple):
    """Maps between a support and unconstrained coordinates.

    forward : x (*lead, n) → z (*lead, *shape), with ``shape`` given
    inverse : z (*lead, *shape) → x (*lead, n)
    log_det_jacobian : x (*lead, n), shape → (*lead,), log |dz/dx| summed over the latent
    size : shape → n, the number of unconstrained coordinates
    """

    forward: callable
    inverse: callable
    log_det_jacobian: callable
    size: callable


def _lead(x, shape):
    return np.shape(x)[:-1] + tuple(shape)


def _elementwise(forward, inverse, log_det):
    return Bijection(
        forward=lambda x, shape: forward(anp.reshape(x, _lead(x, shape))),
        inverse=lambda z, shape: anp.reshape(
            inverse(z), np.shape(z)[:np.ndim(z) - len(shape)] + (-1,)),
        log_det_jacobian=lambda x, shape: anp.sum(log_det(x), axis=-1),
        size=lambda shape: int(np.prod(shape)))


def _log_sigmoid_both(x):
    # log σ(x) + log σ(−x) = −softplus(−x) − softplus(x), without overflow
    return -anp.logaddexp(0.0, x) - anp.logaddexp(0.0, -x)


def _stick_offsets(k):
    """log(K − k) for k = 1 … K − 1: the shift that maps x = 0 to the uniform simplex."""
    return np.log(np.arange(k - 1, 0, -1, dtype=float))


def _stick_forward(x, shape):
    k = shape[-1]
    y = anp.reshape(x, _lead(x, shape[:-1] + (k - 1,))) - _stick_offsets(k)
    fractions = expit(y)
    parts, left = [], 1.0
    for j in range(k - 1):  # K is small; a loop keeps every step autograd-safe
        parts.append(fractions[..., j] * left)
        left = left - parts[-1]
    parts.append(left)
    return anp.stack(parts, axis=-1)


def _stick_inverse(z, shape):
    k = shape[-1]
    z = np.asarray(z, dtype=float)
    left = 1.0 - np.cumsum(z[..., :-1], axis=-1) + z[..., :-1]  # 1 − Σ_{j<k} zⱼ
    y = logit(np.clip(z[..., :-1] / left, 0.0, 1.0))
    x = y + _stick_offsets(k)
    return np.reshape(x, z.shape[:z.ndim - len(shape)] + (-1,))


def _stick_log_det(x, shape):
    k = shape[-1]
    lead = np.shape(x)[:-1]
    y = anp.reshape(x, lead + (-1, k - 1)) - _stick_offsets(k)
    total, log_left = 0.0, 0.0
    for j in range(k - 1):
        total = total + _log_sigmoid_both(y[..., j]) + log_left
        log_left = log_left - anp.logaddexp(0.0, y[..., j])  # + log σ(−yₖ) = log(1 − σ(yₖ))
    return anp.sum(total, axis=-1)


BIJECTIONS = {
    "real": _elementwise(lambda x: x, lambda z: z, lambda x: anp.zeros(np.shape(x))),
    "positive": _elementwise(anp.exp, anp.log, lambda x: x),
    "unit_interval": _elementwise(expit, logit, _log_sigmoid_both),
    "simplex": Bijection(_stick_forward, _stick_inverse, _stick_log_det,
                         lambda shape: int(np.prod(shape[:-1])) * (shape[-1] - 1)),
}


def size(support, shape):
    """Unconstrained coordinates of a latent of ``support`` and ``shape``."""
    return BIJECTIONS[support].size(tuple(shape))


def forward(support, x, shape):
    """z on ``support``, shape (*lead, *shape), from x (*lead, n)."""
    return BIJECTIONS[support].forward(x, tuple(shape))


def inverse(support, z, shape):
    """x (*lead, n) from z (*lead, *shape) on ``support``."""
    return BIJECTIONS[support].inverse(z, tuple(shape))


def log_det_jacobian(support, x, shape):
    """log |dz/dx| at x (*lead, n), summed over the latent: shape (*lead,)."""
    return BIJECTIONS[support].log_det_jacobian(x, tuple(shape))
