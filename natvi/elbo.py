"""The evidence lower bound and its gradient in each factor's mean parameters."""

import numpy as np


def elbo(model, posterior, rng=None):
    """L(q) = E_q[log p(x, z)] + Σ_k H[q_k], the full bound on log p(x), constants included.

    Parameters
    ----------
    model : natvi.model.Model
        The model; its engine computes the expected log joint.
    posterior : dict
        {latent name: family instance}, one mean-field factor per latent.
    rng : numpy.random.Generator, optional
        Randomness for Monte Carlo engines.

    Returns
    -------
    value : float
    grads : dict
        {latent name: ∇_μ L}, which is also the natural gradient F⁻¹∇_η L.
    """
    value, grads = model.expected_log_joint(posterior, rng)
    grads = dict(grads)
    for name, q in posterior.items():
        value += float(np.sum(q.entropy()))
        grads[name] = grads[name] + q.entropy_grad()
    return float(value), grads
