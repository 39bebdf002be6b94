"""What a fitted regression predicts: replicated data, and new rows with intervals.

A model that predicts (the GLMs of :mod:`natvi.models` and ``LinearRegression``) has
latents ``coef`` (and ``intercept``), features ``X`` with ``feature_names``, and

- ``draw_response(rng, eta, draws)``: one response per draw and row from the model's
  likelihood at the linear predictors ``eta`` (S, rows), integers for labels and counts;
  ``draws`` holds the other latents (the noise of a linear regression);
- ``expected_response(mean, var)``: E[E[y | η]] for η ~ N(mean, var) per row, the mean
  of the response under q, exact.

Replicated data are drawn row block by row block from an explicit
``numpy.random.Generator``; every call checks its memory before it allocates.
"""

import numbers
from typing import NamedTuple

import numpy as np

from natvi import arviz_bridge
from natvi.engines.glm import Design
from natvi.formula import new_design
from natvi.lazy_modules import special
from natvi.validation import (
    as_rng,
    check_draws_memory,
    design_matrix,
    exposures,
    listed,
)

#: rows of replicated data drawn at a time: S × this many predictors and responses
ROWS = 4096
#: arrays of draws × rows a prediction holds: the linear predictor, the responses, and the
#: quantiles' sorted copy
PREDICT_ARRAYS = 3


def check_predictive(model, name):
    """ValueError naming ``name`` unless ``model`` can draw replicated data."""
    if not callable(getattr(model, "draw_response", None)):
        raise ValueError(f"{name}: {type(model).__name__} cannot draw replicated data (the "
                         f"regressions of natvi.models can)")


def replicate_memory(model, draws):
    """Peak bytes of :func:`replicate`: the draws × N replicated data, and a block's
    predictors and responses."""
    n = model.X.shape[0]
    return 8 * draws * (n + 2 * min(ROWS, n))


def linear_predictor(draws, X, offset=None):
    """ηᵢ = log eᵢ + α + xᵢᵀβ at each draw of ``draws`` ({"coef": (S, D), and "intercept":
    (S,) if the model has one}), for the rows of ``X`` (rows, D), with ``offset`` log eᵢ;
    shape (S, rows)."""
    eta = np.asarray(draws["coef"]) @ np.asarray(X, dtype=float).T
    if offset is not None:
        eta = eta + offset
    if "intercept" in draws:
        eta = eta + np.asarray(draws["intercept"])[:, None]
    return eta


def replicate(model, draws, rng):
    """Replicated data at the model's own rows: ``{"y": (S, N)}``, one data set per draw of
    ``draws`` ({latent name: (S, *shape)}), from ``rng`` (a ``numpy.random.Generator``)."""
    n_draws, n = len(np.asarray(draws["coef"])), model.X.shape[0]
    offset = getattr(model, "offset", None)
    out = None
    for start in range(0, n, ROWS):
        rows = slice(start, min(start + ROWS, n))
        eta = linear_predictor(draws, model.X[rows], None if offset is None else offset[rows])
        block = model.draw_response(rng, eta, draws)
        if out is None:  # integers for counts and labels: ArviZ's plot_ppc then bins them
            out = np.empty((n_draws, n), dtype=block.dtype)
        out[:, rows] = block
    return {"y": out}


def new_rows(model, X_new, exposure=None, name="X_new"):
    """``X_new`` checked as the training features were: (X as a float array (M, D) in the
    training column order, the exposures (M,) or None).

    A DataFrame must hold the training columns by name, in any order (unless the training
    X had no column names; a model fitted from a formula builds them from the formula's
    variables), anything else the training width. ``exposure`` (positive, one per row) is
    for models fitted with exposures only.
    """
    spec = getattr(model, "formula", None)
    if spec is not None:
        X_new = new_design(spec, X_new, name)
    columns = getattr(X_new, "columns", None)
    names = model.feature_names
    if columns is not None and list(names) != [f"x{j}" for j in range(len(names))]:
        given = [str(c) for c in columns]
        missing = [c for c in names if c not in given]
        extra = [c for c in given if c not in names]
        if missing or extra:
            raise ValueError(f"{name}: expected the training columns by name; missing "
                             f"{listed(missing)}, unexpected {listed(extra)}")
        X_new = X_new[[columns[given.index(c)] for c in names]]
    X, _ = design_matrix(X_new, name)
    if X.shape[1] != len(names):
        raise ValueError(f"{name}: expected {len(names)} columns (the width of the training "
                         f"X), got {X.shape[1]}")
    if exposure is None:
        return X, None
    if not getattr(model, "takes_exposure", False):
        raise ValueError(f"exposure: {type(model).__name__} has no exposure (count models "
                         f"such as PoissonRegression do)")
    return X, exposures(exposure, X.shape[0])


class Interval(NamedTuple):
    """A predictive mean per row and the equal-tailed interval around it."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


class Prediction:
    """What a fit predicts at new rows: from :meth:`natvi.FitResult.predict`.

    Attributes
    ----------
    linear_predictor : Interval
        ``mean``, ``lower``, ``upper`` of η = log e + α + xᵀβ per row: exact, as η is
        Gaussian under q (mean ± the normal quantile × sd).
    response : Interval
        ``mean``: the mean of the response under q, E_q[E[y | η]] (exact: a probability for
        the binary models, a rate for Poisson); ``lower``, ``upper``: quantiles of the
        posterior predictive distribution of a new y, from ``draws`` replicated responses.
    prob : float
        Probability mass of the intervals.
    draws : dict
        {latent name: (S, *shape)}: the posterior draws the replicated responses come from.
    eta, y : ndarray, shape (S, M)
        The linear predictor and a replicated response per draw and row.
    X : ndarray, shape (M, D)
        The new rows' features (the coefficients' columns), with ``exposure`` (M,) or None.
    """

    def __init__(self, model, linear_predictor, response, prob, draws, eta, y, X, exposure):
        self.model = model
        self.linear_predictor, self.response, self.prob = linear_predictor, response, prob
        self.draws, self.eta, self.y, self.X, self.exposure = draws, eta, y, X, exposure

    def to_dataframe(self):
        """The means and intervals as a pandas DataFrame, one row per new row: columns
        ``eta_mean``, ``eta_lower``, ``eta_upper``, ``mean``, ``lower``, ``upper``."""
        import pandas as pd

        eta, y = self.linear_predictor, self.response
        return pd.DataFrame({"eta_mean": eta.mean, "eta_lower": eta.lower,
                             "eta_upper": eta.upper, "mean": y.mean, "lower": y.lower,
                             "upper": y.upper})

    def to_arviz(self):
        """The prediction as ArviZ's own object (``InferenceData`` on 0.x, ``DataTree`` on
        ≥ 1.0): groups ``posterior`` (the draws, one chain), ``predictions`` (``y`` and
        ``eta``, dims ``(chain, draw, obs)`` over the new rows) and
        ``predictions_constant_data`` (``X``, dims ``(obs, feature)``, and ``exposure``)."""
        model = self.model
        constant = {"X": self.X}
        dims = {"coef": ["feature"], "y": ["obs"], "eta": ["obs"], "X": ["obs", "feature"]}
        if self.exposure is not None:
            constant["exposure"], dims["exposure"] = self.exposure, ["obs"]
        groups = {"posterior": {k: np.asarray(v)[None] for k, v in self.draws.items()},
                  "predictions": {"y": self.y[None], "eta": self.eta[None]},
                  "predictions_constant_data": constant}
        coords = {"feature": model.feature_names, "obs": np.arange(self.X.shape[0])}
        return arviz_bridge.from_groups(groups, coords, dims)


def predict(result, X_new, draws, seed, prob, exposure):
    """:meth:`natvi.FitResult.predict` (see there)."""
    model = result.model
    check_predictive(model, "model")
    prob = float(prob) if isinstance(prob, numbers.Real) and not isinstance(prob, bool) else None
    if prob is None or not 0 < prob < 1:
        raise ValueError("prob: expected the interval's probability mass, a number in (0, 1)")
    X, exposure = new_rows(model, X_new, exposure)
    offset = None if exposure is None else np.log(exposure)
    rows = X.shape[0]
    draws = check_draws_memory(model, draws, extra=(
        f"the predictions at {rows} row{'s' * (rows != 1)} (predict fewer at a time)",
        lambda s: 8 * s * PREDICT_ARRAYS * rows))
    mean, var = Design(X, "coef", "intercept" if "intercept" in model.latents else None
                       ).predictor_moments(result.posterior)
    if offset is not None:
        mean = mean + offset
    half = special.ndtri(0.5 + prob / 2) * np.sqrt(var)
    eta_interval = Interval(mean, mean - half, mean + half)
    rng = as_rng(seed)
    z = result.sample(draws, rng)
    eta = linear_predictor(z, X, offset)
    y = model.draw_response(rng, eta, z)
    # inverted_cdf: a quantile is a value the response takes (a count, a label)
    lower, upper = np.quantile(y, [0.5 - prob / 2, 0.5 + prob / 2], axis=0,
                               method="inverted_cdf")
    response = Interval(model.expected_response(mean, var), lower, upper)
    return Prediction(model, eta_interval, response, prob, z, eta, y, X, exposure)
