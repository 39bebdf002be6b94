"""PSIS-LOO for many observations, by subsampling (Magnusson, Andersen, Jonasson and
Vehtari 2019, "Bayesian leave-one-out cross-validation for large data").

Exact PSIS-LOO needs log p(yᵢ | zₛ) for every observation i at every draw s: for 10⁷
observations and 1,000 draws, 80 GB. Its sum, elpd = Σᵢ elpdᵢ, is estimated instead from
a simple random sample of m observations without replacement and a cheap approximation
πᵢ of every elpdᵢ, by the difference estimator

    elpd ≈ Σᵢ πᵢ + N/m Σⱼ (elpdⱼ − πⱼ),

unbiased, with the subsampling variance N²(1 − m/N) s²ₑ/m, s²ₑ the sample variance of the
differences eⱼ = elpdⱼ − πⱼ: the better the approximation, the smaller m may be. The
sampled elpdⱼ are PSIS-LOO corrected for draws from q (as
:func:`natvi.diagnostics.loo_approximate_posterior`), which needs log p(x, zₛ) at each
draw: one pass over the data, a draws × block at a time.

The approximation πᵢ is, for a GLM, the log predictive density under q,
log E_q[p(yᵢ | ηᵢ)], a 1-D Gaussian integral over each predictor (Gauss–Hermite, one pass
over X); for other models the point log predictive density log p(yᵢ | z̄) at the mean of
the draws. With m = N the estimate is exact PSIS-LOO, computed a block of rows at a time.
"""

from typing import NamedTuple

import numpy as np

from natvi import diagnostics, quadrature
from natvi.lazy_modules import special
from natvi.validation import as_rng, check_draws_memory, check_positive_int

#: Gauss–Hermite nodes of the GLMs' approximation log E_q[p(yᵢ | ηᵢ)]
APPROXIMATION_NODES = 32

#: observations per block of the PSIS computation: draws × this many log-likelihoods at a time
LOO_ROWS = 4096


class SubsampledLoo(NamedTuple):
    """PSIS-LOO estimated from a subsample of the observations.

    elpd : float, the estimate of Σᵢ elpdᵢ (exact PSIS-LOO when every observation is sampled)
    se : float, the estimate of elpd's usual standard error √(N·var(elpdᵢ))
    subsampling_se : float, the standard error of ``elpd`` as an estimate of the full
        PSIS-LOO, from the subsampling alone (0 when every observation is sampled)
    p_loo : float, the estimate of the effective number of parameters Σᵢ (lppdᵢ − elpdᵢ)
    index : array (m,), the sampled observations (sorted)
    elpd_i : array (m,), their elpdᵢ
    pareto_k : array (m,), their Pareto k̂
    approximation : array (m,), their πᵢ
    n_observations : int, N
    n_draws : int, the draws from q
    method : str, how πᵢ was computed
    """

    elpd: float
    se: float
    subsampling_se: float
    p_loo: float
    index: np.ndarray
    elpd_i: np.ndarray
    pareto_k: np.ndarray
    approximation: np.ndarray
    n_observations: int
    n_draws: int
    method: str

    def __str__(self):
        good_k = diagnostics.k_threshold(self.n_draws)
        bad = int(np.sum(self.pareto_k > good_k))
        return "\n".join([
            f"Subsampled approximate-posterior PSIS-LOO: {len(self.index)} of "
            f"{self.n_observations} observations, {self.n_draws} draws from q",
            f"(difference estimator, simple random sampling; elpdᵢ approximated by "
            f"{self.method})",
            "",
            "         Estimate       SE  subsampling SE",
            f"elpd_loo {self.elpd:8.2f}  {self.se:7.2f}  {self.subsampling_se:14.2f}",
            f"p_loo    {self.p_loo:8.2f}        -",
            "",
            f"Pareto k̂ > {good_k:.2f} (unreliable) at {bad} of the {len(self.index)} "
            f"sampled observations",
        ])


def loo_subsample(result, observations=None, draws=1000, seed=0, var_name=None):
    """PSIS-LOO of a fit from a simple random sample of its observations.

    Parameters
    ----------
    result : natvi.FitResult
        A fit whose model has a pointwise log-likelihood.
    observations : int or float, optional
        Observations to sample: a count m ≥ 2, or a fraction of N in (0, 1]; by default
        all of them (exact PSIS-LOO, a block of observations at a time).
    draws : int
        Draws from q; the same ``seed`` gives the draws of ``result.sample(draws, seed)``
        and of ``result.to_arviz(draws, seed)``.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Seed of the draws, then of the subsample.
    var_name : str, optional
        Observed variable, where the model has several.

    Returns
    -------
    SubsampledLoo
    """
    model = result.model
    n = _n_observations(model, var_name)
    m = _sample_size(observations, n)
    draws = check_positive_int(draws, "draws")
    if draws < diagnostics.MIN_DRAWS:
        raise ValueError(f"draws: expected at least {diagnostics.MIN_DRAWS} for a Pareto "
                         f"tail fit, got {draws}")
    check_draws_memory(model, draws, log_density="log_joint")
    rng = as_rng(seed)
    z = result.sample(draws, rng)
    correction = model.log_joint(z) - result.log_q(z)
    index = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    approx, method = _approximation(result, z, var_name)
    elpd_i, k_hat, p_loo_i = _sampled_elpd(model, z, correction, index, var_name)
    return _estimate(elpd_i, k_hat, p_loo_i, approx, index, n, draws, method)


def _estimate(elpd_i, k_hat, p_loo_i, approx, index, n, draws, method):
    """The difference estimator and its standard errors (Magnusson et al. 2019, eq. 7–9)."""
    m = len(index)
    e = elpd_i - approx[index]
    elpd = float(np.sum(approx) + n * np.mean(e))
    var_e = np.var(e, ddof=1) if m > 1 else 0.0
    subsampling_se = float(np.sqrt(n * n * (1 - m / n) * var_e / m))
    # Σᵢ elpdᵢ² by the same estimator, then N·var(elpdᵢ) with ddof = 1, as for exact LOO
    squares = np.sum(approx**2) + n * np.mean(elpd_i**2 - approx[index] ** 2)
    se = float(np.sqrt(max(n * (squares - elpd * elpd / n) / (n - 1), 0.0)))
    return SubsampledLoo(elpd, se, subsampling_se, float(n * np.mean(p_loo_i)), index, elpd_i,
                         k_hat, approx[index], n, draws, method)


def _n_observations(model, var_name):
    observed = getattr(model, "observed_data", None) or {}
    var_name = diagnostics.observed_variable(list(observed), var_name)
    shape = observed[var_name].shape
    if len(shape) != 1:
        raise ValueError(f"result: loo_subsample needs one observation per row of "
                         f"{var_name!r}, got shape {shape}")
    if shape[0] < 2:
        raise ValueError(f"result: expected at least 2 observations, got {shape[0]}")
    return int(shape[0])


def _sample_size(observations, n):
    if observations is None:
        return n
    if isinstance(observations, float) and 0 < observations <= 1:
        return max(2, int(round(observations * n)))
    if isinstance(observations, bool) or not isinstance(observations, int | np.integer) or not (
            2 <= observations <= n):
        raise ValueError(f"observations: expected a count from 2 to {n} or a fraction in "
                         f"(0, 1], got {observations!r}")
    return int(observations)


def _is_glm(model):
    return hasattr(model, "likelihood") and hasattr(model, "_data_rows")


def _approximation(result, z, var_name):
    """πᵢ for every observation, and how it was computed."""
    model = result.model
    if _is_glm(model):
        return glm_predictive_density(model, result.posterior), (
            "the log predictive density under q, log E_q[p(yᵢ | ηᵢ)]")
    point = {name: np.mean(v, axis=0, keepdims=True) for name, v in z.items()}
    pointwise = model.pointwise_log_likelihood(point)
    name = var_name or next(iter(pointwise))
    return np.asarray(pointwise[name], dtype=float)[0], (
        "the point log predictive density at the mean of the draws")


def glm_predictive_density(model, posterior):
    """log E_q[p(yᵢ | ηᵢ)] for every observation of a GLM, shape (N,): a Gauss–Hermite
    rule of :data:`APPROXIMATION_NODES` nodes over each predictor ηᵢ ~ N(locᵢ, varᵢ).

    Parameters
    ----------
    model : natvi.models.glm.GeneralizedLinearModel
        The GLM (in-memory or dask data).
    posterior : dict
        {factor key: Gaussian factor}, e.g. ``result.posterior``.
    """
    loc, var = model.design.predictor_moments(posterior)
    if model.offset is not None:
        loc = loc + np.asarray(model.offset, dtype=float)
    y = np.asarray(model.y, dtype=float)
    t, w = quadrature.gauss_hermite(APPROXIMATION_NODES)
    out = np.empty(len(loc))
    for start in range(0, len(loc), LOO_ROWS):
        rows = slice(start, start + LOO_ROWS)
        eta = loc[rows, None] + np.sqrt(var[rows])[:, None] * t
        out[rows] = special.logsumexp(model.likelihood.log_prob(y[rows, None], eta) + np.log(w),
                                      axis=1)
    return out


def _sampled_elpd(model, z, correction, index, var_name):
    """elpdⱼ, k̂ⱼ and p_looⱼ of the sampled observations, a block of them at a time."""
    out = [np.empty(len(index)) for _ in range(3)]
    full = None
    for start in range(0, len(index), LOO_ROWS):
        rows = index[start:start + LOO_ROWS]
        if _is_glm(model):
            data = model._data_rows(rows)
            log_lik = model.likelihood.log_prob(data[1], model._linear_predictor(z, rows, data))
        else:  # the model's pointwise log-likelihood, once, at every observation
            if full is None:
                check_draws_memory(model, len(correction),
                                   log_density="pointwise_log_likelihood")
                pointwise = model.pointwise_log_likelihood(z)
                full = np.asarray(pointwise[var_name or next(iter(pointwise))], dtype=float)
            log_lik = full[:, rows]
        for o, values in zip(out, diagnostics._loo_pointwise(log_lik.T, correction, np.zeros_like(
                correction)), strict=True):
            o[start:start + len(rows)] = values
    return tuple(out)
