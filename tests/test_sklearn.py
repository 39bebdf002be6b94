"""natvi.sklearn.BayesianLogisticRegression: scikit-learn's estimator contract and the math.

References are written here without the estimator: the predictor's moments under q from
the fitted posterior's own parameters (mean-field: Σ x²s², full-rank: dᵀΣd), E_q[σ(a)] by
Gauss–Hermite quadrature of the 1-D Gaussian predictor, and scikit-learn's own
LogisticRegression (the MAP point) for the held-out log loss.
"""

import copy
import importlib
import subprocess
import sys

import numpy as np
import pytest
from scipy import special
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from natvi.data import load_breast_cancer
from natvi.sklearn import BayesianLogisticRegression


@pytest.fixture(scope="module")
def split():
    """Breast cancer, a fixed stratified 70/30 split, standardized by the training part."""
    X, y, names = load_breast_cancer()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test, names


@pytest.fixture(scope="module")
def fitted(split):
    """{family: estimator fitted on the training split}."""
    X_train, _, y_train, _, _ = split
    return {family: BayesianLogisticRegression(family=family).fit(X_train, y_train)
            for family in ("mean_field", "full_rank")}


def _moments(est, X):
    """Mean and variance of a = α + xᵀβ under q, from the posterior's own parameters."""
    post = est.result_.posterior
    if est.family == "full_rank":
        q = post[("intercept", "coef")]
        D = np.column_stack([np.ones(len(X)), X])
        return D @ q.loc, np.einsum("ij,jk,ik->i", D, q.cov, D)
    mean = X @ post["coef"].loc + post["intercept"].loc
    return mean, X**2 @ post["coef"].scale**2 + post["intercept"].scale**2


def _expected_sigmoid(mean, var, n_nodes=100):
    """E[σ(a)], a ~ N(mean, var), by Gauss–Hermite (physicists' nodes)."""
    x, w = np.polynomial.hermite.hermgauss(n_nodes)
    a = mean[:, None] + np.sqrt(2 * var)[:, None] * x
    return special.expit(a) @ w / np.sqrt(np.pi)


# ---- scikit-learn's own estimator checks ----------------------------------------------------
@parametrize_with_checks([BayesianLogisticRegression()])
def test_sklearn_estimator_checks(estimator, check):
    """scikit-learn's check suite (binary-only via the ``multi_class=False`` tag, so the
    checks use two-class data and require the 'Only binary classification' error); none
    is expected to fail."""
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([BayesianLogisticRegression(predictive="sampling", draws=200),
                          BayesianLogisticRegression(family="full_rank", fit_intercept=False)])
def test_sklearn_estimator_checks_other_settings(estimator, check):
    """The same checks with the sampling predictive and a full-rank factor without
    intercept: subset and order invariance need draws that do not depend on X."""
    check(estimator)


# ---- scikit-learn is optional -------------------------------------------------------------
def test_missing_sklearn_says_how_to_install(monkeypatch):
    """Without scikit-learn, importing natvi.sklearn raises ImportError naming the extra."""
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "natvi.sklearn")
    with pytest.raises(ImportError, match=r'pip install "natvi\[sklearn\]"'):
        importlib.import_module("natvi.sklearn")


@pytest.mark.slow
def test_import_natvi_without_sklearn(tmp_path):
    """A fresh interpreter with scikit-learn blocked imports natvi and fits a model, and never
    loads scikit-learn (about 3 s: the interpreter imports ArviZ)."""
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import numpy as np, natvi, natvi.models\n"
            "X = np.random.default_rng(0).normal(size=(50, 2)); y = (X[:, 0] > 0) * 1\n"
            "print(natvi.fit(natvi.models.LogisticRegression(X, y)).status)\n"
            "try:\n    import natvi.sklearn\nexcept ImportError as e:\n    print(e)\n")
    # cwd away from the checkout, whose natvi/ would shadow the installed package
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "converged"
    assert 'pip install "natvi[sklearn]"' in done.stdout


# ---- fitted attributes ---------------------------------------------------------------------
@pytest.mark.parametrize("family", ["mean_field", "full_rank"])
def test_fitted_attributes_are_posterior_moments(fitted, split, family):
    """coef_, intercept_ and their standard deviations are the posterior's means and sds,
    with scikit-learn's shapes (1, D) and (1,)."""
    est, d = fitted[family], split[0].shape[1]
    post = est.result_.posterior
    if family == "full_rank":
        q = post[("intercept", "coef")]
        mean, sd = q.loc, np.sqrt(np.diag(q.cov))
    else:
        mean = np.concatenate([[post["intercept"].loc], post["coef"].loc])
        sd = np.concatenate([[post["intercept"].scale], post["coef"].scale])
    assert est.coef_.shape == est.coef_std_.shape == (1, d)
    assert est.intercept_.shape == est.intercept_std_.shape == (1,)
    np.testing.assert_array_equal(est.intercept_, mean[:1])
    np.testing.assert_array_equal(est.coef_[0], mean[1:])
    np.testing.assert_allclose(est.intercept_std_, sd[:1], rtol=1e-12)
    np.testing.assert_allclose(est.coef_std_[0], sd[1:], rtol=1e-12)
    assert est.n_features_in_ == d
    assert est.result_.converged and est.n_iter_ == est.result_.n_iter
    np.testing.assert_array_equal(est.classes_, [0, 1])


def test_string_labels_map_to_classes(split, fitted):
    """Labels of any type map to 0/1 in sorted order: naming malignant 'malignant' leaves the
    fit unchanged; naming it 'a' (sorted first, so y = 0) mirrors it exactly, β → −β, as the
    model is symmetric under (y, α, β) → (1 − y, −α, −β)."""
    X_train, X_test, y_train, _, _ = split
    ref = fitted["mean_field"]
    named = BayesianLogisticRegression(family="mean_field").fit(
        X_train, np.where(y_train == 1, "malignant", "benign"))
    np.testing.assert_array_equal(named.classes_, ["benign", "malignant"])
    np.testing.assert_allclose(named.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    assert set(named.predict(X_test)) <= {"benign", "malignant"}
    flipped = BayesianLogisticRegression(family="mean_field").fit(
        X_train, np.where(y_train == 1, "a", "b"))
    np.testing.assert_array_equal(flipped.classes_, ["a", "b"])
    np.testing.assert_allclose(flipped.coef_, -ref.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(flipped.intercept_, -ref.intercept_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(flipped.predict_proba(X_test), ref.predict_proba(X_test)[:, ::-1],
                               rtol=1e-6, atol=1e-9)


def test_no_intercept():
    """fit_intercept=False: intercept_ is 0 and the predictor is xᵀβ alone."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = (X @ [1.0, -1.0, 0.5] + rng.logistic(size=80) > 0).astype(int)
    est = BayesianLogisticRegression(fit_intercept=False, family="mean_field").fit(X, y)
    assert "intercept" not in est.result_.posterior
    np.testing.assert_array_equal(est.intercept_, [0.0])
    np.testing.assert_array_equal(est.intercept_std_, [0.0])
    q = est.result_.posterior["coef"]
    mean, var = est.predictor_moments(X)
    np.testing.assert_allclose(mean, X @ q.loc, rtol=1e-12)
    np.testing.assert_allclose(var, X**2 @ q.scale**2, rtol=1e-12)


def test_dataframe_column_names_reach_arviz(split):
    """A DataFrame's columns become feature_names_in_ and the ArviZ ``feature`` coordinate."""
    pd = pytest.importorskip("pandas")
    X_train, X_test, y_train, _, names = split
    est = BayesianLogisticRegression().fit(pd.DataFrame(X_train, columns=names), y_train)
    np.testing.assert_array_equal(est.feature_names_in_, names)
    idata = est.result_.to_arviz(draws=50, seed=1)
    assert list(idata.posterior["coef"].coords["feature"].values) == names
    assert idata.posterior["coef"].shape == (1, 50, len(names))
    proba = est.predict_proba(pd.DataFrame(X_test, columns=names))
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        est.predict_proba(pd.DataFrame(X_test, columns=names[::-1]))  # scikit-learn's check
    assert proba.shape == (len(X_test), 2)


# ---- the posterior predictive -------------------------------------------------------------
@pytest.mark.parametrize("family", ["mean_field", "full_rank"])
def test_probit_predictive(fitted, split, family):
    """predict_proba = σ(μ/√(1 + πv/8)) with μ, v the predictor's moments under q (computed
    here from the factor's loc and scale or cov), which is within 0.02 of the exact E_q[σ(a)]
    (the approximation's worst error over μ ∈ [−20, 20], v ∈ [10⁻³, 10³] is 0.017)."""
    est, X_test = fitted[family], split[1]
    mean, var = _moments(est, X_test)
    got = est.predict_proba(X_test)
    p1 = special.expit(mean / np.sqrt(1 + np.pi * var / 8))
    np.testing.assert_allclose(got[:, 1], p1, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(est.predictor_moments(X_test), (mean, var), rtol=1e-10)
    assert np.max(np.abs(got[:, 1] - _expected_sigmoid(mean, var))) < 0.02
    assert np.max(var) > 1.0  # the moderation is not trivial on these data


@pytest.mark.parametrize("family", ["mean_field", "full_rank"])
def test_sampling_predictive_matches_quadrature(fitted, split, family):
    """predictive="sampling" averages σ(a) over posterior draws in antithetic pairs: it
    matches E_q[σ(a)] within 5 standard errors per row, the standard error of a pair's
    average ½(σ(μ + √v ε) + σ(μ − √v ε)) itself computed by quadrature; it is reproducible
    for an integer seed, and another seed gives other draws. (Predictive settings apply at
    prediction time, so the fitted estimator is copied, not refitted.)"""
    X_test, draws = split[1], 2000
    est = copy.deepcopy(fitted[family]).set_params(predictive="sampling", draws=draws,
                                                   random_state=3)
    mean, var = _moments(est, X_test)
    got = est.predict_proba(X_test)[:, 1]
    exact = _expected_sigmoid(mean, var)
    x, w = np.polynomial.hermite.hermgauss(200)
    eps = np.sqrt(2) * x
    pair = 0.5 * (special.expit(mean[:, None] + np.sqrt(var)[:, None] * eps)
                  + special.expit(mean[:, None] - np.sqrt(var)[:, None] * eps))
    pair_var = np.maximum(pair**2 @ w / np.sqrt(np.pi) - exact**2, 0.0)
    se = np.sqrt(pair_var / (draws // 2))
    assert np.all(np.abs(got - exact) <= 5 * se + 1e-12)
    assert np.max(np.abs(got - exact) / se) > 0.5  # it is Monte Carlo
    np.testing.assert_array_equal(est.predict_proba(X_test)[:, 1], got)
    other = est.set_params(random_state=4).predict_proba(X_test)[:, 1]
    assert not np.array_equal(other, got)


@pytest.mark.parametrize("predictive", ["probit", "sampling"])
def test_predict_agrees_with_proba_and_decision(fitted, split, predictive):
    """predict = the argmax of predict_proba = the sign of decision_function = the sign of
    the predictor's posterior mean (antithetic draws make the sampled E[σ(a)] exceed ½
    exactly when μₐ > 0); decision_function is the log-odds of predict_proba."""
    est = copy.deepcopy(fitted["mean_field"]).set_params(predictive=predictive, draws=100)
    X = np.vstack([split[1], 0.05 * split[1]])  # include rows near the boundary
    proba, decision = est.predict_proba(X), est.decision_function(X)
    pred = est.predict(X)
    np.testing.assert_array_equal(pred, np.argmax(proba, axis=1))
    np.testing.assert_array_equal(pred, (decision > 0).astype(int))
    np.testing.assert_array_equal(pred, (est.predictor_moments(X)[0] > 0).astype(int))
    np.testing.assert_allclose(decision, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), rtol=1e-12,
                               atol=1e-14)
    assert est.score(split[1], split[3]) == np.mean(est.predict(split[1]) == split[3])


# ---- errors --------------------------------------------------------------------------------
def test_errors(fitted, split):
    """NotFittedError before fit; ValueError for a wrong feature count or shape, more than two
    classes, and parameters out of range, each naming what is wrong."""
    X_train, X_test, y_train, _, _ = split
    with pytest.raises(NotFittedError):
        BayesianLogisticRegression().predict_proba(X_test)
    est = fitted["mean_field"]
    with pytest.raises(ValueError, match="X has 29 features, but BayesianLogisticRegression "
                                         "is expecting 30 features"):
        est.predict(X_test[:, :-1])
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.predict_proba(X_test[0])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        BayesianLogisticRegression().fit(X_train, y_train[:-1])
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        BayesianLogisticRegression().fit(X_train, np.arange(len(y_train)) % 3)
    with pytest.raises(ValueError, match="one class"):
        BayesianLogisticRegression().fit(X_train, np.ones(len(y_train)))
    with pytest.raises(ValueError, match="Unknown label type"):
        BayesianLogisticRegression().fit(X_train, np.linspace(0, 1, len(y_train)))
    bad = [({"prior_scale": 0.0}, "prior_scale"), ({"intercept_scale": -1}, "intercept_scale"),
           ({"family": "diagonal"}, "family"), ({"predictive": "laplace"}, "predictive"),
           ({"draws": 0}, "draws"), ({"fit_intercept": "yes"}, "fit_intercept"),
           ({"random_state": -1}, "random_state"), ({"max_iter": 0}, "max_iter"),
           ({"optimizer": "newton"}, "optimizer")]
    for params, name in bad:
        with pytest.raises(ValueError, match=name):
            BayesianLogisticRegression(**params).fit(X_train, y_train)


def test_convergence_warning(split):
    """A fit stopped by max_iter warns with scikit-learn's ConvergenceWarning."""
    with pytest.warns(ConvergenceWarning, match="'max_iter' after 2 iterations"):
        est = BayesianLogisticRegression(max_iter=2).fit(split[0], split[2])
    assert est.n_iter_ == 2


# ---- scikit-learn tooling ----------------------------------------------------------------
def test_pipeline_with_scaler(split):
    """A Pipeline(StandardScaler, estimator) on raw features gives the same predictions as the
    estimator on features standardized by hand."""
    X, y, _ = load_breast_cancer()
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0,
                                                   stratify=y)
    pipe = make_pipeline(StandardScaler(), BayesianLogisticRegression()).fit(X_train, y_train)
    mu, sd = X_train.mean(axis=0), X_train.std(axis=0)
    by_hand = BayesianLogisticRegression().fit((X_train - mu) / sd, y_train)
    np.testing.assert_allclose(pipe.predict_proba(X_test),
                               by_hand.predict_proba((X_test - mu) / sd), rtol=1e-6)
    assert pipe.score(X_test, split[3]) > 0.95


def test_cross_val_score():
    """cross_val_score of the pipeline equals the accuracies of a hand-written loop over the
    same folds (clone and get_params round-trip every parameter)."""
    X, y, _ = load_breast_cancer()
    est = BayesianLogisticRegression(prior_scale=0.5, intercept_scale=5.0)
    pipe = make_pipeline(StandardScaler(), est)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv)
    by_hand = []
    for train, test in cv.split(X, y):
        scaler = StandardScaler().fit(X[train])
        fold = BayesianLogisticRegression(prior_scale=0.5, intercept_scale=5.0)
        fold.fit(scaler.transform(X[train]), y[train])
        by_hand.append(fold.score(scaler.transform(X[test]), y[test]))
    np.testing.assert_array_equal(scores, by_hand)
    assert np.all(scores > 0.95)
    assert clone(est).get_params() == est.get_params()


# ---- the numbers the issue asks for ----------------------------------------------------------
def test_held_out_log_loss_vs_sklearn(split):
    """Held-out log loss against scikit-learn's LogisticRegression at the matching penalty.

    The prior βⱼ ~ N(0, s²) is the L2 penalty ‖β‖²/(2s²), i.e. scikit-learn's C = s² (its
    objective is ½‖β‖² + C Σ log-loss). scikit-learn does not penalize the intercept, which
    an intercept prior of sd 100 matches (its penalty α²/20000 is negligible here). Data:
    breast cancer, stratified 70/30 split with random_state=0, standardized by the training
    part.

    At s = 2.5 (natvi.models.LogisticRegression's default; weak enough that the MAP point
    overfits) the posterior predictive wins: mean-field 0.121 (probit), 0.123 (sampling),
    full-rank (the default here) 0.129 and 0.133, against 0.146. At s = 1 (C = 1, both
    libraries' default) the two tie: over 40 random splits the mean-field mean difference is
    −0.0000 ± 0.0010, and on this split scikit-learn is ahead, 0.1069 vs 0.1118 (full-rank
    0.1129).
    """
    X_train, X_test, y_train, y_test, _ = split
    for family, margin in (("mean_field", 0.02), ("auto", 0.01)):
        results = {}
        for s in (2.5, 1.0):
            sk = SkLogisticRegression(C=s**2, tol=1e-10, max_iter=10_000).fit(X_train, y_train)
            est = BayesianLogisticRegression(prior_scale=s, intercept_scale=100.0, family=family)
            est.fit(X_train, y_train)
            results[s] = (log_loss(y_test, sk.predict_proba(X_test)),
                          log_loss(y_test, est.predict_proba(X_test)),
                          log_loss(y_test, est.set_params(predictive="sampling")
                                   .predict_proba(X_test)))
        sk_loss, probit, sampling = results[2.5]
        assert probit <= sk_loss and sampling <= sk_loss, (family, results)
        assert probit < sk_loss - margin, (family, results)
        sk_loss, probit, sampling = results[1.0]
        assert abs(probit - sk_loss) < 0.01 and abs(sampling - sk_loss) < 0.01, (family, results)


@pytest.mark.slow
def test_held_out_log_loss_over_repeated_splits_at_c_1():
    """At s = 1 (C = 1) the single split above is a tie that scikit-learn happens to win; over
    10 stratified 70/30 splits (random_state 0..9) the posterior predictive's mean held-out
    log loss is no worse: 0.0903 (probit) against 0.0906."""
    X, y, _ = load_breast_cancer()
    ours, theirs = [], []
    for seed in range(10):
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        sk = SkLogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X_train, y_train)
        est = BayesianLogisticRegression(prior_scale=1.0, intercept_scale=100.0)
        theirs.append(log_loss(y_test, sk.predict_proba(X_test)))
        ours.append(log_loss(y_test, est.fit(X_train, y_train).predict_proba(X_test)))
    assert np.mean(ours) <= np.mean(theirs), (np.mean(ours), np.mean(theirs))
