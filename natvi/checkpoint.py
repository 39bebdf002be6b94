"""A fit's state in a file, written atomically every few iterations and read back to resume.

A checkpoint holds a :class:`natvi.fit_state.FitState` — what the next iteration
depends on — so a resumed fit continues bit for bit as the uninterrupted one would have.
"""

import numpy as np

from natvi import serialization
from natvi.fit_state import STATUSES, FitState, history_arrays, history_from_arrays
from natvi.optim import Evaluation

KIND = "checkpoint"
#: what the fields of natvi's optimizer states hold beyond finite numbers (their integers
#: are counts, ≥ 0): a step size is ≥ 0, and v, a running sum or mean of squared
#: gradients (Adam, RMSProp, Adagrad, Adadelta), is ≥ 0, as its square root is taken
_STATE_RULES = {"step_size": {"nonnegative": True}, "v": {"nonnegative": True}}
#: optimizer states of checkpoints written before each optimizer had a state type of its
#: own: (type stored, type now) → {field now: field stored}; other fields keep their name,
#: and stored fields the type no longer has (step sizes and rejections, now in ``Info``)
#: are dropped
_LEGACY_STATES = {
    ("ScaleState", "SGDState"): {},
    ("MomentState", "MomentumState"): {"velocity": "m"},
    ("MomentState", "AdagradState"): {},
    ("MomentState", "RMSPropState"): {},
    ("MomentState", "AdadeltaState"): {"u": "m"},
    ("MomentState", "AdamState"): {},
    ("NaturalGradientState", "NaturalGradientState"): {},
    ("AndersonState", "AndersonState"): {},
}


def save(path, fit_state, model, families, optimizer_name):
    """Write ``fit_state`` of a fit of ``model`` with ``families`` to ``path`` atomically."""
    keys, ev = list(families), fit_state.evaluation
    arrays = {}
    serialization.put_tree(arrays, "params", fit_state.params, keys)
    serialization.put_tree(arrays, "best", fit_state.best, keys)
    serialization.put_tree(arrays, "grad", ev.grad, keys)
    serialization.put_tree(arrays, "natural_grad", ev.natural_grad, keys)
    state_layout = serialization.put_state(arrays, "opt", fit_state.opt_state, keys)
    history = history_arrays(fit_state.history)
    for name, values in history.items():
        arrays[f"history|{name}"] = values
    for j, iterate in enumerate(fit_state.recent):
        serialization.put_tree(arrays, f"recent|{j}", iterate, keys)
    arrays["best_elbo"] = np.asarray(fit_state.best_elbo)
    arrays["checks"] = np.asarray(fit_state.checks, dtype=float).reshape(-1, 3)
    arrays["value"] = np.asarray(ev.value)
    arrays["gain"] = np.asarray(ev.aux["gain"])
    meta = {
        "latents": serialization.encode_latents(model.latents),
        "factors": serialization.encode_factors(families),
        "optimizer": optimizer_name,
        "opt_state": state_layout,
        "history": list(history),
        "n_recent": len(fit_state.recent),
        "n_iter": fit_state.n_iter,
        "n_evals": fit_state.n_evals,
        "seconds": fit_state.seconds,
        "status": fit_state.status,
        "rng_state": fit_state.rng_state,
        "batch_size": fit_state.batch_size,
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


def _migrated(arrays, prefix, layout, template):
    """The layout of an optimizer state of :data:`_LEGACY_STATES` as ``template``'s type,
    its arrays renamed in ``arrays``; other layouts as they are."""
    renamed = _LEGACY_STATES.get((layout.get("type"), type(template).__name__))
    fields = layout.get("fields")
    if renamed is None or not isinstance(fields, dict) or not all(
            renamed.get(f, f) in fields for f in template._fields):
        return layout
    for field, stored in renamed.items():
        for name in [n for n in arrays if n == f"{prefix}|{stored}"
                     or n.startswith(f"{prefix}|{stored}|")]:
            arrays[f"{prefix}|{field}" + name[len(f"{prefix}|{stored}"):]] = arrays.pop(name)
    return {"type": type(template).__name__,
            "fields": {f: fields[renamed.get(f, f)] for f in template._fields}}


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
        layout = _migrated(arrays, "opt", meta["opt_state"], opt_template)
        opt_state = serialization.get_state(arrays, "opt", layout, opt_template, keys)
    except ValueError as exc:
        raise ValueError(f"resume: {exc}") from None
    _check_state(arrays, opt_state, opt_template, keys, path)
    n_iter = serialization.number(meta, "n_iter", integer=True, nonnegative=True)
    count = {"integer": True, "nonnegative": True}
    params = _tree(arrays, "params", keys, params_template, path)
    history = serialization.get_history(meta, arrays, n_iter)
    recent = tuple(_tree(arrays, f"recent|{j}", keys, params_template, path)
                   for j in range(serialization.number(meta, "n_recent", **count)))
    # the best iterate; checkpoints from before natvi kept it hold the current one only,
    # and those from before the stochastic fits' best windows hold a start that no window
    # was measured against
    has_best = any(name.startswith("best|") for name in arrays) and (
        "best_elbo" in arrays or not recent)
    return FitState(
        params=params,
        opt_state=opt_state,
        evaluation=Evaluation(
            float(serialization.array(arrays, "value", shape=())),
            _tree(arrays, "grad", keys, params_template, path),
            _tree(arrays, "natural_grad", keys, natural_template, path),
            {"gain": float(serialization.array(arrays, "gain", shape=(), nonnegative=True,
                                               nonfinite=True))}),
        history=history_from_arrays(history),
        recent=recent,
        n_iter=n_iter,
        n_evals=serialization.number(meta, "n_evals", **count),
        seconds=serialization.number(meta, "seconds", nonnegative=True),
        status=serialization.choice(meta, "status", STATUSES),
        rng_state=_rng_state(meta),
        best=_tree(arrays, "best", keys, params_template, path) if has_best else params,
        best_elbo=_best_elbo(arrays, history, recent),
        checks=_checks(arrays),
        # checkpoints from before minibatch fits are of fits on all the data
        batch_size=(serialization.number(meta, "batch_size", **count)
                    if "batch_size" in meta else 0),
    )


def _checks(arrays):
    """A minibatch fit's exact passes, (iteration, ELBO, gain) each (none in checkpoints
    from before minibatch fits)."""
    if "checks" not in arrays:
        return ()
    table = serialization.array(arrays, "checks", nonfinite=True)
    if table.ndim != 2 or table.shape[1] != 3:
        raise serialization.Damaged(f"checks has shape {table.shape}, expected (n, 3)")
    return tuple((int(i), float(elbo), float(gain)) for i, elbo, gain in table)


def _best_elbo(arrays, history, recent):
    """The best ELBO of a checkpoint: a stochastic fit's is its best window's median. A
    checkpoint written before natvi kept it: a deterministic fit's best recorded ELBO, and
    for a stochastic fit none yet (−inf), so the windows after the resume set it."""
    if "best_elbo" in arrays:
        return float(serialization.array(arrays, "best_elbo", shape=(), nonfinite=True))
    return -np.inf if recent else float(np.max(history["elbo"]))
