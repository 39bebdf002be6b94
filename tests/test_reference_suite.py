"""The reference-posterior suite: the custom models of examples/reference_models.py and their
NUTS summaries in tests/data/reference_posteriors.json (written by examples/reference_nuts.py),
checked without PyMC: every model has a converged reference of the right shape, and every
log joint is finite and differentiable there."""

import json
from pathlib import Path

import autograd
import numpy as np
import pytest
from helpers import reference_models
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "reference_posteriors.json"
#: bulk and tail ESS floor of every coordinate: 100 per chain over 4 chains (Vehtari et al.
#: 2021), so that a mean's Monte Carlo error is at most 5% of its sd
MIN_ESS = 400
MAX_R_HAT = 1.01
QUANTILES = ("q05", "q25", "q50", "q75", "q95")


rm = reference_models()
STORED = json.loads(REFERENCE.read_text())
BUILT = {name: build() for name, build in rm.MODELS.items()}


def _rows(name):
    return {k.split("/", 1)[1]: v for k, v in STORED["summaries"].items()
            if k.split("/", 1)[0] == name}


def _reference_means(name):
    model = BUILT[name].model
    rows = _rows(name)
    return rm.unflatten(model, np.array([rows[c]["mean"] for c in rm.coordinate_names(model)]))


def test_suite_has_ten_models_and_no_strays():
    assert len(rm.MODELS) >= 10
    assert list(STORED["models"]) == list(rm.MODELS)
    assert {k.split("/", 1)[0] for k in STORED["summaries"]} == set(rm.MODELS)
    assert STORED["settings"]["chains"] >= 4 and STORED["settings"]["draws"] >= 2000


@pytest.mark.parametrize("name", list(rm.MODELS))
def test_reference_converged(name):
    """R̂ ≤ 1.01 and bulk and tail ESS ≥ MIN_ESS for every coordinate."""
    rows = _rows(name)
    assert rows
    for label, row in rows.items():
        assert row["r_hat"] <= MAX_R_HAT, (label, row["r_hat"])
        assert row["ess_bulk"] >= MIN_ESS, (label, row["ess_bulk"])
        assert row["ess_tail"] >= MIN_ESS, (label, row["ess_tail"])
    entry = STORED["models"][name]
    assert entry["max_r_hat"] == pytest.approx(max(r["r_hat"] for r in rows.values()), rel=1e-5)
    assert entry["density_check"]["max_deviation"] < 1e-6


@pytest.mark.parametrize("name", list(rm.MODELS))
def test_summary_keys_match_latent_shapes(name):
    """One summary per coordinate of every latent, labelled latent[i,j,...] in C order."""
    model = BUILT[name].model
    expected = []
    for latent, spec in model.latents.items():
        if spec.shape == ():
            expected.append(latent)
        else:
            expected += [f"{latent}[{','.join(map(str, i))}]" for i in np.ndindex(spec.shape)]
    assert list(_rows(name)) == expected
    assert STORED["models"][name]["n_latent"] == len(expected) == sum(
        int(np.prod(s.shape)) for s in model.latents.values())


@pytest.mark.parametrize("name", list(rm.MODELS))
def test_summaries_are_coherent(name):
    """Quantiles increase, lie around the mean, MCSE is small against sd, and every value
    lies in its latent's support."""
    model = BUILT[name].model
    rows = _rows(name)
    support = {c: spec.support for latent, spec in model.latents.items()
               for c in rows if c == latent or c.startswith(latent + "[")}
    for label, row in rows.items():
        q = [row[k] for k in QUANTILES]
        assert np.all(np.diff(q) >= 0), label
        assert q[0] <= row["mean"] <= q[-1] and row["sd"] > 0, label
        assert row["mcse_mean"] < 0.1 * row["sd"], label
        if support[label] == "positive":
            assert q[0] > 0, label
        elif support[label] == "unit_interval":
            assert 0 < q[0] and q[-1] < 1, label


@pytest.mark.parametrize("name", list(rm.MODELS))
def test_log_joint_finite_and_differentiable_at_reference_means(name):
    """log p is finite at the reference means, and autograd's gradient there is finite and
    agrees with a central difference along a random direction."""
    ref = BUILT[name]
    point = _reference_means(name)
    value = ref.log_joint(point)
    assert np.isfinite(value)
    assert np.isclose(ref.model.log_joint({k: np.asarray(v)[None] for k, v in point.items()})[0],
                      value)
    x = rm.flatten(ref.model, point)
    f = lambda v: ref.log_joint(rm.unflatten(ref.model, v))  # noqa: E731
    grad = autograd.grad(f)(x)
    assert grad.shape == x.shape and np.all(np.isfinite(grad))
    u = np.random.default_rng(0).normal(size=x.size)
    u *= 1e-5 * np.abs(x).clip(0.1).min() / np.linalg.norm(u)
    numeric = (f(x + u) - f(x - u)) / 2
    # near the mode grad @ u is a small difference of large terms: scale by |grad| @ |u|
    assert abs(numeric - grad @ u) <= 1e-4 * (np.abs(grad) @ np.abs(u))


def test_log_densities_match_scipy():
    x = np.array([0.1, 1.3, 7.0])
    np.testing.assert_allclose(rm.half_normal_logpdf(x, 2.5), stats.halfnorm.logpdf(x, scale=2.5))
    np.testing.assert_allclose(rm.half_cauchy_logpdf(x, 2.5),
                               stats.halfcauchy.logpdf(x, scale=2.5))
    np.testing.assert_allclose(rm.gamma_logpdf(x, 2.0, 0.1),
                               stats.gamma.logpdf(x, 2.0, scale=10.0))


def test_correlated_regression_is_ill_conditioned():
    X = BUILT["correlated_regression"].data["X"]
    assert X.shape[1] == 26
    cond = rm.condition_number(X)
    assert cond >= 1e4
    assert STORED["models"]["correlated_regression"]["condition_number_X"] == pytest.approx(cond)
    assert cond == pytest.approx(np.linalg.cond(X))


def test_poisson_data_as_in_the_issue():
    """The random-effects Poisson data are issue 14's, generated as written there."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 2))
    eps = rng.normal(0, 0.5, size=300)
    y = rng.poisson(np.exp(1.0 + x @ np.array([0.5, -0.3]) + eps))
    for name in ("poisson_re_centered", "poisson_re_noncentered"):
        np.testing.assert_array_equal(BUILT[name].data["y"], y)
        np.testing.assert_array_equal(BUILT[name].data["x"], x)
