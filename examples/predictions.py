"""Posterior predictive checks, predictions on new rows, and formulas.

1. The quick start's fit (Bayesian logistic regression on the breast-cancer data):
   ``to_arviz(posterior_predictive=True)`` and ArviZ's ``plot_ppc``, saved as
   ``docs/images/ppc.png`` (ArviZ 0.x's ``plot_ppc``; ``plot_ppc_pava``, the calibration
   plot for binary data, on ArviZ ≥ 1.0), and the LOO-PIT values' range.
2. Predictions on new rows with intervals: the average benign tumour, the average
   malignant one, and the point halfway between them.
3. A formula with a categorical column and an interaction on the COIL 2000 insurance data
   (5822 customers; ``C(MOSHOOFD)`` is the customer main type, 10 levels), and predictions
   for two new customers coded with the fitted spec. Needs ``pip install "natvi[formula]"``.

Needs matplotlib and pandas (``pip install "natvi[plot,formula]"``). Run:

    python examples/predictions.py [--out-dir docs/images]
"""

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402  (after choosing the backend)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.special import expit  # noqa: E402

import natvi  # noqa: E402
from natvi.arviz_bridge import arviz_1  # noqa: E402
from natvi.data import load_breast_cancer, load_caravan  # noqa: E402
from natvi.models import LogisticRegression  # noqa: E402

DRAWS = 1000
DPI = 100


def posterior_predictive_check(result, path):
    """plot_ppc of the fit's replicated data; writes ``path``."""
    idata = result.to_arviz(draws=DRAWS, seed=1, posterior_predictive=True)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", UserWarning)  # LOO-PIT's and the plots' notes
        if arviz_1():
            pc = az.plot_ppc_pava(idata, backend="matplotlib")
            fig = pc.get_viz("figure")
            title = "PAV-adjusted calibration of 1000 replicated data sets"
            pit = az.loo_pit(idata)["y"].values
        else:
            ax = np.ravel(az.plot_ppc(idata, num_pp_samples=200, random_seed=0,
                                      figsize=(7, 4)))[0]
            ax.set_xlabel("y (0 benign, 1 malignant)")
            fig = ax.figure
            title = "observed diagnoses vs 200 of 1000 replicated data sets"
            pit = az.loo_pit(idata, y="y")
    fig.suptitle(f"Posterior predictive check, logistic regression on breast cancer:\n{title}",
                 y=1.02)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    replicated = idata["posterior_predictive"]["y"].values[0]
    observed = idata["observed_data"]["y"].values
    share = replicated.mean(axis=1)
    print(f"  malignant share: observed {observed.mean():.3f}, replicated "
          f"{share.mean():.3f} (94% of data sets within {np.quantile(share, 0.03):.3f} to "
          f"{np.quantile(share, 0.97):.3f})")
    print(f"  LOO-PIT values from {pit.min():.3f} to {pit.max():.3f}")


def new_tumours(result, X, y):
    """Predictions for the average benign and malignant tumours and their midpoint."""
    means = X.groupby(y).mean()
    X_new = pd.concat([means, means.mean().to_frame().T], ignore_index=True)
    pred = result.predict(X_new, draws=4000, seed=2, prob=0.94)
    table = pred.to_dataframe()
    # σ is increasing: the interval of η maps to the interval of P(malignant) under q
    table["p_lower"], table["p_upper"] = (expit(pred.linear_predictor.lower),
                                          expit(pred.linear_predictor.upper))
    table.index = ["average benign", "average malignant", "halfway"]
    print(table.round(3).to_string())


def formula_on_caravan():
    """A formula with a categorical column and an interaction, and new customers."""
    X, y, names = load_caravan()
    df = pd.DataFrame(X, columns=names).assign(purchase=y)
    df["MOSHOOFD"] = df["MOSHOOFD"].astype(int)  # codes 1 to 10: levels "1" to "10"
    formula = "purchase ~ C(MOSHOOFD) + PPERSAUT + MKOOPKLA + PPERSAUT:MKOOPKLA"
    start = time.perf_counter()
    model = LogisticRegression.from_formula(formula, data=df, prior_scale=1.0)
    result = natvi.fit(model, seed=0)
    seconds = time.perf_counter() - start
    print(f"  {formula}: {model.X.shape[1]} coefficients + intercept, {result.message}, "
          f"{seconds:.2f} s")
    idata = result.to_arviz(draws=DRAWS, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = az.summary(idata, var_names=["intercept", "coef"], kind="stats").round(3)
    print(stats.to_string())
    customers = pd.DataFrame({"MOSHOOFD": [2, 8], "PPERSAUT": [6.0, 0.0],
                              "MKOOPKLA": [7.0, 3.0]})
    print(result.predict(customers, draws=4000, seed=2).to_dataframe().round(4).to_string())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "docs" / "images"
    parser.add_argument("--out-dir", default=str(default))
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    X, y, names = load_breast_cancer()
    X = pd.DataFrame((X - X.mean(axis=0)) / X.std(axis=0), columns=names)
    result = natvi.fit(LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0), seed=0)
    path = out / "ppc.png"
    print(f"posterior predictive check (ArviZ {az.__version__}):")
    posterior_predictive_check(result, path)
    print(f"wrote {path} ({path.stat().st_size / 1000:.0f} kB)")
    print()
    print("predictions for new tumours (94% intervals):")
    new_tumours(result, X, y)
    print()
    print("a formula on the COIL 2000 insurance data:")
    formula_on_caravan()


if __name__ == "__main__":
    main()
