"""The choices a fit makes before its first step: a family for every latent, an optimizer.

This is the one place outside ``natvi/families/`` that looks at family classes: the
``family`` argument of :func:`natvi.fit` names them, and the default natural-gradient
settings depend on them.
"""

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
    """
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
