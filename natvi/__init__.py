"""natvi: variational inference by natural gradients, with ArviZ output."""

from natvi import engines, families, log_densities, optim, plot
from natvi.elbo import elbo
from natvi.families import (
    Bernoulli,
    Beta,
    Categorical,
    Dirichlet,
    FullRankGaussian,
    Gamma,
    LogitNormal,
    LogNormal,
    MeanFieldGaussian,
)
from natvi.fit import VI, DivergenceError, fit
from natvi.fit_state import FitState
from natvi.loo import loo_subsample
from natvi.model import Latent, Model
from natvi.result import FitResult, load

__version__ = "0.1.0"

__all__ = ["VI", "Bernoulli", "Beta", "Categorical", "Dirichlet", "DivergenceError",
           "FitResult", "FitState", "FullRankGaussian", "Gamma", "Latent", "LogNormal",
           "LogitNormal", "MeanFieldGaussian", "Model", "elbo", "engines", "families", "fit",
           "load", "log_densities", "loo_subsample", "optim", "plot"]
