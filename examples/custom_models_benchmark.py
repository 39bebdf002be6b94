"""Benchmark: natvi and its peers on the custom models of examples/reference_models.py,
scored against the NUTS reference posteriors in tests/data/reference_posteriors.json.

Methods, all in this one process, on the same models (the PyMC copies are those of
examples/reference_nuts.py, checked there to be the same densities):

- natvi mean-field: ``natvi.fit(model, seed=s)``, every other setting at its default
  (mean-field Gaussian for real latents, LogNormal for positive, LogitNormal for (0, 1));
- natvi full-rank: ``natvi.fit(model, family=natvi.FullRankGaussian, seed=s)``;
- PyMC ADVI, ``pm.fit(method="advi")`` and ``pm.fit(method="fullrank_advi")``, at their
  defaults (10,000 steps of adagrad_window at learning rate 0.001) and at a tuned learning
  rate: per model and method, the rate of the grid below whose run from seed 0 ends with
  the best mean of PyMC's own −ELBO estimates over its last 1,000 steps, as a user could
  tune without a reference; the tuned rate is then run at every seed;
- pymc-extras ``fit_dadvi`` (deterministic ADVI, 30 fixed draws, trust-ncg) at its
  defaults.

natvi runs seeds 0–9 and the peers seeds 0–2 (--quick: natvi 0–2, the peers seed 0, a
two-rate grid and five models). Seconds are wall-clock and CPU time of the fitting call
alone (CPU time is the steadier number on a shared machine); PyMC's include building its
step function, with PyTensor's C code already compiled by an earlier, untimed run (the
tuning runs for ADVI, one warm-up run for DADVI), as on a user's second fit. Every
method is scored by 4,000 draws of its approximation on the constrained scale: max over
latent coordinates of |mean − reference mean| / reference sd, and the range of sd /
reference sd (the Monte Carlo error of these is about 2% of an sd). For natvi also its
status words, Pareto k̂ (1,000 draws), a count of the fits that say "converged" while a
mean is more than one reference sd off or k̂ is infinite, and a count of those that say
"unreliable" while every mean is within 0.1 sd and every sd within 10%. Prints a table per model and
method and saves a plot to docs/images/custom_models_benchmark.png. Run with natvi from
this checkout and the peers of the ``bench`` extra plus pymc-extras (``pip install -e .``
into a copy of the bench environment, then ``pip install pymc-extras``):

    python examples/custom_models_benchmark.py            # tens of minutes on 2 cores
    python examples/custom_models_benchmark.py --quick
"""

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import natvi

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_models as rm  # noqa: E402
import reference_nuts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "reference_posteriors.json"
PLOT = ROOT / "docs" / "images" / "custom_models_benchmark.png"
DRAWS = 4000
RATES = (0.003, 0.01, 0.03, 0.1)
QUICK_RATES = (0.01, 0.1)
QUICK_MODELS = ("linear_halfcauchy", "correlated_regression", "eight_schools_noncentered",
                "gp_poisson", "poisson_re_centered")
METHODS = ("natvi MF", "natvi FR", "ADVI", "ADVI tuned", "FR-ADVI", "FR-ADVI tuned", "DADVI")


# ---- references and scores ---------------------------------------------------------------
def reference_moments(name, model, stored):
    """(means, sds) of model ``name``'s reference posterior, in coordinate order."""
    keys = [f"{name}/{c}" for c in rm.coordinate_names(model)]
    rows = [stored["summaries"][k] for k in keys]
    return np.array([r["mean"] for r in rows]), np.array([r["sd"] for r in rows])


def score(draws, reference):
    """(max |mean error| / sd, min sd ratio, max sd ratio) of draws (S, D)."""
    mean, sd = reference
    err = np.abs(draws.mean(axis=0) - mean) / sd
    ratio = draws.std(axis=0, ddof=1) / sd
    if not np.all(np.isfinite(err)):
        return np.inf, np.nan, np.nan
    return float(err.max()), float(ratio.min()), float(ratio.max())


def flat_draws(model, draws):
    """{latent: (S, *shape)} → (S, D) in coordinate order."""
    return np.concatenate([np.reshape(draws[n], (len(draws[n]), -1)) for n in model.latents],
                          axis=1)


# ---- the methods -------------------------------------------------------------------------
def run_natvi(ref, family, seed):
    """One natvi fit: seconds, draws (S, D), status and k̂."""
    kwargs = {} if family is None else {"family": family}
    start, cpu = time.perf_counter(), time.process_time()
    result = natvi.fit(ref.model, seed=seed, **kwargs)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    draws = flat_draws(ref.model, result.sample(DRAWS, seed=seed + 100))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k_hat = float(result.pareto_k(1000, seed=seed + 200))
    return {"seconds": seconds, "cpu": cpu, "draws": draws, "status": result.status,
            "k_hat": k_hat}


def idata_draws(model, idata):
    """(S, D) draws of the natvi latents from a PyMC InferenceData."""
    post = idata.posterior
    return flat_draws(model, {n: np.asarray(post[n].values).reshape(-1, *model.latents[n].shape)
                              for n in model.latents})


def run_advi(ref, pm_model, method, rate, seed, hist=False):
    """One ``pm.fit``: seconds, draws, and (with ``hist``) PyMC's −ELBO trace."""
    import pymc as pm

    kwargs = {} if rate is None else {"obj_optimizer": pm.adagrad_window(learning_rate=rate)}
    with pm_model:
        start, cpu = time.perf_counter(), time.process_time()
        approx = pm.fit(method=method, random_seed=seed, progressbar=False, **kwargs)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        idata = approx.sample(DRAWS, random_seed=seed + 100)
    out = {"seconds": seconds, "cpu": cpu, "draws": idata_draws(ref.model, idata), "status": ""}
    if hist:
        out["hist"] = np.asarray(approx.hist)
    return out


def run_dadvi(ref, pm_model, seed):
    """One ``fit_dadvi`` at its defaults: seconds and draws."""
    from pymc_extras.inference import fit_dadvi

    start, cpu = time.perf_counter(), time.process_time()
    idata = fit_dadvi(model=pm_model, n_draws=DRAWS, random_seed=seed, progressbar=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "draws": idata_draws(ref.model, idata),
            "status": ""}


def tuned_rate(ref, pm_model, method, rates):
    """The rate of ``rates`` whose seed-0 run ends with the lowest mean −ELBO estimate over
    its last 1,000 steps (PyMC's own estimates: what a user has without a reference)."""
    best, best_loss = None, np.inf
    for rate in rates:
        try:
            hist = run_advi(ref, pm_model, method, rate, 0, hist=True)["hist"]
        except (FloatingPointError, ValueError, RuntimeError):
            continue
        loss = float(np.mean(hist[-1000:]))
        if np.isfinite(loss) and loss < best_loss:
            best, best_loss = rate, loss
    return best


def attempt(run, *args):
    """``run(*args)``, or a failed record when the method raises."""
    try:
        return run(*args)
    except Exception as exc:  # a peer's failure is a result to report, not a crash
        return {"seconds": np.nan, "cpu": np.nan, "draws": None,
                "status": f"error: {type(exc).__name__}"}


# ---- one model ---------------------------------------------------------------------------
def bench_model(name, stored, args):
    """{method: [records]} for model ``name``: each record has seconds, err, sd ratio range,
    status (and k̂ for natvi)."""
    ref = rm.MODELS[name]()
    reference = reference_moments(name, ref.model, stored)
    pm_model = reference_nuts.pymc_model(name, ref.data)
    rates = QUICK_RATES if args.quick else RATES
    runs = {}
    for method, family in (("natvi MF", None), ("natvi FR", natvi.FullRankGaussian)):
        runs[method] = [attempt(run_natvi, ref, family, s) for s in args.natvi_seeds]
    for method, pm_method in (("ADVI", "advi"), ("FR-ADVI", "fullrank_advi")):
        rate = tuned_rate(ref, pm_model, pm_method, rates)  # also compiles PyTensor's C code
        runs[method] = [attempt(run_advi, ref, pm_model, pm_method, None, s)
                        for s in args.peer_seeds]
        runs[f"{method} tuned"] = [
            {**attempt(run_advi, ref, pm_model, pm_method, rate, s), "rate": rate}
            for s in args.peer_seeds]
    attempt(run_dadvi, ref, pm_model, 0)  # untimed: PyTensor compiles its C code once
    runs["DADVI"] = [attempt(run_dadvi, ref, pm_model, s) for s in args.peer_seeds]
    for records in runs.values():
        for r in records:
            err, lo, hi = (np.inf, np.nan, np.nan) if r["draws"] is None else score(
                r.pop("draws"), reference)
            r.update(err=err, sd_lo=lo, sd_hi=hi)
            r.pop("draws", None)
    return runs


def converged_but_wrong(records):
    """natvi fits that say "converged" while a mean is > 1 sd off or k̂ is infinite."""
    return sum(r["status"] == "converged" and (r["err"] > 1 or not np.isfinite(r["k_hat"]))
               for r in records)


def unreliable_but_accurate(records):
    """natvi fits that say "unreliable" while every mean is within 0.1 sd and every sd
    within 10% of the reference (the status' false alarms)."""
    return sum(r["status"] == "unreliable" and r["err"] <= 0.1 and r["sd_lo"] >= 0.9
               and r["sd_hi"] <= 1.1 for r in records)


# ---- output ------------------------------------------------------------------------------
def row(name, method, records):
    seconds = np.array([r["seconds"] for r in records], float)
    cpu = np.array([r["cpu"] for r in records], float)
    err = np.array([r["err"] for r in records], float)
    lo = np.nanmin([r["sd_lo"] for r in records] + [np.nan])
    hi = np.nanmax([r["sd_hi"] for r in records] + [np.nan])
    words = {}
    for r in records:
        if r["status"]:
            words[r["status"]] = words.get(r["status"], 0) + 1
    status = ", ".join(f"{w} {n}" for w, n in words.items())
    if method.startswith("natvi"):
        status += (f"; conv&wrong {converged_but_wrong(records)}, unreliable&accurate "
                   f"{unreliable_but_accurate(records)}")
    elif "rate" in records[0]:
        status = f"lr {records[0]['rate']}" + (f"; {status}" if status else "")
    return (f"{name:<26}{method:<14}{len(records):>3}{np.nanmedian(seconds):>8.2f}"
            f"{np.nanmedian(cpu):>8.2f}"
            f"{np.median(err):>10.3g}{np.max(err):>10.3g}{lo:>7.2f}–{hi:<6.2f} {status}")


def print_table(results):
    print(f"\n{'model':<26}{'method':<14}{'n':>3}{'s med':>8}{'cpu med':>8}{'err med':>10}"
          f"{'err max':>10}{'sd ratio':>14}  status")
    print("s, cpu: median wall-clock and CPU seconds of the fitting call; "
          "err: max over coordinates of |mean − NUTS mean| / NUTS sd (median and worst over "
          "seeds); sd ratio: range over coordinates and seeds")
    for name, runs in results.items():
        for method in METHODS:
            print(row(name, method, runs[method]))
    natvi_records = [r for runs in results.values() for m in ("natvi MF", "natvi FR")
                     for r in runs[m]]
    print(f"\nnatvi fits that report \"converged\" while a mean is > 1 reference sd off or k̂ "
          f"is infinite: {converged_but_wrong(natvi_records)} of {len(natvi_records)}")
    print(f"natvi fits that report \"unreliable\" while every mean is within 0.1 sd and every "
          f"sd within 10%: {unreliable_but_accurate(natvi_records)} of {len(natvi_records)}")


def plot(results, path):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    cols = min(5, len(names))
    nrows = -(-len(names) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.0 * nrows), squeeze=False)
    colors = dict(zip(METHODS, plt.cm.tab10.colors, strict=False))
    for ax, name in zip(axes.flat, names, strict=False):
        for method in METHODS:
            recs = [r for r in results[name][method] if np.isfinite(r["seconds"])]
            if not recs:
                continue
            err = np.clip([r["err"] for r in recs], 1e-3, 1e3)
            ax.scatter([r["seconds"] for r in recs], err, s=12, alpha=0.7,
                       color=colors[method], label=method)
        ax.set(xscale="log", yscale="log", title=name, xlabel="seconds")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labels overlapped
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.axhline(0.1, color="grey", lw=0.5, ls=":")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("max |mean error| / sd")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"saved {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="natvi seeds 0–2, peers seed 0, two rates, five models")
    parser.add_argument("--models", nargs="+", choices=list(rm.MODELS))
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--json", type=Path, help="also write the records here")
    args = parser.parse_args(argv)
    args.natvi_seeds = range(3) if args.quick else range(10)
    args.peer_seeds = range(1) if args.quick else range(3)
    models = args.models or (QUICK_MODELS if args.quick else list(rm.MODELS))
    stored = json.loads(args.reference.read_text())
    missing = [m for m in models if m not in stored["models"]]
    if missing:
        raise SystemExit(f"no reference posterior for {missing}: run examples/reference_nuts.py")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    results = {}
    for name in models:
        start = time.perf_counter()
        results[name] = bench_model(name, stored, args)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    print_table(results)
    plot(results, args.plot)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
