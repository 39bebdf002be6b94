"""X in the forms big data comes in (issue 4): float32 and memory-mapped arrays and
non-contiguous views are used as they are, never copied whole, and fit exactly as the same
values in a C-contiguous float64 array; float16 is converted; an object array is a
ValueError naming X. Blocks of 64 rows in chunks of 16 make every case cross both
boundaries."""

import numpy as np
import pytest

import natvi
from natvi.engines import glm
from natvi.models import LogisticRegression, PoissonRegression

N, D = 300, 4


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(glm, "BLOCK_ROWS", 64)
    monkeypatch.setattr(glm, "CHUNK_BYTES", 1)  # the least: 16 rows


def _data(dtype=np.float64):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(N, D)).astype(dtype)
    eta = 0.2 + X.astype(float) @ np.array([1.0, -0.5, 0.0, 0.7])
    return X, (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float)


def _fit(X, y, model=LogisticRegression):
    return natvi.fit(model(X, y), max_iter=200)


def _same_fit(a, b):
    assert a.status == b.status == "converged"
    assert a.elbo == b.elbo
    for key, q in a.posterior.items():
        np.testing.assert_array_equal(q.natural, b.posterior[key].natural)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_memory_mapped_x_is_read_in_place(tmp_path, dtype):
    X, y = _data(dtype)
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=dtype, shape=X.shape)
    mm[:] = X
    mm.flush()
    X_disk = np.load(tmp_path / "X.npy", mmap_mode="r")
    model = LogisticRegression(X_disk, y)
    assert np.shares_memory(model.X, X_disk) and model.X.dtype == dtype
    _same_fit(natvi.fit(model, max_iter=200), _fit(np.array(X, dtype=float), y))


@pytest.mark.parametrize("view", ["every other row", "every other column", "fortran",
                                  "reversed rows"])
def test_non_contiguous_views_are_not_copied(view):
    X, y = _data()
    wide = np.repeat(X, 2, axis=1)  # columns 2j and 2j+1 equal X[:, j]
    tall = np.repeat(X, 2, axis=0)
    got = {"every other row": (tall[::2], y), "every other column": (wide[:, ::2], y),
           "fortran": (np.asfortranarray(X), y),
           "reversed rows": (X[::-1], y[::-1])}[view]
    base = {"every other row": tall, "every other column": wide}.get(view, got[0])
    model = LogisticRegression(*got)
    assert np.shares_memory(model.X, base)
    assert not model.X.flags.c_contiguous
    want = _fit(np.ascontiguousarray(got[0]), got[1])
    result = natvi.fit(model, max_iter=200)
    # the same values; BLAS kernels for strided data sum in another order (rounding)
    assert result.status == want.status == "converged"
    assert result.elbo == pytest.approx(want.elbo, abs=1e-9)
    for key, q in result.posterior.items():
        np.testing.assert_allclose(q.natural, want.posterior[key].natural, rtol=1e-6)


def test_float32_is_not_converted_and_fits_as_its_float64_values():
    X, y = _data(np.float32)
    model = LogisticRegression(X, y)
    assert model.X is X or np.shares_memory(model.X, X)
    _same_fit(natvi.fit(model, max_iter=200), _fit(X.astype(np.float64), y))


@pytest.mark.parametrize("model", [LogisticRegression, PoissonRegression])
def test_float16_is_converted_exactly(model):
    X, y = _data(np.float16)
    fitted = model(X, y)
    assert fitted.X.dtype == np.float64
    np.testing.assert_array_equal(fitted.X, X.astype(np.float64))
    _same_fit(natvi.fit(fitted, max_iter=200), _fit(X.astype(np.float64), y, model))


@pytest.mark.parametrize("X", [
    np.array([[1.0, 2.0], [3.0, 1.5], [0.2, 0.1]], dtype=object),
    np.array([[1.0, None], [3.0, 1.5], [0.2, 0.1]], dtype=object),
    np.array([[1.0, "2"], [3.0, 1.5], [0.2, 0.1]], dtype=object),
], ids=["numbers", "none", "string"])
def test_object_dtype_is_a_value_error_naming_x(X):
    with pytest.raises(ValueError, match="^X: expected numeric values, got dtype object"):
        LogisticRegression(X, [0, 1, 1])
