"""The GLM engine: data terms that see the latents only through linear predictors.

The real latents of a generalized linear model (an intercept and coefficients) act on
the data through ηᵢ = dᵢᵀw, where the design row dᵢ holds a 1 for the intercept and xᵢ
for the coefficients. Under a Gaussian factor ηᵢ is Gaussian with mean Σ_f D_f m_f and
variance Σ_f dᵢ,fᵀ Σ_f dᵢ,f (the factors are independent), so E_q[log p(yᵢ | ηᵢ)] is a
1-D expectation: in closed form where the likelihood has one (Gaussian, Poisson),
otherwise by Gauss–Hermite quadrature. Its derivatives in the predictors' means and
variances pull back to each factor's (m, Σ) and, by the family's chain rule, to ∇_μ.

Factors are mean-field Gaussians (one per latent) or full-rank Gaussians over one or
several of the real latents (see :mod:`natvi.factors`).
"""

import mmap

import numpy as np

from natvi import factors, quadrature
from natvi.engines.base import Engine

_LOG_2PI = np.log(2 * np.pi)


#: rows per block, at most: the predictors' moments and the expectation's values and
#: gradients are vectors of this length, so temporaries stay (block × K nodes), never (N × ·)
BLOCK_ROWS = 8192

#: bytes of a block of X as float64, at most (and at least one chunk): the block is read
#: twice, the second time from the last-level cache if it fits there
BLOCK_BYTES = 2**23

#: bytes of a chunk of X as float64, at most (at least 16 rows): a chunk and its square stay
#: in one core's cache (2 MiB of L2 here) while they are multiplied. Against one pass in
#: 8192-row chunks that kept X² for the gradient, an evaluation took 0.8× the time at
#: 100,000 × 50 (X fits in L3) and the same at 1,000,000 × 100 (timed alternately).
CHUNK_BYTES = 2**19


class Design:
    """The design columns of each real latent (``intercept`` → ones, ``coef`` → X), and
    the pass over X that an ELBO evaluation needs.

    Rows are taken in blocks. For each block the predictors' moments are formed chunk by
    chunk (each chunk converted to float64, so float32 or memory-mapped X is never copied
    whole, and squared in cache where a mean-field factor needs it); the expectation and
    its derivatives come on the whole block; then the block's chunks are read again (from
    the cache, where the block fits) to pull the gradient back. Peak memory is X plus a few
    block-sized temporaries.

    Parameters
    ----------
    X : ndarray, shape (N, D)
        Features (the columns of the coefficient latent), float32 or float64.
    coef : str
        Name of the coefficient latent.
    intercept : str or None
        Name of the intercept latent, if any.
    """

    def __init__(self, X, coef="coef", intercept=None):
        self.X, self.coef, self.intercept = X, coef, intercept

    def factors_of(self, posterior):
        """The factors over the intercept and the coefficients (others are skipped)."""
        names = {self.coef, self.intercept}
        return {key: q for key, q in posterior.items()
                if set(factors.latent_names(key)) <= names}

    def _rows_per(self, size_bytes):
        """Rows of X in ``size_bytes`` as float64, at least 16."""
        return max(16, size_bytes // (8 * max(self.X.shape[1], 1)))

    def blocks(self):
        """Consecutive slices of at most :data:`BLOCK_ROWS` rows and :data:`BLOCK_BYTES`
        (but at least one chunk)."""
        n = self.X.shape[0]
        size = min(BLOCK_ROWS, max(self._rows_per(BLOCK_BYTES), self._rows_per(CHUNK_BYTES)))
        return [slice(start, min(start + size, n)) for start in range(0, n, size)]

    def chunks(self, block=None):
        """(rows within ``block``, X[rows] as float64) for consecutive chunks of ``block``
        (all rows if None) of at most :data:`CHUNK_BYTES`, or 16 rows if more."""
        block = block or slice(0, self.X.shape[0])
        size = self._rows_per(CHUNK_BYTES)
        for start in range(block.start, block.stop, size):
            rows = slice(start, min(start + size, block.stop))
            xc = np.asarray(self.X[rows], dtype=float)
            if not xc.flags.aligned:  # e.g. unpickled on a Dask worker: BLAS would crawl
                xc = xc.copy()
            yield slice(rows.start - block.start, rows.stop - block.start), xc

    def _columns(self, key, xc):
        """A factor's design on one chunk: its latents' columns side by side (a column of
        ones for the intercept)."""
        cols = [np.ones((xc.shape[0], 1)) if name == self.intercept else xc
                for name in factors.latent_names(key)]
        return cols[0] if len(cols) == 1 else np.hstack(cols)

    def _moments(self, parts, block):
        """Mean and variance of the block's predictors, each of shape (rows of block,)."""
        size = block.stop - block.start
        loc, var = np.zeros(size), np.zeros(size)
        for r, xc in self.chunks(block):
            for key, q in parts.items():
                m, v = q.linear_moments(self._columns(key, xc))
                loc[r] += m
                var[r] += v
        return loc, var

    def _pull_back(self, parts, block, g_loc, g_var, g_mean, g_cov):
        """Add the block's Σᵢ ∂/∂locᵢ · dᵢ and Σᵢ ∂/∂varᵢ · dᵢdᵢᵀ (or its diagonal) to each
        factor's gradient in its mean and covariance."""
        for r, xc in self.chunks(block):
            for key, q in parts.items():
                d_mean, d_cov = q.linear_moments_grad(self._columns(key, xc), g_loc[r], g_var[r])
                g_mean[key] = g_mean[key] + d_mean
                g_cov[key] = g_cov[key] + d_cov

    def predictor_moments(self, posterior):
        """Mean and variance of every ηᵢ under q, each of shape (N,)."""
        parts = self.factors_of(posterior)
        loc, var = np.empty(self.X.shape[0]), np.empty(self.X.shape[0])
        for block in self.blocks():
            loc[block], var[block] = self._moments(parts, block)
        return loc, var

    def integrate(self, posterior, expectation):
        """Σᵢ E_q[log p(yᵢ | ηᵢ)] and its gradient in each factor's mean parameters.

        Parameters
        ----------
        posterior : dict
            {factor key: MeanFieldGaussian or FullRankGaussian}; other factors are skipped.
        expectation : callable
            ``expectation(rows, loc, var)`` → (value, ∂/∂loc, ∂/∂var) for the predictors
            ηᵢ ~ N(locᵢ, varᵢ) of those rows.
        """
        parts = self.factors_of(posterior)
        value, g_mean, g_cov = self.integrate_moments(parts, expectation)
        return value, {key: q.grad_mean_from_moments(np.asarray(g_mean[key]),
                                                       np.asarray(g_cov[key]))
                       for key, q in parts.items()}

    def integrate_moments(self, parts, expectation):
        """Σᵢ E_q[log p(yᵢ | ηᵢ)] and its gradients in each factor's mean and covariance
        ({key: array}, {key: array}), before the families' chain rule: sums over rows, so
        that partial sums over row blocks add up (:mod:`natvi.engines.dask_glm`)."""
        value = 0.0
        g_mean = {key: 0.0 for key in parts}
        g_cov = {key: 0.0 for key in parts}
        for block in self.blocks():
            loc, var = self._moments(parts, block)
            v, g_loc, g_var = expectation(block, loc, var)
            value += v
            self._pull_back(parts, block, g_loc, g_var, g_mean, g_cov)
        return value, g_mean, g_cov

    def weighted_gram(self, key, weights, full):
        """Dᵀ diag(w) D for a factor's design D, shape (d, d); only its diagonal, the
        weighted column sums of squares, when not ``full`` (chunked, like every pass)."""
        total = 0.0
        for rows, xc in self.chunks():
            d = self._columns(key, xc)
            w = weights[rows]
            total = total + (d.T @ (w[:, None] * d) if full else w @ (d * d))
        return total


def memory_mapped(a):
    """Whether array ``a`` is (a view of) a memory-mapped file."""
    while a is not None:
        if isinstance(a, np.memmap | mmap.mmap):
            return True
        a = getattr(a, "base", None)
    return False


#: what stands in for ∂/∂var E[log p] = ½E[f″] (Price), the curvature of a Gaussian step
CURVATURES = ("hessian", "ggn", "empirical_fisher")


def gaussian_prior(posterior, prior_scales):
    """E_q[Σ log N(wⱼ; 0, sⱼ²)] and its gradient in each factor's mean parameters.

    The expectation is linear in the mean parameters (it needs only E[wⱼ²]), so the
    gradient is constant: −1/(2sⱼ²) on each E[wⱼ²] entry.

    Parameters
    ----------
    posterior : dict
        {factor key: MeanFieldGaussian or FullRankGaussian}.
    prior_scales : dict
        {latent name: prior standard deviations, an array of the latent's shape}.
    """
    value, grads = 0.0, {}
    for key, q in posterior.items():
        s2 = np.concatenate([np.ravel(prior_scales[n]) for n in factors.latent_names(key)]) ** 2
        second = np.ravel(np.asarray(q.mean()) ** 2 + q.var())
        grads[key] = q.second_moment_grad((-0.5 / s2).reshape(np.shape(q.var())))
        value += float(np.sum(-0.5 * (_LOG_2PI + np.log(s2)) - second / (2 * s2)))
    return value, grads


def predictor_expectation(likelihood, y, loc, var, n_points=None, curvature="hessian"):
    """Σᵢ E[log p(yᵢ | ηᵢ)], ηᵢ ~ N(locᵢ, varᵢ), and its derivatives in loc and var: the
    likelihood's closed form when it has one, else :func:`natvi.quadrature.expectation`;
    with the derivative in var that ``curvature`` names (see :class:`GLMQuadrature`)."""
    if likelihood.expected is not None:
        value, g_loc, g_var = likelihood.expected(y, loc, var)
    else:
        value, g_loc, g_var = quadrature.expectation(likelihood, y, loc, var, n_points)
    if curvature == "ggn":
        g_var = 0.5 * likelihood.ggn(y, loc)
    elif curvature == "empirical_fisher":
        t, w = quadrature.gauss_hermite(n_points or quadrature.DEFAULT_NODES)
        g = likelihood.grad(y[:, None], loc[:, None] + np.sqrt(var)[:, None] * t)
        g_var = -0.5 * ((g * g) @ w)
    return value, g_loc, g_var


class GLMQuadrature(Engine):
    """The ELBO's expected log joint of a GLM: Σᵢ E_q[log p(yᵢ | ηᵢ)] through the
    predictors ηᵢ = dᵢᵀw + offsetᵢ (per row: the likelihood's closed form, else
    :func:`natvi.quadrature.expectation`), block by block over X (:class:`Design`), plus
    a prior's expectation. Exact to 1e-14 nats per row, so deterministic.

    Parameters
    ----------
    design : Design
        X and which latents its columns belong to.
    likelihood : natvi.likelihoods.Likelihood
        The observation model.
    y, offset : ndarray, shape (N,)
        Responses, and offsets added to the predictors (log exposures).
    prior : callable
        ``prior(posterior)`` → E_q[log p(w)] and its gradients {factor key: ∇_μ}.
    n_points : int, optional
        Gauss–Hermite nodes for every row, instead of each row's own (for comparisons).
    curvature : {"hessian", "ggn", "empirical_fisher"}
        What stands in for ∂/∂varᵢ E[log p(yᵢ | ηᵢ)] = ½E[f″] (Price), the curvature of a
        natural-gradient step on a Gaussian factor: ``"hessian"`` the exact one (the ELBO's
        own gradient); ``"ggn"`` half the generalized Gauss–Newton curvature at the
        predictor's mean; ``"empirical_fisher"`` −½E[f′²], VOGN's squared per-example
        gradients. The last two are Gauss–Newton-type updates whose fixed point is not
        exactly the ELBO's optimum, for comparisons.
    damping : float
        δ ≥ 0 added to the precision a natural-gradient step of 1 lands on (−δ/2 on the
        gradient in each E[wⱼ²]).
    check : callable, optional
        ``check(posterior)``: raises ValueError for factors the model does not support.
    scale : float
        Factor on the data term: 1 for the data set; the number of minibatches for an
        engine on one minibatch's rows (:meth:`on_rows`), whose data term then estimates
        the whole data set's without bias.
    """

    deterministic = True

    def __init__(self, design, likelihood, y, offset, prior, n_points=None,
                 curvature="hessian", damping=0.0, check=None, scale=1.0):
        self.design, self.likelihood, self.y, self.offset = design, likelihood, y, offset
        self.prior, self.check = prior, check
        self.n_points, self.curvature, self.damping = n_points, curvature, damping
        self.scale = scale

    @property
    def n_rows(self):
        """Observations the data term sums over (minibatches are taken from them)."""
        return self.design.X.shape[0]

    @property
    def row_access(self):
        """``"strided"`` when any rows are cheap to gather (X in memory), ``"blocks"`` when
        only contiguous rows are (X memory-mapped from a file: see
        :class:`natvi.engines.Minibatch`)."""
        return "blocks" if memory_mapped(self.design.X) else "strided"

    def rows_data(self, rows):
        """X, y and the offsets of ``rows`` (a slice or an index array), as ndarrays."""
        return self.design.X[rows], self.y[rows], self.offset[rows]

    def on_rows(self, rows, scale):
        """This engine on the ``rows`` (a slice) of the data only, its data term times
        ``scale``; the prior's expectation stays whole."""
        x, y, offset = self.rows_data(rows)
        return GLMQuadrature(Design(x, self.design.coef, self.design.intercept),
                             self.likelihood, y, offset, self.prior, self.n_points,
                             self.curvature, self.damping, self.check, scale)

    def _rows(self, rows, loc, var):
        return predictor_expectation(self.likelihood, self.y[rows], loc + self.offset[rows], var,
                                     self.n_points, self.curvature)

    def data_term(self, posterior):
        """Σᵢ E_q[log p(yᵢ | ηᵢ)] and its gradients {factor key: ∇_μ}."""
        return self.design.integrate(posterior, self._rows)

    def expected_log_joint(self, posterior, rng=None):
        if self.check is not None:
            self.check(posterior)
        value, grads = self.data_term(posterior)
        if self.scale != 1:
            value, grads = self.scale * value, {k: self.scale * g for k, g in grads.items()}
        if self.damping:
            grads = {key: g + posterior[key].second_moment_grad(-0.5 * self.damping)
                     for key, g in grads.items()}
        prior, prior_grads = self.prior(posterior)
        return value + prior, {k: grads.get(k, 0.0) + prior_grads.get(k, 0.0)
                               for k in posterior}
