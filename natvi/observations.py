"""A log joint declared as a prior plus a sum over rows of data: what minibatches need.

``natvi.Model(latents=..., log_prior=..., log_likelihood=..., data=...)`` declares its
per-observation data: ``data`` is {name: array} whose arrays share their first axis, the
N rows, and ``log_likelihood(z, rows)`` gives log p(xᵢ | z) for each row of the data it is
handed. The log joint is then log p(z) + Σᵢ log p(xᵢ | z); on a minibatch of rows it is
log p(z) + (N / B) Σ_{i in the minibatch} log p(xᵢ | z) (as :class:`natvi.engines.Minibatch`
scales it), and the pointwise log-likelihood for LOO comes with it.
"""

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval


class Observations:
    """A model's prior, per-row log-likelihood and data.

    Parameters
    ----------
    log_prior : callable
        ``log_prior(z)`` = log p(z) for one draw ``z`` = {latent name: array}, written
        with ``autograd.numpy``; returns a scalar.
    log_likelihood : callable
        ``log_likelihood(z, rows)`` = log p(xᵢ | z) for each row of ``rows`` = {name: the
        rows of that array}, an array (n,) for the n rows given, written with
        ``autograd.numpy``.
    data : dict
        {name: array}, real or integer, finite, all with the same first axis of N ≥ 2
        rows.
    call : callable
        ``call(fn, name, z, *args)``: how the model calls a user function (with its error
        messages).
    """

    def __init__(self, log_prior, log_likelihood, data, call):
        for arg, f in (("log_prior", log_prior), ("log_likelihood", log_likelihood)):
            if not callable(f):
                raise ValueError(f"{arg}: expected a function, got {type(f).__name__}")
        self.log_prior, self.log_likelihood, self._call = log_prior, log_likelihood, call
        self.data = checked_data(data)
        #: N, the rows of the data
        self.n_rows = len(next(iter(self.data.values())))

    def rows(self, rows):
        """{name: array[rows]} for ``rows``, a slice or an index array."""
        return {name: a[rows] for name, a in self.data.items()}

    def pointwise(self, z, rows=None):
        """log p(xᵢ | z) of the ``rows`` (all if None), checked: one real value per row."""
        data = self.data if rows is None else self.rows(rows)
        n = len(next(iter(data.values())))
        value = self._call(self.log_likelihood, "log_likelihood", z, data)
        shape = np.shape(getval(value))
        if shape != (n,):
            raise ValueError(f"log_likelihood: returned shape {shape} for {n} rows; return "
                             f"log p(xᵢ | z) for each row it is given, an array ({n},)")
        return value

    def log_joint(self, rows=None, scale=1.0):
        """The function z ↦ log p(z) + ``scale`` · Σ_{i in rows} log p(xᵢ | z) (all rows
        if ``rows`` is None)."""
        def log_joint(z):
            prior = self._call(self.log_prior, "log_prior", z)
            return prior + scale * anp.sum(self.pointwise(z, rows))
        return log_joint


def checked_data(data):
    """``data`` as {name: ndarray}, or ValueError naming what is wrong."""
    if not isinstance(data, dict) or not data:
        raise ValueError("data: expected a non-empty dict {name: array of one row per "
                         "observation}")
    out, n = {}, None
    for name, value in data.items():
        if not isinstance(name, str):
            raise ValueError(f"data: names must be strings, got {name!r}")
        if np.ma.isMaskedArray(value) and np.ma.is_masked(value):
            raise ValueError(f"data[{name!r}]: has masked entries; drop those rows or fill "
                             f"them")
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"data[{name!r}]: could not make an array of it ({exc}); give "
                             f"one row per observation, all rows of one shape") from None
        if arr.dtype.kind == "b":
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"data[{name!r}]: expected real or integer numbers, got "
                             f"{arr.dtype}")
        if arr.ndim == 0:
            raise ValueError(f"data[{name!r}]: expected an array of one row per "
                             f"observation, got a scalar (put constants in the functions)")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"data[{name!r}]: holds NaN or infinite values")
        n = len(arr) if n is None else n
        if len(arr) != n:
            raise ValueError(f"data[{name!r}]: has {len(arr)} rows, but "
                             f"data[{next(iter(data))!r}] has {n}: every array needs one "
                             f"row per observation")
        out[name] = arr
    if n < 2:
        raise ValueError(f"data: expected at least 2 rows, got {n}")
    return out
