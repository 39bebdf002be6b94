"""What a full-rank Gaussian costs against mean-field, by N and D: the measurements behind
``family="auto"`` (natvi.models.glm.FULL_RANK_BUDGET and FULL_RANK_MAX_DIM).

Synthetic logistic regressions (features N(0, 1), the benchmark's generator), all priors
N(0, 1), each fitted with the default natural gradient under both families, timed after a
warm-up fit (imports and first-use costs excluded). Run:

    python examples/family_cost.py
"""

import sys
import time
from pathlib import Path

import natvi
from natvi.models import LogisticRegression
from natvi.models.glm import FULL_RANK_BUDGET, FULL_RANK_MAX_DIM

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import synthetic  # noqa: E402

SIZES = [(1_000, 10), (1_000, 100), (10_000, 30), (10_000, 100), (10_000, 300), (2_000, 500),
         (100_000, 50), (100_000, 100), (300_000, 100), (1_000_000, 30), (1_000_000, 100)]


def fit_time(model, family):
    start = time.perf_counter()
    result = natvi.fit(model, family=family, progress=False)
    return result, time.perf_counter() - start


def main():
    warm_X, warm_y = synthetic(500, 5)
    fit_time(LogisticRegression(warm_X, warm_y), natvi.FullRankGaussian)
    print(f"auto: full-rank when N·k² ≤ {FULL_RANK_BUDGET:.0e} and k ≤ {FULL_RANK_MAX_DIM} "
          f"(k = D + 1)\n")
    print(f"{'N':>9} {'D':>5} {'N·k²':>8} | {'mean-field':>24} | {'full-rank':>24} | ratio | auto")
    for n, d in SIZES:
        X, y = synthetic(n, d)
        model = LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)
        cells = []
        seconds = {}
        for family in (natvi.MeanFieldGaussian, natvi.FullRankGaussian):
            result, seconds[family] = fit_time(model, family)
            evals = result.history["grad_evals"][-1]
            cells.append(f"{result.n_iter:3d} it {evals:3d} ev {seconds[family]:7.2f} s")
        auto = model.auto_family()[0].__name__.replace("Gaussian", "")
        ratio = seconds[natvi.FullRankGaussian] / seconds[natvi.MeanFieldGaussian]
        print(f"{n:>9} {d:>5} {n * (d + 1) ** 2:>8.1e} | {cells[0]:>24} | {cells[1]:>24} | "
              f"{ratio:5.1f} | {auto}", flush=True)


if __name__ == "__main__":
    main()
