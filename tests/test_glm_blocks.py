"""The GLM engine's blocks and chunks change no number: with blocks of 64 rows in chunks of
16, the predictors' moments, the expected log-likelihood and its gradients equal those of
one block in one chunk, for every way the intercept and the coefficients can be factored."""

import numpy as np
import pytest

from natvi import FullRankGaussian, MeanFieldGaussian, likelihoods
from natvi.engines import glm

N, D = 300, 4


def _full_rank(rng, d):
    a = rng.normal(size=(d, d))
    return FullRankGaussian(loc=rng.normal(size=d), cov=a @ a.T / d + 0.1 * np.eye(d))


def _mean_field(rng, shape):
    return MeanFieldGaussian(loc=rng.normal(size=shape), scale=rng.uniform(0.1, 1.0, size=shape))


STRUCTURES = {
    "mean-field": lambda rng: {"intercept": _mean_field(rng, ()), "coef": _mean_field(rng, D)},
    "joint full-rank": lambda rng: {("intercept", "coef"): _full_rank(rng, D + 1)},
    "full-rank coef": lambda rng: {"intercept": _mean_field(rng, ()), "coef": _full_rank(rng, D)},
    "full-rank intercept": lambda rng: {"intercept": _full_rank(rng, 1),
                                        "coef": _mean_field(rng, D)},
    "no intercept": lambda rng: {"coef": _mean_field(rng, D)},
}


def _evaluate(monkeypatch, block_rows, chunk_bytes, X, y, posterior):
    monkeypatch.setattr(glm, "BLOCK_ROWS", block_rows)
    monkeypatch.setattr(glm, "CHUNK_BYTES", chunk_bytes)
    intercept = "intercept" if any("intercept" in glm.factors.latent_names(k)
                                   for k in posterior) else None
    design = glm.Design(X, "coef", intercept)

    def expectation(rows, loc, var):
        return glm.predictor_expectation(likelihoods.logistic, y[rows], loc, var)

    moments = design.predictor_moments(posterior)
    value, grads = design.integrate(posterior, expectation)
    return moments, value, grads


@pytest.mark.parametrize("structure", STRUCTURES)
def test_blocks_and_chunks_change_no_number(monkeypatch, structure):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, D)).astype(np.float32)  # converted chunk by chunk
    y = (rng.random(N) < 0.4).astype(float)
    posterior = STRUCTURES[structure](rng)
    (loc, var), value, grads = _evaluate(monkeypatch, 64, 1, X, y, posterior)
    (loc1, var1), value1, grads1 = _evaluate(monkeypatch, 10**9, 2**40, X, y, posterior)

    # the reference, written out: ηᵢ = dᵢᵀw with dᵢ = (1, xᵢ) under each structure
    x = X.astype(float)
    ref_loc, ref_var = np.zeros(N), np.zeros(N)
    for key, q in posterior.items():
        names = glm.factors.latent_names(key)
        d = np.hstack([np.ones((N, 1)) if n == "intercept" else x for n in names])
        if isinstance(q, FullRankGaussian):
            ref_loc += d @ q.loc
            ref_var += np.einsum("ij,jk,ik->i", d, q.cov, d)
        else:
            ref_loc += d @ np.ravel(q.loc)
            ref_var += (d * d) @ np.ravel(q.variance)
    np.testing.assert_allclose(loc, ref_loc, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, ref_var, rtol=1e-12)
    np.testing.assert_allclose(loc1, ref_loc, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var1, ref_var, rtol=1e-12)

    assert value == pytest.approx(value1, rel=1e-13)
    assert set(grads) == set(grads1) == set(posterior)
    for key in grads:
        np.testing.assert_allclose(grads[key], grads1[key], rtol=1e-11, atol=1e-11)
