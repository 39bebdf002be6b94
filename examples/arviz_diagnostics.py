"""ArviZ diagnostics of a variational fit: what to look at, and what says nothing.

Bayesian logistic regression on the Wisconsin breast cancer data (569 tumours × 30
standardized features; Street, Wolberg & Mangasarian 1993, shipped with natvi), fitted
by natural gradients the default way (``family="auto"``, here one full-rank Gaussian over
the intercept and coefficients) and, for comparison, with mean-field Gaussians
(``family=natvi.MeanFieldGaussian``), then handed to ArviZ. The code runs on ArviZ 0.x
(``InferenceData``) and ArviZ ≥ 1.0 (``DataTree``) and branches on
``natvi.arviz_bridge.arviz_1()`` where the two differ.

1. ``result.to_arviz`` and ``az.summary``;
2. why r_hat and ESS of independent draws say nothing about a variational fit;
3. the Pareto k̂ of the importance weights (Yao, Vehtari, Simpson & Gelman 2018, "Yes,
   but did it work?: Evaluating variational inference"), by hand with ArviZ's PSIS and
   from ``result.diagnose()``, for the default fit;
4. full-rank (the default) vs mean-field: ELBO, k̂ and the verdict;
5. PSIS-LOO corrected for an approximate posterior (Magnusson, Andersen, Jonasson &
   Vehtari 2019), ``natvi.diagnostics.loo_approximate_posterior``;
6. writing the draws to netCDF (ArviZ ≥ 1.0 needs h5netcdf with h5py:
   ``pip install "natvi[netcdf]"``; ArviZ 0.x brings them itself).

Run:

    python examples/arviz_diagnostics.py [--out posterior.nc]
"""

import argparse
import logging
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

import natvi
from natvi import diagnostics
from natvi.arviz_bridge import arviz_1
from natvi.data import load_breast_cancer
from natvi.models import LogisticRegression

DRAWS = 2000
SEED = 1
CHAINS = 4  # pseudo-chains the draws are cut into for r_hat


def posterior_dataset(data):
    """The ``posterior`` group as an ``xarray.Dataset``, on either ArviZ generation."""
    post = data["posterior"]
    return post.to_dataset() if arviz_1() else post  # a DataTree node on 1.x, a Dataset on 0.x


def split_chains(data, n_chains):
    """The posterior draws cut into ``n_chains`` consecutive pseudo-chains, as a Dataset."""
    post = posterior_dataset(data)
    n = post.sizes["draw"] // n_chains
    return xr.Dataset({
        name: (("chain", "draw", *da.dims[2:]),
               da.values[0, :n_chains * n].reshape(n_chains, n, *da.shape[2:]))
        for name, da in post.data_vars.items()})


def log_weights(data):
    """log w = log p(x, z) − log q(z) per draw, from ``sample_stats`` (``lp``, ``log_q``)."""
    stats = data["sample_stats"]
    return np.asarray(stats["lp"]).ravel() - np.asarray(stats["log_q"]).ravel()


def psis(log_w):
    """ArviZ's Pareto-smoothed importance sampling of the weights: (smoothed log w, k̂)."""
    if arviz_1():
        from arviz_stats.base import array_stats

        # arviz-stats is written for log-likelihoods and smooths −ary: pass −log w.
        return array_stats.psislw(-log_w, r_eff=1.0, axis=-1)
    return az.psislw(log_w, reff=1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).parent / "output" / "arviz_diagnostics.nc"
    parser.add_argument("--out", default=str(default_out), help="netCDF file to write")
    args = parser.parse_args()
    pd.set_option("display.width", 120)

    X, y, names = load_breast_cancer()
    X = pd.DataFrame((X - X.mean(axis=0)) / X.std(axis=0), columns=names)
    model = LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)
    fits = {"full-rank": natvi.fit(model, seed=0),  # the default, family="auto"
            "mean-field": natvi.fit(model, family=natvi.MeanFieldGaussian, seed=0)}
    datas = {name: r.to_arviz(draws=DRAWS, seed=SEED) for name, r in fits.items()}

    print(f"== 1. to_arviz and az.summary (ArviZ {az.__version__}) ==")
    print(fits["full-rank"])  # status, ELBO, cost, and the family with the reason for it
    data = datas["full-rank"]
    groups = list(data.children) if arviz_1() else data.groups()
    print(f"default (full-rank) fit: {type(data).__name__} with groups {groups}")
    # 0.x reports an HDI (hdi_3%, hdi_97%), 1.x an ETI (eti89_lb, eti89_ub).
    print(az.summary(data, var_names=["intercept", "coef"], kind="stats").head(6))

    print("\n== 2. r_hat and ESS say nothing about a variational fit ==")
    logging.disable(logging.WARNING)  # ArviZ 0.x logs "Shape validation failed" for one chain
    try:
        diag = az.summary(data, var_names=["intercept", "coef"], kind="diagnostics")
    finally:
        logging.disable(logging.NOTSET)
    print(diag.head(4))
    ess = diag["ess_bulk"].astype(float)
    print(f"one chain of {DRAWS} independent draws: r_hat is NaN (it needs two chains or more) "
          f"and ess_bulk ranges {ess.min():.0f}–{ess.max():.0f}, about the number of draws.")
    for name, d in datas.items():
        rhat = az.rhat(split_chains(d, CHAINS))
        worst = max(float(np.max(rhat[v].values)) for v in rhat.data_vars)
        print(f"{name}: cut into {CHAINS} pseudo-chains, max r_hat = {worst:.3f}")
    print("Both are ≈ 1 by construction: the draws are independent draws from q, so r_hat\n"
          "and ESS measure the Monte Carlo error about q, not how far q is from the posterior.")

    print("\n== 3. Pareto k̂ of the importance weights (Yao et al. 2018) ==")
    # w = p(x, z) / q(z) at z ~ q. If q were the posterior, w would be constant. PSIS fits
    # a generalized Pareto distribution to the largest weights; its shape k̂ says how heavy
    # their tail is: k̂ < 0.5 good, 0.5 ≤ k̂ < min(1 − 1/log10 S, 0.7) ok (prefer
    # importance-weighted estimates), above that the approximation is unreliable.
    r = fits["full-rank"]
    smoothed, k_hat = psis(log_weights(data))
    same = float(k_hat) == r.pareto_k(DRAWS, seed=SEED)
    print(f"by hand with ArviZ's PSIS: k̂ = {float(k_hat):.2f}; "
          f"result.pareto_k({DRAWS}, seed={SEED}) gives the same: {same}")
    weights = np.exp(smoothed)  # normalized to sum to 1
    print(f"the {DRAWS} draws carry the information of {1 / np.sum(weights**2):.0f} draws "
          "after importance weighting (PSIS effective sample size)")
    d = r.diagnose(DRAWS, seed=SEED)  # a Diagnosis: k_hat (float) and message (str)
    print(f"result.diagnose(): k_hat = {d.k_hat:.2f}\n  {d.message}")

    print("\n== 4. full-rank (the default) vs mean-field ==")
    print(f"{'family':<12}{'ELBO':>10}{'k̂':>7}{'± se':>6}{'PSIS ESS':>10}  verdict")
    for name, r in fits.items():
        smoothed, k_hat = psis(log_weights(datas[name]))
        d = r.diagnose(DRAWS, seed=SEED)
        verdict = d.message.split(": ", 1)[1].split(".")[0].split(" (")[0]  # its first words
        print(f"{name:<12}{r.elbo:>10.2f}{float(k_hat):>7.2f}{d.se:>6.2f}"
              f"{1 / np.sum(np.exp(2 * smoothed)):>10.0f}  {verdict}")
    print("The full-rank Gaussian keeps the posterior correlations of correlated features; "
          "its\nhigher ELBO is a smaller KL(q ‖ posterior), and its k̂ says its draws can be "
          "used.\nMean-field Gaussians ignore those correlations: their k̂ says do not trust "
          "their draws.")

    print("\n== 5. approximate-posterior PSIS-LOO (Magnusson et al. 2019) ==")
    # az.loo on these draws would treat q as the posterior. The corrected LOO reweights
    # each draw by p(x, z) / q(z) as well as by 1 / p(yᵢ | z). On ArviZ ≥ 1.0 natvi calls
    # az.loo_approximate_posterior; on 0.x it runs the same algorithm on az.psislw.
    n_bad = {}
    for name, d in datas.items():
        with warnings.catch_warnings():  # the high-k̂ warning is summarized below
            warnings.simplefilter("ignore", UserWarning)
            loo = diagnostics.loo_approximate_posterior(d)
        n_bad[name] = int(np.sum(loo.pareto_k > 0.7))
        print(f"{name}: elpd_loo = {loo.elpd:.2f} (se {loo.se:.2f}), p_loo = {loo.p_loo:.2f}, "
              f"{n_bad[name]} of {loo.pareto_k.size} observations with LOO k̂ > 0.7")
    print(f"Trust the LOO of a fit only where its own k̂ (section 4) says its draws are usable: "
          f"here the full-rank one.\nThe mean-field elpd_loo, higher or not, cannot be trusted: "
          f"{n_bad['mean-field']} of its LOO k̂ are above 0.7.")

    print("\n== 6. netCDF ==")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        datas["full-rank"].to_netcdf(out)  # InferenceData.to_netcdf or DataTree.to_netcdf
    except (ImportError, ValueError) as exc:  # ArviZ ≥ 1.0 without h5netcdf and h5py
        print(f"cannot write netCDF ({exc}): pip install \"natvi[netcdf]\"")
        return
    back = az.from_netcdf(out)
    back_groups = list(back.children) if arviz_1() else back.groups()
    equal = np.array_equal(back["posterior"]["coef"].values,
                           datas["full-rank"]["posterior"]["coef"].values)
    print(f"full-rank draws written to {out}; az.from_netcdf reads back groups {back_groups}, "
          f"draws equal: {equal}")


if __name__ == "__main__":
    main()
