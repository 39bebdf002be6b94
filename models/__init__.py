"""Ready-made models (installed as ``natvi.models``)."""

from natvi.models.logistic_regression import LogisticRegression

__all__ = ["LogisticRegression"]
