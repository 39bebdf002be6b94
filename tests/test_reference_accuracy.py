"""natvi's default fits of the custom models of examples/reference_models.py against their NUTS
reference posteriors (tests/data/reference_posteriors.json): a full-rank Gaussian recovers the
near-Gaussian regressions, and no fit says "converged" at a point its diagnostics do not
flag when it is far from the truth.

Tolerances: a mean or sd from 4,000 draws of q has a Monte Carlo error of about 1.6% (2.2%)
of an sd, and the references' own error is below 5% of an sd (ESS ≥ 400), so 0.1 sd and
10% leave room for both and fail on a real bias."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import reference_models

import natvi

ROOT = Path(__file__).resolve().parent.parent
SUMMARIES = json.loads((ROOT / "tests" / "data" / "reference_posteriors.json").read_text())[
    "summaries"]
REGRESSIONS = ("linear_halfcauchy", "interaction_halfnormal", "correlated_regression",
               "robust_regression")
DRAWS = 4000


rm = reference_models()


def _scored(name, family, seed):
    """(result, max |mean error| / sd, sd ratios) of a default fit of model ``name``."""
    model = rm.MODELS[name]().model
    coords = rm.coordinate_names(model)
    mean = np.array([SUMMARIES[f"{name}/{c}"]["mean"] for c in coords])
    sd = np.array([SUMMARIES[f"{name}/{c}"]["sd"] for c in coords])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = natvi.fit(model, family=family, seed=seed)
    draws = result.sample(DRAWS, seed=seed + 100)
    values = np.concatenate([draws[n].reshape(DRAWS, -1) for n in model.latents], axis=1)
    return result, np.max(np.abs(values.mean(axis=0) - mean) / sd), values.std(axis=0) / sd


def test_full_rank_recovers_a_regression_with_a_half_cauchy_scale():
    result, error, ratios = _scored("linear_halfcauchy", natvi.FullRankGaussian, 0)
    assert result.converged and result.draw_check is not None
    assert error < 0.1
    assert np.all(np.abs(ratios - 1) < 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("name", REGRESSIONS)
def test_full_rank_on_near_gaussian_posteriors(name):
    """The issue's target: every mean within 0.1 sd and every sd within 10% on at least 9
    of 10 seeds."""
    good = 0
    for seed in range(10):
        result, error, ratios = _scored(name, natvi.FullRankGaussian, seed)
        assert result.status == "converged", (seed, result.message)
        good += error < 0.1 and np.all(np.abs(ratios - 1) < 0.1)
    assert good >= 9


@pytest.mark.slow
@pytest.mark.parametrize("name", list(rm.MODELS))
@pytest.mark.parametrize("family", [None, natvi.FullRankGaussian], ids=["MF", "FR"])
def test_converged_means_a_stationary_point_that_is_honestly_diagnosed(name, family):
    """A converged fit's k̂ is finite, and where any mean is more than one reference sd off
    (a mean-field optimum can be: it is the family's bias, not the optimizer's), k̂ says
    the draws are unreliable (above 0.7)."""
    result, error, _ = _scored(name, family, 0)
    if result.status != "converged":
        return
    k_hat = result.pareto_k(1000, seed=1)
    assert np.isfinite(k_hat)
    assert error <= 1 or k_hat > 0.7, (error, k_hat)
