"""Natural gradient vs Adam on the same ELBO: Bayesian logistic regression, breast-cancer data.

Both optimizers climb the same deterministic (Gauss–Hermite) mean-field ELBO
from the same start: the family is named, ``family=natvi.MeanFieldGaussian``, since
natvi's default for this model is a full-rank Gaussian. The table gives iterations,
ELBO-and-gradient evaluations and seconds to come within 1, 0.1 and 0.01 nats of the
best ELBO any run reached, and the plot shows ELBO against iteration and against
seconds. Run:

    python examples/ngd_vs_adam.py [--out ngd_vs_adam.png] [--max-iter 20000]
"""

import argparse
from pathlib import Path

import numpy as np

import natvi
from natvi.data import load_breast_cancer
from natvi.models import LogisticRegression

THRESHOLDS = (1.0, 0.1, 0.01)
ADAM_RATES = (0.003, 0.01, 0.03, 0.1, 0.3)


def first_within(history, best, gap):
    """(iteration, gradient evaluations, seconds) when the ELBO first came within ``gap``."""
    hit = np.flatnonzero(history["elbo"] >= best - gap)
    if hit.size == 0:
        return None
    i = hit[0]
    return i, history["grad_evals"][i], history["seconds"][i]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).parent / "output" / "ngd_vs_adam.png"
    parser.add_argument("--out", default=str(default_out))
    parser.add_argument("--max-iter", type=int, default=20000)
    args = parser.parse_args()

    X, y, _ = load_breast_cancer()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)

    family = natvi.MeanFieldGaussian
    runs = {"natural gradient": natvi.fit(model, "ngd", family=family, max_iter=args.max_iter)}
    for lr in ADAM_RATES:
        runs[f"adam lr={lr:g}"] = natvi.fit(model, natvi.optim.adam(lr), family=family,
                                            max_iter=args.max_iter)
    best = max(r.history["elbo"].max() for r in runs.values())

    cols = "".join(f"{'iter@' + format(g, 'g'):>10}{'evals':>7}{'sec':>8}" for g in THRESHOLDS)
    header = f"{'method':<18}{'status':>10}{'final gap':>11}  " + cols
    print(f"best mean-field ELBO {best:.6f} (breast cancer, N={X.shape[0]}, D={X.shape[1]} "
          f"+ intercept)")
    print(header)
    print("-" * len(header))
    reached = {}
    for name, r in runs.items():
        row = f"{name:<18}{r.status:>10}{best - r.elbo:>11.2e}  "
        for g in THRESHOLDS:
            hit = first_within(r.history, best, g)
            reached[name, g] = hit
            row += (f"{hit[0]:>10d}{hit[1]:>7d}{hit[2]:>8.3f}" if hit
                    else f"{'never':>10}{'':>7}{'':>8}")
        print(row)

    ngd = "natural gradient"
    print("\nAdam / natural gradient, in iterations (and seconds) to the same target:")
    for name in runs:
        if name == ngd:
            continue
        parts = []
        for g in THRESHOLDS:
            a, n = reached[name, g], reached[ngd, g]
            parts.append(f"{g:g} nats: {a[0] / max(n[0], 1):6.0f}x ({a[2] / n[2]:5.0f}x)"
                         if a and n else f"{g:g} nats: never")
        print(f"  {name:<16}" + "   ".join(parts))

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\n(matplotlib is not installed: pip install 'natvi[plot]' for the plot)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, r in runs.items():
        gap = np.maximum(best - r.history["elbo"], 1e-10)
        style = dict(lw=2.5, color="k") if name == ngd else dict(lw=1.2)
        axes[0].plot(np.arange(gap.size), gap, label=name, **style)
        axes[1].plot(np.maximum(r.history["seconds"], 1e-4), gap, label=name, **style)
    for ax, xlabel in zip(axes, ("iteration", "seconds"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        for g in THRESHOLDS:
            ax.axhline(g, color="0.8", lw=0.8, zorder=0)
    axes[0].set_ylabel("best ELBO − ELBO (nats)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Mean-field VI for logistic regression: natural gradient vs Adam")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"\nplot saved to {out}")


if __name__ == "__main__":
    main()
