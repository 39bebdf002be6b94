"""Exponential-family variational families with analytic Fisher information."""

from natvi.families.base import ExponentialFamily, is_family
from natvi.families.bernoulli import Bernoulli
from natvi.families.beta import Beta
from natvi.families.categorical import Categorical
from natvi.families.dirichlet import Dirichlet
from natvi.families.full_rank_gaussian import FullRankGaussian
from natvi.families.gamma import Gamma
from natvi.families.log_normal import LogNormal
from natvi.families.logit_normal import LogitNormal
from natvi.families.mean_field_gaussian import MeanFieldGaussian

#: the Gaussian families of a GLM by the names the command line and the scikit-learn
#: estimator take ("auto": the model's choice, see ``natvi.fit``)
GAUSSIAN_BY_NAME = {"auto": "auto", "mean_field": MeanFieldGaussian,
                    "full_rank": FullRankGaussian}

__all__ = ["GAUSSIAN_BY_NAME", "Bernoulli", "Beta", "Categorical", "Dirichlet",
           "ExponentialFamily", "FullRankGaussian", "Gamma", "LogNormal", "LogitNormal",
           "MeanFieldGaussian", "is_family"]
