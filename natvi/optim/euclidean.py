"""Euclidean first-order optimizers, for comparison with the natural gradient.

They step on the unconstrained parameterization of each family (mean and
log-scale for a Gaussian, as ADVI does) or, with ``coordinates="natural"``, on η
directly, which isolates the effect of the Fisher preconditioner. All ascend.
"""

from typing import NamedTuple

import numpy as np

from natvi.optim.base import Info, Optimizer, tree_map, tree_zeros_like
from natvi.validation import check_choice, check_nonnegative_scalar, check_positive_scalar

_COORDINATES = ("unconstrained", "natural")


class SGDState(NamedTuple):
    """State of :func:`sgd`: the steps taken."""

    count: np.ndarray


class MomentumState(NamedTuple):
    """State of :func:`momentum`: the steps taken and the velocity m."""

    count: np.ndarray
    velocity: dict


class AdagradState(NamedTuple):
    """State of :func:`adagrad`: the steps taken and the sum of squared gradients."""

    count: np.ndarray
    v: dict


class RMSPropState(NamedTuple):
    """State of :func:`rmsprop`: the steps taken and the running mean of squared gradients."""

    count: np.ndarray
    v: dict


class AdadeltaState(NamedTuple):
    """State of :func:`adadelta`: the steps taken and the running means of squared steps
    (u) and of squared gradients (v)."""

    count: np.ndarray
    u: dict
    v: dict


class AdamState(NamedTuple):
    """State of :func:`adam`: the steps taken and the running first (m) and second (v)
    moments of the gradients."""

    count: np.ndarray
    m: dict
    v: dict


def _checked(learning_rate, coordinates):
    return (check_positive_scalar(learning_rate, "learning_rate"),
            check_choice(coordinates, "coordinates", _COORDINATES))


def _fraction(x, name):
    x = check_nonnegative_scalar(x, name)
    if x >= 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {x!r}")
    return x


def sgd(learning_rate=0.01, *, coordinates="unconstrained"):
    """Plain gradient ascent: Δ = lr · g.

    Parameters
    ----------
    learning_rate : float
        lr > 0.
    coordinates : {"unconstrained", "natural"}
        Step on the unconstrained parameterization (mean and log-scale for a Gaussian, as
        ADVI does) or on the natural parameters η.
    """
    lr, coordinates = _checked(learning_rate, coordinates)

    def init(params):
        return SGDState(np.zeros((), int))

    def update(grads, state, params=None):
        return tree_map(lambda g: lr * g, grads), SGDState(state.count + 1), Info(lr)

    return Optimizer(init, update, coordinates, False, f"sgd({lr:g})", ())


def momentum(learning_rate=0.01, beta=0.9, *, nesterov=False, coordinates="unconstrained"):
    """Heavy-ball momentum: m ← βm + g, Δ = lr · m (or Nesterov's look-ahead).

    Parameters
    ----------
    learning_rate : float
        lr > 0.
    beta : float
        Momentum β in [0, 1).
    nesterov : bool
        Nesterov's look-ahead step Δ = lr · (g + βm) instead.
    coordinates : {"unconstrained", "natural"}
        Step on the unconstrained parameterization (mean and log-scale for a Gaussian, as
        ADVI does) or on the natural parameters η.
    """
    lr, coordinates = _checked(learning_rate, coordinates)
    beta = _fraction(beta, "beta")

    def init(params):
        return MomentumState(np.zeros((), int), tree_zeros_like(params))

    def update(grads, state, params=None):
        m = tree_map(lambda m_, g: beta * m_ + g, state.velocity, grads)
        step = tree_map(lambda m_, g: lr * (g + beta * m_), m, grads) if nesterov else \
            tree_map(lambda m_: lr * m_, m)
        return step, MomentumState(state.count + 1, m), Info(lr)

    return Optimizer(init, update, coordinates, False, f"momentum({lr:g})", ())


def adagrad(learning_rate=0.1, *, eps=1e-8, coordinates="unconstrained"):
    """Adagrad: Δ = lr · g / (√Σg² + ε).

    Parameters
    ----------
    learning_rate : float
        lr > 0.
    eps : float
        ε > 0.
    coordinates : {"unconstrained", "natural"}
        Step on the unconstrained parameterization (mean and log-scale for a Gaussian, as
        ADVI does) or on the natural parameters η.
    """
    lr, coordinates = _checked(learning_rate, coordinates)
    eps = check_positive_scalar(eps, "eps")

    def init(params):
        return AdagradState(np.zeros((), int), tree_zeros_like(params))

    def update(grads, state, params=None):
        v = tree_map(lambda v_, g: v_ + g * g, state.v, grads)
        step = tree_map(lambda g, v_: lr * g / (np.sqrt(v_) + eps), grads, v)
        return step, AdagradState(state.count + 1, v), Info(lr)

    return Optimizer(init, update, coordinates, False, f"adagrad({lr:g})", ())


def rmsprop(learning_rate=0.01, decay=0.9, *, eps=1e-8, coordinates="unconstrained"):
    """RMSProp: v ← ρv + (1−ρ)g², Δ = lr · g / (√v + ε).

    Parameters
    ----------
    learning_rate : float
        lr > 0.
    decay : float
        ρ in [0, 1).
    eps : float
        ε > 0.
    coordinates : {"unconstrained", "natural"}
        Step on the unconstrained parameterization (mean and log-scale for a Gaussian, as
        ADVI does) or on the natural parameters η.
    """
    lr, coordinates = _checked(learning_rate, coordinates)
    decay = _fraction(decay, "decay")
    eps = check_positive_scalar(eps, "eps")

    def init(params):
        return RMSPropState(np.zeros((), int), tree_zeros_like(params))

    def update(grads, state, params=None):
        v = tree_map(lambda v_, g: decay * v_ + (1 - decay) * g * g, state.v, grads)
        step = tree_map(lambda g, v_: lr * g / (np.sqrt(v_) + eps), grads, v)
        return step, RMSPropState(state.count + 1, v), Info(lr)

    return Optimizer(init, update, coordinates, False, f"rmsprop({lr:g})", ())


def adadelta(learning_rate=1.0, rho=0.95, *, eps=1e-6, coordinates="unconstrained"):
    """Adadelta (Zeiler 2012): unit-corrected steps from running RMS of g and Δ.

    Parameters
    ----------
    learning_rate : float
        Scale of the steps, > 0 (1 in Zeiler's paper).
    rho : float
        Decay ρ in [0, 1) of both running averages.
    eps : float
        ε > 0.
    coordinates : {"unconstrained", "natural"}
        Step on the unconstrained parameterization (mean and log-scale for a Gaussian, as
        ADVI does) or on the natural parameters η.
    """
    lr, coordinates = _checked(learning_rate, coordinates)
    rho = _fraction(rho, "rho")
    eps = check_positive_scalar(eps, "eps")

    def init(params):
        return AdadeltaState(np.zeros((), int), tree_zeros_like(params),
                             tree_zeros_like(params))

    def update(grads, state, params=None):
        v = tree_map(lambda v_, g: rho * v_ + (1 - rho) * g * g, state.v, grads)
        step = tree_map(lambda g, v_, u: lr * np.sqrt(u + eps) / np.sqrt(v_ + eps) * g,
                        grads, v, state.u)
        u = tree_map(lambda u_, d: rho * u_ + (1 - rho) * d * d, state.u, step)
        return step, AdadeltaState(state.count + 1, u, v), Info(lr)

    return Optimizer(init, update, coordinates, False, f"adadelta({lr:g})", ())


def adam(learning_rate=0.01, b1=0.9, b2=0.999, *, eps=1e-8, coordinates="unconstrained"):
    """Adam (Kingma & Ba 2015) with bias correction.

    Parameters
    ----------
    learning_rate : float
        lr > 0.
    b1, b2 : float
        Decay rates in [0, 1) of the first and second moments of g.
    eps : float
        ε > 0.
    coordinates : {"unconstrained", "natural"}
        Step on the unconstrained parameterization (mean and log-scale for a Gaussian, as
        ADVI does) or on the natural parameters η.
    """
    lr, coordinates = _checked(learning_rate, coordinates)
    b1, b2 = _fraction(b1, "b1"), _fraction(b2, "b2")
    eps = check_positive_scalar(eps, "eps")

    def init(params):
        return AdamState(np.zeros((), int), tree_zeros_like(params), tree_zeros_like(params))

    def update(grads, state, params=None):
        t = state.count + 1
        m = tree_map(lambda m_, g: b1 * m_ + (1 - b1) * g, state.m, grads)
        v = tree_map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, state.v, grads)
        c1, c2 = 1 - b1**t, 1 - b2**t
        step = tree_map(lambda m_, v_: lr * (m_ / c1) / (np.sqrt(v_ / c2) + eps), m, v)
        return step, AdamState(t, m, v), Info(lr)

    return Optimizer(init, update, coordinates, False, f"adam({lr:g})", ())
