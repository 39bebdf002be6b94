"""The optimizer contract: a pair of pure functions, state as plain arrays.

An optimizer is ``Optimizer(init, update, coordinates, natural, name, needs)``:

- ``init(params) -> state``, a NamedTuple of arrays and factor-keyed dicts of arrays (so a
  checkpoint can store it), of a type of the optimizer's own;
- ``update(grads, state, params, **extras) -> (updates, state, info)``: ``grads`` are
  natural gradients ∇_μ L when ``natural``, else Euclidean gradients in ``coordinates``;
  ``updates`` is an *ascent* step (natvi maximizes the ELBO; the fit loop adds it);
  ``info`` is an :class:`Info`, the step's facts (step size taken, trial steps rejected);
- ``extras`` are only those named in ``needs``: ``"objective"``, a line-search oracle
  params → :class:`Evaluation`, given only on a deterministic ELBO (None otherwise);
  ``"valid"``, params → bool (inside every family's domain); ``"step"``,
  (params, grads, ρ) → params after a natural-gradient step of size ρ along the natural
  gradients ``grads``, each factor's by its family's ``natural_step`` (η + ρ∇_μ L, or for
  Gaussians a step that keeps the precision positive definite; natural coordinates only;
  None on minibatches, where the plain step is taken: measured on a 20,000-row logistic
  model in minibatches of 200, the positive-definite step's first steps inflated the
  precision and the mean iterate's gain grew from 105 to 351 nats over five passes);
  and ``"fisher"``, {key: (n, *shape)} → {key: F v}, the Fisher products of the families
  at ``params``.

Parameters, gradients and updates are dicts {factor key: ndarray}. Every step that may
be rejected (it leaves a domain, makes the ELBO non-finite, or does not ascend) is
shortened by the one policy of :func:`halve`, in the optimizers and in the fit loop alike.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: the extras an update may declare in ``needs``
EXTRAS = ("objective", "valid", "step", "fisher")


class Optimizer(NamedTuple):
    """An optimizer: ``init(params) -> state`` and
    ``update(grads, state, params, **extras) -> (updates, state, info)``.

    Attributes
    ----------
    init, update : callable
        The two pure functions (see the module's docstring). An ``update`` written before
        :class:`Info` existed may return ``(updates, state)``; its state's ``step_size``
        and ``rejected``, if any, are then read as the step's facts.
    coordinates : str
        Where the optimizer steps: ``"natural"`` (η) or ``"unconstrained"`` (mean and log-scale).
    natural : bool
        True when ``grads`` must be natural gradients F⁻¹∇L = ∇_μ L, False for Euclidean ones.
    name : str
        For tables and plots.
    needs : tuple of str
        The extras ``update`` takes, from :data:`EXTRAS` (by default ``"objective"`` and
        ``"valid"``, as every update took before the contract named them).
    """

    init: Callable
    update: Callable
    coordinates: str
    natural: bool
    name: str
    needs: tuple = ("objective", "valid")


class Info(NamedTuple):
    """What a step did, returned by ``update`` beside the state.

    Attributes
    ----------
    step_size : float
        The step size taken (the learning rate of a Euclidean step; 0 for no step).
    rejected : int
        Trial steps rejected on the way (out of the domain, non-finite or not ascending).
    """

    step_size: float
    rejected: int = 0


class Evaluation(NamedTuple):
    """The ELBO at a point, with its gradients in the optimizer's coordinates.

    ``natural_grad`` is ∇_μ L (a natural gradient when ``coordinates == "natural"``);
    ``grad`` is the Euclidean gradient in the optimizer's coordinates; ``aux`` holds
    what the fit loop keeps about the point (``posterior``, the families there, and
    ``gain``). Outside the domain, ``value`` is −inf and the gradients are None.
    """

    value: float
    grad: dict
    natural_grad: dict
    aux: dict


#: the largest step a natural-gradient optimizer tries first, as the KL divergence (nats, to
#: second order, ½ρ²⟨g, F g⟩) between q before and after it: a KL trust region. Far from
#: the optimum, on Monte Carlo curvature, the natural gradient can be astronomically large
#: (a gain of 1e121 nats at the standard start of a non-centered random-effects Poisson
#: model) and a step of ρ = 1 leaps beyond what halvings bring back. Set above the gains
#: of ordinary starts (2e3 to 3e4 nats on the benchmark's GLMs), which it leaves alone.
MAX_STEP_KL = 1e6


def trust_step(rho, slope):
    """``rho``, or less so that a natural step of that size along a direction of ``slope``
    ⟨g, F g⟩ moves q by at most :data:`MAX_STEP_KL`."""
    if slope > 0 and 0.5 * rho * rho * slope > MAX_STEP_KL:
        return float(np.sqrt(2.0 * MAX_STEP_KL / slope))
    return rho


def halve(trial, rho, max_halvings):
    """The one step-acceptance policy: try ρ, ρ/2, ρ/4, … until ``trial`` accepts one.

    Parameters
    ----------
    trial : callable
        ``trial(ρ)`` → True (take the step ρ), False (halve it and try again) or None
        (give up: no step can gain, e.g. the ELBO does not change at all).
    rho : float
        The first step size to try.
    max_halvings : int
        Halvings before giving up.

    Returns
    -------
    (float, int)
        The step size taken, 0.0 when none was, and the trials rejected.
    """
    for rejected in range(max_halvings + 1):
        verdict = trial(rho)
        if verdict:
            return rho, rejected
        if verdict is None:
            return 0.0, rejected + 1
        rho /= 2
    return 0.0, max_halvings + 1


def tree_map(fn, *trees):
    """Apply ``fn`` leafwise over dicts sharing the keys of the first."""
    return {k: fn(*(t[k] for t in trees)) for k in trees[0]}


def tree_vdot(a, b):
    """Σ over leaves of ⟨a, b⟩."""
    return float(sum(np.vdot(a[k], b[k]) for k in a))


def tree_zeros_like(tree):
    return {k: np.zeros_like(v, dtype=float) for k, v in tree.items()}


def tree_axpy(rho, d, params):
    """params + ρ·d, leafwise."""
    return {k: params[k] + rho * d[k] for k in params}
