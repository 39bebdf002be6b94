"""The evidence lower bound and its gradient in each factor's mean parameters."""

import numpy as np


def elbo(model, posterior, rng=None):
    """L(q) = E_q[log p(x, z)] + Σ_k H[q_k], the full bound on log p(x), constants included.

    Parameters
    ----------
    model : natvi.model.Model
        The model; its engine computes the expected log joint.
    posterior : dict
        {factor key: family instance}: a latent's name, or a tuple of names for one
        joint factor (see :mod:`natvi.factors`).
    rng : numpy.random.Generator, optional
        Randomness for Monte Carlo engines.

    Returns
    -------
    value : float
    grads : dict
        {factor key: ∇_μ L}, which is also the natural gradient F⁻¹∇_η L.
    """
    value, grads = model.expected_log_joint(posterior, rng)
    grads = dict(grads)
    for name, q in posterior.items():
        value += float(np.sum(q.entropy()))
        grads[name] = grads[name] + q.entropy_grad()
    return float(value), grads
