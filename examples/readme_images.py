"""Make the README's images, in docs/images/ (committed with the repository).

Bayesian logistic regression on the Wisconsin breast cancer data (569 tumours × 30
standardized features, shipped with natvi):

- ``ngd_vs_adam.png``: the mean-field ELBO (``family=natvi.MeanFieldGaussian``) of the
  natural gradient and of Adam at three learning rates, as the gap to the best ELBO,
  against ELBO-and-gradient evaluations and against seconds (``natvi.plot.elbo``);
- ``arviz_forest.png``: ArviZ's forest plot of the mean-field and full-rank posteriors of
  the intercept and coefficients (full-rank is natvi's default for this model), from
  ``result.to_arviz()`` (``az.plot_forest``, from ArviZ's own matplotlib plots on 0.x and
  from arviz-plots on ≥ 1.0), and the Pareto k̂ verdict of each.

Needs matplotlib (``pip install "natvi[plot]"``). Run:

    python examples/readme_images.py [--out-dir docs/images]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402  (after choosing the backend)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import natvi  # noqa: E402
import natvi.plot  # noqa: E402
from natvi.arviz_bridge import arviz_1  # noqa: E402
from natvi.data import load_breast_cancer  # noqa: E402
from natvi.models import LogisticRegression  # noqa: E402

ADAM_RATES = (0.01, 0.1, 0.3)
MAX_ITER = 5000
DRAWS = 2000
DPI = 100


def breast_cancer_model():
    """Logistic regression on the standardized breast-cancer features (named columns)."""
    X, y, names = load_breast_cancer()
    X = pd.DataFrame((X - X.mean(axis=0)) / X.std(axis=0), columns=names)
    return LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)


def ngd_vs_adam(model, path):
    """Mean-field ELBO gap of the natural gradient and of Adam at ``ADAM_RATES``; writes
    ``path``."""
    family = natvi.MeanFieldGaussian
    runs = {"natural gradient": natvi.fit(model, "ngd", family=family, max_iter=MAX_ITER)}
    for lr in ADAM_RATES:
        runs[f"Adam, learning rate {lr:g}"] = natvi.fit(model, natvi.optim.adam(lr),
                                                         family=family, max_iter=MAX_ITER)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, x in zip(axes, ("gradient_evaluations", "seconds"), strict=True):
        natvi.plot.elbo(runs, x=x, ax=ax)
        ax.set_xscale("log")
        ax.axhline(0.01, color="0.8", lw=0.8, zorder=0)
    axes[1].set_ylabel("")
    axes[1].get_legend().remove()
    fig.suptitle("Mean-field Gaussian VI, logistic regression on breast cancer "
                 "(N = 569, D = 30): natural gradient vs Adam")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    best = max(r.history["elbo"].max() for r in runs.values())
    print(f"  best mean-field ELBO of any run: {best:.4f}")
    for name, r in runs.items():
        hit = (r.history["elbo"] >= best - 0.01).nonzero()[0]
        reached = (f"within 0.01 nats of the best ELBO after {r.history['grad_evals'][hit[0]]} "
                   f"evaluations ({hit[0]} iterations), {r.history['seconds'][hit[0]]:.2f} s"
                   if hit.size
                   else "never within 0.01 nats of the best ELBO")
        print(f"  {name:<26} {r.status:>9}, {reached}")
    return runs


def arviz_forest(model, path):
    """ArviZ forest plot of the mean-field and full-rank posteriors; writes ``path``."""
    fits = {"mean-field": natvi.fit(model, family=natvi.MeanFieldGaussian),
            "full-rank": natvi.fit(model, family=natvi.FullRankGaussian)}
    data = {name: r.to_arviz(draws=DRAWS, seed=1) for name, r in fits.items()}
    title = ("Posterior of the intercept and coefficients (breast cancer):\n"
             "mean-field vs full-rank Gaussian, 50% and 94% intervals")
    if arviz_1():  # arviz-plots: a dict of DataTrees, one model each
        pc = az.plot_forest(data, var_names=["intercept", "coef"], combined=True,
                            backend="matplotlib", ci_kind="eti", ci_probs=(0.5, 0.94),
                            figure_kwargs={"figsize": (7, 9)})
        pc.add_legend("model")
        fig = pc.get_viz("figure")
    else:  # ArviZ 0.x: a list of InferenceData and their names
        axes = az.plot_forest(list(data.values()), model_names=list(data),
                              var_names=["intercept", "coef"], combined=True, hdi_prob=0.94,
                              figsize=(7, 9))
        fig = axes.ravel()[0].figure
        axes.ravel()[0].set_title("")
    fig.suptitle(title)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    for name, r in fits.items():
        print(f"  {name:<11} ELBO {r.elbo:.2f}, {r.diagnose(DRAWS, seed=1).message}")
    full_rank_cov = fits["full-rank"].posterior["intercept", "coef"].cov
    ratio = np.sqrt(np.diag(full_rank_cov))[1:] / fits["mean-field"].posterior["coef"].scale
    print(f"  coefficient sds, full-rank / mean-field: {ratio.min():.2f} to {ratio.max():.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "docs" / "images"
    parser.add_argument("--out-dir", default=str(default))
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = breast_cancer_model()

    path = out / "ngd_vs_adam.png"
    print("natural gradient vs Adam:")
    ngd_vs_adam(model, path)
    print(f"wrote {path} ({path.stat().st_size / 1000:.0f} kB)")

    path = out / "arviz_forest.png"
    print(f"mean-field vs full-rank, ArviZ {az.__version__} forest plot:")
    arviz_forest(model, path)
    print(f"wrote {path} ({path.stat().st_size / 1000:.0f} kB)")


if __name__ == "__main__":
    main()
