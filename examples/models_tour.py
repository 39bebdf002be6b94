"""A tour of the ready-made models in natvi.models (all but LogisticRegression).

One short section per model, each printing numbers that can be checked:

- Beta–Bernoulli and Gamma–Poisson: one natural-gradient step of size 1 lands on the
  exact posterior, and the ELBO then equals the exact log evidence log p(y).
- Linear regression with known noise under a FullRankGaussian: one step, exact; with
  unknown noise (a Gamma factor on the precision): iterations to convergence.
- Poisson and probit regression, fitted the default way (``family="auto"``: one full-rank
  Gaussian over the intercept and coefficients): the fit's summary, Pareto k̂ and
  coefficients.
- Eight schools, centered vs non-centered: ELBO, k̂ and the diagnosis in words.
- Logistic regression with automatic relevance determination (the default family: full-rank
  over the intercept and coefficients, a Gamma per precision): which features it keeps.

Data: the Beta–Bernoulli and probit sections use the Wisconsin diagnostic breast cancer
data shipped with natvi (569 tumours × 30 features; Street, Wolberg & Mangasarian 1993);
eight schools uses the SAT coaching experiments of Rubin (1981), the model's default;
the Gamma–Poisson, linear, Poisson and ARD sections use small synthetic data sets,
labelled as such, drawn with fixed seeds. Runs in well under a minute. Run:

    python examples/models_tour.py
"""

import numpy as np

import natvi
from natvi.data import load_breast_cancer
from natvi.models import (
    ARDLogisticRegression,
    BetaBernoulli,
    EightSchools,
    GammaPoisson,
    LinearRegression,
    LogisticRegression,
    PoissonRegression,
    ProbitRegression,
)

DRAWS = 1000  # for Pareto k̂
ELBO_DRAWS = 4000  # for the Monte Carlo ELBO estimates of the stochastic fits


def section(title):
    print(f"\n{'=' * 4} {title} {'=' * max(4, 84 - len(title))}")


def standardized(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def elbo_estimate(result, draws=ELBO_DRAWS, seed=2):
    """Mean and standard error of log p(x, z) − log q(z) over fresh draws z ~ q."""
    z = result.sample(draws, seed=seed)
    log_w = result.model.log_joint(z) - result.log_q(z)
    return log_w.mean(), log_w.std(ddof=1) / np.sqrt(draws)


def print_exact_table(rows, result, log_evidence):
    """Fitted vs exact parameters, then the ELBO against the exact log evidence."""
    print(f"  {'':<22}{'fitted':>16}{'exact':>16}")
    for name, fitted, exact in rows:
        print(f"  {name:<22}{fitted:>16.6f}{exact:>16.6f}")
    print(f"  {'ELBO vs log p(y)':<22}{result.elbo:>16.6f}{log_evidence:>16.6f}"
          f"   (difference {result.elbo - log_evidence:.1e})")


def beta_bernoulli(y):
    section("Beta–Bernoulli: share of malignant tumours, breast-cancer data")
    model = BetaBernoulli(y, a=1.0, b=1.0)
    result = natvi.fit(model)
    q, exact = result.posterior["p"], model.exact_posterior()
    print(f"p ~ Beta(1, 1), {int(model.successes)} malignant of {len(model.y)}")
    print(f"status {result.status} after {result.n_iter} natural-gradient step(s)")
    print_exact_table([("a", q.a, exact.a), ("b", q.b, exact.b)], result, model.log_evidence())


def gamma_poisson():
    section("Gamma–Poisson: event counts with exposures (synthetic, seed 1)")
    rng = np.random.default_rng(1)
    exposure = rng.uniform(0.5, 2.0, size=20)
    counts = rng.poisson(3.0 * exposure)  # true rate 3 per unit of exposure
    model = GammaPoisson(counts, shape=2.0, rate=1.0, exposure=exposure)
    result = natvi.fit(model)
    q, exact = result.posterior["rate"], model.exact_posterior()
    print("rate ~ Gamma(2, 1), counts ~ Poisson(exposure × rate), N = 20, true rate 3")
    print(f"status {result.status} after {result.n_iter} natural-gradient step(s)")
    print_exact_table([("shape", q.shape, exact.shape), ("rate", q.rate, exact.rate)],
                      result, model.log_evidence())
    print(f"  posterior mean of the rate: {q.mean():.4f}")


def linear_regression():
    section("Linear regression (synthetic, seed 2: N = 100, 3 features, noise sd 0.7)")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 3))
    true_coef = np.array([1.0, -2.0, 0.5])
    y = 0.5 + X @ true_coef + 0.7 * rng.normal(size=100)

    known = LinearRegression(X, y, prior_scale=1.0, intercept_scale=10.0, noise_scale=0.7)
    result = natvi.fit(known, family=natvi.FullRankGaussian)
    (key, q), = result.posterior.items()
    mean, cov = known.exact_posterior()
    print(f"known noise sd 0.7, one FullRankGaussian over {key}: status {result.status} "
          f"after {result.n_iter} step(s)")
    print(f"  max |mean − exact mean|        {np.max(np.abs(q.loc - mean)):.1e}")
    print(f"  max |cov − exact cov|          {np.max(np.abs(q.cov - cov)):.1e}")
    print(f"  ELBO {result.elbo:.6f} vs log p(y) {known.log_evidence():.6f} "
          f"(difference {result.elbo - known.log_evidence():.1e})")

    unknown = LinearRegression(X, y, prior_scale=1.0, intercept_scale=10.0,
                               noise_shape=1.0, noise_rate=1.0)
    print("unknown noise, precision τ ~ Gamma(1, 1) with a Gamma factor (semi-conjugate):")
    print(f"  {'family of (intercept, coef)':<30}{'status':>10}{'iters':>7}{'ELBO':>13}"
          f"{'E[τ]^-1/2':>11}   E[coef]")
    for family in (natvi.MeanFieldGaussian, natvi.FullRankGaussian):
        r = natvi.fit(unknown, family=family)
        sample = r.sample(DRAWS, seed=1)
        noise_sd = r.posterior["noise_precision"].mean() ** -0.5
        coef = sample["coef"].mean(axis=0)
        print(f"  {family.__name__:<30}{r.status:>10}{r.n_iter:>7d}{r.elbo:>13.4f}"
              f"{noise_sd:>11.4f}   " + " ".join(f"{c:+.3f}" for c in coef))
    print(f"  {'(true values)':<30}{'':>10}{'':>7}{'':>13}{0.7:>11.4f}   "
          + " ".join(f"{c:+.3f}" for c in true_coef))


def intercept_and_coef(result):
    """Posterior means and sds of [intercept, coef...] from the default GLM fit's one
    full-rank Gaussian over both (the diagonal of its covariance gives the sds)."""
    q = result.posterior["intercept", "coef"]
    return q.loc, np.sqrt(np.diag(q.cov))


def coefficient_table(result, names, true=None, rows=None):
    """Posterior mean and sd of the intercept, then per coefficient (``rows``: which)."""
    mean, sd = intercept_and_coef(result)
    rows = range(len(names)) if rows is None else rows
    head = f"  {'':<24}{'mean':>9}{'sd':>8}" + (f"{'true':>8}" if true is not None else "")
    print(head)
    labels = [("intercept", 0)] + [(names[j], j + 1) for j in rows]
    for label, i in labels:
        line = f"  {label:<24}{mean[i]:>9.3f}{sd[i]:>8.3f}"
        print(line + (f"{true[i]:>8.3f}" if true is not None else ""))


def fit_summary(result):
    """The fit's summary (status, ELBO, cost, family and why), then its Pareto k̂ verdict."""
    return f"{result}\n{result.diagnose(DRAWS, seed=1).message}"


def poisson_regression():
    section("Poisson regression with exposure (synthetic, seed 3: N = 200, 3 features)")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    true_coef = np.array([0.5, -0.3, 0.2])
    exposure = rng.uniform(0.5, 2.0, size=200)
    counts = rng.poisson(exposure * np.exp(0.3 + X @ true_coef))
    model = PoissonRegression(X, counts, prior_scale=1.0, intercept_scale=2.5,
                              exposure=exposure)
    result = natvi.fit(model)
    print(fit_summary(result))
    coefficient_table(result, model.feature_names, true=np.concatenate([[0.3], true_coef]))


def probit_regression(X, y, names):
    section("Probit regression: breast-cancer data (standardized, prior sd 1)")
    model = ProbitRegression(X, y, prior_scale=1.0, intercept_scale=1.0)
    result = natvi.fit(model)
    print(fit_summary(result))
    order = np.argsort(-np.abs(intercept_and_coef(result)[0][1:]))[:8]
    print("the intercept and the 8 coefficients largest in absolute posterior mean:")
    coefficient_table(result, names, rows=order)


def eight_schools():
    section("Eight schools (Rubin 1981): centered vs non-centered, mean-field")
    results = {}
    print(f"  {'form':<14}{'status':>10}{'iters':>7}{'ELBO ± se':>17}{'E[mu]':>8}{'sd':>7}"
          f"{'E[tau]':>8}{'sd':>7}{'k̂':>7}")
    for label, centered in (("centered", True), ("non-centered", False)):
        result = natvi.fit(EightSchools(centered=centered), seed=0)
        value, se = elbo_estimate(result)
        mu, tau = result.posterior["mu"], result.posterior["tau"]
        diagnosis = result.diagnose(DRAWS, seed=1)
        results[label] = diagnosis
        print(f"  {label:<14}{result.status:>10}{result.n_iter:>7d}{value:>11.3f} ± {se:.3f}"
              f"{mu.mean():>8.2f}{mu.var() ** 0.5:>7.2f}{tau.mean():>8.2f}{tau.var() ** 0.5:>7.2f}"
              f"{diagnosis.k_hat:>7.2f}")
    print(f"  (ELBO from {ELBO_DRAWS} fresh draws of the fitted q; both forms bound the same "
          f"log p(y), so the higher one is the better fit)")
    for label, diagnosis in results.items():
        print(f"  {label}: {diagnosis.message}")


def ard():
    section("ARD logistic regression (synthetic, seed 0: N = 500, 5 relevant of 50 features)")
    rng = np.random.default_rng(0)
    n, d = 500, 50
    X = rng.normal(size=(n, d))
    true_coef = np.zeros(d)
    true_coef[:5] = [2.0, -2.0, 1.5, -1.5, 1.0]  # features x0..x4 matter, x5..x49 do not
    y = rng.random(n) < 1 / (1 + np.exp(-(X @ true_coef)))
    model = ARDLogisticRegression(X, y)
    result = natvi.fit(model)
    h = result.history
    print(f"precision λⱼ ~ Gamma(0.01, 0.01) per coefficient; status {result.status} after "
          f"{result.n_iter} iterations ({h['seconds'][-1]:.2f} s), ELBO {result.elbo:.4f}")
    print("q: one full-rank Gaussian over the intercept and coefficients, a Gamma per "
          "precision (the default)")
    precision = result.posterior["precision"].mean()
    learned_sd = precision ** -0.5  # the prior sd ARD settled on for each coefficient
    mean, sd = (v[1:] for v in intercept_and_coef(result))  # the coefficients
    order = np.argsort(-learned_sd)
    print(f"  {'feature':<9}{'learned prior sd':>18}{'E[coef]':>9}{'sd':>7}{'true':>7}")
    for j in order[:8]:
        print(f"  {model.feature_names[j]:<9}{learned_sd[j]:>18.3f}{mean[j]:>9.3f}"
              f"{sd[j]:>7.3f}{true_coef[j]:>7.2f}")
    print(f"  ... {d - 8} more, learned prior sd {learned_sd[order[8:]].min():.3f} to "
          f"{learned_sd[order[8:]].max():.3f}")
    kept = sorted(np.flatnonzero(learned_sd > 0.7).tolist())
    print(f"kept (learned prior sd > 0.7): {[model.feature_names[j] for j in kept]}; "
          f"truly relevant: {[model.feature_names[j] for j in range(5)]}")
    plain = intercept_and_coef(natvi.fit(LogisticRegression(X, y, prior_scale=1.0)))[0][1:]
    print("|E[coef]| of the 45 irrelevant features, median / max:")
    print(f"  ARD                              {np.median(np.abs(mean[5:])):.3f} / "
          f"{np.abs(mean[5:]).max():.3f}")
    print(f"  fixed N(0, 1) prior (Logistic)   {np.median(np.abs(plain[5:])):.3f} / "
          f"{np.abs(plain[5:]).max():.3f}")


def main():
    X, y, names = load_breast_cancer()
    beta_bernoulli(y)
    gamma_poisson()
    linear_regression()
    poisson_regression()
    probit_regression(standardized(X), y, names)
    eight_schools()
    ard()


if __name__ == "__main__":
    main()
