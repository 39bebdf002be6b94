"""What ``natvi.fit`` needs from a model.

A model declares its latents (name → shape and support) and answers three
questions: the expected log joint E_q[log p(x, z)] under a variational
posterior with its gradient in each factor's mean parameters (the engine:
closed form, quadrature or Monte Carlo), the log joint at posterior draws, and,
optionally, the pointwise log-likelihood at draws (for LOO).
"""

from typing import NamedTuple

SUPPORTS = ("real", "positive", "unit_interval", "simplex", "binary", "categorical")


class Latent(NamedTuple):
    """A latent variable: its ``shape`` (one draw) and its ``support``."""

    shape: tuple
    support: str


class Model:
    """Base class of natvi models.

    Subclasses set ``latents`` and implement :meth:`expected_log_joint`,
    :meth:`log_joint` and, when the model has data terms, :meth:`pointwise_log_likelihood`.
    """

    #: {name: Latent}
    latents: dict = {}
    #: True when :meth:`expected_log_joint` is exact (closed form or quadrature), so the
    #: ELBO is deterministic and optimizers may line-search on it.
    deterministic: bool = False
    #: {name: array} of observed data, for ArviZ's ``observed_data`` group
    observed_data: dict = {}
    #: ArviZ coordinates and dimensions of latents and data
    coords: dict = {}
    dims: dict = {}

    def expected_log_joint(self, posterior, rng):
        """E_q[log p(x, z)] and its gradient in each factor's mean parameters.

        Parameters
        ----------
        posterior : dict
            {latent name: family instance}.
        rng : numpy.random.Generator
            Randomness for Monte Carlo engines; unused by deterministic ones.

        Returns
        -------
        value : float
        grads : dict
            {latent name: ∇_μ E_q[log p], shaped like that factor's ``mean_params``}.
        """
        raise NotImplementedError

    def log_joint(self, draws):
        """log p(x, z) at each draw; ``draws`` is {name: (S, *shape)}, returns (S,)."""
        raise NotImplementedError

    def pointwise_log_likelihood(self, draws):
        """{observed name: (S, N)} log p(xᵢ | z) per draw and observation, or None."""
        return None

    def initial_posterior(self, families):
        """Starting point of a fit: {name: family instance} for ``families`` {name: class}."""
        raise NotImplementedError
