"""Minibatch estimates of the ELBO: the data term on B of N rows, scaled up (Hoffman et al. 2013).

Stochastic variational inference replaces the data term Σᵢ E_q[log p(yᵢ | z)] by n_b times
its sum over one of n_b minibatches, a partition of the rows; the prior's expectation and
the entropy stay whole. With the minibatch drawn uniformly from the partition, the
estimate and its natural gradient are unbiased.

The partition: n_b = ⌈N/B⌉ minibatches of N/n_b rows each, B or a few fewer (rounded
down or up). With X in memory they are strided rows (minibatch k holds rows k, k + n_b,
k + 2n_b, …), which spread each minibatch over the whole data whatever its order; with X
memory-mapped from a file or in ``dask.array`` chunks, contiguous blocks, which are read
sequentially. (Rows stored in an order, such as sorted by y, should then be shuffled once
on disk: blocks of them give unbiased but noisy estimates.)

The order: the n_b minibatches in one random permutation fixed by the fit's seed, repeated.
Every n_b consecutive evaluations then see every row exactly once, so over such a window
the minibatches' noise cancels in the sum of the gradients, and the mean of a window's
iterates is far closer to the optimum than any iterate: :class:`natvi.VI` keeps the mean
of the iterates after a burn-in and measures it after every pass (a halved step reads one
more minibatch and shifts the window by one). Drawn with replacement instead, the noise
left in a mean of K steps would be of order D N / (2 K B) nats of ELBO for D parameters:
one pass of a 10⁷-row, 21-parameter fit would stay ~10 nats from its optimum.
"""

import numpy as np

from natvi.engines.base import Engine
from natvi.validation import check_positive_int


class Minibatch(Engine):
    """The ELBO estimated on one minibatch per evaluation.

    Parameters
    ----------
    full : natvi.engines.Engine
        The engine of the whole data set. It must say how many rows its data term sums
        over (``n_rows``), which rows are cheap to read (``row_access``: ``"strided"`` or
        ``"blocks"``) and give the engine of some rows with its data term scaled
        (``on_rows(rows, scale)``), as :class:`natvi.engines.GLMQuadrature` does.
    batch_size : int
        Rows per minibatch, B < N (n_b = ⌈N/B⌉ minibatches of N/n_b rows each).
    seed : int or None
        Seed of the order of the minibatches. None (a model's engine before a fit): each
        evaluation picks a minibatch at random from the generator it is given.

    Attributes
    ----------
    position : int
        Evaluations made so far: the next one uses minibatch ``order[position % n_b]``.
        A fit sets it from its state, so that a continued fit reads the same minibatches.
    """

    def __init__(self, full, batch_size, seed=None):
        if isinstance(full, Minibatch):
            raise ValueError("batch_size: the engine takes minibatches already")
        if getattr(full, "n_rows", None) is None:
            raise ValueError("batch_size: minibatches need a model whose data term is a sum "
                             "over rows it declares: the logistic, probit, Poisson and ARD "
                             "regressions of natvi.models, or a natvi.Model given log_prior, "
                             "log_likelihood and data; this model declares none")
        n = full.n_rows
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if self.batch_size >= n:
            raise ValueError(f"batch_size: expected fewer rows than the data's {n}, got "
                             f"{self.batch_size} (leave it out for a full-batch fit)")
        self.full, self.seed, self.position = full, seed, 0
        #: minibatches per pass over the data, and the factor on each one's data term
        self.n_batches = -(-n // self.batch_size)
        self.order = (None if seed is None
                      else np.random.default_rng(seed).permutation(self.n_batches))
        self.transforms = full.transforms

    @property
    def description(self):
        return (f"minibatches of {self.batch_size} of {self.full.n_rows} rows "
                f"({self.n_batches} per pass), each scaled by {self.n_batches}")

    def for_fit(self, families, rng):
        """A copy with the order of the minibatches fixed from ``rng``, over the full
        engine the fit would run on."""
        full = self.full.for_fit(families, rng)
        return Minibatch(full, self.batch_size, int(rng.integers(2**63)))

    def rows(self, k):
        """The rows of minibatch ``k`` (0 ≤ k < n_b), a slice: strided or a block."""
        n, n_b = self.full.n_rows, self.n_batches
        if self.full.row_access == "strided":
            return slice(k, n, n_b)
        return slice(k * n // n_b, (k + 1) * n // n_b)  # evenly sized, as the strided ones

    def expected_log_joint(self, posterior, rng=None):
        if self.order is None:
            k = int(as_generator(rng).integers(self.n_batches))
        else:
            k = int(self.order[self.position % self.n_batches])
        self.position += 1
        part = self.full.on_rows(self.rows(k), float(self.n_batches))
        return part.expected_log_joint(posterior, rng)


def as_generator(rng):
    """``rng``, which an evaluation outside a fit must give."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng: a minibatch engine outside a fit picks its minibatch with a "
                         "numpy.random.Generator; got none")
    return rng
