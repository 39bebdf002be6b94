"""What ``natvi.fit`` needs from a model, and models built from a log-joint function.

A model declares its latents (name → shape and support) and answers three
questions: the expected log joint E_q[log p(x, z)] under a variational
posterior with its gradient in each factor's mean parameters (the engine:
closed form, quadrature or Monte Carlo), the log joint at posterior draws, and,
optionally, the pointwise log-likelihood at draws (for LOO).

``Model(log_joint, latents, ...)`` builds such a model from a function written
with ``autograd.numpy``; ready-made models in ``natvi.models`` subclass it.
"""

import difflib
import numbers
import reprlib
from functools import partial
from typing import NamedTuple

import numpy as np
from autograd.tracer import Box, getval

from natvi import factors
from natvi.engines import ClosedForm, Engine, FixedDraws, MonteCarlo, closed_form, monte_carlo
from natvi.engines.fixed_draws import DEFAULT_DRAWS
from natvi.families.base import is_family
from natvi.families.full_rank_gaussian import FullRankGaussian
from natvi.families.mean_field_gaussian import MeanFieldGaussian
from natvi.families.transformed_gaussian import TransformedGaussian
from natvi.observations import Observations
from natvi.validation import check_positive_int

SUPPORTS = ("real", "positive", "unit_interval", "simplex", "binary", "categorical")
#: the engines of a log-joint function: {name: (class, default draws)}
ENGINES = {"fixed_draws": (FixedDraws, DEFAULT_DRAWS), "monte_carlo": (MonteCarlo, 16)}
#: the sd of a Gaussian factor's start on fixed draws (on the unconstrained scale),
#: as NumPyro's AutoNormal ``init_scale``. From sd 1, the first natural steps average the
#: log joint over a wide q (positive latents over a factor e either way) and can leap: on
#: the two-component mixture of examples/reference_models.py every mean-field fit then
#: ended in the one-component optimum, 25 nats below the other and 21 NUTS sds off; from
#: 0.1 every fit found the better one, and the other reference models ended where they did
#: (eight schools centered, full-rank, in 60–90 iterations instead of 40–50).
INIT_SCALE = 0.1
#: draws :meth:`Model.explain_nonfinite` tries when the ELBO at the starting point is not finite
NONFINITE_DRAWS = 100


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
    log_joint : callable, optional
        ``log_joint(z)`` = log p(x, z) for one draw ``z`` = {latent name: array of the
        latent's shape}, written with ``autograd.numpy`` (it is differentiated in the
        real-valued latents); returns a scalar. Or give ``log_prior``, ``log_likelihood``
        and ``data`` instead.
    latents : dict
        {name: support} for scalars, or {name: (shape, support)}, or
        {name: (shape, "categorical", K)}, or {name: Latent}. Supports: ``real``,
        ``positive``, ``unit_interval``, ``simplex`` (last axis of the shape holds the
        components), ``binary``, ``categorical``.
    log_prior, log_likelihood, data : optional
        Instead of ``log_joint``, for a model whose data are rows of observations (and
        which can then be fit on minibatches, ``natvi.fit(..., batch_size=B)``):
        ``log_prior(z)`` = log p(z), a scalar; ``data`` = {name: array}, all with the same
        first axis of N rows; ``log_likelihood(z, rows)`` = log p(xᵢ | z) for each row of
        ``rows`` = {name: some rows of that array}, an array (n,) for the n rows given,
        both written with ``autograd.numpy``. The log joint is their sum over all rows,
        and the pointwise log-likelihood (for LOO) is ``log_likelihood`` on all rows, named
        ``"y"``, unless ``pointwise_log_likelihood`` is given (see
        :mod:`natvi.observations`).
    pointwise_log_likelihood : callable, optional
        ``f(z)`` for one draw: {observed name: array (N,)} of log p(xᵢ | z), or one
        array (N,) for a single observed variable named ``"y"``, the same shapes at every
        draw (with ``observed_data``, a leading part of the data's shape). Enables LOO.
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
    engine : str
        Without ``closed_form``: ``"fixed_draws"`` (the default), base draws fixed for each
        fit, so the ELBO is a deterministic function of q (:class:`natvi.engines.FixedDraws`;
        fits with Gamma, Beta or Dirichlet factors fall back to fresh draws), or
        ``"monte_carlo"``, fresh draws at every evaluation
        (:class:`natvi.engines.MonteCarlo`).
    n_samples : int, optional
        Draws per ELBO evaluation: by default 32 fixed draws
        (``natvi.engines.fixed_draws.DEFAULT_DRAWS``), or 2(k + 1) for a fit of k
        coordinates where that is more and at most 128 (so that the draws are whitened
        jointly; ``FixedDraws(whiten=True)``), or 16 fresh ones (a fixed-draw fit that
        falls back to fresh draws takes as many as it would have fixed).
    """

    #: {name: Latent}
    latents: dict = {}
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

    def __init__(self, log_joint=None, latents=None, *, log_prior=None, log_likelihood=None,
                 data=None, pointwise_log_likelihood=None, closed_form=None, families=None,
                 observed_data=None, coords=None, dims=None, engine="fixed_draws",
                 n_samples=None):
        self.observations = None
        if (log_prior, log_likelihood, data) != (None, None, None):
            if log_joint is not None or closed_form is not None:
                raise ValueError("log_prior, log_likelihood, data: they declare the log joint; "
                                 "give them instead of log_joint and closed_form")
            self.observations = _declared(log_prior, log_likelihood, data)
            log_joint = self.observations.log_joint()
            pointwise_log_likelihood = pointwise_log_likelihood or self.observations.pointwise
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
        self.engine = self._engine_named(engine, n_samples)
        self._engine_of_functions = True  # explain_nonfinite looks into these functions
        families = {} if families is None else families
        if not isinstance(families, dict) or set(families) - set(self.latents):
            raise ValueError(f"families: expected a dict {{latent name: family class}} over "
                             f"{list(self.latents)}, got {families!r}")
        for name, family in families.items():
            if not is_family(family):
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

    def _engine_named(self, engine, n_samples):
        if self._closed_form is not None:
            self.n_samples = check_positive_int(16 if n_samples is None else n_samples,
                                                "n_samples")
            return ClosedForm(self._checked_closed_form())
        if engine not in ENGINES:
            raise ValueError(f"engine: expected one of {list(ENGINES)}, got {engine!r}")
        cls, default = ENGINES[engine]
        self.n_samples = check_positive_int(default if n_samples is None else n_samples,
                                            "n_samples")
        whiten = {"whiten": n_samples is None} if cls is FixedDraws else {}
        return cls(self._checked_log_joint(), self.latents, self.n_samples,
                   observations=self.observations, **whiten)

    @property
    def engine(self):
        """What computes the ELBO (see :mod:`natvi.engines`)."""
        engine = self.__dict__.get("_engine")
        if type(self).expected_log_joint is not Model.expected_log_joint:
            # a subclass that overrides expected_log_joint (as models were written before
            # engines): its method is the engine
            return _MethodEngine(self, engine)
        return engine

    @engine.setter
    def engine(self, engine):
        self.__dict__["_engine"] = engine

    @property
    def deterministic(self):
        """Whether the model's ELBO is exact (its engine's ``deterministic``)."""
        return self.engine.deterministic

    def expected_log_joint(self, posterior, rng=None):
        """E_q[log p(x, z)] and its gradient in each factor's mean parameters, from the
        model's engine (see :mod:`natvi.engines`).

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
        engine = self.__dict__.get("_engine")
        if engine is None:
            raise NotImplementedError(f"model: {type(self).__name__} has no engine; set "
                                      f"self.engine (see natvi.engines) or override "
                                      f"expected_log_joint")
        return engine.expected_log_joint(posterior, rng)

    def _checked_log_joint(self):
        return partial(_call_scalar, self._log_joint, "log_joint", "latent")

    def _checked_closed_form(self):
        return partial(_call_scalar, self._closed_form, "closed_form", "factor")

    def log_joint(self, draws):
        """log p(x, z) at each draw; ``draws`` is {name: (S, *shape)}, returns (S,)."""
        n = len(next(iter(draws.values())))
        log_joint = self._checked_log_joint()
        return np.array([float(log_joint({k: draws[k][s] for k in self.latents}))
                         for s in range(n)])

    def pointwise_log_likelihood(self, draws):
        """log p(xᵢ | z) at ``draws`` ({name: (S, *shape)}): {observed name: (S, N)} per
        draw and observation, or None when the model has no pointwise log-likelihood."""
        if getattr(self, "_pointwise", None) is None:
            return None
        n = len(next(iter(draws.values())))
        rows = []
        for s in range(n):
            out = _call_user(self._pointwise, "pointwise_log_likelihood", "latent",
                            {k: draws[k][s] for k in self.latents})
            rows.append(self._pointwise_row(out, s, rows[0] if rows else None))
        return {name: np.stack([r[name] for r in rows]) for name in rows[0]}

    def _pointwise_row(self, out, s, first):
        """The arrays ``out`` of pointwise_log_likelihood at draw ``s``, checked alone and
        against those of the ``first`` draw."""
        what = "pointwise_log_likelihood"
        row = out if isinstance(out, dict) else {"y": out}
        if not row:
            raise ValueError(f"{what}: returned an empty dict; return {{observed name: array "
                             f"(N,)}} of log p(xᵢ | z), one value per observation")
        if first is not None and list(row) != list(first):
            raise ValueError(f"{what}: returned the keys {list(row)} at draw {s} but "
                             f"{list(first)} at draw 0: return the same observed variables "
                             f"at every draw")
        arrays = {}
        for name, value in row.items():
            if value is None:
                raise TypeError(f"{what}: returned None for {name!r}: is a return statement "
                                f"missing?")
            try:
                arr = np.asarray(getval(value))
            except ValueError as exc:  # ragged nested lists
                raise ValueError(f"{what}: could not make an array of {name!r} ({exc}); return "
                                 f"an array of one value per observation") from exc
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{what}: must return real numbers, got {_kind_name(arr)} "
                                f"values for {name!r}")
            if arr.ndim == 0:
                raise ValueError(f"{what}: returned a scalar for {name!r}; return one value "
                                 f"per observation, log p(xᵢ | z) as an array (N,), not their "
                                 f"sum")
            observed = np.shape(self.observed_data.get(name, arr))
            if observed[:arr.ndim] != arr.shape:
                raise ValueError(f"{what}: returned shape {arr.shape} for {name!r}, but its "
                                 f"observed data has shape {observed}: return one value per "
                                 f"observation, shape {observed[:1]}")
            if first is not None and arr.shape != first[name].shape:
                raise ValueError(f"{what}: returned shape {arr.shape} for {name!r} at draw {s} "
                                 f"but {first[name].shape} at draw 0: return the same "
                                 f"observations at every draw")
            arrays[name] = arr.astype(float)
        return arrays

    def explain_nonfinite(self, posterior):
        """Why the ELBO is not finite at ``posterior``, for a model whose engine is the
        functions given to :class:`Model`; None for models with an engine of their own.

        ``closed_form`` is evaluated where the fit evaluated it, ``log_joint`` at
        ``NONFINITE_DRAWS`` draws from ``posterior`` (seed 0); the first non-finite draw is
        shown.
        """
        if not getattr(self, "_engine_of_functions", False):
            return None
        with np.errstate(all="ignore"):
            if self._closed_form is not None:
                name = "closed_form"
                means = {key: q.mean_params for key, q in posterior.items()}
                where = grad_where = f"the starting point's mean parameters {_brief(means)}"
                value, grads = closed_form.expected_log_joint(self._checked_closed_form(),
                                                              posterior)
            else:
                name, n, bad = "log_joint", max(self.n_samples, NONFINITE_DRAWS), []
                log_joint = self._checked_log_joint()

                def recording(z):
                    value = log_joint(z)
                    if not np.isfinite(getval(value)):
                        bad.append(({k: getval(v) for k, v in z.items()}, float(getval(value))))
                    return value

                _, grads = monte_carlo.expected_log_joint(recording, posterior, self.latents,
                                                          np.random.default_rng(0), n)
                value = bad[0][1] if bad else 0.0
                where = (f"{len(bad)} of {n} draws from the starting point, e.g. "
                         f"{_brief(bad[0][0])}" if bad else "")
                grad_where = "draws from the starting point"
        if not np.isfinite(value):
            return (f"{name} returned {value} at {where}: look for the log or square root of a "
                    f"negative number or of 0, a division by 0 or an overflow, check that the "
                    f"latents' declared supports ({_supports(self.latents)}) match what the "
                    f"function accepts, and check the data")
        keys = [key for key, g in grads.items() if not np.all(np.isfinite(g))]
        if keys:
            return (f"the gradient of {name} in {keys} is not finite at {grad_where}, where its "
                    f"values are finite: look for functions with an infinite slope there (the "
                    f"square root or log of 0), or anp.where over a branch that is not finite "
                    f"(its gradient is NaN even where the branch is not chosen)")
        if self._closed_form is not None:
            return None
        return (f"log_joint and its gradient were finite at {n} other draws from the starting "
                f"point, so only rare draws give non-finite values: check the data and look "
                f"for overflow in the tails (e.g. anp.exp of a latent)")

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

    def auto_family(self):
        """What ``fit(..., family="auto")`` fits, and why.

        Returns
        -------
        family : family class, dict or None
            As ``fit``'s ``family`` argument; None for each latent's default (the model's
            ``default_families``, else the default of its support).
        reason : str
            One sentence for the result and its summary.
        """
        return None, "each latent's default family for its support"

    def initial_posterior(self, families):
        """Starting point of a fit: {factor key: family instance} for ``families``
        {factor key: family class}; by default each family's standard member (which a fit
        on fixed draws narrows, see :func:`narrowed`)."""
        return {key: standard_factor(cls, self.latents, key) for key, cls in families.items()}


class _MethodEngine(Engine):
    """The engine of a model subclass that overrides ``expected_log_joint``: deterministic
    as its class says (a ``deterministic`` attribute), else as the engine it overrides."""

    def __init__(self, model, inner=None):
        self.model = model
        flag = getattr(type(model), "deterministic", None)
        self.deterministic = (flag if isinstance(flag, bool)
                              else inner is not None and inner.deterministic)

    def expected_log_joint(self, posterior, rng=None):
        return self.model.expected_log_joint(posterior, rng)


def narrowed(posterior, scale=INIT_SCALE):
    """``posterior`` ({factor key: family instance}) with the sds of its Gaussian factors
    (also through a bijection) times ``scale``; other factors as they are."""
    out = {}
    for key, q in posterior.items():
        if isinstance(q, FullRankGaussian):
            q = FullRankGaussian(q.loc, scale**2 * q.cov)
        elif isinstance(q, (MeanFieldGaussian, TransformedGaussian)):
            loc, sd = q.location_scale()
            q = type(q)(loc=loc, scale=scale * sd)
        out[key] = q
    return out


def standard_factor(family, latents, key):
    """The standard member of ``family`` over the factor ``key`` (its ``standard``): N(0, 1)
    per real value, N(0, I) jointly, LogNormal / LogitNormal (0, 1), Gamma(1, 1), Beta(1, 1),
    Dirichlet(1, …, 1), Bernoulli(½) and the uniform Categorical."""
    latent = latents[factors.latent_names(key)[0]]
    shape = (factors.size(latents, key),) if family.joint else latent.shape
    try:
        return family.standard(shape, latent.categories)
    except NotImplementedError:
        raise ValueError(f"family: no standard starting point for {family.__name__}; the "
                         f"model must define initial_posterior") from None


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


class _UnknownName(KeyError):
    """A user function looked up a name its argument does not have."""


class _Draw(dict):
    """The dict a user function receives; looking up a missing name raises _UnknownName,
    a KeyError, so user code catching KeyError for an optional name keeps working."""

    def __missing__(self, key):
        raise _UnknownName(key)


#: autograd's containers of traced values, named in the errors of NumPy code that meets them
_BOXES = ("ArrayBox", "SequenceBox", "DictBox")


def _call_user(fn, name, noun, arg):
    """``fn(arg)`` for the user function called ``name``, whose argument is a dict keyed by
    ``noun`` names: a missing name and plain NumPy on autograd's traced values (TypeError
    "... not 'ArrayBox'") become clear errors, the original exception chained."""
    try:
        return fn(_Draw(arg))
    except _UnknownName as exc:
        key, names = exc.args[0], list(arg)
        close = difflib.get_close_matches(key, [n for n in names if isinstance(n, str)],
                                          n=1) if isinstance(key, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name}: looked up {noun} {key!r}, which the "
                         f"{'model' if noun == 'latent' else 'posterior'} does not have; its "
                         f"{noun}s are {names}{hint}") from exc
    except (TypeError, AttributeError, ValueError) as exc:
        if not _mentions_box(exc):
            raise
        raise _not_differentiable(name, noun, exc) from exc


def _declared(log_prior, log_likelihood, data):
    """The :class:`natvi.observations.Observations` of a model that declares its rows."""
    if None in (log_prior, log_likelihood, data):
        raise ValueError("log_prior, log_likelihood, data: give all three (the prior, the "
                         "log-likelihood of each row, and the rows)")
    return Observations(log_prior, log_likelihood, data, _call_declared)


def _call_declared(fn, name, z, *args):
    """``fn(z, *args)`` for a function of :class:`natvi.observations.Observations`: the
    prior, a scalar (checked), or the log-likelihood of rows ``args``."""
    if args:
        return _call_user(lambda draw: fn(draw, *args), name, "latent", z)
    return _call_scalar(fn, name, "latent", z)


def _call_scalar(fn, name, noun, arg):
    """:func:`_call_user` for a function that returns a real scalar, checked: autograd's
    traced value as it is, anything else as a float."""
    value = _call_user(fn, name, noun, arg)
    raw = getval(value)
    if raw is None:
        raise TypeError(f"{name}: returned None: is a return statement missing?")
    # Plain NumPy (np.where, say) on traced values leaves autograd's boxes inside an object
    # array or inside another box, and autograd would silently return a wrong gradient.
    if isinstance(getattr(value, "_value", None), Box) or (
            isinstance(raw, np.ndarray) and raw.dtype.kind == "O"
            and any(isinstance(x, Box) for x in raw.flat)):
        raise _not_differentiable(name, noun, "its result holds values autograd lost track of, "
                                              "as plain NumPy functions such as np.where give")
    arr = np.asarray(raw) if isinstance(raw, numbers.Number | np.ndarray) else None
    if arr is None or arr.dtype.kind not in "fiuc" or isinstance(raw, bool):
        shown = f" {reprlib.repr(raw)}" if isinstance(raw, str | bytes) else ""
        raise TypeError(f"{name}: must return a real number (the log density), got "
                        f"{type(raw).__name__}{shown}")
    if arr.dtype.kind == "c":
        shown = repr(complex(arr)) if arr.shape == () else f"of shape {arr.shape}"
        raise TypeError(f"{name}: returned a complex value {shown}; a log density is real: "
                        f"look for complex literals (1j) or complex arithmetic")
    if arr.shape != ():
        raise ValueError(f"{name}: must return a scalar (the log density of the whole "
                         f"{'draw' if noun == 'latent' else 'model'}), got an array of shape "
                         f"{arr.shape}: sum the terms, e.g. return anp.sum(terms)")
    return value if isinstance(value, Box) else float(raw)


def _mentions_box(exc):
    """Does ``exc``, or an exception it was raised from, name one of autograd's boxes?"""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if any(box in str(exc) for box in _BOXES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _not_differentiable(name, noun, why):
    noun = "latents" if noun == "latent" else "mean parameters"
    return TypeError(f"{name}: could not be differentiated by autograd ({why}): write it with "
                     f"autograd.numpy (import autograd.numpy as anp) instead of numpy, and do "
                     f"not call float() or .item() on the {noun}, use the math module on them "
                     f"or assign them into NumPy arrays (build arrays with anp.array or "
                     f"anp.stack)")


def _kind_name(arr):
    if arr.dtype.kind == "O":
        return type(arr.flat[0]).__name__ if arr.size else "object"
    return {"b": "bool", "c": "complex", "U": "str", "S": "bytes"}.get(arr.dtype.kind,
                                                                       str(arr.dtype))


def _supports(latents):
    return "{" + ", ".join(f"{name!r}: {lat.support!r}" for name, lat in latents.items()) + "}"


def _brief(values):
    """{name: value} in a line: three significant digits, long arrays elided."""
    return "{" + ", ".join(
        f"{name!r}: " + np.array2string(np.asarray(v), precision=3, threshold=6, edgeitems=2,
                                        separator=", ")
        for name, v in values.items()) + "}"
