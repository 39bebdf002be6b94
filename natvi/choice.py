"""The choices a fit makes before its first step: a family for every latent, an optimizer.

This is the one place outside ``natvi/families/`` that looks at family classes: the
``family`` argument of :func:`natvi.fit` names them, and the default natural-gradient
settings depend on them.
"""

from natvi.engines import Minibatch
from natvi.factors import CONTINUOUS, covers, latent_names
from natvi.families import (
    Bernoulli,
    Categorical,
    Dirichlet,
    LogitNormal,
    LogNormal,
    MeanFieldGaussian,
)
from natvi.families.base import ExponentialFamily
from natvi.optim import SHORTCUTS, Optimizer, anderson, natural_gradient

#: the family each support gets unless the model or the caller picks one
DEFAULT_FAMILIES = {"real": MeanFieldGaussian, "positive": LogNormal, "unit_interval": LogitNormal,
                    "simplex": Dirichlet, "binary": Bernoulli, "categorical": Categorical}


#: minibatch natural gradients: the constant step times the minibatches per pass (the step
#: after the first steps, which average the first minibatches' targets), and its largest value;
#: see :func:`default_natural_gradient`
MINIBATCH_STEP_PASSES, MINIBATCH_STEP_MAX = 20.0, 1.0
#: the largest constant step of minibatch natural gradients over fresh Monte Carlo draws
MINIBATCH_STEP_MONTE_CARLO = 0.05


def families_for(model, family):
    """({factor key: family class} in the order of the model's latents, the reason for the
    choice), from the ``family`` argument of :func:`natvi.fit`."""
    family, reason = _auto_family(model, family)
    return _resolve_families(model, family), reason


def optimizer_for(optimizer, engine, families):
    """The :class:`natvi.optim.Optimizer` the ``optimizer`` argument of :func:`natvi.fit`
    stands for, on the fit's ``engine`` and ``families``."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        if optimizer not in SHORTCUTS:
            raise ValueError(f"optimizer: expected one of {sorted(SHORTCUTS)} or a "
                             f"natvi.optim optimizer, got {optimizer!r}")
        if SHORTCUTS[optimizer] is natural_gradient:
            return default_natural_gradient(engine, families)
        return SHORTCUTS[optimizer]()
    raise ValueError(f"optimizer: expected a name or a natvi.optim optimizer, got "
                     f"{type(optimizer).__name__}")


def default_natural_gradient(engine, families):
    """The natural-gradient settings ``"ngd"`` stands for, given the fit's engine and
    families.

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
    a line search from ρ = 1 with Fisher-conjugate directions. On fixed draws
    (:class:`natvi.engines.FixedDraws`), whose Monte Carlo curvature makes a full-rank
    step far from Newton's: Anderson, for every family there. It was faster than the line
    search on 9 of the 10 reference models of examples/reference_models.py with mean-field
    Gaussian, LogNormal and LogitNormal factors (e.g. 1.0 s against 2.3, 9.7 against 26.4;
    on the 26 collinear predictors 592 iterations against more than 1000) and as fast on
    the tenth, and with one full-rank Gaussian over eight schools took 31 iterations
    against 72 (non-centered) and 43 against 213 (centered). On a stochastic ELBO: a
    constant step of 0.1, which measured best of constant 0.05 and 0.1 and Robbins–Monro
    schedules 0.5 (t + 1)^−0.7 and 0.1 (t + 10)^−0.55 on eight schools (centered and not)
    and on normal and Student-t models of Newcomb's data: the decaying schedules stalled
    far from the optimum, and a first step of 0.5 overshot by ten orders of magnitude in
    the ELBO. Each factor takes its family's ``natural_step`` there (for Gaussians, one
    whose precision stays positive definite; examples/stable_steps.py).

    On minibatches (:class:`natvi.engines.Minibatch`): ρ_t = max(1/(t + 1), c) with
    c = min(1, 20/n_b) for n_b minibatches per pass, and plain steps (a minibatch's target
    precision is positive definite for the GLMs, and the first steps' 1/(t + 1) then
    average the minibatches' targets exactly). The mean of a pass's iterates is off by a
    noise term that falls as 1/(c n_b) and a bias that grows as c n_b. Measured on 10⁶
    logistic rows in 1,000 minibatches (examples/minibatch.py --steps, docs/minibatch.txt):
    c n_b = 20 left 0.016, 0.0064, 0.0046 nats after passes 1–3; 40 was better after one
    pass (0.0105) but stayed at 0.010, 10 and 80 were worse throughout, and Robbins–Monro
    steps c (1 + t/n_b)^−κ (κ = 1, 0.6) reached 0.044 and 0.014 after four passes. On
    10⁵ rows in 10 minibatches c = 1 was best of 0.25, 0.5 and 1. Over fresh Monte Carlo
    draws (``engine="monte_carlo"``) c is at most 0.05: on a 20,000-row logistic model in
    minibatches of 200, c = 0.2 diverged and 0.05 came within 0.33 nats in five passes.
    """
    if isinstance(engine, Minibatch):
        step = min(MINIBATCH_STEP_MAX, MINIBATCH_STEP_PASSES / engine.n_batches)
        if not engine.full.deterministic:
            step = min(step, MINIBATCH_STEP_MONTE_CARLO)
        return natural_gradient(step, warm_start=True, family_steps=False)
    if not engine.deterministic:
        return natural_gradient(0.1)
    if all(f is MeanFieldGaussian for f in families.values()) or (
            engine.transforms and all(f.reparameterizable for f in families.values())):
        return anderson()
    return natural_gradient(1.0, conjugate=not any(f.joint for f in families.values()))


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
    transforms = model.engine.transforms
    chosen = _chosen(latents, family, transforms)
    owner = {}
    for key in chosen:
        for name in latent_names(key):
            if name in owner:
                raise ValueError(f"family: latent {name!r} is in two factors, {owner[name]!r} "
                                 f"and {key!r}")
            owner[name] = key
    out = {}
    for name in latents:
        key = owner.get(name, name)
        if key not in out:
            out[key] = _checked(latents, key, chosen.get(key) or model.default_families.get(
                name) or DEFAULT_FAMILIES[latents[name].support], transforms)
    return out


def _chosen(latents, family, transforms):
    """{factor key: family class} the caller's ``family`` argument names; a joint family
    covers every continuous latent on an engine that ``transforms`` them, else the real
    ones."""
    names = list(latents)
    if family is None:
        return {}
    if isinstance(family, dict):
        chosen = {}
        for key, cls in family.items():
            covered = latent_names(key)
            unknown = [n for n in covered if n not in latents]
            if unknown or not covered:
                raise ValueError(f"family: unknown latent name(s) {unknown or [key]}; the model "
                                 f"has {names}")
            chosen[covered[0] if len(covered) == 1 else tuple(covered)] = cls
        return chosen
    if not (isinstance(family, type) and issubclass(family, ExponentialFamily)):
        raise ValueError(f"family: expected a natvi family class or a dict {{latent name: "
                         f"family class}}, got {family!r}")
    matching = [n for n in names if covers(family, latents[n].support, transforms)]
    if not matching:
        raise ValueError(f"family: {family.__name__} has support {family.support!r}, which "
                         f"none of the latents {_supports(latents)} has")
    if family.joint and len(matching) > 1:
        return {tuple(matching): family}  # one joint factor keeps the correlations
    return dict.fromkeys(matching, family)


def _checked(latents, key, fam, transforms):
    """``fam``, checked to be a family that can cover the latents of factor ``key`` (through
    bijections when the engine ``transforms`` them)."""
    if not (isinstance(fam, type) and issubclass(fam, ExponentialFamily)):
        raise ValueError(f"family: expected a natvi family class for {key!r}, got {fam!r}")
    if isinstance(key, tuple) and not fam.joint:
        raise ValueError(f"family: only a FullRankGaussian covers several latents jointly, "
                         f"got {fam.__name__} for {key!r}")
    for n in latent_names(key):
        if not covers(fam, latents[n].support, transforms):
            also = (" (a joint family covers positive, unit-interval and simplex latents "
                    "through bijections on the fixed-draw and Monte Carlo engines only)"
                    if fam.joint and latents[n].support in CONTINUOUS else "")
            raise ValueError(f"family: {fam.__name__} has support {fam.support!r} but latent "
                             f"{n!r} has support {latents[n].support!r}{also}")
    return fam


def _supports(latents):
    return {name: latent.support for name, latent in latents.items()}
