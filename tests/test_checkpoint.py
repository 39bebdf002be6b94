"""Checkpoints: interrupt a fit anywhere, resume it, and get the uninterrupted numbers bit for bit.

A resumed fit must reproduce the final ELBO, every factor's natural parameters and the whole
history (but its wall-clock seconds) of a fit of the same model, family, optimizer and seed
that was never interrupted. Three fits cover the three ways a fit moves: a stochastic one
(eight schools, Monte Carlo ELBO, constant natural-gradient step, iterate averaging) and two
deterministic ones (breast-cancer logistic regression by quadrature: natural gradient with a
conjugate line search, and Adam). Interruptions: SIGKILL of a subprocess (slow tests), Ctrl-C
in the callback, in the middle of a line search and in the middle of a checkpoint write, and a
write that fails. Damaged or mismatched checkpoints are ValueErrors starting with "resume:".
"""

import functools
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest
from helpers import (
    BAD_FILES,
    bad_file,
    central_directory_offsets,
    count_calls,
    read_flipped,
    rewrite,
)

import natvi
from natvi import fit_state, serialization
from natvi.data import load_breast_cancer
from natvi.families import FullRankGaussian, MeanFieldGaussian
from natvi.model import Latent, Model
from natvi.models import EightSchools, LogisticRegression

MF = MeanFieldGaussian  # the logistic fits here are mean-field, as before "auto"

#: The fits, as source shared by this file and the subprocesses it starts, so that both build
#: exactly the same model, optimizer and settings.
CASES_SOURCE = textwrap.dedent("""
    import functools

    import natvi
    from natvi.data import load_breast_cancer
    from natvi.models import EightSchools, LogisticRegression


    @functools.lru_cache
    def standardized_breast_cancer():
        X, y, _ = load_breast_cancer()
        return (X - X.mean(axis=0)) / X.std(axis=0), y


    def build(case, full):
        '''(model, optimizer, fit keywords) of a case; full: the whole fit, else a short one.'''
        if case == "eight_schools":
            return (EightSchools(engine="monte_carlo"), "ngd",
                    {"seed": 3} if full else {"seed": 3, "max_iter": 25})
        X, y = standardized_breast_cancer()
        mf = {"family": natvi.MeanFieldGaussian}
        if case == "logistic_ngd":
            return LogisticRegression(X, y), "ngd", mf
        if case == "logistic_line_search":
            return LogisticRegression(X, y), natvi.optim.natural_gradient(1.0), mf
        if case == "logistic_adam":
            return LogisticRegression(X, y), "adam", {"max_iter": 1000 if full else 150, **mf}
        raise ValueError(case)
""")
_CASES = {}
exec(CASES_SOURCE, _CASES)  # the same source runs in the subprocesses
build = _CASES["build"]
CASES = ["eight_schools", "logistic_ngd", "logistic_line_search", "logistic_adam"]


def assert_same_fit(got, want):
    """Bit-for-bit equality of two fits: ELBO, status, iterations, every factor's natural
    parameters, and every history array but the wall-clock seconds."""
    assert got.status == want.status
    assert got.n_iter == want.n_iter
    assert got.optimizer == want.optimizer
    assert set(got.history) == set(want.history)
    for name, values in want.history.items():
        if name != "seconds":
            assert got.history[name].dtype == values.dtype, name
            differ = np.flatnonzero(got.history[name] != values)
            assert differ.size == 0, f"history[{name!r}] differs from iteration {differ[:1]}"
    assert list(got.posterior) == list(want.posterior)
    for key, q in want.posterior.items():
        assert type(got.posterior[key]) is type(q)
        assert np.array_equal(got.posterior[key].natural, q.natural), key
    assert got.elbo == want.elbo


def assert_same_checkpoint(path_a, path_b):
    """Two checkpoint files hold the same state: every array but the history's seconds and
    every metadata field but the elapsed seconds are identical."""
    meta_a, arrays_a = serialization.read(path_a, "checkpoint")
    meta_b, arrays_b = serialization.read(path_b, "checkpoint")
    assert {k: v for k, v in meta_a.items() if k != "seconds"} == \
        {k: v for k, v in meta_b.items() if k != "seconds"}
    assert set(arrays_a) == set(arrays_b)
    for name, value in arrays_a.items():
        if name != "history|seconds":
            assert value.dtype == arrays_b[name].dtype, name
            assert np.array_equal(value, arrays_b[name]), name


def checkpoint_meta(path):
    return serialization.read(path, "checkpoint")[0]


#: checkpoint only at the end (and on an interrupt): every write is flushed to disk
AT_END = 10**6


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The short uninterrupted fit of each case, with its final checkpoint in ``.path``."""
    folder = tmp_path_factory.mktemp("reference")
    out = {}
    for case in CASES:
        model, optimizer, kwargs = build(case, full=False)
        out[case] = natvi.fit(model, optimizer, checkpoint=folder / f"{case}.npz",
                              checkpoint_every=AT_END, **kwargs)
        out[case].path = folder / f"{case}.npz"
    return out


def test_reference_fits_are_what_the_cases_intend(reference):
    """The short fits exercise what they should: eight schools stops at max_iter (so the
    result is an average of iterates), logistic NGD converges, Adam runs to max_iter."""
    assert reference["eight_schools"].status == "max_iter"
    assert reference["eight_schools"].n_iter == 25
    assert reference["logistic_ngd"].status == "converged"
    assert reference["logistic_adam"].status == "max_iter"
    assert reference["logistic_adam"].n_iter == 150


def _interrupt_at(iteration):
    def callback(n_iter, elbo, posterior):
        if n_iter == iteration:
            raise KeyboardInterrupt
    return callback


# ---- 1. Ctrl-C in the callback, then resume ---------------------------------------------
SLOW = pytest.mark.slow
#: kill points per case; "last" is the final iteration of the uninterrupted fit
KILL_POINTS = [
    ("eight_schools", 1), pytest.param("eight_schools", 12, marks=SLOW),
    pytest.param("eight_schools", "last", marks=SLOW),
    ("logistic_ngd", 1), ("logistic_ngd", 40), ("logistic_ngd", "last"),
    pytest.param("logistic_adam", 1, marks=SLOW), ("logistic_adam", 75),
    pytest.param("logistic_adam", "last", marks=SLOW),
]


@pytest.mark.parametrize("case, kill", KILL_POINTS)
def test_interrupt_in_callback_then_resume(reference, tmp_path, case, kill):
    """A KeyboardInterrupt from the callback after iteration k returns status "interrupted"
    with the history of the first k iterations; resuming its final checkpoint gives the
    uninterrupted fit bit for bit, and the resumed fit's own final checkpoint equals the
    uninterrupted fit's. Interrupting at the very last iteration must not lose its verdict
    (converged or max_iter)."""
    want = reference[case]
    kill = want.n_iter if kill == "last" else kill
    model, optimizer, kwargs = build(case, full=False)
    interrupted = natvi.fit(model, optimizer, checkpoint=tmp_path / "cut.npz",
                            checkpoint_every=AT_END, callback=_interrupt_at(kill), **kwargs)
    assert interrupted.status == "interrupted"
    assert interrupted.n_iter == kill
    for name, values in want.history.items():
        if name != "seconds":
            assert np.array_equal(interrupted.history[name], values[:kill + 1]), name
    meta = checkpoint_meta(tmp_path / "cut.npz")
    # An interrupt after the iteration that converged keeps its verdict in the checkpoint.
    verdict = want.status if kill == want.n_iter and want.status == "converged" else \
        "interrupted"
    assert (meta["status"], meta["n_iter"]) == (verdict, kill)

    resumed = natvi.fit(model, optimizer, resume=tmp_path / "cut.npz",
                        checkpoint=tmp_path / "resumed.npz", checkpoint_every=AT_END, **kwargs)
    assert_same_fit(resumed, want)
    assert_same_checkpoint(tmp_path / "resumed.npz", want.path)


def test_running_checkpoint_every_k(reference, tmp_path):
    """With checkpoint_every=7 the file holds iterations 7, 14, 21, ... with status "running",
    then the final state; a copy of a "running" checkpoint taken mid-fit resumes to the
    uninterrupted fit."""
    model, optimizer, kwargs = build("eight_schools", full=False)
    path = tmp_path / "every7.npz"
    seen = []

    def callback(n_iter, elbo, posterior):
        if n_iter % 7 == 1 and n_iter > 1:  # just after a write
            meta = checkpoint_meta(path)
            seen.append((meta["n_iter"], meta["status"]))
        if n_iter == 16:
            shutil.copy(path, tmp_path / "at14.npz")

    natvi.fit(model, optimizer, checkpoint=path, checkpoint_every=7, callback=callback, **kwargs)
    assert seen == [(7, "running"), (14, "running"), (21, "running")]
    assert (checkpoint_meta(path)["n_iter"], checkpoint_meta(path)["status"]) == (25, "max_iter")
    assert checkpoint_meta(tmp_path / "at14.npz")["n_iter"] == 14
    assert_same_fit(natvi.fit(model, optimizer, resume=tmp_path / "at14.npz", **kwargs),
                    reference["eight_schools"])


@pytest.mark.parametrize("case, short", [("eight_schools", 10), ("logistic_adam", 60)])
def test_max_iter_checkpoint_continues(reference, tmp_path, case, short):
    """A fit stopped by a smaller max_iter continues, on resume with the larger max_iter, to
    the numbers of the longer fit: the final averaging of iterates (which draws random
    numbers) must not have advanced the saved generator."""
    model, optimizer, kwargs = build(case, full=False)
    first = natvi.fit(model, optimizer, checkpoint=tmp_path / "c.npz", checkpoint_every=AT_END,
                      **{**kwargs, "max_iter": short})
    assert first.status == "max_iter" and first.n_iter == short
    assert checkpoint_meta(tmp_path / "c.npz")["status"] == "max_iter"
    assert_same_fit(natvi.fit(model, optimizer, resume=tmp_path / "c.npz", **kwargs),
                    reference[case])


def test_converged_checkpoint_returns_at_once(reference, tmp_path):
    """Resuming a converged fit evaluates nothing (not even with a larger max_iter) and returns
    the converged result as it was."""
    model, optimizer, kwargs = build("logistic_ngd", full=False)
    natvi.fit(model, optimizer, checkpoint=tmp_path / "done.npz", checkpoint_every=AT_END,
              **kwargs)
    assert checkpoint_meta(tmp_path / "done.npz")["status"] == "converged"
    fresh, _, _ = build("logistic_ngd", full=False)
    calls = count_calls(fresh)
    again = natvi.fit(fresh, optimizer, resume=tmp_path / "done.npz", max_iter=5000, **kwargs)
    assert calls[0] == 0
    assert_same_fit(again, reference["logistic_ngd"])


# ---- 2. Ctrl-C inside an iteration ------------------------------------------------------
def _interrupt_on_call(model, n):
    """Make the n-th call of the model's engine's expected_log_joint raise
    KeyboardInterrupt."""
    calls, original = [0], model.engine.expected_log_joint

    def interrupting(posterior, rng=None):
        calls[0] += 1
        if calls[0] == n:
            raise KeyboardInterrupt
        return original(posterior, rng)

    model.engine.expected_log_joint = interrupting
    return calls


@pytest.mark.parametrize("case", ["eight_schools", "logistic_ngd", "logistic_line_search",
                                  pytest.param("logistic_adam", marks=SLOW)])
def test_interrupt_inside_line_search_then_resume(reference, tmp_path, case):
    """Ctrl-C during the evaluations of iteration k (the second evaluation of a line search
    that needs several — the fifth such iteration, or the last if there are fewer, as for
    Anderson's default, whose steps mostly take one evaluation; the step's evaluation for
    Adam and eight schools) returns
    "interrupted" with the finite parameters of iteration k − 1, and its checkpoint holds
    the evaluation count and generator of iteration k − 1: what the interrupted iteration
    spent is not saved, so the resumed fit matches the uninterrupted one bit for bit (the
    history's grad_evals included)."""
    want = reference[case]
    evals = want.history["grad_evals"]  # evaluation n is the n-th expected_log_joint call
    per_iteration = np.diff(evals)
    several = case.startswith("logistic") and case != "logistic_adam"
    hits = np.flatnonzero(per_iteration >= (2 if several else 1))
    assert hits.size, "no iteration of the reference fit takes several evaluations"
    k = int(hits[min(4, hits.size - 1)]) + 1
    call = int(evals[k - 1]) + (2 if several else 1)
    model, optimizer, kwargs = build(case, full=False)
    _interrupt_on_call(model, call)
    cut = natvi.fit(model, optimizer, checkpoint=tmp_path / "cut.npz", checkpoint_every=AT_END,
                    **kwargs)
    assert cut.status == "interrupted"
    assert cut.n_iter == k - 1
    assert all(np.all(np.isfinite(q.natural)) for q in cut.posterior.values())
    assert np.isfinite(cut.elbo)
    for name, values in want.history.items():
        if name != "seconds":
            assert np.array_equal(cut.history[name], values[:k]), name
    if case != "eight_schools":  # deterministic: the last good point is the (k−1)-step fit
        shorter = natvi.fit(*build(case, False)[:2], **{**kwargs, "max_iter": k - 1})
        assert cut.elbo == shorter.elbo
        for key, q in shorter.posterior.items():
            assert np.array_equal(cut.posterior[key].natural, q.natural), key
    meta = checkpoint_meta(tmp_path / "cut.npz")
    assert (meta["status"], meta["n_iter"], meta["n_evals"]) == ("interrupted", k - 1,
                                                                 int(evals[k - 1]))
    fresh, _, _ = build(case, full=False)
    assert_same_fit(natvi.fit(fresh, optimizer, resume=tmp_path / "cut.npz", **kwargs), want)


# ---- 3. failing and interrupted writes --------------------------------------------------
def _failing_savez(monkeypatch, on_call, error):
    """np.savez that writes a few bytes and raises ``error`` on its ``on_call``-th call."""
    calls, original = [0], np.savez

    def savez(file, *args, **kwargs):
        calls[0] += 1
        if calls[0] == on_call:
            file.write(b"PK\x03\x04 half a checkpoint")
            raise error
        return original(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", savez)


def _snapshot_before(path, iteration, store):
    """Callback keeping the bytes of the checkpoint as it is when ``iteration`` starts saving
    (the callback runs before that iteration's checkpoint write)."""
    def callback(n_iter, elbo, posterior):
        if n_iter == iteration:
            store.append(path.read_bytes())
    return callback


@pytest.mark.parametrize("where", ["savez", "fsync", "replace"])
def test_failed_write_keeps_previous_checkpoint(reference, tmp_path, monkeypatch, where):
    """A write that fails midway (the data, the flush to disk or the rename) propagates its
    OSError, leaves the previous checkpoint byte for byte as it was and loadable, leaves no
    temporary file, and the previous checkpoint still resumes to the uninterrupted fit."""
    model, optimizer, kwargs = build("logistic_ngd", full=False)
    path, fail_at, before = tmp_path / "ckpt.npz", 6, []
    disk_full = OSError(28, "No space left on device")
    if where == "savez":
        _failing_savez(monkeypatch, fail_at, disk_full)
    else:
        original, calls = getattr(os, where), [0]

        def failing(*args):
            calls[0] += 1
            if calls[0] == fail_at:
                raise disk_full
            return original(*args)

        monkeypatch.setattr(os, where, failing)
    with pytest.raises(OSError, match="No space left"):
        natvi.fit(model, optimizer, checkpoint=path, checkpoint_every=1,
                  callback=_snapshot_before(path, fail_at, before), **kwargs)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert path.read_bytes() == before[0]
    assert checkpoint_meta(path)["n_iter"] == fail_at - 1
    assert_same_fit(natvi.fit(model, optimizer, resume=path, **kwargs),
                    reference["logistic_ngd"])


def test_ctrl_c_during_checkpoint_write(reference, tmp_path, monkeypatch):
    """Ctrl-C in the middle of writing iteration 6's checkpoint: the fit returns "interrupted"
    after 6 iterations, the final checkpoint (written after the interrupt) holds them, no
    temporary file is left, and resuming gives the uninterrupted fit."""
    model, optimizer, kwargs = build("logistic_ngd", full=False)
    _failing_savez(monkeypatch, 6, KeyboardInterrupt())
    cut = natvi.fit(model, optimizer, checkpoint=tmp_path / "c.npz", checkpoint_every=1, **kwargs)
    monkeypatch.undo()
    assert (cut.status, cut.n_iter) == ("interrupted", 6)
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]
    meta = checkpoint_meta(tmp_path / "c.npz")
    assert (meta["status"], meta["n_iter"]) == ("interrupted", 6)
    assert_same_fit(natvi.fit(model, optimizer, resume=tmp_path / "c.npz", **kwargs),
                    reference["logistic_ngd"])


def test_checkpoint_needs_no_pickle(tmp_path):
    """Every member of a checkpoint reads with allow_pickle=False, none is an object array,
    and the metadata is one JSON string."""
    model, optimizer, kwargs = build("eight_schools", full=False)
    natvi.fit(model, optimizer, checkpoint=tmp_path / "c.npz", **{**kwargs, "max_iter": 3})
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:
        members = {name: data[name] for name in data.files}
    assert all(value.dtype != object for value in members.values())
    assert members["__meta__"].dtype.kind == "U" and members["__meta__"].shape == ()


# ---- 4. strict mode and divergence ------------------------------------------------------
class CliffTarget(Model):
    """log p(z) = log N(z; 1, 1) per coordinate, but the expected log joint is NaN anywhere
    but at the starting point q = N(0, 1): no step can ever be taken."""

    deterministic = True

    def __init__(self):
        self.latents = {"z": Latent((2,), "real")}

    def expected_log_joint(self, posterior, rng=None):
        q = posterior["z"]
        at_start = np.all(q.loc == 0) and np.all(q.scale == 1)
        value = np.sum(-0.5 * np.log(2 * np.pi) - 0.5 * (q.scale**2 + (q.loc - 1) ** 2))
        # E[log p] = −½ log 2π − ½ (E z² − 2 E z + 1): gradient (1, −½) in (E z, E z²)
        grad = np.stack([np.ones(2), np.full(2, -0.5)], axis=-1)
        return (float(value) if at_start else np.nan), {"z": grad}

    def log_joint(self, draws):
        return np.sum(-0.5 * np.log(2 * np.pi) - 0.5 * (draws["z"] - 1) ** 2, axis=-1)


@pytest.mark.parametrize("optimizer", ["ngd", "adam"])
def test_strict_raises_on_divergence(tmp_path, optimizer):
    """strict=False returns "diverged" with the finite starting parameters and ELBO (no step
    survives); strict=True raises natvi.DivergenceError, after writing the final checkpoint;
    resuming that checkpoint returns at once, "diverged" again, or raises under strict."""
    start = MeanFieldGaussian(loc=np.zeros(2), scale=np.ones(2))
    expected_elbo = 2 * (-0.5 * np.log(2 * np.pi) - 1.0) + float(np.sum(start.entropy()))
    loose = natvi.fit(CliffTarget(), optimizer)
    assert loose.status == "diverged"
    assert np.array_equal(loose.posterior["z"].natural, start.natural)
    assert loose.elbo == pytest.approx(expected_elbo, rel=1e-12)
    assert issubclass(natvi.DivergenceError, RuntimeError)
    with pytest.raises(natvi.DivergenceError, match="diverged"):
        natvi.fit(CliffTarget(), optimizer, strict=True, checkpoint=tmp_path / "c.npz")
    assert checkpoint_meta(tmp_path / "c.npz")["status"] == "diverged"
    model = CliffTarget()
    calls = count_calls(model)
    again = natvi.fit(model, optimizer, resume=tmp_path / "c.npz", max_iter=50)
    assert calls[0] == 0
    assert_same_fit(again, loose)
    with pytest.raises(natvi.DivergenceError):
        natvi.fit(model, optimizer, resume=tmp_path / "c.npz", strict=True)


@pytest.mark.parametrize("strict", [1, "yes", None])
def test_strict_must_be_bool(strict):
    with pytest.raises(ValueError, match="^strict:"):
        natvi.fit(CliffTarget(), strict=strict)


@pytest.mark.parametrize("every", [0, -1, 2.5, True, "1"])
def test_checkpoint_every_must_be_positive_int(tmp_path, every):
    with pytest.raises(ValueError, match="^checkpoint_every:"):
        natvi.fit(CliffTarget(), checkpoint=tmp_path / "c.npz", checkpoint_every=every)


# ---- 5. what resume refuses ------------------------------------------------------------
@functools.lru_cache
def _standardized():
    X, y, _ = load_breast_cancer()
    return (X - X.mean(axis=0)) / X.std(axis=0), y


@pytest.fixture(scope="module")
def logistic_checkpoint(tmp_path_factory):
    """A three-iteration NGD checkpoint of breast-cancer logistic regression."""
    path = tmp_path_factory.mktemp("ckpt") / "logistic.npz"
    X, y = _standardized()
    natvi.fit(LogisticRegression(X, y), "ngd", max_iter=3, checkpoint=path, family=MF)
    return path


def _other_fits():
    X, y = _standardized()
    mf = {"family": MF}
    return {
        "no intercept": (LogisticRegression(X, y, fit_intercept=False), "ngd", mf),
        "fewer features": (LogisticRegression(X[:, :5], y), "ngd", mf),
        "other model": (EightSchools(), "ngd", {}),
        "full-rank family": (LogisticRegression(X, y), "ngd", {"family": FullRankGaussian}),
        "adam": (LogisticRegression(X, y), "adam", mf),
        "other step": (LogisticRegression(X, y), natvi.optim.natural_gradient(0.5), mf),
        "adam named ngd(1)": (LogisticRegression(X, y),
                              natvi.optim.adam(0.01)._replace(name="ngd(1)"), mf),
    }


@pytest.mark.parametrize("label", list(_other_fits()))
def test_resume_refuses_another_fit(logistic_checkpoint, label):
    """A checkpoint of another model (latents), family or optimizer is refused with a
    ValueError starting with "resume:"."""
    model, optimizer, kwargs = _other_fits()[label]
    with pytest.raises(ValueError, match="^resume:"):
        natvi.fit(model, optimizer, resume=logistic_checkpoint, **kwargs)


@pytest.mark.parametrize("label", list(BAD_FILES))
def test_resume_from_bad_file(logistic_checkpoint, tmp_path, label):
    """A missing, empty, random, truncated, foreign or pickle-needing file is a ValueError
    starting with "resume:" (never an exception type from NumPy or zipfile)."""
    X, y = _standardized()
    with pytest.raises(ValueError, match="^resume:"):
        natvi.fit(LogisticRegression(X, y), resume=bad_file(label, tmp_path, logistic_checkpoint))


def test_resume_from_unknown_version_and_from_a_result(logistic_checkpoint, tmp_path,
                                                       monkeypatch):
    """A checkpoint written by a natvi of a newer format version, and a saved result (not a
    checkpoint), are refused naming resume and saying why."""
    X, y = _standardized()
    model = LogisticRegression(X, y)
    monkeypatch.setattr(serialization, "VERSION", 2)
    natvi.fit(model, max_iter=2, checkpoint=tmp_path / "v2.npz")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="^resume:.*version"):
        natvi.fit(model, resume=tmp_path / "v2.npz")
    natvi.fit(model, max_iter=2).save(tmp_path / "result.npz")
    with pytest.raises(ValueError, match="^resume:.*result"):
        natvi.fit(model, resume=tmp_path / "result.npz")


@pytest.mark.parametrize("argument", ["resume", "checkpoint"])
@pytest.mark.parametrize("value", [123])
def test_resume_and_checkpoint_must_be_paths(argument, value):
    """A resume or checkpoint that is not a path is a ValueError naming it, not a TypeError
    from os.fspath."""
    X, y = _standardized()
    with pytest.raises(ValueError, match=f"^{argument}:"):
        natvi.fit(LogisticRegression(X, y), max_iter=2, **{argument: value})


def test_checkpoint_into_missing_directory_fails_before_fitting(tmp_path):
    """A checkpoint path in a directory that does not exist is a ValueError naming checkpoint
    before the first iteration, not an OSError after checkpoint_every iterations of work."""
    X, y = _standardized()
    model = LogisticRegression(X, y)
    calls = count_calls(model)
    with pytest.raises(ValueError, match="^checkpoint:"):
        natvi.fit(model, checkpoint=tmp_path / "no" / "such" / "dir.npz")
    assert calls[0] == 0


_rewrite = functools.partial(rewrite, "checkpoint")


def _drop(key):
    return lambda d: d.pop(key)


def _shorten(key):
    def edit(arrays):
        arrays[key] = arrays[key][:3]
    return edit


DAMAGED = {
    # metadata that says what the fit was
    "no latents": (_drop("latents"), None),
    "no factors": (_drop("factors"), None),
    "no optimizer": (_drop("optimizer"), None),
    "no rng state": (_drop("rng_state"), None),
    "no n_iter": (_drop("n_iter"), None),
    "foreign rng state": (lambda m: m.update(rng_state={"bit_generator": "MT19937"}), None),
    # the arrays of the state ("|1" is the coefficient factor)
    "no params": (None, _drop("params|1")),
    "no natural gradient": (None, _drop("natural_grad|1")),
    "no previous natural gradient": (None, _drop("opt|prev_natural|1")),
    "no history": (None, _drop("history|elbo")),
    "params of another shape": (None, _shorten("params|1")),
    "optimizer history of another shape": (None, _shorten("opt|d_params|1")),
}


@pytest.mark.parametrize("label", list(DAMAGED))
def test_resume_from_damaged_checkpoint(logistic_checkpoint, tmp_path, label):
    """A natvi checkpoint with a metadata field or a state array missing, an array of the
    wrong shape, or another generator's state is a ValueError starting with "resume:" — not
    a KeyError, a NumPy broadcasting error, nor a silent resume from a partial state."""
    meta_edit, arrays_edit = DAMAGED[label]
    _rewrite(logistic_checkpoint, tmp_path / "damaged.npz", meta_edit, arrays_edit)
    X, y = _standardized()
    with pytest.raises(ValueError, match="^resume:"):
        natvi.fit(LogisticRegression(X, y), resume=tmp_path / "damaged.npz", max_iter=6)


def test_resume_from_flipped_bytes(logistic_checkpoint, tmp_path):
    """Flipping one byte anywhere in the central directory's version, flags or compression
    fields, or every 211th byte of the file, either leaves the checkpoint readable to the same
    state or is a ValueError starting with "resume:" (zipfile's NotImplementedError for an
    'unsupported compression' must not leak)."""
    data = logistic_checkpoint.read_bytes()
    want = serialization.read(logistic_checkpoint, "checkpoint")[1]
    central = central_directory_offsets(data)
    for got in read_flipped(data, sorted(set(central) | set(range(0, len(data), 211))),
                            tmp_path / "flip.npz",
                            lambda p: serialization.read(p, "checkpoint", "resume")[1], "resume:"):
        assert set(got) == set(want) and all(np.array_equal(got[k], want[k]) for k in want)
    X, y = _standardized()
    model = LogisticRegression(X, y)
    with pytest.raises(ValueError, match="^resume:"):
        flipped = bytearray(data)
        flipped[central[2]] ^= 0xFF
        (tmp_path / "flip.npz").write_bytes(bytes(flipped))
        natvi.fit(model, resume=tmp_path / "flip.npz")
    assert zipfile.is_zipfile(logistic_checkpoint)


# ---- 6. in memory: init / step / run, and init_state ----------------------------------------
def _stepped(case):
    """(VI, every state) of the case's short fit stepped by hand from VI.init."""
    model, optimizer, kwargs = build(case, full=False)
    max_iter = kwargs.pop("max_iter", 1000)
    vi = natvi.VI(model, optimizer, **kwargs)
    states = [vi.init()]
    while states[-1].n_iter < max_iter and states[-1].status == "running":
        states.append(vi.step(states[-1]))
    return vi, states, max_iter


def assert_same_state(got, want):
    """Two states of a fit are equal: point, evaluation, counters, generator, history."""
    assert (got.n_iter, got.n_evals, got.status, got.rng_state) == \
        (want.n_iter, want.n_evals, want.status, want.rng_state)
    for key in want.params:
        assert np.array_equal(got.params[key], want.params[key])
        assert np.array_equal(got.evaluation.natural_grad[key], want.evaluation.natural_grad[key])
    assert got.evaluation.value == want.evaluation.value
    assert [r[:3] + r[4:] for r in fit_state.records(got.history)] == \
        [r[:3] + r[4:] for r in fit_state.records(want.history)]  # all but the seconds


@pytest.mark.parametrize("case", CASES)
def test_stepping_by_hand_is_the_fit(reference, case):
    """VI.init, VI.step until the fit stops, VI.run (which only sets the status) and
    VI.result give natvi.fit's result bit for bit."""
    vi, states, max_iter = _stepped(case)
    assert_same_fit(vi.result(vi.run(states[-1], max_iter)), reference[case])


@pytest.mark.parametrize("case", ["eight_schools", "logistic_line_search"])
def test_a_state_stays_valid_after_stepping(case):
    """States are values: stepping an earlier state again (after later steps moved the
    generator, the evaluation counter and the remembered points on) gives the same next
    state, random draws included; so does VI.init again."""
    vi, states, _ = _stepped(case)
    assert len(states) > 6
    for k in (5, 2, 0):
        assert_same_state(vi.step(states[k]), states[k + 1])
    assert_same_state(vi.init(), states[0])


@pytest.mark.parametrize("case", CASES)
def test_init_state_continues_bit_for_bit(reference, case):
    """A fit stopped at max_iter = 5 and continued with init_state=result.state (a new model
    object of the same data) is the uninterrupted fit, bit for bit."""
    model, optimizer, kwargs = build(case, full=False)
    first = natvi.fit(model, optimizer, **{**kwargs, "max_iter": 5})
    assert first.status == "max_iter" and first.state.n_iter == 5
    model, _, _ = build(case, full=False)
    assert_same_fit(natvi.fit(model, optimizer, init_state=first.state, **kwargs),
                    reference[case])


def test_init_state_refuses_another_fit(reference):
    """init_state must be a FitState of the same factors and optimizer, and not come with
    resume; each refusal names init_state."""
    model, optimizer, kwargs = build("logistic_ngd", full=False)
    state = natvi.fit(model, optimizer, max_iter=2, **kwargs).state
    with pytest.raises(ValueError, match="^init_state: expected a natvi FitState"):
        natvi.fit(model, init_state=state._asdict(), **kwargs)
    with pytest.raises(ValueError, match="^init_state: the state holds a AndersonState, but "
                                         "optimizer 'adam.0.01.' keeps a AdamState"):
        natvi.fit(model, "adam", init_state=state, **kwargs)
    with pytest.raises(ValueError, match="^init_state: the state is of factors"):
        natvi.fit(model, init_state=state, family=FullRankGaussian)
    with pytest.raises(ValueError, match="^resume, init_state: give one"):
        natvi.fit(model, init_state=state, resume=reference["logistic_ngd"].path, **kwargs)
    outside = state._replace(params={**state.params, "coef": np.abs(state.params["coef"])},
                             evaluation=state.evaluation._replace(aux={"gain": 0.0}))
    with pytest.raises(ValueError, match="^init_state: the state's parameters are outside"):
        natvi.fit(model, init_state=outside, **kwargs)


#: optimizer states as checkpoints stored them before each optimizer had a state type of its
#: own: optimizer → (type stored, {field stored: field now or a value of a dropped field})
LEGACY = {
    "sgd": ("ScaleState", {"count": "count", "step_size": 0.01}),
    "momentum": ("MomentState", {"count": "count", "step_size": 0.01, "m": "velocity", "v": {}}),
    "adagrad": ("MomentState", {"count": "count", "step_size": 0.1, "m": {}, "v": "v"}),
    "rmsprop": ("MomentState", {"count": "count", "step_size": 0.01, "m": {}, "v": "v"}),
    "adadelta": ("MomentState", {"count": "count", "step_size": 1.0, "m": "u", "v": "v"}),
    "adam": ("MomentState", {"count": "count", "step_size": 0.01, "m": "m", "v": "v"}),
    "ngd": ("NaturalGradientState", {"count": "count", "step_size": "step_size",
                                     "evaluations": 3, "rejected": 0, "direction": "direction",
                                     "prev_natural": "prev_natural", "prev_grad": "prev_grad",
                                     "slope": "slope"}),
}
LEGACY["anderson"] = ("AndersonState", {"count": "count", "step_size": 0.8, "evaluations": 1,
                                        "rejected": 0, **{f: f for f in (
                                            "stored", "d_params", "d_nat", "d_grad",
                                            "prev_params", "prev_natural", "prev_grad",
                                            "has_prev")}})


def _legacy(optimizer):
    """Edits turning a checkpoint's optimizer state into the layout ``LEGACY`` gives."""
    kind, fields = LEGACY[optimizer]

    def meta_edit(meta):
        now = meta["opt_state"]["fields"]
        meta["opt_state"] = {"type": kind, "fields": {
            old: now[new] if isinstance(new, str) else "tree" if isinstance(new, dict)
            else "array" for old, new in fields.items()}}

    def arrays_edit(arrays):
        for old, new in fields.items():
            if isinstance(new, str):
                for name in [n for n in arrays if n.startswith(f"opt|{new}|") or
                             n == f"opt|{new}"]:
                    arrays[f"opt|{old}" + name[len(f"opt|{new}"):] + "~"] = arrays.pop(name)
            elif not isinstance(new, dict):
                arrays[f"opt|{old}~"] = np.asarray(new)
        for name in [n for n in arrays if n.endswith("~")]:
            arrays[name[:-1]] = arrays.pop(name)
    return meta_edit, arrays_edit


@pytest.mark.parametrize("optimizer", list(LEGACY))
def test_checkpoints_of_earlier_optimizer_states_resume(tmp_path, optimizer):
    """A checkpoint whose optimizer state has the layout of earlier natvi versions (shared
    state types, step sizes and rejections in the state) resumes as the checkpoint of the
    same fit written today, bit for bit."""
    model, _, kwargs = build("logistic_ngd", full=False)
    make = getattr(natvi.optim, "natural_gradient" if optimizer == "ngd" else optimizer)
    natvi.fit(model, make(), max_iter=3, checkpoint=tmp_path / "now.npz", **kwargs)
    rewrite("checkpoint", tmp_path / "now.npz", tmp_path / "then.npz", *_legacy(optimizer))
    assert checkpoint_meta(tmp_path / "then.npz")["opt_state"]["type"] == LEGACY[optimizer][0]
    assert_same_fit(natvi.fit(model, make(), max_iter=6, resume=tmp_path / "then.npz", **kwargs),
                    natvi.fit(model, make(), max_iter=6, resume=tmp_path / "now.npz", **kwargs))


# ---- 7. SIGKILL of a real process -------------------------------------------------------
FIT_SCRIPT = CASES_SOURCE + textwrap.dedent("""

    import sys
    import time

    if __name__ == "__main__":
        case, path, resume, pause = sys.argv[1], sys.argv[2], sys.argv[3] or None, sys.argv[4]
        model, optimizer, kwargs = build(case, full=True)
        natvi.fit(model, optimizer, checkpoint=path, checkpoint_every=1, resume=resume,
                  callback=lambda *args: time.sleep(float(pause)), progress=False, **kwargs)
        print("finished")
""")

#: (kill points, seconds slept per iteration) of each case's full fit
SIGKILL_PLAN = {"eight_schools": ([5, 60, 120], 0.02), "logistic_ngd": ([3, 25, 45], 0.03),
                "logistic_line_search": ([3, 50, 100], 0.03),
                "logistic_adam": ([10, 400, 900], 0.004)}


def _n_iter_or_none(path):
    try:
        return checkpoint_meta(path)["n_iter"]
    except ValueError:  # not written yet
        return None


def _run_until(script, case, path, resume, pause, kill_point, cwd):
    """Start the fit in a subprocess, poll its checkpoint, SIGKILL it once the checkpoint has
    reached ``kill_point`` iterations; returns the iterations the checkpoint then holds."""
    proc = subprocess.Popen([sys.executable, str(script), case, str(path), str(resume or ""),
                             str(pause)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the fit ended before iteration {kill_point}: {out}{err}")
            n_iter = _n_iter_or_none(path)
            if n_iter is not None and n_iter >= kill_point:
                break
            time.sleep(0.002)
        else:
            pytest.fail(f"no checkpoint of iteration {kill_point} within 300 s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return checkpoint_meta(path)["n_iter"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_sigkill_and_resume(tmp_path, case):
    """A fit in a subprocess is SIGKILLed at three points, each time restarted from its
    checkpoint in a new subprocess (which keeps writing the same file); after each kill the
    parent resumes a copy of the checkpoint and must get the uninterrupted fit bit for bit.
    The file is always a complete checkpoint of a running fit, whatever the moment of the
    kill."""
    script = tmp_path / "fit_script.py"
    script.write_text(FIT_SCRIPT)
    model, optimizer, kwargs = build(case, full=True)
    want = natvi.fit(model, optimizer, **kwargs)
    kill_points, pause = SIGKILL_PLAN[case]
    assert want.n_iter > kill_points[-1] + 5
    path, resume, killed = tmp_path / "ckpt.npz", None, []
    for kill_point in kill_points:
        n_iter = _run_until(script, case, path, resume, pause, kill_point, tmp_path)
        assert kill_point <= n_iter < want.n_iter
        assert checkpoint_meta(path)["status"] == "running"
        killed.append(n_iter)
        shutil.copy(path, tmp_path / f"at{n_iter}.npz")
        assert_same_fit(natvi.fit(model, optimizer, resume=tmp_path / f"at{n_iter}.npz",
                                  **kwargs), want)
        resume = path
    print(f"{case}: killed at iterations {killed} of {want.n_iter} ({want.status})")
