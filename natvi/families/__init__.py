"""Exponential-family variational families with analytic Fisher information."""

from natvi.families.base import ExponentialFamily
from natvi.families.mean_field_gaussian import MeanFieldGaussian

__all__ = ["ExponentialFamily", "MeanFieldGaussian"]
