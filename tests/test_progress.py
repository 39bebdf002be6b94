"""The progress bar: on when asked (or in a terminal), off otherwise, never in the way."""

import numpy as np
import pytest

import natvi
from natvi import progress
from natvi.models import LogisticRegression


@pytest.fixture()
def model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (rng.random(60) < 1 / (1 + np.exp(-X @ [1.0, -1.0]))).astype(float)
    return LogisticRegression(X, y, prior_scale=1.0)


def test_forced_bar_shows_iteration_elbo_and_step(model, capsys, monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "MIN_INTERVAL", 0.0)
    result = natvi.fit(model, progress=True)
    err = capsys.readouterr().err
    assert "natvi" in err and "elbo=" in err and "step=" in err
    assert f"{result.n_iter}/1000" in err


def test_no_bar_when_off_or_not_a_terminal(model, capsys, monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    natvi.fit(model, progress=False)
    natvi.fit(model)  # pytest's captured stderr is not a terminal
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_default_follows_the_terminal(monkeypatch):
    class Tty:
        def isatty(self):
            return True

    monkeypatch.delitem(__import__("sys").modules, "ipykernel", raising=False)
    monkeypatch.setattr("sys.stderr", Tty())
    assert progress.interactive()
    monkeypatch.setattr("sys.stderr", object())
    assert not progress.interactive()


def test_same_numbers_with_and_without_the_bar(model, monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    a = natvi.fit(model, progress=True)
    b = natvi.fit(model, progress=False)
    np.testing.assert_array_equal(a.history["elbo"], b.history["elbo"])


@pytest.mark.parametrize("value", [1, "yes", 0.5])
def test_bad_progress(model, value):
    with pytest.raises(ValueError, match="progress"):
        natvi.fit(model, progress=value)
