"""Bayesian logistic regression with independent Gaussian priors."""

import numpy as np

from natvi.families import MeanFieldGaussian
from natvi.likelihoods import logistic
from natvi.model import Latent, Model
from natvi.quadrature import expected_log_likelihood
from natvi.validation import as_float_array, check_positive_int, check_positive_scalar

_LOG_2PI = np.log(2 * np.pi)


def _design_matrix(X):
    """X as a finite float 2-D array, with column names (from a DataFrame if given)."""
    columns = getattr(X, "columns", None)
    if columns is not None:
        # ``dtype.kind`` answers for NumPy and pandas extension dtypes alike (str, category,
        # Int64, boolean), where np.issubdtype raises TypeError on the extension ones.
        bad = [str(c) for c, dt in zip(columns, X.dtypes, strict=True)
               if getattr(dt, "kind", "O") not in "biuf"]
        if bad:
            raise ValueError(f"X: expected real numeric columns, got non-numeric or complex "
                             f"column(s) {bad}")
        names = [str(c) for c in columns]
        # Nullable columns (Int64, Float64, boolean) would give an object array; missing
        # values become NaN, which the finiteness check below reports.
        X = X.to_numpy(dtype=float, na_value=np.nan)
    else:
        names = None
    X = as_float_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array (observations × features), got {X.ndim}-D")
    if X.shape[0] == 0:
        raise ValueError("X: expected at least one row, got 0")
    if not np.all(np.isfinite(X)):
        raise ValueError("X: expected finite values, found NaN or inf")
    if names is None:
        names = [f"x{j}" for j in range(X.shape[1])]
    return X, names


def _binary_labels(y, n):
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number)
                                 or np.issubdtype(y.dtype, np.bool_)):
        raise ValueError(f"y: expected 0/1 or boolean labels, got dtype {y.dtype}")
    y = y.astype(float)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y: expected a 1-D array of length {n} (the rows of X), "
                         f"got shape {y.shape}")
    bad = ~np.isin(y, (0.0, 1.0))
    if np.any(bad):
        raise ValueError(f"y: expected labels in {{0, 1}}, got {np.unique(y[bad])[:5].tolist()}")
    return y


class LogisticRegression(Model):
    r"""Bayesian logistic regression.

    .. math::
        \alpha \sim N(0, s_0^2), \quad \beta_j \sim N(0, s^2), \quad
        y_i \mid \alpha, \beta \sim \mathrm{Bernoulli}(\sigma(\alpha + x_i^\top \beta)).

    The expected log-likelihood under a Gaussian posterior is computed by
    Gauss–Hermite quadrature, so the ELBO and its gradient are deterministic.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (N, D)
        Features; a DataFrame's column names become the ArviZ ``feature`` coordinate.
    y : array_like, shape (N,)
        Labels in {0, 1} (booleans are fine).
    prior_scale : float
        Prior standard deviation s of each coefficient.
    intercept_scale : float
        Prior standard deviation s₀ of the intercept.
    fit_intercept : bool
        Include the intercept α (latent ``intercept``).
    n_points : int
        Gauss–Hermite nodes per observation.
    """

    deterministic = True

    def __init__(self, X, y, prior_scale=2.5, intercept_scale=2.5, fit_intercept=True,
                 n_points=32):
        self.X, self.feature_names = _design_matrix(X)
        self.y = _binary_labels(y, self.X.shape[0])
        self.prior_scale = check_positive_scalar(prior_scale, "prior_scale")
        self.intercept_scale = check_positive_scalar(intercept_scale, "intercept_scale")
        if not isinstance(fit_intercept, bool | np.bool_):
            raise ValueError(f"fit_intercept: expected True or False, got {fit_intercept!r}")
        self.fit_intercept = bool(fit_intercept)
        self.n_points = check_positive_int(n_points, "n_points")
        self._X2 = self.X**2
        n, d = self.X.shape
        self.latents = {"coef": Latent((d,), "real")}
        self.prior_scales = {"coef": self.prior_scale}
        if self.fit_intercept:
            self.latents = {"intercept": Latent((), "real"), **self.latents}
            self.prior_scales["intercept"] = self.intercept_scale
        self.observed_data = {"y": self.y}
        self.coords = {"feature": self.feature_names, "obs": np.arange(n)}
        self.dims = {"coef": ["feature"], "y": ["obs"]}

    # ---- engine: quadrature ---------------------------------------------------
    @staticmethod
    def _check_family(name, family):
        if family is not MeanFieldGaussian:
            raise ValueError(f"family: LogisticRegression supports MeanFieldGaussian "
                             f"factors, got {family.__name__} for {name!r}")

    def expected_log_joint(self, posterior, rng=None):
        for name, q in posterior.items():
            self._check_family(name, type(q))
        coef = posterior["coef"]
        loc = self.X @ coef.loc
        var = self._X2 @ coef.variance
        if self.fit_intercept:
            loc = loc + posterior["intercept"].loc
            var = var + posterior["intercept"].variance
        value, g_loc, g_var = expected_log_likelihood(logistic, self.y, loc, var, self.n_points)
        moment_grads = {"coef": (self.X.T @ g_loc, self._X2.T @ g_var)}
        if self.fit_intercept:
            moment_grads["intercept"] = (g_loc.sum(), g_var.sum())
        grads = {}
        for name, (g_m, g_v) in moment_grads.items():
            q, s2 = posterior[name], self.prior_scales[name] ** 2
            # E_q[log N(w; 0, s²)] = −½ log(2πs²) − (m² + v) / (2s²)
            value += np.sum(-0.5 * (_LOG_2PI + np.log(s2)) - (q.loc**2 + q.variance) / (2 * s2))
            grads[name] = q.grad_mean_from_moments(g_m - q.loc / s2, g_v - 0.5 / s2)
        return float(value), grads

    # ---- log densities at draws -------------------------------------------------
    def _linear_predictor(self, draws):
        eta = draws["coef"] @ self.X.T
        if self.fit_intercept:
            eta = eta + np.asarray(draws["intercept"])[:, None]
        return eta

    def pointwise_log_likelihood(self, draws):
        return {"y": logistic.log_prob(self.y, self._linear_predictor(draws))}

    def log_joint(self, draws):
        lp = self.pointwise_log_likelihood(draws)["y"].sum(axis=1)
        for name, s in self.prior_scales.items():
            w = np.asarray(draws[name]).reshape(lp.shape[0], -1)
            lp = lp + np.sum(-0.5 * (_LOG_2PI + 2 * np.log(s)) - w**2 / (2 * s * s), axis=1)
        return lp

    def initial_posterior(self, families):
        # Start at the diagonal of the posterior precision at w = 0: the prior precision
        # plus σ′(0) = 1/4 times Σᵢ xᵢⱼ² — one natural-gradient fixed point of the variances.
        start = {"coef": 1 / self.prior_scale**2 + 0.25 * self._X2.sum(axis=0)}
        if self.fit_intercept:
            start["intercept"] = np.asarray(1 / self.intercept_scale**2 + 0.25 * len(self.y))
        out = {}
        for name, precision in start.items():
            family = families[name]
            self._check_family(name, family)
            out[name] = family(loc=np.zeros_like(precision), scale=precision**-0.5)
        return out
