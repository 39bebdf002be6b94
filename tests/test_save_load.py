"""result.save(path) and natvi.load(path, model=None): a lossless round trip without pickle.

Every family is covered (one custom model holds a joint full-rank factor over two latents, a
mean-field Gaussian, LogNormal, Gamma, LogitNormal, Beta, Dirichlet, Bernoulli and
Categorical factors; shipped models add conjugate fits and eight schools). After the round
trip the natural parameters, ELBO, status, iterations, optimizer, gain and history are
identical, draws for a seed are identical, and with the model given, ArviZ output and Pareto
k̂ are identical. Damaged, foreign and mismatched files are ValueErrors naming the argument.
"""

import functools
import os
import warnings
import zipfile

import arviz as az
import autograd.numpy as anp
import numpy as np
import pytest
from helpers import BAD_FILES, bad_file, central_directory_offsets, read_flipped, rewrite

import natvi
from natvi import serialization
from natvi.arviz_bridge import arviz_1
from natvi.data import load_breast_cancer
from natvi.families import Beta, FullRankGaussian, Gamma
from natvi.models import BetaBernoulli, EightSchools, GammaPoisson, LogisticRegression

# ---- a model with a factor of every family ---------------------------------------------
X_OBS = np.array([-1.0, 0.0, 0.5, 2.0])
Y_OBS = np.array([-0.8, 0.3, 0.9, 2.5])
LATENTS = {"a": ((2,), "real"), "b": "real", "c": ((2,), "real"), "p": "positive",
           "g": ((2,), "positive"), "u": "unit_interval", "v": "unit_interval",
           "s": ((3,), "simplex"), "e": ((2,), "binary"), "k": ((2,), "categorical", 3)}
#: ("a", "b") is one joint FullRankGaussian; c MeanFieldGaussian, p LogNormal, u LogitNormal,
#: s Dirichlet, e Bernoulli and k Categorical are the defaults of their supports
FAMILIES = {("a", "b"): FullRankGaussian, "g": Gamma, "v": Beta}
EVERY_FAMILY = ["Bernoulli", "Beta", "Categorical", "Dirichlet", "FullRankGaussian", "Gamma",
                "LogNormal", "LogitNormal", "MeanFieldGaussian"]


def _pointwise(z):
    """y_i ~ N(a₀ + a₁ x_i + b + 0.1 Σc, (0.5 + p)²)."""
    mean = z["a"][0] + z["a"][1] * X_OBS + z["b"] + 0.1 * anp.sum(z["c"])
    scale = 0.5 + z["p"]
    return -0.5 * ((Y_OBS - mean) / scale) ** 2 - anp.log(scale) - 0.5 * np.log(2 * np.pi)


def _log_joint(z):
    prior = (-0.5 * (anp.sum(z["a"] ** 2) + z["b"] ** 2 + anp.sum(z["c"] ** 2))
             + anp.log(z["p"]) - z["p"] + anp.sum(anp.log(z["g"]) - z["g"])
             + anp.log(z["u"]) + anp.log1p(-z["u"]) + 2 * anp.log(z["v"])
             + anp.sum(anp.log(z["s"])) + anp.sum(z["e"]) * np.log(0.3)
             + (2 - anp.sum(z["e"])) * np.log(0.7) + anp.sum(np.log([0.2, 0.5, 0.3])[z["k"]]))
    return prior + anp.sum(_pointwise(z))


def every_family_model():
    return natvi.Model(_log_joint, LATENTS, pointwise_log_likelihood=_pointwise,
                       observed_data={"y": Y_OBS}, n_samples=8)


@functools.lru_cache
def _breast_cancer():
    X, y, _ = load_breast_cancer()
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _logistic():
    return LogisticRegression(*_breast_cancer())


#: name → (model factory, fit keywords)
FITS = {
    "every family, ngd": (every_family_model, {"family": FAMILIES, "max_iter": 3, "seed": 1}),
    "every family, adam": (every_family_model, {"family": FAMILIES, "max_iter": 3, "seed": 1,
                                                "optimizer": "adam"}),
    "logistic, joint full rank": (_logistic, {"family": FullRankGaussian, "max_iter": 4}),
    "beta-bernoulli": (lambda: BetaBernoulli([1, 0, 1, 1, 0, 1, 1]), {"max_iter": 2}),
    "gamma-poisson": (lambda: GammaPoisson([3, 1, 4, 1, 5]), {"max_iter": 2}),
    "eight schools": (EightSchools, {"max_iter": 5, "seed": 2}),
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """{name: (model, result, path of the saved result)}."""
    folder = tmp_path_factory.mktemp("results")
    out = {}
    for i, (name, (make, kwargs)) in enumerate(FITS.items()):
        model = make()
        result = natvi.fit(model, **kwargs)
        path = folder / f"result{i}.npz"
        result.save(path)
        out[name] = model, result, path
    return out


def test_every_family_is_covered(fitted):
    """The fits above hold a factor of each of the nine families, and a joint one."""
    names = {type(q).__name__ for _, result, _ in fitted.values()
             for q in result.posterior.values()}
    assert names == set(EVERY_FAMILY)
    assert ("a", "b") in fitted["every family, ngd"][1].posterior
    assert ("intercept", "coef") in fitted["logistic, joint full rank"][1].posterior


def _same_number(a, b):
    return a == b or (np.isnan(a) and np.isnan(b))


@pytest.mark.parametrize("name", list(FITS))
@pytest.mark.parametrize("with_model", [False, True])
def test_round_trip_is_lossless(fitted, name, with_model):
    """Factor keys (in order), families, natural parameters, ELBO, status, iterations,
    optimizer, gain, the reason for the families and every history array (seconds
    included) are identical after save/load, with or without the model."""
    model, result, path = fitted[name]
    loaded = natvi.load(path, model=model if with_model else None)
    assert isinstance(loaded, natvi.FitResult)
    assert list(loaded.posterior) == list(result.posterior)
    for key, q in result.posterior.items():
        assert type(loaded.posterior[key]) is type(q)
        assert loaded.posterior[key].natural.dtype == q.natural.dtype
        assert np.array_equal(loaded.posterior[key].natural, q.natural), key
    assert loaded.elbo == result.elbo
    assert (loaded.status, loaded.n_iter, loaded.optimizer) == (result.status, result.n_iter,
                                                                 result.optimizer)
    assert loaded.converged == result.converged
    assert _same_number(loaded.gain, result.gain)
    assert loaded.family_reason == result.family_reason and result.family_reason
    assert list(loaded.history) == list(result.history)
    for key, values in result.history.items():
        assert loaded.history[key].dtype == values.dtype, key
        assert np.array_equal(loaded.history[key], values), key
    assert repr(loaded) == repr(result)


@pytest.mark.parametrize("name", list(FITS))
def test_draws_identical_after_load(fitted, name):
    """sample(draws, seed) gives the same arrays (values, dtypes, latent order) from the
    result, from the file loaded without the model and with it; so does log_q."""
    model, result, path = fitted[name]
    want = result.sample(40, seed=7)
    for loaded in (natvi.load(path), natvi.load(path, model=model)):
        got = loaded.sample(40, seed=7)
        assert list(got) == list(want) == list(model.latents)
        for latent, values in want.items():
            assert got[latent].dtype == values.dtype, latent
            assert np.array_equal(got[latent], values), latent
        assert np.array_equal(loaded.log_q(got), result.log_q(want))


def _group_arrays(idata):
    """{group: {variable: values}} of an ArviZ object."""
    return {group: {var: np.asarray(idata[group][var].values) for var in idata[group].data_vars}
            for group in _groups(idata)}


def _groups(idata):
    """Group names of an InferenceData (ArviZ 0.x) or a DataTree (≥ 1.0)."""
    return list(idata.children) if arviz_1() else idata.groups()


def _assert_same_idata(got, want):
    got, want = _group_arrays(got), _group_arrays(want)
    assert set(got) == set(want)
    for group, variables in want.items():
        assert set(got[group]) == set(variables), group
        for var, values in variables.items():
            assert got[group][var].dtype == values.dtype, (group, var)
            assert np.array_equal(got[group][var], values), (group, var)


@pytest.mark.parametrize("name", list(FITS))
def test_arviz_and_pareto_k_identical_with_model(fitted, name):
    """Loaded with its model, a result gives the same ArviZ object (posterior draws, lp and
    log_q per draw, pointwise log-likelihood, observed data) and the same Pareto k̂."""
    model, result, path = fitted[name]
    loaded = natvi.load(path, model=model)
    want = result.to_arviz(draws=30, seed=3)
    _assert_same_idata(loaded.to_arviz(draws=30, seed=3), want)
    assert {"posterior", "sample_stats"} <= set(_groups(want))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k̂ of a 3-iteration fit may warn about its tail
        assert _same_number(loaded.pareto_k(draws=60, seed=4), result.pareto_k(draws=60, seed=4))


@pytest.mark.parametrize("name", ["every family, ngd", "eight schools"])
def test_without_model_only_sampling(fitted, name):
    """Loaded without its model, a result samples and evaluates log q, but to_arviz,
    pareto_k and diagnose raise a ValueError naming `model`."""
    _, _, path = fitted[name]
    loaded = natvi.load(path)
    draws = loaded.sample(30, seed=1)
    assert np.all(np.isfinite(loaded.log_q(draws)))
    for method in (loaded.to_arviz, loaded.pareto_k, loaded.diagnose):
        with pytest.raises(ValueError, match="model"):
            method(draws=30, seed=1)


def test_model_with_other_latents_is_refused(fitted):
    """A model whose latents differ (other names, other shapes) is a ValueError starting
    with "model:"."""
    _, _, path = fitted["logistic, joint full rank"]
    X, y = _breast_cancer()
    for other in (EightSchools(), LogisticRegression(X[:, :4], y),
                  LogisticRegression(X, y, fit_intercept=False)):
        with pytest.raises(ValueError, match="^model:"):
            natvi.load(path, model=other)


@pytest.mark.parametrize("model", ["model", 3, {"coef": 1}])
def test_model_that_is_not_a_model(fitted, model):
    """model= that is not a natvi Model is a ValueError starting with "model:", as in fit,
    not an AttributeError."""
    _, _, path = fitted["beta-bernoulli"]
    with pytest.raises(ValueError, match="^model:"):
        natvi.load(path, model=model)


def test_file_needs_no_pickle_and_is_written_where_asked(fitted, tmp_path):
    """Every member of a saved result reads with allow_pickle=False and none is an object
    array; save(path) writes exactly ``path`` (NumPy would append .npz to a name)."""
    _, result, path = fitted["every family, ngd"]
    with np.load(path, allow_pickle=False) as data:
        members = {name: data[name] for name in data.files}
    assert all(value.dtype != object for value in members.values())
    assert members["__meta__"].dtype.kind == "U" and members["__meta__"].shape == ()
    result.save(tmp_path / "result.natvi")
    assert sorted(os.listdir(tmp_path)) == ["result.natvi"]
    assert natvi.load(tmp_path / "result.natvi").elbo == result.elbo
    result.save(str(tmp_path / "result.natvi"))  # a str too, overwriting
    assert sorted(os.listdir(tmp_path)) == ["result.natvi"]


def test_failed_save_keeps_previous_file(fitted, tmp_path, monkeypatch):
    """A save that fails midway propagates its OSError, leaves the previous file byte for
    byte as it was, and leaves no temporary file."""
    _, result, _ = fitted["gamma-poisson"]
    path = tmp_path / "r.npz"
    result.save(path)
    before = path.read_bytes()

    def broken_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a result")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space left"):
        fitted["every family, ngd"][1].save(path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["r.npz"]
    assert path.read_bytes() == before
    assert natvi.load(path).elbo == result.elbo


# ---- files that are not a natvi result -------------------------------------------------
@pytest.mark.parametrize("label", list(BAD_FILES))
def test_bad_file(fitted, tmp_path, label):
    """Missing, empty, random, truncated, foreign or pickle-needing files are a ValueError
    starting with "path:" (never an exception type from NumPy or zipfile)."""
    with pytest.raises(ValueError, match="^path:"):
        natvi.load(bad_file(label, tmp_path, fitted["every family, ngd"][2]))


def test_unknown_version_and_checkpoint_refused(tmp_path, monkeypatch):
    """A result written by a natvi of an unknown format version, and a checkpoint (not a
    result), are ValueErrors starting with "path:" that say why."""
    model = BetaBernoulli([1, 0, 1])
    result = natvi.fit(model, max_iter=2, checkpoint=tmp_path / "checkpoint.npz")
    monkeypatch.setattr(serialization, "VERSION", 7)
    result.save(tmp_path / "v7.npz")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="^path:.*version 7"):
        natvi.load(tmp_path / "v7.npz")
    with pytest.raises(ValueError, match="^path:.*checkpoint"):
        natvi.load(tmp_path / "checkpoint.npz")


_edit = functools.partial(rewrite, "result")


def _set(key, value):
    return lambda d: d.update({key: value})


def _drop(key):
    return lambda d: d.pop(key)


DAMAGED = {
    "no latents": (_drop("latents"), None),
    "no factors": (_drop("factors"), None),
    "no elbo": (_drop("elbo"), None),
    "no status": (_drop("status"), None),
    "unknown family": (_set("factors", [[["p"], "os"]]), None),
    "latents not a dict": (_set("latents", [1, 2]), None),
    "no natural parameters": (None, _drop("natural|0")),
    "no history array": (None, _drop("history|elbo")),
    "natural parameters NaN": (None, lambda a: a.update({"natural|0": np.full(2, np.nan)})),
    "natural parameters outside the domain": (  # Beta: η = (a − 1, b − 1) > −1
        None, lambda a: a.update({"natural|0": np.full(2, -3.0)})),
    "natural parameters of another shape": (None,
                                            lambda a: a.update({"natural|0": np.ones((3, 2))})),
}


@pytest.mark.parametrize("label", list(DAMAGED))
def test_damaged_result(tmp_path, label):
    """A natvi result with missing metadata or arrays, an unknown family, or natural
    parameters that are NaN, outside the family's domain or of a shape that does not fit the
    latent, is a ValueError starting with "path:" — never a result that samples draws of the
    wrong shape."""
    result = natvi.fit(BetaBernoulli([1, 0, 1]), max_iter=2)
    result.save(tmp_path / "good.npz")
    meta_edit, arrays_edit = DAMAGED[label]
    _edit(tmp_path / "good.npz", tmp_path / "damaged.npz", meta_edit, arrays_edit)
    with pytest.raises(ValueError, match="^path:"):
        natvi.load(tmp_path / "damaged.npz")


def test_flipped_bytes(fitted, tmp_path):
    """Flipping one byte in the zip central directory's version, flags or compression
    fields, or every 61st byte of the file, either leaves the result readable with the same
    content or is a ValueError starting with "path:" (zipfile's NotImplementedError for an
    'unsupported compression method' must not leak)."""
    _, result, path = fitted["beta-bernoulli"]
    data = path.read_bytes()
    offsets = sorted(set(central_directory_offsets(data)) | set(range(0, len(data), 61)))
    for got in read_flipped(data, offsets, tmp_path / "flip.npz", natvi.load, "path:"):
        assert got.elbo == result.elbo and got.status == result.status
        assert all(np.array_equal(got.posterior[k].natural, q.natural)
                   for k, q in result.posterior.items())
        assert all(np.array_equal(got.history[k], v) for k, v in result.history.items())


# ---- ArviZ's own file format ----------------------------------------------------------
@pytest.mark.parametrize("name", ["eight schools",
                                  pytest.param("every family, ngd", marks=pytest.mark.slow)])
def test_arviz_netcdf_round_trip(fitted, tmp_path, name):
    """to_arviz(...).to_netcdf(path) of a result loaded with its model, then
    arviz.from_netcdf(path), gives back the same groups, variables, values (bit for bit),
    dimensions and coordinates (eight schools' school names included)."""
    pytest.importorskip("h5netcdf")
    model, _, path = fitted[name]
    idata = natvi.load(path, model=model).to_arviz(draws=50, seed=5)
    idata.to_netcdf(str(tmp_path / "post.nc"))
    back = az.from_netcdf(str(tmp_path / "post.nc"))
    _assert_same_idata(back, idata)
    for group in _groups(idata):
        for var in idata[group].data_vars:
            assert back[group][var].dims == idata[group][var].dims, (group, var)
        for coord, values in idata[group].coords.items():
            assert np.array_equal(back[group][coord].values, values.values), coord
    if name == "eight schools":
        assert list(back.posterior["theta"].coords["school"].values)[0] == "Choate"
        assert back.log_likelihood["y"].shape == (1, 50, 8)


def test_a_file_whose_directory_lost_members_is_damaged(tmp_path):
    """A zip directory that still parses but lists fewer members (one flipped byte in an
    entry's length fields does this) is caught by the member list in the metadata: every
    entry left passes its CRC check, so nothing else would notice."""
    serialization.write(tmp_path / "full.npz", "result", {}, {"a": np.ones(3), "b": np.zeros(2)})
    with zipfile.ZipFile(tmp_path / "full.npz") as src, \
            zipfile.ZipFile(tmp_path / "short.npz", "w") as dst:
        for info in src.infolist():
            if info.filename != "b.npy":
                dst.writestr(info, src.read(info))
    meta, arrays = serialization.read(tmp_path / "full.npz", "result")
    assert set(arrays) == {"a", "b"} and "members" not in meta
    with pytest.raises(ValueError, match=r"^path: .*damaged.*\(missing b, unexpected none\)"):
        serialization.read(tmp_path / "short.npz", "result")
