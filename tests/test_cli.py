"""The natvi command: fits match the library's, files read back, errors are one clean line."""

import os
import re
import runpy
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
from helpers import import_without

import natvi
from natvi import cli, diagnostics
from natvi.data import load_breast_cancer
from natvi.models import LogisticRegression, ProbitRegression

N = 40


def _frame(seed=0):
    """A small binary-regression table: features a (sd 1) and b (sd 1000), target y."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=N), 1000.0 * rng.normal(size=N)
    y = (rng.random(N) < 1 / (1 + np.exp(-(0.5 + a - 0.001 * b)))).astype(int)
    return pd.DataFrame({"a": a, "b": b, "y": y})


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "data.csv"
    _frame().to_csv(path, index=False)
    return path


def _run(capsys, *argv):
    """(exit code, stdout, stderr) of natvi.cli.main(argv), in process."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _value(out, prefix):
    """The first number after ``prefix`` in the output."""
    return float(_printed(out, prefix))


def _printed(out, prefix):
    match = re.search(re.escape(prefix) + r"\s*(-?\d+\.\d+)", out)
    assert match, f"{prefix!r} not in output:\n{out}"
    return match.group(1)


def _half_last_digit(out, prefix):
    """Half a unit in the last printed decimal (ArviZ 0.x prints 3, 1.x fewer)."""
    return 0.5 * 10.0 ** -len(_printed(out, prefix).split(".")[1])


# ---- the installed command ------------------------------------------------------------
def _installed_natvi():
    """The ``natvi`` script installed next to this interpreter (the venv's bin directory)."""
    found = shutil.which("natvi", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"the natvi command is not installed next to {sys.executable}; install the "
                    f'package into this environment: pip install -e ".[cli]"')
    return found


def test_installed_command_fits_breast_cancer(tmp_path):
    """The installed ``natvi fit`` on the breast-cancer CSV prints the summary, ELBO, status
    and k̂ verdict, and writes netCDF that arviz.from_netcdf reads back with intercept and
    coef named by the CSV header. The printed ELBO is natvi.fit's on the same standardized
    data; the printed k̂ is recomputed from lp and log_q in the file; the printed means are
    those of the written draws."""
    X, y, names = load_breast_cancer()
    data, out = tmp_path / "bc.csv", tmp_path / "posterior.nc"
    pd.DataFrame(X, columns=names).assign(malignant=y).to_csv(data, index=False)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([_installed_natvi(), "fit", str(data), "--target", "malignant",
                           "--standardize", "--draws", "300", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    text = done.stdout
    assert "30 feature(s), 569 rows" in text and "standardized" in text

    posterior = az.from_netcdf(out)["posterior"]
    assert {"intercept", "coef"} <= set(posterior.data_vars)
    assert posterior["coef"].shape == (1, 300, 30)
    assert list(posterior["coef"]["feature"].values) == names
    means = {"intercept": float(posterior["intercept"].mean()),
             "coef[worst_texture]": float(posterior["coef"].sel(feature="worst_texture").mean())}
    for row, mean in means.items():
        assert _value(text, row) == pytest.approx(mean, abs=1.2 * _half_last_digit(text, row))

    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    reference = natvi.fit(LogisticRegression(Xs, y, prior_scale=2.5), "ngd")
    assert reference.converged and "status: converged" in text
    assert _value(text, "ELBO (lower bound on log p(y)):") == pytest.approx(reference.elbo,
                                                                             abs=1e-3)
    stats = az.from_netcdf(out)["sample_stats"]
    k_hat = diagnostics.pareto_k(stats["lp"].values.ravel(), stats["log_q"].values.ravel())
    se = diagnostics.k_hat_se(k_hat, 300)
    assert f"Pareto k̂ = {k_hat:.2f} ± {se:.2f} from 300 draws" in text
    advice = ["more draws (--draws)"]  # the default fit is full-rank here
    verdict = reference.diagnose(draws=300, seed=0, suggestions=advice).message
    assert verdict.split(": ", 1)[1] in text
    assert "FullRankGaussian" not in text  # no Python in the command's advice


def test_python_m_natvi(monkeypatch, capsys):
    """``python -m natvi`` runs the same main (checked via --version, exit code 0)."""
    monkeypatch.setattr(sys, "argv", ["natvi", "--version"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("natvi", run_name="__main__")
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"natvi {natvi.__version__}"


# ---- fit --------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, model_cls, optimizer, family", [
    ([], LogisticRegression, "ngd", "auto"),
    (["--model", "probit", "--prior-scale", "0.7", "--family", "full_rank"],
     ProbitRegression, "ngd", natvi.FullRankGaussian),
    (["--optimizer", "adam", "--max-iter", "300"], LogisticRegression, "adam", "auto"),
])
def test_fit_options_reach_the_model(capsys, tmp_path, csv, extra, model_cls, optimizer,
                                     family):
    """--model, --prior-scale, --family, --optimizer and --max-iter give the fit natvi.fit
    gives with the same settings (same ELBO, status and iterations), on unscaled features;
    unfinished fits say so."""
    out = tmp_path / "post.nc"
    code, text, err = _run(capsys, "fit", csv, "--target", "y", "--draws", "100", "--out",
                           out, *extra)
    assert code == 0 and err == ""
    frame = _frame()
    scale = float(extra[extra.index("--prior-scale") + 1]) if "--prior-scale" in extra else 2.5
    max_iter = int(extra[extra.index("--max-iter") + 1]) if "--max-iter" in extra else 1000
    opt = "ngd" if optimizer == "ngd" else natvi.optim.adam()
    ref = natvi.fit(model_cls(frame[["a", "b"]], frame["y"], prior_scale=scale), opt,
                    family=family, max_iter=max_iter)
    assert _value(text, "ELBO (lower bound on log p(y)):") == pytest.approx(ref.elbo, abs=1e-4)
    assert f"status: {ref.status} after {ref.n_iter} iterations of {ref.optimizer}" in text
    assert ("not converged" in text) == (ref.status != "converged")
    assert "no --standardize" in text
    # features with sd 1 and 1000 slow mean-field fits (a full-rank step is a Newton step)
    assert ("consider --standardize" in text) == (family == "auto")
    assert f"family: {ref.family_reason}" in text
    for row in ("intercept", "coef[a]", "coef[b]"):
        assert re.search(rf"^{re.escape(row)}\s", text, re.M)
    back = az.from_netcdf(out)
    assert back["posterior"]["coef"].shape == (1, 100, 2)


def test_standardize_is_a_flag_off_by_default(capsys, csv):
    """Without --standardize the fit uses the raw columns; with it, columns rescaled to mean 0
    and sd 1 (ddof 0). The two ELBOs differ, each equal to natvi.fit on its own design."""
    frame = _frame()
    raw = frame[["a", "b"]]
    std = (raw - raw.mean()) / raw.std(ddof=0)
    elbos = {}
    for flag, X in (([], raw), (["--standardize"], std)):
        code, text, _ = _run(capsys, "fit", csv, "--target", "y", "--draws", "50", *flag)
        assert code == 0
        elbos[bool(flag)] = _value(text, "ELBO (lower bound on log p(y)):")
        assert elbos[bool(flag)] == pytest.approx(natvi.fit(LogisticRegression(X, frame["y"]))
                                                  .elbo, abs=1e-4)
    assert abs(elbos[True] - elbos[False]) > 1.0
    code, help_text, _ = _run(capsys, "fit", "--help")
    assert code == 0 and "off by default" in " ".join(help_text.split())


# ---- compare ----------------------------------------------------------------------------
def test_compare_table_and_plot(capsys, tmp_path, csv):
    """The table's final ELBOs and the iterations and evaluations to within 1, 0.1 and 0.01
    nats of the best ELBO are those of natvi.fit runs with the same settings ('never' when
    not reached); the plot is a PNG file."""
    pytest.importorskip("matplotlib", reason="compare --out needs matplotlib (natvi[plot])")
    png = tmp_path / "elbo.png"
    code, text, err = _run(capsys, "compare", csv, "--target", "y", "--standardize",
                           "--max-iter", "150", "--adam-lr", "0.001", "0.1", "--out", png)
    assert code == 0 and err == ""
    frame = _frame()
    X = (frame[["a", "b"]] - frame[["a", "b"]].mean()) / frame[["a", "b"]].std(ddof=0)
    model = LogisticRegression(X, frame["y"])
    mf = natvi.MeanFieldGaussian  # compare's default: NGD-vs-Adam comparisons are mean-field
    runs = {"natural gradient": natvi.fit(model, "ngd", max_iter=150, family=mf),
            "adam lr=0.001": natvi.fit(model, natvi.optim.adam(0.001), max_iter=150, family=mf),
            "adam lr=0.1": natvi.fit(model, natvi.optim.adam(0.1), max_iter=150, family=mf)}
    best = max(r.history["elbo"].max() for r in runs.values())
    assert _value(text, "best ELBO of any run:") == pytest.approx(best, abs=1e-5)
    rows = {line[:18].strip(): line[18:].split() for line in text.splitlines()
            if line.startswith(("natural gradient", "adam lr="))}
    assert set(rows) == set(runs)
    for name, r in runs.items():
        cells = rows[name]
        assert cells[:2] == [r.status, str(r.n_iter)]
        assert float(cells[2]) == pytest.approx(r.elbo, abs=1e-5)
        rest = cells[3:]
        for gap in (1.0, 0.1, 0.01):
            hit = np.flatnonzero(r.history["elbo"] >= best - gap)
            if hit.size == 0:
                assert rest[0] == "never"
                rest = rest[1:]
            else:
                assert rest[:2] == [str(hit[0]), str(r.history["grad_evals"][hit[0]])]
                rest = rest[3:]
    assert rows["adam lr=0.001"][3] == "never"  # too small a rate to get anywhere in 150 steps
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_compare_without_out_makes_no_plot(capsys, tmp_path, csv, monkeypatch):
    """No --out: the table only, and matplotlib is not needed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, text, err = _run(capsys, "compare", csv, "--target", "y", "--max-iter", "20",
                           "--adam-lr", "0.1")
    assert code == 0 and err == "" and "adam lr=0.1" in text
    assert "plot written" not in text
    assert list(tmp_path.iterdir()) == [csv]


# ---- errors -----------------------------------------------------------------------------
def _write(tmp_path, name, content):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


DATA_ERRORS = [
    # (file name, content or None for no file, message)
    ("missing.csv", None, r"missing\.csv: no such file"),
    ("empty.csv", "", r"empty\.csv: empty file"),
    ("ragged.csv", "a,y\n1,0\n2,1,7\n", r"ragged\.csv: not a readable CSV file \(.*line 3"),
    ("binary.csv", b"a,y\n\xff\xfe\x00\x81,1\n", r"binary\.csv: not a readable CSV file"),
    ("header.csv", "a,b,y\n", r"header\.csv: no data rows below the header"),
    ("only.csv", "y\n0\n1\n", r"only\.csv: no feature columns besides the target 'y'"),
    # the checks of natvi.validation, as every model makes them, naming the file
    ("text.csv", "a,colour,y\n1,red,0\n2,blue,1\n",
     r"text\.csv: expected real numeric columns, got non-numeric .*column\(s\) \['colour'\]"),
    ("gaps.csv", "a,b,y\n1,,0\n2,3,1\n",
     r"gaps\.csv: expected finite values, found missing \(NaN\) values in column\(s\) \['b'\]"),
    ("inf.csv", "a,y\ninf,0\n2,1\n",
     r"inf\.csv: expected finite values, found infinite values in column\(s\) \['a'\]"),
    ("labels.csv", "a,y\n1,0\n2,1\n3,2\n4,0.5\n",
     r"--target: column 'y': expected labels in \{0, 1\}, got \[0\.5, 2\.0\]"),
    ("nan_target.csv", "a,y\n1,0\n2,\n", r"--target: column 'y': expected finite values"),
    ("target.csv", "a,b\n1,0\n2,1\n", r"--target: no column 'y' in .*target\.csv; its columns "
                                     r"are \['a', 'b'\]"),
]


def _assert_one_error_line(err, pattern):
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("natvi: error: ")
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("command", ["fit", "compare"])
@pytest.mark.parametrize("name, content, pattern", DATA_ERRORS,
                         ids=[e[0] for e in DATA_ERRORS])
def test_data_errors(capsys, tmp_path, command, name, content, pattern):
    """Each bad input file is one error line on stderr, exit code 1, nothing on stdout."""
    path = tmp_path / name if content is None else _write(tmp_path, name, content)
    code, out, err = _run(capsys, command, path, "--target", "y")
    assert (code, out) == (1, "")
    _assert_one_error_line(err, pattern)


def test_directory_as_data(capsys, tmp_path):
    code, out, err = _run(capsys, "fit", tmp_path, "--target", "y")
    assert (code, out) == (1, "")
    _assert_one_error_line(err, "is a directory, expected a CSV file")


@pytest.mark.parametrize("argv, pattern", [
    (["fit", "DATA", "--target", "y", "--prior-scale", "-1"],
     r"prior_scale: expected a finite number > 0, got -1\.0"),
    (["fit", "DATA", "--target", "y", "--prior-scale", "nan"], r"prior_scale: expected a finite"),
    (["compare", "DATA", "--target", "y", "--adam-lr", "0.1", "-0.5"], r"learning_rate"),
    (["fit", "DATA", "--target", "y", "--standardize", "--out", "DIR/nowhere/p.nc"],
     r"--out: directory .*nowhere does not exist"),
    (["fit", "DATA", "--target", "y", "--out", "DIR"], r"--out: .* is a directory"),
    (["compare", "DATA", "--target", "y", "--out", "DIR/plot.xyz"],
     r"--out: expected a file name ending in one of \[.*'png'.*\], got .*plot\.xyz"),
])
def test_value_errors(capsys, tmp_path, csv, argv, pattern):
    """natvi's own ValueErrors and unwritable outputs: one line, exit code 1, and nothing
    printed or written before the error."""
    argv = [a.replace("DATA", str(csv)).replace("DIR", str(tmp_path)) for a in argv]
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (1, "")
    _assert_one_error_line(err, pattern)
    assert list(tmp_path.iterdir()) == [csv]


def test_constant_column_cannot_be_standardized(capsys, tmp_path):
    path = _write(tmp_path, "c.csv", "a,k,y\n1,5,0\n2,5,1\n3,5,1\n")
    code, out, err = _run(capsys, "fit", path, "--target", "y", "--standardize")
    assert (code, out) == (1, "")
    _assert_one_error_line(err, r"--standardize: constant column\(s\) \['k'\]")


@pytest.mark.parametrize("module, command, extra, pattern", [
    ("pandas", "fit", [], r'needs pandas: pip install "natvi\[cli\]"'),
    ("h5netcdf", "fit", ["--out", "OUT.nc"], r'needs h5netcdf: pip install "natvi\[netcdf\]"'),
    ("matplotlib", "compare", ["--out", "OUT.png"], r'pip install "natvi\[plot\]"'),
])
def test_missing_optional_dependency(capsys, tmp_path, csv, monkeypatch, module, command,
                                     extra, pattern):
    """A missing extra is one line naming what to install, before any fitting."""
    monkeypatch.setitem(sys.modules, module, None)
    extra = [e.replace("OUT", str(tmp_path / "out")) for e in extra]
    code, out, err = _run(capsys, command, csv, "--target", "y", *extra)
    assert (code, out) == (1, "")
    _assert_one_error_line(err, pattern)


@pytest.mark.parametrize("argv, pattern", [
    ([], r"required: \{fit,compare\}"),
    (["fit", "DATA"], r"required: --target \(see 'natvi fit --help'\)"),
    (["fit", "--target", "y"], r"required: data\.csv"),
    (["fitt", "DATA", "--target", "y"], r"invalid choice: 'fitt'"),
    (["fit", "DATA", "--target", "y", "--bogus"], r"unrecognized arguments: --bogus"),
    (["fit", "DATA", "--target", "y", "--optimizer", "sgd"], r"invalid choice: 'sgd'"),
    (["fit", "DATA", "--target", "y", "--family", "diag"], r"invalid choice: 'diag'"),
    (["fit", "DATA", "--target", "y", "--model", "poisson"], r"invalid choice: 'poisson'"),
    (["fit", "DATA", "--target", "y", "--draws", "10"], r"at least 25 draws"),
    (["fit", "DATA", "--target", "y", "--draws", "many"], r"expected a positive integer"),
    (["fit", "DATA", "--target", "y", "--max-iter", "0"], r"expected a positive integer"),
    (["fit", "DATA", "--target", "y", "--prior-scale", "wide"], r"invalid float value"),
    (["compare", "DATA", "--target", "y", "--adam-lr"], r"expected at least one argument"),
])
def test_usage_errors(capsys, csv, argv, pattern):
    """Usage errors, as argparse finds them: one line (no usage block), exit code 2."""
    code, out, err = _run(capsys, *[a.replace("DATA", str(csv)) for a in argv])
    assert (code, out) == (2, "")
    _assert_one_error_line(err, pattern)


def test_help_exits_zero(capsys):
    code, out, err = _run(capsys, "compare", "--help")
    assert code == 0 and err == "" and "--adam-lr" in out and "--standardize" in out


def test_module_imports_without_pandas(monkeypatch):
    """natvi.cli imports pandas only inside the commands."""
    fresh = import_without(monkeypatch, cli, "pandas")
    assert fresh is not cli and callable(fresh.main)


def test_standardize_refuses_a_column_too_large(capsys, tmp_path):
    """A column whose mean or sd overflows float64 would become all zeros: refused, named."""
    path = _write(tmp_path, "huge.csv", "a,big,flat,y\n1,1e308,1e308,0\n2,-1e308,1e308,1\n"
                                        "3,5e307,1e308,1\n")
    code, out, err = _run(capsys, "fit", path, "--target", "y", "--standardize")
    assert (code, out) == (1, "")
    _assert_one_error_line(err, r"--standardize: column\(s\) \['big', 'flat'\] are too large "
                                r"to standardize .*divide them by a power of ten first")


# ---- Ctrl-C, --out, advice, --target, --log-likelihood, python -m (issue 12, item 13) ----
def _interrupt_at(monkeypatch, call):
    """Ctrl-C during the ``call``-th ELBO evaluation of any logistic regression; returns the
    list of evaluations made."""
    calls = []
    evaluate = LogisticRegression.expected_log_joint

    def interrupted(self, posterior, rng=None):
        calls.append(len(calls) + 1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return evaluate(self, posterior, rng)

    monkeypatch.setattr(LogisticRegression, "expected_log_joint", interrupted)
    return calls


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_ctrl_c_stops_the_command_with_exit_code_130(capsys, monkeypatch, tmp_path, csv,
                                                       command):
    """natvi.fit turns Ctrl-C into status "interrupted"; the command stops there (no later
    compare run, no summary as if complete, nothing written) and exits 130."""
    calls = _interrupt_at(monkeypatch, 3)
    out = tmp_path / ("post.nc" if command == "fit" else "elbo.png")
    code, text, err = _run(capsys, command, csv, "--target", "y", "--out", out)
    assert (code, text) == (130, "")
    _assert_one_error_line(err, r"^natvi: error: interrupted$")
    assert len(calls) == 3  # nothing evaluated after the interrupt
    assert not out.exists()


@pytest.mark.parametrize("command, name", [("fit", "data.csv"), ("compare", "data.png")])
def test_out_may_not_be_the_data_file(capsys, tmp_path, command, name):
    """--out naming the data file, also through a symbolic link or another spelling of the
    path, is refused before anything is written (a CSV named .png is still read as CSV)."""
    data = tmp_path / name
    _frame().to_csv(data, index=False)
    before = data.read_bytes()
    link = tmp_path / f"link{data.suffix}"
    link.symlink_to(data)
    for out in (data, link, tmp_path / "." / name):
        code, text, err = _run(capsys, command, data, "--target", "y", "--max-iter", "5",
                               "--out", out)
        assert (code, text) == (1, "")
        _assert_one_error_line(err, rf"--out: .*{data.suffix} is the data file .*{name}; "
                                    r"writing the .* would overwrite it")
    assert data.read_bytes() == before


@pytest.mark.parametrize("family, advice", [
    ("mean_field", "Try a full-rank family (--family full_rank), or more draws (--draws)."),
    ("full_rank", "Try more draws (--draws)."),
])
def test_advice_names_the_command_options(capsys, monkeypatch, csv, family, advice):
    """When k̂ is high, the advice names this command's options, not Python calls."""
    monkeypatch.setattr(natvi.FitResult, "pareto_k", lambda self, draws=1000, seed=0: 3.0)
    code, text, err = _run(capsys, "fit", csv, "--target", "y", "--family", family, "--draws",
                           "100")
    assert code == 0 and err == ""
    assert "Pareto k̂ = 3.00 ± 0.89 from 100 draws: unreliable" in text
    assert advice in text
    assert "FullRankGaussian" not in text and "fit(" not in text


@pytest.mark.parametrize("target, guess", [
    ("Y", "'y'"), ("diagnosys", "'diagnosis'"), ("DIAGNOSIS", "'diagnosis'"),
    ("Feature_3", "'feature_3'"), ("diagnose", "'diagnosis'"),
    ("featur_1", "'feature_1' or 'feature_1.' or 'feature_1.'"),  # three at most
])
def test_target_typo_suggests_the_near_columns(capsys, tmp_path, target, guess):
    """The near match comes first, even where the column list is cut before it."""
    columns = [f"feature_{i}" for i in range(14)] + ["diagnosis", "y"]
    path = _write(tmp_path, "wide.csv", ",".join(columns) + "\n" + ",".join("1" * 16) + "\n")
    code, out, err = _run(capsys, "fit", path, "--target", target)
    assert (code, out) == (1, "")
    _assert_one_error_line(err, rf"--target: no column {target!r} in .*wide\.csv \(did you "
                                rf"mean {guess}\?\); its columns are \[.*\(16 in all\)\]$")


def test_log_likelihood_precision_of_the_netcdf(capsys, tmp_path, csv):
    """--log-likelihood: float32 by default (half of float64's bytes, LOO the same to well
    within its Monte Carlo error), float64, or none (no log_likelihood group)."""
    loo, sizes = {}, {}
    for choice in ("default", "float32", "float64", "none"):
        out = tmp_path / f"{choice}.nc"
        extra = [] if choice == "default" else ["--log-likelihood", choice]
        code, _, err = _run(capsys, "fit", csv, "--target", "y", "--standardize", "--draws",
                            "2000", "--out", out, *extra)
        assert code == 0, err
        back = az.from_netcdf(out)
        sizes[choice] = out.stat().st_size
        if choice == "none":
            assert "log_likelihood" not in back
            continue
        expected = "float32" if choice == "default" else choice
        assert back["log_likelihood"]["y"].dtype == np.dtype(expected)
        assert back["posterior"]["coef"].dtype == np.float64
        with warnings.catch_warnings():  # a high LOO k̂ warns; not what is tested here
            warnings.simplefilter("ignore", UserWarning)
            loo[choice] = diagnostics.loo_approximate_posterior(back)
    assert loo["default"].elpd == loo["float32"].elpd
    assert loo["float32"].elpd == pytest.approx(loo["float64"].elpd, abs=1e-4)
    # 2000 draws × 40 rows: the log-likelihood is most of the file
    assert sizes["none"] < sizes["float32"] < 0.6 * sizes["float64"]


REPO = Path(__file__).resolve().parents[1]


def test_python_m_natvi_in_a_checkout_says_what_to_run():
    """From the root of a checkout, ``-m`` finds the checkout's natvi/, where natvi.models
    (the top-level models/ folder) is missing unless an editable install maps it. Without
    one (simulated: no site initialization, only the dependencies on the path): one line
    saying what to run instead, not a traceback."""
    paths = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run([sys.executable, "-S", "-m", "natvi", "--version"], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=120)
    assert (done.returncode, done.stdout) == (1, "")
    _assert_one_error_line(done.stderr, r"python -m natvi imported natvi from a source "
                                        r"checkout .*run the installed natvi command, or "
                                        r"python -m natvi from outside the checkout$")


def test_python_m_natvi_outside_the_checkout(tmp_path):
    done = subprocess.run([sys.executable, "-m", "natvi", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, f"natvi {natvi.__version__}",
                                                                   "")
