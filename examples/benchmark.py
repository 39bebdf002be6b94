"""Benchmark: mean-field Bayesian logistic regression by natvi and by the tools a user would
pick instead (PyMC's ADVI, NumPyro's SVI), on real and synthetic data.

Every method fits the same model — intercept and coefficients, all priors N(0, 1),
standardized features — and is scored by natvi's deterministic (Gauss–Hermite) ELBO at its
variational parameters, against the exact mean-field optimum, which scipy's L-BFGS-B
finds once per data set on that same ELBO over (mean, log-scale) with its gradient.

Methods: natvi NGD (mean-field, the default ``"ngd"``: Anderson-accelerated natural
gradient with the exact expected Hessian), its variants (a Fisher-conjugate line search
instead of Anderson; the generalized Gauss–Newton or the empirical-Fisher curvature
instead of the exact one), natvi NGD full-rank (where D and N are small enough), natvi
Adam (a grid of learning rates), and, when installed, PyMC ADVI
(its default optimizer, and ``pm.adam`` on a grid) and NumPyro SVI with an ``AutoNormal``
guide (Adam on a grid). Peers' parameters are taken at checkpoints along their runs
(log-spaced iterations: PyMC through a callback, NumPyro by running in jitted segments);
their own noisy ELBO estimates are not used.

Each method runs in a fresh subprocess that loads the data and then starts its clock:
imports, model construction and compilation (PyTensor, JAX) count. Peak memory is the rise
of that subprocess's peak resident set size from
data-in-memory to the end of the run: everything the method allocates (NumPy, PyTensor,
XLA buffers, imported code), read as VmHWM from /proc/self/status. Run:

    python examples/benchmark.py                              # all four data sets, all peers
    python examples/benchmark.py --quick --datasets breast_cancer --peers natvi-adam

PyMC and NumPyro come with ``pip install 'natvi[bench]'``; missing peers are skipped.
"""

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

THRESHOLDS = (1.0, 0.1, 0.01)
DATASETS = {  # name: (title, rows, columns) — None where the file decides
    "breast_cancer": ("breast cancer (UCI)", None, None),
    "caravan": ("caravan insurance, COIL 2000 (UCI)", None, None),
    "synthetic_100k": ("synthetic", 100_000, 50),
    "synthetic_1m": ("synthetic", 1_000_000, 100),
}
PEERS = ("natvi-adam", "pymc", "numpyro")
PEER_GROUPS = ("natvi Adam", "PyMC ADVI", "NumPyro SVI")
#: per data set: seconds each iterative run may take, and iterations it may take
TIME_LIMIT = {"breast_cancer": 30.0, "caravan": 60.0, "synthetic_100k": 60.0,
              "synthetic_1m": 180.0}
#: iterations each Adam/ADVI/SVI run may take: enough that the time limit, not this, ends
#: the peers' runs on the larger data sets (PyMC's best setting took ~12,000 on breast cancer)
MAX_ITER = 50_000
RATES = (0.003, 0.01, 0.03, 0.1)
QUICK_RATES = (0.03, 0.1)
#: data sets where each run takes minutes: one learning rate per peer unless asked for more
LARGE = {"synthetic_1m": (0.03,)}


# ---- data ------------------------------------------------------------------------------
def synthetic(n, d, seed=0):
    """Features N(0, 1), coefficients N(0, 9/d) (the linear predictor has sd 3), intercept
    −0.5, labels Bernoulli(σ(η)); built without an N × D temporary beyond X itself."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    coef = rng.standard_normal(d) * 3.0 / np.sqrt(d)
    eta = X @ coef - 0.5
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return X, y


def load(name):
    """(X standardized in place, float64 C-contiguous; y as floats in {0, 1})."""
    from natvi import data

    if name == "breast_cancer":
        X, y, _ = data.load_breast_cancer()
    elif name == "caravan":
        X, y, _ = data.load_caravan()
    else:
        _, n, d = DATASETS[name]
        X, y = synthetic(n, d)
    X = np.ascontiguousarray(X, dtype=float)
    X -= X.mean(axis=0)
    X /= np.sqrt(np.einsum("ij,ij->j", X, X) / X.shape[0])  # sd, without an N × D temporary
    return X, np.asarray(y, dtype=float)


def natvi_model(X, y, curvature="hessian"):
    from natvi.models import LogisticRegression

    return LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0, curvature=curvature)


def mean_field(model, params):
    """{latent: MeanFieldGaussian} from [intercept loc, intercept scale, coef locs, scales]."""
    from natvi import MeanFieldGaussian

    d = model.X.shape[1]
    p = np.asarray(params, dtype=float)
    return {"intercept": MeanFieldGaussian(loc=p[0], scale=p[1]),
            "coef": MeanFieldGaussian(loc=p[2:2 + d], scale=p[2 + d:])}


def elbo_at(model, params):
    """natvi's deterministic ELBO at mean-field parameters (−inf where not finite)."""
    import natvi

    p = np.asarray(params, dtype=float)
    if not np.all(np.isfinite(p)) or np.any(p[1:2] <= 0) or np.any(p[2 + model.X.shape[1]:] <= 0):
        return -np.inf
    with np.errstate(all="ignore"):
        value = natvi.elbo(model, mean_field(model, p))[0]
    return value if np.isfinite(value) else -np.inf


def exact_optimum(model):
    """The mean-field optimum by L-BFGS-B over (mean, log-scale), from natvi's start."""
    from scipy.optimize import minimize

    import natvi

    mfg = natvi.MeanFieldGaussian
    d = model.X.shape[1]
    start = model.initial_posterior({"intercept": mfg, "coef": mfg})
    u0 = np.concatenate([start["intercept"].unconstrained.ravel(),
                         start["coef"].unconstrained.ravel()])
    trace = []  # the ELBO at each evaluation, for L-BFGS's own evaluations to each gap

    def negative_elbo(u):
        q = {"intercept": mfg.from_unconstrained(u[:2]),
             "coef": mfg.from_unconstrained(u[2:].reshape(d, 2))}
        value, grads = natvi.elbo(model, q)
        trace.append(value)
        grad = np.concatenate([q[k].unconstrained_grad(grads[k]).ravel() for k in q])
        return -value, -grad

    t = time.perf_counter()
    res = minimize(negative_elbo, u0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 100_000, "maxfun": 100_000, "maxcor": 50,
                            "gtol": 1e-11, "ftol": 1e-16})
    # the best so far: the line search also evaluates worse (or non-finite) points
    best = np.maximum.accumulate(np.where(np.isfinite(trace), trace, -np.inf))
    within = [int(np.argmax(best >= -res.fun - g)) + 1 for g in THRESHOLDS]
    return {"elbo": -float(res.fun), "iterations": int(res.nit), "evaluations": len(trace),
            "seconds": time.perf_counter() - t, "max_grad": float(np.abs(res.jac).max()),
            "message": str(res.message), "evaluations_within": within}


# ---- one method in a fresh process -------------------------------------------------------
def checkpoints(max_iter, per_decade):
    """Iterations at which peers' parameters are read: 0, then log-spaced, then the last."""
    k = np.arange(0, int(np.ceil(per_decade * np.log10(max_iter))) + 1)
    its = {int(round(x)) for x in 10.0 ** (k / per_decade)}
    return sorted({0, max_iter} | {i for i in its if i <= max_iter})


def peak_rss_mb():
    """This process's peak resident set size, MB: VmHWM where /proc has it (Linux), else
    ru_maxrss — which on Linux starts at the parent's peak in a child process, so it is
    only a fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Recorder:
    """Parameters at checkpoints, with seconds since data-in-memory minus the time spent
    recording, and a time limit."""

    def __init__(self, t0, its, time_limit):
        self.t0, self.its, self.limit = t0, set(its), time_limit
        self.overhead = 0.0
        self.rows = []  # (iteration, gradient evaluations, seconds, params)

    def elapsed(self):
        return time.perf_counter() - self.t0 - self.overhead

    def record(self, it, read):
        now = time.perf_counter()
        seconds = now - self.t0 - self.overhead
        params = [float(x) for x in read()]
        self.rows.append((it, it, seconds, params))
        self.overhead += time.perf_counter() - now
        return params

    def result(self, status):
        its, evals, secs, params = (list(c) for c in zip(*self.rows, strict=True))
        return {"iters": its, "grad_evals": evals, "seconds": secs, "params": params,
                "status": status}


def run_natvi(X, y, spec, t0):
    import natvi

    model = natvi_model(X, y, spec.get("curvature", "hessian"))
    if spec["optimizer"] == "ngd":
        optimizer = "ngd"
    elif spec["optimizer"] == "line_search":
        optimizer = natvi.optim.natural_gradient(1.0)
    else:
        optimizer = natvi.optim.adam(spec["lr"])
    family = natvi.FullRankGaussian if spec.get("full_rank") else natvi.MeanFieldGaussian

    def stop_at_time_limit(iteration, elbo, posterior):
        if time.perf_counter() - t0 > spec["time_limit"]:
            raise KeyboardInterrupt  # natvi.fit stops cleanly, keeping the history

    t_fit = time.perf_counter()
    res = natvi.fit(model, optimizer, family=family, max_iter=spec["max_iter"], progress=False,
                    callback=stop_at_time_limit)
    h = res.history
    status = "time_limit" if res.status == "interrupted" else res.status
    return {"iters": list(range(len(h["elbo"]))), "grad_evals": h["grad_evals"].tolist(),
            "seconds": (h["seconds"] + (t_fit - t0)).tolist(), "elbo": h["elbo"].tolist(),
            "status": status}


def run_pymc(X, y, spec, t0):
    import pymc as pm

    rec = Recorder(t0, spec["checkpoints"], spec["time_limit"])
    with pm.Model():
        data = pm.Data("X", X)
        intercept = pm.Normal("intercept", 0.0, 1.0)
        coef = pm.Normal("coef", 0.0, 1.0, shape=X.shape[1])
        pm.Bernoulli("y", logit_p=intercept + pm.math.dot(data, coef), observed=y)
        advi = pm.ADVI(random_seed=spec["seed"])  # what pm.fit(method="advi") builds
    group = advi.approx.groups[0]
    mu, rho = group.params_dict["mu"], group.params_dict["rho"]
    slices = {name: info[1] for name, info in group.ordering.items()}

    def read():  # the approximation's mean and std (= softplus(rho)), natvi's order
        m, s = mu.get_value(), np.logaddexp(0.0, rho.get_value())
        return np.concatenate([m[slices["intercept"]], s[slices["intercept"]],
                               m[slices["coef"]], s[slices["coef"]]])

    state = {"status": "max_iter", "last": 0}

    def callback(approx, losses, i):
        state["last"] = i
        if i in rec.its:
            rec.record(i, read)
        if rec.elapsed() > spec["time_limit"]:
            if i not in rec.its:
                rec.record(i, read)
            state["status"] = "time_limit"
            raise StopIteration  # PyMC ends the fit quietly

    rec.record(0, read)
    kwargs = {} if spec["lr"] is None else {"obj_optimizer": pm.adam(learning_rate=spec["lr"])}
    try:
        advi.fit(n=spec["max_iter"], callbacks=[callback], progressbar=False, **kwargs)
    except FloatingPointError:  # PyMC raises on a NaN loss
        state["status"] = "diverged"
    if rec.rows[-1][0] != state["last"] and state["status"] != "diverged":
        rec.record(state["last"], read)
    return rec.result(state["status"])


def run_numpyro(X, y, spec, t0):
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.infer.initialization import init_to_median

    def model(X, y):
        intercept = numpyro.sample("intercept", dist.Normal(0.0, 1.0))
        coef = numpyro.sample("coef", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
        numpyro.sample("y", dist.Bernoulli(logits=intercept + X @ coef), obs=y)

    rec = Recorder(t0, spec["checkpoints"], spec["time_limit"])
    Xj, yj = jnp.asarray(X), jnp.asarray(y)  # float32: JAX's default
    guide = AutoNormal(model, init_loc_fn=init_to_median)  # starts at the prior median, 0
    svi = SVI(model, guide, numpyro.optim.Adam(spec["lr"]), Trace_ELBO())
    svi_state = svi.init(jax.random.PRNGKey(spec["seed"]), Xj, yj)

    @jax.jit
    def advance(svi_state, n, X, y):  # n is traced: one compilation for every segment
        return jax.lax.fori_loop(0, n, lambda _, s: svi.update(s, X, y)[0], svi_state)

    def read():
        p = svi.get_params(svi_state)
        return np.concatenate([np.ravel(p["intercept_auto_loc"]),
                               np.ravel(p["intercept_auto_scale"]),
                               np.ravel(p["coef_auto_loc"]), np.ravel(p["coef_auto_scale"])])

    rec.record(0, read)
    it, status, rate = 0, "max_iter", None
    for target in spec["checkpoints"][1:]:
        left = spec["time_limit"] - rec.elapsed()
        if rate is not None and (target - it) * rate > left:  # shorten the last segment
            target, status = it + max(1, int(left / rate)), "time_limit"
        before = rec.elapsed()
        svi_state = advance(svi_state, target - it, Xj, yj)
        jax.block_until_ready(svi_state)
        if it > 0:  # the first segment includes compilation
            rate = (rec.elapsed() - before) / (target - it)
        it = target
        params = rec.record(it, read)
        if not np.all(np.isfinite(params)):
            status = "diverged"
        if status != "max_iter" or rec.elapsed() > spec["time_limit"]:
            status = "time_limit" if status == "max_iter" else status
            break
    return rec.result(status)


def worker(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    X, y = np.load(spec["X"]), np.load(spec["y"])
    base = peak_rss_mb()
    t0 = time.perf_counter()  # data in memory: imports, model construction, compilation count
    run = {"natvi": run_natvi, "pymc": run_pymc, "numpyro": run_numpyro}[spec["kind"]]
    out = run(X, y, spec, t0)
    out["peak_mb"] = peak_rss_mb() - base
    out["wall"] = time.perf_counter() - t0
    Path(spec["result"]).write_text(json.dumps(out))


def in_subprocess(spec, tmp):
    path = Path(tmp) / "spec.json"
    spec = {**spec, "result": str(Path(tmp) / "result.json")}
    path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, __file__, "--worker", str(path)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        return {"error": tail or f"exit code {done.returncode}"}
    return json.loads(Path(spec["result"]).read_text())


# ---- the benchmark -------------------------------------------------------------------------
def methods(args, name, n, d):
    """[(label, group, spec)] for one data set, and notes on what was skipped."""
    out = [("natvi NGD", "natvi NGD", {"kind": "natvi", "optimizer": "ngd"})]
    notes = []
    if d + 1 > args.full_rank_max_dim:
        notes.append(f"natvi NGD full-rank skipped: {d + 1} latents > --full-rank-max-dim "
                     f"{args.full_rank_max_dim}")
    elif n > args.full_rank_max_rows:
        notes.append(f"natvi NGD full-rank skipped: {n:,} rows > --full-rank-max-rows "
                     f"{args.full_rank_max_rows:,} (each evaluation forms N × (D+1)² products; "
                     f"too slow here)")
    else:
        out.append(("natvi NGD full-rank", "natvi NGD full-rank",
                     {"kind": "natvi", "optimizer": "ngd", "full_rank": True}))
    out += [(label, "natvi NGD variants", {"kind": "natvi", **spec}) for label, spec in (
        ("natvi NGD line search", {"optimizer": "line_search"}),
        ("natvi NGD GGN", {"optimizer": "ngd", "curvature": "ggn"}),
        ("natvi NGD emp. Fisher", {"optimizer": "ngd", "curvature": "empirical_fisher"}))]
    default = LARGE.get(name) or (QUICK_RATES if args.quick else RATES)
    grids = {"natvi-adam": args.adam_rates or default, "pymc": args.pymc_rates or default,
             "numpyro": args.numpyro_rates or default}
    if name in LARGE and not all((args.adam_rates, args.pymc_rates, args.numpyro_rates)):
        notes.append(f"learning-rate grids cut to {list(LARGE[name])} on {name} (each run "
                     f"takes minutes); --adam-rates, --pymc-rates, --numpyro-rates widen them")
    if "natvi-adam" in args.peers:
        out += [(f"natvi Adam lr={lr:g}", "natvi Adam",
                 {"kind": "natvi", "optimizer": "adam", "lr": lr}) for lr in grids["natvi-adam"]]
    if "pymc" in args.peers:
        out.append(("PyMC ADVI default", "PyMC ADVI", {"kind": "pymc", "lr": None}))
        out += [(f"PyMC ADVI adam lr={lr:g}", "PyMC ADVI", {"kind": "pymc", "lr": lr})
                for lr in grids["pymc"]]
    if "numpyro" in args.peers:
        out += [(f"NumPyro SVI lr={lr:g}", "NumPyro SVI", {"kind": "numpyro", "lr": lr})
                for lr in grids["numpyro"]]
    return out, notes


def first_within(run, optimum, gap):
    """(iteration, gradient evaluations, seconds) when the ELBO first came within ``gap``."""
    hit = np.flatnonzero(np.asarray(run["elbo"]) >= optimum - gap)
    if hit.size == 0:
        return None
    i = hit[0]
    return run["iters"][i], run["grad_evals"][i], run["seconds"][i]


#: rows per chunk of the bare one-pass reference; the fastest is taken (a chunk and its
#: square that fit in a core's cache make the products up to 2× faster than 8192 rows)
PASS_ROWS = (256, 512, 1024, 2048, 4096, 8192)


def one_pass(X, m, v, g, h, rows=1024):
    """X @ m, (X*X) @ v, Xᵀ g, (X*X)ᵀ h in one pass: chunks of ``rows``, each squared once."""
    for s in range(0, X.shape[0], rows):
        xc = X[s:s + rows]
        x2 = xc * xc
        xc @ m, x2 @ v, g[s:s + rows] @ xc, h[s:s + rows] @ x2


def bare_passes(X):
    """Seconds of the NumPy passes over X a mean-field GLM evaluation needs (the best of at
    least 5 repeats and 0.3 s): X @ m, (X*X) @ v, Xᵀ g, (X*X)ᵀ g. "one pass" is the least
    work: each chunk of rows read once, its square formed once in cache, all four products
    on it, at the fastest chunk size of :data:`PASS_ROWS` ("one pass rows"); the others are
    the products one by one, with X*X formed on the fly in chunks of that size, or
    precomputed (another N × D)."""
    rng = np.random.default_rng(1)
    n, d = X.shape
    m, v, g, h = rng.standard_normal(d), rng.random(d), rng.standard_normal(n), rng.random(n)
    X2 = X * X

    def best(f):
        times = []
        while len(times) < 5 or (sum(times) < 0.3 and len(times) < 1000):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return min(times)

    by_rows = {rows: best(lambda rows=rows: one_pass(X, m, v, g, h, rows)) for rows in PASS_ROWS}
    fastest = min(by_rows, key=by_rows.get)

    def on_the_fly_v():
        for s in range(0, n, fastest):
            xc = X[s:s + fastest]
            (xc * xc) @ v

    def on_the_fly_h():
        for s in range(0, n, fastest):
            xc = X[s:s + fastest]
            h[s:s + fastest] @ (xc * xc)

    out = {"one pass": by_rows[fastest], "one pass rows": fastest, "one pass by rows": by_rows,
           "X@m": best(lambda: X @ m),
           "(X*X)@v": best(on_the_fly_v),
           "X.T@g": best(lambda: X.T @ g), "(X*X).T@g": best(on_the_fly_h),
           "X2@v": best(lambda: X2 @ v), "X2.T@g": best(lambda: X2.T @ h)}
    return out


def run_dataset(name, args, tmp, log):
    title, _, _ = DATASETS[name]
    X, y = load(name)
    n, d = X.shape
    np.save(Path(tmp) / "X.npy", X)
    np.save(Path(tmp) / "y.npy", y)
    model = natvi_model(X, y)
    log(f"\n=== {name}: {title}, N = {n:,}, D = {d} + intercept, "
        f"{int(y.sum()):,} positives ===")
    opt = exact_optimum(model)
    log(f"exact mean-field optimum: ELBO = {opt['elbo']:.8f} (L-BFGS-B over (mean, log-scale): "
        f"{opt['iterations']} iterations, {opt['evaluations']} evaluations, "
        f"{opt['seconds']:.1f} s, max |gradient| {opt['max_grad']:.1e}); L-BFGS-B's "
        f"evaluations to within " + ", ".join(
            f"{g:g}: {k}" for g, k in zip(THRESHOLDS, opt["evaluations_within"], strict=True))
        + " nats")
    limit = args.time_limit or TIME_LIMIT[name]
    per_decade = args.per_decade or (10 if n * d <= 10_000_000 else 3)
    chosen, notes = methods(args, name, n, d)
    for note in notes:
        log(note)
    runs = {}
    for label, group, spec in chosen:
        # natvi's NGD runs stop by their own convergence rule; the default is not timed out
        ngd = spec["kind"] == "natvi" and spec["optimizer"] != "adam"
        spec = {**spec, "X": str(Path(tmp) / "X.npy"), "y": str(Path(tmp) / "y.npy"),
                "seed": args.seed, "time_limit": 1e9 if label == "natvi NGD" else limit,
                "max_iter": args.ngd_max_iter if ngd else args.max_iter,
                "checkpoints": checkpoints(args.max_iter, per_decade)}
        res = in_subprocess(spec, tmp)
        if "error" in res:
            log(f"{label}: failed: {res['error']}")
            continue
        if "params" in res:  # a peer: natvi's ELBO at its checkpoints
            res["elbo"] = [elbo_at(model, p) for p in res["params"]]
            del res["params"]
        res["group"] = group
        runs[label] = res
        print(f"  ran {label}: {res['status']}, {res['wall']:.1f} s", file=sys.stderr)
    log(f"load average (1 min) after the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} "
        f"cores")
    report(name, runs, opt, limit, log)
    costs = ngd_cost(X, model, runs.get("natvi NGD"), log)
    del model, X, y
    return {"runs": runs, "optimum": opt, "n": n, "d": d, "cost": costs}


def report(name, runs, opt, limit, log):
    best = opt["elbo"]
    reached = {label: [first_within(r, best, g) for g in THRESHOLDS] for label, r in runs.items()}
    peers = [label for label, r in runs.items() if r["group"] in PEER_GROUPS]
    peer_times = [reached[label][1][2] for label in peers if reached[label][1] is not None]
    fastest = min(peer_times) if peer_times else None
    # No peer within 0.1 nats: each would need more than its whole run, a lower bound.
    bound = min(runs[label]["seconds"][-1] for label in peers) if peers else None
    cols = "".join(f"{'it@' + format(g, 'g'):>9}{'evals':>7}{'sec':>8}" for g in THRESHOLDS)
    header = (f"{'method':<25}{'status':>11}{'iters':>7}{'evals':>7}{'sec':>8}{cols}"
              f"{'final gap':>11}{'final ELBO':>16}{'peak MB':>9}{'t0.1/peer':>10}")
    log(f"gaps against the optimum; peers' runs limited to {limit:g} s; 't0.1/peer' = seconds "
        f"to 0.1 nats / the fastest peer's (natvi Adam, PyMC, NumPyro)")
    log(header)
    log("-" * len(header))
    for label, r in runs.items():
        final = r["elbo"][-1]
        row = (f"{label:<25}{r['status']:>11}{r['iters'][-1]:>7d}{r['grad_evals'][-1]:>7d}"
               f"{r['seconds'][-1]:>8.2f}")
        for hit in reached[label]:
            row += (f"{hit[0]:>9d}{hit[1]:>7d}{hit[2]:>8.2f}" if hit
                    else f"{'-':>9}{'-':>7}{'-':>8}")
        t01 = reached[label][1]
        if t01 and fastest:
            ratio = f"{t01[2] / fastest:>10.3f}"
        elif t01 and bound:
            ratio = f"{'<' + format(t01[2] / bound, '.3f'):>10}"
        else:
            ratio = f"{'-':>10}"
        row += f"{best - final:>11.2e}{final:>16.6f}{r['peak_mb']:>9.0f}{ratio}"
        log(row)
    mf = [max(r["elbo"]) for label, r in runs.items() if "full-rank" not in label]
    if mf:
        excess = max(mf) - best
        log(f"best mean-field ELBO of any run − optimum: {excess:+.2e}"
            + ("  (above the optimum: the reference is not exact!)" if excess > 1e-6 else ""))
    if fastest is None and bound:
        log(f"no peer came within 0.1 nats in its run: 't0.1/peer' is an upper bound, "
            f"against the shortest peer run ({bound:.1f} s)")
    ngd = reached.get("natvi NGD", [None] * len(THRESHOLDS))[1]
    if ngd and peers:
        log(f"natvi NGD to 0.1 nats in {ngd[2]:.2f} s; the best of each peer, by that time: "
            + "; ".join(speedups(runs, reached, peers, ngd[2])))


def speedups(runs, reached, peers, seconds):
    """Per peer group: how many times longer its fastest run took to 0.1 nats than
    ``seconds``; if none of its runs got there, a lower bound from its shortest run."""
    out = []
    for group in PEER_GROUPS:
        labels = [label for label in peers if runs[label]["group"] == group]
        if not labels:
            continue
        hits = [(reached[label][1][2], label) for label in labels if reached[label][1]]
        if hits:
            t, label = min(hits)
            out.append(f"{group} {t / seconds:.1f}× ({label}, {t:.2f} s)")
        else:
            t = min(runs[label]["seconds"][-1] for label in labels)
            out.append(f"{group} > {t / seconds:.1f}× (never within 0.1 nats; shortest run "
                       f"{t:.1f} s)")
    return out


def ngd_cost(X, model, ngd, log):
    """One NGD iteration against the bare NumPy passes over X it needs: averaged over the
    NGD run, and one evaluation at the optimum timed alternately with one bare pass (the
    best of 7 each, so that both see the same state of the machine)."""
    if ngd is None:
        return None
    import natvi

    posterior = natvi.fit(model, progress=False).posterior
    rng = np.random.default_rng(2)
    args = (rng.standard_normal(X.shape[1]), rng.random(X.shape[1]),
            rng.standard_normal(X.shape[0]), rng.random(X.shape[0]))
    passes = bare_passes(X)
    alternate = {"evaluation": [], "pass": []}
    for _ in range(7):
        for name, run in (("evaluation", lambda: natvi.elbo(model, posterior)),
                          ("pass", lambda: one_pass(X, *args, passes["one pass rows"]))):
            t = time.perf_counter()
            run()
            alternate[name].append(time.perf_counter() - t)
    at_opt, one = min(alternate["evaluation"]), min(alternate["pass"])
    iters, evals, secs = ngd["iters"][-1], ngd["grad_evals"][-1], ngd["seconds"]
    fit_seconds = secs[-1] - secs[0]  # from the first evaluation: no imports, no model
    per_eval = fit_seconds / max(evals - 1, 1)
    per_iter = fit_seconds / max(iters, 1)
    bare = passes["one pass"]
    separate = passes["X@m"] + passes["(X*X)@v"] + passes["X.T@g"] + passes["(X*X).T@g"]
    pre = passes["X@m"] + passes["X2@v"] + passes["X.T@g"] + passes["X2.T@g"]
    per_iter_evals = evals / max(iters, 1)
    log(f"NGD cost: {iters} iterations, {evals} ELBO evaluations ({per_iter_evals:.2f} "
        f"per iteration); one iteration {_ms(per_iter)}, one evaluation {_ms(per_eval)}")
    log(f"bare NumPy (best of ≥ 5): one pass {_ms(bare)} (chunks of {passes['one pass rows']} "
        f"rows, the fastest of " + ", ".join(
            f"{k}: {_ms(t)}" for k, t in passes["one pass by rows"].items())
        + "); the products one by one: " + ", ".join(
        f"{k} {_ms(passes[k])}" for k in ("X@m", "(X*X)@v", "X.T@g", "(X*X).T@g"))
        + f", sum {_ms(separate)} ({_ms(pre)} with X² precomputed)")
    log(f"  one evaluation = {per_eval / bare:.2f}× one bare pass; one iteration = "
        f"{per_iter / (bare * per_iter_evals):.2f}× the {per_iter_evals:.2f} bare passes it "
        f"needs ({per_iter / bare:.2f}× one pass)")
    log(f"  at the optimum, timed alternately (best of 7 each): one evaluation {_ms(at_opt)}, "
        f"one bare pass {_ms(one)}: {at_opt / one:.2f}×; with {per_iter_evals:.2f} evaluations "
        f"per iteration, one iteration ≈ {at_opt / one:.2f}× the bare passes it needs")
    block = model.design.blocks()[0].stop
    log(f"passes over X: {evals} evaluations × 1 pass from memory each = {evals} passes "
        f"(natvi's GLM engine takes X in blocks of {block} rows and reads each block twice, "
        f"the second time from cache: for the predictors, then for the gradient)")
    x_mb = X.nbytes / 2**20
    log(f"NGD peak memory: X {x_mb:.0f} MB + the run's rise {ngd['peak_mb']:.0f} MB (imports "
        f"included) = {(x_mb + ngd['peak_mb']) / x_mb:.2f}× the bytes of X")
    return {"per_iter": per_iter, "per_eval": per_eval, "bare": bare, "passes": passes,
            "evals": evals, "eval_at_optimum": at_opt, "pass_alternate": one}


def _ms(seconds):
    return f"{1e3 * seconds:.3g} ms"


def plot(results, out):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return None
    colors = {"natvi NGD": "k", "natvi NGD full-rank": "tab:purple",
              "natvi NGD variants": "tab:gray", "natvi Adam": "tab:orange",
              "PyMC ADVI": "tab:green", "NumPyro SVI": "tab:red"}
    names = list(results)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        res = results[name]
        best = res["optimum"]["elbo"]
        shown = {}
        for label, r in res["runs"].items():  # the best of each grid, by gap at the end
            key = r["group"]
            if key not in shown or r["elbo"][-1] > res["runs"][shown[key]]["elbo"][-1]:
                shown[key] = label
        for label in shown.values():
            r = res["runs"][label]
            gap = np.maximum(best - np.asarray(r["elbo"]), 1e-6)
            secs = np.maximum(np.asarray(r["seconds"]), 1e-3)
            if label == "natvi NGD full-rank":
                label += " (ends above the optimum)"
            ax.plot(secs, gap, label=label, marker="." if "natvi" not in label else None,
                    lw=2.5 if label == "natvi NGD" else 1.3, color=colors[r["group"]])
        for g in THRESHOLDS:
            ax.axhline(g, color="0.8", lw=0.8, zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("seconds from data in memory")
        ax.set_title(f"{name} (N={res['n']:,}, D={res['d']})", fontsize=10)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("optimum − ELBO (nats)")
    fig.suptitle("Mean-field logistic regression: ELBO gap to the exact optimum")
    fig.tight_layout()
    path = Path(out) / "benchmark.png"
    fig.savefig(path, dpi=110)
    return path


def rates(text):
    return tuple(float(x) for x in text.split(",") if x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated, from {', '.join(DATASETS)}")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated, from {', '.join(PEERS)}, or 'none'")
    parser.add_argument("--max-iter", type=int, default=None,
                        help=f"iterations of each Adam/ADVI/SVI run (default {MAX_ITER}; "
                             f"quick 3000)")
    parser.add_argument("--ngd-max-iter", type=int, default=1000)
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds per run (default per data set: " + ", ".join(
                            f"{k} {v:g}" for k, v in TIME_LIMIT.items()) + "; quick 60)")
    parser.add_argument("--adam-rates", type=rates, default=None)
    parser.add_argument("--pymc-rates", type=rates, default=None)
    parser.add_argument("--numpyro-rates", type=rates, default=None)
    parser.add_argument("--full-rank-max-dim", type=int, default=101)
    parser.add_argument("--full-rank-max-rows", type=int, default=200_000)
    parser.add_argument("--per-decade", type=int, default=None,
                        help="peers' checkpoints per decade of iterations (default 10; 3 "
                             "beyond 10⁷ entries of X)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="3000 iterations, 60 s per run, learning rates 0.03 and 0.1")
    parser.add_argument("--out", default=str(Path(__file__).parent / "output"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)

    grid = list(QUICK_RATES if args.quick else RATES)
    args.max_iter = args.max_iter or (3000 if args.quick else MAX_ITER)
    if args.quick and args.time_limit is None:
        args.time_limit = 60.0
    datasets = [s for s in args.datasets.split(",") if s]
    unknown = [s for s in datasets if s not in DATASETS]
    if unknown:
        parser.error(f"--datasets: unknown {unknown}; choose from {list(DATASETS)}")
    peers = [] if args.peers == "none" else [s for s in args.peers.split(",") if s]
    unknown = [s for s in peers if s not in PEERS]
    if unknown:
        parser.error(f"--peers: unknown {unknown}; choose from {list(PEERS)} or 'none'")
    missing = [p for p in peers if p != "natvi-adam" and importlib.util.find_spec(p) is None]
    args.peers = [p for p in peers if p not in missing]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []

    def log(text):
        print(text, flush=True)
        lines.append(text)

    start = time.perf_counter()
    log(f"natvi benchmark: {', '.join(datasets)}; peers: {', '.join(args.peers) or 'none'}"
        + (f" ({', '.join(missing)} not installed: pip install 'natvi[bench]')" if missing
           else ""))
    log(f"Adam/ADVI/SVI runs: up to {args.max_iter} iterations; learning rates natvi Adam "
        f"{list(args.adam_rates or grid)}, PyMC pm.adam {list(args.pymc_rates or grid)} (and "
        f"PyMC's default adagrad_window), NumPyro Adam {list(args.numpyro_rates or grid)}")
    log("seconds count from data in memory (imports, model construction and compilation "
        "included); peak MB = rise of the run's subprocess peak RSS (VmHWM) from data in memory")
    results = {}
    with tempfile.TemporaryDirectory(prefix="natvi-bench-") as tmp:
        if "pymc" in args.peers:
            warm_up_pymc(tmp)
            log("(PyTensor's compile cache was warmed by an untimed run on 50 rows first)")
        for name in datasets:
            results[name] = run_dataset(name, args, tmp, log)
    path = plot(results, out)
    if path:
        log(f"\nplot saved to {path}")
    log(f"total wall time: {time.perf_counter() - start:.0f} s")
    (out / "benchmark.txt").write_text("\n".join(lines) + "\n")
    (out / "benchmark.json").write_text(json.dumps(results, default=float))


def warm_up_pymc(tmp):
    """An untimed PyMC run on a tiny data set, so that PyTensor's on-disk cache of compiled C
    code is filled before the timed runs (as on any machine that has run PyMC before)."""
    X, y = synthetic(50, 3)
    np.save(Path(tmp) / "wx.npy", X)
    np.save(Path(tmp) / "wy.npy", y)
    for lr in (None, 0.01):
        in_subprocess({"kind": "pymc", "lr": lr, "X": str(Path(tmp) / "wx.npy"),
                       "y": str(Path(tmp) / "wy.npy"), "seed": 0, "time_limit": 60.0,
                       "max_iter": 20, "checkpoints": [0, 10, 20]}, tmp)


if __name__ == "__main__":
    main()
