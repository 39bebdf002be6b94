"""The Gamma–Poisson model: a conjugate pair, exact in one natural-gradient step."""

import functools

import numpy as np

from natvi.engines import ClosedForm
from natvi.families import Gamma
from natvi.lazy_modules import special
from natvi.model import Latent, Model, check_factors
from natvi.validation import check_positive_scalar, exposures
from natvi.validation import counts as check_counts


class GammaPoisson(Model):
    r"""Counts with a common rate, optionally per unit of exposure.

    .. math::
        \lambda \sim \mathrm{Gamma}(\alpha, \beta), \quad
        y_i \mid \lambda \sim \mathrm{Poisson}(e_i \lambda).

    With a Gamma factor, E_q[log p(y, λ)] is linear in the mean parameters
    (E[log λ], E[λ]), so the ELBO is exact and one natural-gradient step of size 1 from
    any start gives the exact posterior Gamma(α + Σy, β + Σe).

    Parameters
    ----------
    counts : array_like, shape (N,)
        Non-negative integer counts; N ≥ 1.
    shape, rate : float
        Prior Gamma shape α and rate β, > 0.
    exposure : array_like, shape (N,), optional
        Positive exposures eᵢ (ones by default).
    """

    vectorized = True
    default_families = {"rate": Gamma}

    def __init__(self, counts, shape=1.0, rate=1.0, exposure=None):
        self.counts = check_counts(counts)
        if self.counts.size == 0:
            raise ValueError("counts: expected at least one count, got none")
        n = len(self.counts)
        self.shape = check_positive_scalar(shape, "shape")
        self.rate = check_positive_scalar(rate, "rate")
        self.exposure = exposures(exposure, n)
        self.latents = {"rate": Latent((), "positive")}
        self.observed_data = {"counts": self.counts}
        self.coords = {"obs": np.arange(n)}
        self.dims = {"counts": ["obs"]}
        self._const = float(np.sum(self.counts * np.log(self.exposure)
                                   - special.gammaln(self.counts + 1))
                            + self.shape * np.log(self.rate) - special.gammaln(self.shape))
        self.engine = ClosedForm(self._closed_form,
                                 functools.partial(check_factors, self, families={"rate": Gamma}))

    def _closed_form(self, means):
        e_log_rate, e_rate = means["rate"][0], means["rate"][1]
        return ((self.shape - 1 + self.counts.sum()) * e_log_rate
                - (self.rate + self.exposure.sum()) * e_rate + self._const)

    def exact_posterior(self):
        """The exact posterior, Gamma(α + Σy, β + Σe)."""
        return Gamma(shape=self.shape + self.counts.sum(), rate=self.rate + self.exposure.sum())

    def log_evidence(self):
        """The exact log p(y): the negative-binomial-type marginal of the counts."""
        a, b = self.shape + self.counts.sum(), self.rate + self.exposure.sum()
        return float(self._const + special.gammaln(a) - a * np.log(b))

    def pointwise_log_likelihood(self, draws):
        lam = np.asarray(draws["rate"])[:, None] * self.exposure
        return {"counts": self.counts * np.log(lam) - lam - special.gammaln(self.counts + 1)}

    def log_joint(self, draws):
        lam = np.asarray(draws["rate"])
        prior = ((self.shape - 1) * np.log(lam) - self.rate * lam + self.shape * np.log(self.rate)
                 - special.gammaln(self.shape))
        return prior + self.pointwise_log_likelihood(draws)["counts"].sum(axis=1)
