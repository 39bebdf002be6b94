"""The whole state of a fit, written atomically every few iterations and read back to resume.

A checkpoint holds what the next iteration depends on — the variational parameters,
the optimizer state, the ELBO evaluation at the current point (so resuming does not
spend random draws re-evaluating it), the random generator's state, the history, the
iterates a stochastic fit averages, and counters — so a resumed fit continues
bit for bit as the uninterrupted one would have.
"""

import os
from typing import NamedTuple

import numpy as np

from natvi import serialization

KIND = "checkpoint"
#: statuses after which a resumed fit has nothing left to do
FINAL = ("converged", "diverged")
STATUSES = ("running", "max_iter", "interrupted", *FINAL)


def check_path(path, name, writable=False):
    """``path`` as a string (None passes); a file to write needs an existing directory."""
    if path is None:
        return None
    if not isinstance(path, str | os.PathLike):
        raise ValueError(f"{name}: expected a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if writable and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"{name}: the directory of {path!r} does not exist")
    return path


class FitState(NamedTuple):
    """Everything a fit needs to continue after ``n_iter`` completed iterations."""

    params: dict
    opt_state: tuple
    value: float
    grad: dict
    natural_grad: dict
    gain: float
    history: dict
    recent: list
    n_iter: int
    n_evals: int
    seconds: float
    status: str
    rng_state: dict


def save(path, fit_state, model, families, optimizer_name):
    """Write ``fit_state`` of a fit of ``model`` with ``families`` to ``path`` atomically."""
    keys = list(families)
    arrays = {}
    serialization.put_tree(arrays, "params", fit_state.params, keys)
    serialization.put_tree(arrays, "grad", fit_state.grad, keys)
    serialization.put_tree(arrays, "natural_grad", fit_state.natural_grad, keys)
    state_layout = serialization.put_state(arrays, "opt", fit_state.opt_state, keys)
    for name, values in fit_state.history.items():
        arrays[f"history|{name}"] = np.asarray(values)
    for j, iterate in enumerate(fit_state.recent):
        serialization.put_tree(arrays, f"recent|{j}", iterate, keys)
    arrays["value"] = np.asarray(fit_state.value)
    arrays["gain"] = np.asarray(fit_state.gain)
    meta = {
        "latents": serialization.encode_latents(model.latents),
        "factors": serialization.encode_factors(families),
        "optimizer": optimizer_name,
        "opt_state": state_layout,
        "history": list(fit_state.history),
        "n_recent": len(fit_state.recent),
        "n_iter": fit_state.n_iter,
        "n_evals": fit_state.n_evals,
        "seconds": fit_state.seconds,
        "status": fit_state.status,
        "rng_state": fit_state.rng_state,
    }
    serialization.write(path, KIND, meta, arrays)


def load(path, model, families, optimizer_name, opt_template, params_template,
         natural_template):
    """The :class:`FitState` in ``path``, checked against the fit about to resume it.

    The templates — the optimizer's ``init`` state, the parameters in its coordinates
    and the natural parameters, all at the fit's starting point — give the structure
    and shapes every stored array must have; the checkpoint must come from the same
    model latents, families and optimizer.
    """
    meta, arrays = serialization.read(path, KIND, "resume")
    try:
        return _load(meta, arrays, path, model, families, optimizer_name, opt_template,
                     params_template, natural_template)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"resume: {path!r} is an incomplete checkpoint "
                         f"({type(exc).__name__}: {exc})") from None


def _tree(arrays, prefix, keys, template, path):
    tree = serialization.get_tree(arrays, prefix, keys)
    if list(tree) != list(template) or any(np.shape(tree[k]) != np.shape(template[k])
                                           for k in template):
        raise ValueError(f"resume: {path!r} has {prefix} of shapes "
                         f"{ {str(k): np.shape(v) for k, v in tree.items()} }, the fit "
                         f"{ {str(k): np.shape(v) for k, v in template.items()} }")
    return tree


def _load(meta, arrays, path, model, families, optimizer_name, opt_template, params_template,
          natural_template):
    keys = list(families)
    if meta["latents"] != serialization.encode_latents(model.latents):
        raise ValueError(f"resume: the checkpoint is of a model with latents "
                         f"{meta['latents']}, not {serialization.encode_latents(model.latents)}")
    if meta["factors"] != serialization.encode_factors(families):
        raise ValueError(f"resume: the checkpoint has factors {meta['factors']}, the fit "
                         f"{serialization.encode_factors(families)}")
    if meta["optimizer"] != optimizer_name:
        hint = ""
        if meta["optimizer"] == "ngd(1)":  # the mean-field default before Anderson's
            hint = "; pass optimizer=natvi.optim.natural_gradient(1.0) to resume it"
        raise ValueError(f"resume: the checkpoint was written by optimizer "
                         f"{meta['optimizer']!r}, not {optimizer_name!r}{hint}")
    try:
        opt_state = serialization.get_state(arrays, "opt", meta["opt_state"], opt_template, keys)
    except ValueError as exc:
        raise ValueError(f"resume: {exc}") from None
    for field, value in opt_template._asdict().items():
        if isinstance(value, dict):
            _tree(arrays, f"opt|{field}", keys, value, path)
    if meta["status"] not in STATUSES:
        raise ValueError(f"resume: {path!r} has an unknown status {meta['status']!r}")
    n_iter = int(meta["n_iter"])
    history = {name: arrays[f"history|{name}"] for name in meta["history"]}
    if any(len(v) != n_iter + 1 for v in history.values()):
        raise ValueError(f"resume: {path!r} has a history that does not match its "
                         f"{n_iter} iterations")
    return FitState(
        params=_tree(arrays, "params", keys, params_template, path),
        opt_state=opt_state,
        value=float(arrays["value"]),
        grad=_tree(arrays, "grad", keys, params_template, path),
        natural_grad=_tree(arrays, "natural_grad", keys, natural_template, path),
        gain=float(arrays["gain"]),
        history=history,
        recent=[_tree(arrays, f"recent|{j}", keys, params_template, path)
                for j in range(int(meta["n_recent"]))],
        n_iter=n_iter,
        n_evals=int(meta["n_evals"]),
        seconds=float(meta["seconds"]),
        status=str(meta["status"]),
        rng_state=meta["rng_state"],
    )
