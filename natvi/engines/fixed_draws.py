"""The ELBO over base draws fixed for a whole fit: deterministic ADVI.

Giordano, Ingram & Broderick (JMLR 2024): draw M standard-normal base draws εₛ once,
and write E_q[log p(x, z)] ≈ (1/M) Σₛ log p(x, z(εₛ; q)). For a fixed set of draws this
is a smooth, deterministic function of q, so a fit can use what deterministic ELBOs
allow — line searches, Newton-like full-rank steps, Anderson acceleration, and a
convergence rule on the gradient — and it converges to a real stationary point of the
function it evaluates, not to a cloud of noisy iterates. The price is a bias of order
1/M in that point, which :func:`natvi.fit` measures after the fit: it estimates the
ELBO with fresh draws and refits on a second set of draws, and reports (or grows M
when) the optimum moves by more than a tenth of a posterior sd.

Only reparameterizable factors (Gaussians and Gaussians pushed through a bijection)
have base draws; a fit with Gamma, Beta or Dirichlet factors runs on fresh Monte Carlo
draws instead (:class:`natvi.engines.MonteCarlo`, score-function gradients), as its
result says.
"""

import numbers

import numpy as np

from natvi import factors
from natvi.engines import monte_carlo
from natvi.engines.monte_carlo import MonteCarlo
from natvi.factors import latent_names

#: base draws per fit by default
DEFAULT_DRAWS = 32
#: the most draws a joint factor may ask for (above, the fit runs on fresh draws)
MAX_JOINT_DRAWS = 2048
#: the most draws a fit of the default M grows to at its start so that its draws are
#: whitened jointly (more pairs than coordinates): on the 26 collinear predictors of
#: examples/reference_models.py (28 coordinates, mean-field) 32 draws moved the optimum
#: by more than 0.1 sd and the check refitted at 64; from 58 draws the fit took 5.4–6.5 s
#: instead of 10–17 s
WHITENED_DRAWS = 128


class FixedDraws(MonteCarlo):
    """E_q[log p(x, z)] of a log joint over ``n_draws`` base draws fixed by ``seed``.

    Parameters
    ----------
    log_joint : callable
        ``log_joint(z)`` for one draw ``z`` = {latent name: array}, written with
        ``autograd.numpy``; returns a scalar.
    latents : dict
        {latent name: natvi.model.Latent}.
    n_draws : int
        Base draws M, even (they come in antithetic pairs).
    seed : int or None
        Seed of the base draws. None (a model's engine): each fit fixes its draws from
        the fit's ``seed`` (see :meth:`for_fit`), and outside a fit each evaluation draws
        afresh from the generator it is given.
    observations : natvi.observations.Observations, optional
        As for :class:`natvi.engines.MonteCarlo`.
    whiten : bool
        At each fit, draw more pairs than the fit has coordinates k (2(k + 1) draws) when
        that is more than ``n_draws`` and at most :data:`WHITENED_DRAWS`: then the draws
        are whitened jointly, and the fixed-draw ELBO of a Gaussian log joint is exact
        (see :meth:`_base_draws`). A model's default engine does.
    """

    transforms = True

    def __init__(self, log_joint, latents, n_draws=DEFAULT_DRAWS, seed=None, observations=None,
                 whiten=False):
        super().__init__(log_joint, latents, n_draws, observations)
        if not isinstance(whiten, bool):
            raise ValueError(f"whiten: expected True or False, got {whiten!r}")
        self.whiten = whiten
        if n_draws % 2:
            raise ValueError(f"n_samples: fixed draws come in antithetic pairs; expected an "
                             f"even number, got {n_draws}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or seed < 0):
            raise ValueError(f"seed: expected a non-negative integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.deterministic = seed is not None
        self._noise = {}

    @property
    def n_draws(self):
        """Base draws M."""
        return self.n_samples

    @property
    def description(self):
        if self.seed is None:
            return f"fixed draws (M = {self.n_draws}, chosen at each fit)"
        return f"{self.n_draws} fixed base draws (seed {self.seed})"

    def for_fit(self, families, rng):
        """A copy with its draws fixed by a seed from the fit's generator ``rng`` (itself
        when its seed is set), with at least :meth:`draws_needed` draws (and as many as
        ``whiten`` asks for); or a
        :class:`MonteCarlo` engine when a family of ``families`` ({factor key: family
        class}) has no base draws, or a joint factor would need more than
        ``MAX_JOINT_DRAWS``."""
        needed = self.draws_needed(families)
        if not all(f.reparameterizable for f in families.values()) or needed > MAX_JOINT_DRAWS:
            return MonteCarlo(self.log_joint, self.latents, self.n_draws, self.observations)
        if self.whiten:
            whitened = 2 * (sum(factors.size(self.latents, key) for key in families) + 1)
            needed = max(needed, whitened if whitened <= WHITENED_DRAWS else 0)
        if self.seed is not None and needed <= self.n_draws:
            return self
        return self.redrawn(rng, max(needed, self.n_draws))

    def draws_needed(self, families):
        """The fewest draws a fit over ``families`` can use: a joint factor over d
        coordinates needs more than d antithetic pairs, or its fixed-draw ELBO is unbounded
        (its covariance grows without limit in the directions no draw explores)."""
        sizes = [factors.size(self.latents, key) for key, f in families.items() if f.joint]
        return 2 * (max(sizes) + 1) if sizes else 2

    def redrawn(self, rng, n_draws=None):
        """The same engine on a new set of base draws from ``rng`` (``n_draws`` of them,
        by default as many as now)."""
        return FixedDraws(self.log_joint, self.latents, n_draws or self.n_draws,
                          seed=int(rng.integers(2**63)), observations=self.observations)

    def with_log_joint(self, log_joint):
        """This engine, on the same base draws, on another log joint."""
        engine = FixedDraws(log_joint, self.latents, self.n_draws, self.seed, self.observations)
        engine._noise = self._noise  # the draws, whitened once
        return engine

    def expected_log_joint(self, posterior, rng=None):
        if self.seed is None:
            return super().expected_log_joint(posterior, rng)
        return monte_carlo.expected_log_joint(self.log_joint, posterior, self.latents, None,
                                              self.n_draws, noise=self._base_draws(posterior))

    def _base_draws(self, posterior):
        """{factor key: base draws} of the factors of ``posterior``.

        Each factor's draws come from a generator of its own, seeded by the engine's seed
        and the factor's latents, so they do not depend on the order factors come in. They
        come in antithetic pairs (ε, −ε), so their mean is 0, and are whitened so that their
        second moment is the identity: jointly over every coordinate of every factor when
        there are more pairs than coordinates, else coordinate by coordinate. In the joint
        case the first two moments are those of N(0, I) exactly, so on a Gaussian log joint
        the fixed-draw ELBO is the ELBO and its optimum exact; coordinate by coordinate,
        the means still are (with plain draws each mean moves by about one sd / √M:
        measured, the largest of 300 moved 0.25 sd at M = 256).
        """
        signature = tuple((key, type(q)) for key, q in posterior.items())
        if signature not in self._noise:
            names, halves = list(self.latents), []
            for key, q in posterior.items():
                where = tuple(names.index(name) for name in latent_names(key))
                rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=where))
                halves.append(q.standard_noise(rng, self.n_draws // 2))
            n = self.n_draws // 2
            flat = _whitened(np.concatenate([h.reshape(n, -1) for h in halves], axis=1))
            noise, start = {}, 0
            for (key, _), half in zip(signature, halves, strict=True):
                size = half[0].size
                part = flat[:, start:start + size].reshape(half.shape)
                noise[key] = np.concatenate([part, -part])
                start += size
            self._noise[signature] = noise
        return self._noise[signature]


def _whitened(flat):
    """``flat`` (n, k) with second moment the identity: jointly when n > k, else column by
    column."""
    n = flat.shape[0]
    if n > flat.shape[1]:
        values, vectors = np.linalg.eigh(flat.T @ flat / n)
        return flat @ (vectors / np.sqrt(values)) @ vectors.T
    return flat / np.sqrt(np.mean(flat**2, axis=0))
