"""The engine protocol: what computes the ELBO of a model under a variational posterior.

A model holds one engine (``model.engine``) and ``natvi.fit`` asks only it:

- ``engine.deterministic``: whether the value is an exact function of q (closed forms,
  quadrature, fixed draws), so that line searches, Anderson acceleration and the
  gradient-norm stopping rule apply; Monte Carlo engines say False;
- ``engine.elbo(posterior, rng)`` → :class:`ELBO`: the value of L(q) = E_q[log p(x, z)] +
  H[q], its gradient in each factor's mean parameters (the natural gradient
  F⁻¹∇_η L = ∇_μ L) and ``deterministic``.

An engine implements ``expected_log_joint(posterior, rng)`` → (value, {factor key: ∇_μ});
:meth:`Engine.elbo` adds the factors' entropies, which every family gives in closed form.
``posterior`` is {factor key: family instance} (see :mod:`natvi.factors`); ``rng`` a
``numpy.random.Generator``, which deterministic engines ignore.

Before a fit, ``engine.for_fit(families, rng)`` gives the engine the fit runs on: itself
for most, a copy bound to base draws fixed for the whole fit for :class:`FixedDraws`, or
a Monte Carlo engine where the families cannot use fixed draws. ``engine.transforms``
says whether it maps latents through bijections for a joint factor (see
:mod:`natvi.factors`).

An engine whose data term is a sum over rows of data can take minibatches
(:class:`natvi.engines.Minibatch`): it says how many rows (``n_rows``, None for engines
that cannot), which rows are cheap to read (``row_access``: ``"strided"`` for data in
memory, ``"blocks"`` for contiguous rows of files and chunks), and gives the engine of some
rows with their data term times a factor (``on_rows(rows, scale)``, ``rows`` a slice).
"""

from typing import NamedTuple

import numpy as np


class ELBO(NamedTuple):
    """The ELBO at a posterior.

    value : float, L(q), the full bound on log p(x), constants included
    grads : dict, {factor key: ∇_μ L}, also the natural gradient F⁻¹∇_η L
    deterministic : bool, whether ``value`` is exact (else a Monte Carlo estimate)
    """

    value: float
    grads: dict
    deterministic: bool


class Engine:
    """Base of the engines: ``elbo`` from the engine's ``expected_log_joint``."""

    #: True when ``expected_log_joint`` is an exact function of q
    deterministic = False
    #: True when a joint factor may cover positive, unit-interval and simplex latents
    transforms = False
    #: the engine in words, for results and their messages
    description = "an engine of the model's own"
    #: rows of data the data term sums over, for minibatches (None: the engine takes none)
    n_rows = None

    def for_fit(self, families, rng):
        """The engine a fit with ``families`` ({factor key: family class}) and the fit's
        generator ``rng`` runs on: this one, unless an engine says otherwise."""
        return self

    def expected_log_joint(self, posterior, rng=None):
        """E_q[log p(x, z)] and {factor key: its gradient in that factor's mean parameters}."""
        raise NotImplementedError

    def elbo(self, posterior, rng=None):
        """The :class:`ELBO` at ``posterior`` (with ``rng`` for Monte Carlo engines)."""
        value, grads = self.expected_log_joint(posterior, rng)
        grads = dict(grads)
        for key, q in posterior.items():
            value += float(np.sum(q.entropy()))
            grads[key] = grads[key] + q.entropy_grad()
        return ELBO(float(value), grads, self.deterministic)
