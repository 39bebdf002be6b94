"""Plots of fits: ELBO traces of several optimizers on one axis (needs ``natvi[plot]``).

matplotlib is imported inside the functions, so ``import natvi`` does not need it.
For posterior plots use ArviZ on ``result.to_arviz()`` (``az.plot_posterior``,
``az.plot_forest``, ...).
"""

import numbers

import numpy as np

from natvi.result import FitResult

#: what ``x`` may be, and the history array each choice reads (None: the iteration number)
X_CHOICES = {"iteration": None, "seconds": "seconds", "gradient_evaluations": "grad_evals"}

#: gaps to the best ELBO below this many nats (zero gaps included) are drawn at this level,
#: so that a run which reached the best ELBO still shows on the log scale
GAP_FLOOR = 1e-10

_X_LABELS = {"iteration": "iteration", "seconds": "seconds",
             "gradient_evaluations": "ELBO-and-gradient evaluations"}


def require_matplotlib():
    """Import matplotlib, or raise ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError('natvi.plot needs matplotlib: pip install "natvi[plot]"') from None
    return matplotlib


def elbo(results, x="iteration", labels=None, best=None, ax=None):
    """ELBO traces of several fits as the gap to the best ELBO, on a log scale.

    Parameters
    ----------
    results : FitResult, list of FitResult or dict
        The fits to compare; a dict maps each line's label to its fit.
    x : str
        Horizontal axis: ``"iteration"``, ``"seconds"`` (cumulative wall time) or
        ``"gradient_evaluations"`` (cumulative ELBO-and-gradient evaluations).
    labels : list of str, optional
        One label per fit when ``results`` is a list; default: each fit's optimizer name.
    best : float, optional
        Reference ELBO; default: the highest ELBO in any of the histories. Gaps below
        ``GAP_FLOOR`` nats (including negative ones, when ``best`` is below some history's
        maximum) are drawn at ``GAP_FLOOR``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        One line per fit, y = max(best − ELBO, GAP_FLOOR), in the order given.
    """
    if x not in X_CHOICES:
        raise ValueError(f"x: expected one of {list(X_CHOICES)}, got {x!r}")
    names, fits = _labelled(results, labels)
    if best is None:
        best = max(float(np.max(r.history["elbo"])) for r in fits)
    elif isinstance(best, bool) or not isinstance(best, numbers.Real) or not np.isfinite(best):
        raise ValueError(f"best: expected a finite number, got {best!r}")
    require_matplotlib()
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    for name, r in zip(names, fits, strict=True):
        elbos = np.asarray(r.history["elbo"], dtype=float)
        key = X_CHOICES[x]
        xs = np.arange(elbos.size) if key is None else np.asarray(r.history[key])
        ax.plot(xs, np.maximum(float(best) - elbos, GAP_FLOOR), label=name)
    ax.set_yscale("log")
    ax.set_xlabel(_X_LABELS[x])
    ax.set_ylabel("best ELBO − ELBO (nats)")
    ax.legend()
    return ax


def _labelled(results, labels):
    """([label], [FitResult]) from a FitResult, a list or a dict, with the checks."""
    if isinstance(results, FitResult):
        results = [results]
    if isinstance(results, dict):
        if labels is not None:
            raise ValueError("labels: give labels as the keys of the results dict or as "
                             "labels, not both")
        names, fits = [str(k) for k in results], list(results.values())
    elif isinstance(results, list | tuple):
        fits = list(results)
        if labels is not None and not isinstance(labels, list | tuple):
            raise ValueError(f"labels: expected a list of strings, got {labels!r}")
        names = None if labels is None else [str(label) for label in labels]
    else:
        raise ValueError(f"results: expected a FitResult, a list of them or a dict "
                         f"{{label: FitResult}}, got {type(results).__name__}")
    if not fits:
        raise ValueError("results: expected at least one FitResult, got none")
    bad = [type(r).__name__ for r in fits if not isinstance(r, FitResult)]
    if bad:
        raise ValueError(f"results: expected FitResult items, got {', '.join(bad)}")
    if names is None:
        names = [r.optimizer for r in fits]
    elif len(names) != len(fits):
        raise ValueError(f"labels: expected {len(fits)} labels (one per fit), got {len(names)}")
    return names, fits
