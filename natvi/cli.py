"""The ``natvi`` command: fit a Bayesian regression to a CSV file, or compare optimizers.

    natvi fit data.csv --target y [--out posterior.nc]
    natvi compare data.csv --target y [--out elbo.png]

pandas (and matplotlib for ``compare --out``, h5netcdf for ``fit --out``) are imported
inside the commands; ``pip install "natvi[cli]"`` installs all three. Errors are one
line on stderr, ``natvi: error: ...``, with exit code 2 for usage errors (as argparse),
130 for Ctrl-C (which stops the whole command, not only the fit it lands in) and 1
otherwise.
"""

import argparse
import difflib
import os
import sys
from pathlib import Path

import arviz as az
import numpy as np

import natvi
from natvi import diagnostics, plot
from natvi.arviz_bridge import arviz_1
from natvi.families import GAUSSIAN_BY_NAME
from natvi.models import LogisticRegression, ProbitRegression
from natvi.validation import binary_labels, check_draws_memory, design_matrix, listed

#: binary-response models ``--model`` offers
MODELS = {"logistic": LogisticRegression, "probit": ProbitRegression}
#: variational families ``--family`` offers ("auto": the model's choice, said in the output)
FAMILIES = GAUSSIAN_BY_NAME
#: gaps to the best ELBO, in nats, that ``compare`` reports reaching
THRESHOLDS = (1.0, 0.1, 0.01)
#: Adam learning rates ``compare`` runs unless told otherwise
ADAM_RATES = (0.01, 0.1)
#: features whose standard deviations differ by more than this factor get a hint
SCALE_SPREAD_HINT = 100.0
#: precisions of the pointwise log-likelihood ``fit --out`` offers (None: left out)
LOG_LIKELIHOOD = {"float32": "float32", "float64": "float64", "none": None}

_INSTALL_HINT = 'pip install "natvi[cli]"'


class CommandError(Exception):
    """A failure to report as one line, ``natvi: error: <message>``, exit code 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit code 2) that name ``natvi``."""

    def error(self, message):
        self.exit(2, f"natvi: error: {_one_line(message)} (see '{self.prog} --help')\n")


def main(argv=None):
    """Run the ``natvi`` command line with ``argv`` (default ``sys.argv[1:]``); exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args)
    except CommandError as exc:
        return _fail(str(exc))
    except ValueError as exc:  # natvi's boundary checks name the argument at fault
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)


def _fail(message, code=1):
    print(f"natvi: error: {_one_line(message)}", file=sys.stderr)
    return code


def _one_line(text):
    return " ".join(str(text).split())


# ---- arguments ------------------------------------------------------------------------
def _build_parser():
    parser = _Parser(prog="natvi", description="Variational inference by natural gradients: "
                     "Bayesian regression of a 0/1 column of a CSV file on the other columns.")
    parser.add_argument("--version", action="version", version=f"natvi {natvi.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{fit,compare}")

    fit = commands.add_parser(
        "fit", help="fit the posterior; print its summary, ELBO and Pareto k̂",
        description="Fit a Bayesian logistic (or probit) regression by variational inference "
                    "and print the ArviZ summary of the posterior, the ELBO, the optimizer's "
                    "status and the Pareto k̂ of the fit with its verdict.")
    _data_arguments(fit)
    fit.add_argument("--optimizer", choices=("ngd", "adam"), default="ngd",
                     help="natural gradient (default) or Adam with its defaults")
    fit.add_argument("--family", choices=tuple(FAMILIES), default="auto",
                     help="auto (default): one full-rank Gaussian over the intercept and "
                          "coefficients where affordable (N·k² ≤ 2e9, k ≤ 301), else independent "
                          "Gaussians, as the output says; or force mean_field or full_rank")
    fit.add_argument("--max-iter", type=_positive_int, default=1000, metavar="N",
                     help="maximum optimizer steps (default 1000)")
    fit.add_argument("--draws", type=_draws, default=1000, metavar="N",
                     help="posterior draws for the summary, k̂ and the output file "
                          "(default 1000, at least 25)")
    fit.add_argument("--out", metavar="PATH",
                     help="write the draws as ArviZ netCDF (read back with "
                          "arviz.from_netcdf); needs h5netcdf. An existing file is "
                          "overwritten, unless it is the data. Default: write nothing")
    fit.add_argument("--log-likelihood", choices=tuple(LOG_LIKELIHOOD), default="float32",
                     help="the pointwise log-likelihood in --out, draws × rows values for "
                          "approximate-posterior LOO: float32 (default; half the size of "
                          "float64, and its 7 significant digits move elpd_loo by far less "
                          "than its Monte Carlo error), float64, or none (a much smaller "
                          "file without LOO)")
    fit.set_defaults(run=_run_fit)

    compare = commands.add_parser(
        "compare", help="natural gradient vs Adam on the same ELBO",
        description="Fit the same model with the natural gradient and with Adam at several "
                    "learning rates; print iterations, ELBO evaluations and seconds each "
                    "took to come within 1, 0.1 and 0.01 nats of the best ELBO any run "
                    "reached, and optionally plot the ELBO traces.")
    _data_arguments(compare)
    compare.add_argument("--family", choices=tuple(FAMILIES), default="mean_field",
                         help="variational family of every run (default mean_field)")
    compare.add_argument("--max-iter", type=_positive_int, default=1000, metavar="N",
                         help="maximum steps of each run (default 1000)")
    compare.add_argument("--adam-lr", type=float, nargs="+", default=list(ADAM_RATES),
                         metavar="LR", help="Adam learning rates (default: "
                         + " ".join(f"{lr:g}" for lr in ADAM_RATES) + ")")
    compare.add_argument("--out", metavar="PATH",
                         help="save the ELBO plot (PNG, PDF, SVG, ...); needs matplotlib. "
                              "An existing file is overwritten, unless it is the data. "
                              "Default: no plot")
    compare.set_defaults(run=_run_compare)
    return parser


def _data_arguments(parser):
    parser.add_argument("data", metavar="data.csv",
                        help="CSV file with a header row and numeric columns")
    parser.add_argument("--target", required=True, metavar="COLUMN",
                        help="the 0/1 response column; every other column is a feature")
    parser.add_argument("--model", choices=tuple(MODELS), default="logistic",
                        help="link of the regression (default logistic)")
    parser.add_argument("--prior-scale", type=float, default=2.5, metavar="S",
                        help="prior standard deviation of each coefficient (default 2.5); the "
                             "intercept's is 2.5")
    parser.add_argument("--standardize", action="store_true",
                        help="rescale each feature to mean 0 and standard deviation 1 before "
                             "fitting (off by default: features are used as they are, and the "
                             "prior scale applies to coefficients on the raw scale)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the posterior draws (and of any Monte Carlo engine)")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _draws(text):
    value = _positive_int(text)
    if value < diagnostics.MIN_DRAWS:
        raise argparse.ArgumentTypeError(f"expected at least {diagnostics.MIN_DRAWS} "
                                         f"draws for the Pareto k̂, got {value}")
    return value


# ---- data -----------------------------------------------------------------------------
def _pandas():
    try:
        import pandas
    except ImportError:
        raise CommandError(f"reading CSV files needs pandas: {_INSTALL_HINT}") from None
    return pandas


def _read_data(path, target, standardize):
    """(features DataFrame, 0/1 target array) from a CSV file, or CommandError; features
    too large for float64's squares are left to ``standardize`` to refuse or rescale."""
    pd = _pandas()
    path = Path(path)
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    if path.is_dir():
        raise CommandError(f"{path}: is a directory, expected a CSV file")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CommandError(f"{path}: empty file, expected a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read ({exc.strerror or exc})") from None
    columns = [str(c) for c in table.columns]
    if target not in columns:
        near = _near(target, columns)
        guess = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
        raise CommandError(f"--target: no column {target!r} in {path}{guess}; its columns are "
                           f"{listed(columns)}")
    if len(table) == 0:
        raise CommandError(f"{path}: no data rows below the header")
    if len(columns) < 2:
        raise CommandError(f"{path}: no feature columns besides the target {target!r}")
    table.columns = columns
    try:
        design_matrix(table.drop(columns=target), name=str(path),
                      check_scale=not standardize)
        y = binary_labels(table[target], name=f"--target: column {target!r}")
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return table.drop(columns=target), y


def _near(word, choices, n=3):
    """The ``choices`` equal to ``word`` but for case, else up to ``n`` close to it ignoring
    case, the closest first."""
    folded = {}
    for choice in choices:
        folded.setdefault(choice.casefold(), []).append(choice)
    if word.casefold() in folded:
        return folded[word.casefold()]
    close = difflib.get_close_matches(word.casefold(), list(folded), n=n)
    return [choice for key in close for choice in folded[key]][:n]


def _model(args):
    """The model of the data and arguments, with a line on how the features were scaled."""
    X, y = _read_data(args.data, args.target, args.standardize)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused below
        mean, sd = X.mean(axis=0), X.std(axis=0, ddof=0)
    if args.standardize:
        # past float64's range the mean or sd is inf, and (x - mean) / sd all zeros
        huge = [c for c in X.columns if not (np.isfinite(mean[c]) and np.isfinite(sd[c]))]
        if huge:
            raise CommandError(f"--standardize: column(s) {listed(huge)} are too large to "
                               "standardize (their standard deviation overflows float64); "
                               "divide them by a power of ten first")
        constant = [c for c, s in sd.items() if not s > 0]
        if constant:
            raise CommandError(f"--standardize: constant column(s) {listed(constant)} cannot be "
                               "rescaled to standard deviation 1; drop them")
        X = (X - mean) / sd
        note = "features standardized to mean 0 and sd 1: coefficients are per sd of a feature"
    else:
        note = "features used as they are (no --standardize)"
        positive = sd[sd > 0]
        if (args.family != "full_rank" and len(positive) > 1
                and positive.max() > SCALE_SPREAD_HINT * positive.min()):
            note += (f"; their standard deviations range from {positive.min():.3g} to "
                     f"{positive.max():.3g}, which slows mean-field fits: consider --standardize")
    model = MODELS[args.model](X, y, prior_scale=args.prior_scale)
    head = (f"{args.model} regression of {args.target!r} on {X.shape[1]} feature(s), "
            f"{X.shape[0]} rows of {args.data}")
    return model, head, note


def _check_writable(path, what, data):
    """Fail before a long fit if ``path`` cannot be written, or is the ``data`` file."""
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"--out: {path} is a directory, expected a file name for the {what}")
    if not path.parent.is_dir():
        raise CommandError(f"--out: directory {path.parent} does not exist")
    if path.exists() and Path(data).exists() and os.path.samefile(path, data):
        raise CommandError(f"--out: {path} is the data file {data}; writing the {what} "
                           "would overwrite it, choose another file name")


def _fit(model, optimizer, args):
    """natvi.fit with the command's settings; Ctrl-C stops the whole command."""
    result = natvi.fit(model, optimizer, family=FAMILIES[args.family], max_iter=args.max_iter,
                       seed=args.seed)
    if result.status == "interrupted":  # natvi.fit caught the Ctrl-C to return its iterate
        raise KeyboardInterrupt
    return result


def _suggestions(result):
    """What to try when k̂ is high, as this command's options."""
    mean_field = any(q.support == "real" and not q.joint for q in result.posterior.values())
    tries = ["a full-rank family (--family full_rank)"] if mean_field else []
    return [*tries, "more draws (--draws)"]


def _set_log_likelihood(data, precision):
    """Store the log_likelihood group of ``data`` (InferenceData or DataTree, changed in
    place) as ``precision``, "float32" or "float64", or drop it (None)."""
    if "log_likelihood" not in data:
        return
    if arviz_1():  # a DataTree
        if precision is None:
            del data["log_likelihood"]
        else:
            data["log_likelihood"] = data["log_likelihood"].to_dataset().astype(precision)
    elif precision is None:
        del data.log_likelihood
    else:
        data.log_likelihood = data.log_likelihood.astype(precision)


# ---- commands -------------------------------------------------------------------------
def _run_fit(args):
    if args.out is not None:
        _check_writable(args.out, "netCDF file", args.data)
        try:
            import h5netcdf  # noqa: F401  (the engine ArviZ writes netCDF with)
        except ImportError:
            raise CommandError('writing netCDF needs h5netcdf: pip install "natvi[netcdf]"') \
                from None
    pd = _pandas()
    model, head, note = _model(args)
    # before the fit, which may be long: the draws must fit in memory for to_arviz
    check_draws_memory(model, args.draws, "--draws", "pointwise_log_likelihood")
    optimizer = "ngd" if args.optimizer == "ngd" else natvi.optim.adam()
    result = _fit(model, optimizer, args)
    data = result.to_arviz(draws=args.draws, seed=args.seed)
    summary = az.summary(data, kind="stats")  # "stats": no r_hat/ESS columns for one chain

    print(head)
    print(note)
    print()
    with pd.option_context("display.width", 120, "display.max_rows", 500):
        print(summary.round(3))
    print()
    print(f"ELBO (lower bound on log p(y)): {result.elbo:.4f}")
    hist = result.history
    print(f"status: {result.status} after {result.n_iter} iterations of {result.optimizer}, "
          f"{hist['grad_evals'][-1]} ELBO evaluations, {hist['seconds'][-1]:.2f} s")
    print(f"family: {result.family_reason} (--family mean_field or full_rank chooses)")
    if result.status != "converged":
        tips = ["raise --max-iter"] + (["try --standardize"] if not args.standardize else []) \
            + (["try --optimizer ngd"] if args.optimizer != "ngd" else [])
        print(f"  (not converged: the summary is of an unfinished fit; {', or '.join(tips)})")
    print(result.diagnose(draws=args.draws, seed=args.seed,
                          suggestions=_suggestions(result)).message)
    print(f"({args.draws} independent draws from q as one chain: r_hat and ESS would not be "
          "sampler diagnostics and are left out.)")
    if args.out is not None:
        _set_log_likelihood(data, LOG_LIKELIHOOD[args.log_likelihood])
        try:
            data.to_netcdf(args.out)
        except (OSError, ImportError, ValueError) as exc:
            raise CommandError(f"--out: cannot write {args.out} ({exc})") from None
        print(f"posterior written to {args.out} (read it with arviz.from_netcdf)")
    return 0


def _run_compare(args):
    if args.out is not None:
        _check_writable(args.out, "plot", args.data)
        try:
            matplotlib = plot.require_matplotlib()
        except ImportError as exc:
            raise CommandError(str(exc)) from None
        from matplotlib.backend_bases import FigureCanvasBase

        suffix = Path(args.out).suffix.lstrip(".").lower()
        formats = FigureCanvasBase.get_supported_filetypes()
        if suffix not in formats:
            raise CommandError(f"--out: expected a file name ending in one of "
                               f"{listed(sorted(formats), 12)}, got {args.out!r}")
    else:
        matplotlib = None
    optimizers = {"natural gradient": "ngd"}  # Adam's rates are checked before any fit runs
    optimizers.update({f"adam lr={lr:g}": natvi.optim.adam(lr) for lr in args.adam_lr})
    model, head, note = _model(args)
    runs = {name: _fit(model, opt, args) for name, opt in optimizers.items()}
    best = max(float(np.max(r.history["elbo"])) for r in runs.values())

    print(head)
    print(note)
    print()
    print(f"best ELBO of any run: {best:.6f}")
    print(comparison_table(runs, best))
    if matplotlib is not None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 4), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, x in zip(axes, ("iteration", "seconds"), strict=True):
            plot.elbo(runs, x=x, best=best, ax=ax)
            # symlog: logarithmic like the gaps, yet showing the start at x = 0
            ax.set_xscale("symlog", linthresh=1.0 if x == "iteration" else 1e-3)
            ax.set_xlim(left=0)
            for gap in THRESHOLDS:
                ax.axhline(gap, color="0.8", lw=0.8, zorder=0)
        axes[1].set_ylabel("")
        axes[1].get_legend().remove()
        fig.suptitle(head)
        try:
            fig.savefig(args.out, dpi=120)
        except (OSError, ValueError) as exc:
            raise CommandError(f"--out: cannot write {args.out} ({exc})") from None
        print(f"\nELBO plot written to {args.out}")
    return 0


def first_within(history, best, gap):
    """(iteration, ELBO evaluations, seconds) when the ELBO first came within ``gap`` of
    ``best``, or None if it never did."""
    hit = np.flatnonzero(np.asarray(history["elbo"]) >= best - gap)
    if hit.size == 0:
        return None
    i = int(hit[0])
    return i, int(history["grad_evals"][i]), float(history["seconds"][i])


def comparison_table(runs, best):
    """The text table of ``compare``: {name: FitResult} against the ELBO ``best``."""
    width = max(18, *(len(name) + 2 for name in runs))
    cols = "".join(f"{'iter@' + format(g, 'g'):>10}{'evals':>7}{'sec':>8}" for g in THRESHOLDS)
    header = f"{'method':<{width}}{'status':>10}{'iters':>7}{'final ELBO':>14}  {cols}"
    lines = [header, "-" * len(header)]
    for name, r in runs.items():
        row = f"{name:<{width}}{r.status:>10}{r.n_iter:>7d}{r.elbo:>14.6f}  "
        for g in THRESHOLDS:
            hit = first_within(r.history, best, g)
            row += (f"{hit[0]:>10d}{hit[1]:>7d}{hit[2]:>8.3f}" if hit
                    else f"{'never':>10}{'':>7}{'':>8}")
        lines.append(row.rstrip())
    return "\n".join(lines)
