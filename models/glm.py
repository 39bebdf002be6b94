"""Generalized linear models with Gaussian priors: the base of the regression models.

A model class whose expected log joint goes through the GLM engine
(:class:`natvi.engines.GLMQuadrature`):
a deterministic ELBO for mean-field and full-rank Gaussian factors alike (the data checks
are in :mod:`natvi.validation`).
"""

import numpy as np

from natvi import dask_data
from natvi.engines.dask_glm import DaskDesign, DaskGLMQuadrature
from natvi.engines.glm import CURVATURES, Design, GLMQuadrature, gaussian_prior
from natvi.families import FullRankGaussian, MeanFieldGaussian
from natvi.formula import FromFormula
from natvi.model import Latent, Model
from natvi.predictive import linear_predictor
from natvi.validation import (
    check_choice,
    check_flag,
    check_nonnegative_scalar,
    check_positive_int,
    check_positive_scalar,
    design_matrix,
    exposures,
    too_large,
)

_LOG_2PI = np.log(2 * np.pi)

#: ``family="auto"`` fits one full-rank Gaussian over the intercept and the k = D + 1
#: coefficients while an ELBO evaluation's N·k² multiply-adds (the predictors' variances
#: and the gradient's Dᵀ diag(g) D) stay within this and k within FULL_RANK_MAX_DIM (the
#: family's O(k³) work, and iterations, grow with k); else mean-field Gaussians. Measured
#: by examples/family_cost.py on 2 cores: the full-rank fit then takes at most ~4 s (100,000
#: × 100: 1.8 s against 0.5 s mean-field; 10,000 × 300: 2.0 s against 0.14 s), where
#: beyond it 1,000,000 × 100 takes 10 s (4.4 s) and 5,000 × 1,000 26 s (0.75 s).
FULL_RANK_BUDGET = 2e9
FULL_RANK_MAX_DIM = 301
#: the largest condition number of the starting precision ``family="auto"`` fits a full-rank
#: Gaussian at: beyond it the covariance keeps fewer than four correct digits in float64,
#: and whether its Cholesky factor exists depends on the machine's rounding
FULL_RANK_MAX_CONDITION = 1e12


class GeneralizedLinearModel(FromFormula, Model):
    r"""A GLM with independent Gaussian priors on the intercept and the coefficients.

    .. math::
        \alpha \sim N(0, s_0^2), \quad \beta_j \sim N(0, s^2), \quad
        y_i \sim p(y_i \mid \eta_i), \quad \eta_i = \log e_i + \alpha + x_i^\top \beta,

    with exposures eᵢ (ones unless given; used by count models).

    ``curvature`` and ``damping`` change the precision part of natural-gradient steps on
    Gaussian factors (see :class:`natvi.engines.GLMQuadrature`): the default exact
    expected Hessian follows the ELBO; the others are for comparison (VOGN-type updates).

    Subclasses set ``likelihood`` (a :class:`natvi.likelihoods.Likelihood`) and define
    ``_response`` (the data check of y), ``_start``, and for predictions
    ``draw_response`` and ``expected_response`` (see :mod:`natvi.predictive`). Factors may
    be mean-field Gaussians, or full-rank Gaussians over the coefficients or over the
    intercept and coefficients jointly.
    """

    vectorized = True
    likelihood = None
    #: whether the model takes exposures (new rows may then have theirs)
    takes_exposure = False
    #: no reparameterization to suggest when k̂ is high (see FitResult.diagnose)
    reparameterization_hint = None

    def __init__(self, X, y, prior_scale, intercept_scale, fit_intercept, n_points,
                 exposure=None, curvature="hessian", damping=0.0):
        on_dask = dask_data.is_dask(X, y, exposure)
        if on_dask:  # lazy, checked chunk by chunk in one pass (natvi.dask_data)
            self.X, self.feature_names, self.y, self.exposure, _ = dask_data.glm_data(
                X, y, dask_data.response_check(type(self)), exposure)
        else:
            self.X, self.feature_names = design_matrix(X)
            self.y = self._response(y, self.X.shape[0])
        n, d = self.X.shape
        self.prior_scale = check_positive_scalar(prior_scale, "prior_scale")
        self.intercept_scale = check_positive_scalar(intercept_scale, "intercept_scale")
        self.fit_intercept = check_flag(fit_intercept, "fit_intercept")
        self.n_points = None if n_points is None else check_positive_int(n_points, "n_points")
        self.curvature = check_choice(curvature, "curvature", CURVATURES)
        self.damping = check_nonnegative_scalar(damping, "damping")
        intercept = "intercept" if self.fit_intercept else None
        if on_dask:
            self.offset = None if self.exposure is None else np.log(self.exposure)
            if self.exposure is None:
                self.exposure = np.ones_like(self.y)  # lazy, a dask array
            self.design = DaskDesign(self.X, "coef", intercept)
        else:
            self.exposure = exposures(exposure, n)
            self.offset = np.log(self.exposure)
            self.design = Design(self.X, "coef", intercept)
        self.latents = {"coef": Latent((d,), "real")}
        self.prior_scales = {"coef": np.full(d, self.prior_scale)}
        if self.fit_intercept:
            self.latents = {"intercept": Latent((), "real"), **self.latents}
            self.prior_scales["intercept"] = np.asarray(self.intercept_scale)
        # labels and counts as integers, as their replicates are: ArviZ bins both alike
        self.observed_data = {"y": self.y.astype(np.int64)}
        # a range, not an array of N indices, for data that may not fit in memory
        self.coords = {"feature": self.feature_names, "obs": range(n) if on_dask else np.arange(n)}
        self.dims = {"coef": ["feature"], "y": ["obs"]}
        engine = DaskGLMQuadrature if on_dask else GLMQuadrature
        self.engine = engine(self.design, self.likelihood, self.y, self.offset,
                                    self._expected_log_prior, self.n_points, self.curvature,
                                    self.damping, self._check_factors)

    # ---- engine ---------------------------------------------------------------------
    def _check_factors(self, posterior):
        for key, q in posterior.items():
            self._check_family(key, type(q))

    def _check_family(self, key, family):
        if family.support != "real":  # the real-valued families are the Gaussians
            raise ValueError(f"family: {type(self).__name__} supports MeanFieldGaussian and "
                             f"FullRankGaussian factors, got {family.__name__} for {key!r}")

    def _expected_log_prior(self, posterior):
        return gaussian_prior(posterior, self.prior_scales)

    # ---- log densities at draws -----------------------------------------------------
    #: rows of X per block of the log densities at draws: S × this many values at a time
    DRAW_ROWS = 4096

    def _data_rows(self, rows):
        """X, y and the offsets of ``rows`` as float ndarrays (one compute for dask data)."""
        return tuple(np.asarray(a, dtype=float) for a in self.engine.rows_data(rows))

    def _linear_predictor(self, draws, rows=slice(None), data=None):
        """ηᵢ at each draw for the ``rows`` of X, shape (S, rows) (``data``: their
        :meth:`_data_rows`, if read already)."""
        x, _, offset = self._data_rows(rows) if data is None else data
        return linear_predictor(draws, x, offset)

    def _row_blocks(self):
        n = self.X.shape[0]
        return [slice(start, min(start + self.DRAW_ROWS, n))
                for start in range(0, n, self.DRAW_ROWS)]

    def pointwise_log_likelihood(self, draws):
        n_draws = len(np.asarray(draws["coef"]))
        out = np.empty((n_draws, self.X.shape[0]))
        for rows in self._row_blocks():
            data = self._data_rows(rows)
            out[:, rows] = self.likelihood.log_prob(data[1],
                                                    self._linear_predictor(draws, rows, data))
        return {"y": out}

    def _log_likelihood(self, draws):
        """log p(y | z) at each draw, shape (S,): block by block, S × DRAW_ROWS values at a
        time, never S × N."""
        total = np.zeros(len(np.asarray(draws["coef"])))
        for rows in self._row_blocks():
            data = self._data_rows(rows)
            total += self.likelihood.log_prob(data[1], self._linear_predictor(
                draws, rows, data)).sum(axis=1)
        return total

    def log_joint(self, draws):
        lp = self._log_likelihood(draws)
        n_draws = len(lp)
        for name, s in self.prior_scales.items():
            w = np.asarray(draws[name]).reshape(n_draws, -1)
            s = np.ravel(s)
            lp = lp + np.sum(-0.5 * (_LOG_2PI + 2 * np.log(s)) - w**2 / (2 * s * s), axis=1)
        return lp

    def log_density_memory(self, draws, pointwise=False):
        """Rough peak bytes of the log densities at ``draws`` draws: three arrays of draws ×
        DRAW_ROWS (a block's predictors, log-likelihoods and a temporary), plus the
        draws × N result of the pointwise log-likelihood."""
        block = min(self.DRAW_ROWS, self.X.shape[0])
        return 8 * draws * (3 * block + (self.X.shape[0] if pointwise else 1))

    def _response(self, y, n):
        """The validated response, shape (n,)."""
        raise NotImplementedError

    # ---- predictions ------------------------------------------------------------------
    def draw_response(self, rng, eta, draws):
        """One response per draw and row from the likelihood at the linear predictors.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of the draws.
        eta : ndarray, shape (S, rows)
            Linear predictors (offsets included).
        draws : dict
            {latent name: (S, *shape)}, the posterior draws ``eta`` comes from.
        """
        raise NotImplementedError

    def expected_response(self, mean, var):
        """The mean of the response under q, E[E[y | η]] for η ~ N(``mean``, ``var``) per
        row (arrays of the same shape), exact."""
        raise NotImplementedError

    # ---- the starting point -----------------------------------------------------------
    def _start(self):
        """Intercept mean to start from, and the likelihood's curvature −∂²log p/∂η² there
        per observation (the weights of the first Gauss–Newton precision)."""
        raise NotImplementedError

    def _start_precision(self, key, full):
        """The prior precision plus Dᵀ diag(c) D of a factor (its diagonal when not
        ``full``): one natural-gradient fixed point of the variances from w = 0."""
        _, weights = self._start()
        with np.errstate(over="ignore"):
            gram = self.design.weighted_gram(key, weights, full)
        if not np.all(np.isfinite(gram)):
            raise ValueError(too_large("q's starting precision, Σᵢ cᵢxᵢxᵢᵀ with the "
                                        "likelihood's curvature cᵢ, overflows float64"))
        names = (key,) if isinstance(key, str) else key
        prior = np.concatenate([np.ravel(self.prior_scales[n]) for n in names]) ** -2.0
        return (np.diag(prior) + gram if full else prior + np.ravel(gram)), prior

    @staticmethod
    def _full_rank_cov(precision, prior):
        """Σ = Λ⁻¹ of a starting precision, and the condition number of Λ.

        Λ = P + Dᵀ diag(c) D is positive definite, its eigenvalues at least those of the
        prior P; in floating point collinear columns at large scales can round the small
        ones to zero or below, so they are floored at the prior's."""
        values, vectors = np.linalg.eigh(precision)
        values = np.maximum(values, prior.min())
        cov = (vectors / values) @ vectors.T
        return 0.5 * (cov + cov.T), values.max() / values.min()

    def auto_family(self):
        """A full-rank Gaussian over the intercept and coefficients when an evaluation's
        N·k² stays within :data:`FULL_RANK_BUDGET`, k ≤ :data:`FULL_RANK_MAX_DIM` and the
        starting precision's condition number is at most :data:`FULL_RANK_MAX_CONDITION`;
        mean-field Gaussians otherwise."""
        names = tuple(n for n in ("intercept", "coef") if n in self.latents)
        n, k = self.X.shape[0], self.X.shape[1] + ("intercept" in names)
        what = f"the intercept and the {k - 1} coefficients" if "intercept" in names else (
            f"the {k} coefficients")
        cost = n * k * k
        if cost > FULL_RANK_BUDGET or k > FULL_RANK_MAX_DIM:
            return MeanFieldGaussian, (
                f"mean-field Gaussians: a full-rank Gaussian over {what} would cost N·k² = "
                f"{cost:.1e} per ELBO evaluation (N = {n} rows, k = {k}), over natvi's "
                f"budget of {FULL_RANK_BUDGET:.0e} (k at most {FULL_RANK_MAX_DIM})")
        key = names if len(names) > 1 else names[0]
        cov, condition = self._full_rank_cov(*self._start_precision(key, full=True))
        try:
            FullRankGaussian(loc=np.zeros(k), cov=cov)
            conditioned = condition <= FULL_RANK_MAX_CONDITION
        except ValueError:
            conditioned = False
        if not conditioned:
            return MeanFieldGaussian, (
                f"mean-field Gaussians: the design is too ill-conditioned for a full-rank "
                f"Gaussian over {what} (condition number of the starting precision "
                f"{condition:.1e}: rescale or drop collinear columns to fit one)")
        return FullRankGaussian, (
            f"a full-rank Gaussian over {what}, which keeps their posterior correlations "
            f"(N·k² = {cost:.1e} per ELBO evaluation, within natvi's budget of "
            f"{FULL_RANK_BUDGET:.0e})")

    def initial_posterior(self, families):
        # Start at the posterior precision of a Gauss–Newton step from w = 0 (the prior
        # precision plus Dᵀ diag(c) D): one natural-gradient fixed point of the variances.
        intercept, _ = self._start()
        out = {}
        for key, family in families.items():
            self._check_family(key, family)
            full = family.joint
            precision, prior = self._start_precision(key, full)
            names = (key,) if isinstance(key, str) else key
            loc = np.concatenate([np.full(1, intercept) if n == "intercept"
                                  else np.zeros(self.X.shape[1]) for n in names])
            if full:
                cov, condition = self._full_rank_cov(precision, prior)
                try:
                    out[key] = family(loc=loc, cov=cov)
                except ValueError:
                    raise ValueError(f"X: the design is too ill-conditioned for a full-rank "
                                     f"Gaussian (condition number of the starting precision "
                                     f"{condition:.1e}); rescale or drop collinear columns"
                                     ) from None
            else:
                shape = self.latents[key].shape
                out[key] = family(loc=loc.reshape(shape), scale=precision.reshape(shape) ** -0.5)
        return out
