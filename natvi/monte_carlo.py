"""Monte Carlo expectations of a log joint, with pathwise (reparameterized) gradients.

For any log joint written with ``autograd.numpy``: draws z = m + s·ε from each
Gaussian factor, and by the reparameterization trick
∇_m E[f] = E[∇f(z)] and ∇_v E[f] = E[∇f(z)·ε] / (2s), with v = s². The chain
rule of the family then gives the gradient in its mean parameters, which is
the natural gradient.
"""

import autograd

from natvi.families import MeanFieldGaussian
from natvi.validation import check_positive_int


def expected_log_joint(log_joint, posterior, rng, n_samples=16):
    """Monte Carlo estimate of E_q[log p(x, z)] and of its gradient in mean parameters.

    Parameters
    ----------
    log_joint : callable
        ``log_joint(z)`` for one draw ``z`` = {latent name: array}, written with
        ``autograd.numpy``; returns a scalar.
    posterior : dict
        {latent name: MeanFieldGaussian}.
    rng : numpy.random.Generator
        Source of the standard-normal draws ε.
    n_samples : int
        Draws per estimate.

    Returns
    -------
    value : float
        Unbiased estimate of E_q[log p(x, z)].
    grads : dict
        {latent name: unbiased estimate of ∇_μ E_q[log p(x, z)]}.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    for name, q in posterior.items():
        if not isinstance(q, MeanFieldGaussian):
            raise ValueError(f"posterior: pathwise gradients need a Gaussian factor, got "
                             f"{type(q).__name__} for {name!r}")
    names = list(posterior)
    eps = {k: rng.standard_normal((n_samples,) + posterior[k].batch_shape) for k in names}

    def total(z_all):
        # One autograd pass over all draws: Σ_s log p(x, z_s).
        return sum(log_joint({k: z_all[k][s] for k in names}) for s in range(n_samples))

    z_all = {k: posterior[k].loc + posterior[k].scale * eps[k] for k in names}
    grad_fn = autograd.value_and_grad(total)
    value, g = grad_fn(z_all)
    grads = {}
    for k in names:
        q = posterior[k]
        grad_loc = g[k].mean(axis=0)
        grad_var = (g[k] * eps[k]).mean(axis=0) / (2 * q.scale)
        grads[k] = q.grad_mean_from_moments(grad_loc, grad_var)
    return float(value) / n_samples, grads
