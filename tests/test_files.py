"""natvi's files under hostile conditions: bad paths, killed writers, hand-edited contents.

Paths: ``result.save`` and ``fit(checkpoint=...)`` name the user's path (never a temporary
file) when it is a directory (IsADirectoryError, up front for a fit), when its directory
does not exist (ValueError, as ``checkpoint=`` has always done) or vanishes mid-fit, and
when it is not a path at all. A writer killed mid-write leaves a temporary file behind; the
next successful write of the same target removes it, and nothing else.

Hand-edited files whose CRCs are valid: every metadata field and array of a result and of
a checkpoint is checked (types, finiteness, ranges, order), and a field that fails is a
ValueError naming the file and the field. A zip member that could inflate past what the
file holds (a zip bomb) is refused from the zip directory and the array headers alone,
before any member's data is inflated or read.
"""

import io
import math
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from helpers import count_calls, rewrite

import natvi
from natvi.data import load_breast_cancer
from natvi.families import MeanFieldGaussian
from natvi.models import BetaBernoulli, LogisticRegression


@pytest.fixture(scope="module")
def result():
    """A two-iteration Adam fit of a Beta-Bernoulli model (factor 0: the Beta posterior)."""
    return natvi.fit(BetaBernoulli([1, 0, 1, 1]), "adam", max_iter=2)


# ---- 10. paths --------------------------------------------------------------------------
def test_save_into_missing_directory_names_the_path(result, tmp_path):
    """save() into a directory that does not exist is a ValueError naming the user's path
    and saying its directory does not exist — as fit(checkpoint=...) reports it — not a
    FileNotFoundError naming a temporary file."""
    path = tmp_path / "no" / "such" / "r.npz"
    with pytest.raises(ValueError) as saved:
        result.save(path)
    with pytest.raises(ValueError) as fitted:
        natvi.fit(BetaBernoulli([1, 0]), max_iter=2, checkpoint=path)
    for exc, name in ((saved, "path"), (fitted, "checkpoint")):
        assert str(exc.value) == f"{name}: the directory of {str(path)!r} does not exist; " \
                                 f"create it first"


def test_save_to_a_directory(result, tmp_path):
    """save(directory) is an IsADirectoryError naming the path."""
    with pytest.raises(IsADirectoryError, match=f"^path: {re.escape(repr(str(tmp_path)))} is a "
                                                f"directory"):
        result.save(tmp_path)
    assert os.listdir(tmp_path) == []


def test_checkpoint_to_a_directory_fails_before_fitting(tmp_path):
    """fit(checkpoint=directory) is an IsADirectoryError naming checkpoint and the path,
    raised while the arguments are checked: before the model is evaluated once."""
    model = BetaBernoulli([1, 0, 1])
    calls = count_calls(model)
    with pytest.raises(IsADirectoryError,
                       match=f"^checkpoint: {re.escape(repr(str(tmp_path)))} is a directory"):
        natvi.fit(model, checkpoint=tmp_path, checkpoint_every=1)
    assert calls[0] == 0


@pytest.mark.parametrize("path", [123, None, 1.5, b"r.npz", ""])
def test_save_and_load_need_a_path(result, path):
    """save() and load() of something that is not a path are ValueErrors naming ``path`` and
    saying what is expected, not a bare TypeError from os.fspath."""
    expected = r"^path: expected a file path \(a str or os\.PathLike\)"
    with pytest.raises(ValueError, match=expected):
        result.save(path)
    with pytest.raises(ValueError, match=expected):
        natvi.load(path)


def test_directory_removed_mid_fit_names_the_checkpoint(tmp_path):
    """When the checkpoint's directory disappears during a fit, the write's error names the
    checkpoint's path, not the temporary file it could not create."""
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "c.npz"

    def remove_folder(n_iter, elbo, posterior):
        if n_iter == 2:
            os.remove(path)
            folder.rmdir()

    with pytest.raises(FileNotFoundError) as exc:
        natvi.fit(BetaBernoulli([1, 0, 1]), "adam", max_iter=5, checkpoint=path,
                  checkpoint_every=1, callback=remove_folder)
    assert repr(str(path)) in str(exc.value)
    assert ".natvi-" not in str(exc.value) and ".tmp" not in str(exc.value)


def _dead_pid():
    """The process id of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


#: writing a file as a saved result or as the checkpoints of a fit, as source shared by this
#: file and the subprocess it kills mid-write
WRITE_SOURCE = textwrap.dedent("""
    import natvi
    from natvi.models import BetaBernoulli


    def write(kind, path):
        if kind == "save":
            natvi.fit(BetaBernoulli([1, 0]), max_iter=2).save(path)
        else:
            natvi.fit(BetaBernoulli([1, 0]), "adam", max_iter=3, checkpoint=path,
                      checkpoint_every=1)
""")
_WRITE = {}
exec(WRITE_SOURCE, _WRITE)
write = _WRITE["write"]


@pytest.mark.parametrize("kind", ["save", "checkpoint"])
def test_write_removes_only_stale_temporaries_of_its_target(tmp_path, kind):
    """A successful write of r.npz removes the temporary files that earlier writes of r.npz
    by processes no longer running left behind, and keeps everything else: a temporary of a
    running process (this one), one of another target, and files that only look alike."""
    dead, alive = _dead_pid(), os.getpid()
    stale = [f".natvi-r.npz-{dead}-abcd_123.tmp", f".natvi-r.npz-{dead}-zz9xk2qa.tmp"]
    kept = [f".natvi-r.npz-{alive}-abcd_123.tmp", f".natvi-other.npz-{dead}-abcd_123.tmp",
            f".natvi-r.npz-5-{dead}-abcd_123.tmp", f".natvi-r.npz-{dead}-abcd_123.tmp.bak",
            f"natvi-r.npz-{dead}-abcd_123.tmp", "notes.txt"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"PK\x03\x04 half a file")
    write(kind, tmp_path / "r.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["r.npz"])


KILLED_WRITER = WRITE_SOURCE + textwrap.dedent("""

    import os
    import signal
    import sys

    import numpy as np


    def dying_savez(file, *args, **kwargs):
        '''Write part of the file, then die as a SIGKILL or a power cut would stop it.'''
        file.write(b"PK\\x03\\x04 half a file")
        file.flush()
        os.kill(os.getpid(), signal.SIGKILL)


    np.savez = dying_savez
    write(sys.argv[1], sys.argv[2])
""")


@pytest.mark.parametrize("kind", ["save", "checkpoint"])
def test_sigkill_mid_write_then_next_write_cleans_up(tmp_path, kind):
    """A process SIGKILLed in the middle of writing r.npz leaves its temporary file, named
    after the target and the process; the next write of r.npz (by another process) removes
    it."""
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    folder = tmp_path / "out"
    folder.mkdir()
    child = subprocess.Popen([sys.executable, str(script), kind, str(folder / "r.npz")],
                             cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    _, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    left = os.listdir(folder)
    assert len(left) == 1, left
    assert re.fullmatch(rf"\.natvi-r\.npz-{child.pid}-\w+\.tmp", left[0]), left
    write(kind, folder / "r.npz")
    assert os.listdir(folder) == ["r.npz"]


# ---- 11. hand-edited results ------------------------------------------------------------
def _set(key, value):
    return lambda d: d.update({key: value})


def _set_at(key, index, value):
    def edit(arrays):
        arrays[key] = arrays[key].copy()
        arrays[key][index] = value
    return edit


def _as(key, dtype):
    return lambda arrays: arrays.update({key: arrays[key].astype(dtype)})


def _keep(key, index):
    return lambda arrays: arrays.update({key: arrays[key][index]})


#: label → (edit of the metadata, edit of the arrays, what the error must say)
DAMAGED_RESULTS = {
    "n_iter 1e400": (_set("n_iter", math.inf), None,
                     "n_iter must be a non-negative integer, got inf"),
    "n_iter text": (_set("n_iter", "abc"), None,
                    "n_iter must be a non-negative integer, got 'abc'"),
    "n_iter fractional": (_set("n_iter", 1.5), None, "n_iter must be a non-negative integer"),
    "n_iter negative": (_set("n_iter", -1), None,
                        "n_iter must be a non-negative integer, got -1"),
    "n_iter true": (_set("n_iter", True), None, "n_iter must be a non-negative integer"),
    "n_iter not the history's": (_set("n_iter", 5), None,
                                 r"history\|elbo has shape \(3,\), expected \(6,\)"),
    "elbo null": (_set("elbo", None), None, "elbo must be a finite number, got None"),
    "elbo NaN": (_set("elbo", math.nan), None, "elbo must be a finite number, got nan"),
    "elbo -inf": (_set("elbo", -math.inf), None, "elbo must be a finite number, got -inf"),
    "elbo list": (_set("elbo", [1.0]), None, r"elbo must be a finite number, got \[1\.0\]"),
    "gain negative": (_set("gain", -1.0), None, "gain must be a non-negative number"),
    "gain text": (_set("gain", "0"), None, "gain must be a non-negative number"),
    "unknown status": (_set("status", "finished"), None, "status must be one of"),
    "status null": (_set("status", None), None, "status must be one of"),
    "empty optimizer name": (_set("optimizer", ""), None, "optimizer must be a name"),
    "optimizer name a number": (_set("optimizer", 3), None, "optimizer must be a name"),
    "optimizer name on two lines": (_set("optimizer", "adam\n(0.01)"), None,
                                    "optimizer must be a name"),
    "no optimizer": (lambda m: m.pop("optimizer"), None, "optimizer is missing"),
    "family reason a number": (_set("family_reason", 1), None,
                               "family_reason must be a line of text or null"),
    "history list": (_set("history", ["elbo"]), None, "history must list the arrays"),
    "latent of negative size": (_set("latents", {"p": [[-2], "unit_interval", None]}), None,
                                "latents must map each name to a valid"),
    "latent of unknown support": (_set("latents", {"p": [[], "reals", None]}), None,
                                  "latents must map each name to a valid"),
    "factor of another support": (_set("factors", [[["p"], "Gamma"]]), None,
                                  "factors: Gamma has support 'positive'"),
    "factor of an unknown latent": (_set("factors", [[["q"], "Beta"]]), None,
                                    "factors must cover each latent once"),
    "Beta over two latents": (_set("factors", [[["p", "p"], "Beta"]]), None,
                              r"factors: only a FullRankGaussian covers several latents"),
    "latent in two factors": (_set("factors", [[["p"], "Beta"], [["p"], "Beta"]]), None,
                              "factors must cover each latent once"),
    "latent of a million values": (
        _set("latents", {"p": [[10**6], "unit_interval", None]}), None,
        r"natural\|0 holds 2 numbers, too few for factor 'p' over 1000000 latent values"),
    "natural parameters inf": (None, _set_at("natural|0", 0, np.inf),
                               r"natural\|0 must hold finite numbers, got inf at index 0"),
    "natural parameters integers": (None, _as("natural|0", int),
                                    r"natural\|0 must hold finite numbers, got an array of int"),
    "ELBO history NaN": (None, _set_at("history|elbo", 1, np.nan),
                         r"history\|elbo must hold finite numbers, got nan at index 1"),
    "step size negative": (None, _set_at("history|step_size", 1, -0.5),
                           r"history\|step_size must hold non-negative finite numbers"),
    "evaluations negative": (None, _set_at("history|grad_evals", 0, -1),
                             r"history\|grad_evals must hold non-negative integers"),
    "evaluations decreasing": (None, _set_at("history|grad_evals", 2, 0),
                               r"history\|grad_evals must not decrease"),
    "evaluations as floats": (None, _as("history|grad_evals", float),
                              r"history\|grad_evals must hold non-negative integers, got an "
                              r"array of float64"),
    "seconds decreasing": (None, _set_at("history|seconds", 2, 0.0),
                           r"history\|seconds must not decrease"),
    "seconds inf": (None, _set_at("history|seconds", 2, np.inf),
                    r"history\|seconds must hold non-negative finite numbers"),
    "rejected negative": (None, _set_at("history|rejected", 1, -3),
                          r"history\|rejected must hold non-negative integers"),
    "history of another length": (None, _keep("history|elbo", slice(2)),
                                  r"history\|elbo has shape \(2,\), expected \(3,\)"),
    "history 2-d": (None, _keep("history|seconds", None),
                    r"history\|seconds has shape \(1, 3\), expected \(3,\)"),
}


@pytest.mark.parametrize("label", list(DAMAGED_RESULTS))
def test_hand_edited_result(result, tmp_path, label):
    """A result edited by hand (valid CRCs) whose metadata is ill-typed, non-finite, out of
    range or unknown, or whose arrays hold NaN, negative or decreasing values where a fit
    never writes them, is a ValueError naming the file and the field — not an
    OverflowError or TypeError, nor a result that loads."""
    meta_edit, arrays_edit, message = DAMAGED_RESULTS[label]
    result.save(tmp_path / "good.npz")
    path = tmp_path / "damaged.npz"
    rewrite("result", tmp_path / "good.npz", path, meta_edit, arrays_edit)
    with pytest.raises(ValueError, match=f"^path: {re.escape(repr(str(path)))} is a damaged "
                                         f"natvi result: {message}"):
        natvi.load(path)


def test_every_optimizer_name_and_status_of_a_fit_loads(tmp_path):
    """The names natvi's optimizers take and every status a fit ends with load back."""
    names = ["ngd(1)", "ngd(0.1)", "ngd-anderson(30, 0.8)", "adam(0.01)", "sgd(1e-05)",
             "momentum(0.01)", "adagrad(0.1)", "rmsprop(0.01)", "adadelta(1)", "my optimizer"]
    statuses = ["converged", "max_iter", "diverged", "interrupted"]
    natvi.fit(BetaBernoulli([1, 0]), max_iter=2).save(tmp_path / "r.npz")
    for name, status in zip(names, statuses * 3, strict=False):
        rewrite("result", tmp_path / "r.npz", tmp_path / "e.npz",
              lambda m, n=name, s=status: m.update(optimizer=n, status=s, gain=float("nan")))
        loaded = natvi.load(tmp_path / "e.npz")
        assert (loaded.optimizer, loaded.status) == (name, status)


# ---- 11. hand-edited checkpoints --------------------------------------------------------
def _standardized():
    X, y, _ = load_breast_cancer()
    return (X[:, :6] - X[:, :6].mean(axis=0)) / X[:, :6].std(axis=0), y


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{optimizer: checkpoint path} of three-iteration mean-field fits of a logistic
    regression on six breast-cancer features."""
    folder = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for optimizer in OPTIMIZERS:
        out[optimizer] = folder / f"{optimizer}.npz"
        _fit(optimizer, max_iter=3, checkpoint=out[optimizer])
    return out


#: the optimizers of the checkpoints edited below, by the fields of their states
OPTIMIZERS = {"anderson": natvi.optim.anderson, "adam": natvi.optim.adam,
              "ngd": natvi.optim.natural_gradient}


def _fit(optimizer, model=None, **kwargs):
    return natvi.fit(model or LogisticRegression(*_standardized()), OPTIMIZERS[optimizer](),
                     family=MeanFieldGaussian, **kwargs)


def _seed_state(**edit):
    return lambda meta: meta["rng_state"]["state"].update(edit)


#: label → (optimizer, metadata edit, arrays edit, what the error must say); member "|1" is
#: the coefficients' factor
DAMAGED_CHECKPOINTS = {
    "n_iter 1e400": ("anderson", _set("n_iter", math.inf), None,
                     "n_iter must be a non-negative integer, got inf"),
    "n_iter text": ("anderson", _set("n_iter", "abc"), None,
                    "n_iter must be a non-negative integer"),
    "n_evals negative": ("anderson", _set("n_evals", -4), None,
                         "n_evals must be a non-negative integer"),
    "n_evals 1e400": ("anderson", _set("n_evals", math.inf), None,
                      "n_evals must be a non-negative integer"),
    "n_recent null": ("anderson", _set("n_recent", None), None,
                      "n_recent must be a non-negative integer"),
    "seconds negative": ("anderson", _set("seconds", -1), None,
                         "seconds must be a non-negative finite number, got -1"),
    "seconds inf": ("anderson", _set("seconds", math.inf), None,
                    "seconds must be a non-negative finite number"),
    "seconds list": ("anderson", _set("seconds", [1.0, 2.0]), None,
                     "seconds must be a non-negative finite number"),
    "unknown status": ("anderson", _set("status", "paused"), None, "status must be one of"),
    "negative generator state": ("anderson", _seed_state(state=-1), None,
                                 "rng_state is not the state of a NumPy bit generator"),
    "generator state inf": ("anderson", _seed_state(inc=math.inf), None,
                            "rng_state is not the state of a NumPy bit generator"),
    "history names": ("anderson", _set("history", "elbo"), None,
                      "history must list the arrays"),
    "ELBO NaN": ("anderson", None, _set_at("value", (), np.nan),
                 "value must hold finite numbers, got nan"),
    "gain negative": ("anderson", None, _set_at("gain", (), -1.0),
                      "gain must hold non-negative numbers"),
    "parameters NaN": ("anderson", None, _set_at("params|1", 0, np.nan),
                       r"params\|1 must hold finite numbers, got nan at index \(0, 0\)"),
    "gradient inf": ("anderson", None, _set_at("grad|1", 2, np.inf),
                     r"grad\|1 must hold finite numbers, got inf"),
    "natural gradient NaN": ("anderson", None, _set_at("natural_grad|0", 0, np.nan),
                             r"natural_grad\|0 must hold finite numbers"),
    "ELBO history NaN": ("anderson", None, _set_at("history|elbo", 1, np.nan),
                         r"history\|elbo must hold finite numbers, got nan at index 1"),
    "evaluations decreasing": ("anderson", None, _set_at("history|grad_evals", 3, 0),
                               r"history\|grad_evals must not decrease"),
    "seconds history negative": ("anderson", None, _set_at("history|seconds", 0, -1.0),
                                 r"history\|seconds must hold non-negative"),
    "Anderson count negative": ("anderson", None, _set_at("opt|count", (), -1),
                                r"opt\|count must hold non-negative integers, got -1"),
    "Anderson differences NaN": ("anderson", None, _set_at("opt|d_params|1", 0, np.nan),
                                 r"opt\|d_params\|1 must hold finite numbers"),
    "NGD step size inf": ("ngd", None, _set_at("opt|step_size", (), np.inf),
                          r"opt\|step_size must hold non-negative finite numbers"),
    "Anderson count of another shape": ("anderson", None, _set("opt|stored", np.zeros(3, int)),
                                        r"opt\|stored has shape \(3,\), expected \(\)"),
    "Anderson flag as a number": ("anderson", None, _as("opt|has_prev", float),
                                  r"opt\|has_prev must be a boolean"),
    "Adam second moment negative": ("adam", None, _set_at("opt|v|1", 0, -1e-3),
                                    r"opt\|v\|1 must hold non-negative finite numbers, got "
                                    r"-0\.001 at index \(0, 0\)"),
    "Adam second moment NaN": ("adam", None, _set_at("opt|v|0", 0, np.nan),
                               r"opt\|v\|0 must hold non-negative finite numbers, got nan"),
    "Adam first moment NaN": ("adam", None, _set_at("opt|m|1", 0, np.nan),
                              r"opt\|m\|1 must hold finite numbers, got nan"),
    "Adam first moment inf": ("adam", None, _set_at("opt|m|1", 0, -np.inf),
                              r"opt\|m\|1 must hold finite numbers, got -inf"),
    "Adam count as a float": ("adam", None, _as("opt|count", float),
                              r"opt\|count must hold non-negative integers, got an array of "
                              r"float64"),
    "NGD step size negative": ("ngd", None, _set_at("opt|step_size", (), -0.01),
                               r"opt\|step_size must hold non-negative finite numbers"),
    "NGD direction NaN": ("ngd", None, _set_at("opt|direction|1", 0, np.nan),
                          r"opt\|direction\|1 must hold finite numbers"),
}


@pytest.mark.parametrize("label", list(DAMAGED_CHECKPOINTS))
def test_resume_from_hand_edited_checkpoint(checkpoints, tmp_path, label):
    """Resuming a checkpoint edited by hand (valid CRCs) with ill-typed, non-finite or
    out-of-range metadata, a foreign generator state, or NaN, infinite or negative state
    arrays (parameters, gradients, history, Adam's moments, Anderson's differences) is a
    ValueError naming resume, the file and the field, before any iteration."""
    optimizer, meta_edit, arrays_edit, message = DAMAGED_CHECKPOINTS[label]
    path = tmp_path / "damaged.npz"
    rewrite("checkpoint", checkpoints[optimizer], path, meta_edit, arrays_edit)
    model = LogisticRegression(*_standardized())
    calls = count_calls(model)
    with pytest.raises(ValueError, match=f"^resume: {re.escape(repr(str(path)))} is a damaged "
                                         f"natvi checkpoint: {message}"):
        _fit(optimizer, model, resume=path, max_iter=6)
    assert calls[0] == 0


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_unedited_checkpoints_resume(checkpoints, tmp_path, optimizer):
    """The checkpoints the tests above edit resume as they are (rewritten unchanged too)."""
    rewrite("checkpoint", checkpoints[optimizer], tmp_path / "same.npz")
    for path in (checkpoints[optimizer], tmp_path / "same.npz"):
        assert _fit(optimizer, resume=path, max_iter=4).n_iter == 4


# ---- 11. members that would inflate past what the file holds ----------------------------
def _npy(values):
    buffer = io.BytesIO()
    np.save(buffer, values)
    return buffer.getvalue()


def _rewrite_member(source, path, member, data, compress_type=zipfile.ZIP_STORED):
    """Copy the zip ``source`` to ``path`` with ``member``'s content replaced by ``data``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            if info.filename == member:
                info = zipfile.ZipInfo(member, info.date_time)
                info.compress_type = compress_type
                dst.writestr(info, data, compresslevel=9)
            else:
                dst.writestr(info, src.read(info))


def _declare_size(path, member, file_size, compress_size=None):
    """Make the zip directory declare ``file_size`` bytes for ``member`` (and, if given,
    ``compress_size`` compressed ones)."""
    data = bytearray(path.read_bytes())
    for entry in (m.start() for m in re.finditer(rb"PK\x01\x02", bytes(data))):
        name_length = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46:entry + 46 + name_length].decode() == member:
            struct.pack_into("<I", data, entry + 24, file_size)
            if compress_size is not None:
                struct.pack_into("<I", data, entry + 20, compress_size)
    path.write_bytes(bytes(data))


def _npy_header_only(shape, values):
    """An array file whose header declares ``shape`` but which holds ``values`` only."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue() + np.asarray(values, "<f8").tobytes()


@pytest.fixture
def spy(monkeypatch):
    """Records whether any member was inflated, CRC-checked or loaded as an array."""
    calls = []
    inflate, testzip, load = zipfile._get_decompressor, zipfile.ZipFile.testzip, np.load

    def inflating(compress_type):
        if compress_type != zipfile.ZIP_STORED:
            calls.append("inflate")
        return inflate(compress_type)

    def recording(name, original):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(zipfile, "_get_decompressor", inflating)
    monkeypatch.setattr(zipfile.ZipFile, "testzip", recording("testzip", testzip))
    monkeypatch.setattr(np, "load", recording("np.load", load))
    return calls


def _deflated_zeros(src, dst):
    """Replace the ELBO history by 16 MiB of zeros, deflated to 16 KiB."""
    _rewrite_member(src, dst, BOMB_MEMBER, _npy(np.zeros(2**21)), zipfile.ZIP_DEFLATED)


BOMB_MEMBER = "history|elbo.npy"
#: label → (make the file from a good result's path, the reason the error gives)
BOMBS = {
    # A small file whose member inflates to 16 MiB, as its zip directory honestly says.
    "deflated to 16 MiB": (_deflated_zeros, "is compressed"),
    # The same member, the directory declaring the 200 bytes of a real history: it would
    # inflate far past its declared size.
    "deflated past its declared size": (
        lambda src, dst: (_deflated_zeros(src, dst), _declare_size(dst, BOMB_MEMBER, 200)),
        "is compressed"),
    # An uncompressed member whose directory entry declares 2 GiB the file does not hold.
    "stored, declaring 2 GiB": (
        lambda src, dst: (_rewrite_member(src, dst, BOMB_MEMBER, _npy(np.zeros(3))),
                          _declare_size(dst, BOMB_MEMBER, 2**31 - 1, 2**31 - 1)),
        "declares 2147483647 bytes, more than the file holds"),
    # An uncompressed member whose array header declares 2**28 floats (2 GiB), holding 3.
    "array header declaring 2 GiB": (
        lambda src, dst: _rewrite_member(src, dst, BOMB_MEMBER,
                                         _npy_header_only((2**28,), np.zeros(3))),
        r"holds \d+ bytes, but its array header declares 2147483\d\d\d"),
}


@pytest.mark.parametrize("label", list(BOMBS))
def test_member_inflating_past_the_file_is_refused_before_unpacking(result, tmp_path, spy,
                                                                    label):
    """A valid result with one member replaced by a zip bomb — deflated to inflate to 16 MiB
    (whether its header says so or lies), or declaring 2 GiB in the zip directory or in its
    array header — is a ValueError naming the file and the member, raised before any
    member is inflated, CRC-checked or loaded: the memory and time spent are bounded by the
    file's size by construction."""
    make, reason = BOMBS[label]
    result.save(tmp_path / "good.npz")
    path = tmp_path / "bomb.npz"
    make(tmp_path / "good.npz", path)
    assert path.stat().st_size < 2**16
    spy.clear()
    with pytest.raises(ValueError, match=f"^path: {re.escape(repr(str(path)))} is not a "
                                         rf"readable natvi file: member 'history\|elbo\.npy' "
                                         f"{reason}"):
        natvi.load(path)
    assert spy == []


def test_members_that_overlap_are_refused(result, tmp_path, spy):
    """Two directory entries pointing at the same bytes (how non-recursive zip bombs make a
    small file inflate to many times its size) are refused before any member is read."""
    result.save(tmp_path / "good.npz")
    data = bytearray((tmp_path / "good.npz").read_bytes())
    entries = [m.start() for m in re.finditer(rb"PK\x01\x02", bytes(data))]
    first_offset = struct.unpack_from("<I", data, entries[0] + 42)[0]
    struct.pack_into("<I", data, entries[1] + 42, first_offset)
    (tmp_path / "overlap.npz").write_bytes(bytes(data))
    spy.clear()
    with pytest.raises(ValueError, match=r"^path: .* is not a readable natvi file: member "
                                         r".* more than the file holds"):
        natvi.load(tmp_path / "overlap.npz")
    assert spy == []
