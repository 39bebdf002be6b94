"""Is the ELBO natvi reports and optimizes the ELBO? Against an independent reference, on the
benchmark's four data sets.

For each data set (logistic regression, all priors N(0, 1), standardized features; see
examples/benchmark.py) and family (mean-field everywhere; full-rank where ``family="auto"``
chooses it), the default natural-gradient fit is run and, at every iterate, natvi's ELBO is
compared with :func:`natvi.reference.elbo` at the same q (no code shared with the engine:
Gauss–Hermite with 64 or 200 nodes, a Fourier-space split for wide predictors, its own
moments and entropy). Then scipy's L-BFGS-B maximizes the reference ELBO from natvi's
starting point, and natvi's converged means and sds are compared with that optimum. Run:

    python examples/elbo_accuracy.py
    python examples/elbo_accuracy.py --datasets breast_cancer caravan
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import optimize

import natvi
from natvi import reference

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import DATASETS, load, natvi_model  # noqa: E402

KEY = ("intercept", "coef")


def moments(posterior):
    """(mean, variances or covariance) of (intercept, coefficients) under q."""
    if KEY in posterior:
        q = posterior[KEY]
        return q.loc, q.cov
    return (np.concatenate([[posterior["intercept"].loc], posterior["coef"].loc]),
            np.concatenate([[posterior["intercept"].variance], posterior["coef"].variance]))


def pack(mean, cov):
    """Unconstrained coordinates: (m, log s), or (m, the Cholesky factor with log diagonal)."""
    if cov.ndim == 1:
        return np.concatenate([mean, 0.5 * np.log(cov)])
    chol = np.linalg.cholesky(cov)
    chol[np.diag_indices_from(chol)] = np.log(np.diag(chol))
    return np.concatenate([mean, chol[np.tril_indices(len(mean))]])


def unpack(u, k, full):
    if not full:
        return u[:k], np.exp(2 * u[k:])
    chol = np.zeros((k, k))
    chol[np.tril_indices(k)] = u[k:]
    chol[np.diag_indices(k)] = np.exp(np.diag(chol))
    return u[:k], chol


def reference_optimum(model, start, full):
    """L-BFGS-B on the reference ELBO over unconstrained coordinates, from ``start``."""
    mean, cov = moments(start)
    k = len(mean)
    evaluations = []

    def negative(u):
        m, c = unpack(u, k, full)
        if full:
            value, d_m, d_cov = reference.elbo(model, m, c @ c.T)
            d_chol = 2 * d_cov @ c
            d_chol[np.diag_indices(k)] *= np.diag(c)
            grad = np.concatenate([d_m, d_chol[np.tril_indices(k)]])
        else:
            value, d_m, d_var = reference.elbo(model, m, c)
            grad = np.concatenate([d_m, 2 * c * d_var])
        evaluations.append(value)
        return -value, -grad

    res = optimize.minimize(negative, pack(mean, cov), jac=True, method="L-BFGS-B",
                            options={"maxiter": 100_000, "maxfun": 100_000, "maxcor": 50,
                                     "gtol": 1e-12, "ftol": 0.0})
    m, c = unpack(res.x, k, full)
    return m, (np.diag(c @ c.T) if full else c), len(evaluations), -res.fun


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = parser.parse_args()
    print(f"{'data':<15} {'family':<10} {'iterates':>8} {'max |ELBO − ref|':>17} "
          f"{'at the end':>11} | {'max Δmean/|mean|':>16} {'max Δmean/sd':>13} "
          f"{'max Δsd/sd':>11} {'ref evals':>9} {'seconds':>8}")
    for name in args.datasets:
        X, y = load(name)
        model = natvi_model(X, y)
        families = [natvi.MeanFieldGaussian]
        if model.auto_family()[0] is natvi.FullRankGaussian:
            families.append(natvi.FullRankGaussian)
        for family in families:
            start = time.perf_counter()
            seen = [model.initial_posterior(
                {KEY: family} if family is natvi.FullRankGaussian
                else {"intercept": family, "coef": family})]
            result = natvi.fit(model, family=family, progress=False,
                               callback=lambda i, elbo, q, seen=seen: seen.append(q))
            # the history holds the ELBO natvi reported at each iterate (with the start)
            gaps = [abs(natvi_elbo - reference.elbo(model, *moments(q))[0])
                    for natvi_elbo, q in zip(result.history["elbo"], seen, strict=True)]
            full = family is natvi.FullRankGaussian
            ref_mean, ref_var, n_ref, _ = reference_optimum(model, seen[0], full)
            mean, cov = moments(result.posterior)
            var = np.diag(cov) if full else cov
            sd, ref_sd = np.sqrt(var), np.sqrt(ref_var)
            clear = np.abs(ref_mean) > ref_sd  # means clearly away from 0
            rel_mean = np.max(np.abs(mean - ref_mean)[clear] / np.abs(ref_mean[clear]),
                              initial=0.0)
            print(f"{name:<15} {family.__name__[:-8]:<10} {len(gaps):>8} {max(gaps):>17.1e} "
                  f"{gaps[-1]:>11.1e} | {rel_mean:>16.1e} "
                  f"{np.max(np.abs(mean - ref_mean) / ref_sd):>13.1e} "
                  f"{np.max(np.abs(sd - ref_sd) / ref_sd):>11.1e} {n_ref:>9} "
                  f"{time.perf_counter() - start:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
