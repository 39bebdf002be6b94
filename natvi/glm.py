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

import numpy as np

from natvi import factors, quadrature

_LOG_2PI = np.log(2 * np.pi)


#: rows per chunk: temporaries stay (chunk × D) and (chunk × K nodes), never (N × ·)
CHUNK_ROWS = 8192


class Design:
    """The design columns of each real latent (``intercept`` → ones, ``coef`` → X), and
    the one pass over X that an ELBO evaluation needs.

    X is read in chunks of rows: each chunk is converted to float64 (so float32 or
    memory-mapped X is never copied whole), its square is formed in cache where a
    mean-field factor needs it, and the predictors' moments, the expectation and the
    gradient's pull-back all happen before the next chunk is read. Peak memory is X
    plus a few chunk-sized temporaries.

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

    def chunks(self):
        """(rows, X[rows] as float64) for consecutive chunks of rows."""
        n = self.X.shape[0]
        for start in range(0, n, CHUNK_ROWS):
            rows = slice(start, min(start + CHUNK_ROWS, n))
            yield rows, np.asarray(self.X[rows], dtype=float)

    def _columns(self, key, xc):
        """A factor's design on one chunk: its latents' columns side by side."""
        cols = [np.ones((xc.shape[0], 1)) if name == self.intercept else xc
                for name in factors.latent_names(key)]
        return cols[0] if len(cols) == 1 else np.hstack(cols)

    def _moments(self, parts, xc):
        """Mean and variance of the chunk's predictors, and X² if it was formed."""
        loc, var, x2 = np.zeros(xc.shape[0]), np.zeros(xc.shape[0]), None
        for key, q in parts.items():
            if factors.is_flat(q):
                d = self._columns(key, xc)
                loc += d @ q.loc
                var += np.einsum("ij,ij->i", d @ q.cov, d)
            elif key == self.intercept:
                loc += q.loc
                var += q.variance
            else:
                x2 = xc * xc if x2 is None else x2
                loc += xc @ q.loc
                var += x2 @ q.variance
        return loc, var, x2

    def predictor_moments(self, posterior):
        """Mean and variance of every ηᵢ under q, each of shape (N,)."""
        parts = self.factors_of(posterior)
        loc, var = np.empty(self.X.shape[0]), np.empty(self.X.shape[0])
        for rows, xc in self.chunks():
            loc[rows], var[rows], _ = self._moments(parts, xc)
        return loc, var

    def expected_log_likelihood(self, posterior, expectation):
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
        value = 0.0
        g_mean = {key: 0.0 for key in parts}
        g_cov = {key: 0.0 for key in parts}
        for rows, xc in self.chunks():
            loc, var, x2 = self._moments(parts, xc)
            v, g_loc, g_var = expectation(rows, loc, var)
            value += v
            for key, q in parts.items():
                if factors.is_flat(q):
                    d = self._columns(key, xc)
                    g_mean[key] = g_mean[key] + d.T @ g_loc
                    g_cov[key] = g_cov[key] + d.T @ (g_var[:, None] * d)
                elif key == self.intercept:
                    g_mean[key] = g_mean[key] + np.sum(g_loc)
                    g_cov[key] = g_cov[key] + np.sum(g_var)
                else:
                    g_mean[key] = g_mean[key] + g_loc @ xc
                    g_cov[key] = g_cov[key] + g_var @ x2
        return value, {key: q.grad_mean_from_moments(np.asarray(g_mean[key]),
                                                       np.asarray(g_cov[key]))
                       for key, q in parts.items()}

    def weighted_gram(self, key, weights, full):
        """Dᵀ diag(w) D for a factor's design D, shape (d, d); only its diagonal, the
        weighted column sums of squares, when not ``full`` (chunked, like every pass)."""
        total = 0.0
        for rows, xc in self.chunks():
            d = self._columns(key, xc)
            w = weights[rows]
            total = total + (d.T @ (w[:, None] * d) if full else w @ (d * d))
        return total


#: what stands in for ∂/∂var E[log p] = ½E[f″] (Price), the curvature of a Gaussian step
CURVATURES = ("hessian", "ggn", "empirical_fisher")


def expected_log_likelihood(likelihood, y, loc, var, n_points=32, curvature="hessian"):
    """Σᵢ E[log p(yᵢ | ηᵢ)], ηᵢ ~ N(locᵢ, varᵢ), and its derivatives in loc and var:
    the likelihood's closed form when it has one, else Gauss–Hermite quadrature.

    ``curvature`` chooses the derivative in var, which sets the precision of a
    natural-gradient step on a Gaussian factor: ``"hessian"`` the exact one, ½E[f″]
    (the ELBO's own gradient); ``"ggn"`` half the generalized Gauss–Newton curvature at
    the predictor's mean, a delta-method approximation; ``"empirical_fisher"`` −½E[f′²],
    the squared per-example gradients of VOGN. The last two make the step a
    Gauss–Newton-type update whose fixed point is not exactly the ELBO's optimum.
    """
    if likelihood.expected is not None:
        value, g_loc, g_var = likelihood.expected(y, loc, var)
    else:
        value, g_loc, g_var = quadrature.expected_log_likelihood(likelihood, y, loc, var,
                                                                 n_points)
    if curvature == "ggn":
        g_var = 0.5 * likelihood.ggn(y, loc)
    elif curvature == "empirical_fisher":
        t, w = quadrature.gauss_hermite(n_points)
        g = likelihood.grad(y[:, None], loc[:, None] + np.sqrt(var)[:, None] * t)
        g_var = -0.5 * ((g * g) @ w)
    return value, g_loc, g_var


def expected_log_prior(posterior, prior_scales):
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
        if factors.is_flat(q):
            second = np.diagonal(q.cov) + q.loc**2
            grads[key] = np.concatenate([np.zeros(s2.size), np.diag(-0.5 / s2).ravel()])
        else:
            s2 = s2.reshape(q.batch_shape)
            second = q.loc**2 + q.variance
            grads[key] = np.stack([np.zeros(q.batch_shape), -0.5 / s2], axis=-1)
        value += float(np.sum(-0.5 * (_LOG_2PI + np.log(s2)) - second / (2 * s2)))
    return value, grads
