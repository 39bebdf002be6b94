"""The fit loop: model → engine → family → optimizer → result, in one straight line."""

import time
from collections import OrderedDict, deque

import numpy as np

from natvi import checkpoint as ckpt
from natvi import serialization
from natvi.elbo import elbo
from natvi.factors import latent_names
from natvi.families import (
    Bernoulli,
    Categorical,
    Dirichlet,
    FullRankGaussian,
    LogitNormal,
    LogNormal,
    MeanFieldGaussian,
)
from natvi.families.base import ExponentialFamily
from natvi.model import Model
from natvi.optim import SHORTCUTS, Evaluation, Optimizer, anderson, natural_gradient
from natvi.progress import progress_bar, report
from natvi.result import FitResult
from natvi.validation import as_rng, check_nonnegative_scalar, check_positive_int

#: the family each support gets unless the model or the caller picks one
DEFAULT_FAMILIES = {"real": MeanFieldGaussian, "positive": LogNormal, "unit_interval": LogitNormal,
                    "simplex": Dirichlet, "binary": Bernoulli, "categorical": Categorical}

#: deterministic engines: stop when a unit natural-gradient step would gain less than this (nats)
DEFAULT_TOL_DETERMINISTIC = 1e-13
#: stochastic engines: stop when the windowed mean ELBO changes by less than this, relatively
DEFAULT_TOL_STOCHASTIC = 1e-3
#: iterations per window of the stochastic convergence rule
WINDOW = 50
#: halvings of any step that leaves the domain or makes the ELBO non-finite
MAX_REJECTIONS = 30


def fit(model, optimizer="ngd", *, family="auto", max_iter=1000, tol=None, seed=0,
        callback=None, progress=None, checkpoint=None, checkpoint_every=10, resume=None,
        strict=False):
    """Fit a variational posterior by maximizing the ELBO.

    Parameters
    ----------
    model : natvi.model.Model
        The model, e.g. ``natvi.models.LogisticRegression(X, y)``.
    optimizer : str or natvi.optim.Optimizer
        ``"ngd"`` (natural gradient, the default; see :func:`default_natural_gradient`),
        ``"adam"``, another name in ``natvi.optim.SHORTCUTS``, or an optimizer such as
        ``natvi.optim.adam(0.05)``.
    family : "auto", family class, dict or None
        ``"auto"`` (the default): what the model chooses, stated in ``result.family_reason``;
        for the GLMs of ``natvi.models``, one full-rank Gaussian over the intercept and
        coefficients where its cost is affordable, else mean-field Gaussians (see their
        ``auto_family``). A family class: that family for every latent of its support (a
        ``FullRankGaussian`` then covers all real latents jointly, keeping their
        correlations). A dict {latent name: family class}, where a tuple of names as key
        makes one joint full-rank factor. Latents not covered (and all, with None) get the
        model's default, else the default of their support: ``MeanFieldGaussian`` (real),
        ``LogNormal`` (positive), ``LogitNormal`` (unit interval), ``Dirichlet``,
        ``Bernoulli``, ``Categorical``.
    max_iter : int
        Maximum number of optimizer steps (counted from the start, also when resuming).
    tol : float, optional
        Convergence tolerance. For a deterministic ELBO: the ELBO gain of a unit
        natural-gradient step, ½⟨∇_μ L, F ∇_μ L⟩, in nats (default 1e-13). For a
        stochastic ELBO: the relative change of its mean over windows of 50 steps
        (default 1e-3).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Randomness of Monte Carlo engines (and of nothing else).
    callback : callable, optional
        Called as ``callback(iteration, elbo, posterior)`` after every step.
    progress : bool, optional
        Show a progress bar (iteration, ELBO, step size) for fits that take more than a
        second. By default shown when the output is a terminal or a notebook.
    checkpoint : str or path, optional
        File to write the whole state of the fit to every ``checkpoint_every`` iterations
        and at the end (atomically: a crash leaves the previous checkpoint intact).
    checkpoint_every : int
        Iterations between checkpoints.
    resume : str or path, optional
        A checkpoint to continue from; the fit then gives bit for bit the numbers the
        uninterrupted fit would have (same model, family, optimizer and seed).
    strict : bool
        Raise :class:`natvi.fit.DivergenceError` instead of returning a ``"diverged"``
        result.

    Returns
    -------
    natvi.result.FitResult
        ``status`` is ``"converged"``, ``"max_iter"``, ``"diverged"`` (no step survived
        30 halvings: the last good parameters are returned) or ``"interrupted"``
        (KeyboardInterrupt).
    """
    if not isinstance(model, Model):
        raise ValueError(f"model: expected a natvi Model, got {type(model).__name__}")
    family, family_reason = _auto_family(model, family)
    families = _resolve_families(model, family)
    opt = _resolve_optimizer(optimizer, model, families)
    max_iter = check_positive_int(max_iter, "max_iter")
    if tol is None:
        tol = DEFAULT_TOL_DETERMINISTIC if model.deterministic else DEFAULT_TOL_STOCHASTIC
    tol = check_nonnegative_scalar(tol, "tol")
    rng = as_rng(seed)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback: expected a function or None, got {type(callback).__name__}")
    if not (progress is None or isinstance(progress, bool)):
        raise ValueError(f"progress: expected True, False or None, got {progress!r}")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    checkpoint = serialization.check_path(checkpoint, "checkpoint", writable=True,
                                          optional=True)
    resume = serialization.check_path(resume, "resume", optional=True)
    if not isinstance(strict, bool):
        raise ValueError(f"strict: expected True or False, got {strict!r}")

    objective = _Objective(model, families, opt, rng)
    if resume is None:
        start = time.perf_counter()
        params = objective.coordinates_of(model.initial_posterior(families))
        state = opt.init(params)
        ev = objective(params)
        if not np.isfinite(ev.value):
            why = "posterior" in ev.aux and model.explain_nonfinite(ev.aux["posterior"])
            raise ValueError("model: the ELBO at the starting point is not finite"
                             + (f": {why}" if why else "; check the data"))
        history = _History()
        history.add(ev.value, 0.0, objective.n_evals, time.perf_counter() - start, 0)
        recent = deque(maxlen=WINDOW)  # last iterates, averaged at the end of stochastic fits
        best = params  # the iterate of the highest ELBO, returned if a deterministic fit falls
        first, status = 1, "max_iter"
    else:
        saved = _restore(resume, model, families, opt, objective, rng)
        start = time.perf_counter() - saved.seconds
        params, state = saved.params, saved.opt_state
        ev = objective.evaluation_at(params, saved)
        history = _History.from_arrays(saved.history)
        recent = deque(saved.recent, maxlen=WINDOW)
        best = saved.best
        first, status = saved.n_iter + 1, saved.status
    # Counters, generator and verdict as of the last completed iteration: an interrupted
    # one may have spent evaluations and draws that the resumed fit will spend again, and
    # a Ctrl-C in the callback must not hide that the iteration before it converged.
    snapshot = (objective.n_evals, rng.bit_generator.state, status)

    def save(status):
        if checkpoint is not None:
            verdict = snapshot[2] if snapshot[2] in ckpt.FINAL else status
            ckpt.save(checkpoint, ckpt.FitState(
                params, state, ev.value, ev.grad, ev.natural_grad, ev.aux["gain"],
                history.as_arrays(), list(recent), len(history.elbo) - 1, snapshot[0],
                history.seconds[-1], verdict, snapshot[1], best), model, families, opt.name)

    bar = None
    try:
        if status not in ckpt.FINAL:  # else resumed from a finished fit: nothing left to do
            bar = progress_bar(progress, max_iter)
            status = "max_iter"
            for n_iter in range(first, max_iter + 1):
                grads = ev.natural_grad if opt.natural else ev.grad
                updates, new_state = opt.update(
                    grads, state, params, objective=objective if model.deterministic else None,
                    valid=objective.valid)
                new_params, new_ev, halvings = _safe_step(objective, params, updates)
                if new_ev is None:  # every halving failed: keep the last good point
                    status = "diverged"
                    break
                moved = any(np.any(new_params[k] != params[k]) for k in params)
                if model.deterministic and new_ev.value > max(history.elbo):
                    best = new_params
                params, state, ev = new_params, new_state, new_ev
                if not model.deterministic:
                    recent.append(params)
                history.add(ev.value, float(state.step_size) * 0.5**halvings, objective.n_evals,
                            time.perf_counter() - start,
                            halvings + int(getattr(state, "rejected", 0)))
                if _converged(model.deterministic, ev, history.elbo, tol):
                    status = "converged"
                elif not moved and opt.natural and model.deterministic:
                    # The optimizer found no ascent: converged if the gradient is at
                    # rounding level, else no step could be taken (a numerical dead end).
                    status = "converged" if ev.aux["gain"] < 1e-6 else "diverged"
                snapshot = (objective.n_evals, rng.bit_generator.state, status)
                report(bar, ev.value, history.step_size[-1])
                if callback is not None:
                    callback(n_iter, ev.value, ev.aux["posterior"])
                if status != "max_iter":
                    break
                if n_iter % checkpoint_every == 0:
                    save("running")
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        if bar is not None:
            bar.close()
    save(status)
    if recent and status != "diverged":
        ev = _averaged(objective, recent, ev)
    status, message, ev = _outcome(status, ev, best, history.elbo, objective, opt.name,
                                   model.deterministic)
    if status == "diverged" and strict:
        raise DivergenceError(f"fit {message} (last ELBO {history.elbo[-1]:.6g})")
    return FitResult(model=model, posterior=ev.aux["posterior"], elbo=ev.value,
                     history=history.as_arrays(), status=status, n_iter=len(history.elbo) - 1,
                     optimizer=opt.name, gain=ev.aux["gain"], family_reason=family_reason,
                     message=message)


def _outcome(status, ev, best, elbos, objective, optimizer, deterministic):
    """(status, message, evaluation returned) at the end of a fit.

    On a deterministic ELBO, an optimizer without an ELBO safeguard (the Euclidean ones) may
    end below its best iterate: that iterate is returned, and a fall below the starting
    ELBO is a divergence. A converged fit keeps its stationary point.
    """
    n = len(elbos) - 1
    message = {
        "converged": f"converged after {n} iterations of {optimizer}",
        "max_iter": f"stopped at max_iter = {n} iterations of {optimizer}, not converged: raise "
                    f"max_iter, or try another optimizer",
        "diverged": f"diverged after {n} iterations of {optimizer}: no step could be taken "
                    f"without leaving the domain or making the ELBO non-finite; the last good "
                    f"iterate is returned",
        "interrupted": f"interrupted after {n} iterations of {optimizer}",
    }[status]
    if not deterministic or status == "converged" or not ev.value < max(elbos):
        return status, message, ev
    if elbos[-1] < elbos[0]:
        status = "diverged"
        message = (f"diverged: the ELBO of {optimizer} fell from {elbos[0]:.6g} at the start to "
                   f"{elbos[-1]:.6g} after {n} iterations")
    ev = objective(best)
    return status, (f"{message}; the best iterate, iteration {int(np.argmax(elbos))} (ELBO "
                    f"{ev.value:.6g}), is returned"), ev


class DivergenceError(RuntimeError):
    """Raised by ``fit(..., strict=True)`` when no step survives its halvings."""


def _resolve_optimizer(optimizer, model, families):
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        if optimizer not in SHORTCUTS:
            raise ValueError(f"optimizer: expected one of {sorted(SHORTCUTS)} or a "
                             f"natvi.optim optimizer, got {optimizer!r}")
        if SHORTCUTS[optimizer] is natural_gradient:
            return default_natural_gradient(model, families)
        return SHORTCUTS[optimizer]()
    raise ValueError(f"optimizer: expected a name or a natvi.optim optimizer, got "
                     f"{type(optimizer).__name__}")


def default_natural_gradient(model, families):
    """The natural-gradient settings ``"ngd"`` stands for, given the model and its families.

    On a deterministic ELBO with only mean-field Gaussian factors: Anderson-accelerated
    natural gradient (:func:`natvi.optim.anderson`), which measured fewest iterations and
    ELBO evaluations to 0.01 nats (breast-cancer logistic regression: 15 iterations and
    17 evaluations, against 24 and 57 for Fisher-conjugate directions with a line search
    and 20 evaluations for L-BFGS-B; see examples/benchmark.py). With a full-rank
    Gaussian: a line search from ρ = 1 without conjugate directions, since its natural
    step is already a Newton step, which mixing in old directions would spoil (6
    iterations to 0.01 nats without, 12 with). With other families (conjugate ones, whose
    step of 1 is their exact coordinate update, and transformed Gaussians such as
    LogNormal, whose ELBO has long curved valleys where Anderson's extrapolation crawls):
    a line search from ρ = 1 with Fisher-conjugate directions. On a stochastic ELBO: a
    constant step of 0.1, which measured best of constant 0.05 and 0.1 and Robbins–Monro
    schedules 0.5 (t + 1)^−0.7 and 0.1 (t + 10)^−0.55 on eight schools (centered and not)
    and on normal and Student-t models of Newcomb's data: the decaying schedules stalled
    far from the optimum, and a first step of 0.5 overshot by ten orders of magnitude in
    the ELBO.
    """
    if not model.deterministic:
        return natural_gradient(0.1)
    if all(f is MeanFieldGaussian for f in families.values()):
        return anderson()
    return natural_gradient(1.0, conjugate=not any(issubclass(f, FullRankGaussian)
                                                   for f in families.values()))


def _auto_family(model, family):
    """(family argument, the reason for it): the model's choice for ``"auto"``."""
    if isinstance(family, str):
        if family != "auto":
            raise ValueError(f"family: expected \"auto\", a natvi family class or a dict "
                             f"{{latent name: family class}}, got {family!r}")
        return model.auto_family()
    return family, "given by the caller"


def _resolve_families(model, family):
    """{factor key: family class}, in the order of the model's latents."""
    latents = model.latents
    names = list(latents)
    if family is None:
        chosen = {}
    elif isinstance(family, dict):
        chosen = {}
        for key, cls in family.items():
            covered = latent_names(key)
            unknown = [n for n in covered if n not in latents]
            if unknown or not covered:
                raise ValueError(f"family: unknown latent name(s) {unknown or [key]}; the model "
                                 f"has {names}")
            chosen[covered[0] if len(covered) == 1 else tuple(covered)] = cls
    elif isinstance(family, type) and issubclass(family, ExponentialFamily):
        matching = [n for n in names if latents[n].support == family.support]
        if not matching:
            raise ValueError(f"family: {family.__name__} has support {family.support!r}, which "
                             f"none of the latents {_supports(latents)} has")
        if issubclass(family, FullRankGaussian) and len(matching) > 1:
            chosen = {tuple(matching): family}  # one joint factor keeps the correlations
        else:
            chosen = dict.fromkeys(matching, family)
    else:
        raise ValueError(f"family: expected a natvi family class or a dict {{latent name: "
                         f"family class}}, got {family!r}")
    owner = {}
    for key in chosen:
        for name in latent_names(key):
            if name in owner:
                raise ValueError(f"family: latent {name!r} is in two factors, {owner[name]!r} "
                                 f"and {key!r}")
            owner[name] = key
    out = {}
    for name in names:
        key = owner.get(name, name)
        if key in out:
            continue
        fam = chosen.get(key) or model.default_families.get(name) \
            or DEFAULT_FAMILIES[latents[name].support]
        if not (isinstance(fam, type) and issubclass(fam, ExponentialFamily)):
            raise ValueError(f"family: expected a natvi family class for {key!r}, got {fam!r}")
        if isinstance(key, tuple) and not issubclass(fam, FullRankGaussian):
            raise ValueError(f"family: only a FullRankGaussian covers several latents jointly, "
                             f"got {fam.__name__} for {key!r}")
        for n in latent_names(key):
            if fam.support != latents[n].support:
                raise ValueError(f"family: {fam.__name__} has support {fam.support!r} but latent "
                                 f"{n!r} has support {latents[n].support!r}")
        out[key] = fam
    return out


def _supports(latents):
    return {name: latent.support for name, latent in latents.items()}


class _Objective:
    """ELBO and gradients in the optimizer's coordinates, remembering recent points.

    The line search and the fit loop ask for the same points; a small cache keeps
    every point evaluated once, and ``n_evals`` counts real evaluations only.
    """

    def __init__(self, model, families, opt, rng, cache_size=4):
        self.model, self.families, self.opt, self.rng = model, families, opt, rng
        self.n_evals = 0
        self._cache = OrderedDict()
        self._cache_size = cache_size

    def coordinates_of(self, posterior):
        # Latent order follows the model's declaration, so posteriors and draws do too.
        if self.opt.coordinates == "natural":
            return {k: np.array(posterior[k].natural) for k in self.families}
        return {k: posterior[k].unconstrained for k in self.families}

    def posterior_of(self, params):
        """{name: family} at ``params``, or None outside a family's domain."""
        out = {}
        for name, p in params.items():
            cls = self.families[name]
            if not np.all(np.isfinite(p)):
                return None
            try:
                with np.errstate(over="ignore"):  # an overflowing scale is just out of domain
                    out[name] = (cls.from_natural(p) if self.opt.coordinates == "natural"
                                 else cls.from_unconstrained(p))
            except ValueError:
                return None
        return out

    def valid(self, params):
        return self.posterior_of(params) is not None

    @staticmethod
    def _key(params):
        return b"".join(np.ascontiguousarray(params[k]).tobytes() for k in params)

    def evaluation_at(self, params, saved):
        """The checkpointed evaluation at ``params``, remembered as if just computed."""
        posterior = self.posterior_of(params)
        if posterior is None:
            raise ValueError("resume: the checkpoint's parameters are outside the families' "
                             "domains")
        ev = Evaluation(saved.value, saved.grad, saved.natural_grad,
                        {"posterior": posterior, "gain": saved.gain})
        self._cache[self._key(params)] = ev
        return ev

    def __call__(self, params):
        key = self._key(params)
        if key in self._cache:
            return self._cache[key]
        posterior = self.posterior_of(params)
        if posterior is None:
            ev = Evaluation(-np.inf, None, None, {})
        else:
            self.n_evals += 1
            with np.errstate(all="ignore"):
                value, nat = elbo(self.model, posterior, self.rng)
            euclid_eta = {k: posterior[k].fisher_vector_product(g) for k, g in nat.items()}
            if self.opt.coordinates == "natural":
                grad = euclid_eta
            else:
                grad = {k: posterior[k].unconstrained_grad(g) for k, g in nat.items()}
            finite = np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grad.values())
            with np.errstate(all="ignore"):
                gain = (0.5 * sum(float(np.sum(posterior[k].fisher_quadratic_form(g)))
                                  for k, g in nat.items()) if finite else np.inf)
            ev = Evaluation(value if finite else -np.inf, grad, nat,
                            {"posterior": posterior, "gain": gain})
        self._cache[key] = ev
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return ev


def _restore(path, model, families, opt, objective, rng):
    """The checkpointed state, with the generator and the evaluation counter restored."""
    start = model.initial_posterior(families)
    params = objective.coordinates_of(start)
    saved = ckpt.load(path, model, families, opt.name, opt.init(params), params,
                      {k: q.natural for k, q in start.items()})
    try:
        rng.bit_generator.state = saved.rng_state
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"resume: the checkpoint's random generator state does not fit "
                         f"this seed's generator ({exc})") from None
    objective.n_evals = saved.n_evals
    return saved


def _safe_step(objective, params, updates):
    """Apply ``updates``, halving them while the result is invalid or non-finite."""
    scale = 1.0
    for rejected in range(MAX_REJECTIONS + 1):
        new = {k: params[k] + scale * updates[k] for k in params}
        ev = objective(new)
        if np.isfinite(ev.value):
            return new, ev, rejected
        scale *= 0.5
    return params, None, MAX_REJECTIONS


def _averaged(objective, iterates, last):
    """Evaluation at the mean of the last stochastic iterates (Polyak–Ruppert averaging):
    a constant step leaves the iterates jittering around the optimum, and their mean is
    closer to it. Natural and unconstrained parameter domains are convex, so the mean is
    a valid point; the last iterate is kept if the mean's ELBO estimate is not finite."""
    mean = {k: np.mean([p[k] for p in iterates], axis=0) for k in iterates[0]}
    ev = objective(mean)
    return ev if np.isfinite(ev.value) else last


def _converged(deterministic, ev, elbos, tol):
    if deterministic:
        return ev.aux["gain"] <= tol
    if len(elbos) < 2 * WINDOW + 1:
        return False
    recent, before = np.mean(elbos[-WINDOW:]), np.mean(elbos[-2 * WINDOW:-WINDOW])
    return abs(recent - before) <= tol * abs(recent)


class _History:
    """Per-iteration records, turned into arrays at the end."""

    def __init__(self):
        self.elbo, self.step_size, self.grad_evals, self.seconds, self.rejected = [], [], [], [], []

    def add(self, elbo_, step, evals, seconds, rejected):
        self.elbo.append(elbo_)
        self.step_size.append(step)
        self.grad_evals.append(evals)
        self.seconds.append(seconds)
        self.rejected.append(rejected)

    @classmethod
    def from_arrays(cls, arrays):
        out = cls()
        for name in ("elbo", "step_size", "grad_evals", "seconds", "rejected"):
            getattr(out, name).extend(np.asarray(arrays[name]).tolist())
        return out

    def as_arrays(self):
        return {"elbo": np.array(self.elbo), "step_size": np.array(self.step_size),
                "grad_evals": np.array(self.grad_evals, dtype=int),
                "seconds": np.array(self.seconds), "rejected": np.array(self.rejected, dtype=int)}
