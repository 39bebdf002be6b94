"""Ready-made models (installed as ``natvi.models``)."""

from natvi.models.ard_logistic_regression import ARDLogisticRegression
from natvi.models.beta_bernoulli import BetaBernoulli
from natvi.models.eight_schools import EightSchools
from natvi.models.gamma_poisson import GammaPoisson
from natvi.models.linear_regression import LinearRegression
from natvi.models.logistic_regression import LogisticRegression
from natvi.models.poisson_regression import PoissonRegression
from natvi.models.probit_regression import ProbitRegression

__all__ = ["ARDLogisticRegression", "BetaBernoulli", "EightSchools", "GammaPoisson",
           "LinearRegression", "LogisticRegression", "PoissonRegression", "ProbitRegression"]
