"""The exponential-family base every variational family derives from.

A family is q(z | η) = h(z) exp(η·T(z) − A(η)). Each batch element has ``k``
natural parameters stored in the last axis of ``natural`` (shape ``(*batch, k)``).
Subclasses supply the closed forms; the base turns them into the common API.
"""

import numpy as np

from natvi.validation import check_positive_int


def is_family(obj):
    """Is ``obj`` a natvi family class (a subclass of :class:`ExponentialFamily`)?"""
    return isinstance(obj, type) and issubclass(obj, ExponentialFamily)


def times(c, x):
    """c·x elementwise, but 0 wherever x == 0, also where c overflowed to ±inf.

    The coefficients of the Fisher information and of its inverse are real numbers that
    may exceed the largest float at the edges of a domain; multiplied by an exact zero
    (a unit direction's other entries) they contribute 0, not the NaN of inf·0.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(x == 0, 0.0, c * x)


class ExponentialFamily:
    """Base class: natural, mean and usual parameters of an exponential family.

    Build an instance from its usual parameters (see each subclass) or with
    :meth:`from_natural`. Instances are immutable.
    """

    #: number of natural parameters per batch element; None for families whose size is
    #: set by the last axis of η (K categories, a d-dimensional full-rank Gaussian), which
    #: then define :meth:`_valid_size`
    n_params: int | None = 0
    #: shape of one draw of a batch element (``()`` for scalar families)
    event_shape: tuple = ()
    #: name of the support, as used by :class:`natvi.Model` latents
    support: str = ""
    #: True for a family that covers several latents jointly as one flat vector (a
    #: full-rank Gaussian): its draws and mean parameters are split into and joined from
    #: the latents' shapes (see :mod:`natvi.factors`)
    joint: bool = False
    #: True for a family whose draws are a differentiable function of standard noise
    #: (Gaussians, and Gaussians pushed through a bijection): it offers standard_noise,
    #: from_noise, to_support and pathwise_grad, for pathwise Monte Carlo gradients, and
    #: location_scale, the mean and sd of each Gaussian coordinate
    reparameterizable: bool = False

    def __init__(self, natural):
        eta = self._check_last_axis(natural, "natural")
        if type(self).n_params is None:
            self.n_params = eta.shape[-1]
        if not np.all(np.isfinite(eta)):
            raise ValueError("natural: expected finite values, got NaN or inf")
        if not np.all(self._accept(eta)):
            raise ValueError(f"natural: outside the domain of {type(self).__name__}: "
                             f"{self._domain_text}")
        eta = eta.copy()
        eta.flags.writeable = False
        self._natural = eta

    _domain_text = ""

    def _accept(self, eta):
        """:meth:`in_domain` of the η this instance is being built from; a family whose
        domain check computes what its instance needs anyway may keep it here."""
        return self.in_domain(eta)

    # ---- construction -------------------------------------------------
    @classmethod
    def from_natural(cls, natural):
        """Family with natural parameters ``natural`` of shape ``(*batch, k)``."""
        obj = cls.__new__(cls)
        ExponentialFamily.__init__(obj, natural)
        return obj

    @classmethod
    def from_mean(cls, mean_params):
        """Family with mean parameters ``mean_params`` μ = E[T(z)] of shape ``(*batch, k)``."""
        return cls.from_natural(cls.natural_from_mean(
            cls._check_last_axis(mean_params, "mean_params")))

    @classmethod
    def _check_last_axis(cls, x, name):
        x = np.asarray(x, dtype=float)
        ok = x.ndim >= 1 and (cls._valid_size(x.shape[-1]) if cls.n_params is None
                              else x.shape[-1] == cls.n_params)
        if not ok:
            k = cls.n_params if cls.n_params is not None else cls._size_text
            raise ValueError(f"{name}: expected an array of shape (*batch, {k}), "
                             f"got shape {x.shape}")
        return x

    #: for variable-size families: what the last axis must be, in words
    _size_text = "k"

    @staticmethod
    def _valid_size(k):
        """For variable-size families (``n_params = None``): is k a valid last axis?"""
        return k > 0

    # ---- closed forms a subclass provides -----------------------------
    @staticmethod
    def log_partition_fn(eta):
        """A(η) for natural parameters ``eta`` of shape ``(*batch, k)``, shape ``batch``;
        written with ``autograd.numpy`` so it can be differentiated."""
        raise NotImplementedError

    @staticmethod
    def mean_from_natural(eta):
        """Mean parameters μ = ∇A(η) of natural parameters ``eta``, shape ``(*batch, k)``."""
        raise NotImplementedError

    @staticmethod
    def natural_from_mean(mu):
        """Natural parameters η = (∇A)⁻¹(μ) of mean parameters ``mu``, shape ``(*batch, k)``."""
        raise NotImplementedError

    @staticmethod
    def sufficient_statistics(z):
        """T(z), shape ``(*z.shape[:-len(event_shape)], k)``."""
        raise NotImplementedError

    @staticmethod
    def in_domain(eta):
        """Boolean array over the batch: is ``eta`` (shape ``(*batch, k)``) a valid η?"""
        raise NotImplementedError

    def fisher(self):
        """F(η) = ∇²A(η) = Cov[T(z)], shape ``(*batch, k, k)``."""
        raise NotImplementedError

    def log_base_measure(self, z):
        """log h(z)."""
        raise NotImplementedError

    def sample(self, rng, n):
        """``n`` independent draws with ``rng`` (a numpy.random.Generator), shape
        ``(n, *batch, *event_shape)``."""
        raise NotImplementedError

    @staticmethod
    def _check_sample_args(rng, n):
        """ValueError unless ``n`` is a positive integer and ``rng`` a Generator."""
        check_positive_int(n, "n")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")

    @classmethod
    def standard(cls, shape, categories=None):
        """The family's standard member of batch shape ``shape`` (for a joint family, the
        event shape (d,)): a fit's default starting point. ``categories`` is K for
        categorical families."""
        raise NotImplementedError

    def mean(self):
        """E[z]."""
        raise NotImplementedError

    def var(self):
        """Var[z] (elementwise)."""
        raise NotImplementedError

    # ---- generic operations -------------------------------------------
    @property
    def natural(self):
        """Natural parameters η, shape ``(*batch, k)`` (read-only)."""
        return self._natural

    @property
    def mean_params(self):
        """Mean parameters μ = E[T(z)] = ∇A(η), shape ``(*batch, k)``."""
        return self.mean_from_natural(self._natural)

    @property
    def batch_shape(self):
        """Shape of the batch of independent elements: ``natural.shape[:-1]``."""
        return self._natural.shape[:-1]

    def log_partition(self):
        """A(η), shape ``batch_shape``."""
        return np.asarray(self.log_partition_fn(self._natural))

    def fisher_vector_product(self, v):
        """F(η) v for ``v`` of shape ``(*batch, k)``: turns ∇_μ into ∇_η."""
        return np.einsum("...ij,...j->...i", self.fisher(), v)

    def fisher_quadratic_form(self, v):
        """⟨v, F(η) v⟩ per batch element, shape ``batch_shape``: the squared Fisher norm, ≥ 0."""
        return np.sum(v * self.fisher_vector_product(v), axis=-1)

    def fisher_solve(self, v):
        """F(η)⁻¹ v for ``v`` of shape ``(*batch, k)``: turns ∇_η into ∇_μ."""
        return np.linalg.solve(self.fisher(), v[..., None])[..., 0]

    @staticmethod
    def natural_step(eta, grad, rho):
        """Natural parameters after a natural-gradient step of size ``rho`` from ``eta`` along
        ``grad`` = ∇_μ L (both of shape ``(*batch, k)``).

        Here the plain step η + ρ∇_μ L, which may leave the domain (the optimizer then
        halves ρ). A family may override it with a step that equals the plain one to first
        order in ρ but stays in the domain for every ρ: the Gaussians' keeps the precision
        positive definite (:meth:`natvi.families.MeanFieldGaussian.natural_step`).
        """
        return eta + rho * grad

    def log_prob(self, z):
        """log q(z), broadcasting ``z`` of shape ``(..., *batch, *event_shape)``."""
        z = np.asarray(z, dtype=float)
        t = self.sufficient_statistics(z)
        return np.sum(self._natural * t, axis=-1) - self.log_partition() + self.log_base_measure(z)

    def expected_log_base_measure(self):
        """E_q[log h(z)], shape ``batch_shape``."""
        raise NotImplementedError

    def entropy(self):
        """H[q] = A(η) − η·μ − E[log h(z)], shape ``batch_shape``."""
        return (self.log_partition() - np.sum(self._natural * self.mean_params, axis=-1)
                - self.expected_log_base_measure())

    def entropy_grad(self):
        """∇_μ H[q]: −η, less ∇_μ E[log h(z)] where h is not constant."""
        return -self._natural

    def kl(self, other):
        """KL(self ‖ other) = A(η′) − A(η) − (η′ − η)·μ, shape ``batch_shape``."""
        self._check_other(other)
        return (other.log_partition() - self.log_partition()
                - np.sum((other.natural - self._natural) * self.mean_params, axis=-1))

    def _check_other(self, other):
        """ValueError naming ``other`` unless it is of this family and its batch shape
        broadcasts against this one's."""
        if type(other) is not type(self):
            raise ValueError(f"other: expected a {type(self).__name__}, got {type(other).__name__}")
        try:
            np.broadcast_shapes(self.batch_shape, other.batch_shape)
        except ValueError:
            raise ValueError(f"other: batch shape {other.batch_shape} does not broadcast "
                             f"against {self.batch_shape}") from None

    # ---- the unconstrained parameterization Euclidean optimizers use ----
    @property
    def unconstrained(self):
        """Unconstrained coordinates u (ADVI's), shape ``(*batch, k)``."""
        raise NotImplementedError

    @classmethod
    def from_unconstrained(cls, u):
        """Family at unconstrained coordinates ``u`` (inverse of :attr:`unconstrained`)."""
        raise NotImplementedError

    def unconstrained_grad(self, grad_mean):
        """Chain rule: ∇_u L from ``grad_mean`` = ∇_μ L, shape ``(*batch, k)``."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(batch_shape={self.batch_shape})"
