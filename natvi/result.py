"""What a fit returns: the posterior, the ELBO trace, draws, k̂ and ArviZ output."""


import math
import os
import warnings

import numpy as np

from natvi import arviz_bridge, diagnostics, factors, predictive, serialization
from natvi.importance import ImportanceDraws
from natvi.model import Model, standard_factor
from natvi.validation import as_rng, check_draws_memory, check_positive_int

#: multiply-adds of log p(x, z) that the default number of draws of a k̂ may cost
DRAWS_BUDGET = 2e10


class FitResult:
    """The outcome of :func:`natvi.fit`.

    Attributes
    ----------
    posterior : dict
        {factor key: family instance}, the fitted variational posterior: the key is the
        latent's name, or a tuple of names for a joint factor (see :mod:`natvi.factors`).
        On a stochastic ELBO, the average of the last 50 iterates' parameters.
    elbo : float
        Final ELBO: the full bound on log p(x), constants included (on a stochastic ELBO,
        an estimate at the returned posterior).
    history : dict of ndarray
        Per iteration, starting with the initial point: ``elbo``, ``step_size``,
        ``grad_evals`` (cumulative ELBO-and-gradient evaluations), ``seconds``
        (cumulative) and ``rejected`` (steps halved or refused at that iteration).
    status : str
        ``"converged"``, ``"unreliable"`` (converged, but the Pareto k̂ of the check made
        on draws of q, ``draw_check``, says q is far from the posterior), ``"max_iter"``,
        ``"diverged"`` (no step could be taken without leaving the domain or making the
        ELBO non-finite; the last good parameters are kept) or ``"interrupted"``
        (KeyboardInterrupt).
    n_iter : int
        Optimizer steps taken.
    gain : float
        ½⟨∇_μ L, F ∇_μ L⟩ at the end: what one more natural-gradient step would gain.
    model : natvi.Model
        The model that was fitted.
    optimizer : str
        Name of the optimizer, e.g. ``"ngd(1)"`` or ``"adam(0.01)"``.
    family_reason : str or None
        Why the posterior has the families it has (``fit(..., family="auto")`` says what
        the model chose and why); None for a result loaded from a file written without it.
    message : str
        The status in a sentence, e.g. which iterate is returned when the ELBO fell.
    state : natvi.fit_state.FitState or None
        The fit's last state, to continue it with ``natvi.fit(..., init_state=state)``;
        None for a result loaded from a file.
    draw_check : natvi.draw_check.DrawCheck or None
        For a fit of a ``natvi.Model`` converged on draws of q (fixed or fresh, not
        minibatches): the ELBO from fresh draws with its standard error, their Pareto k̂,
        and on fixed draws how far the optimum moves under other draws; None otherwise.
    """

    def __init__(self, *, model, posterior, elbo, history, status, n_iter, optimizer, gain,
                 family_reason=None, message=None, state=None):
        self.model = model
        self.posterior = posterior
        self.elbo = float(elbo)
        self.history = history
        self.status = status
        self.n_iter = int(n_iter)
        self.optimizer = optimizer
        self.gain = float(gain)
        self.family_reason = family_reason
        self.message = message or status
        self.state = state
        self.draw_check = None

    @property
    def converged(self):
        """True when ``status`` is ``"converged"``."""
        return self.status == "converged"

    def sample(self, draws=1000, seed=0):
        """Independent posterior draws: {latent name: array (draws, *shape)}.

        Parameters
        ----------
        draws : int
            Number of draws.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator
            The same seed gives the same draws.

        Raises ValueError, before drawing, when the draws would not fit in memory (see
        :func:`natvi.validation.check_draws_memory`).
        """
        draws = check_draws_memory(self.model, draws)
        rng = as_rng(seed)
        out = {}
        for key, q in self.posterior.items():
            z = q.sample(rng, draws)
            out.update(factors.to_latents(self.model.latents, key, q, z))
        return {name: out[name] for name in self.model.latents}

    def log_q(self, draws):
        """log q(z) at each draw of ``draws`` ({name: (S, *shape)}), shape (S,); the density
        of latents on their own supports (a joint factor's bijections included)."""
        lead = (len(next(iter(draws.values()))),)
        return sum(factors.log_prob(self.model.latents, key, q, draws, lead)
                   for key, q in self.posterior.items())

    def default_draws(self):
        """Draws from q that :meth:`pareto_k`, :meth:`diagnose` and :meth:`importance` take
        by default: 4000, else 2000, else 1000, the most whose log p(x, z) costs at most
        :data:`DRAWS_BUDGET` multiply-adds (draws × observed values × latent values).

        k̂'s seed-to-seed spread shrinks only as S^(−1/4) (±0.15 at 1000 draws, ±0.1 at
        4000: examples/diagnostics_stability.py), while its cost grows as S: on 2 cores,
        4000 draws of a 100,000 × 50 logistic regression take ~15 s, and 1000 draws of
        1,000,000 × 100 (the default there) 30–50 s.
        """
        n = max(1, sum(int(np.size(v)) for v in self.model.observed_data.values()))
        k = sum(math.prod(lat.shape) for lat in self.model.latents.values())
        return next((s for s in (4000, 2000) if s * n * k <= DRAWS_BUDGET), 1000)

    def pareto_k(self, draws=None, seed=0):
        """PSIS Pareto k̂ of log p(x, z) − log q(z) over ``draws`` draws (Yao et al. 2018).

        Below 0.5 the draws are as good as exact posterior draws for most purposes;
        above 0.7 the approximation is unreliable. See :func:`natvi.diagnostics.verdict`.

        Parameters
        ----------
        draws : int, optional
            Number of draws from q, at least 25 (PSIS fits the largest ~20% of the weights);
            by default :meth:`default_draws`.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator
            Seed of the draws; the same seed gives the draws of :meth:`sample`.

        Raises ValueError, before drawing, when the draws and log p(x, z) at them would not
        fit in memory (see :func:`natvi.validation.check_draws_memory`).
        """
        _, log_p, log_q = self._draws_with_log_densities(draws, seed, "log_joint")
        return diagnostics.pareto_k(log_p, log_q)

    def diagnose(self, draws=None, seed=0, suggestions=None):
        """Pareto k̂ of the fit and what it means, in words (and what to try when k̂ > 0.7).

        Parameters
        ----------
        draws : int, optional
            Number of draws from q, at least 25, that fit in memory (as for :meth:`pareto_k`);
            by default :meth:`default_draws`.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator
            Seed of the draws.
        suggestions : list of str, optional
            What to try when k̂ is high, in the caller's words (the ``natvi`` command names
            its options); default: a full-rank family (when q has a mean-field Gaussian
            factor), more draws, and the model's reparameterization hint.

        Returns
        -------
        Diagnosis
            ``k_hat`` (float) and ``message`` (str), from :func:`natvi.diagnostics.verdict`.
        """
        draws = self.default_draws() if draws is None else draws
        k_hat = self.pareto_k(draws, seed)
        tries = []
        if any(q.support == "real" and not q.joint for q in self.posterior.values()):
            tries.append("a full-rank family (fit(..., family=natvi.FullRankGaussian))")
        tries.append("more draws")
        hint = getattr(self.model, "reparameterization_hint",
                       "reparameterizing the model (e.g. non-centered)")
        if hint:
            tries.append(hint)
        return diagnostics.Diagnosis(k_hat, diagnostics.verdict(
            k_hat, draws, tries if suggestions is None else suggestions),
            diagnostics.k_hat_se(k_hat, draws))

    def importance(self, draws=None, seed=0):
        """PSIS-corrected estimates of the true posterior from ``draws`` draws of q.

        The draws are weighted by p(x, z) / q(z), Pareto-smoothed (Yao et al. 2018); while
        k̂ < min(1 − 1/log10 S, 0.7) their weighted means, sds and quantiles estimate the
        posterior's, not q's (a UserWarning says when they do not).

        Parameters
        ----------
        draws : int, optional
            Number of draws from q, at least 25, that fit in memory with log p(x, z); by
            default :meth:`default_draws`.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator
            Seed of the draws; the same seed gives the draws of :meth:`sample`.

        Returns
        -------
        natvi.importance.ImportanceDraws
            ``mean()``, ``sd()``, ``quantile(q)``, ``resample(n)``, ``summary()``, with
            ``k_hat``, ``ess`` and ``weights``.
        """
        z, log_p, log_q = self._draws_with_log_densities(draws, seed, "log_joint")
        return ImportanceDraws(z, log_p - log_q)

    def _draws_with_log_densities(self, draws, seed, log_density):
        draws = self.default_draws() if draws is None else draws
        if check_positive_int(draws, "draws") < diagnostics.MIN_DRAWS:
            raise ValueError(f"draws: expected at least {diagnostics.MIN_DRAWS} for a Pareto "
                             f"tail fit, got {draws}")
        check_draws_memory(self.model, draws, log_density=log_density)
        z = self.sample(draws, seed)
        return z, self.model.log_joint(z), self.log_q(z)

    def to_arviz(self, draws=1000, seed=0, psis=False, posterior_predictive=False):
        """Draws as ArviZ's own object: ``InferenceData`` (ArviZ 0.x) or ``DataTree`` (≥ 1.0).

        Groups: ``posterior`` (one chain), ``log_likelihood`` (when the model has it),
        ``observed_data``, and ``sample_stats`` with ``lp`` = log p(x, z) and
        ``log_q`` = log q(z) per draw, for PSIS diagnostics and approximate-posterior LOO.
        The posterior group's attributes say which draws it holds: ``natvi_draws`` is
        ``"q"`` or ``"psis_resampled"``, with ``natvi_description`` in words.

        Parameters
        ----------
        draws : int
            Number of draws, stored as one chain.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator
            Seed of the draws; the same seed gives the draws of :meth:`sample`.
        psis : bool
            Hold ``draws`` draws resampled from ``draws`` draws of q by their Pareto-smoothed
            importance weights (see :meth:`importance`; systematic resampling, so some draws
            repeat): approximately draws of the true posterior where k̂ is small, for
            summaries and plots. Not for LOO: PSIS-LOO cannot fit a tail to repeated draws
            (ArviZ 0.x's ``loo`` gives NaN); use :meth:`to_arviz` without ``psis`` and
            :func:`natvi.diagnostics.loo_approximate_posterior`.
        posterior_predictive : bool
            Add the group ``posterior_predictive``: a replicated data set ``y`` per draw,
            from the model's likelihood (for ArviZ's ``plot_ppc`` and ``loo_pit``), drawn
            from the generator of ``seed`` after the posterior draws. The regressions of
            :mod:`natvi.models` have it.

        Raises ValueError, before drawing, when the draws and log p(x, z) at them (and the
        replicated data) would not fit in memory (see
        :func:`natvi.validation.check_draws_memory`). Memory: never more than
        :func:`natvi.validation.memory_limit` (half the memory free, or
        ``NATVI_MAX_BYTES``). When the pointwise log-likelihood (draws × N values) would
        exceed it, the ``log_likelihood`` group is left out with a UserWarning saying so,
        and the posterior group's ``natvi_log_likelihood`` attribute says why: PSIS-LOO at
        that size is :func:`natvi.loo_subsample`.
        """
        extra = None
        if posterior_predictive:
            predictive.check_predictive(self.model, "posterior_predictive")
            extra = ("replicated data", lambda s: predictive.replicate_memory(self.model, s))
        try:
            check_draws_memory(self.model, draws, log_density="pointwise_log_likelihood",
                               extra=extra)
            left_out = None
        except ValueError as exc:  # the draws themselves must still fit (else this raises)
            check_draws_memory(self.model, draws, log_density="log_joint", extra=extra)
            left_out = (f"left out: {exc}. For PSIS-LOO at this size use "
                        f"natvi.loo_subsample(result, observations=...)")
            warnings.warn(f"to_arviz: the log_likelihood group is {left_out}", UserWarning,
                          stacklevel=2)
        rng = as_rng(seed)
        z = self.sample(draws, rng)
        log_p, log_q = self.model.log_joint(z), self.log_q(z)
        attrs = {"natvi_draws": "q", "natvi_description": f"{draws} independent draws from "
                 f"the variational posterior q ({self.family_reason or 'natvi fit'})"}
        if psis:
            weighted = ImportanceDraws(z, log_p - log_q)
            index = weighted.resample_index(draws, seed)
            z = {name: value[index] for name, value in z.items()}
            log_p, log_q = log_p[index], log_q[index]
            attrs = {"natvi_draws": "psis_resampled", "natvi_k_hat": weighted.k_hat,
                     "natvi_ess": weighted.ess, "natvi_description": (
                         f"{draws} draws resampled from {draws} draws of q by their "
                         f"Pareto-smoothed importance weights (k̂ = {weighted.k_hat:.2f}, ESS "
                         f"= {weighted.ess:.0f}"
                         f"{'' if weighted.reliable else ', unreliable'}): approximately "
                         f"draws of the posterior, for summaries and plots; not for LOO "
                         f"(draws repeat): to_arviz() without psis")}
        if left_out:
            attrs["natvi_log_likelihood"] = left_out
        pointwise = None if left_out else self.model.pointwise_log_likelihood(z)
        replicated = predictive.replicate(self.model, z, rng) if posterior_predictive else None
        return arviz_bridge.to_arviz(self.model, {**z, **self.model.deterministics(z)}, log_p,
                                     log_q, pointwise, attrs, replicated)

    def predict(self, X_new, draws=1000, seed=0, prob=0.94, exposure=None):
        """Predictions at new rows: the linear predictor and the response, with intervals.

        Parameters
        ----------
        X_new : array_like or pandas.DataFrame, shape (M, D)
            New rows, checked as the training X was: a DataFrame needs the training columns
            by name (a model from a formula builds them from the formula's variables, with
            the fitted coding), anything else the training width.
        draws : int
            Posterior draws, each giving one replicated response per row.
        seed : int, numpy.random.SeedSequence or numpy.random.Generator
            Seed of the draws (posterior draws, then the replicated responses).
        prob : float
            Probability mass of the equal-tailed intervals, in (0, 1).
        exposure : array_like, shape (M,), optional
            Exposures of the new rows, for models with exposures (Poisson); ones if None.

        Returns
        -------
        natvi.predictive.Prediction
            ``linear_predictor`` and ``response`` (each ``mean``, ``lower``, ``upper`` per
            row), the draws, ``to_dataframe()`` and ``to_arviz()`` (groups ``predictions``
            and ``predictions_constant_data``).

        Raises ValueError naming the argument for rows that do not match the training X,
        and, before drawing, when the draws would not fit in memory.
        """
        return predictive.predict(self, X_new, draws, seed, prob, exposure)

    def save(self, path):
        """Write the result to ``path`` (``.npz`` with JSON metadata, no pickle).

        Saved: the posterior (every factor's family and natural parameters), the latents,
        ELBO, history, status and its message, iterations, optimizer name, gain and the
        reason for the families. Not saved: the model
        (its data and code); pass it to :func:`natvi.load` to compute log densities again.
        ``path`` must not be a directory (IsADirectoryError) and its directory must exist
        (ValueError).
        """
        path = serialization.check_path(path, "path", writable=True)
        keys = list(self.posterior)
        arrays = {}
        serialization.put_tree(arrays, "natural", {k: q.natural for k, q in
                                                   self.posterior.items()}, keys)
        for name, values in self.history.items():
            arrays[f"history|{name}"] = np.asarray(values)
        meta = {
            "latents": serialization.encode_latents(self.model.latents),
            "factors": serialization.encode_factors({k: type(q) for k, q in
                                                     self.posterior.items()}),
            "history": list(self.history),
            "elbo": self.elbo, "status": self.status, "n_iter": self.n_iter,
            "optimizer": self.optimizer, "gain": self.gain,
            "family_reason": self.family_reason, "message": self.message,
        }
        serialization.write(path, "result", meta, arrays)

    def summary(self):
        """The fit in a few lines: status, ELBO, cost, and the family and why."""
        hist = self.history
        lines = [f"natvi fit: {self.message}",
                 f"  ELBO (a lower bound on log p(x)): {self.elbo:.6g}",
                 f"  {int(hist['grad_evals'][-1])} ELBO evaluations, "
                 f"{float(hist['seconds'][-1]):.2f} s"]
        families = ", ".join(f"{'(' + ', '.join(k) + ')' if isinstance(k, tuple) else k}: "
                             f"{type(q).__name__}" for k, q in self.posterior.items())
        lines.append(f"  family: {families}")
        if self.family_reason:
            lines.append(f"    ({self.family_reason})")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    def __repr__(self):
        return (f"FitResult(status={self.status!r}, elbo={self.elbo:.6g}, n_iter={self.n_iter}, "
                f"optimizer={self.optimizer!r}, latents={list(self.posterior)})")


class SavedModel:
    """Stand-in for the model of a result loaded without it: latents only."""

    deterministic = False
    observed_data, coords, dims = {}, {}, {}

    def __init__(self, latents):
        self.latents = latents

    def deterministics(self, draws):
        return {}

    def _missing(self, *args):
        raise ValueError("model: this result was loaded without its model; pass it as "
                         "natvi.load(path, model=...) to compute log densities")

    log_joint = pointwise_log_likelihood = log_density_memory = _missing


#: the statuses a fit ends with
STATUSES = ("converged", "unreliable", "max_iter", "diverged", "interrupted")


def load(path, model=None):
    """A :class:`FitResult` written by :meth:`FitResult.save`.

    Parameters
    ----------
    path : str or path
        The file.
    model : natvi.model.Model, optional
        The model the result was fitted to (its latents must match); needed by
        ``pareto_k``, ``diagnose`` and ``to_arviz``, not by ``sample``.
    """
    if model is not None and not isinstance(model, Model):
        raise ValueError(f"model: expected a natvi Model or None, got {type(model).__name__}")
    meta, arrays = serialization.read(path, "result")
    try:
        latents = serialization.decode_latents(serialization.field(meta, "latents"))
        families = serialization.decode_factors(serialization.field(meta, "factors"), latents)
        posterior = {key: _factor(arrays, i, key, cls, latents)
                     for i, (key, cls) in enumerate(families.items())}
        n_iter = serialization.number(meta, "n_iter", integer=True, nonnegative=True)
        history = serialization.get_history(meta, arrays, n_iter)
        fields = {"elbo": serialization.number(meta, "elbo"),
                  "status": serialization.choice(meta, "status", STATUSES),
                  "n_iter": n_iter, "optimizer": _optimizer_name(meta),
                  "gain": serialization.number(meta, "gain", nonnegative=True, nonfinite=True),
                  "family_reason": _optional_text(meta, "family_reason"),
                  "message": _optional_text(meta, "message")}
    except serialization.Damaged as exc:
        raise ValueError(f"path: {os.fspath(path)!r} is a damaged natvi result: {exc}") from None
    except Exception as exc:  # any other inconsistency of a damaged file
        raise ValueError(f"path: {os.fspath(path)!r} is a damaged natvi result "
                         f"({type(exc).__name__}: {exc})") from None
    if model is None:
        model = SavedModel(latents)
    elif serialization.encode_latents(model.latents) != meta["latents"]:
        raise ValueError(f"model: its latents {serialization.encode_latents(model.latents)} "
                         f"are not those of the saved result, {meta['latents']}")
    return FitResult(model=model, posterior=posterior, history=history, **fields)


def _factor(arrays, i, key, cls, latents):
    """Factor ``key`` of family ``cls`` from its natural parameters, member ``natural|i``."""
    member = f"natural|{i}"
    natural = serialization.array(arrays, member)
    # Natural parameters hold at least a number per latent value (d + d² for a joint
    # Gaussian): checked before building a standard member, which would otherwise take
    # whatever memory hand-edited latent shapes ask for.
    values = sum(math.prod(latents[name].shape) for name in factors.latent_names(key))
    if values ** (2 if cls.joint else 1) > natural.size:
        raise serialization.Damaged(f"{member} holds {natural.size} numbers, too few for "
                                    f"factor {key!r} over {values} latent values")
    expected = standard_factor(cls, latents, key).natural.shape
    if natural.shape != expected:
        raise serialization.Damaged(f"{member} has shape {natural.shape}, factor {key!r} "
                                    f"needs {expected}")
    try:
        return cls.from_natural(natural)
    except ValueError as exc:
        raise serialization.Damaged(f"{member} is outside {cls.__name__}'s domain "
                                    f"({exc})") from None


def _optional_text(meta, key):
    """``meta[key]``, a line of text, or None (also for files written before natvi wrote
    it)."""
    text = meta.get(key)
    if text is not None and not (isinstance(text, str) and text.isprintable()):
        raise serialization.Damaged(f"{key} must be a line of text or null, got {text!r}")
    return text


def _optimizer_name(meta):
    """The optimizer's name: any non-empty line of text, as a custom optimizer's name is
    free-form (natvi's read like "adam(0.01)" or "ngd-anderson(30, 0.8)"); it only labels
    output, so nothing stricter is needed."""
    name = serialization.field(meta, "optimizer")
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise serialization.Damaged(f"optimizer must be a name on one line, got {name!r}")
    return name
