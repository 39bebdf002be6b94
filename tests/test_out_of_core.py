"""GLMs on data on disk (.npy, Zarr, Parquet, CSV), streamed chunk by chunk with the local
scheduler: the same fit as from memory, and a fit's private memory does not grow with N."""

import pickle
import subprocess
import sys

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from helpers import same_fit

import natvi
from natvi.dask_data import read_npy
from natvi.models import LogisticRegression


def _data(n=3000, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + X @ np.linspace(-1, 1, d))))).astype(float)
    return X, y


@pytest.fixture(scope="module")
def reference():
    X, y = _data()
    return X, y, natvi.fit(LogisticRegression(X, y), seed=0, progress=False)


def test_npy_files_are_memory_mapped_and_fit_as_from_memory(tmp_path, reference):
    X, y, r0 = reference
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y.astype(np.int8))
    Xd = read_npy(tmp_path / "X.npy", chunk_rows=700)
    assert Xd.chunks == ((700,) * 4 + (200,), (4,)) and Xd.dtype == np.float32
    # the array dask slices is the file, not a copy: it pickles as its path
    source = next(v for v in dict(Xd.__dask_graph__()).values()
                  if type(v).__name__ == "NpyFile")
    assert len(pickle.dumps(source)) < 500
    same_fit(r0, natvi.fit(LogisticRegression(Xd, read_npy(tmp_path / "y.npy")), seed=0,
                           progress=False))


def test_read_npy_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="path: cannot read"):
        read_npy(tmp_path / "missing.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="path: expected a 1-D or 2-D array"):
        read_npy(tmp_path / "cube.npy")
    np.save(tmp_path / "X.npy", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="chunk_rows: expected a positive integer"):
        read_npy(tmp_path / "X.npy", chunk_rows=0)


def test_zarr_arrays_fit_as_from_memory(tmp_path, reference):
    X, y, r0 = reference
    da.to_zarr(da.from_array(X, chunks=(1000, -1)), str(tmp_path / "X.zarr"))
    da.to_zarr(da.from_array(y, chunks=1000), str(tmp_path / "y.zarr"))
    model = LogisticRegression(da.from_zarr(str(tmp_path / "X.zarr")),
                               da.from_zarr(str(tmp_path / "y.zarr")))
    same_fit(r0, natvi.fit(model, seed=0, progress=False))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_parquet_and_csv_through_dask_dataframe(tmp_path, reference, fmt):
    X, y, r0 = reference
    # float64 written with 17 digits: the CSV's text reads back as X's values exactly
    frame = pd.DataFrame(X.astype(float), columns=["a", "b", "c", "d"]).assign(label=y.astype(int))
    for i, start in enumerate(range(0, len(frame), 1000)):  # files, as a big data set is
        part, path = frame.iloc[start:start + 1000], tmp_path / f"part{i}.{fmt}"
        if fmt == "parquet":
            part.to_parquet(path)
        else:
            part.to_csv(path, index=False, float_format="%.17g")
    read = dd.read_parquet if fmt == "parquet" else dd.read_csv
    data = read(str(tmp_path / f"part*.{fmt}"))
    model = LogisticRegression(data[["a", "b", "c", "d"]], data["label"])
    assert model.feature_names == ["a", "b", "c", "d"]
    same_fit(r0, natvi.fit(model, seed=0, progress=False))


PEAK = """
import sys, threading, time
import natvi
from natvi.dask_data import read_npy
from natvi.models import LogisticRegression

def rss_anon():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon")) / 1024

peak = [0.0]
def poll():
    while True:
        peak[0] = max(peak[0], rss_anon())
        time.sleep(0.002)

threading.Thread(target=poll, daemon=True).start()
X = read_npy(sys.argv[1] + "X.npy", chunk_rows=20000)
y = read_npy(sys.argv[1] + "y.npy", chunk_rows=20000)
natvi.fit(LogisticRegression(X, y), family=natvi.MeanFieldGaussian, max_iter=3, seed=0,
          progress=False)
time.sleep(0.05)
print(peak[0])
"""


@pytest.mark.slow
def test_private_memory_does_not_grow_with_n(tmp_path):
    peaks = []
    for n in (100_000, 400_000):
        X, y = _data(n=n, d=10, seed=1)
        np.save(tmp_path / f"{n}X.npy", X.astype(float))  # 8 and 32 MB on disk
        np.save(tmp_path / f"{n}y.npy", y)
        done = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path / f"{n}")],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        peaks.append(float(done.stdout))
    # X grows by 24 MB and y by 2.4 MB; RssAnon (private memory, not the file's pages) by
    # at most the allocator's noise
    assert peaks[1] - peaks[0] < 6.0, peaks
