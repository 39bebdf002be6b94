"""How far to trust a fit on fixed draws: the ELBO with fresh draws, and how far its
optimum moves when the draws change.

A fit on M fixed base draws (:class:`natvi.engines.FixedDraws`) finds the optimum of
one Monte Carlo average, which differs from the true ELBO's by O(1/√M) in any one
draw set's noise. :func:`natvi.fit` therefore, after such a fit converges, estimates
the ELBO at the optimum with fresh draws (with its standard error) and refits from the
optimum on a second, independent set of M draws: the largest move of any coordinate's
mean or sd, in posterior sds, is ``shift``. Above :data:`SHIFT_LIMIT` it doubles M (up to
:data:`MAX_DRAWS`) and refits, and says so in the result.
"""

from typing import NamedTuple

import numpy as np

from natvi import factors
from natvi.validation import check_draws_memory

#: the largest move of the optimum under new draws, in posterior sds, that a fit accepts
SHIFT_LIMIT = 0.1
#: the most base draws a fit grows to
MAX_DRAWS = 256
#: draws of the fresh-draw ELBO estimate
FRESH_DRAWS = 1000


class DrawCheck(NamedTuple):
    """The check of a fit on fixed draws.

    n_draws : int, base draws M of the returned fit
    elbo, elbo_se : float, the ELBO at the returned q from fresh draws, and its standard
        error
    shift : float, the largest move of a coordinate's mean or sd, in posterior sds,
        between the optima on two independent sets of M draws
    """

    n_draws: int
    elbo: float
    elbo_se: float
    shift: float

    def describe(self):
        """The check in a sentence."""
        settled = ("within" if self.shift <= SHIFT_LIMIT else "more than")
        return (f"on {self.n_draws} fixed draws; fresh draws give ELBO {self.elbo:.6g} ± "
                f"{self.elbo_se:.2g}, and a second set of draws moves the optimum by "
                f"{self.shift:.2g} posterior sd ({settled} {SHIFT_LIMIT})")


def fresh_elbo(model, posterior, rng, draws=FRESH_DRAWS):
    """(estimate, standard error) of the ELBO at ``posterior`` from ``draws`` fresh draws
    of q drawn with ``rng``: the mean and standard error of log p(x, z) − log q(z)."""
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
        return -np.inf, np.inf
    return float(weights.mean()), float(weights.std(ddof=1) / np.sqrt(draws))


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
