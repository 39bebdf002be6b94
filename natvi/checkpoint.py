"""The whole state of a fit, written atomically every few iterations and read back to resume.

A checkpoint holds what the next iteration depends on — the variational parameters,
the optimizer state, the ELBO evaluation at the current point (so resuming does not
spend random draws re-evaluating it), the random generator's state, the history, the
iterates a stochastic fit averages, and counters — so a resumed fit continues
bit for bit as the uninterrupted one would have.
"""

from typing import NamedTuple

import numpy as np

from natvi import serialization

KIND = "checkpoint"
#: statuses after which a resumed fit has nothing left to do
FINAL = ("converged", "diverged")
STATUSES = ("running", "max_iter", "interrupted", *FINAL)
#: what the fields of natvi's optimizer states hold beyond finite numbers (their integers
#: are counts, ≥ 0): a step size is ≥ 0, and v, a running sum or mean of squared
#: gradients (Adam, RMSProp, Adagrad, Adadelta), is ≥ 0, as its square root is taken
_STATE_RULES = {"step_size": {"nonnegative": True}, "v": {"nonnegative": True}}


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
    best: dict


def save(path, fit_state, model, families, optimizer_name):
    """Write ``fit_state`` of a fit of ``model`` with ``families`` to ``path`` atomically."""
    keys = list(families)
    arrays = {}
    serialization.put_tree(arrays, "params", fit_state.params, keys)
    serialization.put_tree(arrays, "best", fit_state.best, keys)
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
    except serialization.Damaged as exc:
        raise ValueError(f"resume: {path!r} is a damaged natvi checkpoint: {exc}") from None
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"resume: {path!r} is an incomplete checkpoint "
                         f"({type(exc).__name__}: {exc})") from None


def _tree(arrays, prefix, keys, template, path, checked=True, **rules):
    """The tree under ``prefix``, of ``template``'s shapes; if ``checked``, its arrays are
    finite floats that obey ``rules`` (see :func:`natvi.serialization.array`)."""
    tree = serialization.get_tree(arrays, prefix, keys)
    if list(tree) != list(template) or any(np.shape(tree[k]) != np.shape(template[k])
                                           for k in template):
        raise ValueError(f"resume: {path!r} has {prefix} of shapes "
                         f"{ {str(k): np.shape(v) for k, v in tree.items()} }, the fit "
                         f"{ {str(k): np.shape(v) for k, v in template.items()} }")
    for i, key in enumerate(keys):
        if checked and key in tree:
            serialization.array(arrays, f"{prefix}|{i}", **rules)
    return tree


def _check_state(arrays, state, template, keys, path):
    """Check the optimizer state read from ``arrays`` against ``template``, its ``init``.

    Every array must have the template's shape. In natvi's own states every number must
    also be of the template's kind and finite, every integer (a count) ≥ 0, and the
    fields of :data:`_STATE_RULES` obey them; a custom optimizer's state may hold what it
    likes (-inf for a best value so far, say).
    """
    own = type(template).__module__.startswith("natvi.")
    for field, value in template._asdict().items():
        prefix, stored = f"opt|{field}", getattr(state, field)
        if isinstance(value, dict):
            _tree(arrays, prefix, keys, value, path, own, **_STATE_RULES.get(field, {}))
            continue
        if np.shape(stored) != np.shape(value):
            raise serialization.Damaged(f"{prefix} has shape {np.shape(stored)}, expected "
                                        f"{np.shape(value)}")
        if not own:
            continue
        kind = np.asarray(value).dtype.kind
        if kind != "b":
            serialization.array(arrays, prefix, integer=kind in "iu",
                                **{"nonnegative": kind in "iu", **_STATE_RULES.get(field, {})})
        elif stored.dtype.kind != "b":
            raise serialization.Damaged(f"{prefix} must be a boolean, got an array of "
                                        f"{stored.dtype}")


def _rng_state(meta):
    """``meta["rng_state"]``, checked by setting it on a bit generator of its kind."""
    state = serialization.field(meta, "rng_state")
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    cls = getattr(np.random, kind, None) if isinstance(kind, str) else None
    try:
        if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
            raise ValueError(f"unknown bit generator {kind!r}")
        cls(0).state = state
    except Exception as exc:  # NumPy raises ValueError, TypeError, KeyError, OverflowError
        raise serialization.Damaged(f"rng_state is not the state of a NumPy bit generator "
                                    f"({type(exc).__name__}: {exc})") from None
    return state


def _load(meta, arrays, path, model, families, optimizer_name, opt_template, params_template,
          natural_template):
    keys = list(families)
    latents = serialization.field(meta, "latents")
    if latents != serialization.encode_latents(model.latents):
        raise ValueError(f"resume: the checkpoint is of a model with latents "
                         f"{latents}, not {serialization.encode_latents(model.latents)}")
    if serialization.field(meta, "factors") != serialization.encode_factors(families):
        raise ValueError(f"resume: the checkpoint has factors {meta['factors']}, the fit "
                         f"{serialization.encode_factors(families)}")
    if serialization.field(meta, "optimizer") != optimizer_name:
        hint = ""
        if meta["optimizer"] == "ngd(1)":  # the mean-field default before Anderson's
            hint = "; pass optimizer=natvi.optim.natural_gradient(1.0) to resume it"
        raise ValueError(f"resume: the checkpoint was written by optimizer "
                         f"{meta['optimizer']!r}, not {optimizer_name!r}{hint}")
    try:
        opt_state = serialization.get_state(arrays, "opt", meta["opt_state"], opt_template, keys)
    except ValueError as exc:
        raise ValueError(f"resume: {exc}") from None
    _check_state(arrays, opt_state, opt_template, keys, path)
    n_iter = serialization.number(meta, "n_iter", integer=True, nonnegative=True)
    count = {"integer": True, "nonnegative": True}
    params = _tree(arrays, "params", keys, params_template, path)
    # the best iterate of a deterministic fit; checkpoints from before natvi kept it hold
    # the current one only
    has_best = any(name.startswith("best|") for name in arrays)
    return FitState(
        params=params,
        best=_tree(arrays, "best", keys, params_template, path) if has_best else params,
        opt_state=opt_state,
        value=float(serialization.array(arrays, "value", shape=())),
        grad=_tree(arrays, "grad", keys, params_template, path),
        natural_grad=_tree(arrays, "natural_grad", keys, natural_template, path),
        gain=float(serialization.array(arrays, "gain", shape=(), nonnegative=True,
                                       nonfinite=True)),
        history=serialization.get_history(meta, arrays, n_iter),
        recent=[_tree(arrays, f"recent|{j}", keys, params_template, path)
                for j in range(serialization.number(meta, "n_recent", **count))],
        n_iter=n_iter,
        n_evals=serialization.number(meta, "n_evals", **count),
        seconds=serialization.number(meta, "seconds", nonnegative=True),
        status=serialization.choice(meta, "status", STATUSES),
        rng_state=_rng_state(meta),
    )
