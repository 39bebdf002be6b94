"""The Beta–Bernoulli model: a conjugate pair, exact in one natural-gradient step."""

import functools

import numpy as np

from natvi.engines import ClosedForm
from natvi.families import Beta
from natvi.lazy_modules import special
from natvi.model import Latent, Model, check_factors
from natvi.validation import binary_labels, check_positive_scalar


class BetaBernoulli(Model):
    r"""Binary outcomes with a common success probability.

    .. math::
        p \sim \mathrm{Beta}(a, b), \quad y_i \mid p \sim \mathrm{Bernoulli}(p).

    With a Beta factor, E_q[log p(y, p)] is linear in the mean parameters
    (E[log p], E[log(1 − p)]), so the ELBO is exact and one natural-gradient step of
    size 1 from any start gives the exact posterior Beta(a + Σy, b + N − Σy).

    Parameters
    ----------
    y : array_like, shape (N,)
        Outcomes in {0, 1} (booleans are fine); N ≥ 1.
    a, b : float
        Prior Beta parameters, > 0.
    """

    vectorized = True
    default_families = {"p": Beta}

    def __init__(self, y, a=1.0, b=1.0):
        self.y = binary_labels(y)
        if self.y.size == 0:
            raise ValueError("y: expected at least one outcome, got none")
        self.a = check_positive_scalar(a, "a")
        self.b = check_positive_scalar(b, "b")
        self.latents = {"p": Latent((), "unit_interval")}
        self.observed_data = {"y": self.y}
        self.coords = {"obs": np.arange(len(self.y))}
        self.dims = {"y": ["obs"]}
        self.successes = float(self.y.sum())
        self.failures = len(self.y) - self.successes
        self.engine = ClosedForm(self._closed_form,
                                 functools.partial(check_factors, self, families={"p": Beta}))

    def _closed_form(self, means):
        e_log_p, e_log_1mp = means["p"][0], means["p"][1]
        return ((self.a - 1 + self.successes) * e_log_p
                + (self.b - 1 + self.failures) * e_log_1mp - special.betaln(self.a, self.b))


    def log_evidence(self):
        """The exact log p(y) = log B(a + Σy, b + N − Σy) − log B(a, b)."""
        return float(special.betaln(self.a + self.successes, self.b + self.failures)
                     - special.betaln(self.a, self.b))

    def exact_posterior(self):
        """The exact posterior, Beta(a + Σy, b + N − Σy)."""
        return Beta(a=self.a + self.successes, b=self.b + self.failures)

    def pointwise_log_likelihood(self, draws):
        p = np.asarray(draws["p"])[:, None]
        return {"y": np.where(self.y == 1, np.log(p), np.log1p(-p))}

    def log_joint(self, draws):
        p = np.asarray(draws["p"])
        prior = ((self.a - 1) * np.log(p) + (self.b - 1) * np.log1p(-p)
                 - special.betaln(self.a, self.b))
        return prior + self.pointwise_log_likelihood(draws)["y"].sum(axis=1)

