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
from natvi.arviz_bridge import arviz_1
from natvi.data import load_breast_cancer
from natvi.models import LogisticRegression

DRAWS = 4000


def main():
    X, y, names = load_breast_cancer()
    X = pd.DataFrame((X - X.mean(axis=0)) / X.std(axis=0), columns=names)  # standardized

    model = LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)
    result = natvi.fit(model, seed=0)  # family="auto": full-rank here, as the summary says
    print(result)
    print()
    idata = result.to_arviz(draws=DRAWS, seed=1)
    pd.set_option("display.width", 120)
    print(az.summary(idata, var_names=["intercept", "coef"], kind="stats").round(3))
    print()
    print(result.diagnose(draws=DRAWS, seed=1))
    weighted = result.importance(draws=DRAWS, seed=1)  # the same draws, reweighted
    ratio = weighted.sd()["coef"] / weighted.draws["coef"].std(axis=0)
    print(f"PSIS-corrected estimates (result.importance): ESS {weighted.ess:.0f} of {DRAWS}; "
          f"coefficient sds {ratio.min():.2f} to {ratio.max():.2f} times q's")
    print()
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # k̂ is in the tables
        warnings.simplefilter("ignore", UserWarning)
        print(diagnostics.loo_approximate_posterior(idata))
        loo = az.loo(idata)
    elpd = loo.elpd if arviz_1() else loo["elpd_loo"]
    if np.isfinite(elpd):
        print(f"ArviZ's own az.loo, which treats q as the posterior: elpd_loo {elpd:.2f}")
    else:  # see tests/test_arviz_bridge.py::test_az_loo_on_the_quick_start
        print("ArviZ 0.x's az.loo gives nan here: one tumour's log-likelihood lies within "
              "1e-11 of 0 in every draw, where its Pareto fit divides by zero (ArviZ >= 1.0 "
              "gives a finite value)")
    print()

    mean_field = natvi.fit(model, family=natvi.MeanFieldGaussian, seed=0)
    ratio = mean_field.posterior["coef"].scale / np.sqrt(np.diag(
        result.posterior[("intercept", "coef")].cov)[1:])
    print(f"Mean-field instead (family=natvi.MeanFieldGaussian): ELBO {mean_field.elbo:.2f} "
          f"against {result.elbo:.2f}; coefficient sds {ratio.min():.2f} to {ratio.max():.2f} "
          f"times the full-rank ones")
    print(mean_field.diagnose(draws=DRAWS, seed=1))


if __name__ == "__main__":
    main()
