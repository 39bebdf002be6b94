"""Engines: what computes a model's ELBO and its natural gradient (see :mod:`.base` for the
protocol every engine follows).

- :class:`ClosedForm`: conjugate and semi-conjugate models, whose expected log joint is a
  function of the factors' expected sufficient statistics; exact.
- :class:`GLMQuadrature`: generalized linear models, whose data terms see the latents
  through linear predictors; exact to 1e-14 nats per observation.
- :class:`FixedDraws`: any log joint written with ``autograd.numpy``, over base draws fixed
  for a fit (deterministic ADVI); the default of custom models.
- :class:`DaskGLMQuadrature`: the GLM engine over row-chunked ``dask.array`` data (in
  memory, on disk or on a cluster): one ``dask.compute`` of per-chunk partial sums per
  evaluation.
- :class:`Minibatch`: another engine's ELBO estimated on one minibatch of rows per
  evaluation, scaled up (stochastic variational inference).
- :class:`MonteCarlo`: any log joint written with ``autograd.numpy``; fresh draws at every
  evaluation, pathwise or score-function gradients.
"""

from natvi.engines.base import ELBO, Engine
from natvi.engines.closed_form import ClosedForm
from natvi.engines.dask_glm import DaskGLMQuadrature
from natvi.engines.fixed_draws import FixedDraws
from natvi.engines.glm import GLMQuadrature
from natvi.engines.minibatch import Minibatch
from natvi.engines.monte_carlo import MonteCarlo

__all__ = ["ELBO", "ClosedForm", "DaskGLMQuadrature", "Engine", "FixedDraws", "GLMQuadrature",
           "Minibatch", "MonteCarlo"]
