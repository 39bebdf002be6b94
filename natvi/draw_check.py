"""How far to trust a fit on fixed draws: the ELBO with fresh draws, and how far its
optimum moves when the draws change.

A fit on M fixed base draws (:class:`natvi.engines.FixedDraws`) finds the optimum of
one Monte Carlo average, which differs from the true ELBO's by O(1/√M) in any one
draw set's noise. :func:`natvi.fit` therefore, after such a fit converges, estimates
the ELBO at the optimum with fresh draws (with its standard error) and refits from the
optimum on a second, independent set of M draws: the largest move of any coordinate's
mean or sd, in posterior sds, is ``shift``. Above :data:`SHIFT_LIMIT` it doubles M (up to
:data:`MAX_DRAWS`) and refits, and says so in the result.

The same fresh draws give the Pareto k̂ of the fit (Yao et al. 2018), confirmed on more
draws where it is high: a converged fit whose k̂ is above PSIS's threshold (2/3 for
1,000 draws, 0.7 for 4,000) is a stationary point of the ELBO whose q misses posterior
mass, and :func:`natvi.fit` calls it ``"unreliable"``, not ``"converged"`` (see
:func:`verdict`).
"""

from typing import NamedTuple

import numpy as np

from natvi import diagnostics, factors
from natvi.validation import check_draws_memory

#: the largest move of the optimum under new draws, in posterior sds, that a fit accepts
SHIFT_LIMIT = 0.1
#: the most base draws a fit grows to
MAX_DRAWS = 256
#: draws of the fresh-draw ELBO estimate and its k̂
FRESH_DRAWS = 1000
#: the largest k̂ from FRESH_DRAWS draws of a reliable fit: PSIS's threshold
#: min(1 − 1/log10 S, 0.7) at S = FRESH_DRAWS (2/3)
K_LIMIT = diagnostics.k_threshold(FRESH_DRAWS)
#: fresh draws that confirm a k̂ above K_LIMIT. k̂ from 1,000 draws varies by about ±0.15
#: (natvi.diagnostics.k_hat_se): on a 52-coordinate hierarchical model one q gave 0.45 to
#: 0.82 over ten sets of 1,000 draws and 0.51 from 4,000, so a verdict from 1,000 alone
#: called a good fit unreliable on every other seed
CONFIRM_DRAWS = 4000


class DrawCheck(NamedTuple):
    """The check of a fit converged on draws of q (fixed or fresh).

    n_draws : int or None, base draws M of the returned fit (None: a fit on fresh draws)
    elbo, elbo_se : float, the ELBO at the returned q from fresh draws, and its standard
        error
    shift : float or None, the largest move of a coordinate's mean or sd, in posterior
        sds, between the optima on two independent sets of M draws (None: fresh draws)
    k_hat : float, the Pareto k̂ of log p(x, z) − log q(z) over fresh draws
    k_draws : int, the fresh draws of ``k_hat``: ``FRESH_DRAWS``, or ``CONFIRM_DRAWS``
        new ones where those gave more than ``K_LIMIT``
    """

    n_draws: int | None
    elbo: float
    elbo_se: float
    shift: float | None
    k_hat: float
    k_draws: int = FRESH_DRAWS

    @property
    def k_limit(self):
        """The largest reliable k̂ from ``k_draws`` draws (PSIS's threshold)."""
        return diagnostics.k_threshold(self.k_draws)

    @property
    def reliable(self):
        """Whether k̂ is at most :attr:`k_limit`."""
        return self.k_hat <= self.k_limit

    def describe(self, grown_from=None):
        """The check in a sentence; ``grown_from``: the draws the fit started with, if it
        grew them."""
        text = f"fresh draws give ELBO {self.elbo:.6g} ± {self.elbo_se:.2g}"
        if self.n_draws is not None:
            settled = ("within" if self.shift <= SHIFT_LIMIT else "more than")
            grown = f" (grown from {grown_from})" if grown_from else ""
            text = (f"on {self.n_draws} fixed draws{grown}; {text}, and a second set of "
                    f"draws moves the optimum by {self.shift:.2g} posterior sd ({settled} "
                    f"{SHIFT_LIMIT})")
        return f"{text}; Pareto k̂ = {self.k_hat:.2f} from {self.k_draws} fresh draws"


def checked(model, posterior, rng, n_draws=None, shift=None):
    """The :class:`DrawCheck` of ``posterior``, a fit of ``model`` on ``n_draws`` fixed
    draws whose optimum moved by ``shift`` (None, None: on fresh draws): the ELBO and k̂
    from ``FRESH_DRAWS`` fresh draws of q drawn with ``rng``, and k̂ from
    ``CONFIRM_DRAWS`` more where that is above ``K_LIMIT`` (and they fit in memory).
    MemoryError where not even ``FRESH_DRAWS`` fit under natvi's memory limit."""
    if not _fits(model, FRESH_DRAWS):
        raise MemoryError(f"{FRESH_DRAWS} draws of q would not fit in natvi's memory limit")
    elbo, se, k_hat = fresh_elbo(model, posterior, rng)
    k_draws = FRESH_DRAWS
    if k_hat > K_LIMIT and _fits(model, CONFIRM_DRAWS):  # else the first k̂ stands
        k_hat, k_draws = fresh_elbo(model, posterior, rng, CONFIRM_DRAWS)[2], CONFIRM_DRAWS
    return DrawCheck(n_draws, elbo, se, shift, k_hat, k_draws)


def _fits(model, draws):
    """Whether ``draws`` draws of q fit under natvi's memory limit (check_draws_memory)."""
    try:
        check_draws_memory(model, draws)
    except ValueError:
        return False
    return True


def verdict(check, coordinates, full_rank):
    """What a converged fit's ``check`` (a :class:`DrawCheck`) says of it: (status,
    sentence). ``"converged"`` while k̂ is at most the check's limit; above,
    ``"unreliable"``: the optimizer reached a stationary point, but q misses posterior
    mass, and its means and sds may be off by more than a posterior sd
    (examples/custom_models_benchmark.py counts both kinds of error of this verdict on the
    reference models). ``coordinates``: how many coordinates the fit's Gaussian factors
    cover; ``full_rank``: whether one joint factor covers them all (the advice then is not
    to try one)."""
    if check.reliable:
        return "converged", ""
    tries = (["family=natvi.FullRankGaussian"] if coordinates > 1 and not full_rank else
             ["another family for the latent (e.g. natvi.Gamma for a positive one)"]
             if coordinates == 1 else [])
    tries.append("reparameterizing the model (e.g. non-centered)")
    return "unreliable", (
        f" Unreliable: k̂ is above {check.k_limit:.2f}, so q misses posterior mass (in a "
        f"tail, a correlation or a mode) and its means and sds may be off by more than a "
        f"posterior sd; "
        f"importance-weighted estimates (result.importance()) are safer. Try "
        f"{', or '.join(tries)}.")


def fresh_elbo(model, posterior, rng, draws=FRESH_DRAWS):
    """(estimate, standard error, Pareto k̂) of the ELBO at ``posterior`` from ``draws``
    fresh draws of q drawn with ``rng``: the mean and standard error of the log weights
    log p(x, z) − log q(z), and the Pareto k̂ of their tail."""
    draws = check_draws_memory(model, draws)
    z, log_q = {}, 0.0
    for key, q in posterior.items():
        x = q.sample(rng, draws)  # log q from x itself: z → x can round where z saturates
        z.update(factors.to_latents(model.latents, key, q, x))
        lp = np.reshape(q.log_prob(x), (draws, -1)).sum(axis=1)
        log_q = log_q + lp - factors.log_det_jacobian(model.latents, key, q, x)
    z = {name: z[name] for name in model.latents}
    with np.errstate(all="ignore"):
        weights = model.log_joint(z) - log_q
    if not np.all(np.isfinite(weights)):
        return -np.inf, np.inf, np.inf
    return (float(weights.mean()), float(weights.std(ddof=1) / np.sqrt(draws)),
            diagnostics.pareto_k(weights, np.zeros_like(weights)))


def shift(posterior, other):
    """The largest |difference of means| or of sds, in the sds of ``posterior``, over the
    Gaussian coordinates of two posteriors with the same factors."""
    worst = 0.0
    for key, q in posterior.items():
        loc, sd = q.location_scale()
        other_loc, other_sd = other[key].location_scale()
        moved = np.maximum(np.abs(other_loc - loc), np.abs(other_sd - sd)) / sd
        worst = max(worst, float(np.max(moved)))
    return worst
