"""Observation models of generalized linear models, as functions of the linear predictor.

Each likelihood gives log p(y | η) and its derivative in η, vectorized and
overflow-safe, so the quadrature engine and the pointwise log-likelihood share them.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy import special


class Likelihood(NamedTuple):
    """log p(y | η) of a GLM, with ``grad`` = ∂/∂η log p(y | η)."""

    name: str
    log_prob: Callable
    grad: Callable


def _logistic_log_prob(y, eta):
    # y·η − log(1 + e^η), with logaddexp so that |η| in the hundreds does not overflow.
    return y * eta - np.logaddexp(0.0, eta)


def _logistic_grad(y, eta):
    return y - special.expit(eta)


logistic = Likelihood("logistic", _logistic_log_prob, _logistic_grad)
