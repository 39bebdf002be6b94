"""Variational draws as ArviZ's own object, on either generation of ArviZ.

ArviZ 0.x builds an ``InferenceData`` with one keyword per group; ArviZ ≥ 1.0
builds an ``xarray.DataTree`` from one nested dict (the keyword style raises there,
and a nested dict is silently misread by 0.x). The generation is read once, here, from
the installed package's metadata: ArviZ itself (with xarray, pandas and matplotlib) is
imported only where it is used, which keeps ``import natvi`` to a fraction of a second.

Draws are stored as one chain, ``(1, S, *shape)``, and ``sample_stats`` keeps
log p(x, z) as ``lp`` and log q(z) as ``log_q`` per draw, so that the Pareto k̂
of the importance weights and the approximate-posterior LOO can be computed later.
"""

import functools

import numpy as np

from natvi.validation import as_float_array


@functools.cache
def arviz_1():
    """Which generation of ArviZ is installed.

    Returns
    -------
    bool
        True for ArviZ ≥ 1.0 (DataTree), False for ArviZ 0.x (InferenceData).
    """
    from importlib.metadata import version  # 15 ms, a sixth of ``import natvi``: on first use

    return int(version("arviz").split(".")[0]) >= 1


def __getattr__(name):
    # ``ARVIZ_1``, the constant this function replaced, still reads (and stays lazy).
    if name == "ARVIZ_1":
        return arviz_1()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_arviz(model, draws, log_p, log_q, log_likelihood=None, attrs=None,
             posterior_predictive=None):
    """Variational draws as ``arviz.InferenceData`` (ArviZ 0.x) or ``DataTree`` (ArviZ ≥ 1.0).

    Parameters
    ----------
    model : object
        Has ``observed_data`` ({name: array}), ``coords`` ({dim: values}) and
        ``dims`` ({variable name: [dim names]}).
    draws : dict
        {latent name: array (S, *shape)} of draws from q.
    log_p : array (S,)
        log p(x, z) at each draw.
    log_q : array (S,)
        log q(z) at each draw, on the same parameterization of z as ``log_p``.
    log_likelihood : dict or None
        {observed name: array (S, *obs_shape)} of log p(xᵢ | z) per draw and observation.
    attrs : dict or None
        Attributes of the posterior group (e.g. which draws it holds).
    posterior_predictive : dict or None
        {observed name: array (S, *obs_shape)} of replicated data, one data set per draw.

    Returns
    -------
    InferenceData or DataTree
        Groups ``posterior`` (one chain), ``sample_stats`` (``lp``, ``log_q``),
        ``observed_data``, ``log_likelihood`` and ``posterior_predictive`` when there are
        any.
    """
    posterior = _check_draws(draws)
    n_draws = next(iter(posterior.values())).shape[0]
    sample_stats = {
        "lp": _check_per_draw(log_p, "log_p", n_draws),
        "log_q": _check_per_draw(log_q, "log_q", n_draws),
    }
    pointwise = _check_log_likelihood(log_likelihood, n_draws)
    observed = {name: np.asarray(value) for name, value in
                (getattr(model, "observed_data", None) or {}).items()}

    # One chain: ArviZ reads the two leading axes as (chain, draw).
    groups = {
        "posterior": {name: value[None] for name, value in posterior.items()},
        "sample_stats": {name: value[None] for name, value in sample_stats.items()},
    }
    if pointwise:
        groups["log_likelihood"] = {name: value[None] for name, value in pointwise.items()}
    if observed:
        groups["observed_data"] = observed
    if posterior_predictive:
        groups["posterior_predictive"] = {name: np.asarray(value)[None] for name, value in
                                          posterior_predictive.items()}

    coords, dims = _coords_and_dims(model, groups)
    data = from_groups(groups, coords, dims)
    data["posterior"].attrs.update(attrs or {})
    return data


def from_groups(groups, coords, dims):
    """ArviZ's own object from ``groups`` ({group name: {variable: array}}, draws as
    (1, S, ...)), on either generation.

    Parameters
    ----------
    groups : dict
        {group name, e.g. ``"posterior"`` or ``"predictions"``: {variable name: array}}.
    coords : dict
        {dim name: coordinate values}.
    dims : dict
        {variable name: [dim names]} (the leading ``chain`` and ``draw`` left out).
    """
    import arviz as az

    # ArviZ ≥ 1.0 reads the dims of the predictions groups from pred_dims only
    kwargs = {"coords": coords, "dims": dims, "pred_coords": coords, "pred_dims": dims}
    if arviz_1():
        return az.from_dict(groups, **kwargs)
    return az.from_dict(**groups, **kwargs)


def _check_draws(draws):
    if not isinstance(draws, dict) or not draws:
        raise ValueError("draws: expected a non-empty dict {latent name: array (S, *shape)}")
    out = {}
    for name, value in draws.items():
        arr = as_float_array(value, f"draws[{name!r}]")
        if arr.ndim < 1 or arr.shape[0] < 1:
            raise ValueError(f"draws[{name!r}]: expected shape (S, *shape), got {arr.shape}")
        out[name] = arr
    sizes = {name: arr.shape[0] for name, arr in out.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"draws: expected the same number of draws S for every latent, "
                         f"got {sizes}")
    return out


def _check_per_draw(x, name, n_draws):
    arr = as_float_array(x, name)
    if arr.shape != (n_draws,):
        raise ValueError(f"{name}: expected shape ({n_draws},), one value per draw, "
                         f"got {arr.shape}")
    return arr


def _check_log_likelihood(log_likelihood, n_draws):
    if log_likelihood is None:
        return {}
    if not isinstance(log_likelihood, dict):
        raise ValueError("log_likelihood: expected a dict {observed name: array (S, N)} or None")
    out = {}
    for name, value in log_likelihood.items():
        arr = as_float_array(value, f"log_likelihood[{name!r}]")
        if arr.ndim < 2 or arr.shape[0] != n_draws:
            raise ValueError(f"log_likelihood[{name!r}]: expected shape ({n_draws}, N), "
                             f"got {arr.shape}")
        out[name] = arr
    return out


def _coords_and_dims(model, groups):
    """The model's dims of the variables present, and the coords those dims use."""
    present = {name for group in groups.values() for name in group}
    dims = {name: list(names) for name, names in (getattr(model, "dims", None) or {}).items()
            if name in present}
    used = {dim for names in dims.values() for dim in names}
    coords = {dim: np.asarray(values) for dim, values in
              (getattr(model, "coords", None) or {}).items() if dim in used}
    return coords, dims
