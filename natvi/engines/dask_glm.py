"""The GLM engine over row-chunked ``dask.array`` data: one ``dask.compute`` per evaluation.

An ELBO evaluation of a GLM is a sum over rows (:class:`natvi.engines.glm.Design`): the
predictors' moments, the expectation, and the gradient pulled back to each factor's mean
and covariance. Here each row chunk of X (with its y and offsets) is one task that runs
that in-memory pass on its chunk and returns its partial sums in float64; the partial sums
are added by a tree of small tasks (:data:`FAN_IN` at a time), so the driver receives one
value and one gradient per factor, never anything of length N. The variational parameters
travel once per evaluation: one task of the graph holds them and every chunk task depends
on its key (with ``dask.distributed``, each worker fetches them once), rather than a copy
embedded in every task.

The graph runs on whatever scheduler is active (``dask.config``, a ``distributed.Client``),
so the same model fits from memory, from memory-mapped or on-disk chunks (out-of-core,
with the threaded scheduler) or on a cluster. Data stay where they are: persist X and y on
a cluster (``X = X.persist()``) when the cluster's memory holds them, or each evaluation
reads them again from their source.
"""

import uuid

import numpy as np

from natvi.engines.glm import Design, GLMQuadrature, predictor_expectation

#: partial sums added per task of the reduction tree
FAN_IN = 8


class DaskDesign(Design):
    """The design of a GLM whose X is a row-chunked ``dask.array`` (one column chunk).

    Parameters
    ----------
    X : dask.array.Array, shape (N, D)
        Features, float32 or float64, chunked by rows only.
    coef : str
        Name of the coefficient latent.
    intercept : str or None
        Name of the intercept latent, if any.
    """

    def __init__(self, X, coef="coef", intercept=None):
        super().__init__(X, coef, intercept)
        self._blocks = X.to_delayed().ravel().tolist()  # one per row chunk
        self.row_chunks = X.chunks[0]

    def blockwise(self, fn, *columns, params=None):
        """The delayed sum over row chunks of ``fn(x_block, *column_blocks, params)``.

        ``columns`` are row-chunked vectors aligned with X (or None); ``params`` is
        placed in the graph once, under its own key, and passed to every chunk task."""
        import dask

        shared = dask.delayed(params, name=f"natvi-params-{uuid.uuid4().hex}",
                              traverse=False)
        vectors = [None if c is None else c.to_delayed().ravel().tolist() for c in columns]
        partial = dask.delayed(fn, pure=True)
        parts = [partial(x, *(None if v is None else v[i] for v in vectors), shared,
                         dask_key_name=f"natvi-block-{shared.key}-{i}")
                 for i, x in enumerate(self._blocks)]
        return tree_sum(parts, shared.key)

    def weighted_gram(self, key, weights, full):
        """Dᵀ diag(w) D for a factor's design (its diagonal when not ``full``), with
        ``weights`` a row-chunked dask array or an ndarray of length N."""
        import dask

        weights = as_row_chunked(weights, self.row_chunks)
        task = self.blockwise(_block_gram, weights,
                              params=(key, full, self.coef, self.intercept))
        return dask.compute(task)[0]

    def predictor_moments(self, posterior):
        """Mean and variance of every ηᵢ under q, each an ndarray of shape (N,)."""
        import dask

        parts = self.factors_of(posterior)
        shared = dask.delayed((parts, self.coef, self.intercept),
                              name=f"natvi-params-{uuid.uuid4().hex}", traverse=False)
        blocks = dask.compute([dask.delayed(_block_moments, pure=True)(x, shared)
                               for x in self._blocks])[0]
        return (np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks]))


def as_row_chunked(vector, row_chunks):
    """``vector`` (an ndarray or a dask array of length N) as a dask array chunked like
    the rows of X."""
    import dask.array as da

    if isinstance(vector, da.Array):
        return vector.rechunk((row_chunks,))
    return da.from_array(np.asarray(vector, dtype=float), chunks=(row_chunks,))


def tree_sum(parts, tag):
    """The delayed sum of delayed partial sums ``parts``, :data:`FAN_IN` per task."""
    import dask

    add = dask.delayed(add_partials, pure=True)
    level = 0
    while len(parts) > 1:
        parts = [add(*parts[i:i + FAN_IN], dask_key_name=f"natvi-sum-{tag}-{level}-{i}")
                 for i in range(0, len(parts), FAN_IN)]
        level += 1
    return parts[0]


def add_partials(*parts):
    """The sum of partial sums: numbers, arrays, or tuples and dicts of them."""
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(add_partials(*items) for items in zip(*parts, strict=True))
    if isinstance(first, dict):
        return {key: add_partials(*(p[key] for p in parts)) for key in first}
    total = first
    for p in parts[1:]:
        total = total + p
    return total


def _block_integral(x, y, offset, params):
    """One row chunk's Σᵢ E_q[log p(yᵢ | ηᵢ)] and its gradients in each factor's mean and
    covariance, in float64 (:meth:`Design.integrate_moments` on the chunk)."""
    parts, likelihood, n_points, curvature, coef, intercept = params
    y = np.asarray(y, dtype=float)
    offset = 0.0 if offset is None else np.asarray(offset, dtype=float)

    def expectation(rows, loc, var):
        shift = offset if np.ndim(offset) == 0 else offset[rows]
        return predictor_expectation(likelihood, y[rows], loc + shift, var, n_points, curvature)

    return Design(x, coef, intercept).integrate_moments(parts, expectation)


def _block_gram(x, weights, params):
    key, full, coef, intercept = params
    return Design(x, coef, intercept).weighted_gram(key, np.asarray(weights, dtype=float), full)


def _block_moments(x, params):
    parts, coef, intercept = params
    design = Design(x, coef, intercept)
    return design._moments(parts, slice(0, x.shape[0]))


class DaskGLMQuadrature(GLMQuadrature):
    """:class:`natvi.engines.GLMQuadrature` over row-chunked dask arrays: each evaluation
    is one ``dask.compute`` of per-chunk partial sums (see the module's docstring); the
    value and gradients equal the in-memory engine's up to the order of the float64 sums.

    Parameters are those of :class:`GLMQuadrature`, with ``design`` a
    :class:`DaskDesign` and ``y``, ``offset`` dask arrays chunked like X's rows
    (``offset`` None for no offsets).
    """

    #: only contiguous rows are cheap to read from chunked (and perhaps on-disk) data
    row_access = "blocks"

    def rows_data(self, rows):
        """X, y and the offsets of ``rows`` (a slice or an index array) as ndarrays, in one
        ``dask.compute``."""
        import dask

        x, y, offset = dask.compute(self.design.X[rows], self.y[rows],
                                    0.0 if self.offset is None else self.offset[rows])
        return x, y, np.broadcast_to(np.asarray(offset, dtype=float), np.shape(y))

    def data_graph(self, posterior):
        """The delayed (value, {key: ∇_mean}, {key: ∇_cov}) of the data term: the graph an
        evaluation computes (for inspection: its tasks, its keys)."""
        parts = self.design.factors_of(posterior)
        params = (parts, self.likelihood, self.n_points, self.curvature, self.design.coef,
                  self.design.intercept)
        return self.design.blockwise(_block_integral, self.y, self.offset, params=params)

    def data_term(self, posterior):
        import dask

        parts = self.design.factors_of(posterior)
        value, g_mean, g_cov = dask.compute(self.data_graph(posterior))[0]
        return float(value), {key: q.grad_mean_from_moments(np.asarray(g_mean[key]),
                                                              np.asarray(g_cov[key]))
                              for key, q in parts.items()}

