"""Regression models from Wilkinson formulas, through formulaic (as Bambi uses).

Needs formulaic (``pip install "natvi[formula]"``); ``import natvi`` does not.
``LogisticRegression.from_formula("y ~ x1 + x2 + C(group) + x1:x2", data=df)`` codes the
categorical columns and the interactions as formulaic does, fits the intercept as the
model's own latent ``intercept`` (with its own prior) rather than as a column of ones, and
keeps formulaic's model spec, so predictions on new data frames code them the same way.
"""

import warnings

from natvi.validation import listed

#: formulaic's name of the column of ones
INTERCEPT = "Intercept"


def _formulaic():
    try:
        import formulaic
    except ImportError as exc:
        raise ImportError('formulas need formulaic; install it with '
                          '`pip install "natvi[formula]"`') from exc
    return formulaic


def _check_frame(data, name):
    if not hasattr(data, "columns") or not hasattr(data, "dtypes"):
        raise ValueError(f"{name}: expected a pandas DataFrame holding the formula's "
                         f"variables, got {type(data).__name__}")


def _check_columns(required, data, name):
    missing = sorted(set(required) - {str(c) for c in data.columns})
    if missing:
        raise ValueError(f"{name}: missing column(s) {listed(missing)} that the formula "
                         f"uses")


def _materialize(spec_or_formula, data, name, formulaic):
    """formulaic's model matrices of ``data``; its errors (NaN in a column, a level never
    seen, a factor that cannot be evaluated) as ValueErrors naming ``name``."""
    try:
        with warnings.catch_warnings():
            # a level not seen in fitting would become NaN; make it an error instead
            warnings.simplefilter("error", formulaic.errors.DataMismatchWarning)
            return formulaic.model_matrix(spec_or_formula, data, na_action="raise")
    except (formulaic.errors.FormulaicError, formulaic.errors.DataMismatchWarning,
            ValueError, TypeError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def design(formula, data):
    """The features, response and spec of ``formula`` on ``data``.

    Parameters
    ----------
    formula : str
        A Wilkinson formula with one response, e.g. ``"y ~ x1 + C(group) + x1:x2"``; ``0 +``
        or ``- 1`` leaves out the intercept.
    data : pandas.DataFrame
        The formula's variables as columns.

    Returns
    -------
    X : pandas.DataFrame
        The coefficients' columns, named as formulaic names them (``C(group)[T.b]``,
        ``x1:x2``), without the intercept's column of ones.
    y : ndarray
        The response.
    spec : formulaic.ModelSpec
        The right-hand side's spec, for new data (:func:`new_design`).
    fit_intercept : bool
        Whether the formula has an intercept.
    """
    formulaic = _formulaic()
    if not isinstance(formula, str):
        raise ValueError(f"formula: expected a string such as 'y ~ x1 + x2', got "
                         f"{type(formula).__name__}")
    _check_frame(data, "data")
    try:
        parsed = formulaic.Formula(formula)
    except formulaic.errors.FormulaicError as exc:
        raise ValueError(f"formula: cannot parse {formula!r}: {exc}") from None
    if not hasattr(parsed, "lhs") or not len(parsed.lhs):
        raise ValueError(f"formula: expected a response on the left of '~', as in "
                         f"'y ~ x1 + x2', got {formula!r}")
    _check_columns(parsed.required_variables, data, "data")
    matrices = _materialize(parsed, data, "data", formulaic)
    lhs, rhs = matrices.lhs, matrices.rhs
    if lhs.shape[1] != 1:
        raise ValueError(f"formula: expected one numeric response on the left of '~', got "
                         f"the {lhs.shape[1]} columns {listed(lhs.columns)} (code a "
                         f"categorical response as numbers, e.g. 0 and 1)")
    fit_intercept = INTERCEPT in rhs.columns
    X = rhs.drop(columns=INTERCEPT) if fit_intercept else rhs
    if X.shape[1] == 0:
        raise ValueError(f"formula: expected at least one predictor on the right of '~', got "
                         f"{formula!r}")
    return X, lhs.iloc[:, 0].to_numpy(), rhs.model_spec, fit_intercept


def new_design(spec, data, name="X_new"):
    """New rows coded by a fitted formula's ``spec``: the coefficients' columns as a
    DataFrame (no intercept column), with the levels and transforms of the fit.

    Parameters
    ----------
    spec : formulaic.ModelSpec
        From :func:`design`.
    data : pandas.DataFrame
        The formula's right-hand variables as columns (the response is not needed).
    name : str
        The argument named in errors.
    """
    formulaic = _formulaic()
    _check_frame(data, name)
    _check_columns(spec.required_variables, data, name)
    X = _materialize(spec, data, name, formulaic)
    return X.drop(columns=INTERCEPT) if INTERCEPT in X.columns else X


class FromFormula:
    """Adds :meth:`from_formula` to a regression model whose constructor takes
    ``(X, y, ..., fit_intercept=...)``."""

    #: the fitted formula's spec (formulaic.ModelSpec), None for a model built from X and y
    formula = None

    @classmethod
    def from_formula(cls, formula, data, **kwargs):
        """The model of a Wilkinson formula on a DataFrame (needs ``natvi[formula]``).

        Categorical columns (strings, pandas categoricals, ``C(x)``) get formulaic's
        treatment coding, interactions (``x1:x2``, ``x1*x2``) their product columns, and
        the column names (``C(group)[T.b]``) become the ArviZ ``feature`` coordinate. The
        intercept is the model's own latent ``intercept`` with its prior
        (``intercept_scale``), not a column of ones: a formula with ``0 +`` or ``- 1``
        fits none. ``result.predict(new_df)`` codes new rows with the fitted spec.

        Parameters
        ----------
        formula : str
            E.g. ``"y ~ x1 + x2 + C(group) + x1:x2"``.
        data : pandas.DataFrame
            The formula's variables as columns.
        **kwargs
            The model's other arguments (``prior_scale``, ``exposure``, ...), not
            ``fit_intercept``, which the formula sets.
        """
        if "fit_intercept" in kwargs:
            raise ValueError("fit_intercept: set by the formula ('0 +' or '- 1' drops the "
                             "intercept); do not pass it with from_formula")
        X, y, spec, fit_intercept = design(formula, data)
        model = cls(X, y, fit_intercept=fit_intercept, **kwargs)
        model.formula = spec
        return model
