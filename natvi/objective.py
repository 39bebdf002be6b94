"""The ELBO as an optimizer sees it: a function of parameters in its coordinates.

:class:`Objective` turns parameters into families (None outside their domains), asks
the fit's engine for the ELBO and ∇_μ L, and returns an
:class:`natvi.optim.Evaluation` with the Euclidean gradient in the optimizer's
coordinates and the gain of a unit natural-gradient step. It also gives the extras an
optimizer may declare: it is itself the ``objective``, :meth:`Objective.valid` is
``valid``, :meth:`Objective.natural_step` is ``step``, and :func:`fisher_product` at the
current point is ``fisher``.
"""

from collections import OrderedDict

import numpy as np

from natvi.optim import Evaluation


class Objective:
    """ELBO and gradients of ``model`` over ``families``, in ``coordinates``.

    Parameters
    ----------
    engine : natvi.engines.Engine
        What computes the ELBO (the model's engine, as bound for the fit).
    families : dict
        {factor key: family class}.
    coordinates : str
        ``"natural"`` (η) or ``"unconstrained"``.
    rng : numpy.random.Generator
        Randomness of Monte Carlo engines.
    cache_size : int
        Points remembered: the line search and the fit loop ask for the same points, and
        each is evaluated once; ``n_evals`` counts real evaluations only.
    """

    def __init__(self, engine, families, coordinates, rng, cache_size=4):
        self.engine, self.families, self.coordinates, self.rng = (engine, families,
                                                                   coordinates, rng)
        self.n_evals = 0
        self._cache = OrderedDict()
        self._cache_size = cache_size

    def clear(self):
        """Forget the remembered points (the generator or the model may have moved)."""
        self._cache.clear()

    def coordinates_of(self, posterior):
        """{factor key: parameters} of the families ``posterior``, in model order."""
        if self.coordinates == "natural":
            return {k: np.array(posterior[k].natural) for k in self.families}
        return {k: posterior[k].unconstrained for k in self.families}

    def posterior_of(self, params):
        """{factor key: family} at ``params``, or None outside a family's domain."""
        out = {}
        for key, p in params.items():
            cls = self.families[key]
            if not np.all(np.isfinite(p)):
                return None
            try:
                with np.errstate(over="ignore"):  # an overflowing scale is just out of domain
                    out[key] = (cls.from_natural(p) if self.coordinates == "natural"
                                else cls.from_unconstrained(p))
            except ValueError:
                return None
        return out

    def valid(self, params):
        """Whether ``params`` lie inside every family's domain."""
        return self.posterior_of(params) is not None

    def natural_step(self, params, grads, rho):
        """{factor key: η′}: natural parameters ``params`` after a natural-gradient step of
        size ``rho`` along ``grads`` = ∇_μ L, each factor's by its family's
        :meth:`~natvi.families.base.ExponentialFamily.natural_step`."""
        return {k: self.families[k].natural_step(p, grads[k], rho) for k, p in params.items()}

    def remember(self, params, evaluation):
        """Remember ``evaluation`` (of a checkpoint or an earlier state) at ``params``, its
        posterior rebuilt if it has none; ValueError when ``params`` are outside the
        domains."""
        if "posterior" not in evaluation.aux:
            posterior = self.posterior_of(params)
            if posterior is None:
                raise ValueError("the parameters are outside the families' domains")
            evaluation = evaluation._replace(aux={**evaluation.aux, "posterior": posterior})
        self._store(params, evaluation)
        return evaluation

    def __call__(self, params):
        key = _key(params)
        if key in self._cache:
            return self._cache[key]
        posterior = self.posterior_of(params)
        if posterior is None:
            ev = Evaluation(-np.inf, None, None, {})
        else:
            self.n_evals += 1
            ev = self._evaluate(posterior)
        self._store(params, ev, key)
        return ev

    def _evaluate(self, posterior):
        with np.errstate(all="ignore"):
            value, nat, _ = self.engine.elbo(posterior, self.rng)
        euclid_eta = {k: posterior[k].fisher_vector_product(g) for k, g in nat.items()}
        if self.coordinates == "natural":
            grad = euclid_eta
        else:
            grad = {k: posterior[k].unconstrained_grad(g) for k, g in nat.items()}
        finite = np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grad.values())
        with np.errstate(all="ignore"):
            gain = (0.5 * sum(float(np.sum(posterior[k].fisher_quadratic_form(g)))
                              for k, g in nat.items()) if finite else np.inf)
        return Evaluation(value if finite else -np.inf, grad, nat,
                          {"posterior": posterior, "gain": gain})

    def _store(self, params, ev, key=None):
        self._cache[_key(params) if key is None else key] = ev
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _key(params):
    return b"".join(np.ascontiguousarray(params[k]).tobytes() for k in params)


def fisher_product(posterior, vectors):
    """{key: F v} for ``vectors`` {key: (n, *shape)}, a stack of n vectors per factor: the
    Fisher information of each family of ``posterior`` (in its natural parameters) times
    each vector."""
    out = {}
    for key, stack in vectors.items():
        q = posterior[key]
        if type(q).n_params is not None:  # families of a fixed size act elementwise
            out[key] = q.fisher_vector_product(stack)
        else:
            out[key] = np.stack([q.fisher_vector_product(v) for v in stack])
    return out
