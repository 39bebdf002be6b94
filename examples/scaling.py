"""How natvi's GLM engine scales: from memory, from disk and on a Dask cluster.

Sections (each can be run alone with ``--only``):

- ``pass``: seconds per pass over X (one ELBO evaluation with its gradient, mean-field
  Gaussian q) for N = 1e5, 1e6, 1e7 rows × 20 float32 features: in memory, on disk (a
  memory-mapped .npy file, threaded scheduler) and on a two-process LocalCluster (X
  persisted in the workers); with the tasks per evaluation, the bytes the parameters and
  the partial sums take, and on the cluster the time that is not the tasks' compute
  (scheduler and transfers).
- ``equality``: the fit of 1e6 × 100 as dask arrays on the LocalCluster against the
  in-memory fit: ELBO and every mean and sd, and seconds per iteration of each.
- ``out-of-core``: the fit of 1e7 × 20 float32 from a .npy file on disk, against the same
  fit from memory, each in a child process that samples its RssAnon (private memory, not
  the file's cached pages) from /proc/self/status.
- ``loo``: PSIS-LOO on 1e6 rows from 2% of them (natvi.loo_subsample) against the full
  PSIS-LOO on the same draws.

Run: ``python examples/scaling.py [--only pass,equality,out-of-core,loo] [--dir DIR]``
(needs ``natvi[dask]``; the data files go to DIR, 1.4 GB at most, removed at the end).
"""

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import natvi
from natvi.dask_data import read_npy
from natvi.models import LogisticRegression

ROWS_PER_WRITE = 1_000_000


def make_npy(directory, n, d, dtype=np.float32, seed=0):
    """X (n × d, ``dtype``) and labels y of a logistic regression, written to .npy files a
    million rows at a time (never all in memory); returns the file prefix."""
    prefix = os.path.join(directory, f"{n}x{d}{np.dtype(dtype).name}_")
    if os.path.exists(prefix + "y.npy"):
        return prefix
    X = np.lib.format.open_memmap(prefix + "X.npy", mode="w+", dtype=dtype, shape=(n, d))
    y = np.lib.format.open_memmap(prefix + "y.npy", mode="w+", dtype=np.int8, shape=(n,))
    rng = np.random.default_rng(seed)
    beta = np.linspace(-1, 1, d) / np.sqrt(d)
    for start in range(0, n, ROWS_PER_WRITE):
        stop = min(n, start + ROWS_PER_WRITE)
        x = rng.normal(size=(stop - start, d)).astype(dtype)
        X[start:stop] = x
        y[start:stop] = rng.random(stop - start) < 1 / (1 + np.exp(-(0.2 + x @ beta)))
    X.flush()
    y.flush()
    del X, y
    return prefix


def mean_field(d):
    """A mean-field q over the intercept and d coefficients, for timing passes."""
    return {"intercept": natvi.MeanFieldGaussian(loc=np.array(0.1), scale=np.array(0.1)),
            "coef": natvi.MeanFieldGaussian(loc=np.full(d, 0.05), scale=np.full(d, 0.1))}


def seconds(fn, *args, repeats=3):
    """Median wall seconds of ``fn(*args)`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def graph_facts(model, q):
    """Tasks of one evaluation's graph, and pickled bytes of the parameters' task and of
    one partial sum (a chunk task's output, whatever its rows)."""
    from natvi.engines.dask_glm import _block_integral

    graph = dict(model.engine.data_graph(q).__dask_graph__())
    params = next(v for k, v in graph.items() if str(k).startswith("natvi-params"))
    d = model.X.shape[1]
    partial = _block_integral(np.zeros((4, d)), np.zeros(4), None,
                              (model.design.factors_of(q), model.likelihood, None, "hessian",
                               "coef", "intercept"))
    return len(graph), len(pickle.dumps(params)), len(pickle.dumps(partial))


def section_pass(directory, sizes, d=20):
    from distributed import Client, LocalCluster

    print(f"\n## Seconds per pass over X (one ELBO evaluation and gradient), {d} float32 "
          "features, mean-field q\n")
    print(f"{'N':>10} {'memory':>8} {'disk':>8} {'cluster':>8} {'tasks':>6} "
          f"{'params B':>9} {'partial B':>9} {'moved/eval':>11} {'not compute':>12}")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        import dask

        for n in sizes:
            prefix = make_npy(directory, n, d)
            q = mean_field(d)
            X, y = np.load(prefix + "X.npy"), np.load(prefix + "y.npy")
            memory = seconds(LogisticRegression(X, y).engine.elbo, q)
            del X, y
            with dask.config.set(scheduler="threads"):
                disk_model = LogisticRegression(read_npy(prefix + "X.npy"),
                                                read_npy(prefix + "y.npy"))
                disk = seconds(disk_model.engine.elbo, q)
                tasks, params_bytes, partial_bytes = graph_facts(disk_model, q)
            with dask.config.set(scheduler=client.get):
                rows = max(1, 2**24 // (4 * d))  # 16 MB chunks, in the workers' memory
                Xc = client.persist(read_npy(prefix + "X.npy", rows).map_blocks(np.array))
                yc = client.persist(read_npy(prefix + "y.npy", rows).map_blocks(np.array))
                cluster_model = LogisticRegression(Xc, yc)
                cluster_model.engine.elbo(q)  # warm: the workers import natvi
                wall = seconds(cluster_model.engine.elbo, q)
                overhead, _ = not_compute(client, cluster_model, q)
                c_tasks = len(dict(cluster_model.engine.data_graph(q).__dask_graph__()))
                del Xc, yc, cluster_model
            moved = 2 * params_bytes + (c_tasks - 1) * partial_bytes
            print(f"{n:>10.0e} {memory:8.3f} {disk:8.3f} {wall:8.3f} {tasks:>6} "
                  f"{params_bytes:>9} {partial_bytes:>9} {moved:>11} {overhead:12.3f}")


def not_compute(client, model, q):
    """Wall seconds of an evaluation on the cluster less its busiest worker's compute
    seconds (the scheduler's and the transfers' share), and the workers' compute seconds
    added up."""
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        start = time.perf_counter()
        model.engine.elbo(q)
        wall = time.perf_counter() - start
    busy = {}
    for task in stream.data:
        for ss in task["startstops"]:
            if ss["action"] == "compute":
                busy[task["worker"]] = busy.get(task["worker"], 0.0) + ss["stop"] - ss["start"]
    return wall - max(busy.values(), default=0.0), sum(busy.values())


def section_equality(directory, n=1_000_000, d=100):
    import dask.array as da
    from distributed import Client, LocalCluster

    print(f"\n## {n:.0e} × {d} on a two-process LocalCluster against in memory\n")
    prefix = make_npy(directory, n, d, dtype=np.float64, seed=1)
    X, y = np.load(prefix + "X.npy"), np.load(prefix + "y.npy")
    # what family="auto" picks at this size; both fits run 25 iterations (tol=0): with the
    # default tolerance each stops once a step gains < 1e-13 nats, and a rounding-level
    # difference in the ELBO can flip one step's acceptance, so they may stop one
    # iteration apart, as far apart as the tolerance allows
    family, options = natvi.MeanFieldGaussian, {"tol": 0.0, "max_iter": 25}
    memory_model = LogisticRegression(X, y)
    r0 = natvi.fit(memory_model, family=family, seed=0, progress=False, **options)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        rows = 125_000
        Xc = client.persist(da.from_array(X, chunks=(rows, -1)))
        yc = client.persist(da.from_array(y, chunks=rows))
        model = LogisticRegression(Xc, yc)
        r1 = natvi.fit(model, family=family, seed=0, progress=False, **options)
        # the engines at one q away from the optimum: value and natural gradient
        e0, e1 = (m.engine.elbo(mean_field(d)) for m in (memory_model, model))
        tasks = len(dict(model.engine.data_graph(r1.posterior).__dask_graph__()))
        overhead, busy = not_compute(client, model, r1.posterior)
        alone = seconds(memory_model.engine.elbo, r1.posterior, repeats=1)
    rel = abs(r1.elbo - r0.elbo) / abs(r0.elbo)
    mean = max(np.max(np.abs(r1.posterior[k].mean() - q.mean()) / np.abs(q.mean()))
               for k, q in r0.posterior.items())
    sd = max(np.max(np.abs(np.sqrt(r1.posterior[k].var() / q.var()) - 1))
             for k, q in r0.posterior.items())
    # a mean near 0 has a large relative difference at any rounding: also in posterior sds
    in_sds = max(np.max(np.abs(r1.posterior[k].mean() - q.mean()) / np.sqrt(q.var()))
                 for k, q in r0.posterior.items())
    nearest = min(np.min(np.abs(q.mean())) for q in r0.posterior.values())
    per = [r.history["seconds"][-1] / r.history["grad_evals"][-1] for r in (r0, r1)]
    print(f"{'':12} {'ELBO':>18} {'iterations':>10} {'evaluations':>11} {'s/evaluation':>12}")
    for name, r, p in (("in memory", r0, per[0]), ("LocalCluster", r1, per[1])):
        print(f"{name:12} {r.elbo:18.10f} {r.n_iter:>10} {int(r.history['grad_evals'][-1]):>11} "
              f"{p:12.3f}")
    grad = max(np.max(np.abs(e1.grads[k] - g)) / np.max(np.abs(g)) for k, g in e0.grads.items())
    value = abs(e1.value - e0.value) / abs(e0.value)
    print(f"at the same q: relative difference of the ELBO {value:.1e}, of the natural "
          f"gradient (largest entry difference / largest entry) {grad:.1e}")
    print(f"statuses {r0.status}, {r1.status}; relative ELBO difference {rel:.1e}; largest "
          f"relative difference of a mean {mean:.1e} (the mean nearest 0 is {nearest:.1e}), "
          f"of a mean in posterior sds {in_sds:.1e}, of an sd {sd:.1e}")
    print(f"cluster/in-memory time per evaluation {per[1] / per[0]:.2f}; {tasks} tasks per "
          f"evaluation; {overhead:.3f} s of an evaluation not in the busiest worker's compute;"
          f" the workers' compute added up {busy:.2f} s against {alone:.2f} s for the "
          f"in-memory evaluation")


CHILD = r"""
import json, sys, threading, time
import numpy as np

def rss_anon():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("RssAnon")) / 1024

peak = [0.0]
def poll():
    while True:
        peak[0] = max(peak[0], rss_anon())
        time.sleep(0.005)

threading.Thread(target=poll, daemon=True).start()
import natvi
from natvi.dask_data import read_npy
from natvi.models import LogisticRegression
prefix, where = sys.argv[1], sys.argv[2]
base = rss_anon()
start = time.perf_counter()
if where == "disk":
    X, y = read_npy(prefix + "X.npy"), read_npy(prefix + "y.npy")
else:
    X, y = np.load(prefix + "X.npy"), np.load(prefix + "y.npy")
r = natvi.fit(LogisticRegression(X, y), seed=0, progress=False)
seconds = time.perf_counter() - start
time.sleep(0.05)
print(json.dumps({"seconds": seconds, "peak": peak[0], "base": base, "elbo": r.elbo,
                  "status": r.status, "evals": int(r.history["grad_evals"][-1]),
                  "n_iter": r.n_iter}))
"""


def section_out_of_core(directory, n=10_000_000, d=20):
    print(f"\n## {n:.0e} × {d} float32 ({n * d * 4 / 1e6:.0f} MB): the fit from disk "
          f"against from memory (each in a child process)\n")
    prefix = make_npy(directory, n, d)
    print(f"{'':10} {'seconds':>8} {'evaluations':>11} {'peak RssAnon MB':>16} "
          f"{'after imports':>13} {'ELBO':>18}")
    out = {}
    for where in ("memory", "disk"):
        done = subprocess.run([sys.executable, "-c", CHILD, prefix, where], capture_output=True,
                              text=True, check=True)
        out[where] = r = json.loads(done.stdout)
        print(f"{where:10} {r['seconds']:8.1f} {r['evals']:>11} {r['peak']:16.0f} "
              f"{r['base']:13.0f} {r['elbo']:18.8f}")
    print(f"disk/memory time {out['disk']['seconds'] / out['memory']['seconds']:.2f}")


def section_loo(directory, n=1_000_000, d=20, draws=200):
    print(f"\n## PSIS-LOO on {n:.0e} rows × {d}, {draws} draws: 2% of the rows against all\n")
    prefix = make_npy(directory, n, d, seed=2)
    result = natvi.fit(LogisticRegression(np.load(prefix + "X.npy"), np.load(prefix + "y.npy")),
                       seed=0, progress=False)
    print(f"{'':14} {'elpd':>14} {'SE':>8} {'subsampling SE':>15} {'rows':>8} {'seconds':>8}")
    rows = {}
    for name, observations in (("subsample 2%", 0.02), ("full", None)):
        start = time.perf_counter()
        rows[name] = loo = natvi.loo_subsample(result, observations, draws=draws, seed=3)
        print(f"{name:14} {loo.elpd:14.2f} {loo.se:8.2f} {loo.subsampling_se:15.2f} "
              f"{len(loo.index):>8} {time.perf_counter() - start:8.1f}")
    sub, full = rows["subsample 2%"], rows["full"]
    print(f"difference {sub.elpd - full.elpd:.2f} = "
          f"{(sub.elpd - full.elpd) / sub.subsampling_se:.2f} subsampling SEs")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="pass,equality,out-of-core,loo")
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="N of the pass section")
    parser.add_argument("--dir", default=None, help="where the data files go")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="natvi-scaling-")
    os.makedirs(directory, exist_ok=True)
    print(f"natvi {natvi.__version__}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    try:
        for name in args.only.split(","):
            if name == "pass":
                section_pass(directory, [int(float(s)) for s in args.sizes.split(",")])
            elif name == "equality":
                section_equality(directory)
            elif name == "out-of-core":
                section_out_of_core(directory)
            elif name == "loo":
                section_loo(directory)
            else:
                parser.error(f"--only: unknown section {name!r}")
            print(f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
