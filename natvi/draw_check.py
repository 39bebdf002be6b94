"""How far to trust a fit on fixed draws: the ELBO with fresh draws, and how far its
optimum moves when the draws change.

A fit on M fixed base draws (:class:`natvi.engines.FixedDraws`) finds the optimum of
one Monte Carlo average, which differs from the true ELBO's by O(1/√M) in any one
draw set's noise. :func:`natvi.fit` therefore, after such a fit converges, estimates
the ELBO at the optimum with fresh draws (with its standard error) and refits from the
optimum on a second, independent set of M draws: the largest move of any coordinate's
mean or sd, in posterior sds, is ``shift``. Above :data:`SHIFT_LIMIT` it doubles M (up to
:data:`MAX_DRAWS`) and refits, and says so in the result.

The same fresh draws give the Pareto k̂ of the fit (Yao et al. 2018): a converged fit of
a model whose k̂ is above 0.7 is a stationary point of the ELBO whose q is far from the
posterior, and :func:`natvi.fit` calls it ``"unreliable"``, not ``"converged"`` (see
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
#: the largest k̂ of a reliable fit: PSIS's threshold min(1 − 1/log10 S, 0.7) at S =
#: FRESH_DRAWS (2/3)
K_LIMIT = diagnostics.k_threshold(FRESH_DRAWS)


class DrawCheck(NamedTuple):
    """The check of a fit converged on draws of q (fixed or fresh).

    n_draws : int or None, base draws M of the returned fit (None: a fit on fresh draws)
    elbo, elbo_se : float, the ELBO at the returned q from fresh draws, and its standard
        error
    shift : float or None, the largest move of a coordinate's mean or sd, in posterior
        sds, between the optima on two independent sets of M draws (None: fresh draws)
    k_hat : float, the Pareto k̂ of log p(x, z) − log q(z) over the same fresh draws
    """

    n_draws: int
    elbo: float
    elbo_se: float
    shift: float
    k_hat: float

    @property
    def reliable(self):
        """Whether k̂ is at most :data:`K_LIMIT`."""
        return self.k_hat <= K_LIMIT

    def describe(self):
        """The check in a sentence."""
        text = f"fresh draws give ELBO {self.elbo:.6g} ± {self.elbo_se:.2g}"
        if self.n_draws is not None:
            settled = ("within" if self.shift <= SHIFT_LIMIT else "more than")
            text = (f"on {self.n_draws} fixed draws; {text}, and a second set of draws moves "
                    f"the optimum by {self.shift:.2g} posterior sd ({settled} {SHIFT_LIMIT})")
        return f"{text}; Pareto k̂ = {self.k_hat:.2f}"


def verdict(check, full_rank):
    """What a converged fit's ``check`` (a :class:`DrawCheck`) says of it: (status,
    sentence). ``"converged"`` while k̂ is at most :data:`K_LIMIT`; above, ``"unreliable"``:
    the optimizer reached a stationary point, but q misses posterior mass, and its means
    and sds may be off by more than a posterior sd (examples/custom_models_benchmark.py
    counts both kinds of error of this verdict on the reference models). ``full_rank``:
    whether the fit's real latents already share one full-rank factor, so that the
    advice is not to try one."""
    if check.reliable:
        return "converged", ""
    advice = ("reparameterizing the model (e.g. non-centered)" if full_rank else
              "family=natvi.FullRankGaussian, or reparameterizing the model")
    return "unreliable", (
        f" Unreliable: Pareto k̂ = {check.k_hat:.2f} is above {K_LIMIT:.2f}, so q misses "
        f"posterior mass (in a tail, a correlation or a mode) and its means and sds may be "
        f"off by more than a posterior sd; importance-weighted estimates "
        f"(result.importance()) are safer. Try {advice}.")


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
