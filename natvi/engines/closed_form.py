"""The closed-form engine: an expected log joint written in expected sufficient statistics.

When E_q[log p(x, z)] is a function f(μ) of each factor's mean parameters μ =
E_q[T(z)] — linear for a conjugate factor, multilinear for semi-conjugate ones —
the ELBO is exact and its natural gradient is ∇_μ f + ∇_μ H, computed here by
differentiating f. For a conjugate factor ∇_μ f = η_prior + expected statistics
of the data, so a natural-gradient step of 1 lands on the coordinate-ascent update.
"""

import autograd
import numpy as np

from natvi.engines.base import Engine


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


class ClosedForm(Engine):
    """E_q[log p(x, z)] = ``fn(means)`` exactly (see :func:`expected_log_joint`).

    Parameters
    ----------
    fn : callable
        ``fn(means)`` with ``means`` = {factor key: mean parameters}, written with
        ``autograd.numpy``; returns a scalar.
    check : callable, optional
        ``check(posterior)``: raises ValueError for factors ``fn`` is not written for.
    pass_families : bool
        Call ``fn(means, families)`` with {factor key: family class}, for an expectation
        written for more than one family of a factor (it reads their mean parameters
        through the family's static methods).
    """

    deterministic = True

    def __init__(self, fn, check=None, pass_families=False):
        self.fn, self.check, self.pass_families = fn, check, pass_families

    def expected_log_joint(self, posterior, rng=None):
        if self.check is not None:
            self.check(posterior)
        fn = self.fn
        if self.pass_families:
            families = {key: type(q) for key, q in posterior.items()}

            def fn(means):
                return self.fn(means, families)
        return expected_log_joint(fn, posterior)
