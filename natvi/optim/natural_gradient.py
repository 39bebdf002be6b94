"""Natural-gradient ascent in the natural parameters η of each family.

The natural gradient F(η)⁻¹∇_η L equals ∇_μ L, the gradient in the mean
parameters, which the engines return directly; a step is η ← η + ρ ∇_μ L, and
ρ = 1 is coordinate-ascent VI for a conjugate factor.

Mean-field natural-gradient steps are a Jacobi-like iteration: with correlated
features a fixed ρ of 1, 0.7 or 0.5 diverges. On a deterministic ELBO
(quadrature or closed form) the step is therefore chosen by a line search on
the ELBO (strong Wolfe conditions), and consecutive directions are made
conjugate in the Fisher metric (Riemannian conjugate gradient, Polak–Ribière+,
as in Honkela et al. 2010, JMLR 11), which removes the Jacobi zig-zag. The
first step, and every restart, is the plain natural gradient with ρ =
``learning_rate``. On a stochastic ELBO the step follows a schedule and is
halved whenever it would leave a family's domain. There each family takes its own
natural step (the extra ``step``, :meth:`ExponentialFamily.natural_step
<natvi.families.base.ExponentialFamily.natural_step>`): for Gaussian factors the
Bayesian learning rule's step (Lin, Schmidt & Khan 2020), whose precision stays positive
definite however noisy the Monte Carlo curvature, so that a step is never halved for
leaving the domain.
"""

from typing import NamedTuple

import numpy as np

from natvi.optim.base import (
    Info,
    Optimizer,
    halve,
    tree_axpy,
    tree_map,
    tree_vdot,
    tree_zeros_like,
    trust_step,
)
from natvi.validation import (
    check_choice,
    check_flag,
    check_positive_int,
    check_positive_scalar,
)

_SCHEDULES = ("constant", "robbins_monro")


class NaturalGradientState(NamedTuple):
    """State of :func:`natural_gradient`; plain arrays, so it can be checkpointed.

    count : steps taken. step_size : the last ρ (the next line search's first guess
    scales it). direction, prev_natural, prev_grad : the last search direction and the
    natural and Euclidean gradients where it was taken (for the conjugate-gradient
    update). slope : ⟨direction, ∇_η L⟩ at the last step (0 = none yet, or a restart).
    """

    count: np.ndarray
    step_size: np.ndarray
    direction: dict
    prev_natural: dict
    prev_grad: dict
    slope: np.ndarray


def natural_gradient(learning_rate=1.0, *, line_search=True, conjugate=True,
                     schedule="constant", decay=0.6, delay=1.0, warm_start=False,
                     max_halvings=40, max_evaluations=20, family_steps=True):
    """Natural-gradient optimizer over the natural parameters of each family.

    Parameters
    ----------
    learning_rate : float
        ρ of a plain natural-gradient step (1 is coordinate ascent for conjugate
        factors); the first trial step of a line search.
    line_search : bool
        On a deterministic ELBO, choose each step by a strong-Wolfe line search.
        When False, ρ follows ``schedule`` and is halved while the step would lower the
        ELBO; on a stochastic ELBO, ρ follows ``schedule`` and is halved while the step
        would leave a family's domain.
    conjugate : bool
        Make successive line-search directions conjugate in the Fisher metric.
    schedule : {"constant", "robbins_monro"}
        ρ_t = learning_rate, or learning_rate · (t + delay)^(−decay) for stochastic runs.
    decay, delay : float
        Robbins–Monro exponent in (0.5, 1] and offset > 0.
    warm_start : bool
        Step by at least 1/(t + 1) (on a stochastic ELBO): the first steps then average
        the targets η + ∇_μL of the steps so far (for a conjugate factor, the natural
        parameters each minibatch alone would give), until the schedule's step is larger.
    max_halvings : int
        Halvings of a step that leaves the domain before giving up on it.
    max_evaluations : int
        ELBO evaluations one line search may make.
    family_steps : bool
        On a stochastic ELBO, step each factor by its family's ``natural_step`` (for
        Gaussians, one whose precision stays positive definite for every ρ); False takes
        the plain η + ρ∇_μ L there too. A deterministic ELBO always takes the plain step,
        which at ρ = 1 is the exact coordinate update of a conjugate factor.
    """
    lr = check_positive_scalar(learning_rate, "learning_rate")
    schedule = check_choice(schedule, "schedule", _SCHEDULES)
    decay = check_positive_scalar(decay, "decay")
    if schedule == "robbins_monro" and not 0.5 < decay <= 1:
        raise ValueError(f"decay: expected a number in (0.5, 1], got {decay!r}")
    delay = check_positive_scalar(delay, "delay")
    warm_start = check_flag(warm_start, "warm_start")
    max_halvings = check_positive_int(max_halvings, "max_halvings")
    max_evaluations = check_positive_int(max_evaluations, "max_evaluations")
    family_steps = check_flag(family_steps, "family_steps")

    def init(params):
        zeros = tree_zeros_like(params)
        return NaturalGradientState(np.zeros((), int), np.asarray(lr), zeros, zeros, zeros,
                                    np.asarray(0.0))

    def update(grads, state, params, *, objective=None, valid=None, step=None):
        if objective is not None and line_search:
            return _line_search_step(grads, state, params, objective)
        return _scheduled_step(grads, state, params, objective, valid, step)

    def _scheduled_step(grads, state, params, objective, valid, step):
        rho = lr if schedule == "constant" else lr * (state.count + delay) ** (-decay)
        if warm_start:
            rho = max(rho, 1 / (state.count + 1))
        # Families' own steps on a stochastic ELBO only: on a deterministic one the plain
        # step of 1 is a conjugate factor's exact coordinate update.
        move = step if objective is None and family_steps and step else _plain_step

        def acceptable(rho):
            new = move(params, grads, rho)
            if objective is not None:  # deterministic: never go downhill (nor leave the domain)
                return objective(new).value >= objective(params).value
            return valid is None or valid(new)

        rho, rejected = halve(acceptable, rho, max_halvings)
        updates = (tree_map(np.subtract, move(params, grads, rho), params) if rho
                   else tree_zeros_like(params))
        return updates, state._replace(count=state.count + 1, step_size=np.asarray(rho)), \
            Info(rho, rejected)

    def _line_search_step(grads, state, params, objective):
        grad = objective(params).grad
        direction, restart = _conjugate(grads, grad, state) if conjugate else (grads, True)
        alpha, n_bad, slope = _search(direction, grad, restart, state, params, objective)
        if alpha == 0 and not restart:
            # The conjugate direction found no ascent: fall back to the natural gradient.
            direction, restart = grads, True
            alpha, n_bad, slope = _search(direction, grad, restart, state, params, objective)
        if alpha == 0:  # no ascent along the natural gradient: stationary, to rounding
            return tree_zeros_like(params), state._replace(
                count=state.count + 1, step_size=np.asarray(0.0), slope=np.asarray(0.0)), \
                Info(0.0, n_bad)
        new_state = NaturalGradientState(state.count + 1, np.asarray(alpha), direction, grads,
                                         grad, np.asarray(slope))
        return tree_map(lambda d: alpha * d, direction), new_state, Info(alpha, n_bad)

    def _search(direction, grad, restart, state, params, objective):
        """(α, rejected trials, slope) of a line search along ``direction``;
        α = 0 when no trial step increases the ELBO."""
        slope = tree_vdot(direction, grad)
        if not slope > 0:
            return 0.0, 0, slope
        if restart or state.slope <= 0:
            alpha0 = lr
        else:
            # Nocedal & Wright's guess: the same first-order change as the last step; capped
            # at twice the last step, as the slope can drop by orders of magnitude at once
            # (after an exact coordinate update) and the guess then overshoots far outside
            # the domain.
            alpha0 = min(float(state.step_size * state.slope / slope),
                         2.0 * max(float(state.step_size), lr))
        value0 = objective(params).value
        alpha0 = trust_step(alpha0, slope)
        alpha, n_bad = _wolfe_search(
            lambda a: objective(tree_map(lambda p, d: p + a * d, params, direction)),
            direction, value0, slope, alpha0, max_evaluations)
        return alpha, n_bad, slope

    name = (f"ngd({lr:g}" + (", warm start" if warm_start else "")
            + ("" if family_steps else ", plain steps") + ")")
    return Optimizer(init, update, "natural", True, name, ("objective", "valid", "step"))


def _plain_step(params, grads, rho):
    """η + ρ∇_μ L, leafwise."""
    return tree_axpy(rho, grads, params)


def _conjugate(grads, grad, state):
    """(direction, restart): the natural gradient made Fisher-conjugate to the last
    direction (Polak–Ribière+, in the Fisher metric), or the natural gradient itself
    (a restart) when that is not an ascent direction."""
    if not state.slope > 0:
        return grads, True
    denom = tree_vdot(state.prev_natural, state.prev_grad)
    beta = max(0.0, tree_vdot(grads, tree_map(np.subtract, grad, state.prev_grad))
               / denom) if denom > 0 else 0.0
    if beta > 0:
        candidate = tree_map(lambda g, d: g + beta * d, grads, state.direction)
        if tree_vdot(candidate, grad) > 0:
            return candidate, False
    return grads, True


def _wolfe_search(phi, direction, value0, slope0, alpha, max_evaluations, c1=1e-4, c2=0.4):
    """Step α > 0 meeting the strong Wolfe conditions for *ascent* along ``direction``.

    ``phi(α)`` returns an Evaluation at the trial point. Non-finite or out-of-domain
    trials count as failures of sufficient increase, so the bracket shrinks past them.
    Returns (α, rejected trials); α = 0 when no trial increased the ELBO.
    """
    n_eval = n_bad = 0

    def probe(a):
        nonlocal n_eval, n_bad
        n_eval += 1
        ev = phi(a)
        if not np.isfinite(ev.value):
            n_bad += 1
            return -np.inf, np.nan
        return ev.value, tree_vdot(direction, ev.grad)

    def sufficient(a, v):
        return v >= value0 + c1 * a * slope0

    lo, v_lo, s_lo = 0.0, value0, slope0
    hi = v_hi = s_hi = None
    while n_eval < max_evaluations:
        v, s = probe(alpha)
        if not sufficient(alpha, v) or v <= v_lo:
            hi, v_hi, s_hi = alpha, v, s
        elif abs(s) <= c2 * slope0:
            return alpha, n_bad
        else:
            # Keep the maximum bracketed: the uphill side of alpha is where s points.
            if (hi is None and s < 0) or (hi is not None and s * (hi - alpha) < 0):
                hi, v_hi, s_hi = lo, v_lo, s_lo
            lo, v_lo, s_lo = alpha, v, s
        # No upper bracket yet: double the step; else interpolate inside the bracket.
        alpha = 2 * lo if hi is None else _cubic_step(lo, v_lo, s_lo, hi, v_hi, s_hi)
    return lo, n_bad


def _cubic_step(a, va, sa, b, vb, sb):
    """Next trial: the cubic-interpolated maximizer, safeguarded within the bracket."""
    lo, hi = min(a, b), max(a, b)
    guess = None
    if np.isfinite(vb) and np.isfinite(sb):
        # Maximizer of the cubic through (a, va, sa), (b, vb, sb): Nocedal & Wright (3.59).
        d1 = -sa - sb + 3 * (va - vb) / (a - b)
        disc = d1 * d1 - sa * sb
        if disc >= 0:
            d2 = np.copysign(np.sqrt(disc), b - a)
            den = -sb + sa + 2 * d2
            if den != 0:
                guess = b - (b - a) * (-sb + d2 - d1) / den
    margin = 0.1 * (hi - lo)
    if guess is None or not np.isfinite(guess) or not lo + margin <= guess <= hi - margin:
        guess = 0.5 * (lo + hi)
    return guess
