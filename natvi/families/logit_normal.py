"""The logit-normal family: z = σ(x) with x ~ N(loc, scale²), for latents in (0, 1)."""

import autograd.numpy as anp
import numpy as np

from natvi import autograd_special as asp
from natvi.families.transformed_gaussian import TransformedGaussian
from natvi.lazy_modules import special
from natvi.quadrature import gauss_hermite

#: Gauss–Hermite nodes for the expectations over x. σ and log σ have poles at ±iπ, so
#: the rule needs more nodes as the scale grows: with 200, the absolute error is below
#: 1e-12 for scale ≤ 3, about 1e-8 at scale 5 and 1e-4 at scale 10.
N_QUADRATURE = 200


class LogitNormal(TransformedGaussian):
    """z = σ(x) = 1/(1 + e^(−x)), x ~ N(loc, scale²) independently per element.

    T(z) = (logit z, (logit z)²), η = (m/v, −1/(2v)), μ = (m, m² + v) with m = loc,
    v = scale², as for the Gaussian x = logit z; h(z) = (2π)^(−½)/(z(1 − z)). The
    entropy and the moments of z have no closed form and use Gauss–Hermite
    quadrature in x.

    Parameters
    ----------
    loc : array_like
        Means of logit z; broadcast against ``scale``.
    scale : array_like
        Standard deviations of logit z, all > 0.
    """

    support = "unit_interval"
    _support_text = "(0, 1)"

    @staticmethod
    def transform(x):
        return asp.expit(x)

    @staticmethod
    def inverse(z):
        return asp.logit(z)

    @staticmethod
    def log_abs_det_jacobian(x):
        # dz/dx = σ(x)σ(−x); log σ(x) = −softplus(−x), written without overflow
        return -anp.logaddexp(0.0, x) - anp.logaddexp(0.0, -x)

    @staticmethod
    def _in_support(z):
        return (z > 0) & (z < 1)

    def _nodes(self):
        """Quadrature in x = m + s·t: the points (*batch, N), the nodes t and weights w,
        and y = σ(±x), the one of z and 1 − z that is ≤ ½ at x = m, with its sign ±."""
        t, w = gauss_hermite(N_QUADRATURE)
        x = self.loc[..., None] + self.scale[..., None] * t
        # Var z = Var(1 − z) and z − z′ = −((1 − z) − (1 − z′)): working with the smaller
        # of the two keeps differences near z = 1 at full relative precision.
        flip = np.where(self.loc > 0, -1.0, 1.0)[..., None]
        return x, t, w, special.expit(flip * x), flip

    def _expected_log_jacobian(self):
        x, t, w, y, flip = self._nodes()
        value = self.log_abs_det_jacobian(x) @ w
        # f(x) = log σ(x) + log σ(−x) has f′(x) = 1 − 2σ(x) = −flip·(2y − 1)
        grad_loc = (-flip * (2 * y - 1)) @ w
        # d/dv Σ w f(m + √v t) = Σ w t f′(m + √v t) / (2√v), summed over mirrored node
        # pairs (the nodes are exactly antisymmetric), f′(m + √v t) − f′(m − √v t) taken
        # as −2·flip·(y₊ − y₋): at a small scale the difference then keeps its relative
        # precision instead of leaving rounding residue / √v.
        n = len(t)
        pos = np.arange(n - n // 2, n)
        neg = n - 1 - pos
        num = (-2 * flip * (y[..., pos] - y[..., neg])) @ (w * t)[pos]
        grad_var = num / (2 * self.scale)
        return value, grad_loc, grad_var

    def mean(self):
        x, _, w, _, _ = self._nodes()
        return special.expit(x) @ w

    def var(self):
        _, _, w, y, _ = self._nodes()
        return (y - (y @ w)[..., None]) ** 2 @ w
