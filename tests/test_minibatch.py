"""Minibatch natural gradients: unbiased minibatch ELBOs, the averaged iterate's exact passes,
an honest status, reproducible and resumable, the same from memory, memory-mapped files
and Dask."""

import dask.array as da
import numpy as np
import pytest
from helpers import same_fit

import natvi
from natvi.choice import MINIBATCH_STEP_MAX, MINIBATCH_STEP_PASSES
from natvi.engines import Minibatch
from natvi.models import LinearRegression, LogisticRegression, PoissonRegression


def logistic_data(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ [1.0, -0.5, 0.2])))).astype(int)
    return X, y


def poisson_data(n=1000, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    exposure = rng.uniform(0.5, 2.0, size=n)
    y = rng.poisson(exposure * np.exp(0.2 + X @ [0.4, -0.3]))
    return X, y, exposure


def posterior_at(model, seed=3):
    """A q away from the optimum, full-rank over the intercept and coefficients."""
    rng = np.random.default_rng(seed)
    d = model.X.shape[1] + 1
    a = rng.normal(size=(d, d)) * 0.05
    return {("intercept", "coef"): natvi.FullRankGaussian(rng.normal(size=d) * 0.3,
                                                          a @ a.T + 0.01 * np.eye(d))}


def mean_over_minibatches(engine, posterior):
    """The mean of the minibatch engine's ELBO over every minibatch of the partition."""
    parts = [engine.full.on_rows(engine.rows(k), float(engine.n_batches)).elbo(posterior)
             for k in range(engine.n_batches)]
    value = np.mean([p.value for p in parts])
    grads = {key: np.mean([p.grads[key] for p in parts], axis=0) for key in posterior}
    return value, grads


@pytest.mark.parametrize("source", ["memory", "memmap", "dask"])
def test_the_minibatch_elbos_average_to_the_full_elbo(source, tmp_path):
    # the identity behind unbiasedness: minibatch k is chosen uniformly, so the mean over k
    # of n_b × (minibatch k's data term) is the data term, whatever the partition
    X, y, exposure = poisson_data()
    if source == "memmap":
        np.save(tmp_path / "X.npy", X)
        X = np.load(tmp_path / "X.npy", mmap_mode="r")
    elif source == "dask":
        X, y, exposure = (da.from_array(a, chunks=(300,) + a.shape[1:]) for a in (X, y, exposure))
    model = PoissonRegression(X, y, exposure=exposure)
    engine = Minibatch(model.engine, 64)
    assert engine.n_batches == 16 and engine.full.row_access == (
        "strided" if source == "memory" else "blocks")
    q = posterior_at(model)
    full = model.engine.elbo(q)
    value, grads = mean_over_minibatches(engine, q)
    assert value == pytest.approx(full.value, rel=1e-12)
    for key in q:
        np.testing.assert_allclose(grads[key], full.grads[key], rtol=1e-10, atol=1e-9)
    # every row is in exactly one minibatch
    rows = np.concatenate([np.arange(1000)[engine.rows(k)] for k in range(engine.n_batches)])
    assert np.array_equal(np.sort(rows), np.arange(1000))


def test_a_minibatch_fit_converges_to_the_full_batch_optimum():
    X, y = logistic_data(20_000)
    model = LogisticRegression(X, y)
    full = natvi.fit(model, family=natvi.MeanFieldGaussian, progress=False)
    r = natvi.fit(model, family=natvi.MeanFieldGaussian, batch_size=200, max_iter=2000,
                  progress=False)
    assert r.status == "converged" and "on a full pass" in r.message
    # the result's ELBO and gain are exact, at the best averaged iterate
    exact = model.engine.elbo(r.posterior)
    assert r.elbo == pytest.approx(exact.value, rel=1e-13)
    assert r.gain <= 1e-2
    # near the optimum the ELBO is quadratic and the natural gradient of uncorrelated
    # features a Newton step: the gap is about the gain
    assert 0 <= full.elbo - r.elbo <= 3 * r.gain + 1e-9
    for key, q in full.posterior.items():
        sd = np.sqrt(q.var())
        assert np.max(np.abs(r.posterior[key].mean() - q.mean()) / sd) < 0.2
        np.testing.assert_allclose(np.sqrt(r.posterior[key].var()), sd, rtol=0.02)


def test_the_default_step_is_twenty_passes_worth():
    X, y = logistic_data(6000)
    model = LogisticRegression(X, y)
    for batch_size, n_b in ((60, 100), (1000, 6)):
        vi = natvi.VI(model, batch_size=batch_size)
        assert vi.engine.n_batches == n_b
        step = min(MINIBATCH_STEP_MAX, MINIBATCH_STEP_PASSES / n_b)
        assert vi.optimizer.name == f"ngd({step:g}, warm start, plain steps)"


def test_a_frozen_minibatch_fit_is_not_converged():
    X, y = logistic_data(6000)
    model = LogisticRegression(X, y)
    r = natvi.fit(model, natvi.optim.natural_gradient(1e-6), batch_size=100, max_iter=250,
                  progress=False)
    assert r.status == "max_iter" and len(r.state.checks) == 4
    assert r.gain > 1.0 and "not converged" in r.message


def test_same_seed_same_fit_and_resume_continues_it(tmp_path):
    X, y = logistic_data(6000)
    model = LogisticRegression(X, y)
    options = {"family": natvi.MeanFieldGaussian, "batch_size": 100, "seed": 4,
               "tol": 0.0, "progress": False}
    whole = natvi.fit(model, max_iter=170, **options)
    again = natvi.fit(model, max_iter=170, **options)
    assert whole.elbo == again.elbo and whole.state.checks == again.state.checks
    path = tmp_path / "fit.npz"
    natvi.fit(model, max_iter=90, checkpoint=path, **options)
    resumed = natvi.fit(model, max_iter=170, resume=path, **options)
    assert resumed.elbo == whole.elbo and resumed.state.checks == whole.state.checks
    for key in whole.posterior:
        np.testing.assert_array_equal(resumed.posterior[key].mean(), whole.posterior[key].mean())
    other = natvi.fit(model, max_iter=170, **{**options, "seed": 5})
    assert other.elbo != whole.elbo


def test_memory_mapped_and_dask_data_read_the_same_minibatches(tmp_path):
    X, y = logistic_data(6000)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    Xd = da.from_array(Xm, chunks=(1000, 3))
    options = {"batch_size": 100, "max_iter": 400, "progress": False,
               "family": natvi.MeanFieldGaussian}
    on_file = natvi.fit(LogisticRegression(Xm, y), **options)
    on_dask = natvi.fit(LogisticRegression(Xd, da.from_array(y, chunks=1000)), **options)
    assert on_file.state.checks and on_file.n_iter == on_dask.n_iter
    same_fit(on_file, on_dask)


@pytest.mark.parametrize(("make", "batch_size", "match"), [
    (lambda X, y: LogisticRegression(X, y), 6000, "fewer rows than the data's 6000"),
    (lambda X, y: LogisticRegression(X, y), 0, "batch_size"),
    (lambda X, y: LogisticRegression(X, y), 2.5, "batch_size"),
    (lambda X, y: LinearRegression(X, y.astype(float)), 100, "batch_size: minibatches need"),
])
def test_bad_batch_sizes_and_models_are_named(make, batch_size, match):
    X, y = logistic_data(6000)
    with pytest.raises(ValueError, match=match):
        natvi.fit(make(X, y), batch_size=batch_size, progress=False)


def declared_logistic(n=4000, seed=0, **options):
    """A logistic regression written as a natvi.Model with declared rows of data."""
    import autograd.numpy as anp
    from autograd.scipy.stats import norm

    X, y = logistic_data(n, seed)

    def log_prior(z):
        return anp.sum(norm.logpdf(z["w"], 0, 1)) + norm.logpdf(z["b"], 0, 2)

    def log_likelihood(z, rows):
        eta = z["b"] + anp.dot(rows["X"], z["w"])
        return rows["y"] * eta - anp.logaddexp(0, eta)

    return natvi.Model(latents={"b": "real", "w": ((3,), "real")}, log_prior=log_prior,
                       log_likelihood=log_likelihood, data={"X": X, "y": y}, **options)


@pytest.mark.parametrize("engine", ["fixed_draws", "monte_carlo"])
def test_declared_rows_average_to_the_full_elbo_on_the_same_draws(engine):
    model = declared_logistic(engine=engine)
    families = {"b": natvi.MeanFieldGaussian, "w": natvi.MeanFieldGaussian}
    rng = np.random.default_rng(0)
    minibatches = Minibatch(model.engine, 300).for_fit(families, rng)
    q = {"b": natvi.MeanFieldGaussian(np.array(0.2), np.array(0.1)),
         "w": natvi.MeanFieldGaussian(np.array([0.5, -0.2, 0.1]), np.full(3, 0.2))}
    if engine == "fixed_draws":  # the fit's draws, on the whole data and on each minibatch
        full = minibatches.full.elbo(q)
        value, grads = mean_over_minibatches(minibatches, q)
    else:  # fresh draws: the same generator state for the whole data and each minibatch
        full = minibatches.full.elbo(q, np.random.default_rng(1))
        parts = [minibatches.full.on_rows(minibatches.rows(k), float(minibatches.n_batches))
                 .elbo(q, np.random.default_rng(1)) for k in range(minibatches.n_batches)]
        value = np.mean([p.value for p in parts])
        grads = {key: np.mean([p.grads[key] for p in parts], axis=0) for key in q}
    assert value == pytest.approx(full.value, rel=1e-12)
    for key in q:
        np.testing.assert_allclose(grads[key], full.grads[key], rtol=1e-9, atol=1e-9)


def test_a_declared_model_fits_on_minibatches_and_keeps_its_pointwise_log_likelihood():
    model = declared_logistic(20_000)
    full = natvi.fit(model, progress=False)
    r = natvi.fit(model, batch_size=200, max_iter=1000, progress=False)
    assert r.status == "converged"
    # the full pass is on the fit's fixed draws: its ELBO is the fixed-draw one
    assert 0 <= full.elbo - r.elbo <= 3 * r.gain + 1e-9
    for key, q in full.posterior.items():
        sd = np.sqrt(q.var())
        assert np.max(np.abs(r.posterior[key].mean() - q.mean()) / sd) < 0.2
    draws = {"b": np.zeros(2), "w": np.zeros((2, 3))}
    np.testing.assert_allclose(model.pointwise_log_likelihood(draws)["y"],
                               np.full((2, 20_000), -np.log(2)))


@pytest.mark.parametrize(("options", "match"), [
    ({"log_joint": lambda z: 0.0}, "give them instead of log_joint"),
    ({"data": None}, "give all three"),
    ({"data": {"X": np.zeros((5, 2)), "y": np.zeros(4)}}, r"data\['y'\]: has 4 rows"),
    ({"data": {"X": np.full((5, 2), np.nan), "y": np.zeros(5)}}, "NaN or infinite"),
    ({"data": {"X": np.array(["a", "b"]), "y": np.zeros(2)}}, "real or integer"),
    ({"data": {"y": np.zeros(1)}}, "at least 2 rows"),
    ({"log_prior": 3.0}, "log_prior: expected a function"),
])
def test_declared_rows_are_checked(options, match):
    import autograd.numpy as anp

    base = {"latents": {"w": ((2,), "real")}, "log_prior": lambda z: -anp.sum(z["w"] ** 2),
            "log_likelihood": lambda z, rows: anp.dot(rows["X"], z["w"]),
            "data": {"X": np.zeros((5, 2))}}
    with pytest.raises(ValueError, match=match):
        natvi.Model(**{**base, **options})


def test_a_log_likelihood_of_the_wrong_shape_is_named():
    import autograd.numpy as anp

    model = natvi.Model(latents={"w": ((2,), "real")}, log_prior=lambda z: -anp.sum(z["w"] ** 2),
                        log_likelihood=lambda z, rows: anp.sum(anp.dot(rows["X"], z["w"])),
                        data={"X": np.ones((50, 2))})
    with pytest.raises(ValueError, match=r"log_likelihood: returned shape \(\) for 10 rows"):
        natvi.fit(model, batch_size=10, progress=False)
