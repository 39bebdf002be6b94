"""natvi.plot.elbo draws what the histories hold, and ArviZ's own plots read to_arviz output."""

import sys

import arviz as az
import numpy as np
import pytest
from helpers import import_without

import natvi
from natvi import plot
from natvi.arviz_bridge import arviz_1
from natvi.models import LogisticRegression


@pytest.fixture
def plt():
    """pyplot on the Agg backend (skipped, with the reason, only if matplotlib is absent)."""
    mpl = pytest.importorskip("matplotlib", reason="natvi.plot needs matplotlib (natvi[plot])")
    mpl.use("Agg")
    import matplotlib.pyplot as pyplot

    yield pyplot
    pyplot.close("all")


@pytest.fixture(scope="module")
def fits():
    """Two fits of one small logistic regression: NGD (converges) and a short Adam run."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (rng.random(60) < 1 / (1 + np.exp(-(X @ [1.0, -1.0, 0.5])))).astype(int)
    model = LogisticRegression(X, y)
    return [natvi.fit(model, "ngd"), natvi.fit(model, natvi.optim.adam(0.05), max_iter=40)]


def _gap(result, best):
    """Independent reference: best − ELBO per iteration, floored at GAP_FLOOR."""
    return np.maximum(best - result.history["elbo"], plot.GAP_FLOOR)


@pytest.mark.parametrize("x, key", [("iteration", None), ("seconds", "seconds"),
                                    ("gradient_evaluations", "grad_evals")])
def test_lines_are_the_histories(plt, fits, x, key):
    """One line per fit, in order; x is the chosen history array (or 0, 1, 2, ...), y the gap
    to the best ELBO of all histories on a log axis; labels default to optimizer names."""
    ax = plot.elbo(fits, x=x)
    best = max(r.history["elbo"].max() for r in fits)
    assert len(ax.lines) == len(fits)
    for line, r in zip(ax.lines, fits, strict=True):
        n = r.history["elbo"].size
        want_x = np.arange(n) if key is None else r.history[key]
        np.testing.assert_array_equal(line.get_xdata(), want_x)
        np.testing.assert_array_equal(line.get_ydata(), _gap(r, best))
        assert line.get_label() == r.optimizer
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [r.optimizer for r in fits]


def test_zero_gap_shows_at_the_floor(plt, fits):
    """The run holding the best ELBO has a zero gap there: drawn at GAP_FLOOR, never 0 (which
    a log axis would drop), and every plotted gap is positive."""
    ax = plot.elbo(fits)
    best_run = int(np.argmax([r.history["elbo"].max() for r in fits]))
    ys = ax.lines[best_run].get_ydata()
    assert ys.min() == plot.GAP_FLOOR
    assert all(np.all(line.get_ydata() > 0) for line in ax.lines)


def test_given_best_labels_and_axes(plt, fits):
    """``best`` replaces the maximum (ELBOs above it draw at the floor); list labels and dict
    keys name the lines; a given Axes is drawn on and returned, no new figure is made."""
    best = fits[1].history["elbo"][5]  # below NGD's final ELBO: some gaps are negative
    fig, ax = plt.subplots()
    n_figs = len(plt.get_fignums())
    out = plot.elbo(fits, best=best, labels=["natural", "adam"], ax=ax)
    assert out is ax and len(plt.get_fignums()) == n_figs
    for line, r in zip(ax.lines, fits, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), _gap(r, best))
    assert [line.get_label() for line in ax.lines] == ["natural", "adam"]
    assert np.any(ax.lines[0].get_ydata() == plot.GAP_FLOOR)

    ax2 = plot.elbo({"A": fits[1], "B": fits[0]})
    assert [line.get_label() for line in ax2.lines] == ["A", "B"]
    np.testing.assert_array_equal(ax2.lines[0].get_xdata(), np.arange(fits[1].n_iter + 1))
    assert len(plot.elbo(fits[0]).lines) == 1  # one FitResult on its own is fine


@pytest.mark.parametrize("kwargs, match", [
    ({"x": "iterations"}, r"x: expected one of .*'iterations'"),
    ({"x": None}, r"x: expected one of"),
    ({"labels": ["only one"]}, r"labels: expected 2 labels .* got 1"),
    ({"labels": "ab"}, r"labels: expected a list"),
    ({"best": float("nan")}, r"best: expected a finite number"),
    ({"best": True}, r"best: expected a finite number"),
    ({"best": "1.0"}, r"best: expected a finite number"),
])
def test_bad_arguments(fits, kwargs, match):
    """Each bad argument is a ValueError naming it (raised before matplotlib is needed)."""
    with pytest.raises(ValueError, match=match):
        plot.elbo(fits, **kwargs)


@pytest.mark.parametrize("results, match", [
    ([], r"results: expected at least one FitResult"),
    ({}, r"results: expected at least one FitResult"),
    ([1.0], r"results: expected FitResult items, got float"),
    ({"a": "fit"}, r"results: expected FitResult items, got str"),
    (np.zeros(3), r"results: expected a FitResult, a list of them or a dict"),
    (None, r"results: expected a FitResult"),
])
def test_bad_results(results, match):
    with pytest.raises(ValueError, match=match):
        plot.elbo(results)


def test_labels_and_dict_together_is_an_error(fits):
    with pytest.raises(ValueError, match="labels: give labels as the keys"):
        plot.elbo({"a": fits[0]}, labels=["b"])


def test_missing_matplotlib_says_how_to_install(fits, monkeypatch):
    """Without matplotlib: ImportError naming the extra to install."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "natvi\[plot\]"'):
        plot.elbo(fits)


def test_module_imports_without_matplotlib(monkeypatch):
    """natvi.plot imports matplotlib only inside its functions."""
    fresh = import_without(monkeypatch, plot, "matplotlib")
    assert fresh is not plot and callable(fresh.elbo)


# ArviZ 0.23's own call into matplotlib >= 3.11 warns; that is ArviZ's business, not natvi's.
@pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")
def test_arviz_plots_read_to_arviz_output(plt, fits):
    """ArviZ's own posterior plots work on to_arviz output and show the draws' statistics:
    plot_posterior's mean and plot_forest's points (medians), labelled by coordinate."""
    data = fits[0].to_arviz(draws=400, seed=1)
    coef = data["posterior"]["coef"].values[0]
    if arviz_1():
        pytest.importorskip("arviz_plots", reason="ArviZ >= 1.0 plots need arviz-plots")
        from arviz_plots import PlotCollection

        assert isinstance(az.plot_dist(data, var_names=["intercept"], backend="matplotlib"),
                          PlotCollection)
        assert isinstance(az.plot_forest(data, var_names=["coef"], backend="matplotlib"),
                          PlotCollection)
        assert plt.get_fignums()
        return
    ax = az.plot_posterior(data, var_names=["intercept"], point_estimate="mean")
    assert ax.get_title() == "intercept"
    text = next(t.get_text() for t in ax.texts if t.get_text().startswith("mean="))
    mean = float(data["posterior"]["intercept"].values.mean())
    assert float(text.removeprefix("mean=")) == pytest.approx(mean, rel=0.01, abs=0.005)

    axes = az.plot_forest(data, var_names=["coef"], combined=True)
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert len(labels) == 3 and "coef[x0]" in labels
    points = [line.get_xdata()[0] for line in axes[0].lines if len(line.get_xdata()) == 1]
    np.testing.assert_allclose(np.sort(points), np.sort(np.median(coef, axis=0)), rtol=1e-12)
