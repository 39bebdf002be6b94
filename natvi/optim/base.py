"""The optimizer interface: a pair of pure functions, state as plain arrays.

Parameters, gradients and updates are dicts {latent name: ndarray}. natvi
*maximizes* the ELBO, so ``update`` returns an ascent step: the fit loop adds it.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


class Optimizer(NamedTuple):
    """An optimizer: ``init(params) -> state`` and ``update(grads, state, params)``.

    ``update`` returns ``(updates, state)``.

    Attributes
    ----------
    init, update : callable
        The two pure functions. ``update`` also accepts keywords ``objective`` (a
        callable params -> :class:`Evaluation`, given only when the ELBO is
        deterministic) and ``valid`` (params -> bool: inside every family's domain).
    coordinates : str
        Where the optimizer steps: ``"natural"`` (η) or ``"unconstrained"`` (mean and log-scale).
    natural : bool
        True when ``grads`` must be natural gradients F⁻¹∇L = ∇_μ L, False for Euclidean ones.
    name : str
        For tables and plots.
    """

    init: Callable
    update: Callable
    coordinates: str
    natural: bool
    name: str


class Evaluation(NamedTuple):
    """The ELBO at a point, with its gradients in the optimizer's coordinates.

    ``natural_grad`` is ∇_μ L (a natural gradient when ``coordinates == "natural"``);
    ``grad`` is the Euclidean gradient in the optimizer's coordinates; ``aux`` holds
    what the fit loop keeps about the point (optimizers ignore it). Outside the
    domain, ``value`` is −inf and the gradients are None.
    """

    value: float
    grad: dict
    natural_grad: dict
    aux: dict


def tree_map(fn, *trees):
    """Apply ``fn`` leafwise over dicts sharing the keys of the first."""
    return {k: fn(*(t[k] for t in trees)) for k in trees[0]}


def tree_vdot(a, b):
    """Σ over leaves of ⟨a, b⟩."""
    return float(sum(np.vdot(a[k], b[k]) for k in a))


def tree_zeros_like(tree):
    return {k: np.zeros_like(v, dtype=float) for k, v in tree.items()}
