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


class Design:
    """The design columns of each real latent: ``"intercept"`` → ones, others → X.

    Parameters
    ----------
    X : ndarray, shape (N, D)
        Features (the columns of the coefficient latent).
    coef : str
        Name of the coefficient latent.
    intercept : str or None
        Name of the intercept latent, if any.
    """

    def __init__(self, X, coef="coef", intercept=None):
        self.X, self.coef, self.intercept = X, coef, intercept
        self._X2 = None

    def factors_of(self, posterior):
        """The factors over the intercept and the coefficients (others are skipped)."""
        names = {self.coef, self.intercept}
        return {key: q for key, q in posterior.items()
                if set(factors.latent_names(key)) <= names}

    @property
    def X2(self):
        """X², computed once (used by mean-field factors)."""
        if self._X2 is None:
            self._X2 = self.X**2
        return self._X2

    def matrix(self, key):
        """The design of a factor: its latents' columns side by side, shape (N, d)."""
        cols = [np.ones((self.X.shape[0], 1)) if name == self.intercept else self.X
                for name in factors.latent_names(key)]
        return cols[0] if len(cols) == 1 else np.hstack(cols)

    def predictor_moments(self, posterior):
        """Mean and variance of every ηᵢ under q, each of shape (N,)."""
        n = self.X.shape[0]
        loc, var = np.zeros(n), np.zeros(n)
        for key, q in self.factors_of(posterior).items():
            if factors.is_flat(q):
                d = self.matrix(key)
                loc += d @ q.loc
                var += np.einsum("ij,ij->i", d @ q.cov, d)
            elif key == self.intercept:
                loc += q.loc
                var += q.variance
            else:
                loc += self.X @ q.loc
                var += self.X2 @ q.variance
        return loc, var

    def pull_back(self, posterior, g_loc, g_var):
        """{factor key: ∇_μ} from the derivatives in the predictors' means and variances."""
        grads = {}
        for key, q in self.factors_of(posterior).items():
            if factors.is_flat(q):
                d = self.matrix(key)
                grads[key] = q.grad_mean_from_moments(d.T @ g_loc, d.T @ (g_var[:, None] * d))
            elif key == self.intercept:
                grads[key] = q.grad_mean_from_moments(np.sum(g_loc), np.sum(g_var))
            else:
                grads[key] = q.grad_mean_from_moments(self.X.T @ g_loc, self.X2.T @ g_var)
        return grads


def expected_log_likelihood(likelihood, y, loc, var, n_points=32):
    """Σᵢ E[log p(yᵢ | ηᵢ)], ηᵢ ~ N(locᵢ, varᵢ), and its derivatives in loc and var:
    the likelihood's closed form when it has one, else Gauss–Hermite quadrature."""
    if likelihood.expected is not None:
        return likelihood.expected(y, loc, var)
    return quadrature.expected_log_likelihood(likelihood, y, loc, var, n_points)


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
