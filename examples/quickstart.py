"""Quick start: Bayesian logistic regression on real data, fitted by natural gradients.

Data: the Wisconsin diagnostic breast cancer data (569 tumours × 30 features;
Street, Wolberg & Mangasarian 1993), shipped with natvi. Run:

    python examples/quickstart.py
"""

import warnings

import arviz as az
import numpy as np
import pandas as pd

import natvi
from natvi import diagnostics
from natvi.data import load_breast_cancer
from natvi.models import LogisticRegression

DRAWS = 2000


def main():
    X, y, names = load_breast_cancer()
    X = pd.DataFrame((X - X.mean(axis=0)) / X.std(axis=0), columns=names)  # standardized

    model = LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)
    result = natvi.fit(model, optimizer="ngd", seed=0)
    idata = result.to_arviz(draws=DRAWS, seed=1)

    pd.set_option("display.width", 120)
    print(az.summary(idata, var_names=["intercept", "coef"], kind="stats").round(3))
    print()
    print(f"ELBO (bound on log p(y)): {result.elbo:.4f}")
    print(f"status: {result.status} after {result.n_iter} natural-gradient iterations, "
          f"{result.history['grad_evals'][-1]} ELBO evaluations, "
          f"{result.history['seconds'][-1]:.2f} s")
    k_hat = result.pareto_k(draws=DRAWS, seed=1)
    print(diagnostics.verdict(k_hat, DRAWS))
    with warnings.catch_warnings():  # the high-k̂ warning is reported in the line below
        warnings.simplefilter("ignore", UserWarning)
        loo = diagnostics.loo_approximate_posterior(idata)
    n_bad = int(np.sum(loo.pareto_k > 0.7))
    print(f"approximate-posterior PSIS-LOO: elpd = {loo.elpd:.2f} (se {loo.se:.2f}), "
          f"p_loo = {loo.p_loo:.2f}; {n_bad} of {loo.pareto_k.size} observations have "
          f"LOO k̂ > 0.7, where the estimate is unreliable")


if __name__ == "__main__":
    main()
