"""Full-rank Gaussian logistic regression on the breast-cancer data.

References are computed here without natvi's engine: the full-rank ELBO is written again
in plain NumPy, on the expectations of :mod:`natvi.reference`, over u = (m, the lower
triangle of L row by row with log Lᵢᵢ on the diagonal), Σ = LLᵀ, with its own analytic
gradient, and maximized by scipy's L-BFGS-B from the Laplace approximation (Newton's
method on the log posterior). The true posterior's standard deviations come from
self-normalized importance sampling of the exact unnormalized posterior with 200 000 draws
from a multivariate t (10 degrees of freedom) centered at that independent optimum, its
effective sample size checked.
"""

import numpy as np
import pytest
from scipy import optimize, special, stats

import natvi
from natvi import reference
from natvi.data import load_breast_cancer
from natvi.families import FullRankGaussian, MeanFieldGaussian
from natvi.models import LogisticRegression

JOINT = ("intercept", "coef")


# ---- an independent full-rank quadrature ELBO ----------------------------------------------
def _unpack(u, k):
    m = u[:k]
    chol = np.zeros((k, k))
    chol[np.tril_indices(k)] = u[k:]
    chol[np.diag_indices(k)] = np.exp(np.diag(chol))
    return m, chol


def _pack(m, chol):
    tri = chol.copy()
    tri[np.diag_indices(len(m))] = np.log(np.diag(chol))
    return np.concatenate([m, tri[np.tril_indices(len(m))]])


def _full_rank_elbo(u, Z, y, prior_sd):
    """ELBO of N(m, LLᵀ) for logistic regression with N(0, diag(prior_sd²)) prior, and its
    gradient in u. Each ηᵢ ~ N(zᵢᵀm, ‖Lᵀzᵢ‖²), E f(ηᵢ) and its derivatives from
    :func:`natvi.reference.logistic` (no code shared with natvi's engine); ∂/∂Σ of the data
    term is Zᵀ diag(gᵦ) Z, and ∂/∂L = 2 (∂/∂Σ) L."""
    k = Z.shape[1]
    m, chol = _unpack(u, k)
    rows, g_a, g_b = reference.logistic(y, Z @ m, np.sum((Z @ chol) ** 2, axis=1))
    p2 = prior_sd**2
    cov = chol @ chol.T
    value = (np.sum(rows)
             + np.sum(-0.5 * np.log(2 * np.pi * p2) - (m**2 + np.diag(cov)) / (2 * p2))
             + 0.5 * k * np.log(2 * np.pi * np.e) + np.sum(np.log(np.diag(chol))))
    grad_m = Z.T @ g_a - m / p2
    grad_cov = Z.T @ (g_b[:, None] * Z) - np.diag(0.5 / p2)
    grad_chol = 2 * grad_cov @ chol
    grad_chol[np.diag_indices(k)] = grad_chol[np.diag_indices(k)] * np.diag(chol) + 1.0
    return value, np.concatenate([grad_m, grad_chol[np.tril_indices(k)]])


def _log_posterior(W, Z, y, prior_sd):
    """Unnormalized log p(w | y) at each row of W."""
    eta = W @ Z.T
    return (np.sum(y * eta - np.logaddexp(0.0, eta), axis=1)
            - 0.5 * np.sum((W / prior_sd) ** 2, axis=1))


def _laplace(Z, y, prior_sd):
    """Mode and inverse Hessian of the log posterior, by Newton's method."""
    m = np.zeros(Z.shape[1])
    for _ in range(100):
        p = special.expit(Z @ m)
        grad = Z.T @ (y - p) - m / prior_sd**2
        hess = Z.T @ ((p * (1 - p))[:, None] * Z) + np.diag(prior_sd**-2.0)
        step = np.linalg.solve(hess, grad)
        m = m + step
        if np.max(np.abs(step)) < 1e-12:
            break
    return m, np.linalg.inv(hess)


# ---- data and references ----------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    X, y, _ = load_breast_cancer()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    Z = np.column_stack([np.ones(len(y)), X])
    return X, y, Z, np.ones(Z.shape[1])  # prior_scale = intercept_scale = 1


@pytest.fixture(scope="module")
def model(data):
    X, y, _, _ = data
    return LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)


@pytest.fixture(scope="module")
def optimum(data):
    """The full-rank optimum: L-BFGS-B on the independent ELBO from the Laplace start."""
    _, y, Z, prior_sd = data
    mode, cov = _laplace(Z, y, prior_sd)

    def neg(u):
        v, g = _full_rank_elbo(u, Z, y, prior_sd)
        return -v, -g

    res = optimize.minimize(neg, _pack(mode, np.linalg.cholesky(cov)), jac=True,
                            method="L-BFGS-B",
                            options={"maxiter": 20000, "maxfun": 40000, "ftol": 0.0,
                                     "gtol": 1e-9, "maxcor": 50})
    m, chol = _unpack(res.x, Z.shape[1])
    return {"elbo": -res.fun, "u": res.x, "loc": m, "cov": chol @ chol.T,
            "grad_norm": float(np.linalg.norm(res.jac))}


@pytest.fixture(scope="module")
def full_rank_fit(model):
    return natvi.fit(model, family=FullRankGaussian)


@pytest.fixture(scope="module")
def mean_field_fit(model):
    return natvi.fit(model, family=MeanFieldGaussian)


# ---- the independent ELBO against natvi's ---------------------------------------------------
def test_independent_elbo_gradient_is_consistent():
    rng = np.random.default_rng(0)
    Z = np.column_stack([np.ones(40), rng.normal(size=(40, 3))])
    y = (rng.random(40) < 0.5).astype(float)
    prior_sd = np.array([2.0, 1.0, 1.0, 1.5])
    u = _pack(rng.normal(scale=0.3, size=4), np.linalg.cholesky(0.1 * np.eye(4) + 0.02))
    value_grad = _full_rank_elbo(u, Z, y, prior_sd)[1]
    err = optimize.check_grad(lambda v: _full_rank_elbo(v, Z, y, prior_sd)[0],
                              lambda v: _full_rank_elbo(v, Z, y, prior_sd)[1], u)
    assert err < 1e-6 * np.linalg.norm(value_grad)


def test_natvi_elbo_and_gradient_match_the_independent_ones(data, model):
    """At a random full-rank posterior: the same ELBO (1e-9) and, chained to natvi's
    unconstrained coordinates (the same u), the same gradient (1e-8 relative)."""
    _, y, Z, prior_sd = data
    rng = np.random.default_rng(1)
    a = rng.normal(scale=0.05, size=(31, 31))
    q = FullRankGaussian(loc=rng.normal(scale=0.3, size=31), cov=a @ a.T + 1e-3 * np.eye(31))
    value, nat = natvi.elbo(model, {JOINT: q})
    ref_value, ref_grad = _full_rank_elbo(q.unconstrained, Z, y, prior_sd)
    assert value == pytest.approx(ref_value, abs=1e-9)
    np.testing.assert_allclose(q.unconstrained_grad(nat[JOINT]), ref_grad,
                               atol=1e-8 * np.max(np.abs(ref_grad)))


def test_lbfgs_reaches_a_stationary_point(optimum):
    print(f"L-BFGS optimum {optimum['elbo']:.10f}, gradient norm {optimum['grad_norm']:.1e}")
    assert optimum["grad_norm"] < 1e-5


# ---- natvi's full-rank fit ------------------------------------------------------------------
def test_full_rank_within_001_nats_in_10_iterations(full_rank_fit, optimum):
    """Default "ngd" with family=FullRankGaussian: within 0.01 nats of the optimum after at
    most 10 iterations, and converged to it (1e-7; never above it beyond rounding)."""
    elbos = full_rank_fit.history["elbo"]
    close = np.flatnonzero(elbos >= optimum["elbo"] - 0.01)
    print(f"first iteration within 0.01 nats: {close[:1]}, n_iter {full_rank_fit.n_iter}, "
          f"final gap {optimum['elbo'] - full_rank_fit.elbo:.2e}")
    assert close.size and close[0] <= 10
    assert full_rank_fit.converged
    assert list(full_rank_fit.posterior) == [JOINT]
    assert full_rank_fit.elbo == pytest.approx(optimum["elbo"], abs=1e-7)
    assert full_rank_fit.elbo <= optimum["elbo"] + 1e-9


def test_full_rank_posterior_agrees_with_lbfgs(full_rank_fit, optimum):
    q = full_rank_fit.posterior[JOINT]
    sd = np.sqrt(np.diag(optimum["cov"]))
    np.testing.assert_array_less(np.abs(q.loc - optimum["loc"]), 1e-4 * (np.abs(optimum["loc"])
                                                                        + sd))
    np.testing.assert_array_less(np.abs(q.cov - optimum["cov"]), 1e-4 * np.outer(sd, sd))


def test_full_rank_beats_mean_field(full_rank_fit, mean_field_fit):
    """Mean field is a special case of full rank: a strictly higher ELBO on correlated data."""
    print(f"ELBO full rank {full_rank_fit.elbo:.4f}, mean field {mean_field_fit.elbo:.4f}")
    assert mean_field_fit.converged
    assert full_rank_fit.elbo > mean_field_fit.elbo + 1.0


@pytest.fixture(scope="module")
def truth(data, optimum):
    """The true posterior's means and sds by self-normalized importance sampling: 200 000
    draws from a multivariate t (ν = 10) with the independent optimum's mean and covariance,
    weights p(w, y)/t(w), and the effective sample size (Σw)²/Σw²."""
    _, y, Z, prior_sd = data
    proposal = stats.multivariate_t(optimum["loc"], optimum["cov"], df=10)
    rng = np.random.default_rng(2)
    draws, log_w = [], []
    for _ in range(10):
        W = proposal.rvs(size=20_000, random_state=rng)
        draws.append(W)
        log_w.append(_log_posterior(W, Z, y, prior_sd) - proposal.logpdf(W))
    W, log_w = np.concatenate(draws), np.concatenate(log_w)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean = w @ W
    return {"mean": mean, "sd": np.sqrt(w @ (W - mean) ** 2), "ess": 1.0 / np.sum(w**2)}


@pytest.mark.slow
def test_posterior_sds_within_10_percent_of_the_true_posterior(truth, full_rank_fit,
                                                               mean_field_fit):
    """Full-rank sds are within 10% of the true posterior's (whose ESS must exceed 20 000);
    mean-field ones are reported for comparison."""
    true_sd = truth["sd"]
    ratio = np.sqrt(np.diag(full_rank_fit.posterior[JOINT].cov)) / true_sd
    mf = mean_field_fit.posterior
    mf_ratio = np.concatenate([[mf["intercept"].scale], mf["coef"].scale]) / true_sd
    print(f"ESS {truth['ess']:.0f}; sd / true sd: full rank [{ratio.min():.4f}, "
          f"{ratio.max():.4f}], mean field [{mf_ratio.min():.4f}, {mf_ratio.max():.4f}]")
    assert truth["ess"] > 20_000
    np.testing.assert_array_less(np.abs(ratio - 1), 0.10)


@pytest.mark.slow
def test_psis_corrected_full_rank_estimates_are_the_true_posterior(truth, full_rank_fit):
    """The full-rank fit's PSIS-corrected means and sds (4000 draws) equal the true
    posterior's within the Monte Carlo error of both estimates (4 standard errors: sd/√ESS
    for means, 1/√(2 ESS) relative for sds)."""
    weighted = full_rank_fit.importance(4000, seed=0)
    mean = np.concatenate([[weighted.mean()["intercept"]], weighted.mean()["coef"]])
    sd = np.concatenate([[weighted.sd()["intercept"]], weighted.sd()["coef"]])
    print(f"{weighted}; sd / true sd in [{np.min(sd / truth['sd']):.4f}, "
          f"{np.max(sd / truth['sd']):.4f}]")
    assert weighted.reliable
    se = np.sqrt(1 / weighted.ess + 1 / truth["ess"])
    np.testing.assert_array_less(np.abs(mean - truth["mean"]), 4 * se * truth["sd"])
    np.testing.assert_array_less(np.abs(sd / truth["sd"] - 1), 4 * se / np.sqrt(2))


# ---- bad input ------------------------------------------------------------------------------
def test_family_choices_are_validated(model):
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(model, family=natvi.Gamma)  # no positive latents
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(model, family={JOINT: MeanFieldGaussian})  # only full rank is joint
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(model, family={("intercept", "slope"): FullRankGaussian})
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(model, family={JOINT: FullRankGaussian, "coef": MeanFieldGaussian})


def test_full_rank_over_coef_only_keeps_a_mean_field_intercept(data):
    """family={"coef": FullRankGaussian}: a full-rank coef factor and a scalar intercept;
    its ELBO lies between mean field's and the joint full-rank optimum's."""
    X, y, _, _ = data
    rng = np.random.default_rng(3)
    idx = rng.choice(len(y), size=150, replace=False)
    small = LogisticRegression(X[idx, :5], y[idx], prior_scale=1.0, intercept_scale=1.0)
    part = natvi.fit(small, family={"coef": FullRankGaussian})
    assert isinstance(part.posterior["coef"], FullRankGaussian)
    assert isinstance(part.posterior["intercept"], MeanFieldGaussian)
    joint = natvi.fit(small, family=FullRankGaussian)
    mf = natvi.fit(small, family=MeanFieldGaussian)
    assert mf.elbo - 1e-9 <= part.elbo <= joint.elbo + 1e-9


@pytest.mark.parametrize("y", [[0, 1, 2], [0, np.nan, 1], [0, 0.5, 1]],
                         ids=["two", "nan", "half"])
def test_bad_labels(y):
    with pytest.raises(ValueError, match="^y:"):
        LogisticRegression(np.eye(3), y)
