"""What ``natvi.fit`` needs from a model, and models built from a log-joint function.

A model declares its latents (name → shape and support) and answers three
questions: the expected log joint E_q[log p(x, z)] under a variational
posterior with its gradient in each factor's mean parameters (the engine:
closed form, quadrature or Monte Carlo), the log joint at posterior draws, and,
optionally, the pointwise log-likelihood at draws (for LOO).

``Model(log_joint, latents, ...)`` builds such a model from a function written
with ``autograd.numpy``; ready-made models in ``natvi.models`` subclass it.
"""

import numbers
from typing import NamedTuple

import numpy as np

from natvi import closed_form, factors, monte_carlo
from natvi.families.base import ExponentialFamily
from natvi.validation import check_positive_int

SUPPORTS = ("real", "positive", "unit_interval", "simplex", "binary", "categorical")


class Latent(NamedTuple):
    """A latent variable.

    shape : tuple
        Shape of one draw (for ``simplex``, the last axis holds the K components).
    support : str
        One of ``natvi.model.SUPPORTS``.
    categories : int or None
        Number of categories K ≥ 2 of a ``categorical`` latent (draws are codes 0..K−1).
    """

    shape: tuple = ()
    support: str = "real"
    categories: int | None = None


def as_latent(spec, name):
    """A :class:`Latent` from a Latent, a support name, or a tuple (shape, support[, K])."""
    if isinstance(spec, str):
        spec = Latent((), spec)
    elif isinstance(spec, tuple) and not isinstance(spec, Latent):
        if not 2 <= len(spec) <= 3:
            raise ValueError(f"latents[{name!r}]: expected a support name, a Latent or a "
                             f"tuple (shape, support[, categories]), got {spec!r}")
        spec = Latent(*spec)
    elif not isinstance(spec, Latent):
        raise ValueError(f"latents[{name!r}]: expected a support name, a Latent or a tuple "
                         f"(shape, support[, categories]), got {type(spec).__name__}")
    shape = (spec.shape,) if isinstance(spec.shape, numbers.Integral) else spec.shape
    if not isinstance(shape, tuple | list) or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in shape):
        raise ValueError(f"latents[{name!r}]: shape must be a tuple of integers, "
                         f"got {spec.shape!r}")
    shape = tuple(int(n) for n in shape)
    if any(n < 1 for n in shape):
        raise ValueError(f"latents[{name!r}]: shape must have positive sizes, got {shape}")
    if spec.support not in SUPPORTS:
        raise ValueError(f"latents[{name!r}]: support must be one of {list(SUPPORTS)}, "
                         f"got {spec.support!r}")
    if spec.support == "simplex" and (not shape or shape[-1] < 2):
        raise ValueError(f"latents[{name!r}]: a simplex latent needs a last axis of K ≥ 2 "
                         f"components, got shape {shape}")
    categories = spec.categories
    if spec.support == "categorical":
        if (isinstance(categories, bool) or not isinstance(categories, numbers.Integral)
                or categories < 2):
            raise ValueError(f"latents[{name!r}]: a categorical latent needs categories = K "
                             f">= 2, got {categories!r}")
        categories = int(categories)
    elif categories is not None:
        raise ValueError(f"latents[{name!r}]: categories applies to categorical latents "
                         f"only, got {categories!r} for support {spec.support!r}")
    return Latent(shape, spec.support, categories)


class Model:
    """A model for :func:`natvi.fit`: latents, an engine, and log densities at draws.

    Build one from a log-joint function, or subclass it (as ``natvi.models`` do) and
    implement :meth:`expected_log_joint`, :meth:`log_joint` and, when the model has
    data terms, :meth:`pointwise_log_likelihood`.

    Parameters
    ----------
    log_joint : callable
        ``log_joint(z)`` = log p(x, z) for one draw ``z`` = {latent name: array of the
        latent's shape}, written with ``autograd.numpy`` (it is differentiated in the
        real-valued latents); returns a scalar.
    latents : dict
        {name: support} for scalars, or {name: (shape, support)}, or
        {name: (shape, "categorical", K)}, or {name: Latent}. Supports: ``real``,
        ``positive``, ``unit_interval``, ``simplex`` (last axis of the shape holds the
        components), ``binary``, ``categorical``.
    pointwise_log_likelihood : callable, optional
        ``f(z)`` for one draw: {observed name: array (N,)} of log p(xᵢ | z), or one
        array (N,) for a single observed variable named ``"y"``. Enables LOO.
    closed_form : callable, optional
        ``f(means)`` = E_q[log p(x, z)] written with ``autograd.numpy`` in terms of the
        expected sufficient statistics ``means`` = {factor key: mean parameters of that
        factor}. Then the ELBO is exact and its natural gradient is computed by
        differentiating ``f``; for a conjugate model a natural-gradient step of 1 is
        coordinate ascent.
    families : dict, optional
        {latent name: family class}: the model's own defaults, overriding the defaults
        per support (``fit(family=...)`` overrides both).
    observed_data, coords, dims : dict, optional
        For ArviZ: observed arrays, coordinates, and dimension names per variable.
    n_samples : int
        Monte Carlo draws per ELBO estimate when there is no closed form.
    """

    #: {name: Latent}
    latents: dict = {}
    #: True when :meth:`expected_log_joint` is exact (closed form or quadrature), so the
    #: ELBO is deterministic and optimizers may line-search on it.
    deterministic: bool = False
    #: {latent name: family class} the model prefers over the defaults per support
    default_families: dict = {}
    #: {name: array} of observed data, for ArviZ's ``observed_data`` group
    observed_data: dict = {}
    #: ArviZ coordinates and dimensions of latents and data
    coords: dict = {}
    dims: dict = {}
    #: True when :meth:`log_joint` and :meth:`pointwise_log_likelihood` take all draws at
    #: once, with arrays of draws × observations (as the models of ``natvi.models`` do);
    #: False for the draw-by-draw evaluation of a log-joint function
    vectorized: bool = False

    def __init__(self, log_joint, latents, *, pointwise_log_likelihood=None, closed_form=None,
                 families=None, observed_data=None, coords=None, dims=None, n_samples=16):
        if not callable(log_joint):
            raise ValueError(f"log_joint: expected a function of one draw, got "
                             f"{type(log_joint).__name__}")
        for arg, f in (("pointwise_log_likelihood", pointwise_log_likelihood),
                       ("closed_form", closed_form)):
            if f is not None and not callable(f):
                raise ValueError(f"{arg}: expected a function or None, got {type(f).__name__}")
        if not isinstance(latents, dict) or not latents:
            raise ValueError("latents: expected a non-empty dict {name: support or "
                             "(shape, support)}")
        for name in latents:
            if not isinstance(name, str) or not name:
                raise ValueError(f"latents: names must be non-empty strings, got {name!r}")
        self.latents = {name: as_latent(spec, name) for name, spec in latents.items()}
        self._log_joint = log_joint
        self._pointwise = pointwise_log_likelihood
        self._closed_form = closed_form
        self.deterministic = closed_form is not None
        self.n_samples = check_positive_int(n_samples, "n_samples")
        families = {} if families is None else families
        if not isinstance(families, dict) or set(families) - set(self.latents):
            raise ValueError(f"families: expected a dict {{latent name: family class}} over "
                             f"{list(self.latents)}, got {families!r}")
        for name, family in families.items():
            if not (isinstance(family, type) and issubclass(family, ExponentialFamily)):
                raise ValueError(f"families[{name!r}]: expected a natvi family class, "
                                 f"got {family!r}")
            if family.support != self.latents[name].support:
                raise ValueError(f"families[{name!r}]: {family.__name__} has support "
                                 f"{family.support!r} but the latent has support "
                                 f"{self.latents[name].support!r}")
        self.default_families = dict(families)
        for arg, value in (("observed_data", observed_data), ("coords", coords),
                           ("dims", dims)):
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"{arg}: expected a dict or None, got {type(value).__name__}")
        self.observed_data = {k: np.asarray(v) for k, v in (observed_data or {}).items()}
        self.coords = dict(coords or {})
        self.dims = dict(dims or {})

    def expected_log_joint(self, posterior, rng):
        """E_q[log p(x, z)] and its gradient in each factor's mean parameters.

        Parameters
        ----------
        posterior : dict
            {factor key: family instance} (see :mod:`natvi.factors`).
        rng : numpy.random.Generator
            Randomness for Monte Carlo engines; unused by deterministic ones.

        Returns
        -------
        value : float
        grads : dict
            {factor key: ∇_μ E_q[log p], shaped like that factor's ``mean_params``}.
        """
        if self._closed_form is not None:
            return closed_form.expected_log_joint(self._closed_form, posterior)
        return monte_carlo.expected_log_joint(self._log_joint, posterior, self.latents, rng,
                                              self.n_samples)

    def log_joint(self, draws):
        """log p(x, z) at each draw; ``draws`` is {name: (S, *shape)}, returns (S,)."""
        n = len(next(iter(draws.values())))
        return np.array([float(self._log_joint({k: draws[k][s] for k in self.latents}))
                         for s in range(n)])

    def pointwise_log_likelihood(self, draws):
        """log p(xᵢ | z) at ``draws`` ({name: (S, *shape)}): {observed name: (S, N)} per
        draw and observation, or None when the model has no pointwise log-likelihood."""
        if getattr(self, "_pointwise", None) is None:
            return None
        n = len(next(iter(draws.values())))
        rows = []
        for s in range(n):
            out = self._pointwise({k: draws[k][s] for k in self.latents})
            rows.append(out if isinstance(out, dict) else {"y": out})
        return {name: np.stack([np.asarray(r[name], dtype=float) for r in rows])
                for name in rows[0]}

    def log_density_memory(self, draws, pointwise=False):
        """Rough peak bytes of :meth:`log_joint`, or with ``pointwise`` of
        :meth:`pointwise_log_likelihood`, at ``draws`` draws: what
        :func:`natvi.validation.check_draws_memory` counts before drawing.

        In float64 values, with N the values of ``observed_data``: when ``vectorized``,
        three arrays of draws × N (a linear predictor or the like, the log density and a
        temporary); otherwise one draw's evaluation, taken as two arrays of N, and the
        results: one value per draw, or for the pointwise log-likelihood the rows and their
        stack, two arrays of draws × N. A model whose pointwise log-likelihood is not the size
        of its ``observed_data`` overrides this.
        """
        n = sum(np.size(value) for value in self.observed_data.values())
        if self.vectorized:
            return 8 * 3 * draws * n
        return 8 * (2 * n + (2 * draws * n if pointwise else draws))

    def deterministics(self, draws):
        """{name: (S, ...)} quantities derived from the latents at ``draws`` ({name:
        (S, *shape)}), reported with the posterior draws (e.g. the school effects of a
        non-centered model); none by default."""
        return {}

    def initial_posterior(self, families):
        """Starting point of a fit: {factor key: family instance} for ``families``
        {factor key: family class}; by default each family's standard member."""
        return {key: standard_factor(cls, self.latents, key) for key, cls in families.items()}


def standard_factor(family, latents, key):
    """The standard member of ``family`` over the factor ``key``: N(0, 1) per real value,
    N(0, I) jointly, LogNormal / LogitNormal (0, 1), Gamma(1, 1), Beta(1, 1),
    Dirichlet(1, …, 1), Bernoulli(½) and the uniform Categorical."""
    from natvi import families as fam  # the families package imports nothing of models

    names = factors.latent_names(key)
    latent = latents[names[0]]
    if family is fam.FullRankGaussian:
        d = factors.size(latents, key)
        return family(loc=np.zeros(d), cov=np.eye(d))
    shape = latent.shape
    if family in (fam.MeanFieldGaussian, fam.LogNormal, fam.LogitNormal):
        return family(loc=np.zeros(shape), scale=np.ones(shape))
    if family is fam.Gamma:
        return family(shape=np.ones(shape), rate=np.ones(shape))
    if family is fam.Beta:
        return family(a=np.ones(shape), b=np.ones(shape))
    if family is fam.Dirichlet:
        return family(alpha=np.ones(shape))
    if family is fam.Bernoulli:
        return family(p=np.full(shape, 0.5))
    if family is fam.Categorical:
        k = latent.categories
        return family(p=np.full(shape + (k,), 1.0 / k))
    raise ValueError(f"family: no standard starting point for {family.__name__}; the model "
                     f"must define initial_posterior")


def check_factors(model, posterior, families):
    """Raise a ValueError unless ``posterior`` has exactly the factors ``families``
    {factor key: family class, or tuple of classes} that a model's engine supports."""
    allowed = {k: f if isinstance(f, tuple) else (f,) for k, f in families.items()}
    if set(posterior) != set(allowed) or any(type(posterior[k]) not in allowed[k]
                                             for k in allowed):
        want = {k: [c.__name__ for c in f] for k, f in allowed.items()}
        got = {k: type(q).__name__ for k, q in posterior.items()}
        raise ValueError(f"family: {type(model).__name__} supports the factors {want}, "
                         f"got {got}")
