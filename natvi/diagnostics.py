"""Did the variational fit work? Pareto k̂ and approximate-posterior LOO.

The importance weights w = p(x, z) / q(z) at draws z ~ q tell how far q is from
the posterior: the Pareto k̂ of their tail (Yao, Vehtari, Simpson and Gelman 2018,
"Yes, but did it work?") is small when q covers the posterior. The same weights
correct PSIS-LOO for draws that come from q instead of the posterior
(Magnusson, Andersen, Jonasson and Vehtari 2019).

Both use ArviZ's own Pareto smoothing (PSIS), whichever generation is installed.
"""

import warnings
from typing import NamedTuple

import numpy as np

from natvi.arviz_bridge import arviz_1
from natvi.lazy_modules import special
from natvi.validation import as_float_array, check_positive_int

#: PSIS fits a generalized Pareto to the largest ~S/5 weights and needs at least
#: 5 of them; ArviZ 0.x and 1.x round the tail size differently below 25 draws.
MIN_DRAWS = 25

# Log-weights spread less than this are equal to working precision: weights within a
# factor 1 + 1e-8 make importance sampling exact, and a tail fit would fit rounding noise.
_CONSTANT_SPREAD = 1e-8


class LooResult(NamedTuple):
    """PSIS-LOO for an approximate posterior; printed as a table, as ArviZ prints ``az.loo``.

    elpd : float, expected log pointwise predictive density, Σᵢ elpdᵢ
    se : float, its standard error, √(N·var(elpdᵢ)) with ddof=1
    p_loo : float, effective number of parameters, lppd − elpd
    pareto_k : array, k̂ per observation
    elpd_i : array, elpdᵢ per observation
    n_draws : int or None, the number S of draws from q it was computed from
    """

    elpd: float
    se: float
    p_loo: float
    pareto_k: np.ndarray
    elpd_i: np.ndarray
    n_draws: int | None = None

    def __str__(self):
        # k̂ above min(1 − 1/log10 S, 0.7) is unreliable; 0.7 when S is not known
        good_k = 0.7 if self.n_draws is None else k_threshold(self.n_draws)
        k = np.ravel(self.pareto_k)
        counts = [np.sum(k <= good_k), np.sum((k > good_k) & (k <= 1)), np.sum(k > 1)]
        labels = [f"(-Inf, {good_k:.2f}]   (good)", f"   ({good_k:.2f}, 1]   (bad)",
                  "    (1, Inf)   (very bad)"]
        width = max(5, len(str(max(counts))))
        draws = "" if self.n_draws is None else f"{self.n_draws} draws from q and "
        return "\n".join([
            "Approximate-posterior PSIS-LOO: draws from q, PSIS-corrected for q "
            "(Magnusson et al. 2019)",
            f"Computed from {draws}{k.size} observations log-likelihood matrix.",
            "",
            "         Estimate       SE",
            f"elpd_loo {self.elpd:8.2f}  {self.se:7.2f}",
            f"p_loo    {self.p_loo:8.2f}        -",
            "------",
            "",
            "Pareto k diagnostic values:",
            f"{'':26}{'Count':>{width}} {'Pct.':>6}",
            *(f"{label:26}{n:{width}d} {100 * n / max(k.size, 1):6.1f}%"
              for label, n in zip(labels, counts, strict=True)),
        ])

    def __repr__(self):
        return (f"LooResult(elpd={self.elpd:.6g}, se={self.se:.6g}, p_loo={self.p_loo:.6g}, "
                f"pareto_k=<array {np.shape(self.pareto_k)}>, "
                f"elpd_i=<array {np.shape(self.elpd_i)}>, n_draws={self.n_draws})")


def psislw(log_weights):
    """Pareto-smoothed, normalized log-weights and k̂ along the last axis (ArviZ's PSIS).

    Parameters
    ----------
    log_weights : array (..., S)
        Raw log importance weights.

    Returns
    -------
    smoothed : array (..., S)
        Smoothed log-weights, normalized to log-sum-exp 0.
    k_hat : array (...)
        Pareto shape estimate per row.
    """
    if arviz_1():
        from arviz_stats.base import array_stats

        # arviz_stats smooths −ary (it is built for log-likelihoods), hence the sign.
        smoothed, k_hat = array_stats.psislw(-log_weights, r_eff=1.0, axis=-1)
    else:
        import arviz as az

        smoothed, k_hat = az.psislw(log_weights, reff=1.0)
    # ArviZ ≥ 1.0 gives NaN where the tail is too short to fit (25 draws): no reliable
    # smoothing, as ArviZ 0.x's inf says
    return smoothed, np.where(np.isnan(k_hat), np.inf, k_hat)


def pareto_k(log_p, log_q):
    """Pareto k̂ of the importance weights log w = log p(x, z) − log q(z), z ~ q.

    Parameters
    ----------
    log_p : array (S,)
        log p(x, z) at each draw (normalizing constant not needed).
    log_q : array (S,)
        log q(z) at the same draws, on the same parameterization of z.

    Returns
    -------
    float
        k̂: below 0.5 is good; ``inf`` if log p is not finite at some draw;
        ``-inf`` if all weights are equal (q is the posterior up to rounding).
    """
    log_p, log_q = _check_log_densities(log_p, log_q)
    if not np.all(np.isfinite(log_p)):
        # q puts mass where the target has none (or log p failed): no tail to fit.
        return float("inf")
    log_w = log_p - log_q
    if np.ptp(log_w) < _CONSTANT_SPREAD:
        return float("-inf")
    _, k_hat = psislw(log_w)
    return float(k_hat)


def k_threshold(n_draws):
    """Largest k̂ for which PSIS with ``n_draws`` draws is reliable: min(1 − 1/log10 S, 0.7)."""
    n_draws = check_positive_int(n_draws, "n_draws")
    if n_draws < MIN_DRAWS:
        raise ValueError(f"n_draws: expected at least {MIN_DRAWS}, got {n_draws}")
    return min(1.0 - 1.0 / np.log10(n_draws), 0.7)


class Diagnosis(NamedTuple):
    """Pareto k̂ of a fit and its plain-words reading.

    k_hat : float, the Pareto k̂ of log p(x, z) − log q(z) over the draws
    message : str, what it means, from :func:`verdict`
    se : float, the standard error of k̂ (:func:`k_hat_se`)
    """

    k_hat: float
    message: str
    se: float = float("nan")

    def __str__(self):
        return self.message


#: what to try when k̂ is high, unless the caller knows better
SUGGESTIONS = ("a full-rank family", "more draws",
               "reparameterizing the model (e.g. non-centered)")


def tail_draws(n_draws):
    """Draws in the tail PSIS fits a generalized Pareto to, ⌈min(S/5, 3√S)⌉, of ``n_draws``
    S draws."""
    return int(np.ceil(min(n_draws / 5, 3 * np.sqrt(n_draws))))


def k_hat_se(k_hat, n_draws):
    """Standard error of a Pareto k̂ ``k_hat`` from ``n_draws`` draws: (1 + k)/√M with M =
    :func:`tail_draws`, the asymptotic sd of a generalized-Pareto shape fitted to M
    exceedances (Hosking & Wallis 1987), k floored at 0; 0 for an infinite k̂. It matches
    the spread of k̂ over seeds on the benchmark data (examples/diagnostics_stability.py):
    ±0.1 at 4000 draws, shrinking only as S^(−1/4)."""
    k = max(float(k_hat), 0.0)
    return (1 + k) / np.sqrt(tail_draws(n_draws)) if np.isfinite(k) else 0.0


def verdict(k_hat, n_draws, suggestions=SUGGESTIONS):
    """Plain-words reading of the Pareto k̂ ``k_hat`` of a variational fit from ``n_draws``
    draws (inf allowed, NaN not).

    k̂ below 0.5 is good, up to min(1 − 1/log10 S, 0.7) ok, above unreliable. k̂ itself
    varies from seed to seed (:func:`k_hat_se`); where k̂ ± 2 standard errors spans more
    than one of these, the verdict says it is borderline and names them, so that two seeds
    never give two different plain verdicts. ``suggestions`` lists what to try when k̂ is
    high (a fit that is already full-rank should not be told to try a full-rank family).
    """
    k_hat = as_float_array(k_hat, "k_hat")
    if k_hat.ndim != 0 or np.isnan(k_hat):
        raise ValueError(f"k_hat: expected one number (inf allowed), got {k_hat!r}")
    k_hat = float(k_hat)
    threshold = k_threshold(n_draws)
    if threshold <= k_hat < 0.5:
        return (f"Pareto k̂ = {k_hat:.2f} from {n_draws} draws: unreliable with so few draws "
                f"(threshold {threshold:.2f}). Draw more (k̂ below 0.5 needs about 100 "
                f"draws to be trusted).")
    se = k_hat_se(k_hat, n_draws)
    head = f"Pareto k̂ = {k_hat:.2f}" + (f" ± {se:.2f}" if se else "") + f" from {n_draws} draws"
    zones = [name for name, lo, hi in (("good", -np.inf, 0.5), ("ok", 0.5, threshold),
                                       ("unreliable", threshold, np.inf))
             if k_hat - 2 * se <= hi and k_hat + 2 * se >= lo]
    compare = (" and compare with a full-rank family"
               if any("full-rank" in s for s in suggestions) else "")
    tries = list(suggestions)
    advice = (f" Try {tries[0]}." if len(tries) == 1 else
              f" Try {', '.join(tries[:-1])}, or {tries[-1]}." if tries else "")
    if zones == ["good"]:
        return (f"{head}: good. The variational posterior is close enough to the true "
                "posterior for its draws and summaries to be used directly.")
    if zones == ["ok"]:
        return (f"{head}: ok, but the variational posterior is not the true posterior. "
                f"Prefer importance-weighted (PSIS) estimates to raw draws{compare}.")
    if zones == ["unreliable"]:
        return (f"{head}: unreliable. The variational posterior misses much of the true "
                f"posterior; do not trust its draws.{advice}")
    between = f"{zones[0]} to {zones[-1]}"
    if "unreliable" not in zones:
        return (f"{head}: borderline, {between} (k̂ ± 2 standard errors spans both). "
                f"The draws are usable; for estimates that do not depend on how close q "
                f"is, prefer importance-weighted (PSIS) ones{compare}, and draw more to "
                f"settle the verdict.")
    return (f"{head}: borderline, {between} (k̂ ± 2 standard errors spans "
            f"{'all three' if len(zones) == 3 else 'both'}). Treat the draws with caution: "
            f"prefer importance-weighted (PSIS) estimates and draw more to settle the "
            f"verdict.{advice}")


def loo_approximate_posterior(data, var_name=None):
    """PSIS-LOO corrected for draws from an approximate posterior (Magnusson et al. 2019).

    Parameters
    ----------
    data : InferenceData or DataTree
        As made by :func:`natvi.arviz_bridge.to_arviz`: groups ``log_likelihood`` and
        ``sample_stats`` with ``lp`` (log p(x, z)) and ``log_q`` (log q(z)).
    var_name : str, optional
        Observed variable of ``log_likelihood`` to use; needed when there are several.

    Returns
    -------
    LooResult
    """
    import arviz as az

    log_p, log_q, name = _loo_inputs(data, var_name)
    if arviz_1():
        res = az.loo_approximate_posterior(data, log_p, log_q, pointwise=True, var_name=name)
        return LooResult(float(res.elpd), float(res.se), float(res.p),
                         np.asarray(res.pareto_k), np.asarray(res.elpd_i), log_p.size)
    log_lik = np.asarray(data["log_likelihood"][name].transpose("chain", "draw", ...))
    obs_shape = log_lik.shape[2:]
    # (chain, draw, *obs) -> (obs, chain·draw): PSIS runs along the last axis.
    log_lik = log_lik.reshape(log_p.size, -1).T
    elpd_i, k_hat, p_loo_i = _loo_pointwise(log_lik, log_p, log_q)
    _warn_pareto_k(k_hat, log_p.size)
    n_obs = elpd_i.size
    se = np.sqrt(n_obs * np.var(elpd_i, ddof=1)) if n_obs > 1 else 0.0
    return LooResult(float(elpd_i.sum()), float(se), float(p_loo_i.sum()),
                     k_hat.reshape(obs_shape), elpd_i.reshape(obs_shape), log_p.size)


def _loo_pointwise(log_lik, log_p, log_q):
    """elpdᵢ, k̂ᵢ and p_looᵢ from log-likelihoods (N, S) at draws from q."""
    # Leaving yᵢ out and moving from q to p(z | x) both reweight the draws:
    # log rᵢₛ = −log p(yᵢ | zₛ) + log p(x, zₛ) − log q(zₛ). Shifts by constants only
    # keep the exponentials in range; the smoothed weights are normalized.
    correction = log_p - log_q
    log_ratios = -log_lik + (correction - correction.max())
    log_ratios -= log_ratios.max(axis=-1, keepdims=True)
    smoothed, k_hat = psislw(log_ratios)
    elpd_i = special.logsumexp(smoothed + log_lik, axis=-1)
    lppd_i = special.logsumexp(log_lik, axis=-1) - np.log(log_lik.shape[-1])
    return elpd_i, np.asarray(k_hat), lppd_i - elpd_i


def _warn_pareto_k(k_hat, n_draws):
    # The same warning ArviZ ≥ 1.0 gives from its own loo_approximate_posterior.
    good_k = min(1 - 1 / np.log10(n_draws), 0.7)
    if np.any(k_hat > good_k):
        warnings.warn(
            f"Estimated shape parameter of Pareto distribution is greater than {good_k:.2f} "
            "for one or more samples. You should consider using a more robust model, this is "
            "because importance sampling is less likely to work well if the marginal posterior "
            "and LOO posterior are very different. This is more likely to happen with a "
            "non-robust model and highly influential observations.",
            UserWarning,
            stacklevel=3,
        )


def _check_log_densities(log_p, log_q):
    log_p = as_float_array(log_p, "log_p")
    log_q = as_float_array(log_q, "log_q")
    if log_p.ndim != 1 or log_q.ndim != 1:
        raise ValueError(f"log_p, log_q: expected 1-D arrays (S,), got shapes "
                         f"{log_p.shape} and {log_q.shape}")
    if log_p.shape != log_q.shape:
        raise ValueError(f"log_p, log_q: expected the same number of draws, got "
                         f"{log_p.size} and {log_q.size}")
    if log_p.size < MIN_DRAWS:
        raise ValueError(f"log_p: expected at least {MIN_DRAWS} draws for a Pareto fit, "
                         f"got {log_p.size}")
    if not np.all(np.isfinite(log_q)):
        raise ValueError("log_q: expected finite values at draws from q, found NaN or inf")
    return log_p, log_q


def _loo_inputs(data, var_name):
    """log p and log q per draw (flattened over chain and draw) and the variable name."""
    if "sample_stats" not in data or "log_likelihood" not in data:
        raise ValueError("data: expected groups sample_stats and log_likelihood, "
                         "as made by natvi's to_arviz with a pointwise log-likelihood")
    if data["posterior"].attrs.get("natvi_draws") == "psis_resampled":
        raise ValueError("data: holds draws resampled by PSIS weights (to_arviz(psis=True)), "
                         "which repeat, and which this correction for draws of q does not "
                         "apply to: for LOO, use to_arviz() without psis")
    stats = data["sample_stats"]
    if "lp" not in stats.data_vars or "log_q" not in stats.data_vars:
        raise ValueError("data: expected sample_stats variables 'lp' (log p(x, z)) and "
                         "'log_q' (log q(z)), as made by natvi's to_arviz")
    # Flattened in the same (chain, draw) order as the log-likelihood.
    log_p, log_q = (np.asarray(stats[key].transpose("chain", "draw")).ravel()
                    for key in ("lp", "log_q"))
    log_p, log_q = _check_log_densities(log_p, log_q)
    if not np.all(np.isfinite(log_p)):
        raise ValueError("data: sample_stats 'lp' is not finite at some draws; "
                         "the variational posterior leaves the model's support")
    var_name = observed_variable(list(data["log_likelihood"].data_vars), var_name)
    log_lik = np.asarray(data["log_likelihood"][var_name])
    if not np.all(np.isfinite(log_lik)):
        raise ValueError(f"data: log_likelihood {var_name!r} has NaN or inf values")
    return log_p, log_q, var_name


def observed_variable(names, var_name):
    """``var_name``, checked to be one of the observed variables ``names``; the only one
    when it is None."""
    if var_name is None:
        if len(names) != 1:
            raise ValueError(f"var_name: expected one of {names}, got None")
        return names[0]
    if var_name not in names:
        raise ValueError(f"var_name: expected one of {names}, got {var_name!r}")
    return var_name
