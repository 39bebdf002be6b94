"""natvi: variational inference by natural gradients, with ArviZ output."""

from natvi import families, optim
from natvi.elbo import elbo
from natvi.families import MeanFieldGaussian
from natvi.fit import fit
from natvi.model import Latent, Model
from natvi.result import FitResult

__version__ = "0.1.0"

__all__ = ["FitResult", "Latent", "MeanFieldGaussian", "Model", "elbo", "families", "fit",
           "optim"]
