"""GLMs on dask arrays: the same fits as from memory, on a two-process LocalCluster and on
the local schedulers; one compute per ELBO evaluation, the parameters sent once; the data
checked chunk by chunk in one pass."""

import pickle
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback
from distributed import Client, LocalCluster
from helpers import same_fit as _same_fit

import natvi
from natvi.models import (
    ARDLogisticRegression,
    LinearRegression,
    LogisticRegression,
    PoissonRegression,
    ProbitRegression,
)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


class Computes(Callback):
    """Counts computes, on the threaded scheduler (also where a Client is the default)."""

    def __init__(self):
        super().__init__()
        self.n = 0
        self._config = dask.config.set(scheduler="threads")

    def __enter__(self):
        self._config.__enter__()
        return super().__enter__()

    def __exit__(self, *args):
        super().__exit__(*args)
        self._config.__exit__(*args)

    def _start(self, dsk):
        self.n += 1


def _data(n=6000, d=6, seed=0, dtype=float):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    eta = 0.3 + X @ np.linspace(-1, 1, d)
    return X, rng, eta


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
@pytest.mark.parametrize("make", [ProbitRegression, ARDLogisticRegression])
def test_other_glms_on_the_local_schedulers(make, scheduler):
    X, rng, eta = _data(n=3000, d=4, seed=2)
    y = (eta + rng.normal(size=len(X)) > 0).astype(float)
    r0 = natvi.fit(make(X, y), seed=0, progress=False)
    with dask.config.set(scheduler=scheduler):
        r1 = natvi.fit(make(da.from_array(X, chunks=(400, -1)), y), seed=0, progress=False)
    _same_fit(r0, r1)


@pytest.mark.parametrize("noise_scale", [None, 1.0])
def test_linear_regression_takes_its_statistics_in_one_pass(noise_scale):
    X, rng, eta = _data(n=2000, d=3, seed=3)
    y = eta + rng.normal(size=len(X))
    r0 = natvi.fit(LinearRegression(X, y, noise_scale=noise_scale), seed=0, progress=False)
    counter = Computes()
    with counter:
        model = LinearRegression(da.from_array(X, chunks=(300, -1)), da.from_array(y),
                                 noise_scale=noise_scale)
    assert counter.n == 1
    _same_fit(r0, natvi.fit(model, seed=0, progress=False))


def test_float32_chunks_accumulate_in_float64():
    # X in float32 and the same values in float64 give the same sums to rounding of
    # float64; float32 sums over 20,000 rows would differ in the 4th significant digit.
    X, rng, eta = _data(n=20000, d=3, seed=4, dtype=np.float32)
    y = (rng.random(len(X)) < 0.5).astype(float)
    q = natvi.fit(LogisticRegression(X, y), max_iter=2, seed=0, progress=False).posterior
    values = [LogisticRegression(da.from_array(x, chunks=(2500, -1)), y).engine.elbo(q).value
              for x in (X, X.astype(float))]
    assert values[0] == pytest.approx(values[1], rel=1e-13)


def _block_tasks(graph):
    return {k: v for k, v in graph.items() if str(k).startswith("natvi-block")}


def test_an_evaluation_is_one_compute_with_the_parameters_in_one_task():
    X, rng, eta = _data(n=4000, d=30, seed=5)
    y = (rng.random(len(X)) < 0.5).astype(float)
    model = LogisticRegression(da.from_array(X, chunks=(500, -1)), y)
    q = natvi.fit(model, family=natvi.FullRankGaussian, max_iter=1, seed=0,
                  progress=False).posterior
    graph = dict(model.engine.data_graph(q).__dask_graph__())
    params = [k for k in graph if str(k).startswith("natvi-params")]
    blocks = _block_tasks(graph)
    assert len(params) == 1 and len(blocks) == 8
    # q over 31 latents is 31² numbers: in the one parameter task, not in the block tasks,
    # each of which names the parameters' key
    assert len(pickle.dumps(graph[params[0]])) > 8 * 31 * 31
    for task in blocks.values():
        assert len(pickle.dumps(task)) < 2000
        assert params[0] in task.dependencies
    counter = Computes()
    with counter:
        model.engine.elbo(q)
    assert counter.n == 1


def test_checks_are_one_pass_and_name_what_is_wrong():
    X, rng, eta = _data(n=3000, d=3, seed=6)
    y = (eta > 0).astype(float)
    counter = Computes()
    with counter:
        LogisticRegression(da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500))
    assert counter.n == 1
    bad = X.copy()
    bad[2100, 1], bad[10, 2] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"X: .*missing \(NaN\).*\['x1'\]"):
        LogisticRegression(da.from_array(bad, chunks=(500, -1)), y)
    bad[2100, 1] = 0.0
    with pytest.raises(ValueError, match=r"X: .*infinite.*\['x2'\]"):
        LogisticRegression(da.from_array(bad, chunks=(500, -1)), y)
    huge = X.copy()
    huge[5, 0] = 1e200
    with pytest.raises(ValueError, match="X: features too large"):
        LogisticRegression(da.from_array(huge, chunks=(500, -1)), y)
    labels = y.copy()
    labels[2999] = 2.0
    with pytest.raises(ValueError, match=r"y: expected labels in \{0, 1\}, got \[2.0\]"):
        LogisticRegression(da.from_array(X, chunks=(500, -1)), da.from_array(labels))
    with pytest.raises(ValueError, match="counts: expected non-negative integers"):
        PoissonRegression(da.from_array(X, chunks=(500, -1)), labels - 0.5)
    with pytest.raises(ValueError, match="exposure: expected values > 0"):
        PoissonRegression(da.from_array(X, chunks=(500, -1)), y, exposure=y)
    with pytest.raises(ValueError, match=r"y: expected a 1-D array of length 3000"):
        LogisticRegression(da.from_array(X, chunks=(500, -1)), y[:10])
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        LogisticRegression(da.from_array(X[:, 0]), y)
    with pytest.raises(ValueError, match="X: expected real values"):
        LogisticRegression(da.from_array(X.astype(complex)), y)
    unknown = da.from_array(X, chunks=(500, -1))
    unknown = unknown[unknown[:, 0] > -100]  # a boolean mask: chunk sizes unknown
    with pytest.raises(ValueError, match=r"X: the dask array's chunk sizes are unknown"):
        LogisticRegression(unknown, y)


def test_column_chunks_are_rechunked_with_a_warning():
    X, rng, eta = _data(n=1000, d=4, seed=7)
    y = (eta > 0).astype(float)
    with pytest.warns(UserWarning, match="X: rechunked from 2 column chunks to one"):
        model = LogisticRegression(da.from_array(X, chunks=(300, 2)), y)
    assert model.X.chunks == ((300, 300, 300, 100), (4,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(da.from_array(X, chunks=(300, -1)), y)


def test_a_dask_dataframe_names_the_features_and_to_arviz_reads_the_chunks():
    import dask.dataframe as dd
    import pandas as pd

    X, rng, eta = _data(n=1200, d=3, seed=8)
    y = (eta > 0.2).astype(float)
    frame = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=3)
    model = LogisticRegression(frame, dd.from_pandas(pd.Series(y), npartitions=3))
    assert model.feature_names == ["a", "b", "c"]
    result = natvi.fit(model, seed=0, progress=False)
    ref = natvi.fit(LogisticRegression(X, y), seed=0, progress=False)
    _same_fit(ref, result)
    idata = result.to_arviz(draws=30, seed=1)
    np.testing.assert_allclose(idata.log_likelihood["y"].values,
                               ref.to_arviz(draws=30, seed=1).log_likelihood["y"].values,
                               rtol=1e-12)
    assert list(idata.posterior["coef"].coords["feature"].values) == ["a", "b", "c"]


# ---- on a LocalCluster of two worker processes (last: the Client is the default scheduler
# from its first use to the end of the module) ----
@pytest.mark.parametrize("family", [natvi.MeanFieldGaussian, natvi.FullRankGaussian])
def test_logistic_on_a_local_cluster_equals_the_in_memory_fit(client, family):
    X, rng, eta = _data(dtype=np.float32)
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-eta))).astype(float)
    r0 = natvi.fit(LogisticRegression(X, y), family=family, seed=0, progress=False)
    Xd = client.persist(da.from_array(X, chunks=(1000, -1)))
    yd = client.persist(da.from_array(y, chunks=1000))
    model = LogisticRegression(Xd, yd)
    assert isinstance(model.X, da.Array) and isinstance(model.y, da.Array)
    _same_fit(r0, natvi.fit(model, family=family, seed=0, progress=False))


def test_poisson_with_exposures_on_a_local_cluster(client):
    X, rng, eta = _data(d=4, seed=1)
    exposure = rng.uniform(0.5, 2.0, len(X))
    counts = rng.poisson(exposure * np.exp(0.3 * eta)).astype(float)
    r0 = natvi.fit(PoissonRegression(X, counts, exposure=exposure), seed=0, progress=False)
    model = PoissonRegression(da.from_array(X, chunks=(1500, -1)), counts,
                              exposure=da.from_array(exposure, chunks=700))
    _same_fit(r0, natvi.fit(model, seed=0, progress=False))


def test_a_minibatch_fit_on_a_local_cluster_reads_the_same_minibatches(client, tmp_path):
    # minibatches of dask data are contiguous blocks, read from the workers: the same
    # minibatches, and so the same fit, as from a memory-mapped copy of the data
    X, rng, eta = _data(dtype=np.float32)
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-eta))).astype(float)
    options = {"family": natvi.MeanFieldGaussian, "batch_size": 250, "max_iter": 300,
               "progress": False}
    Xd = client.persist(da.from_array(X, chunks=(1000, -1)))
    on_cluster = natvi.fit(LogisticRegression(Xd, client.persist(da.from_array(y, chunks=1000))),
                           **options)
    np.save(tmp_path / "X.npy", X)
    blocks = natvi.fit(LogisticRegression(np.load(tmp_path / "X.npy", mmap_mode="r"), y),
                       **options)
    assert on_cluster.state.checks and on_cluster.n_iter == blocks.n_iter
    _same_fit(on_cluster, blocks)
