"""Natural steps on a stochastic ELBO: the plain η + ρ∇_μ L against the Gaussians' own
``natural_step``, whose precisions stay positive definite by construction (the Bayesian
learning rule's step, Lin, Schmidt & Khan, ICML 2020).

On ``engine="monte_carlo"`` (fresh draws every step) with natvi's stochastic default,
``natural_gradient(0.1)``, for seeds 0–9: the random-effects Poisson model of issue 14,
centered and non-centered (mean-field default families and one full-rank Gaussian over
every latent), and eight schools, centered and non-centered (full-rank). Each fit is
compared with a long fit on 256 fixed draws of the same family (``engine="fixed_draws"``):
status, iterations, the ELBO at the returned q from 1,000 fresh draws, and the largest
error of a mean (of each Gaussian coordinate: log σ for a log-normal σ) in the reference
fit's sds. A second table shows the first step on the GP-like Poisson model.

Run: ``python examples/stable_steps.py`` (about an hour on 2 cores, most of it the
full-rank random-effects fits; ``--cases`` picks some, ``--max-iter`` caps them,
``--first-steps`` prints only the second table).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import natvi
from natvi import draw_check

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_models  # noqa: E402

#: (model, family label): the cases of the main table
CASES = [("poisson_re_centered", "mean-field"), ("poisson_re_noncentered", "mean-field"),
         ("poisson_re_centered", "full-rank"), ("poisson_re_noncentered", "full-rank"),
         ("eight_schools_centered", "full-rank"), ("eight_schools_noncentered", "full-rank")]
FAMILIES = {"mean-field": None, "full-rank": natvi.FullRankGaussian}
#: the two steps compared, at the stochastic default ρ = 0.1
STEPS = {"plain": natvi.optim.natural_gradient(0.1, family_steps=False),
         "PD (BLR)": natvi.optim.natural_gradient(0.1)}


def model_of(name, engine, **options):
    """The reference model ``name`` on ``engine``."""
    ref = reference_models.MODELS[name]()
    spec = {n: (latent.shape, latent.support) for n, latent in ref.model.latents.items()}
    return natvi.Model(ref.log_joint, spec, engine=engine, **options)


def mean_error(posterior, reference):
    """max |mean − reference mean| / reference sd over the Gaussian coordinates."""
    worst = 0.0
    for key, q in reference.items():
        loc, sd = q.location_scale()
        worst = max(worst, float(np.max(np.abs(posterior[key].location_scale()[0] - loc) / sd)))
    return worst


def compare(name, label, seeds, max_iter):
    """Rows (seed, {step: (status, iterations, fresh ELBO, error, seconds)}) of one case."""
    family = FAMILIES[label]
    reference = natvi.fit(model_of(name, "fixed_draws", n_samples=256), family=family,
                          max_iter=5000)
    rows = []
    for seed in seeds:
        row = {}
        for step, optimizer in STEPS.items():
            model = model_of(name, "monte_carlo")
            start = time.perf_counter()
            result = natvi.fit(model, optimizer, family=family, seed=seed, max_iter=max_iter)
            seconds = time.perf_counter() - start
            elbo, _, _ = draw_check.fresh_elbo(model, result.posterior,
                                            np.random.default_rng([seed, 99]))
            row[step] = (result.status, result.n_iter, elbo,
                         mean_error(result.posterior, reference.posterior), seconds)
        rows.append((seed, row))
        print(f"{name:24s} {label:10s} {seed:4d} " + " | ".join(
            f"{s:9s} {n:5d} {e:10.6g} {err:9.3g} {t:6.1f}" for s, n, e, err, t in row.values()),
            flush=True)
    return reference, rows


def first_steps(seeds):
    """The first step of each seed on gp_poisson (Monte Carlo): ρ taken, halvings, the
    move of log ℓ's mean and the largest move of a mean in the starting sds (1)."""
    print("\nFirst step on gp_poisson (monte_carlo, ρ = 0.1; start: every mean 0, sd 1)")
    print(f"{'family':10s} {'step':9s} {'seed':>4s} {'ρ taken':>9s} {'halved':>6s} "
          f"{'log ℓ mean':>10s} {'max |Δ mean|':>12s} {'ELBO before':>11s} {'after':>10s}")
    for label, family in FAMILIES.items():
        for step, optimizer in STEPS.items():
            for seed in seeds:
                vi = natvi.VI(model_of("gp_poisson", "monte_carlo"), optimizer, family=family,
                              seed=seed)
                state = vi.init()
                after = vi.step(state)
                locs = np.concatenate([np.ravel(q.location_scale()[0])
                                       for q in after.evaluation.aux["posterior"].values()])
                record = after.history[0]
                print(f"{label:10s} {step:9s} {seed:4d} {record.step_size:9.3g} "
                      f"{record.rejected:6d} {locs[-1]:10.3g} {np.max(np.abs(locs)):12.3g} "
                      f"{state.evaluation.value:11.4g} {after.evaluation.value:10.4g}")


def summarize(results):
    """One line per case and step: converged fits, median iterations, ELBO and error."""
    print(f"\n{'model':24s} {'family':10s} {'step':9s} {'converged':>9s} {'diverged':>8s} "
          f"{'med iter':>8s} {'med ELBO':>9s} {'ref ELBO':>9s} {'med err':>8s} {'max err':>8s} "
          f"{'med s':>6s}")
    for (name, label), (reference, rows) in results.items():
        for step in STEPS:
            runs = [row[step] for _, row in rows]
            status = [r[0] for r in runs]
            print(f"{name:24s} {label:10s} {step:9s} "
                  f"{status.count('converged'):5d}/{len(runs):<3d} {status.count('diverged'):8d} "
                  f"{np.median([r[1] for r in runs]):8.0f} {np.median([r[2] for r in runs]):9.5g} "
                  f"{reference.elbo:9.5g} {np.median([r[3] for r in runs]):8.3g} "
                  f"{np.max([r[3] for r in runs]):8.3g} {np.median([r[4] for r in runs]):6.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 … N−1")
    parser.add_argument("--cases", type=int, nargs="*", default=None,
                        help="indices into CASES (default: all, then the first steps)")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--first-steps", action="store_true",
                        help="only the first steps on gp_poisson")
    args = parser.parse_args()
    seeds = range(args.seeds)
    if args.first_steps:
        first_steps(seeds)
        return
    cases = CASES if args.cases is None else [CASES[i] for i in args.cases]
    print(f"{'model':24s} {'family':10s} {'seed':>4s} " + " | ".join(
        f"{step:9s} {'iter':>5s} {'ELBO':>10s} {'err (sd)':>9s} {'s':>6s}"
        for step in STEPS))
    results = {case: compare(*case, seeds, args.max_iter) for case in cases}
    summarize(results)
    if args.cases is None:
        first_steps(seeds)


if __name__ == "__main__":
    main()
