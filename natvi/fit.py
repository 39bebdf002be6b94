"""The fit loop: model → engine → family → optimizer → result, in one straight line.

:class:`VI` keeps a fit's parts apart as NumPyro's SVI does — ``init`` gives a
:class:`natvi.fit_state.FitState`, ``step`` takes one and returns the next, ``run``
steps until converged, diverged or ``max_iter``, ``result`` makes a
:class:`natvi.FitResult` — so a fit can be held, stepped and continued in memory.
:func:`fit` strings them together; a checkpoint file is one more consumer of the state.
"""

import time
from functools import partial

import numpy as np

from natvi import checkpoint as ckpt
from natvi import draw_check, factors, serialization
from natvi.choice import families_for, optimizer_for
from natvi.engines import Engine, FixedDraws, Minibatch, MonteCarlo
from natvi.fit_state import (
    FINAL,
    FitState,
    Record,
    history_arrays,
    latest_elbos,
    latest_records,
)
from natvi.model import Model, narrowed
from natvi.objective import Objective, fisher_product
from natvi.optim import Info
from natvi.optim.base import halve, tree_axpy
from natvi.progress import progress_bar, report
from natvi.result import FitResult
from natvi.validation import as_rng, check_nonnegative_scalar, check_positive_int

#: deterministic engines: stop when a unit natural-gradient step would gain less than this (nats)
DEFAULT_TOL_DETERMINISTIC = 1e-13
#: fixed draws: the same rule, looser. A gain of 1e-8 nats leaves q about 1e-4 sd (in the
#: Fisher metric; up to 2e-3 sd in a mean of 8 collinear mean-field coefficients) from the
#: fixed-draw optimum, which itself is a Monte Carlo estimate (new draws move it by up to
#: 0.1 sd, natvi.draw_check). Measured on the GP-like Poisson model of
#: examples/reference_models.py, full-rank: 14 iterations and 8.5 s against 22 and 13 s at
#: 1e-13, with the same means (errors to NUTS 0.385 and 0.416 on seeds 0 and 1 at both)
DEFAULT_TOL_FIXED_DRAWS = 1e-8
#: stochastic engines: stop when the windowed mean ELBO changes by less than this, relatively
DEFAULT_TOL_STOCHASTIC = 1e-3
#: minibatch fits: stop when a unit natural-gradient step from the averaged iterate would gain
#: less than this (nats), measured on an exact pass over the data
DEFAULT_TOL_MINIBATCH = 1e-2
#: minibatch fits: iterations before iterates are averaged, as a fraction of a pass
BURN_IN = 0.1
#: iterations per window of the stochastic convergence rule
WINDOW = 50
#: deterministic fits: where the optimizer finds no ascent below this gain (nats), a plain
#: natural step judged by the gradient is tried (:meth:`VI._polished`)
POLISH_GAIN = 1e-6
#: the ELBO's rounding, relative: a polishing step may lower the ELBO by this much
ROUNDING = 1e-12
#: halvings of any step that leaves the domain or makes the ELBO non-finite
MAX_REJECTIONS = 30
#: stochastic fits: fresh ELBO evaluations at the averaged iterate for the stationarity test
STATIONARITY_DRAWS = 16
#: stochastic fits: a natural gradient is indistinguishable from zero when its gain is at most
#: this many times what its Monte Carlo noise alone gives
STATIONARITY_RATIO = 4.0
#: stochastic fits: a window whose median ELBO is this many of its spreads below the best
#: window's is a collapse
COLLAPSE = 5.0


def fit(model, optimizer="ngd", *, family="auto", max_iter=1000, tol=None, seed=0,
        batch_size=None, callback=None, progress=None, checkpoint=None, checkpoint_every=10,
        resume=None, init_state=None, strict=False):
    """Fit a variational posterior by maximizing the ELBO.

    Parameters
    ----------
    model : natvi.model.Model
        The model, e.g. ``natvi.models.LogisticRegression(X, y)``.
    optimizer : str or natvi.optim.Optimizer
        ``"ngd"`` (natural gradient, the default; see
        :func:`natvi.choice.default_natural_gradient`), ``"adam"``, another name in
        ``natvi.optim.SHORTCUTS``, or an optimizer such as ``natvi.optim.adam(0.05)``.
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
        Maximum number of optimizer steps (counted from the start, also when continuing).
    tol : float, optional
        Convergence tolerance. For a deterministic ELBO: the ELBO gain of a unit
        natural-gradient step, ½⟨∇_μ L, F ∇_μ L⟩, in nats (default 1e-13; on fixed
        draws 1e-8, far below their Monte Carlo error). For a
        stochastic ELBO: the relative change of its mean over windows of 50 steps
        (default 1e-3), one of the conditions of its convergence (see
        :meth:`VI._stochastic_verdict`). For a minibatch fit: that gain at the mean of the
        iterates, from an exact pass over the data (default 0.01 nats; see
        :meth:`VI._minibatch_verdict`).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Randomness of Monte Carlo engines, the base draws of a fixed-draw engine and the
        order of minibatches (and of nothing else).
    batch_size : int, optional
        Stochastic natural gradients on minibatches of this many rows
        (:class:`natvi.engines.Minibatch`; Hoffman et al. 2013), for a model whose data
        term is a sum over rows: the logistic, probit, Poisson and ARD regressions of
        ``natvi.models`` (in memory, on disk or in Dask) and a ``natvi.Model`` given
        ``log_prior``, ``log_likelihood`` and ``data``. Each iteration reads one
        minibatch (the history's ELBOs are its scaled estimates); after the first tenth
        of a pass the iterates are averaged, their mean is evaluated on a full pass after
        every pass, and the result is the best of those means, with its full-pass ELBO.
        By default the natural gradient steps by max(1/(t + 1), min(1, 20/n_b)) for n_b
        minibatches per pass (see :func:`natvi.choice.default_natural_gradient`).
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
    init_state : natvi.fit_state.FitState, optional
        A state to continue from in memory, such as ``result.state`` of an earlier fit of
        the same model, family and optimizer (its random generator state comes with it;
        on fixed draws, give the same ``seed``: the draws come from it). Not together with
        ``resume``.
    strict : bool
        Raise :class:`natvi.fit.DivergenceError` instead of returning a ``"diverged"``
        result.

    Returns
    -------
    natvi.result.FitResult
        ``status`` is ``"converged"``, ``"unreliable"`` (below), ``"max_iter"``,
        ``"diverged"`` (no step survived
        30 halvings, or, on a stochastic ELBO, the ELBO collapsed or steps kept being
        halved: the best parameters seen are returned) or ``"interrupted"``
        (KeyboardInterrupt); ``result.state`` continues it. A fit of a ``natvi.Model``
        converged on draws of q is checked on fresh draws (``result.draw_check``), and is
        ``"unreliable"`` instead where their Pareto k̂ is above PSIS's threshold (2/3
        from 1,000 draws, confirmed on 4,000 against 0.7; a stationary point whose q
        misses posterior mass; ``strict`` does not raise on it). A fit converged on
        fixed draws may have grown its draws; its ``result.state`` is of that fit. (The
        check is :func:`fit`'s: :meth:`VI.result` gives the optimizer's status alone.)
    """
    vi = VI(model, optimizer, family=family, tol=tol, seed=seed, batch_size=batch_size)
    max_iter = check_positive_int(max_iter, "max_iter")
    run_options = _run_options(callback, progress, checkpoint, checkpoint_every)
    if not isinstance(strict, bool):
        raise ValueError(f"strict: expected True or False, got {strict!r}")
    if resume is not None and init_state is not None:
        raise ValueError("resume, init_state: give one state to continue from, not both")
    if resume is not None:
        state = vi.restore(resume)
    elif init_state is not None:
        state = vi.adopt(init_state)
    else:
        state = vi.init()
    result = vi.result(vi.run(state, max_iter, **run_options), strict=strict)
    return _with_draw_check(vi, result, max_iter)


class VI:
    """A fit of ``model``, held as a :class:`FitState` that is initialized, stepped and run.

    Parameters
    ----------
    model, optimizer, family, tol, seed
        As for :func:`fit`.
    engine : natvi.engines.Engine, optional
        The engine to fit on instead of the model's (e.g. a
        :class:`natvi.engines.FixedDraws` with other draws).
    batch_size : int, optional
        As for :func:`fit`.

    Examples
    --------
    >>> vi = natvi.VI(model, "ngd", seed=0)
    >>> state = vi.init()
    >>> state = vi.step(state)                 # one iteration; the old state stays valid
    >>> state = vi.run(state, max_iter=100)    # until converged, diverged or 100 iterations
    >>> result = vi.result(state)
    """

    def __init__(self, model, optimizer="ngd", *, family="auto", tol=None, seed=0, engine=None,
                 batch_size=None):
        if not isinstance(model, Model):
            raise ValueError(f"model: expected a natvi Model, got {type(model).__name__}")
        if engine is not None and not isinstance(engine, Engine):
            raise ValueError(f"engine: expected a natvi.engines.Engine or None, got "
                             f"{type(engine).__name__}")
        self.model = model
        self.families, self.family_reason = families_for(model, family)
        self._rng = as_rng(seed)
        engine = engine or model.engine
        if batch_size is not None:
            engine = Minibatch(engine, batch_size)
        #: what computes the ELBO in this fit (the model's engine, with its draws fixed)
        self.engine = engine.for_fit(self.families, self._rng)
        self.optimizer = optimizer_for(optimizer, self.engine, self.families)
        self.deterministic = self.engine.deterministic
        self.minibatch = isinstance(self.engine, Minibatch)
        self._batch_size = self.engine.batch_size if self.minibatch else 0
        if tol is None:
            tol = (DEFAULT_TOL_MINIBATCH if self.minibatch else
                   DEFAULT_TOL_FIXED_DRAWS if isinstance(self.engine, FixedDraws)
                   and self.deterministic else
                   DEFAULT_TOL_DETERMINISTIC if self.deterministic else DEFAULT_TOL_STOCHASTIC)
        self.tol = check_nonnegative_scalar(tol, "tol")
        self._seed_state = self._rng.bit_generator.state
        self._objective = Objective(self.engine, self.families, self.optimizer.coordinates,
                                    self._rng)
        if self.minibatch:  # the exact passes of the minibatch verdict
            self._exact = Objective(self.engine.full, self.families,
                                    self.optimizer.coordinates, self._rng)
            self.burn_in = int(BURN_IN * self.engine.n_batches)
        self._last = None  # the state the objective's generator and counter are at

    def init(self, params=None):
        """The state at the model's starting point, or at ``params`` ({factor key: array}
        in the optimizer's coordinates, such as ``state.params`` of another fit of the same
        families): iteration 0, evaluated."""
        self._last = None
        self._rng.bit_generator.state = self._seed_state
        self._objective.clear()
        self._objective.n_evals = 0
        if self.minibatch:
            self.engine.position = 0
        start = time.perf_counter()
        if params is None:
            posterior = self.model.initial_posterior(self.families)
            if (isinstance(self.engine, FixedDraws)
                    and type(self.model).initial_posterior is Model.initial_posterior):
                posterior = narrowed(posterior)  # the standard start, narrowed on fixed draws
            params = self._objective.coordinates_of(posterior)
        ev = self._objective(params)
        if not np.isfinite(ev.value):
            why = "posterior" in ev.aux and self.model.explain_nonfinite(ev.aux["posterior"])
            raise ValueError("model: the ELBO at the starting point is not finite"
                             + (f": {why}" if why else "; check the data"))
        opt_state = self.optimizer.init(params)
        seconds = time.perf_counter() - start
        n_evals = self._objective.n_evals
        # a minibatch fit's best is measured on full passes: none yet (its start is a
        # minibatch's estimate, which no full pass may be compared with)
        best_elbo = -np.inf if self.minibatch else ev.value
        return self._settle(FitState(
            params, opt_state, ev, (Record(ev.value, 0.0, n_evals, seconds, 0), ()), (), 0,
            n_evals, seconds, "running", self._rng.bit_generator.state, params, best_elbo,
            (), self._batch_size))

    def step(self, state):
        """The state after one more iteration (``state`` itself is left as it was)."""
        self._resume(state)
        self._last = None  # until this step completes
        start = time.perf_counter()
        updates, opt_state, info = self._update(state)
        params, ev, halvings = self._accept(state.params, updates)
        if ev is None:  # every halving failed: keep the last good point
            return state._replace(status="diverged")
        moved = any(np.any(params[k] != state.params[k]) for k in params)
        if not moved and self.deterministic:
            params, ev, moved = self._polished(state, params, ev)
            info = info._replace(step_size=1.0) if moved else info
        # the record's evaluations and seconds are filled in once the verdict's own are done
        history = (Record(ev.value, info.step_size * 0.5**halvings, 0, 0.0,
                          halvings + info.rejected), state.history)
        recent, checks = state.recent, state.checks
        if self.deterministic:
            status = self._verdict(ev, state.n_iter + 1, moved)
            best, best_elbo = ((params, ev.value) if ev.value > state.best_elbo
                               else (state.best, state.best_elbo))
        elif self.minibatch:
            status, recent, best, best_elbo, checks = self._minibatch_verdict(history, params,
                                                                              state)
        else:
            recent = (*state.recent, params)[-WINDOW:]
            status, best, best_elbo = self._stochastic_verdict(history, recent, state)
        seconds = state.seconds + time.perf_counter() - start
        history = (history[0]._replace(grad_evals=self._objective.n_evals, seconds=seconds),
                   state.history)
        return self._settle(FitState(
            params, opt_state, ev, history, recent, state.n_iter + 1, self._objective.n_evals,
            seconds, status, self._rng.bit_generator.state, best, best_elbo, checks,
            state.batch_size))

    def run(self, state, max_iter=1000, *, callback=None, progress=None, checkpoint=None,
            checkpoint_every=10):
        """Step ``state`` until converged, diverged or ``max_iter`` iterations.

        Parameters
        ----------
        state : natvi.fit_state.FitState
            Where to start (from :meth:`init`, :meth:`step`, :meth:`restore` or a result).
        max_iter : int
            Iterations to stop at, counted from the start of the fit.
        callback : callable, optional
            Called as ``callback(iteration, elbo, posterior)`` after every step.
        progress : bool, optional
            Show a progress bar (see :func:`fit`).
        checkpoint : str or path, optional
            File to write the state to every ``checkpoint_every`` iterations and at the end.
        checkpoint_every : int
            Iterations between checkpoints.

        Returns
        -------
        natvi.fit_state.FitState
            The last state; its status is ``"interrupted"`` after a KeyboardInterrupt.
        """
        max_iter = check_positive_int(max_iter, "max_iter")
        options = _run_options(callback, progress, checkpoint, checkpoint_every)
        verdict = state
        if state.status not in FINAL:  # else there is nothing left to do
            state, verdict = self._loop(state, max_iter, options)
        if options["checkpoint"] is not None:
            self.save(options["checkpoint"], verdict)
        return state

    def _loop(self, state, max_iter, options):
        """(state returned, state to checkpoint): they differ when a KeyboardInterrupt
        follows a converged or diverged iteration, whose verdict the checkpoint keeps."""
        callback, checkpoint = options["callback"], options["checkpoint"]
        bar = progress_bar(options["progress"], max_iter)
        try:
            while state.n_iter < max_iter:
                state = self.step(state)
                report(bar, state.evaluation.value, state.history[0].step_size)
                if callback is not None:
                    callback(state.n_iter, state.evaluation.value,
                             state.evaluation.aux["posterior"])
                if state.status in FINAL:
                    return state, state
                if checkpoint is not None and state.n_iter % options["checkpoint_every"] == 0:
                    self.save(checkpoint, state)
            state = self._with_status(state, "max_iter")
            return state, state
        except KeyboardInterrupt:
            interrupted = self._with_status(state, "interrupted")
            return interrupted, state if state.status in FINAL else interrupted
        finally:
            if bar is not None:
                bar.close()

    def result(self, state, *, strict=False):
        """The :class:`natvi.FitResult` of ``state`` (the mean of the last iterates of a
        stochastic fit; the best iterate of a deterministic one that fell below it; the
        best mean iterate of a minibatch fit, with its full-pass ELBO). ``strict`` raises
        :class:`DivergenceError` on a ``"diverged"`` state. The status is the optimizer's:
        the check on fresh draws that may call a converged fit ``"unreliable"`` is made
        by :func:`natvi.fit`."""
        self._resume(state)
        self._last = None  # the evaluations below move the generator
        ev, history = state.evaluation, history_arrays(state.history)
        if self.minibatch:
            status, message, ev = self._minibatch_outcome(state)
        else:
            if state.recent and state.status != "diverged":
                ev = _averaged(self._objective, state.recent, ev)
            status, message, ev = _outcome(state.status, ev, state.best, history["elbo"],
                                           self._objective, self.optimizer.name,
                                           self.deterministic)
        if status == "diverged" and strict:
            raise DivergenceError(f"fit {message} (last ELBO {history['elbo'][-1]:.6g})")
        return FitResult(model=self.model, posterior=ev.aux["posterior"], elbo=ev.value,
                         history=history, status=status, n_iter=state.n_iter,
                         optimizer=self.optimizer.name, gain=ev.aux["gain"],
                         family_reason=self.family_reason, message=message, state=state)

    def save(self, path, state):
        """Write ``state`` to the checkpoint file ``path`` (atomically)."""
        ckpt.save(path, state, self.model, self.families, self.optimizer.name)

    def restore(self, path):
        """The state in the checkpoint file ``path``, checked against this fit."""
        path = serialization.check_path(path, "resume")
        start = self.model.initial_posterior(self.families)
        params = self._objective.coordinates_of(start)
        state = ckpt.load(path, self.model, self.families, self.optimizer.name,
                          self.optimizer.init(params), params,
                          {k: q.natural for k, q in start.items()})
        return self._adopted(state, "resume", "the checkpoint's")

    def adopt(self, state):
        """``state`` (of an earlier fit of the same model, family and optimizer), checked
        against this fit."""
        if not isinstance(state, FitState):
            raise ValueError(f"init_state: expected a natvi FitState (result.state or "
                             f"VI.init()), got {type(state).__name__}")
        params = self._objective.coordinates_of(self.model.initial_posterior(self.families))
        posterior = state.evaluation.aux.get("posterior", {})
        if (list(state.params) != list(params)
                or any(np.shape(state.params[k]) != np.shape(params[k]) for k in params)
                or {k: type(q) for k, q in posterior.items()} not in ({}, self.families)):
            raise ValueError(f"init_state: the state is of factors "
                             f"{ {str(k): np.shape(v) for k, v in state.params.items()} }, "
                             f"this fit has {serialization.encode_factors(self.families)}")
        if type(state.opt_state) is not type(self.optimizer.init(params)):
            raise ValueError(f"init_state: the state holds a {type(state.opt_state).__name__}, "
                             f"but optimizer {self.optimizer.name!r} keeps a "
                             f"{type(self.optimizer.init(params)).__name__}")
        return self._adopted(state, "init_state", "the state's")

    def _adopted(self, state, argument, whose):
        if state.batch_size != self._batch_size:
            this = (f"batch_size={self._batch_size}" if self._batch_size
                    else "all the data (no batch_size)")
            raise ValueError(
                f"{argument}: {whose} fit ran on "
                + (f"minibatches of {state.batch_size} rows" if state.batch_size
                   else "all the data") + f", this one on {this}: continue it the way it "
                f"ran, or start from its parameters (vi.run(vi.init(state.params)) with "
                f"vi = natvi.VI(...) of this fit)")
        try:
            self._rng.bit_generator.state = state.rng_state
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{argument}: {whose} random generator state does not fit this "
                             f"seed's generator ({exc})") from None
        try:
            state = state._replace(evaluation=self._objective.remember(state.params,
                                                                       state.evaluation))
        except ValueError:
            raise ValueError(f"{argument}: {whose} parameters are outside the families' "
                             f"domains") from None
        self._last = None
        self._resume(state)
        return state

    def _resume(self, state):
        """Put the generator, the evaluation counter and the remembered points where
        ``state`` left them (nothing to do when it is the state just made)."""
        if state is self._last:
            return
        self._rng.bit_generator.state = state.rng_state
        self._objective.clear()
        self._objective.n_evals = state.n_evals
        self._objective.remember(state.params, state.evaluation)
        if self.minibatch:  # the next evaluation reads the minibatch after the state's last
            self.engine.position = state.n_evals
        self._last = state

    def _settle(self, state):
        self._last = state
        return state

    def _with_status(self, state, status):
        new = state._replace(status=status)
        if state is self._last:
            self._last = new
        return new

    def _update(self, state):
        """The optimizer's step from ``state``, given only the extras it declares."""
        opt, ev = self.optimizer, state.evaluation
        extras = {"objective": self._objective if self.deterministic else None,
                  "valid": self._objective.valid,
                  # none on minibatches, whose Gaussian targets are positive definite:
                  # there the positive-definite step only inflates the first precisions
                  "step": None if self.minibatch else self._objective.natural_step,
                  "fisher": partial(fisher_product, ev.aux["posterior"])}
        out = opt.update(ev.natural_grad if opt.natural else ev.grad, state.opt_state,
                         state.params, **{k: extras[k] for k in opt.needs})
        if len(out) == 3:
            return out
        updates, opt_state = out  # an optimizer written before Info: its state has the facts
        return updates, opt_state, Info(float(getattr(opt_state, "step_size", np.nan)),
                                        int(getattr(opt_state, "rejected", 0)))

    def _accept(self, params, updates):
        """(parameters, evaluation, halvings) of ``params + updates``, halved while it leaves
        a domain or makes the ELBO non-finite; the evaluation is None when none survives."""
        tried = {}

        def finite(rho):
            tried["params"] = tree_axpy(rho, updates, params)
            tried["ev"] = self._objective(tried["params"])
            return bool(np.isfinite(tried["ev"].value))

        rho, halvings = halve(finite, 1.0, MAX_REJECTIONS)
        return (tried["params"], tried["ev"], halvings) if rho else (params, None, halvings)

    def _polished(self, state, params, ev):
        """(parameters, evaluation, moved) after a plain natural-gradient step of 1 from
        ``state``, where the optimizer found no ascent with a gain at rounding level (below
        ``POLISH_GAIN``) but above ``tol``, if the step at least halves the gain and lowers
        the ELBO by no more than its rounding; else ``params``, ``ev`` and False as they came.

        So close to the optimum, ELBO differences are below the ELBO's rounding and a line
        search cannot tell ascent from descent, while the gain ½⟨g, F g⟩, from the gradient
        alone, stays accurate far below it: the step is judged by the gain. Two fits of
        the same data summed in other orders (chunks, BLAS builds) then end at the same
        point to the gradient's rounding, not the ELBO's."""
        gain = state.evaluation.aux["gain"]
        if (self.optimizer.coordinates != "natural" or not self.optimizer.natural
                or not self.tol < gain <= POLISH_GAIN):
            return params, ev, False
        trial = tree_axpy(1.0, state.evaluation.natural_grad, state.params)
        new = self._objective(trial)
        rounding = ROUNDING * abs(state.evaluation.value)
        if new.aux["gain"] <= 0.5 * gain and new.value >= state.evaluation.value - rounding:
            return trial, new, True
        return params, ev, False

    def _verdict(self, ev, n_iter, moved):
        """The status of a deterministic fit after iteration ``n_iter``."""
        if ev.aux["gain"] <= self.tol:
            return "converged"
        if not moved and self.optimizer.natural:
            # The optimizer found no ascent: converged if the gradient is at rounding
            # level, else no step could be taken (a numerical dead end).
            return "converged" if ev.aux["gain"] < 1e-6 else "diverged"
        return "running"

    def _stochastic_verdict(self, history, recent, state):
        """(status, best, best ELBO) of a stochastic fit whose newest record heads
        ``history`` and whose last iterates are ``recent``, checked every ``WINDOW``
        iterations; ``best`` is the mean iterate of the window of highest median ELBO.

        Diverged: steps were halved in most of the window, or the window's median ELBO
        fell below the best window's by more than ``COLLAPSE`` of its spreads. Converged:
        the window's mean ELBO changed by at most ``tol`` (relatively) from the window
        before, no step was halved in it, and the natural gradient at the mean iterate is
        indistinguishable from zero against its Monte Carlo noise (:meth:`_stationary`).
        """
        n_iter, keep = state.n_iter + 1, ("running", state.best, state.best_elbo)
        if n_iter % WINDOW or n_iter < WINDOW:
            return keep
        window = latest_records(history, WINDOW)
        elbos = np.array([r.elbo for r in window])
        if sum(r.rejected > 0 for r in window) > WINDOW // 2:
            return ("diverged", *keep[1:])
        level = np.median(elbos)
        spread = 1.4826 * np.median(np.abs(elbos - level))  # robust to blown-up draws
        if level > state.best_elbo:
            keep = ("running", _mean(recent), float(level))
        elif state.best_elbo - level > COLLAPSE * spread:
            return ("diverged", *keep[1:])
        if n_iter < 2 * WINDOW or any(r.rejected for r in window):
            return keep
        before = np.mean(latest_elbos(history, 2 * WINDOW)[:WINDOW])
        if abs(np.mean(elbos) - before) > self.tol * abs(np.mean(elbos)):
            return keep
        return ("converged" if self._stationary(_mean(recent)) else "running", *keep[1:])

    def _minibatch_verdict(self, history, params, state):
        """(status, recent, best, best ELBO, checks) of a minibatch fit after ``params``.

        After :data:`BURN_IN` of a pass, ``recent`` holds the mean of the iterates since;
        after every further pass (n_b iterations, which read every minibatch once, so
        that their noise cancels in the mean) the mean is evaluated on a full pass over
        the data and added to ``checks``; the best of those means is ``best``. Converged:
        a unit natural-gradient step from the mean would gain at most ``tol`` on the full
        pass, and what the mean's ELBO is still to gain, extrapolated from its last rises
        (:func:`_still_to_gain`), is at most ``tol`` too: a gain alone understates how far a
        mean-field q is from its optimum where features are correlated (measured: 0.6
        nats left at a gain of 0.002, features correlated 0.9975). Diverged: the mean's
        ELBO is not finite, or steps were halved in most of the pass.
        """
        n_iter, window = state.n_iter + 1, self.engine.n_batches
        averaged = n_iter - self.burn_in
        if averaged <= 0:
            return "running", (), state.best, state.best_elbo, state.checks
        mean = params if averaged == 1 or not state.recent else {
            k: m + (params[k] - m) / averaged for k, m in state.recent[0].items()}
        keep = ((mean,), state.best, state.best_elbo, state.checks)
        if averaged % window:
            return ("running", *keep)
        ev = self._exact(mean)
        value, gain = float(ev.value), float(ev.aux["gain"])
        checks = (*state.checks, (n_iter, value, gain))
        halved = sum(r.rejected > 0 for r in latest_records(history, window))
        if not np.isfinite(value) or halved > window // 2:
            return ("diverged", *keep[:3], checks)
        best, best_elbo = (mean, value) if value > state.best_elbo else keep[1:3]
        if gain <= self.tol and _still_to_gain([c[1] for c in checks]) <= self.tol:
            return "converged", (mean,), mean, value, checks
        return "running", (mean,), best, best_elbo, checks

    def _minibatch_outcome(self, state):
        """(status, message, full-pass evaluation returned) at the end of a minibatch fit:
        at the best mean of iterates measured; before any was, at the best on a full pass
        of the mean iterate so far, the last iterate and the start."""
        if state.checks:
            candidates = [("the best mean iterate measured", state.best)]
        else:  # state.best is still the start
            candidates = [("the mean iterate so far", r) for r in state.recent[:1]]
            candidates += [("the last iterate", state.params), ("the start", state.best)]
        evaluated = [(self._exact(point), which) for which, point in candidates]
        ev, which = max(evaluated, key=lambda pair: pair[0].value)
        if not np.isfinite(ev.value):
            posterior = self._exact.posterior_of(state.best)
            why = posterior is not None and self.model.explain_nonfinite(posterior)
            raise ValueError("model: the ELBO on all the data is not finite at the starting "
                             "point nor at any iterate" + (f": {why}" if why else
                                                            "; check the data"))
        status = "max_iter" if state.status == "running" else state.status
        n, name, gain = state.n_iter, self.optimizer.name, ev.aux["gain"]
        passes = (f"{state.n_evals / self.engine.n_batches:.3g} passes over the data in "
                  f"minibatches and {len(state.checks)} full")
        message = {
            "converged": f"converged after {n} iterations of {name} ({passes}): from the "
                         f"mean iterate a unit natural-gradient step would gain {gain:.2g} "
                         f"nats on a full pass, and its last rises extrapolate to at most "
                         f"{self.tol:g} nats more",
            "max_iter": f"stopped at max_iter = {n} iterations of {name} ({passes}), not "
                        f"converged: a unit natural-gradient step from what is returned "
                        f"would gain {gain:.2g} nats on a full pass; more iterations lower "
                        f"what is left of the steps' noise, a smaller step the floor a "
                        f"constant step leaves",
            "diverged": f"diverged after {n} iterations of {name} ({passes}): steps kept "
                        f"being halved or the mean iterate's ELBO is not finite",
            "interrupted": f"interrupted after {n} iterations of {name} ({passes})",
        }[status]
        if status != "converged":
            message += f"; returned: {which}"
        return status, message, ev

    def _stationary(self, params):
        """Whether the natural gradient at ``params`` is indistinguishable from zero: over
        ``STATIONARITY_DRAWS`` fresh evaluations g₁ … g_K, the gain ½⟨ḡ, F ḡ⟩ of their mean is
        at most ``STATIONARITY_RATIO`` times its expectation under pure noise, the squared
        standard error Σₖ ½⟨gₖ − ḡ, F (gₖ − ḡ)⟩ / (K (K − 1))."""
        posterior = self._objective.posterior_of(params)
        if posterior is None:
            return False
        with np.errstate(all="ignore"):
            grads = [self.engine.elbo(posterior, self._rng).grads
                     for _ in range(STATIONARITY_DRAWS)]
        k = len(grads)

        def gain(g):
            return 0.5 * sum(float(np.sum(posterior[key].fisher_quadratic_form(g[key])))
                             for key in posterior)

        mean = {key: np.mean([g[key] for g in grads], axis=0) for key in posterior}
        noise = sum(gain({key: g[key] - mean[key] for key in posterior})
                    for g in grads) / (k * (k - 1))
        signal = gain(mean)
        return bool(np.isfinite(signal) and signal <= STATIONARITY_RATIO * noise)


def _still_to_gain(values):
    """What a sequence of ELBOs (one per pass) is still to gain if its rises keep shrinking
    at their last ratio r: d r / (1 − r) for the last rise d (r at most 0.99); inf before
    three values. A fall means the mean iterate is at its noise floor: nothing is left,
    beyond a last rise after a fall."""
    if len(values) < 3:
        return np.inf
    before, last = values[-2] - values[-3], values[-1] - values[-2]
    if last <= 0:
        return 0.0
    if before <= 0:
        return last
    ratio = min(last / before, 0.99)
    return last * ratio / (1 - ratio)


def _mean(iterates):
    """The mean of a list of {key: array} iterates."""
    return {k: np.mean([p[k] for p in iterates], axis=0) for k in iterates[0]}


def _run_options(callback, progress, checkpoint, checkpoint_every):
    """The checked options of :meth:`VI.run`."""
    if callback is not None and not callable(callback):
        raise ValueError(f"callback: expected a function or None, got {type(callback).__name__}")
    if not (progress is None or isinstance(progress, bool)):
        raise ValueError(f"progress: expected True, False or None, got {progress!r}")
    return {"callback": callback, "progress": progress,
            "checkpoint": serialization.check_path(checkpoint, "checkpoint", writable=True,
                                                   optional=True),
            "checkpoint_every": check_positive_int(checkpoint_every, "checkpoint_every")}


def _outcome(status, ev, best, elbos, objective, optimizer, deterministic):
    """(status, message, evaluation returned) at the end of a fit.

    On a deterministic ELBO, an optimizer without an ELBO safeguard (the Euclidean ones) may
    end below its best iterate: that iterate is returned, and a fall below the starting
    ELBO is a divergence. A converged fit keeps its stationary point.
    """
    n = len(elbos) - 1
    if status == "running":  # a state stepped by hand
        status = "max_iter"
    message = {
        "converged": f"converged after {n} iterations of {optimizer}",
        "max_iter": f"stopped at max_iter = {n} iterations of {optimizer}, not converged: raise "
                    f"max_iter, or try another optimizer",
        "diverged": f"diverged after {n} iterations of {optimizer}: no step could be taken "
                    f"without leaving the domain or making the ELBO non-finite; the last good "
                    f"iterate is returned",
        "interrupted": f"interrupted after {n} iterations of {optimizer}",
    }[status]
    if not deterministic:
        if status == "converged":
            message += (": the natural gradient at the averaged iterate is indistinguishable "
                        "from its Monte Carlo noise")
        elif status == "diverged":
            message = (f"diverged after {n} iterations of {optimizer}: the ELBO collapsed "
                       f"below its best window, or steps kept being halved; the best "
                       f"parameters seen are returned (the mean iterate of the best window, "
                       f"or the start before the first window of {WINDOW} iterations)")
            ev = objective(best) if best else ev
        return status, message, ev
    if status == "converged" or not ev.value < max(elbos):
        return status, message, ev
    if elbos[-1] < elbos[0]:
        status = "diverged"
        message = (f"diverged: the ELBO of {optimizer} fell from {elbos[0]:.6g} at the start to "
                   f"{elbos[-1]:.6g} after {n} iterations")
    ev = objective(best)
    return status, (f"{message}; the best iterate, iteration {int(np.argmax(elbos))} (ELBO "
                    f"{ev.value:.6g}), is returned"), ev


def _with_draw_check(vi, result, max_iter):
    """``result``, with the check of :mod:`natvi.draw_check` when it converged on draws of
    q. On fixed draws: refit on a second set of draws from the optimum, and while the
    optimum moves by more than ``SHIFT_LIMIT`` sds, refit with twice the draws (up to
    ``MAX_DRAWS``). On fixed or fresh draws: the ELBO and Pareto k̂ from fresh draws, and
    the status ``"unreliable"`` where k̂ says q misses posterior mass
    (:func:`natvi.draw_check.verdict`)."""
    engine = vi.engine
    if result.status != "converged" or vi.minibatch or not isinstance(engine, MonteCarlo):
        return result
    moved = None
    if engine.deterministic:
        rng = np.random.default_rng([engine.seed, 1])  # apart from the fit's own draws
        vi, result, moved = _settled(vi, result, max_iter, rng)
        if result.status != "converged":
            return result
    else:
        start = type(vi._rng.bit_generator)()
        start.state = vi._seed_state
        rng = np.random.default_rng([int(np.random.Generator(start).integers(2**63)), 1])
    try:
        check = draw_check.checked(vi.model, result.posterior, rng,
                                   None if moved is None else vi.engine.n_draws, moved)
    except MemoryError as error:  # natvi's own limit on the draws: no check, said so
        result.message = f"{result.message}; not checked on fresh draws ({error})"
        return result
    grown_from = engine.n_draws if moved is not None and vi.engine is not engine else None
    result.draw_check = check
    result.status, advice = draw_check.verdict(check, _real_coordinates(vi), _full_rank(vi))
    joint = " " if check.n_draws is not None else "; "  # "... on M fixed draws; ..."
    prefix = "unreliable: the optimizer " if result.status == "unreliable" else ""
    result.message = f"{prefix}{result.message}{joint}{check.describe(grown_from)}.{advice}"
    return result


def _real_coordinates(vi):
    """How many coordinates the Gaussian factors (also through a bijection) of ``vi`` cover."""
    return sum(factors.size(vi.model.latents, key) for key, cls in vi.families.items()
               if cls.reparameterizable)


def _full_rank(vi):
    """Whether one joint factor covers every coordinate of the Gaussian factors of ``vi``."""
    gaussian = [cls for cls in vi.families.values() if cls.reparameterizable]
    return len(gaussian) == 1 and gaussian[0].joint


def _settled(vi, result, max_iter, rng):
    """(fit, result, shift) on fixed draws once a second set of draws from ``rng`` moves the
    optimum by at most ``SHIFT_LIMIT`` sds, doubling the draws (up to ``MAX_DRAWS``)
    while it moves more; the result is not converged if a grown fit did not converge."""
    engine = vi.engine

    def refit(engine, start):
        other = VI(vi.model, vi.optimizer, family=vi.families, tol=vi.tol, engine=engine)
        return other, other.result(other.run(other.init(start.state.params), max_iter))

    while True:
        _, second = refit(engine.redrawn(rng), result)
        moved = (draw_check.shift(result.posterior, second.posterior)
                 if second.status == "converged" else np.inf)
        if moved <= draw_check.SHIFT_LIMIT or 2 * engine.n_draws > draw_check.MAX_DRAWS:
            return vi, result, moved
        grown, engine = result, engine.redrawn(rng, 2 * engine.n_draws)
        vi, result = refit(engine, grown)
        result.family_reason = grown.family_reason
        if result.status != "converged":
            return vi, result, moved


class DivergenceError(RuntimeError):
    """Raised by ``fit(..., strict=True)`` when no step survives its halvings."""


def _averaged(objective, iterates, last):
    """Evaluation at the mean of the last stochastic iterates (Polyak–Ruppert averaging):
    a constant step leaves the iterates jittering around the optimum, and their mean is
    closer to it. Natural and unconstrained parameter domains are convex, so the mean is
    a valid point; the last iterate is kept if the mean's ELBO estimate is not finite."""
    ev = objective(_mean(iterates))
    return ev if np.isfinite(ev.value) else last
