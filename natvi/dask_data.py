"""Dask data at the public boundary: row-chunked designs and responses, checked in one pass.

A GLM given ``dask.array`` (or ``dask.dataframe``) data keeps them lazy: X and y are
checked chunk by chunk on the active scheduler, in one ``dask.compute`` at model
construction (finite values and column scales of X, the model's own check of y, positive
exposures), and never loaded whole into the driver's memory.

Chunking: X must be chunked by rows. A chunking with several column chunks is rechunked
to one column chunk (keeping the row chunks), with a UserWarning saying so; y, exposures
and weights are rechunked to X's row chunks. Unknown chunk sizes (a dask DataFrame's
partitions) are computed (``to_dask_array(lengths=True)``, one pass over its index).

Data on disk are read chunk by chunk as each evaluation passes over them
(:func:`read_npy` memory-maps a ``.npy`` file; ``dask.array.from_zarr`` and
``dask.dataframe.read_parquet`` work as they are), so the memory a fit holds does not
grow with N.
"""

import functools
import os
import warnings

import numpy as np

from natvi.validation import check_numeric_columns, listed, too_large

#: bytes of a row chunk of :func:`read_npy`, at most: a few dozen tasks per pass over 1e7 ×
#: 20 float32, each small beside the file
NPY_CHUNK_BYTES = 2**26


def read_npy(path, chunk_rows=None):
    """A ``.npy`` file as a row-chunked dask array, memory-mapped: each evaluation reads
    its chunks from disk (the page cache keeps them while memory allows), and a fit's own
    memory does not grow with the file.

    Parameters
    ----------
    path : str or path
        A 1-D or 2-D ``.npy`` file (``numpy.save``, or ``numpy.lib.format.open_memmap``
        to write one larger than memory chunk by chunk).
    chunk_rows : int, optional
        Rows per chunk; by default as many as fit in :data:`NPY_CHUNK_BYTES`.
    """
    import dask.array as da

    data = NpyFile(path)
    if data.ndim not in (1, 2):
        raise ValueError(f"path: expected a 1-D or 2-D array in {path!r}, got {data.ndim}-D")
    if chunk_rows is None:
        row_bytes = data.dtype.itemsize * (data.shape[1] if data.ndim == 2 else 1)
        chunk_rows = max(1, NPY_CHUNK_BYTES // max(row_bytes, 1))
    elif isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows: expected a positive integer, got {chunk_rows!r}")
    chunks = (chunk_rows,) if data.ndim == 1 else (chunk_rows, -1)
    return da.from_array(data, chunks=chunks, name=f"natvi-npy-{os.fspath(path)}",
                         meta=np.empty((0,) * data.ndim, data.dtype))


class NpyFile:
    """A ``.npy`` file, memory-mapped on first use, as the array-like ``dask.array.from_array``
    slices: it has no ``copy`` (``from_array`` copies arrays that have one, which reads a
    whole memory-mapped file into memory), and it pickles as its path, so a worker on the
    same file system maps the file itself.

    Parameters
    ----------
    path : str or path
        The ``.npy`` file.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._data = None
        data = self.data
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim

    @property
    def data(self):
        """The memory-mapped array."""
        if self._data is None:
            try:
                self._data = np.load(self.path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise ValueError(f"path: cannot read {self.path!r} as a .npy file "
                                 f"({exc})") from None
        return self._data

    def __getitem__(self, index):
        return self.data[index]

    def __getstate__(self):
        return {**self.__dict__, "_data": None}


def is_dask(*values):
    """Whether any of ``values`` is a Dask collection (array, DataFrame or Series); Dask
    is not imported to answer."""
    return any(type(v).__module__.split(".")[0] == "dask" for v in values if v is not None)


def _dask_array(x, name):
    """A Dask collection or an array as a ``dask.array.Array`` with known chunk sizes."""
    import dask.array as da

    if hasattr(x, "to_dask_array"):  # dask DataFrame or Series
        # optimized first: dask-expr may merge small partitions when it computes their
        # lengths, and then finds that they do not match the unoptimized partitions
        return x.optimize().to_dask_array(lengths=True)
    if isinstance(x, da.Array):
        if any(np.isnan(c) for chunks in x.chunks for c in chunks):
            raise ValueError(f"{name}: the dask array's chunk sizes are unknown; call "
                             f"{name}.compute_chunk_sizes() first")
        return x
    return da.from_array(np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x))


def _numeric(x, name):
    kind = x.dtype.kind
    if kind == "c":
        raise ValueError(f"{name}: expected real values, got complex dtype {x.dtype}")
    if kind not in "biuf":
        raise ValueError(f"{name}: expected numeric values, got dtype {x.dtype}")


def design_matrix(X, name="X"):
    """X as a row-chunked 2-D dask array of float32 or float64 (one column chunk), with
    column names (a dask DataFrame's, else x0, x1, ...). Not yet checked for finite values:
    :func:`glm_data` does that with the other checks, in one pass."""
    columns = getattr(X, "columns", None)
    if columns is not None:
        check_numeric_columns(X, name)
    X = _dask_array(X, name)
    _numeric(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (observations × features), got "
                         f"{X.ndim}-D")
    if X.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one row, got 0")
    if len(X.chunks[1]) > 1:
        warnings.warn(f"{name}: rechunked from {len(X.chunks[1])} column chunks to one (the "
                      f"row chunks are kept): natvi's engine reads whole rows; chunk {name} "
                      f"by rows only, e.g. {name}.rechunk({{1: -1}}), to avoid this",
                      UserWarning, stacklevel=4)
        X = X.rechunk({1: -1})
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(float)
    names = ([str(c) for c in columns] if columns is not None
             else [f"x{j}" for j in range(X.shape[1])])
    return X, names


def vector(v, X, name):
    """``v`` (an array, a pandas or dask Series, a dask array) as a float64 dask array of
    X's length, chunked like X's rows."""
    v = _dask_array(v, name)
    _numeric(v, name)
    if v.ndim != 1 or v.shape[0] != X.shape[0]:
        raise ValueError(f"{name}: expected a 1-D array of length {X.shape[0]} (the rows of "
                         f"X), got shape {v.shape}")
    return v.astype(float).rechunk((X.chunks[0],))


#: rows of a chunk checked at a time: temporaries of this many rows, whatever the chunk's size
CHECK_ROWS = 8192


def _column_stats(x):
    """Per column of a chunk: sum of squares (float64), and counts of NaN and of ±inf."""
    out = np.zeros((3, x.shape[1]))
    for start in range(0, x.shape[0], CHECK_ROWS):
        piece = np.asarray(x[start:start + CHECK_ROWS])
        with np.errstate(over="ignore", invalid="ignore"):
            out[0] += np.einsum("ij,ij->j", piece, piece, dtype=float)
        out[1] += np.isnan(piece).sum(axis=0)
        out[2] += np.isinf(piece).sum(axis=0)
    return out


def _checked_count(block, check):
    """Run ``check`` on a chunk (it raises ValueError on bad values); the chunk's rows."""
    check(np.asarray(block))
    return len(block)


def _positive(e):
    if not np.all(np.isfinite(e)):
        raise ValueError("exposure: expected finite values, found NaN or inf")
    if not np.all(e > 0):
        raise ValueError(f"exposure: expected values > 0, got minimum {e.min()}")


def _gram_parts(x, y, intercept):
    """A chunk's DᵀD, Dᵀy and yᵀy in float64, D = [1, x] with an intercept."""
    d = np.asarray(x, dtype=float)
    if intercept:
        d = np.hstack([np.ones((d.shape[0], 1)), d])
    return d.T @ d, d.T @ y, float(y @ y)


def response_check(cls):
    """A model class's check of y (``cls._response(y, None)``) as a function of a chunk,
    picklable for workers (by class reference; ``_response`` must not read the model's
    data)."""
    return functools.partial(_class_response, cls)


def _class_response(cls, y):
    return cls.__new__(cls)._response(y, None)


def glm_data(X, y, check_y, exposure=None, gram_intercept=None, y_name="y"):
    """The data of a GLM as row-chunked dask arrays, checked in one ``dask.compute``.

    Parameters
    ----------
    X : dask.array.Array or dask.dataframe.DataFrame, shape (N, D)
        Features.
    y : dask array, dask or pandas Series, or array_like, shape (N,)
        Responses.
    check_y : callable
        ``check_y(y_chunk)`` raises ValueError for bad responses (e.g. labels not in {0, 1}).
    exposure : array_like or dask array, shape (N,), optional
        Positive exposures.
    gram_intercept : bool, optional
        Also compute DᵀD, Dᵀy and yᵀy (D = X, with a column of ones first when True), in
        the same pass.
    y_name : str
        The response's name in error messages.

    Returns
    -------
    X, names, y, exposure, gram
        X (float32 or float64) and y, exposure (float64, or None) chunked alike; the
        column names; (DᵀD, Dᵀy, yᵀy) or None.
    """
    import uuid

    import dask

    from natvi.engines.dask_glm import DaskDesign, tree_sum

    X, names = design_matrix(X)
    y = vector(y, X, y_name)
    exposure = None if exposure is None else vector(exposure, X, "exposure")
    design = DaskDesign(X)
    checks = [design.blockwise(lambda x, p: _column_stats(x)),
              tree_sum([dask.delayed(_checked_count, pure=True)(b, check_y)
                        for b in y.to_delayed().ravel()], uuid.uuid4().hex)]
    if exposure is not None:
        checks.append(tree_sum([dask.delayed(_checked_count, pure=True)(b, _positive)
                                for b in exposure.to_delayed().ravel()], uuid.uuid4().hex))
    if gram_intercept is not None:
        checks.append(design.blockwise(lambda x, yb, p: _gram_parts(x, yb, gram_intercept), y))
    stats, *rest = dask.compute(*checks)
    _check_columns(stats, names)
    return X, names, y, exposure, (rest[-1] if gram_intercept is not None else None)


def _check_columns(stats, names, name="X"):
    squares, nan, inf = stats
    for found, what in ((nan, "missing (NaN)"), (inf, "infinite")):
        if found.any():
            raise ValueError(f"{name}: expected finite values, found {what} values in "
                             f"column(s) {listed(np.asarray(names)[found > 0].tolist())}")
    overflow = [c for c, s in zip(names, squares, strict=True) if not np.isfinite(s)]
    if overflow:
        raise ValueError(too_large(f"the sum of squares of column(s) {listed(overflow)} "
                                   "overflows float64", name))
