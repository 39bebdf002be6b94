"""Reference posteriors of the custom models in examples/reference_models.py, by long NUTS runs
of PyMC, stored as small summaries in tests/data/reference_posteriors.json.

Each model is written again in PyMC, with the same latent names and shapes. Before
sampling, the script checks that the two are the same density: PyMC's log density on the
constrained scale (``compile_logp(jacobian=False)``, fed the transformed values of each
point) minus natvi's log joint must be one constant at random points (the model code keeps
normalizing constants, so the constant is ~0).

NUTS: 4 chains × 2,000 draws after 2,000 tuning steps, target_accept 0.9, raised to 0.95
and then 0.99 while a run has divergences or R̂ > 1.01 (dense mass-matrix adaptation for
the regression whose predictors are nearly collinear). A centered model that still has
divergences at 0.99 takes its reference from its non-centered twin, the same posterior
in other coordinates (θ = μ + τ θ̃, ε = σ ε̃), with R̂ and ESS computed on the transformed
draws. Every stored model must reach R̂ ≤ 1.01; the summaries hold, per coordinate on the
constrained scale, mean, sd, 5/25/50/75/95% quantiles, R̂, bulk and tail ESS and the MCSE
of the mean; per model the settings, divergences, seconds and the density check; and the
library versions. Run (PyMC comes with ``pip install 'natvi[bench]'``):

    python examples/reference_nuts.py                       # all models, ~15 min on 2 cores
    python examples/reference_nuts.py --models gp_poisson   # update one model in the file
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import arviz as az
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_models as rm  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "reference_posteriors.json"
TARGET_ACCEPT = (0.9, 0.95, 0.99)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_R_HAT = 1.01
#: centered model: (its non-centered twin, the twin's draws → this model's latents)
TWINS = {
    "eight_schools_centered": ("eight_schools_noncentered", lambda d: {
        "mu": d["mu"], "tau": d["tau"],
        "theta": d["mu"][..., None] + d["tau"][..., None] * d["theta_raw"]}),
    "poisson_re_centered": ("poisson_re_noncentered", lambda d: {
        "b0": d["b0"], "beta": d["beta"], "sigma": d["sigma"],
        "eps": d["sigma"][..., None] * d["eps_raw"]}),
}
DENSE = {"correlated_regression"}


# ---- the models in PyMC ------------------------------------------------------------------
def pymc_model(name, data):
    """The PyMC copy of reference model ``name`` on its ``data``."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        if name in ("linear_halfcauchy", "interaction_halfnormal", "correlated_regression"):
            d = data["X"].shape[1]
            alpha = pm.Normal("alpha", 0.0, 5.0)
            if name == "linear_halfcauchy":
                beta = pm.Normal("beta", 0.0, 2.5, shape=d)
                sigma = pm.HalfCauchy("sigma", 2.5)
            elif name == "interaction_halfnormal":
                beta = pm.Normal("beta", 0.0, pm.HalfNormal("tau", 1.0), shape=d)
                sigma = pm.HalfNormal("sigma", 1.0)
            else:
                beta = pm.Normal("beta", 0.0, 1.0, shape=d)
                sigma = pm.HalfNormal("sigma", 1.0)
            pm.Normal("y", alpha + pt.dot(data["X"], beta), sigma, observed=data["y"])
        elif name.startswith("eight_schools"):
            mu, tau = pm.Normal("mu", 0.0, 5.0), pm.HalfCauchy("tau", 5.0)
            if name.endswith("noncentered"):
                theta = mu + tau * pm.Normal("theta_raw", 0.0, 1.0, shape=8)
            else:
                theta = pm.Normal("theta", mu, tau, shape=8)
            pm.Normal("y", theta, data["sigma"], observed=data["y"])
        elif name == "gp_poisson":
            b0, w = pm.Normal("b0", 0.0, 2.0), pm.Normal("w", 0.0, 1.0, shape=12)
            ell = pt.exp(pm.Normal("log_ell", 0.0, 1.0))
            features = pt.exp(-0.5 * ((data["x"][:, None] - data["centres"][None, :]) / ell) ** 2)
            pm.Poisson("y", pt.exp(b0 + pt.dot(features, w)), observed=data["y"])
        elif name == "ordered_mixture":
            mu1, gap = pm.Normal("mu1", 0.0, 5.0), pm.HalfNormal("gap", 5.0)
            w, sigma = pm.Beta("w", 2.0, 2.0), pm.HalfNormal("sigma", 2.0)
            pm.NormalMixture("y", w=pt.stack([1 - w, w]), mu=pt.stack([mu1, mu1 + gap]),
                             sigma=sigma, observed=data["y"])
        elif name.startswith("poisson_re"):
            n = data["y"].size
            b0, beta = pm.Normal("b0", 0.0, 2.0), pm.Normal("beta", 0.0, 1.0, shape=2)
            sigma = pm.HalfNormal("sigma", 1.0)
            if name.endswith("noncentered"):
                eps = sigma * pm.Normal("eps_raw", 0.0, 1.0, shape=n)
            else:
                eps = pm.Normal("eps", 0.0, sigma, shape=n)
            pm.Poisson("y", pt.exp(b0 + pt.dot(data["x"], beta) + eps), observed=data["y"])
        elif name == "robust_regression":
            alpha, beta = pm.Normal("alpha", 0.0, 5.0), pm.Normal("beta", 0.0, 2.5, shape=2)
            sigma, nu = pm.HalfNormal("sigma", 2.0), pm.Gamma("nu", alpha=2.0, beta=0.1)
            pm.StudentT("y", nu=nu, mu=alpha + pt.dot(data["X"], beta), sigma=sigma,
                        observed=data["y"])
        else:
            raise ValueError(f"name: no PyMC copy of model {name!r}")
    return model


# ---- the same density --------------------------------------------------------------------
def random_point(model, rng):
    """A point {latent: value} on the constrained scale, spread around the origin."""
    point = {}
    for name, latent in model.latents.items():
        x = rng.normal(size=latent.shape)
        point[name] = {"positive": np.exp(0.5 * x), "unit_interval": 1 / (1 + np.exp(-x))}.get(
            latent.support, x)
    return point


def density_check(ref, pm_model, points=5, seed=0):
    """PyMC's constrained-scale log density minus natvi's log joint at ``points`` random
    points: {"offset": their mean, "max_deviation": largest |difference − offset|}."""
    import pytensor.tensor as pt

    free = {rv.name for rv in pm_model.free_RVs}
    if free != set(ref.model.latents):
        raise ValueError(f"the PyMC model's free variables {sorted(free)} are not the natvi "
                         f"latents {sorted(ref.model.latents)}")
    logp = pm_model.compile_logp(jacobian=False)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(points):
        point = random_point(ref.model, rng)
        values = {}
        for rv in pm_model.free_RVs:
            value = np.asarray(point[rv.name], float)
            transform = pm_model.rvs_to_transforms.get(rv)
            if transform is not None:
                value = transform.forward(pt.as_tensor(value), *rv.owner.inputs).eval()
            values[pm_model.rvs_to_values[rv].name] = value
        diffs.append(float(logp(values)) - float(ref.log_joint(point)))
    diffs = np.array(diffs)
    return {"points": points, "offset": float(diffs.mean()),
            "max_deviation": float(np.max(np.abs(diffs - diffs.mean())))}


# ---- NUTS and summaries ------------------------------------------------------------------
def draws_of(idata, latents):
    """{latent: array (chains, draws, *shape)} from a PyMC InferenceData."""
    return {name: np.asarray(idata.posterior[name].values) for name in latents}


def summarize(name, model, draws):
    """{"model/latent[index]": statistics} of draws {latent: (chains, draws, *shape)}."""
    out = {}
    for latent, spec in model.latents.items():
        arr = draws[latent]
        flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
        labels = ([latent] if spec.shape == () else
                  [f"{latent}[{','.join(map(str, i))}]" for i in np.ndindex(spec.shape)])
        for j, label in enumerate(labels):
            x = flat[:, :, j]
            q = np.quantile(x, QUANTILES)
            out[f"{name}/{label}"] = {
                "mean": float(x.mean()), "sd": float(x.std(ddof=1)),
                **{f"q{round(100 * p):02d}": float(v) for p, v in zip(QUANTILES, q, strict=True)},
                "r_hat": float(az.rhat(x)), "ess_bulk": float(az.ess(x, method="bulk")),
                "ess_tail": float(az.ess(x, method="tail")),
                "mcse_mean": float(np.ravel(az.mcse(x, method="mean"))[0])}
    return out


def nuts(pm_model, dense, args):
    """Long NUTS runs with target_accept raised while there are divergences or R̂ > 1.01:
    (InferenceData, target_accept, divergences, max R̂, seconds) of the last run."""
    import pymc as pm

    for target_accept in TARGET_ACCEPT:
        start = time.perf_counter()
        with pm_model:
            idata = pm.sample(draws=args.draws, tune=args.tune, chains=args.chains,
                              cores=args.cores, target_accept=target_accept,
                              init="jitter+adapt_full" if dense else "jitter+adapt_diag",
                              random_seed=args.seed, progressbar=False,
                              compute_convergence_checks=False)
        seconds = time.perf_counter() - start
        divergences = int(idata.sample_stats["diverging"].values.sum())
        r_hat = float(max(np.max(az.rhat(idata)[v].values) for v in idata.posterior.data_vars))
        print(f"    target_accept {target_accept}: {divergences} divergences, max R̂ "
              f"{r_hat:.4f}, {seconds:.0f} s", flush=True)
        if divergences == 0 and r_hat <= MAX_R_HAT:
            break
    return idata, target_accept, divergences, r_hat, seconds


def run_model(name, args, done):
    """Check and sample model ``name``; its entry of the JSON and its summaries. ``done``
    holds the draws of models already run (a centered model may borrow its twin's)."""
    ref = rm.MODELS[name]()
    pm_model = pymc_model(name, ref.data)
    check = density_check(ref, pm_model)
    print(f"{name}: density check offset {check['offset']:.3g}, max deviation "
          f"{check['max_deviation']:.2g}", flush=True)
    if check["max_deviation"] > 1e-6 * (1 + abs(check["offset"])):
        raise RuntimeError(f"{name}: the PyMC and natvi densities differ: {check}")
    idata, target_accept, divergences, r_hat, seconds = nuts(pm_model, name in DENSE, args)
    draws = draws_of(idata, ref.model.latents)
    done[name] = draws
    entry = {"n_latent": len(rm.coordinate_names(ref.model)),
             "n_obs": int(np.size(ref.data["y"])), "target_accept": target_accept,
             "init": "jitter+adapt_full" if name in DENSE else "jitter+adapt_diag",
             "divergences": divergences, "max_r_hat_own_run": r_hat,
             "seconds": round(seconds, 1), "density_check": check, "source": "own NUTS run"}
    if name == "correlated_regression":
        entry["condition_number_X"] = rm.condition_number(ref.data["X"])
    if (divergences or r_hat > MAX_R_HAT) and name in TWINS:
        twin, transform = TWINS[name]
        if twin not in done:
            raise RuntimeError(f"{name}: run its twin {twin} first")
        draws = transform(done[twin])
        entry["source"] = (f"NUTS draws of {twin} transformed (this parameterization kept "
                           f"{divergences} divergences at target_accept {target_accept})")
    summaries = summarize(name, ref.model, draws)
    entry["max_r_hat"] = max(s["r_hat"] for s in summaries.values())
    entry["min_ess_bulk"] = min(s["ess_bulk"] for s in summaries.values())
    entry["min_ess_tail"] = min(s["ess_tail"] for s in summaries.values())
    if entry["max_r_hat"] > MAX_R_HAT:
        raise RuntimeError(f"{name}: R̂ {entry['max_r_hat']:.4f} > {MAX_R_HAT}")
    return entry, summaries


def versions():
    import pymc
    import pytensor

    import natvi
    return {"python": platform.python_version(), "pymc": pymc.__version__,
            "pytensor": pytensor.__version__, "arviz": az.__version__,
            "numpy": np.__version__, "natvi": natvi.__version__}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(rm.MODELS), default=list(rm.MODELS))
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--tune", type=int, default=2000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20260)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    # a twin runs before its centered model
    order = sorted(args.models, key=lambda m: m not in {t for t, _ in TWINS.values()})
    stored = json.loads(args.out.read_text()) if args.out.exists() else {}
    models, summaries = stored.get("models", {}), stored.get("summaries", {})
    done = {}
    for name in order:
        if name in TWINS and TWINS[name][0] not in done:
            print(f"{name}: running its twin {TWINS[name][0]} too, for a fallback")
            _, _ = run_model(TWINS[name][0], args, done)
        entry, rows = run_model(name, args, done)
        models[name] = entry
        summaries = {k: v for k, v in summaries.items() if not k.startswith(f"{name}/")}
        summaries.update(rows)
        out = write(args, models, summaries)  # after each model, so a stop loses only one
    print_table(out["models"])
    print(f"wrote {args.out}")


def write(args, models, summaries):
    """Write the JSON file of ``models`` and ``summaries``; returns its content."""
    out = {"about": "NUTS reference posteriors of examples/reference_models.py, written by "
                    "examples/reference_nuts.py; summaries keyed model/latent[index], on the "
                    "constrained scale",
           "settings": {"draws": args.draws, "tune": args.tune, "chains": args.chains,
                        "seed": args.seed, "target_accept_schedule": list(TARGET_ACCEPT),
                        "max_r_hat": MAX_R_HAT},
           "versions": versions(),
           "models": {m: models[m] for m in rm.MODELS if m in models},
           "summaries": {k: _rounded(summaries[k]) for k in sorted(summaries, key=_order)}}
    head = json.dumps({k: v for k, v in out.items() if k != "summaries"}, indent=1)
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in out["summaries"].items())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f'{head[:-2]},\n "summaries": {{\n{rows}\n }}\n}}\n')  # a line a row
    return out


def _rounded(row):
    """A summary row with 6 significant digits, far below its Monte Carlo error."""
    return {k: float(f"{v:.6g}") for k, v in row.items()}


def _order(key):
    """Sort key of ``"model/latent[index]"``: models in suite order, then as written."""
    model = key.split("/", 1)[0]
    return list(rm.MODELS).index(model)


def print_table(models):
    print(f"\n{'model':<26}{'D':>5}{'N':>5}{'t_acc':>7}{'div':>5}{'max R̂':>8}"
          f"{'min ESS bulk':>14}{'min ESS tail':>14}{'s':>6}{'density Δ':>11}  source")
    for name, e in models.items():
        source = "own run" if e["source"] == "own NUTS run" else "twin"
        print(f"{name:<26}{e['n_latent']:>5}{e['n_obs']:>5}{e['target_accept']:>7}"
              f"{e['divergences']:>5}{e['max_r_hat']:>8.4f}{e['min_ess_bulk']:>14.0f}"
              f"{e['min_ess_tail']:>14.0f}{e['seconds']:>6.0f}"
              f"{e['density_check']['max_deviation']:>11.1e}  {source}")


if __name__ == "__main__":
    main()
