"""Models from formulas (formulaic): the coding against hand-built design matrices, the
intercept as the model's own latent, predictions on new data frames with the fitted spec,
and clear errors."""

import sys

import numpy as np
import pandas as pd
import pytest

import natvi
from natvi.models import LinearRegression, LogisticRegression, PoissonRegression, ProbitRegression

N = 120
GLMS = [LogisticRegression, ProbitRegression, PoissonRegression, LinearRegression]


def _frame(seed=0, n=N):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "group": rng.choice(["a", "b", "c"], size=n)})
    eta = 0.2 + df.x1 - 0.5 * df.x2 + 0.8 * (df.group == "b") - 0.4 * (df.group == "c")
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    df["count"] = rng.poisson(np.exp(0.5 * eta))
    df["z"] = eta + 0.5 * rng.normal(size=n)
    return df


def _hand_design(df):
    """x1 + x2 + C(group) + x1:x2, treatment-coded against level "a", no intercept column."""
    return pd.DataFrame({"x1": df.x1, "x2": df.x2,
                         "C(group)[T.b]": (df.group == "b").astype(float),
                         "C(group)[T.c]": (df.group == "c").astype(float),
                         "x1:x2": df.x1 * df.x2})


FORMULA = "y ~ x1 + x2 + C(group) + x1:x2"


def test_coding_matches_the_hand_built_design():
    df = _frame()
    model = LogisticRegression.from_formula(FORMULA, df, prior_scale=1.0)
    hand = _hand_design(df)
    assert model.feature_names == list(hand.columns)
    np.testing.assert_array_equal(model.X, hand.to_numpy())
    np.testing.assert_array_equal(model.y, df.y.to_numpy())
    assert model.fit_intercept and "intercept" in model.latents
    by_hand = LogisticRegression(hand, df.y, prior_scale=1.0)
    a, b = natvi.fit(model, seed=0), natvi.fit(by_hand, seed=0)
    assert a.elbo == pytest.approx(b.elbo, abs=1e-10)
    data = a.to_arviz(draws=50, seed=1)
    assert list(data["posterior"]["coef"]["feature"].values) == list(hand.columns)


def test_star_is_main_effects_and_interaction():
    df = _frame()
    star = LogisticRegression.from_formula("y ~ x1*x2", df)
    np.testing.assert_array_equal(star.X, df[["x1", "x2"]].assign(
        i=df.x1 * df.x2).to_numpy())
    assert star.feature_names == ["x1", "x2", "x1:x2"]


@pytest.mark.parametrize("formula", ["y ~ 0 + x1 + C(group)", "y ~ x1 + C(group) - 1"])
def test_no_intercept_codes_every_level(formula):
    df = _frame()
    model = LogisticRegression.from_formula(formula, df)
    assert not model.fit_intercept and "intercept" not in model.latents
    hand = np.column_stack([df.x1] + [(df.group == g).astype(float) for g in "abc"])
    np.testing.assert_array_equal(model.X, hand)
    assert model.feature_names == ["x1", "C(group)[a]", "C(group)[b]", "C(group)[c]"]


@pytest.mark.parametrize("cls", GLMS)
def test_every_glm_has_formulas(cls):
    df = _frame()
    response = {PoissonRegression: "count", LinearRegression: "z"}.get(cls, "y")
    model = cls.from_formula(f"{response} ~ x1 + x2 + C(group) + x1:x2", df)
    hand = _hand_design(df)
    np.testing.assert_array_equal(model.X, hand.to_numpy())
    np.testing.assert_array_equal(model.y, df[response].to_numpy())
    result = natvi.fit(model, seed=0)
    assert result.converged
    expected = natvi.fit(cls(hand, df[response]), seed=0)
    assert result.elbo == pytest.approx(expected.elbo, abs=1e-8)
    new = _frame(seed=1, n=6).drop(columns=["y", "count", "z"])
    np.testing.assert_array_equal(result.predict(new, draws=20, seed=0).y,
                                  expected.predict(_hand_design(new), draws=20, seed=0).y)


def test_predictions_reuse_the_fitted_spec():
    df = _frame()
    model = LinearRegression.from_formula("z ~ center(x1) + C(group)", df, noise_scale=0.5)
    result = natvi.fit(model, family=natvi.FullRankGaussian, seed=0)
    # one new row of level "c" only: still coded against "a", centred at the training mean
    new = pd.DataFrame({"x1": [2.0], "group": ["c"]})
    pred = result.predict(new, draws=10, seed=0)
    np.testing.assert_allclose(pred.X, [[2.0 - df.x1.mean(), 0.0, 1.0]], atol=1e-14)
    mean, cov = model.exact_posterior()
    row = np.array([1.0, 2.0 - df.x1.mean(), 0.0, 1.0])
    assert pred.linear_predictor.mean[0] == pytest.approx(row @ mean, abs=1e-9)
    constant = pred.to_arviz()["predictions_constant_data"]
    assert list(constant["feature"].values) == ["center(x1)", "C(group)[T.b]", "C(group)[T.c]"]


def test_formula_in_exposure_model():
    df = _frame()
    exposure = np.linspace(0.5, 2.0, N)
    model = PoissonRegression.from_formula("count ~ x1 + C(group)", df, exposure=exposure)
    np.testing.assert_allclose(model.offset, np.log(exposure))


@pytest.mark.parametrize(("formula", "data", "match"), [
    ("y ~ x1 +", None, r"^formula: cannot parse 'y ~ x1 \+'"),
    ("y ~ x1 ~ x2", None, r"^formula: cannot parse"),
    ("~ x1 + x2", None, r"^formula: expected a response on the left of '~'"),
    ("y ~ 1", None, r"^formula: expected at least one predictor"),
    ("label ~ x1", None, r"^formula: expected one numeric response.*'label\[a\]'"),
    (["y ~ x1"], None, r"^formula: expected a string"),
    ("y ~ x1 + x3 + C(colour)", None, r"^data: missing column\(s\) \['colour', 'x3'\]"),
    ("w ~ x1", None, r"^data: missing column\(s\) \['w'\]"),
    ("y ~ x1", "nan", r"^data: .*`x1`.*null"),
    ("y ~ x1", "array", r"^data: expected a pandas DataFrame"),
])
def test_bad_formulas_and_data(formula, data, match):
    df = _frame().assign(label=lambda d: np.where(d.y == 1, "b", "a"))
    if data == "nan":
        df.loc[3, "x1"] = np.nan
    elif data == "array":
        df = df[["x1", "y"]].to_numpy()
    with pytest.raises(ValueError, match=match):
        LogisticRegression.from_formula(formula, df)


def test_bad_new_rows():
    df = _frame()
    result = natvi.fit(LogisticRegression.from_formula(FORMULA, df), seed=0)
    new = _frame(seed=1, n=4)
    with pytest.raises(ValueError, match=r"^X_new: missing column\(s\) \['group'\]"):
        result.predict(new.drop(columns="group"))
    with pytest.raises(ValueError, match=r"^X_new: .*\{'z'\}"):
        result.predict(new.assign(group=["a", "b", "z", "a"]))
    with pytest.raises(ValueError, match=r"^X_new: .*`x2`.*null"):
        result.predict(new.assign(x2=[0.0, np.nan, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"^X_new: expected a pandas DataFrame"):
        result.predict(np.zeros((2, 5)))


def test_bad_arguments():
    df = _frame()
    with pytest.raises(ValueError, match=r"^fit_intercept: set by the formula"):
        LogisticRegression.from_formula(FORMULA, df, fit_intercept=False)
    with pytest.raises(ValueError, match=r"^counts: expected non-negative integers"):
        PoissonRegression.from_formula("z ~ x1", df)
    with pytest.raises(ValueError, match=r"^y: expected labels in \{0, 1\}"):
        LogisticRegression.from_formula("count ~ x1", df.assign(count=df["count"] + 2))


def test_formulaic_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "formulaic", None)
    with pytest.raises(ImportError, match=r'pip install "natvi\[formula\]"'):
        LogisticRegression.from_formula(FORMULA, _frame())
    # models from arrays do not need it
    natvi.fit(LogisticRegression(_hand_design(_frame()), _frame().y), seed=0)
