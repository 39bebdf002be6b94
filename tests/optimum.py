"""An independent optimizer for the tests' reference ELBOs: L-BFGS-B, then Newton.

L-BFGS-B stops when its line search can no longer see the objective change, which is
rounding in the ELBO (~1e-13 of its magnitude): the gradient norm it leaves behind depends
on the machine's floating-point summation order (3e-6 on one machine, 4e-7 on another).
Newton steps on the gradient itself, whose rounding is far smaller, then take it to a
stationary point on any machine: the Hessian comes from central differences of the
analytic gradient.
"""

import numpy as np
from scipy import optimize


def maximize(value_and_grad, u0, newton_steps=4, **options):
    """Maximize ``value_and_grad(u) -> (value, gradient)`` from ``u0``.

    Returns {"u", "value", "grad_norm", "nfev"}: nfev counts L-BFGS-B's evaluations only.
    """
    res = optimize.minimize(lambda u: tuple(-np.asarray(v) for v in value_and_grad(u)), u0,
                            jac=True, method="L-BFGS-B",
                            options={"maxiter": 20000, "maxfun": 40000, "ftol": 0.0,
                                     "gtol": 1e-7, "maxcor": 30, **options})
    u = res.x
    grad = value_and_grad(u)[1]
    for _ in range(newton_steps):
        step = 1e-5 * np.maximum(1.0, np.abs(u))
        hess = np.empty((u.size, u.size))
        for j in range(u.size):
            e = np.zeros(u.size)
            e[j] = step[j]
            hess[:, j] = (value_and_grad(u + e)[1] - value_and_grad(u - e)[1]) / (2 * step[j])
        trial = u - np.linalg.solve(0.5 * (hess + hess.T), grad)
        trial_grad = value_and_grad(trial)[1]
        if not np.linalg.norm(trial_grad) < np.linalg.norm(grad):
            break
        u, grad = trial, trial_grad
    return {"u": u, "value": float(value_and_grad(u)[0]), "grad_norm": float(np.linalg.norm(grad)),
            "nfev": res.nfev}
