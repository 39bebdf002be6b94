"""Minibatch natural gradients against full-batch NGD and Adam on minibatches, in passes over X.

A logistic regression of 10⁷ rows × 20 float32 features (written to .npy files a million
rows at a time by examples/scaling.py): full-batch natural-gradient descent, minibatch
natural gradients (``natvi.fit(..., batch_size=B)``, the default step, and ρ_t = 1/(t + 1),
whose iterate is the running mean of the minibatches' targets) and Adam on the
same minibatches at a grid of learning rates, all measured in passes over the data. A
minibatch fit's passes count its minibatches and its exact passes (one per averaged
window); the ELBO gap of its last iterate is measured on the side at every quarter pass
(not counted). Then the same minibatch fit of 10⁶ rows from memory, from a memory-mapped
file and from Dask chunks.

    python examples/minibatch.py [--rows 1e7] [--batch 10000] [--dir DIR] [--no-plot]
    python examples/minibatch.py --steps      # the steps behind the default, on 10⁶ rows

Prints the tables and saves docs/images/minibatch.png.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import natvi
from natvi.dask_data import read_npy
from natvi.models import LogisticRegression

sys.path.insert(0, os.path.dirname(__file__))
from scaling import make_npy  # noqa: E402

BATCH = 10_000
ADAM_RATES = (1e-3, 3e-3, 1e-2, 3e-2)
PASSES = 4


def passes_to(passes, gaps, level):
    """The first pass count at which ``gaps`` is within ``level`` nats, or inf."""
    hit = np.flatnonzero(np.asarray(gaps) <= level)
    return passes[hit[0]] if hit.size else np.inf


def full_batch(model, family):
    start = time.perf_counter()
    r = natvi.fit(model, family=family, seed=0, progress=False)
    seconds = time.perf_counter() - start
    # one evaluation of the ELBO and its gradient is one pass over X
    passes = r.history["grad_evals"].astype(float)
    return r, seconds, passes, r.history["elbo"]


def minibatch(model, family, optimizer, optimum, batch):
    """A minibatch fit, with its iterate's exact gap every quarter pass (on the side)."""
    n_b = -(-model.X.shape[0] // batch)
    side, aside = [], [0.0]

    def watch(iteration, elbo, posterior):
        if iteration % max(1, n_b // 4) == 0:
            start = time.perf_counter()
            side.append((iteration / n_b, optimum - model.engine.elbo(posterior).value))
            aside[0] += time.perf_counter() - start

    start = time.perf_counter()
    r = natvi.fit(model, optimizer, family=family, seed=0, batch_size=batch,
                  max_iter=PASSES * n_b, callback=watch, progress=False)
    seconds = time.perf_counter() - start - aside[0]  # the fit's own time
    # a check at iteration i has read i minibatches and made as many exact passes as
    # checks so far
    checks = [(i / n_b + j + 1, optimum - elbo) for j, (i, elbo, _) in enumerate(r.state.checks)]
    return r, seconds, side, checks


def row(name, passes_1, passes_01, final_gap, seconds, status):
    print(f"{name:40} {passes_1:>10.3g} {passes_01:>10.3g} {final_gap:>12.4g} "
          f"{seconds:>8.1f}  {status}")


def section_passes(prefix, batch, plot):
    X, y = np.load(prefix + "X.npy"), np.load(prefix + "y.npy")
    model = LogisticRegression(X, y)
    n = X.shape[0]
    family = natvi.MeanFieldGaussian
    print(f"\n## {n:.0e} × {X.shape[1]} float32, mean-field Gaussian, minibatches of "
          f"{batch} rows ({-(-n // batch)} per pass)\n")
    full, seconds, passes, elbos = full_batch(model, family)
    optimum = full.elbo
    print(f"full-batch optimum ELBO {optimum:.6f} ({full.status}, {full.n_iter} iterations)")
    print(f"\n{'method':40} {'passes≤1':>10} {'passes≤0.1':>10} {'final gap':>12} "
          f"{'seconds':>8}  status")
    gaps = optimum - elbos
    row("full-batch NGD", passes_to(passes, gaps, 1), passes_to(passes, gaps, 0.1),
        gaps[-1], seconds, full.status)
    curves = {"full-batch NGD": (passes, gaps)}
    harmonic = natvi.optim.natural_gradient(1.0, schedule="robbins_monro", decay=1.0, delay=1.0)
    runs = [("minibatch NGD", "ngd"), ("minibatch NGD ρ=1/(t+1)", harmonic),
            *((f"Adam({lr:g}) minibatch", natvi.optim.adam(lr)) for lr in ADAM_RATES)]
    for name, optimizer in runs:
        r, seconds, side, checks = minibatch(model, family, optimizer, optimum, batch)
        it_passes, it_gaps = (np.array(v) for v in zip(*side, strict=True))
        av_passes, av_gaps = ((np.array(v) for v in zip(*checks, strict=True)) if checks
                              else (np.array([np.inf]), np.array([np.inf])))
        row(f"{name}, last iterate", passes_to(it_passes, it_gaps, 1),
            passes_to(it_passes, it_gaps, 0.1), it_gaps[-1], seconds, "(measured on the side)")
        row(f"{name}, mean iterate", passes_to(av_passes, av_gaps, 1),
            passes_to(av_passes, av_gaps, 0.1), optimum - r.elbo, seconds, r.status)
        curves[name] = (it_passes, it_gaps, av_passes, av_gaps)
    print("\npasses: evaluations of the full-batch fit; a minibatch fit's minibatches read "
          "(in passes) plus its full passes, one per averaged pass (the mean iterate's gap is "
          "known only at them); the last iterate's gap is measured on the side, uncounted; "
          "seconds: the fit's own")
    if plot:
        adam = [name for name in curves if name.startswith("Adam")]
        best = min(adam, key=lambda name: curves[name][3][-1])
        save_plot({name: curves[name] for name in curves
                   if not name.startswith("Adam") or name == best})


def section_steps(prefix, batch):
    """The gap of the mean iterate after each pass, for constant steps c = k / n_b and
    Robbins–Monro steps c (1 + t/n_b)^−κ: the measurements behind the default."""
    X, y = np.load(prefix + "X.npy"), np.load(prefix + "y.npy")
    model = LogisticRegression(X, y)
    n_b = -(-X.shape[0] // batch)
    optimum = natvi.fit(model, family=natvi.MeanFieldGaussian, progress=False).elbo
    print(f"\n## steps on {X.shape[0]:.0e} rows, {n_b} minibatches per pass: the mean "
          f"iterate's gap (nats) after each pass\n")
    print(f"{'step':34} {'pass 1':>9} {'pass 2':>9} {'pass 3':>9} {'pass 4':>9}")
    runs = [(f"constant c = {k}/n_b", {"learning_rate": min(1.0, k / n_b)})
            for k in (10, 20, 40, 80)]
    runs += [(f"c = {k}/n_b, (1 + t/n_b)^-{kappa}",
              {"learning_rate": min(1.0, k / n_b) * n_b**kappa, "schedule": "robbins_monro",
               "decay": kappa, "delay": float(n_b)}) for k, kappa in ((20, 1.0), (40, 0.6))]
    for name, options in runs:
        optimizer = natvi.optim.natural_gradient(warm_start=True, family_steps=False,
                                                 **options)
        r = natvi.fit(model, optimizer, family=natvi.MeanFieldGaussian, seed=0,
                      batch_size=batch, tol=0.0, max_iter=int(4.2 * n_b), progress=False)
        gaps = [f"{optimum - elbo:9.3g}" for _, elbo, _ in r.state.checks]
        print(f"{name:34} {' '.join(gaps)}")


def section_sources(prefix, batch):
    X_file, y_file = prefix + "X.npy", prefix + "y.npy"
    print("\n## the same minibatch fit from memory, from a memory-mapped file and from Dask "
          "chunks\n")
    print(f"{'data':12} {'status':>10} {'ELBO':>20} {'passes':>8} {'seconds':>8}")
    sources = {"memory": lambda: (np.load(X_file), np.load(y_file)),
               "memmap": lambda: (np.load(X_file, mmap_mode="r"), np.load(y_file)),
               "dask": lambda: (read_npy(X_file, chunk_rows=batch), read_npy(y_file))}
    for name, load in sources.items():
        X, y = load()
        model = LogisticRegression(X, y)
        start = time.perf_counter()
        r = natvi.fit(model, family=natvi.MeanFieldGaussian, seed=0, batch_size=batch,
                      max_iter=PASSES * (-(-X.shape[0] // batch)), progress=False)
        seconds = time.perf_counter() - start
        passes = r.state.n_evals * batch / X.shape[0] + len(r.state.checks)
        print(f"{name:12} {r.status:>10} {r.elbo:20.6f} {passes:8.2f} {seconds:8.1f}")
    print("(memory: strided minibatches; memmap and dask: contiguous blocks, the same ones)")


def save_plot(curves):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for j, (name, curve) in enumerate(curves.items()):
        color = f"C{j}"
        pairs = ([(curve[0], curve[1], "o-", name)] if len(curve) == 2 else
                 [(curve[0], curve[1], "--", f"{name}, last iterate"),
                  (curve[2], curve[3], "o-", f"{name}, mean iterate")])
        for passes, gaps, style, label in pairs:
            keep = np.isfinite(passes) & (np.asarray(gaps) > 0)
            ax.semilogy(np.asarray(passes)[keep], np.asarray(gaps)[keep], style, color=color,
                        label=label, ms=4)
    ax.axhline(1, color="grey", lw=0.5)
    ax.axhline(0.1, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("passes over the data")
    ax.set_ylabel("ELBO gap to the full-batch optimum (nats)")
    ax.set_xlim(0, PASSES + 2)
    ax.set_ylim(1e-3, 1e6)
    ax.legend(fontsize=7, loc="upper right")
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "images", "minibatch.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"saved {os.path.normpath(path)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1e7", help="N of the passes section")
    parser.add_argument("--batch", type=int, default=BATCH, help="rows per minibatch")
    parser.add_argument("--dir", default=None, help="where the data files go")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--steps", action="store_true",
                        help="only the comparison of steps, on min(rows, 1e6) rows")
    args = parser.parse_args()

    directory = args.dir or tempfile.mkdtemp(prefix="natvi-minibatch-")
    os.makedirs(directory, exist_ok=True)
    print(f"natvi {natvi.__version__}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    try:
        if args.steps:
            section_steps(make_npy(directory, min(int(float(args.rows)), 1_000_000), 20),
                          args.batch if args.batch != BATCH else 1000)
            return
        section_passes(make_npy(directory, int(float(args.rows)), 20), args.batch,
                       not args.no_plot)
        section_sources(make_npy(directory, min(int(float(args.rows)), 1_000_000), 20),
                        args.batch)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
