"""A scikit-learn classifier: Bayesian logistic regression fitted by natural gradients.

Needs scikit-learn (``pip install "natvi[sklearn]"``); ``import natvi`` does not.
"""

import numbers
import warnings

import numpy as np

from natvi.lazy_modules import special

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError('natvi.sklearn needs scikit-learn; install it with '
                      '`pip install "natvi[sklearn]"`') from exc

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.3 to 1.5
    def _validate_data(estimator, X="no_validation", y="no_validation", reset=True, **kwargs):
        return estimator._validate_data(X, y, reset=reset, **kwargs)

from natvi import factors
from natvi.engines.glm import Design
from natvi.families import GAUSSIAN_BY_NAME
from natvi.fit import fit as _fit
from natvi.models import LogisticRegression as _LogisticRegression
from natvi.validation import SAMPLE_ARRAYS, as_rng, check_memory, check_positive_int

__all__ = ["BayesianLogisticRegression"]

_FAMILIES = GAUSSIAN_BY_NAME
_PREDICTIVES = ("probit", "sampling")
#: arrays of draws × rows that predicting by sampling holds at its peak: the predictor at the
#: draws and at their antithetic pairs, log σ at both signs, and logsumexp's temporaries
_PREDICT_ARRAYS = 8


class BayesianLogisticRegression(ClassifierMixin, BaseEstimator):
    r"""Bayesian logistic regression for two classes, as a scikit-learn classifier.

    The model (:class:`natvi.models.LogisticRegression`), for features xᵢ ∈ ℝᴰ and
    labels yᵢ ∈ {0, 1} (the second of ``classes_`` is 1):

    .. math::
        \alpha \sim N(0, s_0^2), \quad \beta_j \sim N(0, s^2), \quad
        y_i \mid \alpha, \beta \sim \mathrm{Bernoulli}(\sigma(a_i)), \quad
        a_i = \alpha + x_i^\top \beta,

    with σ the logistic function. ``fit`` finds the Gaussian q(α, β) that maximizes the
    ELBO by natural-gradient ascent (:func:`natvi.fit`). The class probability of a new x
    is the posterior predictive

    .. math::
        p(y = 1 \mid x) = E_q[\sigma(a)], \quad a = \alpha + x^\top \beta
        \sim N(\mu_a, v_a) \text{ under } q,

    approximated with the probit approximation (MacKay 1992)
    σ(μₐ / √(1 + π vₐ / 8)), or by Monte Carlo.

    The MAP point of this model is scikit-learn's ``LogisticRegression(C=s**2)`` (an L2
    penalty ‖β‖²/(2C)), with an intercept that is penalized unless s₀ is large.

    Parameters
    ----------
    prior_scale : float, default=1.0
        Prior standard deviation s of each coefficient βⱼ (features are best standardized,
        e.g. by a ``StandardScaler`` in a ``Pipeline``).
    intercept_scale : float, default=2.5
        Prior standard deviation s₀ of the intercept α.
    fit_intercept : bool, default=True
        Include the intercept α; without it, ``intercept_`` is 0.
    family : {"auto", "mean_field", "full_rank"}, default="auto"
        The Gaussian family of q: one full-rank Gaussian over (α, β) that keeps their
        correlations (D(D+1)/2 covariance entries), or independent coordinates; "auto"
        fits the full-rank one where its cost is affordable (see
        :meth:`natvi.models.LogisticRegression.auto_family`; the reason is in
        ``result_.family_reason``).
    optimizer : str or natvi.optim.Optimizer, default="ngd"
        Passed to :func:`natvi.fit`: ``"ngd"`` (natural gradient: Anderson-accelerated for
        ``"mean_field"``, a line search along the Newton step for ``"full_rank"``), a name
        such as ``"adam"``, or an optimizer such as ``natvi.optim.adam(0.05)``.
    max_iter : int, default=1000
        Maximum number of optimizer steps; a fit that stops there warns
        (``ConvergenceWarning``).
    tol : float or None, default=None
        Convergence tolerance of :func:`natvi.fit` (None: its default, a gain below 1e-10
        nats from one more natural-gradient step).
    predictive : {"probit", "sampling"}, default="probit"
        How ``predict_proba`` computes E_q[σ(a)]: the probit approximation above
        (deterministic), or an average of σ(a) over ``draws`` posterior draws.
    draws : int, default=1000
        Posterior draws for ``predictive="sampling"``, taken in antithetic pairs (β, 2m − β)
        around the posterior mean m (an odd number is rounded up). ``fit`` and the
        predictions refuse (ValueError) a number whose draws and predictors would not fit in
        memory (see :func:`natvi.validation.memory_limit`).
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the fit (used by stochastic engines only) and of the predictive draws; an
        int gives the same draws, and so the same predictions, at every call.

    Attributes
    ----------
    classes_ : ndarray, shape (2,)
        The two labels seen in ``fit``, sorted; ``classes_[1]`` is the event y = 1.
    coef_ : ndarray, shape (1, n_features_in_)
        Posterior means of the coefficients β.
    intercept_ : ndarray, shape (1,)
        Posterior mean of the intercept α (0 if ``fit_intercept=False``).
    coef_std_ : ndarray, shape (1, n_features_in_)
        Posterior standard deviations of the coefficients.
    intercept_std_ : ndarray, shape (1,)
        Posterior standard deviation of the intercept (0 if ``fit_intercept=False``).
    result_ : natvi.FitResult
        The fit itself: ELBO, history, draws, Pareto k̂, and ``result_.to_arviz()``, whose
        ``feature`` coordinate holds the column names of a DataFrame ``X``.
    n_iter_ : int
        Optimizer steps taken.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str, shape (n_features_in_,)
        Column names of ``X``, when it is a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from natvi.data import load_breast_cancer
    >>> X, y, names = load_breast_cancer()
    >>> clf = make_pipeline(StandardScaler(), BayesianLogisticRegression()).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, *, prior_scale=1.0, intercept_scale=2.5, fit_intercept=True,
                 family="auto", optimizer="ngd", max_iter=1000, tol=None,
                 predictive="probit", draws=1000, random_state=0):
        self.prior_scale = prior_scale
        self.intercept_scale = intercept_scale
        self.fit_intercept = fit_intercept
        self.family = family
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.tol = tol
        self.predictive = predictive
        self.draws = draws
        self.random_state = random_state

    # ---- scikit-learn's estimator tags: a binary classifier -----------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"binary_only": True}

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, X, y):
        """Fit the variational posterior q(α, β).

        Parameters
        ----------
        X : array_like or pandas.DataFrame, shape (n_samples, n_features)
            Features; a DataFrame's column names become ``feature_names_in_`` and the
            ArviZ ``feature`` coordinate of ``result_.to_arviz()``.
        y : array_like, shape (n_samples,)
            Labels, exactly two distinct values of any type (numbers, strings, booleans).

        Returns
        -------
        self
        """
        family = self._check_params()
        X, y = _validate_data(self, X, y, dtype=np.float64)
        if self.predictive == "sampling":
            self._pairs(1)  # refuse draws too many to predict even one row
        check_classification_targets(y)
        self.classes_, y01 = np.unique(y, return_inverse=True)
        if len(self.classes_) == 1:
            raise ValueError(f"y: {type(self).__name__} needs two classes, got one class: "
                             f"{self.classes_.tolist()}")
        y_type = type_of_target(y, input_name="y")
        if y_type != "binary":
            raise ValueError(f"y: Only binary classification is supported. The type of the "
                             f"target is {y_type} ({len(self.classes_)} classes).")
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            import pandas as pd  # a DataFrame came in, so pandas is there

            X = pd.DataFrame(X, columns=[str(c) for c in names])
        model = _LogisticRegression(X, y01.ravel().astype(float),
                                    prior_scale=self.prior_scale,
                                    intercept_scale=self.intercept_scale,
                                    fit_intercept=bool(self.fit_intercept))
        self.result_ = _fit(model, optimizer=self.optimizer, family=family,
                            max_iter=self.max_iter, tol=self.tol, seed=self.random_state)
        if not self.result_.converged:
            warnings.warn(f"{type(self).__name__}: the fit stopped with status "
                          f"{self.result_.status!r} after {self.result_.n_iter} iterations; "
                          f"increase max_iter or check the data", ConvergenceWarning,
                          stacklevel=2)
        self.n_iter_ = self.result_.n_iter
        mean, std = self._posterior_moments()
        d = model.X.shape[1]
        self.coef_ = mean["coef"].reshape(1, d)
        self.coef_std_ = std["coef"].reshape(1, d)
        self.intercept_ = np.atleast_1d(mean.get("intercept", 0.0)).astype(float)
        self.intercept_std_ = np.atleast_1d(std.get("intercept", 0.0)).astype(float)
        return self

    def _check_params(self):
        """The family class; ValueError naming any parameter out of its range."""
        for name in ("prior_scale", "intercept_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    np.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
        if not isinstance(self.fit_intercept, bool | np.bool_):
            raise ValueError(f"fit_intercept: expected True or False, got {self.fit_intercept!r}")
        if not isinstance(self.family, str) or self.family not in _FAMILIES:
            raise ValueError(f"family: expected one of {sorted(_FAMILIES)}, got {self.family!r}")
        if not isinstance(self.predictive, str) or self.predictive not in _PREDICTIVES:
            raise ValueError(f"predictive: expected one of {list(_PREDICTIVES)}, got "
                             f"{self.predictive!r}")
        check_positive_int(self.draws, "draws")
        as_rng(self.random_state, "random_state")
        return _FAMILIES[self.family]

    def _posterior_moments(self):
        """Posterior means and standard deviations, {latent name: array}."""
        model, mean, std = self.result_.model, {}, {}
        for key, q in self.result_.posterior.items():
            mean.update(factors.to_latents(model.latents, key, q, np.asarray(q.mean())))
            std.update(factors.to_latents(model.latents, key, q, np.sqrt(q.var())))
        return mean, std

    # ---- prediction -------------------------------------------------------------------------
    def _features(self, X):
        check_is_fitted(self)
        return _validate_data(self, X, reset=False, dtype=np.float64)

    def predictor_moments(self, X):
        """Mean μₐ and variance vₐ of the linear predictor a = α + xᵀβ under q, per row.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features_in_)

        Returns
        -------
        mean, var : ndarray, shape (n_samples,) each
        """
        X = self._features(X)
        design = Design(X, "coef", "intercept" if self.fit_intercept else None)
        return design.predictor_moments(self.result_.posterior)

    def _log_proba(self, X):
        """log p(y = 0 | x) and log p(y = 1 | x) under the posterior predictive."""
        if self.predictive == "probit":
            mean, var = self.predictor_moments(X)
            z = mean / np.sqrt(1.0 + np.pi * var / 8.0)
            return special.log_expit(-z), special.log_expit(z)
        X = self._features(X)
        n_pairs = self._pairs(X.shape[0])
        draws = self.result_.sample(n_pairs, seed=as_rng(self.random_state, "random_state"))
        mean, _ = self._posterior_moments()
        a = draws["coef"] @ X.T
        a_mean = X @ mean["coef"]
        if self.fit_intercept:
            a = a + draws["intercept"][:, None]
            a_mean = a_mean + mean["intercept"]
        a = np.concatenate([a, 2.0 * a_mean - a])  # antithetic pairs (β, 2m − β)
        log_s = np.log(a.shape[0])
        return (special.logsumexp(special.log_expit(-a), axis=0) - log_s,
                special.logsumexp(special.log_expit(a), axis=0) - log_s)

    def _pairs(self, n_rows):
        """The number of antithetic pairs of ``draws``; ValueError if predicting ``n_rows``
        rows from them by sampling would not fit in memory."""
        n_pairs = (check_positive_int(self.draws, "draws") + 1) // 2
        values = self.n_features_in_ + bool(self.fit_intercept)
        check_memory(8 * n_pairs * (SAMPLE_ARRAYS * values + 2 * _PREDICT_ARRAYS * n_rows),
                     "draws", f"predicting {n_rows} row{'s' * (n_rows != 1)} from "
                     f"{2 * n_pairs} draws", "ask for fewer draws"
                     + (", or predict fewer rows at a time" if n_rows > 1 else ""))
        return n_pairs

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba` for features ``X`` (n_samples, n_features_in_),
        shape (n_samples, 2)."""
        return np.column_stack(self._log_proba(X))

    def predict_proba(self, X):
        """Posterior predictive class probabilities E_q[p(y | x, α, β)].

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features_in_)

        Returns
        -------
        ndarray, shape (n_samples, 2)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        return np.exp(self.predict_log_proba(X))

    def decision_function(self, X):
        """Log-odds of the posterior predictive, log p(y=1|x) − log p(y=0|x), per row.

        With ``predictive="probit"`` this is the posterior mean of the predictor moderated
        by its variance, μₐ / √(1 + π vₐ / 8); it has the sign of μₐ (with either
        predictive, as the draws come in antithetic pairs) and ranks rows as
        ``predict_proba`` does. The unmoderated μₐ is ``predictor_moments(X)[0]``.

        Returns
        -------
        ndarray, shape (n_samples,)
            Positive values predict ``classes_[1]``.
        """
        log0, log1 = self._log_proba(X)
        return log1 - log0

    def predict(self, X):
        """The more probable label of each row of ``X`` (n_samples, n_features_in_) under
        the posterior predictive, shape (n_samples,)."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]
