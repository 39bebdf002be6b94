"""The closed-form engine: an expected log joint written in expected sufficient statistics.

When E_q[log p(x, z)] is a function f(μ) of each factor's mean parameters μ =
E_q[T(z)] — linear for a conjugate factor, multilinear for semi-conjugate ones —
the ELBO is exact and its natural gradient is ∇_μ f + ∇_μ H, computed here by
differentiating f. For a conjugate factor ∇_μ f = η_prior + expected statistics
of the data, so a natural-gradient step of 1 lands on the coordinate-ascent update.
"""

import autograd
import numpy as np


def expected_log_joint(fn, posterior):
    """E_q[log p(x, z)] = ``fn(means)`` and its gradient in each factor's mean parameters.

    Parameters
    ----------
    fn : callable
        ``fn(means)`` with ``means`` = {factor key: mean parameters}, written with
        ``autograd.numpy``; returns a scalar.
    posterior : dict
        {factor key: family instance}.

    Returns
    -------
    value : float
    grads : dict
        {factor key: ∇_μ fn, shaped like that factor's ``mean_params``}.
    """
    means = {key: np.asarray(q.mean_params) for key, q in posterior.items()}
    value, grads = autograd.value_and_grad(fn)(means)
    return float(value), {key: np.asarray(grads[key], dtype=float) for key in posterior}
