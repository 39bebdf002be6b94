"""PSIS-corrected estimates: draws from q, reweighted towards the true posterior.

With draws zₛ ~ q and log weights log wₛ = log p(x, zₛ) − log q(zₛ), self-normalized
importance sampling turns q's draws into estimates of posterior expectations; Pareto
smoothing of the largest weights (PSIS; Vehtari, Simpson, Gelman, Yao & Gabry 2024)
stabilizes them, and its shape estimate k̂ says whether they can be trusted: below 0.7
(below min(1 − 1/log10 S, 0.7) for S draws) the corrected means, sds and quantiles
converge to the posterior's (Yao, Vehtari, Simpson & Gelman 2018), with an effective
sample size ESS = 1 / Σ w̃ₛ² of the normalized weights w̃.
"""

import warnings

import numpy as np

from natvi.diagnostics import k_threshold, pareto_k, psislw
from natvi.validation import as_rng, check_positive_int


class ImportanceDraws:
    """Draws from q with Pareto-smoothed importance weights towards the posterior.

    Made by :meth:`natvi.result.FitResult.importance`.

    Attributes
    ----------
    draws : dict
        {latent name: array (S, *shape)}: the draws from q.
    weights : ndarray (S,)
        Normalized Pareto-smoothed importance weights (they sum to 1).
    k_hat : float
        Pareto k̂ of the raw weights.
    ess : float
        Effective sample size 1 / Σ w̃ₛ² (at most S).
    reliable : bool
        k̂ below min(1 − 1/log10 S, 0.7): the corrected estimates can be trusted.
    """

    def __init__(self, draws, log_weights):
        log_weights = np.asarray(log_weights, dtype=float)
        self.draws = draws
        self.k_hat = pareto_k(log_weights, np.zeros_like(log_weights))
        if np.isinf(self.k_hat):  # equal weights (q is the posterior), or q leaves p's support
            smoothed = np.where(np.isfinite(log_weights), 0.0, -np.inf)
        else:
            smoothed = psislw(log_weights)[0]
        self.weights = np.exp(smoothed - np.max(smoothed))
        self.weights /= self.weights.sum()
        self.ess = float(1.0 / np.sum(self.weights**2))
        self.reliable = bool(self.k_hat < k_threshold(len(self.weights)))
        if not self.reliable:
            warnings.warn(f"Pareto k̂ = {self.k_hat:.2f} from {len(self.weights)} draws: "
                          f"importance-weighted estimates are unreliable (k̂ must be below "
                          f"{k_threshold(len(self.weights)):.2f}); fit a better family or "
                          f"draw more", UserWarning, stacklevel=3)

    def mean(self):
        """{latent name: posterior mean}, weighted."""
        return {name: np.tensordot(self.weights, z, axes=1) for name, z in self.draws.items()}

    def sd(self):
        """{latent name: posterior standard deviation}, weighted."""
        means = self.mean()
        return {name: np.sqrt(np.tensordot(self.weights, (z - means[name]) ** 2, axes=1))
                for name, z in self.draws.items()}

    def quantile(self, q):
        """{latent name: array (len(q), *shape)} of weighted posterior quantiles.

        ``q`` (probabilities in [0, 1]) is read off the weighted empirical distribution
        function, each draw holding its weight at the midpoint of its step (so that equal
        weights give NumPy's ``quantile`` with ``method="hazen"``).
        """
        q = np.atleast_1d(np.asarray(q, dtype=float))
        if q.ndim != 1 or not np.all((q >= 0) & (q <= 1)):
            raise ValueError(f"q: expected probabilities in [0, 1], got {q!r}")
        out = {}
        for name, z in self.draws.items():
            flat = z.reshape(len(z), -1)
            order = np.argsort(flat, axis=0)
            values = np.take_along_axis(flat, order, axis=0)
            cdf = np.cumsum(self.weights[order], axis=0) - 0.5 * self.weights[order]
            cols = [np.interp(q, cdf[:, j], values[:, j]) for j in range(flat.shape[1])]
            out[name] = np.stack(cols, axis=-1).reshape((len(q),) + z.shape[1:])
        return out

    def resample_index(self, n=None, seed=0):
        """Indices (n,) into the draws, ``n`` (default S) resampled by the weights.

        Systematic resampling: one uniform offset, n evenly spaced points on the weights'
        cumulative sum, so each draw appears ⌊n w̃ₛ⌋ or ⌈n w̃ₛ⌉ times (less variance than
        multinomial resampling); about ESS of them are distinct.
        """
        n = len(self.weights) if n is None else check_positive_int(n, "n")
        points = (as_rng(seed).random() + np.arange(n)) / n
        cdf = np.cumsum(self.weights)
        return np.minimum(np.searchsorted(cdf, points * cdf[-1], side="right"), len(cdf) - 1)

    def resample(self, n=None, seed=0):
        """{latent name: array (n, *shape)}: the draws at :meth:`resample_index`."""
        index = self.resample_index(n, seed)
        return {name: z[index] for name, z in self.draws.items()}

    def summary(self):
        """Text table: weighted mean, sd and the 3%, 50% and 97% quantiles of every value."""
        means, sds = self.mean(), self.sd()
        quantiles = self.quantile([0.03, 0.5, 0.97])
        rows = []
        for name, z in self.draws.items():
            shape = z.shape[1:]
            for idx in np.ndindex(shape):
                label = name + (f"[{', '.join(map(str, idx))}]" if shape else "")
                rows.append((label, means[name][idx], sds[name][idx],
                             *(quantiles[name][(k,) + idx] for k in range(3))))
        width = max(12, *(len(r[0]) for r in rows))
        head = (f"{'':<{width}}{'mean':>10}{'sd':>10}{'3%':>10}{'50%':>10}{'97%':>10}")
        lines = [f"PSIS-corrected posterior: {len(self.weights)} draws from q, "
                 f"k̂ = {self.k_hat:.2f}, ESS = {self.ess:.0f}"
                 + ("" if self.reliable else " (unreliable)"), head]
        lines += [f"{r[0]:<{width}}" + "".join(f"{v:>10.3f}" for v in r[1:]) for r in rows]
        return "\n".join(lines)

    def __repr__(self):
        return (f"ImportanceDraws(draws={len(self.weights)}, k_hat={self.k_hat:.3f}, "
                f"ess={self.ess:.1f}, reliable={self.reliable})")
