"""Writing a model without traps: a hierarchical binomial model with priors from
``autograd.scipy.stats`` and ``natvi.log_densities``, checked before it is fitted.

Which kinds of customers buy caravan insurance? The COIL 2000 data (shipped with natvi)
put each of 5822 customers in one of 40 customer subtypes (``MOSTYPE``); subtype j has
nⱼ customers of whom kⱼ hold a caravan policy (6% overall, 0 to 15% by subtype, some
subtypes with 3 to 25 customers). Partial pooling of the subtypes' log-odds:

    a ~ N(−2.5, 1.5²)              overall log-odds            autograd.scipy.stats.norm
    σ ~ HalfCauchy(1)              spread between subtypes     natvi.log_densities.half_cauchy
    uⱼ ~ N(0, 1), ηⱼ = a + σ uⱼ     subtype log-odds (non-centered)
    kⱼ ~ Binomial(nⱼ, logit⁻¹ ηⱼ)                               ...log_densities.binomial_logit

and the same with Student-t subtype effects (uⱼ ~ t₄, natvi.log_densities.student_t),
which let a few subtypes stand apart without widening σ for all. Before fitting, the
log joint is checked against the same density written with scipy.stats, and its autograd
gradient against finite differences. Then each model is fitted with
``natvi.fit(model, seed=0)`` and summarized with ArviZ and Pareto k̂; its means and sds of
a and σ, as fitted and corrected by importance sampling (result.importance), are set
against long NUTS runs (stored below); and the partial pooling of the subtype rates is
tabled. (Approximate-posterior LOO is not shown: every subtype has a latent uⱼ of its
own, and leaving a subtype out moves its uⱼ too far for importance sampling: LOO k̂ > 0.7
for nearly all subtypes.) Run:

    python examples/writing_models.py
"""

import warnings

import arviz as az
import autograd.numpy as anp
import numpy as np
import pandas as pd
from autograd import grad
from autograd.scipy.stats import norm
from scipy import stats
from scipy.special import expit

import natvi
from natvi import log_densities as ld
from natvi.data import load_caravan

A_LOC, A_SCALE, SIGMA_SCALE, NU = -2.5, 1.5, 1.0, 4.0
DRAWS = 4000
#: posterior (mean, sd) of a and σ by NUTS: the same models in NumPyro 0.22 (dist.Normal,
#: dist.HalfCauchy, dist.Normal or dist.StudentT(4) for u, dist.Binomial(logits=...)),
#: 4 chains × 2000 draws after 1000 warm-up, PRNGKey(0); R̂ ≤ 1.006 and effective sample
#: size ≥ 1300 for every latent (≥ 2000 for a and σ)
REFERENCE = {"normal": {"a": (-2.961, 0.125), "sigma": (0.541, 0.109)},
             "student_t": {"a": (-2.953, 0.119), "sigma": (0.420, 0.107)}}
#: posterior means of the rates logit⁻¹(a + σuⱼ) of the tabled subtypes (by code), the
#: normal model, the same NUTS run
REFERENCE_RATES = {8: 0.138, 12: 0.115, 15: 0.052, 17: 0.049, 19: 0.053, 21: 0.045, 33: 0.056}


def caravan_by_subtype():
    """(subtype codes, customers nⱼ, caravan policies kⱼ) of the 40 subtypes present."""
    X, y, names = load_caravan()
    subtype = X[:, names.index("MOSTYPE")].astype(int)
    codes = np.unique(subtype)
    n = np.array([np.sum(subtype == c) for c in codes])
    k = np.array([np.sum(y[subtype == c]) for c in codes])
    return codes, n, k


def log_densities(n, k, effects="normal"):
    """(log joint, pointwise log-likelihood) of the hierarchical binomial model, functions
    of one draw; ``effects`` "normal" or "student_t": the distribution of the standardized
    subtype effects uⱼ."""

    def log_prior_u(u):
        if effects == "normal":
            return norm.logpdf(u)  # autograd.scipy.stats: differentiable in u
        return ld.student_t(u, NU)

    def pointwise(z):  # log p(kⱼ | a, σ, u): one value per subtype, for LOO
        # one draw: z["a"] and z["sigma"] are scalars (σ > 0: the latent is "positive"),
        # z["u"] has shape (J,); arithmetic on them, never in-place assignment
        eta = z["a"] + z["sigma"] * z["u"]
        return ld.binomial_logit(k, n, eta)  # stable at any η: no log(expit(η))

    def log_joint(z):
        return (norm.logpdf(z["a"], A_LOC, A_SCALE) + ld.half_cauchy(z["sigma"], SIGMA_SCALE)
                + anp.sum(log_prior_u(z["u"])) + anp.sum(pointwise(z)))

    return log_joint, pointwise


def subtype_model(n, k, effects="normal"):
    """The hierarchical binomial model as a natvi.Model (see :func:`log_densities`)."""
    log_joint, pointwise = log_densities(n, k, effects)
    return natvi.Model(log_joint, {"a": "real", "sigma": "positive", "u": ((n.size,), "real")},
                       pointwise_log_likelihood=pointwise, observed_data={"k": k},
                       coords={"subtype": np.arange(n.size)},
                       dims={"u": ["subtype"], "k": ["subtype"]})


def scipy_log_joint(z, n, k, effects):
    """The same log joint written with scipy.stats, for checking (not differentiable)."""
    u_prior = stats.norm.logpdf(z["u"]) if effects == "normal" else stats.t.logpdf(z["u"], NU)
    return (stats.norm.logpdf(z["a"], A_LOC, A_SCALE)
            + stats.halfcauchy.logpdf(z["sigma"], scale=SIGMA_SCALE) + np.sum(u_prior)
            + np.sum(stats.binom.logpmf(k, n, expit(z["a"] + z["sigma"] * z["u"]))))


def check_log_joint(n, k, effects, seed=0):
    """Largest |difference| against scipy.stats over 5 random points, and the largest
    relative difference of the gradient from central finite differences."""
    log_joint, _ = log_densities(n, k, effects)
    rng = np.random.default_rng(seed)
    value_error = gradient_error = 0.0
    for _ in range(5):
        z = {"a": rng.normal(-2.5, 1.0), "sigma": rng.lognormal(-1.0, 0.5),
             "u": rng.normal(size=n.size)}
        value_error = max(value_error, abs(log_joint(z) - scipy_log_joint(z, n, k, effects)))
        g = grad(log_joint)(z)  # {name: ∂/∂z[name]}, as natvi's engines differentiate it
        direction = {name: rng.normal(size=np.shape(v)) for name, v in z.items()}
        h = 1e-6
        shifted = [{name: z[name] + s * h * direction[name] for name in z} for s in (1, -1)]
        fd = (scipy_log_joint(shifted[0], n, k, effects)
              - scipy_log_joint(shifted[1], n, k, effects)) / (2 * h)
        exact = sum(np.sum(g[name] * direction[name]) for name in z)
        gradient_error = max(gradient_error, abs(exact - fd) / abs(fd))
    return value_error, gradient_error


def summary(result):
    with warnings.catch_warnings():  # ArviZ warns that one chain cannot give R-hat
        warnings.simplefilter("ignore")
        idata = result.to_arviz(draws=DRAWS, seed=1)
        return az.summary(idata, var_names=["a", "sigma"], kind="stats").round(3)


def pooling_table(codes, n, k, result):
    """Raw and posterior-mean subtype rates (with 90% intervals, and NUTS's means) for the
    subtypes with the fewest customers, the most extreme raw rates and the most customers."""
    z = result.sample(DRAWS, seed=1)
    rates = expit(z["a"][:, None] + z["sigma"][:, None] * z["u"])
    raw = k / n
    rows = np.unique(np.concatenate([np.argsort(n)[:4], np.argsort(raw)[[0, -2, -1]],
                                     [np.argmax(n)]]))
    return pd.DataFrame({
        "subtype": codes[rows], "customers": n[rows], "policies": k[rows],
        "raw rate": raw[rows].round(3), "posterior mean": rates[:, rows].mean(axis=0).round(3),
        "5%": np.quantile(rates[:, rows], 0.05, axis=0).round(3),
        "95%": np.quantile(rates[:, rows], 0.95, axis=0).round(3),
        "NUTS mean": [REFERENCE_RATES.get(int(c), np.nan) for c in codes[rows]],
    }).to_string(index=False)


def comparison(effects, result, weighted):
    """Rows of the table against NUTS: means and sds of a and σ under q (from the draws
    that ``weighted`` reweights) and PSIS-corrected means, with their errors in
    reference posterior sds."""
    rows = {}
    for name in ("a", "sigma"):
        draws = weighted.draws[name]  # DRAWS draws from q
        ref_mean, ref_sd = REFERENCE[effects][name]
        mean, sd = float(np.mean(draws)), float(np.std(draws, ddof=1))
        psis = float(weighted.mean()[name])
        rows[f"{effects} {name}"] = {
            "status": result.status, "E[·] q": round(mean, 3), "sd q": round(sd, 3),
            "E[·] PSIS": round(psis, 3), "E[·] NUTS": ref_mean, "sd NUTS": ref_sd,
            "error q": round((mean - ref_mean) / ref_sd, 2),
            "error PSIS": round((psis - ref_mean) / ref_sd, 2),
            "k̂": round(weighted.k_hat, 2)}
    return rows


def main():
    codes, n, k = caravan_by_subtype()
    print(f"Caravan policies by customer subtype: {n.size} subtypes, {n.sum()} customers, "
          f"{k.sum()} policies ({k.sum() / n.sum():.3f} overall; subtype rates "
          f"{np.min(k / n):.3f} to {np.max(k / n):.3f}, {np.min(n)} to {np.max(n)} customers)")
    pd.set_option("display.width", 120)
    fits, rows = {}, {}
    for effects in ("normal", "student_t"):
        value_error, gradient_error = check_log_joint(n, k, effects)
        print(f"\n{effects} subtype effects: log joint vs scipy.stats, largest difference "
              f"{value_error:.1e}; gradient vs finite differences, largest relative "
              f"difference {gradient_error:.1e}")
        result = fits[effects] = natvi.fit(subtype_model(n, k, effects), seed=0)
        print(result)
        print(summary(result))
        print(result.diagnose(DRAWS, seed=1).message)
        with warnings.catch_warnings():  # an unreliable k̂ is in the table
            warnings.simplefilter("ignore", UserWarning)
            weighted = result.importance(DRAWS, seed=1)
        rows.update(comparison(effects, result, weighted))

    print("\nagainst NUTS (E[·] q: the fit's; PSIS: q's draws reweighted towards the "
          "posterior, trustworthy while k̂ < 0.7; error: (q − NUTS) / NUTS sd):")
    print(pd.DataFrame.from_dict(rows, orient="index").to_string())
    print("\npartial pooling (normal effects): raw rates move towards the overall rate, "
          "the more so the fewer the customers")
    print(pooling_table(codes, n, k, fits["normal"]))


if __name__ == "__main__":
    main()
