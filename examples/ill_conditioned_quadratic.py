"""An ill-conditioned quadratic: natvi's Euclidean optimizers against the natural step.

L(x, y) = x² + y² is as well conditioned as a function can be, but written in the
squashed coordinates x̃ = x/a, ỹ = y/b it reads L = a²x̃² + b²ỹ², whose Hessian has
condition number (b/a)². The metric that measures lengths as the original coordinates do
is G = diag(a², b²). The Euclidean gradient ∇L = 2(a²x̃, b²ỹ) points mostly across the
narrow valley and its steps zig-zag; the natural gradient G⁻¹∇L = 2(x̃, ỹ) points
straight at the optimum, so one natural step of size ½ lands on it, whatever b/a is.

Every optimizer starts from the same point of the plane, (x, y) = (0.8, 0.6) (L = 1),
and the table counts its iterations to reach L < 1e-8 for b/a from 1 to 10⁶ (a = 1),
capped at 10,000. Step sizes: the natural step is ½ (the Newton step: G is half the
Hessian) and is not tuned. Each Euclidean optimizer is tuned per condition number: its
learning rate is the best (fewest iterations) of a grid spaced by factors of 2, the other
hyperparameters are natvi's defaults. The grid runs from 16 units down to 1/1024 of one;
the unit is 1/(a² + b²) for SGD and momentum, whose stable steps shrink as 1/b² (and
1/(a² + b²) is SGD's best constant step), and 1 for Adagrad, RMSProp, Adadelta and Adam,
whose steps are in units of the parameters (they divide the gradient by its running
scale). A second table gives the learning rate behind each count. A natural step of 0.1,
also untuned, shows that the natural step's count does not depend on b/a even when it is
not the exact one. The optimizers are natvi's own (``natvi.optim``), driven through their
``init`` / ``update`` contract as the fit loop drives them, ascending −L.

The plot shows the trajectories at b/a = 10 in the squashed and in the original
coordinates; the README's copy is docs/images/ill_conditioned_quadratic.png. Needs
matplotlib for the plot (``pip install "natvi[plot]"``). Run:

    python examples/ill_conditioned_quadratic.py [--out ill_conditioned_quadratic.png]
"""

import argparse
from pathlib import Path

import numpy as np

from natvi.optim import adadelta, adagrad, adam, momentum, natural_gradient, rmsprop, sgd

RATIOS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)  # b/a, with a = 1
START = np.array([0.8, 0.6])  # (x, y), in the original coordinates
TARGET = 1e-8
CAP = 10_000
#: (name, optimizer factory, whether its learning rate is in units of 1/(a² + b²))
EUCLIDEAN = (("SGD", sgd, True), ("momentum", momentum, True), ("Adagrad", adagrad, False),
             ("RMSProp", rmsprop, False), ("Adadelta", adadelta, False), ("Adam", adam, False))
#: learning rates 2^k of the unit, k = 4, 3, …, −10
GRID = 2.0 ** np.arange(4, -11, -1)
NATURAL_STEPS = (0.5, 0.1)
PLOT_RATIO = 10.0


def loss(z, a, b):
    """L = a²x̃² + b²ỹ² at squashed coordinates ``z`` = (x̃, ỹ), for scales ``a``, ``b``."""
    return float(a**2 * z[0] ** 2 + b**2 * z[1] ** 2)


def gradient(z, a, b):
    """The Euclidean gradient 2(a²x̃, b²ỹ) of L at ``z`` = (x̃, ỹ), for scales ``a``, ``b``."""
    return 2 * np.array([a**2, b**2]) * z


def metric(a, b):
    """G = diag(a², b²): lengths in the squashed coordinates measured as in (x, y) = (ax̃, bỹ),
    for scales ``a`` and ``b``."""
    return np.diag([a**2, b**2])


def natural(z, a, b):
    """The natural gradient G⁻¹∇L at ``z`` = (x̃, ỹ), for scales ``a`` and ``b``."""
    return np.linalg.solve(metric(a, b), gradient(z, a, b))


def squash(xy, a, b):
    """Squashed coordinates (x/a, y/b) of points ``xy`` (…, 2), for scales ``a`` and ``b``."""
    return np.asarray(xy) / np.array([a, b])


def descend(optimizer, a, b, cap=CAP, start=START):
    """Run ``optimizer`` on −L from ``start`` (original coordinates) until L < TARGET.

    Parameters
    ----------
    optimizer : natvi.optim.Optimizer
        Fed natural gradients when ``optimizer.natural``, Euclidean ones otherwise.
    a, b : float
        The scales of the squashed coordinates.
    cap : int
        Iterations before giving up.
    start : array_like
        The starting point (x, y).

    Returns
    -------
    (int or None, ndarray)
        The iterations to reach L < TARGET (None if not reached within ``cap``, or the run
        diverged: L above 10⁶ times its start, or NaN), and the iterates (n + 1, 2) in
        squashed coordinates.
    """
    params = {"z": squash(start, a, b)}
    state = optimizer.init(params)
    direction = natural if optimizer.natural else gradient
    path = [params["z"]]
    start_loss = loss(params["z"], a, b)
    for i in range(1, cap + 1):
        ascent = {"z": -direction(params["z"], a, b)}  # natvi's optimizers ascend
        updates, state, _ = optimizer.update(ascent, state, params)
        params = {"z": params["z"] + updates["z"]}
        path.append(params["z"])
        value = loss(params["z"], a, b)
        if value < TARGET:
            return i, np.array(path)
        if not value < 1e6 * start_loss:
            break
    return None, np.array(path)


def best_rate(factory, in_curvature_units, a, b, cap=CAP):
    """The grid's best learning rate for an optimizer at scales ``a``, ``b``.

    Parameters
    ----------
    factory : callable
        ``factory(learning_rate)`` → a natvi optimizer.
    in_curvature_units : bool
        The grid is in units of 1/(a² + b²) (else of 1).
    a, b : float
        The scales of the squashed coordinates.
    cap : int
        Iterations before giving up on a learning rate.

    Returns
    -------
    (int or None, float, ndarray)
        The fewest iterations to L < TARGET (None when no rate reached it), the learning
        rate (the largest that did not diverge, when none reached it) and its iterates.
    """
    unit = 1 / (a**2 + b**2) if in_curvature_units else 1.0
    best_n, best, best_path = None, None, None
    for rate in unit * GRID:
        # A run that needs as many iterations as the best so far cannot win: stop it there.
        budget = cap if best_n is None else best_n - 1
        if budget < 1:
            break
        n, path = descend(factory(rate), a, b, cap=budget)
        if n is not None:
            best_n, best, best_path = n, rate, path
        elif best_n is None and best is None and len(path) == cap + 1:
            best, best_path = rate, path  # stable but too slow: the largest such
    return best_n, best, best_path


def table(ratios=RATIOS):
    """{row name: [(iterations or None, step size), one per b/a in ``ratios``]}, and the
    paths at PLOT_RATIO {row name: iterates}."""
    rows, paths = {}, {}
    for name, factory, curvature in EUCLIDEAN:
        rows[name] = []
        for ratio in ratios:
            n, rate, path = best_rate(factory, curvature, 1.0, ratio)
            rows[name].append((n, rate))
            if ratio == PLOT_RATIO:
                paths[name] = path
    for rho in NATURAL_STEPS:
        name = f"natural step {rho:g}"
        rows[name] = []
        for ratio in ratios:
            n, path = descend(natural_gradient(rho, line_search=False), 1.0, ratio)
            rows[name].append((n, rho))
            if ratio == PLOT_RATIO:
                paths[name] = path
    return rows, paths


def print_table(rows, ratios=RATIOS):
    """Print iterations to L < TARGET, then the step sizes that gave them."""
    head = f"{'b/a':<18}" + "".join(f"{r:>10g}" for r in ratios)
    print(f"Iterations to L < {TARGET:g} from (x, y) = ({START[0]:g}, {START[1]:g}), "
          f"cap {CAP}:")
    print(head)
    print("-" * len(head))
    for name, cells in rows.items():
        print(f"{name:<18}" + "".join(f"{n if n is not None else f'> {CAP}':>10}"
                                      for n, _ in cells))
    print("\nStep size of each cell: for the Euclidean optimizers the grid's best learning rate\n"
          "(when none reached the target, the largest that did not diverge; - when all did):")
    print(head)
    print("-" * len(head))
    for name, cells in rows.items():
        print(f"{name:<18}" + "".join(f"{rate:>10.3g}" if rate is not None else f"{'-':>10}"
                                      for _, rate in cells))


def plot(paths, out, ratio=PLOT_RATIO):
    """Trajectories ``paths`` {name: squashed iterates} at b/a = ``ratio``, in the original
    and the squashed coordinates (both to scale), saved to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 5.2))
    grid = fig.add_gridspec(2, 2, width_ratios=(1, 1.45), height_ratios=(1, 1.2))
    frames = {"original": (fig.add_subplot(grid[:, 0]), np.array([1.0, 1.0]), ("x", "y")),
              "squashed": (fig.add_subplot(grid[0, 1]), np.array([1.0, ratio]),
                           ("x̃ = x/a", "ỹ = y/b"))}
    u = np.linspace(-1, 1, 201)
    for frame, (ax, scale, labels) in frames.items():
        gx, gy = np.meshgrid(u / scale[0], u / scale[1])
        ax.contour(gx, gy, (gx * scale[0]) ** 2 + (gy * scale[1]) ** 2,
                   levels=[0.01, 0.04, 0.16, 0.36, 0.64, 1.0], colors="0.8", linewidths=0.8)
        for name, path in paths.items():
            points = path * np.array([1.0, ratio]) / scale  # (x, y) = (ax̃, bỹ), a = 1
            style = dict(lw=1.0)
            if name.startswith("natural"):
                style = dict(color="k", lw=2.5, marker="o", ms=4, zorder=3)
                if name != "natural step 0.5":
                    style.update(color="0.45", lw=1.5, ms=2)
            ax.plot(points[:, 0], points[:, 1], label=f"{name} ({len(path) - 1} it.)", **style)
        ax.plot(0, 0, "k*", ms=10, zorder=4)
        ax.set_aspect("equal")
        ax.set_xlim(-0.7, 1.0)
        ax.set_ylim(np.array([-0.85, 0.85]) / scale[1])
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.set_title(f"{frame} coordinates, b/a = {ratio:g}")
    legend = fig.add_subplot(grid[1, 1])
    legend.axis("off")
    legend.legend(*frames["original"][0].get_legend_handles_labels(), ncols=2, fontsize=8,
                  loc="center", title="each optimizer at its best learning rate")
    fig.suptitle("L = x² + y² = a²x̃² + b²ỹ²: Euclidean steps zig-zag, the natural step does not")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"\nplot saved to {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).parent / "output" / "ill_conditioned_quadratic.png"
    parser.add_argument("--out", default=str(default_out))
    args = parser.parse_args()
    rows, paths = table()
    print_table(rows)
    try:
        plot(paths, args.out)
    except ImportError:
        print("\n(matplotlib is not installed: pip install 'natvi[plot]' for the plot)")


if __name__ == "__main__":
    main()
