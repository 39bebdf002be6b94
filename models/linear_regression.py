"""Bayesian linear regression: conjugate with known noise, semi-conjugate without."""

import autograd.numpy as anp
import numpy as np

from natvi import dask_data, factors
from natvi.engines import ClosedForm
from natvi.families import FullRankGaussian, Gamma, MeanFieldGaussian
from natvi.formula import FromFormula
from natvi.lazy_modules import special
from natvi.model import Latent, Model, check_factors
from natvi.validation import check_flag, check_positive_scalar, design_matrix, response

_LOG_2PI = np.log(2 * np.pi)


class LinearRegression(FromFormula, Model):
    r"""Bayesian linear regression with Gaussian priors, and known or unknown noise.

    .. math::
        \alpha \sim N(0, s_0^2), \quad \beta_j \sim N(0, s^2), \quad
        y_i \mid \alpha, \beta, \tau \sim N(\alpha + x_i^\top \beta, 1/\tau),

    with τ = 1/σ² fixed when ``noise_scale`` σ is given (the exact posterior of
    (α, β) is then Gaussian, reached by one natural-gradient step under
    ``FullRankGaussian``), and otherwise τ ~ Gamma(a, b), latent ``noise_precision``.
    E_q[log p] is written in the expected sufficient statistics — E[w], E[wwᵀ] of the
    Gaussian factors and E[log τ], E[τ] of the Gamma factor — using only XᵀX, Xᵀy and
    yᵀy, so the ELBO is exact and each factor's natural-gradient step of 1 is its
    closed-form coordinate-ascent update.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (N, D)
        Features; a DataFrame's column names become the ArviZ ``feature`` coordinate.
    y : array_like, shape (N,)
        Finite real responses.
    prior_scale, intercept_scale : float
        Prior standard deviations of the coefficients and of the intercept.
    noise_scale : float, optional
        Known noise standard deviation σ; None makes the noise precision a latent.
    noise_shape, noise_rate : float
        Gamma prior of the noise precision τ (unused when ``noise_scale`` is given).
    fit_intercept : bool
        Include the intercept α (latent ``intercept``).
    """

    vectorized = True
    default_families = {"noise_precision": Gamma}

    def __init__(self, X, y, prior_scale=1.0, intercept_scale=10.0, noise_scale=None,
                 noise_shape=1.0, noise_rate=1.0, fit_intercept=True):
        fit_intercept = check_flag(fit_intercept, "fit_intercept")
        gram = None
        if dask_data.is_dask(X, y):  # lazy; checked, and XᵀX, Xᵀy, yᵀy formed, in one pass
            self.X, self.feature_names, self.y, _, gram = dask_data.glm_data(
                X, y, response, gram_intercept=fit_intercept)
        else:
            self.X, self.feature_names = design_matrix(X)
            self.y = response(y, self.X.shape[0])
        n, d = self.X.shape
        self.prior_scale = check_positive_scalar(prior_scale, "prior_scale")
        self.intercept_scale = check_positive_scalar(intercept_scale, "intercept_scale")
        self.noise_scale = None if noise_scale is None else check_positive_scalar(
            noise_scale, "noise_scale")
        self.noise_shape = check_positive_scalar(noise_shape, "noise_shape")
        self.noise_rate = check_positive_scalar(noise_rate, "noise_rate")
        self.fit_intercept = fit_intercept

        self.latents = {"coef": Latent((d,), "real")}
        scales = [np.full(d, self.prior_scale)]
        if self.fit_intercept:
            self.latents = {"intercept": Latent((), "real"), **self.latents}
            scales.insert(0, np.array([self.intercept_scale]))
        if self.noise_scale is None:
            self.latents["noise_precision"] = Latent((), "positive")
        self._prior_var = np.concatenate(scales) ** 2  # in the column order of the design
        if gram is None:
            design = np.hstack([np.ones((n, 1)), self.X]) if self.fit_intercept else self.X
            gram = design.T @ design, design.T @ self.y, self.y @ self.y
        self._gram, self._xty, self._yty = gram
        self._columns = {"intercept": [0]} if self.fit_intercept else {}
        self._columns["coef"] = list(range(int(self.fit_intercept), d + int(self.fit_intercept)))
        self.observed_data = {"y": self.y}
        self.coords = {"feature": self.feature_names,
                       "obs": range(n) if dask_data.is_dask(self.X) else np.arange(n)}
        self.dims = {"coef": ["feature"], "y": ["obs"]}
        self.engine = ClosedForm(self._closed_form, self._check_factors, pass_families=True)

    # ---- the closed form in expected sufficient statistics ---------------------------
    def _real_keys(self, means):
        return [k for k in means if k != "noise_precision"]

    def _expected_square_error(self, means, families):
        """E‖y − Dw‖² and E[w²] per column, from the Gaussian factors' mean parameters."""
        g = self._gram
        m_parts, cols, second, within = [], [], [], 0.0
        for key in self._real_keys(means):
            idx = [c for name in factors.latent_names(key) for c in self._columns[name]]
            family, mu = families[key], means[key]
            within = within + family.trace_cov_from_mean(mu, g[np.ix_(idx, idx)])
            second.append(anp.reshape(family.second_moments_from_mean(mu), (-1,)))
            m_parts.append(family.loc_from_mean(mu))
            cols.extend(idx)
        order = np.argsort(cols)
        m_all = anp.concatenate(m_parts)[order]
        e2 = anp.concatenate(second)[order]
        sse = self._yty - 2 * anp.dot(m_all, self._xty) + anp.dot(m_all, anp.dot(g, m_all))
        return sse + within, e2

    def _closed_form(self, means, families):
        sse, e2 = self._expected_square_error(means, families)
        n = len(self.y)
        prior = anp.sum(-0.5 * (_LOG_2PI + np.log(self._prior_var)) - e2 / (2 * self._prior_var))
        if self.noise_scale is not None:
            s2 = self.noise_scale**2
            return prior - 0.5 * n * (_LOG_2PI + np.log(s2)) - sse / (2 * s2)
        e_log_tau, e_tau = means["noise_precision"][0], means["noise_precision"][1]
        a, b = self.noise_shape, self.noise_rate
        return (prior + 0.5 * n * (e_log_tau - _LOG_2PI) - 0.5 * e_tau * sse
                + (a - 1) * e_log_tau - b * e_tau + a * np.log(b) - special.gammaln(a))

    def _supported(self, posterior):
        gaussians = (MeanFieldGaussian, FullRankGaussian)
        want = {k: gaussians for k in posterior if k != "noise_precision"}
        if self.noise_scale is None:
            want["noise_precision"] = Gamma
        return want

    def _check_factors(self, posterior):
        check_factors(self, posterior, self._supported(posterior))

    # ---- exact answers with known noise ----------------------------------------------
    def exact_posterior(self):
        """With known noise: the exact posterior of (intercept, coef) as
        ``(mean, covariance)`` over the design's columns (intercept first)."""
        if self.noise_scale is None:
            raise ValueError("noise_scale: the exact posterior is Gaussian only with known "
                             "noise; this model has a latent noise precision")
        precision = np.diag(1 / self._prior_var) + self._gram / self.noise_scale**2
        cov = np.linalg.inv(precision)
        return cov @ self._xty / self.noise_scale**2, 0.5 * (cov + cov.T)

    def log_evidence(self):
        """With known noise: the exact log p(y), y ~ N(0, σ²I + D S Dᵀ), computed with
        the matrix determinant lemma and Woodbury's identity."""
        mean, cov = self.exact_posterior()
        s2, n = self.noise_scale**2, len(self.y)
        _, logdet_post = np.linalg.slogdet(cov)
        fit = self._yty / s2 - mean @ np.linalg.solve(cov, mean)
        return float(-0.5 * (n * _LOG_2PI + n * np.log(s2) + np.sum(np.log(self._prior_var))
                             - logdet_post + fit))

    # ---- predictions ------------------------------------------------------------------
    def draw_response(self, rng, eta, draws):
        """One response per draw and row, N(η, σ²) with the known noise scale or the
        drawn noise precision.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of the draws.
        eta : ndarray, shape (S, rows)
            Means α + xᵀβ at the draws.
        draws : dict
            {latent name: (S, *shape)}, the posterior draws ``eta`` comes from.
        """
        sd = np.sqrt(self._noise_var(draws, np.shape(eta)[0]))
        return eta + sd * rng.standard_normal(np.shape(eta))

    def expected_response(self, mean, var):
        """The mean of the response under q: E[η] = ``mean`` (``var``, the variance of η, is
        not needed)."""
        return np.array(mean, dtype=float)

    # ---- log densities at draws -------------------------------------------------------
    def _noise_var(self, draws, n_draws):
        if self.noise_scale is not None:
            return np.full((n_draws, 1), self.noise_scale**2)
        return 1 / np.asarray(draws["noise_precision"]).reshape(n_draws, 1)

    def pointwise_log_likelihood(self, draws):
        coef = np.asarray(draws["coef"])
        mean = coef @ self.X.T
        if self.fit_intercept:
            mean = mean + np.asarray(draws["intercept"])[:, None]
        var = self._noise_var(draws, coef.shape[0])
        return {"y": -0.5 * (_LOG_2PI + np.log(var) + (self.y - mean) ** 2 / var)}

    def log_joint(self, draws):
        lp = self.pointwise_log_likelihood(draws)["y"].sum(axis=1)
        w = np.concatenate([np.asarray(draws[name]).reshape(lp.shape[0], -1)
                            for name in self._columns], axis=1)
        lp = lp + np.sum(-0.5 * (_LOG_2PI + np.log(self._prior_var)) - w**2 / (2 * self._prior_var),
                         axis=1)
        if self.noise_scale is None:
            tau, a, b = np.asarray(draws["noise_precision"]), self.noise_shape, self.noise_rate
            lp = lp + (a - 1) * np.log(tau) - b * tau + a * np.log(b) - special.gammaln(a)
        return lp
