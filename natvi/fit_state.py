"""The state of a fit: everything the next iteration reads, as plain data.

A :class:`FitState` is what :meth:`natvi.VI.init` returns, what :meth:`natvi.VI.step`
takes and returns (a new one; the old one stays valid), what ``natvi.fit(...,
init_state=...)`` continues from, and what a checkpoint file stores. It holds the
current point and the ELBO evaluation there (so continuing spends no random draws
re-evaluating it), the optimizer's state, the random generator's state, counters, the
best iterate, the iterates a stochastic fit averages, and the history.

The history is a persistent list, newest record first — ``(record, older)``, ending in
``()`` — so that a step adds its record in constant time without touching the states
before it.
"""

from typing import NamedTuple

import numpy as np

#: the per-iteration records of a fit, as in ``FitResult.history``
HISTORY_FIELDS = ("elbo", "step_size", "grad_evals", "seconds", "rejected")
#: statuses after which continuing a fit has nothing left to do
FINAL = ("converged", "diverged")
STATUSES = ("running", "max_iter", "interrupted", *FINAL)


class Record(NamedTuple):
    """One iteration: its ELBO, the step size taken, the ELBO evaluations made since the
    start, the seconds spent since the start, and the trial steps rejected."""

    elbo: float
    step_size: float
    grad_evals: int
    seconds: float
    rejected: int


class FitState(NamedTuple):
    """Everything a fit needs to continue after ``n_iter`` completed iterations.

    Attributes
    ----------
    params : dict
        {factor key: array} in the optimizer's coordinates.
    opt_state : NamedTuple
        The optimizer's state.
    evaluation : natvi.optim.Evaluation
        The ELBO at ``params``, its gradients, and in ``aux`` the posterior there and the
        gain of a unit natural-gradient step.
    history : tuple
        The records of iterations 0 … ``n_iter``, as ``(newest, older)`` pairs.
    recent : tuple
        The last iterates of a stochastic fit (its result is their mean).
    n_iter, n_evals : int
        Iterations completed and ELBO evaluations made.
    seconds : float
        Time spent in the fit's own work (evaluations and steps).
    status : str
        ``"running"``, ``"max_iter"``, ``"interrupted"``, ``"converged"`` or ``"diverged"``.
    rng_state : dict
        The random generator's ``bit_generator.state`` after the last iteration.
    best, best_elbo : dict, float
        The iterate of the highest ELBO so far, and that ELBO.
    checks : tuple
        A minibatch fit's full passes: (iteration, ELBO, gain) at the mean of the
        iterates after each pass (see :meth:`natvi.VI._minibatch_verdict`).
    batch_size : int
        Rows per minibatch of a minibatch fit, 0 for a fit on all the data.
    """

    params: dict
    opt_state: tuple
    evaluation: tuple
    history: tuple
    recent: tuple
    n_iter: int
    n_evals: int
    seconds: float
    status: str
    rng_state: dict
    best: dict
    best_elbo: float
    checks: tuple = ()
    batch_size: int = 0


def records(history):
    """The records of ``history``, oldest first."""
    out = []
    while history:
        record, history = history
        out.append(record)
    return out[::-1]


def latest_records(history, n):
    """The newest ``n`` records (fewer if there are fewer), oldest first."""
    out = []
    while history and len(out) < n:
        record, history = history
        out.append(record)
    return out[::-1]


def latest_elbos(history, n):
    """The ELBOs of the newest ``n`` records (fewer if there are fewer), oldest first."""
    return [record.elbo for record in latest_records(history, n)]


def history_arrays(history):
    """{field: array over iterations 0 … n_iter}, as ``FitResult.history`` holds them."""
    columns = list(zip(*records(history), strict=True)) or [()] * len(HISTORY_FIELDS)
    return {name: np.array(column, dtype=int if name in ("grad_evals", "rejected") else float)
            for name, column in zip(HISTORY_FIELDS, columns, strict=True)}


def history_from_arrays(arrays):
    """The persistent history of :func:`history_arrays`' output."""
    history = ()
    for row in zip(*(np.asarray(arrays[name]).tolist() for name in HISTORY_FIELDS),
                   strict=True):
        history = (Record(*row), history)
    return history
