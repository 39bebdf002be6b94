"""How stable is Pareto k̂ from one seed to another? The measurements behind the default
number of draws of ``FitResult.pareto_k`` / ``diagnose`` and the "borderline" verdicts.

For each benchmark data set (all priors N(0, 1), standardized features) and each family, the
fit's log weights log p(y, z) − log q(z) are computed at S_max draws for seeds 0–9, and k̂
from the first S of them for each S: its spread over the seeds, and whether the verdict
(good / ok / unreliable, or borderline between them: diagnostics.verdict) of any two seeds
agree, i.e. allow a common reading. Run:

    python examples/diagnostics_stability.py                 # all four data sets
    python examples/diagnostics_stability.py --datasets breast_cancer caravan
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import natvi
from natvi import diagnostics

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import DATASETS, load, natvi_model  # noqa: E402

SEEDS = range(10)
DRAWS = (1000, 2000, 4000, 8000)
#: data sets where S × N log-likelihood terms take minutes: fewer draws
MAX_DRAWS = {"synthetic_1m": 2000}


def log_weights(result, draws, seed):
    z = result.sample(draws, seed)
    return result.model.log_joint(z) - result.log_q(z)


ZONES = ("good", "ok", "unreliable")


def zones(k_hat, draws):
    """The verdicts a k̂ allows: one, or the range a borderline verdict names."""
    text = diagnostics.verdict(k_hat, draws).split(": ", 1)[1]
    if text.startswith("borderline"):
        low, high = text.split(", ", 1)[1].split(" (")[0].split(" to ")
        return ZONES[ZONES.index(low):ZONES.index(high) + 1]
    return (text.split(".")[0].split(",")[0].split(" with")[0],)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = parser.parse_args()
    print(f"{'data':<15} {'family':<10} {'S':>5}  {'k̂ over seeds 0–9':<28} "
          f"{'verdicts':<13} said")
    for name in args.datasets:
        X, y = load(name)
        model = natvi_model(X, y)
        for family in (natvi.MeanFieldGaussian, natvi.FullRankGaussian):
            result = natvi.fit(model, family=family, progress=False)
            top = MAX_DRAWS.get(name, max(DRAWS))
            start = time.perf_counter()
            weights = [log_weights(result, top, seed) for seed in SEEDS]
            for draws in [s for s in DRAWS if s <= top]:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ks = np.array([diagnostics.pareto_k(w[:draws], np.zeros(draws))
                                   for w in weights])
                allowed = [zones(k, draws) for k in ks]
                said = sorted({" to ".join((z[0], z[-1])) if len(z) > 1 else z[0]
                               for z in allowed}, key=len)
                # consistent: every two seeds' verdicts allow a common reading
                common = set.intersection(*(set(z) for z in allowed))
                print(f"{name:<15} {family.__name__[:-8]:<10} {draws:>5}  "
                      f"{ks.min():5.2f} – {ks.max():5.2f} (median {np.median(ks):.2f})   "
                      f"{'consistent' if common else 'CONTRADICTORY':<13} {' / '.join(said)}",
                      flush=True)
            print(f"   ({time.perf_counter() - start:.0f} s for the draws)", flush=True)


if __name__ == "__main__":
    main()
