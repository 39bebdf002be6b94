"""Monte Carlo expectations of a log joint, with natural gradients for every family.

For any log joint f(z) written with ``autograd.numpy``:

- **pathwise** for Gaussian factors and their transforms (LogNormal, LogitNormal): draw
  x = m + s·ε (or m + Lε), z = g⁻¹(x), and by the reparameterization trick
  ∇_m E[f] = E[∇ₓf] and ∇_v E[f] = E[∇ₓf·ε] / (2s) — for a full-rank factor
  ∇_Σ E[f] = ½ E[∇ₓf εᵀ] L⁻¹ (Stein's lemma); the family's chain rule then gives ∇_μ;
- **score function** for the others (Gamma, Beta, Dirichlet, Bernoulli, Categorical): the
  score of an exponential family is T(z) − μ, so ∇_η E[f] = Cov[T(z), f(z)] and the
  natural gradient ∇_μ E[f] = F⁻¹ Cov[T, f] is the regression coefficient of f(z) on
  T(z). The covariance is estimated with the sample mean of f as control variate,
  Σₛ (T(zₛ) − μ)(f(zₛ) − f̄) / (S − 1), which is unbiased (the leave-one-out baseline)
  and removes the variance the plain estimator Σₛ (T(zₛ) − μ) f(zₛ) / S carries from
  the mean of f.
"""

import autograd
import numpy as np

from natvi import factors
from natvi.engines.base import Engine
from natvi.validation import check_positive_int


def expected_log_joint(log_joint, posterior, latents, rng, n_samples=16, noise=None):
    """Monte Carlo estimate of E_q[log p(x, z)] and of its gradient in mean parameters.

    For a joint factor whose latents are mapped through bijections (see
    :mod:`natvi.factors`), the estimate is of E_q[log p(x, z) + log |dz/dx|]: the ELBO in
    z then adds the entropy of the Gaussian over the unconstrained coordinates.

    Parameters
    ----------
    log_joint : callable
        ``log_joint(z)`` for one draw ``z`` = {latent name: array}, written with
        ``autograd.numpy``; returns a scalar.
    posterior : dict
        {factor key: family instance}.
    latents : dict
        {latent name: natvi.model.Latent}, for splitting joint factors into latents.
    rng : numpy.random.Generator
        Source of every draw not given in ``noise``.
    n_samples : int
        Draws per estimate (at least 2 when a factor uses the score function).
    noise : dict, optional
        {factor key: standard noise (n_samples, ...)} of the reparameterizable factors
        (their ``standard_noise``), to use instead of fresh draws.

    Returns
    -------
    value : float
        Unbiased estimate of E_q[log p(x, z)].
    grads : dict
        {factor key: unbiased estimate of ∇_μ E_q[log p(x, z)]}.
    """
    n = check_positive_int(n_samples, "n_samples")
    pathwise = [key for key, q in posterior.items() if q.reparameterizable]
    scored = [key for key, q in posterior.items() if not q.reparameterizable]
    if scored and n < 2:
        raise ValueError(f"n_samples: score-function gradients (for {scored}) need at least "
                         f"2 draws, got {n}")

    eps = {key: posterior[key].standard_noise(rng, n) if noise is None else noise[key]
           for key in pathwise}
    x = {key: posterior[key].from_noise(eps[key]) for key in pathwise}
    z_scored = {key: posterior[key].sample(rng, n) for key in scored}
    mapped = [key for key in pathwise if factors.transformed(latents, key, posterior[key])]

    def f(x_one, s):
        z = {}
        for key in pathwise:
            q = posterior[key]
            z.update(factors.to_latents(latents, key, q, q.to_support(x_one[key])))
        for key in scored:
            z[key] = z_scored[key][s]
        value = log_joint(z)
        for key in mapped:
            value = value + factors.log_det_jacobian(latents, key, posterior[key], x_one[key])
        return value

    # One autograd pass per draw: measured 1.7× faster on eight schools than one pass over
    # the sum of all draws (a larger graph to trace and walk back).
    values = np.empty(n)
    grad_x = {key: np.empty_like(x[key]) for key in pathwise}
    value_and_grad = autograd.value_and_grad(f)
    for s in range(n):
        if pathwise:
            values[s], g = value_and_grad({key: x[key][s] for key in pathwise}, s)
            for key in pathwise:
                grad_x[key][s] = g[key]
        else:
            values[s] = f({}, s)

    grads = {key: posterior[key].pathwise_grad(grad_x[key], eps[key]) for key in pathwise}
    for key in scored:
        grads[key] = score_function_gradient(values, posterior[key], z_scored[key])
    return float(values.mean()), grads


def score_function_gradient(f_values, q, draws, control_variate=True):
    """The score-function estimate of ∇_μ E_q[f] from draws of ``q`` and f at them.

    Parameters
    ----------
    f_values : ndarray, shape (S,)
        f(zₛ) at each draw.
    q : family instance
        The factor the draws come from.
    draws : ndarray, shape (S, *batch, *event_shape)
        The draws zₛ.
    control_variate : bool
        Centre f at its sample mean (unbiased, S ≥ 2); False gives the plain estimator
        F⁻¹ Σₛ (T(zₛ) − μ) f(zₛ) / S, for comparison.
    """
    f_values = np.asarray(f_values, dtype=float)
    n = f_values.shape[0]
    t = q.sufficient_statistics(draws) - q.mean_params
    if control_variate:
        return q.fisher_solve(np.tensordot(f_values - f_values.mean(), t, axes=(0, 0)) / (n - 1))
    return q.fisher_solve(np.tensordot(f_values, t, axes=(0, 0)) / n)


class MonteCarlo(Engine):
    """E_q[log p(x, z)] of a log joint by Monte Carlo, fresh draws at every call (see
    :func:`expected_log_joint`): an unbiased, noisy estimate.

    Parameters
    ----------
    log_joint : callable
        ``log_joint(z)`` for one draw ``z`` = {latent name: array}, written with
        ``autograd.numpy``; returns a scalar.
    latents : dict
        {latent name: natvi.model.Latent}.
    n_samples : int
        Draws per estimate.
    observations : natvi.observations.Observations, optional
        The prior, per-row log-likelihood and data that ``log_joint`` sums, when the
        model declares them: the engine then takes minibatches (:meth:`on_rows`).
    """

    transforms = True
    #: the declared data are in memory: any rows are cheap to gather
    row_access = "strided"

    def __init__(self, log_joint, latents, n_samples=16, observations=None):
        self.log_joint, self.latents = log_joint, latents
        self.n_samples = check_positive_int(n_samples, "n_samples")
        self.observations = observations

    @property
    def n_rows(self):
        """Rows of the declared data (None without)."""
        return None if self.observations is None else self.observations.n_rows

    def on_rows(self, rows, scale):
        """This engine (its draws too) on the ``rows`` of the declared data, their
        log-likelihood times ``scale``."""
        return self.with_log_joint(self.observations.log_joint(rows, scale))

    def with_log_joint(self, log_joint):
        """This engine on another log joint."""
        return MonteCarlo(log_joint, self.latents, self.n_samples, self.observations)

    def expected_log_joint(self, posterior, rng=None):
        return expected_log_joint(self.log_joint, posterior, self.latents, rng, self.n_samples)
