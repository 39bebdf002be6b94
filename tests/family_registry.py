"""The registry of the family conformance suite (tests/test_family_conformance.py).

One spec per variational family: the family class, a generator of random valid usual
parameters, and oracles written here from each family's mathematics, independently of
natvi (autograd.numpy, autograd.scipy and scipy.stats): the log-partition A(η), the maps
between natural, usual and unconstrained parameters, the log-density in usual parameters,
E[log h(z)], and a reference for the moments, entropy and log-density. The suite runs every
identity of the exponential-family theory on every spec; a family's own file keeps only
what is particular to it. Adding a family: a spec here, one line in REGISTRY.

A spec is a class used as a namespace (never instantiated), so that the three Gaussians
share their maps by inheritance. All oracles broadcast over leading batch axes.
"""

import math
from typing import Any, NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.scipy import stats as astats
from autograd.scipy.special import gammaln, logsumexp
from scipy import integrate, special, stats

from natvi import families

LOG_2PI = np.log(2 * np.pi)


class Reference(NamedTuple):
    """Moments, entropy, log-density and (scalar continuous families) CDF of one element.

    ``rtol`` None: scipy.stats closed forms, held to rounding; a number: the accuracy of a
    numerical reference.
    """

    mean: Any
    var: Any
    entropy: float
    logpdf: Any  # z of shape (n, *event_shape) -> (n,)
    cdf: Any = None
    rtol: float | None = None


def scipy_reference(dist, cdf=True):
    """A Reference from a frozen scipy.stats distribution."""
    logpdf = dist.logpdf if hasattr(dist, "logpdf") else dist.logpmf
    return Reference(dist.mean(), dist.var(), dist.entropy(), logpdf,
                     dist.cdf if cdf else None)


def one_hot(z, k):
    """Indicators of the category codes ``z`` over k categories, shape (*z.shape, k)."""
    return (np.asarray(z)[..., None] == np.arange(k)).astype(float)


def gaussian_dim(k):
    """The dimension d of a full-rank Gaussian with k = d + d² natural parameters."""
    return (math.isqrt(1 + 4 * k) - 1) // 2


def sym_matrix_part(v):
    """v = (vector, raveled matrix) of a full-rank Gaussian with its matrix part symmetrized."""
    d = gaussian_dim(v.shape[-1])
    mat = np.reshape(v[..., d:], v.shape[:-1] + (d, d))
    return np.concatenate([v[..., :d], (0.5 * (mat + np.swapaxes(mat, -1, -2))).reshape(
        v.shape[:-1] + (d * d,))], axis=-1)


def _expit(x):
    return 1 / (1 + anp.exp(-x))


#: draws of each support: their dtype, and whether each lies in the support of q
SUPPORTS = {
    "real": (np.float64, lambda z, q: np.isfinite(z)),
    "positive": (np.float64, lambda z, q: np.isfinite(z) & (z > 0)),
    "unit_interval": (np.float64, lambda z, q: (z > 0) & (z < 1)),
    "simplex": (np.float64, lambda z, q: (z > 0) & (np.abs(np.sum(z, -1, keepdims=True) - 1)
                                                      <= 1e-15)),
    "binary": (np.float64, lambda z, q: (z == 0) | (z == 1)),
    "categorical": (np.int64, lambda z, q: (z >= 0) & (z <= q.n_params)),
}


class Spec:
    """What the suite needs to know of a family.

    A subclass sets ``cls`` and ``ranges`` (or overrides ``params``) and defines these
    oracles, written with autograd.numpy and broadcasting over leading batch axes:

    - ``log_partition(eta)``: A(η);
    - ``natural(usual)``, ``usual(eta)``: η from the usual parameters (a dict of the
      constructor's keyword arguments), and back;
    - ``usual_from_unconstrained(u)``: the usual parameters at unconstrained coordinates;
    - ``log_density(z, **usual)``: log q(z);
    - ``reference(**usual)``: a Reference for one batch element.

    The attributes and methods below have defaults that suit most families; ``size`` is K
    or d for variable-size families, else None.
    """

    cls: type = None
    seeds = (0, 1, 2)
    batch_shapes = ((), (3,), (2, 4))
    #: K or d, by seed (cycled), for variable-size families
    sizes = (None,)
    #: tolerance factor of the rounding-level checks: 10 where every operation goes
    #: through the Cholesky factors of d×d matrices (condition numbers up to ~10)
    loose = 1.0
    #: the usual parameters, independent draws each: name → (Generator method, arguments)
    ranges = {}
    #: points spread over the support, to compare log-densities at: (Generator method,
    #: arguments)
    spread = ()
    #: the constructor's default arguments
    defaults = {}

    @classmethod
    def params(cls, rng, batch_shape, size):
        """Random valid usual parameters (the constructor's keyword arguments)."""
        return {name: getattr(rng, method)(*args, batch_shape)
                for name, (method, *args) in cls.ranges.items()}

    @classmethod
    def points(cls, rng, q, n):
        """``n`` points of the support per batch element, shape (n, *batch, *event)."""
        method, *args = cls.spread
        return getattr(rng, method)(*args, (n,) + q.batch_shape + q.event_shape)

    @staticmethod
    def project(v):
        """v restricted to the directions the family's parameters move in."""
        return v

    @staticmethod
    def as_vector(z, q):
        """The vector whose expectation is ``q.mean()`` (a draw itself, but for one-hot)."""
        return z

    @staticmethod
    def support_values(q):
        """Every point of a finite support (for exact expectations), or None."""
        return None

    @staticmethod
    def expected_log_base_measure(eta):
        """E_q[log h(z)]: 0 unless h is not constant."""
        return anp.zeros(np.shape(eta)[:-1])

    #: (constructor keyword arguments, the argument the ValueError must name), beyond the
    #: NaN, inf and non-numeric values of each argument that the suite tries itself
    bad_params = []
    #: shapes that are not a valid (*batch, k) for η or μ, beyond the 0-d one
    bad_sizes = []
    #: finite η of a valid size outside the domain
    outside = []
    #: μ outside the mean domain (beyond NaN)
    bad_mean = []
    #: invalid unconstrained coordinates (beyond a 0-d one)
    bad_unconstrained = []


# ---- Gaussians: the mean-field one and the two transformed ones -------------------------
class MeanFieldGaussianSpec(Spec):
    cls = families.MeanFieldGaussian

    @staticmethod
    def log_partition(eta):
        e1, e2 = eta[..., 0], eta[..., 1]
        return -e1**2 / (4 * e2) - 0.5 * anp.log(-2 * e2)

    @staticmethod
    def natural(usual):
        v = usual["scale"] ** 2
        return anp.stack([usual["loc"] / v, -0.5 / v], axis=-1)

    @staticmethod
    def usual(eta):
        v = -0.5 / eta[..., 1]
        return {"loc": eta[..., 0] * v, "scale": anp.sqrt(v)}

    @staticmethod
    def usual_from_unconstrained(u):
        return {"loc": u[..., 0], "scale": anp.exp(u[..., 1])}

    @staticmethod
    def log_density(z, loc, scale):
        return astats.norm.logpdf(z, loc, scale)

    @staticmethod
    def expected_log_base_measure(eta):
        return anp.full(np.shape(eta)[:-1], -0.5 * LOG_2PI)

    @staticmethod
    def reference(loc, scale):
        return scipy_reference(stats.norm(loc, scale))

    ranges = {"loc": ("normal", 0.0, 1.5), "scale": ("uniform", 0.3, 2.0)}
    spread = ("normal", 0.0, 3.0)
    bad_params = [({"scale": 0.0}, "scale"), ({"scale": -1.0}, "scale"),
                  ({"scale": [1.0, 0.0]}, "scale"), ({"scale": 1e-200}, "scale"),
                  ({"scale": 1e200}, "scale"),
                  ({"loc": np.zeros(3), "scale": np.ones(2)}, "scale")]  # no broadcast
    bad_sizes = [(3,), (4, 1)]
    outside = [np.array([0.5, 0.0]), np.array([[0.5, -1.0], [0.5, 2.0]])]
    bad_mean = [np.array([1.0, 1.0]), np.array([[0.0, 1.0], [2.0, 3.0]])]
    # a wrong size, NaN, and a log-scale whose variance overflows or underflows
    bad_unconstrained = [np.array([1.0]), np.zeros(3), np.array([0.0, np.nan]),
                         np.array([0.0, 400.0]), np.array([1.0, -400.0])]
    defaults = {"loc": 0.0, "scale": 1.0}


class LogNormalSpec(MeanFieldGaussianSpec):
    cls = families.LogNormal

    @staticmethod
    def log_density(z, loc, scale):
        return astats.norm.logpdf(anp.log(z), loc, scale) - anp.log(z)

    @staticmethod
    def expected_log_base_measure(eta):
        # log h(z) = −½ log 2π − log z, and E[log z] = loc
        return -0.5 * LOG_2PI - MeanFieldGaussianSpec.usual(eta)["loc"]

    @staticmethod
    def reference(loc, scale):
        return scipy_reference(stats.lognorm(s=scale, scale=np.exp(loc)))

    #: moderate, so that the tails stay testable
    ranges = {"loc": ("normal", 0.0, 1.0), "scale": ("uniform", 0.3, 1.5)}
    spread = ("lognormal", 0.0, 2.0)


class LogitNormalSpec(MeanFieldGaussianSpec):
    cls = families.LogitNormal

    @staticmethod
    def log_density(z, loc, scale):
        return (astats.norm.logpdf(anp.log(z) - anp.log1p(-z), loc, scale)
                - anp.log(z) - anp.log1p(-z))

    @staticmethod
    def expected_log_base_measure(eta):
        # −½ log 2π − E[log z + log(1 − z)], z = σ(x): Gauss–Hermite in x (the integrand
        # is analytic; 200 nodes are exact to rounding at scale ≤ 2)
        t, w = np.polynomial.hermite_e.hermegauss(200)
        usual = MeanFieldGaussianSpec.usual(eta)
        x = usual["loc"][..., None] + usual["scale"][..., None] * t
        log_jac = -anp.logaddexp(0.0, -x) - anp.logaddexp(0.0, x)
        return -0.5 * LOG_2PI - anp.dot(log_jac, w / w.sum())

    @staticmethod
    def reference(loc, scale):
        # scipy.stats has no logit-normal: its density written out and integrated on (0, 1)
        def logpdf(z):
            return LogitNormalSpec.log_density(z, loc, scale)

        def integral(f):
            return integrate.quad(lambda z: np.exp(logpdf(z)) * f(z), 0, 1, epsabs=1e-14,
                                  epsrel=1e-12, limit=400)[0]

        mean = integral(lambda z: z)
        return Reference(mean, integral(lambda z: (z - mean) ** 2), integral(lambda z: -logpdf(z)),
                         logpdf, lambda z: stats.norm.cdf((special.logit(z) - loc) / scale),
                         rtol=1e-9)

    spread = ("uniform", 0.0, 1.0)


class FullRankGaussianSpec(Spec):
    cls = families.FullRankGaussian
    seeds = (0, 1, 2, 3, 4, 5)
    batch_shapes = ((), (3,))
    sizes = (1, 2, 4)
    loose = 10.0

    @staticmethod
    def params(rng, batch_shape, size):
        """A moderately conditioned covariance."""
        a = rng.normal(size=batch_shape + (size, size))
        scale = rng.uniform(0.3, 1.5, batch_shape + (1, 1))
        return {"loc": rng.normal(0.0, 1.5, batch_shape + (size,)),
                "cov": a @ np.swapaxes(a, -1, -2) / size + scale * np.eye(size)}

    @staticmethod
    def _split(eta):
        """(η₁, S) with S the symmetric part of η₂: A, T and q depend on η₂ only through S."""
        d = gaussian_dim(eta.shape[-1])
        e2 = anp.reshape(eta[..., d:], eta.shape[:-1] + (d, d))
        return eta[..., :d], 0.5 * (e2 + anp.swapaxes(e2, -1, -2))

    @staticmethod
    def log_partition(eta):
        # −¼ η₁ᵀ S⁻¹ η₁ − ½ log det(−2S), by solve and slogdet (natvi uses Cholesky factors)
        e1, s = FullRankGaussianSpec._split(eta)
        quad = anp.sum(e1 * anp.linalg.solve(s, e1[..., None])[..., 0], axis=-1)
        return -0.25 * quad - 0.5 * anp.linalg.slogdet(-2 * s)[1]

    @staticmethod
    def natural(usual):
        prec = anp.linalg.inv(usual["cov"])
        e1 = anp.matmul(prec, usual["loc"][..., None])[..., 0]
        return anp.concatenate([e1, anp.reshape(-0.5 * prec, prec.shape[:-2] + (-1,))], axis=-1)

    @staticmethod
    def usual(eta):
        e1, s = FullRankGaussianSpec._split(eta)
        cov = anp.linalg.inv(-2 * s)
        return {"loc": anp.matmul(cov, e1[..., None])[..., 0], "cov": cov}

    @staticmethod
    def usual_from_unconstrained(u):
        """m and Σ = LLᵀ from (m, the rows of tril(L) with log-diagonal)."""
        d = (int(np.sqrt(9 + 8 * u.shape[-1])) - 3) // 2
        rows, cols = np.tril_indices(d)
        basis = np.zeros((len(rows), d, d))
        basis[np.arange(len(rows)), rows, cols] = 1.0
        tri = u[..., d:]
        chol = anp.einsum("...p,pij->...ij", anp.where(rows == cols, anp.exp(tri), tri), basis)
        return {"loc": u[..., :d], "cov": anp.matmul(chol, anp.swapaxes(chol, -1, -2))}

    @staticmethod
    def log_density(z, loc, cov):
        diff = z - loc
        maha = anp.sum(diff * anp.linalg.solve(cov, diff[..., None])[..., 0], axis=-1)
        return -0.5 * (loc.shape[-1] * LOG_2PI + anp.linalg.slogdet(cov)[1] + maha)

    @staticmethod
    def expected_log_base_measure(eta):
        d = gaussian_dim(eta.shape[-1])
        return anp.full(np.shape(eta)[:-1], -0.5 * d * LOG_2PI)

    @staticmethod
    def reference(loc, cov):
        dist = stats.multivariate_normal(loc, cov)
        return Reference(dist.mean, np.diag(dist.cov), dist.entropy(), dist.logpdf)

    project = staticmethod(sym_matrix_part)

    spread = ("normal", 0.0, 3.0)
    bad_params = [
        ({"loc": 0.0, "cov": [[1.0]]}, "loc"),
        ({"loc": [0.0, 0.0, 0.0], "cov": np.eye(2)}, "loc"),
        ({"loc": np.zeros((4, 2)), "cov": np.stack([np.eye(2)] * 3)}, "loc"),
        ({"loc": [0.0, 0.0], "cov": [1.0, 1.0]}, "cov"),
        ({"loc": [0.0, 0.0], "cov": np.ones((2, 3))}, "cov"),
        ({"loc": np.zeros(0), "cov": np.zeros((0, 0))}, "cov"),
        ({"loc": [0.0, 0.0], "cov": [[1.0, 0.5], [0.4, 1.0]]}, "cov"),  # not symmetric
        ({"loc": [0.0, 0.0], "cov": [[1.0, 2.0], [2.0, 1.0]]}, "cov"),  # indefinite
        ({"loc": [0.0, 0.0], "cov": [[1.0, 1.0], [1.0, 1.0]]}, "cov"),  # singular
        ({"loc": [0.0], "cov": [[-1.0]]}, "cov"),
        ({"loc": [0.0], "cov": [[0.0]]}, "cov"),
        ({"loc": [0.0], "cov": [[1e-320]]}, "cov"),
        ({"loc": [0.0, 0.0], "cov": np.stack([np.eye(2), -np.eye(2)])}, "cov"),
    ]
    bad_sizes = [(3,), (4, 5)]
    outside = [np.array([0.5, 0.0]),                               # η₂ = 0
               np.array([0.0, 0.0, -0.5, 0.1, 0.3, -0.5]),         # not symmetric
               np.array([0.0, 0.0, -0.5, -1.0, -1.0, -0.5]),       # not negative definite
               np.array([[0.5, -1.0], [0.5, 2.0]])]                # one bad element
    bad_mean = [np.array([1.0, 1.0]),                              # μ₂ − μ₁² = 0
                np.array([[0.0, 1.0], [2.0, 3.0]]),
                np.array([1.0, 2.0, 1.0, 2.0, 2.0, 4.0]),          # μ₂ = μ₁μ₁ᵀ: singular
                np.array([0.0, 0.0, 1.0, 0.5, 0.2, 1.0])]          # not symmetric
    bad_unconstrained = [np.array([1.0]), np.zeros(4), np.array([0.0, np.nan]),
                         np.array([0.0, 1000.0]), np.array([0.0, -1000.0]),
                         np.array([0.0, 0.0, 800.0, 0.0, 0.0])]


# ---- Gamma, Beta, Dirichlet ---------------------------------------------------------------
class GammaSpec(Spec):
    cls = families.Gamma

    @staticmethod
    def log_partition(eta):
        alpha = eta[..., 0] + 1
        return gammaln(alpha) - alpha * anp.log(-eta[..., 1])

    @staticmethod
    def natural(usual):
        return anp.stack([usual["shape"] - 1, -usual["rate"]], axis=-1)

    @staticmethod
    def usual(eta):
        return {"shape": eta[..., 0] + 1, "rate": -eta[..., 1]}

    @staticmethod
    def usual_from_unconstrained(u):
        return {"shape": anp.exp(u[..., 0]), "rate": anp.exp(u[..., 1])}

    @staticmethod
    def log_density(z, shape, rate):
        return astats.gamma.logpdf(rate * z, shape) + anp.log(rate)

    @staticmethod
    def reference(shape, rate):
        return scipy_reference(stats.gamma(shape, scale=1 / rate))

    ranges = {"shape": ("uniform", 0.3, 5.0), "rate": ("uniform", 0.5, 3.0)}
    spread = ("exponential", 3.0)
    bad_params = [({"shape": 0.0}, "shape"), ({"shape": -1.0}, "shape"),
                  ({"shape": [1.0, 0.0]}, "shape"),
                  ({"shape": 1e-17}, "shape"),  # η₁ = shape − 1 rounds to −1
                  ({"rate": 0.0}, "rate"), ({"rate": [1.0, -2.0]}, "rate"),
                  ({"shape": [1.0, 2.0], "rate": [1.0, 2.0, 3.0]}, "rate")]
    bad_sizes = [(3,), (4, 1)]
    outside = [np.array([-1.0, -1.0]), np.array([-2.0, -1.0]),   # shape ≤ 0
               np.array([0.5, 0.0]), np.array([[0.5, -1.0], [0.5, 2.0]])]  # rate ≤ 0
    bad_mean = [np.array(mu) for mu in (
        [0.0, 1.0],                  # log E[z] = E[log z]: Jensen's inequality fails
        [1.0, 2.0], [[-1.0, 1.0], [0.0, 0.5]],
        [0.0, 0.0], [0.0, -1.0],     # E[z] must be > 0
        [-np.inf, 1.0],
        [-1e20, 1.0])]               # shape ≈ 1e-20, not representable as η₁ = shape − 1
    bad_unconstrained = [np.array(u) for u in (
        [1.0], [[1.0, 2.0, 3.0]], [np.nan, 0.0], [800.0, 0.0], [0.0, 800.0])]
    defaults = {"shape": 1.0, "rate": 1.0}


class BetaSpec(Spec):
    cls = families.Beta

    @staticmethod
    def log_partition(eta):
        a, b = eta[..., 0] + 1, eta[..., 1] + 1
        return gammaln(a) + gammaln(b) - gammaln(a + b)

    @staticmethod
    def natural(usual):
        return anp.stack([usual["a"] - 1, usual["b"] - 1], axis=-1)

    @staticmethod
    def usual(eta):
        return {"a": eta[..., 0] + 1, "b": eta[..., 1] + 1}

    @staticmethod
    def usual_from_unconstrained(u):
        return {"a": anp.exp(u[..., 0]), "b": anp.exp(u[..., 1])}

    @staticmethod
    def log_density(z, a, b):
        return astats.beta.logpdf(z, a, b)

    @staticmethod
    def reference(a, b):
        return scipy_reference(stats.beta(a, b))

    #: a, b ≥ 0.6: for b ≲ 0.3 a draw falls within 1.1e-16 of 1, where float z rounds to 1
    #: and log(1 − z) = −inf, often enough to spoil Monte Carlo moments of T(z)
    ranges = {"a": ("uniform", 0.6, 5.0), "b": ("uniform", 0.6, 5.0)}
    spread = ("uniform", 0.0, 1.0)
    bad_params = [({"a": 0.0}, "a"), ({"a": -1.0}, "a"), ({"a": [1.0, 0.0]}, "a"),
                  ({"a": 1e-17}, "a"),  # η₁ = a − 1 rounds to −1
                  ({"b": 0.0}, "b"), ({"b": [1.0, -2.0]}, "b"), ({"b": 1e-20}, "b"),
                  ({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]}, "b")]
    bad_sizes = [(3,), (4, 1)]
    outside = [np.array([-1.0, 0.0]), np.array([0.0, -1.5]),
               np.array([[0.5, 1.0], [0.5, -3.0]])]
    bad_mean = [np.array(mu) for mu in (
        [0.0, -1.0], [-1.0, 0.5],    # E[log z] must be < 0
        [-0.1, -0.1], [-0.6931, -0.6931],  # exp(μ₁) + exp(μ₂) ≥ 1: no law on (0, 1)
        [[-2.0, -0.2], [-0.5, -0.5]],
        [-np.inf, -1.0],
        [-1e20, -1e-30])]            # a ≈ 1e-20 and a huge b: not representable
    bad_unconstrained = [np.array(u) for u in (
        [1.0], [[1.0, 2.0, 3.0]], [np.nan, 0.0], [800.0, 0.0], [0.0, -800.0])]
    defaults = {"a": 1.0, "b": 1.0}


class DirichletSpec(Spec):
    cls = families.Dirichlet
    sizes = (2, 3, 5)

    @staticmethod
    def params(rng, batch_shape, size):
        """Concentrations ≥ 0.6, so that no coordinate of a draw comes within 1.1e-16 of 1 (where
        the others round to 0) often enough to spoil Monte Carlo moments of log z."""
        return {"alpha": rng.uniform(0.6, 5.0, batch_shape + (size,))}

    @staticmethod
    def log_partition(eta):
        alpha = eta + 1
        return anp.sum(gammaln(alpha), axis=-1) - gammaln(anp.sum(alpha, axis=-1))

    @staticmethod
    def natural(usual):
        return usual["alpha"] - 1

    @staticmethod
    def usual(eta):
        return {"alpha": eta + 1}

    @staticmethod
    def usual_from_unconstrained(u):
        return {"alpha": anp.exp(u)}

    @staticmethod
    def log_density(z, alpha):
        return (anp.sum((alpha - 1) * anp.log(z) - gammaln(alpha), axis=-1)
                + gammaln(anp.sum(alpha, axis=-1)))

    @staticmethod
    def reference(alpha):
        dist = stats.dirichlet(alpha)
        return Reference(dist.mean(), dist.var(), dist.entropy(), lambda z: dist.logpdf(z.T))

    @staticmethod
    def points(rng, q, n):
        return rng.dirichlet(np.ones(q.n_params), (n,) + q.batch_shape)

    bad_params = [({"alpha": 1.0}, "alpha"), ({"alpha": [1.0]}, "alpha"),  # K = 1
                  ({"alpha": np.ones((3, 1))}, "alpha"), ({"alpha": [1.0, 0.0]}, "alpha"),
                  ({"alpha": [[1.0, 2.0], [-1.0, 2.0]]}, "alpha"),
                  ({"alpha": [1.0, 1e-17]}, "alpha")]  # η = alpha − 1 rounds to −1
    bad_sizes = [(1,), (4, 1)]
    outside = [np.array([-1.0, 0.0]), np.array([[0.5, 1.0, 2.0], [0.5, 1.0, -3.0]])]
    bad_mean = [np.array(mu) for mu in (
        [0.0, -1.0], [-1.0, -1.0, 0.1],  # E[log z_k] must be < 0
        [-0.1, -0.1], [-1.0, -1.0, -1.0],  # Σ exp(μ_k) ≥ 1: no law on the simplex
        [[-2.0, -2.0, -2.0], [-0.5, -0.5, -2.0]],
        [-np.inf, -1.0],
        [-1e20, -1e-30])]            # α₁ ≈ 1e-20 and a huge α₂: not representable
    bad_unconstrained = [np.array(u) for u in (
        [1.0], [[1.0], [2.0]], [np.nan, 0.0], [800.0, 0.0], [0.0, -800.0])]


# ---- Bernoulli, Categorical ---------------------------------------------------------------
class BernoulliSpec(Spec):
    cls = families.Bernoulli

    @staticmethod
    def log_partition(eta):
        return anp.log1p(anp.exp(eta[..., 0]))

    @staticmethod
    def natural(usual):
        p = usual["p"]
        return anp.log(p / (1 - p))[..., None]

    @staticmethod
    def usual(eta):
        return {"p": _expit(eta[..., 0])}

    @staticmethod
    def usual_from_unconstrained(u):
        return {"p": _expit(u[..., 0])}

    @staticmethod
    def log_density(z, p):
        return z * anp.log(p) + (1 - z) * anp.log1p(-p)

    @staticmethod
    def reference(p):
        return scipy_reference(stats.bernoulli(p), cdf=False)

    @staticmethod
    def points(rng, q, n):
        return rng.integers(0, 2, (n,) + q.batch_shape).astype(float)

    @staticmethod
    def support_values(q):
        return [0.0, 1.0]

    ranges = {"p": ("uniform", 0.05, 0.95)}  # away from 0 and 1
    bad_params = [({"p": p}, "p") for p in (0.0, 1.0, -0.1, 1.5, [0.5, 0.0])]
    bad_sizes = [(2,), (4, 3)]
    bad_mean = [np.array(mu) for mu in ([0.0], [1.0], [[0.5], [1.2]])]
    bad_unconstrained = [np.array([0.0, 1.0]), np.array([np.nan])]
    defaults = {"p": 0.5}


class CategoricalSpec(Spec):
    cls = families.Categorical
    sizes = (2, 3, 4)

    @staticmethod
    def params(rng, batch_shape, size):
        """Probabilities over K = size categories, none tiny."""
        return {"p": rng.dirichlet(3 * np.ones(size), batch_shape)}

    @staticmethod
    def log_partition(eta):
        return logsumexp(anp.concatenate([eta, anp.zeros(eta.shape[:-1] + (1,))], axis=-1),
                         axis=-1)

    @staticmethod
    def natural(usual):
        log_p = anp.log(usual["p"])
        return log_p[..., :-1] - log_p[..., -1:]

    @staticmethod
    def usual(eta):
        e = anp.exp(anp.concatenate([eta, anp.zeros(eta.shape[:-1] + (1,))], axis=-1))
        return {"p": e / anp.sum(e, axis=-1, keepdims=True)}

    @staticmethod
    def usual_from_unconstrained(u):
        return CategoricalSpec.usual(u)

    @staticmethod
    def log_density(z, p):
        return anp.sum(one_hot(z, p.shape[-1]) * anp.log(p), axis=-1)

    @staticmethod
    def reference(p):
        dist = stats.multinomial(1, p)
        return Reference(dist.mean(), np.diag(dist.cov()), dist.entropy(),
                         lambda z: dist.logpmf(one_hot(z, len(p))))

    @staticmethod
    def points(rng, q, n):
        return rng.integers(0, q.n_params + 1, (n,) + q.batch_shape)

    @staticmethod
    def as_vector(z, q):
        return one_hot(z, q.n_params + 1)

    @staticmethod
    def support_values(q):
        return list(range(q.n_params + 1))

    bad_params = [({"p": p}, "p") for p in (
        0.5, [1.0],                  # no category axis; K = 1
        [0.5, 0.5, 0.0], [1.2, -0.2],
        [0.5, 0.6], [[0.5, 0.5], [0.3, 0.6]])]  # not summing to 1
    bad_sizes = [(3, 0)]
    bad_mean = [np.array(mu) for mu in (
        [0.0, 0.5], [0.5, 0.5], [0.6, 0.7], [-0.1, 0.2], [[0.2, 0.3], [np.nan, 0.1]])]
    bad_unconstrained = [np.zeros((2, 0)), np.array([np.nan, 0.0])]
    defaults = {"p": (0.5, 0.5)}


REGISTRY = [MeanFieldGaussianSpec, FullRankGaussianSpec, LogNormalSpec, LogitNormalSpec,
            GammaSpec, BetaSpec, DirichletSpec, BernoulliSpec, CategoricalSpec]
