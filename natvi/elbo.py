"""The evidence lower bound and its gradient in each factor's mean parameters."""


def elbo(model, posterior, rng=None):
    """L(q) = E_q[log p(x, z)] + Σ_k H[q_k], the full bound on log p(x), constants included.

    Parameters
    ----------
    model : natvi.model.Model
        The model; its engine (:mod:`natvi.engines`) computes the ELBO.
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
    value, grads, _ = model.engine.elbo(posterior, rng)
    return value, grads
