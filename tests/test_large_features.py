"""Features too large to fit at (issue 12, item 8): an error that names X and says to
standardize, where it is found — at construction when a column's sum of squares overflows
float64, at the start of the fit when q's starting precision does — never a message about
an internal parameter. Blocks of 64 rows make the sums cross block boundaries."""

import numpy as np
import pytest

import natvi
from natvi.engines import glm
from natvi.models import (
    ARDLogisticRegression,
    LinearRegression,
    LogisticRegression,
    PoissonRegression,
    ProbitRegression,
)

MODELS = [LogisticRegression, ProbitRegression, PoissonRegression, LinearRegression,
          ARDLogisticRegression]
N = 300
TOO_LARGE = (r"^X: features too large to fit at this scale \(.*\); rescale them: divide each "
             r"column by its largest absolute value, X / abs\(X\)\.max\(0\), then "
             r"standardize, \(X - X\.mean\(0\)\) / X\.std\(0\)$")


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(glm, "BLOCK_ROWS", 64)


def _data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, 3))
    return X, (rng.random(N) < 0.5).astype(float)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("scale", [1e300, 1e160])
def test_x_near_1e300_is_refused_at_construction(model, scale):
    """X·1e300 (the report) and X·1e160: x² overflows; the error names X and a fix that
    works (X.std(0) alone would overflow too)."""
    X, y = _data()
    big = X * scale
    with pytest.raises(ValueError, match=TOO_LARGE) as err:
        model(big, y)
    assert "['x0', 'x1', 'x2']" in str(err.value)
    fixed = big / abs(big).max(0)
    fixed = (fixed - fixed.mean(0)) / fixed.std(0)
    np.testing.assert_allclose(fixed, (X - X.mean(0)) / X.std(0), atol=1e-12)
    assert np.isfinite(natvi.fit(model(fixed, y), max_iter=20).elbo)


@pytest.mark.parametrize("model", MODELS)
def test_overflow_across_blocks_names_the_column(model):
    """Each 64-row block's sum of squares of column 'big' is finite (6.4e307), the total is
    not: the column is named, the others are not."""
    X, y = _data()
    X[:, 1] = 1e153
    with pytest.raises(ValueError, match=TOO_LARGE) as err:
        model(X, y)
    assert "column(s) ['x1'] overflows" in str(err.value)


def test_nan_after_an_overflow_is_reported_as_nan():
    X, y = _data()
    X[:, 0] = 1e200
    X[-1, 2] = np.nan  # in the last block, after column x0 has overflowed
    with pytest.raises(ValueError, match=r"X: expected finite values, found missing \(NaN\) "
                                         r"values in column\(s\) \['x2'\]"):
        LogisticRegression(X, y)


@pytest.mark.parametrize("family", [None, natvi.FullRankGaussian])
def test_starting_precision_overflow_names_x(family):
    """Σx² = 1e303 fits in float64, but the Poisson curvature at the pooled rate (1e6 counts
    per row) makes q's starting precision 1e309: refused at the start of the fit, naming X
    (today: "scale: expected values > 0" or a NaN condition number)."""
    X = np.full((10, 1), 1e151)
    model = PoissonRegression(X, np.full(10, 1e6))
    with pytest.raises(ValueError, match=TOO_LARGE) as err:
        natvi.fit(model, family=family)
    assert "starting precision" in str(err.value)


@pytest.mark.parametrize("model", [LogisticRegression, ProbitRegression, PoissonRegression])
@pytest.mark.parametrize("family", [None, natvi.FullRankGaussian])
def test_large_but_representable_x_still_fits(model, family):
    """X·1e100: Σx² is about 1e202, in range; the fit runs to a finite ELBO."""
    X, y = _data()
    result = natvi.fit(model(X * 1e100, y), family=family, max_iter=20)
    assert np.isfinite(result.elbo)
