"""The ill-conditioned quadratic of examples/ill_conditioned_quadratic.py, checked by its math:
the natural step is isotropic, and plain SGD's iteration count is its closed form, which
grows with the condition number (the example's own functions, imported from the script)."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from natvi.optim import natural_gradient, sgd

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "ill_conditioned_quadratic.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("ill_conditioned_quadratic", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loss_is_the_round_quadratic_and_gradient_is_its_derivative(example):
    """L at the squashed point is x² + y² at the original one, and the gradient matches
    central differences of L."""
    rng = np.random.default_rng(0)
    for a, b in ((1.0, 1.0), (1.0, 1e3), (0.3, 20.0)):
        xy = rng.normal(size=2)
        z = example.squash(xy, a, b)
        assert example.loss(z, a, b) == pytest.approx(xy @ xy, rel=1e-14)
        h = 1e-6 * np.abs(z).max()
        numeric = [(example.loss(z + h * e, a, b) - example.loss(z - h * e, a, b)) / (2 * h)
                   for e in np.eye(2)]
        np.testing.assert_allclose(example.gradient(z, a, b), numeric, rtol=1e-6)


def test_one_natural_step_of_one_half_lands_on_the_optimum(example):
    """From any start and at any b/a, natvi's natural-gradient step of ½ with G = diag(a², b²)
    lands on (0, 0): G⁻¹∇L = 2z, so z − ½·2z = 0, exact up to rounding."""
    rng = np.random.default_rng(1)
    for ratio in (1.0, 10.0, 1e3, 1e6):
        for a in (1.0, 0.05):
            for _ in range(4):
                start = rng.normal(scale=3.0, size=2)
                n, path = example.descend(natural_gradient(0.5, line_search=False), a,
                                          a * ratio, cap=1, start=start)
                z0 = example.squash(start, a, a * ratio)
                assert n == 1
                assert np.all(np.abs(path[-1]) <= 4 * np.finfo(float).eps * np.abs(z0))


def test_natural_step_count_does_not_depend_on_the_condition_number(example):
    """A shorter natural step ρ contracts every coordinate by 1 − 2ρ alike: 0.8ⁿ below 1e-4
    after 42 steps (L = 0.64ⁿ from L = 1), for every b/a."""
    for ratio in example.RATIOS:
        n, _ = example.descend(natural_gradient(0.1, line_search=False), 1.0, ratio)
        assert n == math.ceil(math.log(example.TARGET) / math.log(0.64)) == 42


def test_sgd_iterations_grow_with_the_condition_number(example):
    """At its best constant step 1/(a² + b²), SGD contracts both coordinates by
    r = (b² − a²)/(b² + a²), so L_n = r²ⁿ L₀: the count is ⌈ln(1e-8 / L₀) / (2 ln r)⌉,
    non-decreasing in b/a and beyond any cap at b/a = 10⁶ (about 4.6·10¹² steps)."""
    cap = 1000
    counts = []
    for ratio in example.RATIOS:
        a, b = 1.0, ratio
        n, path = example.descend(sgd(1 / (a**2 + b**2)), a, b, cap=cap)
        r = (b**2 - a**2) / (b**2 + a**2)
        start_loss = example.loss(path[0], a, b)
        exact = 1 if r == 0 else math.ceil(math.log(example.TARGET / start_loss)
                                           / (2 * math.log(r)))
        assert n == (exact if exact <= cap else None), ratio
        counts.append(math.inf if n is None else n)
    assert counts[0] == 1 and counts[1] == 461
    assert all(x <= y for x, y in zip(counts, counts[1:], strict=False))
    assert counts[-1] > counts[0]


def test_the_grid_search_finds_sgds_best_step(example):
    """The example's grid contains SGD's best constant step 1/(a² + b²) and picks it: a larger
    rate diverges along ỹ, a smaller one contracts x̃ more slowly."""
    n, rate, _ = example.best_rate(sgd, True, 1.0, 10.0, cap=2000)
    assert (n, rate) == (461, pytest.approx(1 / 101))
