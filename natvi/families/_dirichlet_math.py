"""Closed forms in the concentrations α, shape (*batch, K), of the Dirichlet family, and of
the Beta family, the K = 2 case in the same layout (a Beta(a, b) is the first coordinate
of a Dirichlet(a, b)). One module for both, so that neither calls the other's internals.
"""

import numpy as np

from natvi.families._special import (
    _HALF_LOG_2PI,
    _entropy_core,
    _log_minus_digamma,
    _log_ratio_excess,
    _log_standard_gamma,
    _newton,
    _stirling_remainder,
    _x_trigamma_minus_one,
)
from natvi.lazy_modules import special


def trigamma_gap(alpha):
    """G = 1/ψ′(Σα) − Σ_k 1/ψ′(α_k) > 0, the Sherman–Morrison denominator of the Fisher.

    F = diag(d) − c 11ᵀ with d = ψ′(α), c = ψ′(Σα) has det F = c Π d · G. With
    R(x) = x − 1/ψ′(x) = (xψ′(x) − 1)/ψ′(x) ∈ (0, ½), G = Σ R(α_k) − R(Σα): the O(Σα) parts
    cancel analytically. The direct difference is the better of the two when its largest
    term 1/ψ′(Σα) is below R(Σα) (small concentrations), the R form otherwise.
    """
    total = np.sum(alpha, axis=-1)
    d, c = special.polygamma(1, alpha), special.polygamma(1, total)
    q_total = _x_trigamma_minus_one(total)
    r_form = np.sum(_x_trigamma_minus_one(alpha) / d, axis=-1) - q_total / c
    direct = 1 / c - np.sum(1 / d, axis=-1)
    return np.where(q_total > 1, direct, r_form)  # 1/c < R(Σα) = q/c


def fisher(alpha):
    d, c = special.polygamma(1, alpha), special.polygamma(1, np.sum(alpha, axis=-1))
    return d[..., None, :] * np.eye(alpha.shape[-1]) - c[..., None, None]


def fisher_vector_product(alpha, v):
    d, c = special.polygamma(1, alpha), special.polygamma(1, np.sum(alpha, axis=-1))
    return d * v - (c * np.sum(v, axis=-1))[..., None]


def fisher_solve(alpha, v):
    # Sherman–Morrison: (D − c11ᵀ)⁻¹ v = D⁻¹v + D⁻¹1 (1ᵀD⁻¹v) / G, G = 1/c − 1ᵀD⁻¹1.
    inv_d = 1 / special.polygamma(1, alpha)
    return inv_d * v + inv_d * (np.sum(inv_d * v, axis=-1) / trigamma_gap(alpha))[..., None]


def fisher_quadratic_form(alpha, v):
    # With x = Dv, S = 1ᵀD⁻¹1 and x̄ = 1ᵀv / S:
    # vᵀ(D − c11ᵀ)v = Σ_k d_k (v_k − x̄/d_k)² + (c G / S)(1ᵀv)², a sum of non-negative terms.
    d, c = special.polygamma(1, alpha), special.polygamma(1, np.sum(alpha, axis=-1))
    s = np.sum(1 / d, axis=-1)
    total_v = np.sum(v, axis=-1)
    centred = np.sum(d * (v - (total_v / s)[..., None] / d) ** 2, axis=-1)
    return centred + c * np.maximum(trigamma_gap(alpha), 0.0) / s * total_v**2


def log_normalizer(alpha):
    """log B(α) = Σ log Γ(α_k) − log Γ(Σα), by Stirling's form with σ = Σα:
    Σ α_k log(α_k/σ) − ½ Σ log α_k + ½ log σ + (K−1)/2 log 2π + Σ S(α_k) − S(σ),
    S the Stirling remainder (exact for every α > 0). The direct difference of log-gammas
    is inf − inf = NaN once they overflow (α_k ≳ 1e305), although log B(α) is moderate there
    (log B(1, 1e306) = −log 1e306), and loses O(σ log σ · ε) to cancellation before that.
    """
    k = alpha.shape[-1]
    total = np.sum(alpha, axis=-1)
    log_total = np.log(total)
    return (np.sum(alpha * (np.log(alpha) - log_total[..., None]) - 0.5 * np.log(alpha)
                   + _stirling_remainder(alpha), axis=-1)
            + 0.5 * log_total + (k - 1) * _HALF_LOG_2PI - _stirling_remainder(total))


def entropy(alpha):
    # H = log B(α) − Σ(α_k − 1)ψ(α_k) + (Σα − K)ψ(Σα), regrouped with the bounded
    # g(x) = log Γ(x) − (x−1)ψ(x) − ½ log x + x and r(x) = log x − ψ(x): the O(α log α) terms
    # cancel analytically, which keeps the entropy accurate for large concentrations.
    k = alpha.shape[-1]
    total = np.sum(alpha, axis=-1)
    return (np.sum(_entropy_core(alpha) + 0.5 * np.log(alpha), axis=-1) - _entropy_core(total)
            + (k - 1) * _log_minus_digamma(total) - (k - 0.5) * np.log(total))


def log_prob_interior(alpha, z):
    """log Dir(z | α) for z with positive coordinates, in a form stable for large α.

    With σ = Σα and t_k = σ z_k / α_k (≈ 1 near the mode), exactly:
    log q = −Σ α_k D(t_k) + σ(Σz − 1) − Σ log z_k + ½ Σ log α_k − ½ log σ − (K−1)/2 log 2π
            − Σ S(α_k) + S(σ),
    with D(t) = t − 1 − log t and S the Stirling remainder; the direct form cancels
    O(σ log σ) terms.
    """
    k = alpha.shape[-1]
    total = np.sum(alpha, axis=-1, keepdims=True)
    excess = _log_ratio_excess((total * z - alpha) / alpha,
                               np.log(total) + np.log(z) - np.log(alpha))
    total = total[..., 0]
    return (-np.sum(alpha * excess, axis=-1) + total * (np.sum(z, axis=-1) - 1)
            - np.sum(np.log(z), axis=-1) + 0.5 * np.sum(np.log(alpha), axis=-1)
            - 0.5 * np.log(total) - (k - 1) * _HALF_LOG_2PI
            - np.sum(_stirling_remainder(alpha), axis=-1) + _stirling_remainder(total))


def kl(alpha0, alpha1):
    """KL(Dir(α₀) ‖ Dir(α₁))."""
    mean_log = special.digamma(alpha0) - special.digamma(np.sum(alpha0, axis=-1))[..., None]
    return (log_normalizer(alpha1) - log_normalizer(alpha0)
            + np.sum((alpha0 - alpha1) * mean_log, axis=-1))


def check_mean_log(mu):
    """Validate μ = E[log z] (last axis K): inside the mean domain Σ_k exp(μ_k) < 1."""
    mu = np.asarray(mu, dtype=float)
    if not np.all(np.isfinite(mu)):
        raise ValueError("mean_params: expected finite values")
    # exp(E log z_k) ≤ E z_k (Jensen, strict for a non-degenerate law), and Σ E z_k = 1; every
    # μ with Σ exp(μ_k) < 1 is attained (the set is the interior of the hull of {log z}).
    if not np.all(special.logsumexp(mu, axis=-1) < 0):
        raise ValueError("mean_params: expected E[log z_k] < 0 with Σ_k exp(E[log z_k]) < 1")
    return mu


def inverse_digamma(y):
    """x > 0 with ψ(x) = y: Minka's start, then Newton (concave ψ: monotone from below)."""
    with np.errstate(divide="ignore"):  # the branch not taken may divide by zero at y = −γ
        x = np.where(y >= -2.22, np.exp(np.minimum(y, 700.0)) + 0.5, -1 / (y + np.euler_gamma))
    for _ in range(20):  # a starting point only: Newton on the full system follows
        step = (special.digamma(x) - y) / special.polygamma(1, x)
        # ψ is concave, so a Newton step from either side lands at or below the root; the
        # clip keeps a first step from above inside (0, ∞).
        x = np.maximum(x - step, x / 8)
        if np.all(np.abs(step) <= 1e-12 * x):
            break
    return x


def alpha_from_mean_log(mu):
    """Concentrations α with ψ(α_k) − ψ(Σα) = μ_k (the Dirichlet maximum-likelihood equations).

    Start after Minka (2000, "Estimating a Dirichlet distribution"): the large-precision
    approximation Σα ≈ (K−1) / (−2 logsumexp μ), from ψ(x) ≈ log x − 1/(2x), then one step of
    his fixed point α_k = ψ⁻¹(μ_k + ψ(Σα)); then Newton in log α, whose Jacobian F diag(α) is
    solved by Sherman–Morrison. The fixed point alone contracts at the rate 1 − ψ′(Σα) G,
    which is 1 − O(1/Σα): ~1e5 iterations for 1e-12 at Σα = 1e4, hence Newton.
    """
    k = mu.shape[-1]
    total = (k - 1) / (-2 * special.logsumexp(mu, axis=-1))
    alpha = inverse_digamma(mu + special.digamma(total)[..., None])

    def step(log_alpha):
        a = np.exp(log_alpha)
        residual = special.digamma(a) - special.digamma(np.sum(a, axis=-1))[..., None] - mu
        return -fisher_solve(a, residual) / a

    return np.exp(_newton(step, np.log(alpha), axis=-1))


def log_sample(alpha, rng, n):
    """log z for ``n`` Dirichlet draws, shape (n, *batch, K), finite for tiny concentrations."""
    log_g = _log_standard_gamma(rng, alpha, (n,) + alpha.shape)
    # shifting by the row maximum first keeps the largest coordinate exact to rounding (log G
    # is often ~ −1e3 for small α, and logsumexp's absolute error would scale with it)
    shifted = log_g - np.max(log_g, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
