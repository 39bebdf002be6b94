"""Reproducibility: the same seed gives the same numbers, bit for bit, in one process and
across processes; different seeds give different draws and different stochastic fits.

Covered: a stochastic fit (eight schools, Monte Carlo ELBO), deterministic fits (breast-cancer
logistic regression by quadrature, natural gradient and Adam), posterior draws, and the ArviZ
object (posterior draws, lp and log q per draw, pointwise log-likelihood). Across processes,
two subprocesses started from a directory outside the checkout, with different hash seeds,
print SHA-256 digests of every array's bytes, which must equal the parent's.
"""

import functools
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import natvi

#: Source shared by this file and the subprocesses: the fits and the digests of their numbers.
DIGEST_SOURCE = textwrap.dedent("""
    import functools
    import hashlib

    import numpy as np

    import natvi
    from natvi.data import load_breast_cancer
    from natvi.models import EightSchools, LogisticRegression


    @functools.lru_cache
    def standardized_breast_cancer():
        X, y, _ = load_breast_cancer()
        return (X - X.mean(axis=0)) / X.std(axis=0), y


    def fits(seed):
        '''{name: FitResult} of the three fits, with ``seed``.'''
        X, y = standardized_breast_cancer()
        return {
            "eight_schools": natvi.fit(EightSchools(engine="monte_carlo"), "ngd", max_iter=25,
                                       seed=seed),
            "logistic_ngd": natvi.fit(LogisticRegression(X, y), "ngd", max_iter=30, seed=seed),
            "logistic_adam": natvi.fit(LogisticRegression(X, y), "adam", max_iter=60,
                                       seed=seed),
        }


    def arrays(result, seed):
        '''{label: array} of every number a fit, its draws and its ArviZ object hold.'''
        out = {"elbo": np.array(result.elbo)}
        out.update({f"history/{k}": v for k, v in result.history.items() if k != "seconds"})
        out.update({f"natural/{k}": q.natural for k, q in result.posterior.items()})
        out.update({f"sample/{k}": v for k, v in result.sample(50, seed=seed).items()})
        idata = result.to_arviz(draws=40, seed=seed)
        for group in ("posterior", "sample_stats", "log_likelihood"):
            for var in idata[group].data_vars:
                out[f"{group}/{var}"] = np.asarray(idata[group][var].values)
        return out


    def digest(a):
        '''SHA-256 of an array's dtype, shape and bytes.'''
        a = np.ascontiguousarray(a)
        return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


    def digests(seed):
        '''{fit: {label: digest}} of every array of the three fits with ``seed``.'''
        return {name: {label: digest(a) for label, a in arrays(result, seed).items()}
                for name, result in fits(seed).items()}
""")
_SHARED = {}
exec(DIGEST_SOURCE, _SHARED)  # the same source runs in the subprocesses
fits, arrays, digest, digests = (_SHARED[k] for k in ("fits", "arrays", "digest", "digests"))


@functools.lru_cache
def _fits(seed):
    return fits(seed)


@functools.lru_cache
def _arrays(seed):
    return {name: arrays(result, seed) for name, result in _fits(seed).items()}


def _assert_identical(a, b):
    assert list(a) == list(b)
    for label in a:
        assert a[label].dtype == b[label].dtype, label
        assert np.array_equal(a[label], b[label]), label


def test_fits_are_what_they_should_be():
    """The deterministic fits really are deterministic models and the stochastic one is not;
    the ArviZ object has the groups compared below."""
    result = _fits(5)
    assert not result["eight_schools"].model.deterministic
    assert result["logistic_ngd"].model.deterministic
    assert {"posterior/theta", "sample_stats/lp", "sample_stats/log_q",
            "log_likelihood/y"} <= set(_arrays(5)["eight_schools"])


@pytest.fixture
def global_generator():
    """The legacy global NumPy generator, restored after the test that disturbs it."""
    state = np.random.get_state()  # noqa: NPY002 - natvi must not depend on it
    yield np.random
    np.random.set_state(state)  # noqa: NPY002


def test_same_seed_same_numbers_in_one_process(global_generator):
    """Fitting, sampling and converting to ArviZ twice with the same seed gives identical
    arrays (ELBO, history but seconds, natural parameters, draws, lp, log q, pointwise
    log-likelihood) for every fit — also after the global NumPy generator was reseeded in
    between, which natvi must not use."""
    first = _arrays(5)
    global_generator.seed(12345)
    global_generator.random(17)
    again = {name: arrays(result, 5) for name, result in fits(5).items()}
    assert list(again) == list(first)
    for name in first:
        _assert_identical(first[name], again[name])


def test_seed_forms_agree():
    """seed=5, SeedSequence(5) and default_rng(5) give the same stochastic fit; a Generator
    passed as seed is consumed, so reusing it gives a different fit."""
    model = _fits(5)["eight_schools"].model
    want = natvi.fit(model, max_iter=5, seed=5)
    for seed in (np.random.SeedSequence(5), np.random.default_rng(5), np.int64(5)):
        got = natvi.fit(model, max_iter=5, seed=seed)
        assert got.elbo == want.elbo
        assert np.array_equal(got.history["elbo"], want.history["elbo"])
    rng = np.random.default_rng(5)
    natvi.fit(model, max_iter=5, seed=rng)
    assert not np.array_equal(natvi.fit(model, max_iter=5, seed=rng).history["elbo"],
                              want.history["elbo"])


def test_different_seeds_differ():
    """Different seeds give a different stochastic fit (every iterate's ELBO estimate and
    the parameters differ), different draws and a different ArviZ object; a deterministic
    fit is the same whatever the seed (its ELBO has no randomness), while its draws differ."""
    a, b = _arrays(5), _arrays(6)
    stochastic_a, stochastic_b = a["eight_schools"], b["eight_schools"]
    assert np.all(stochastic_a["history/elbo"] != stochastic_b["history/elbo"])
    for key in _fits(5)["eight_schools"].posterior:
        assert not np.any(stochastic_a[f"natural/{key}"] == stochastic_b[f"natural/{key}"])
    for name in a:
        for label in a[name]:
            if label.startswith(("sample/", "posterior/", "sample_stats/", "log_likelihood/")):
                assert not np.array_equal(a[name][label], b[name][label]), (name, label)
    for name in ("logistic_ngd", "logistic_adam"):
        for label in a[name]:
            if label.startswith(("history/", "natural/", "elbo")):
                assert np.array_equal(a[name][label], b[name][label]), (name, label)


def test_sample_depends_only_on_its_seed(global_generator):
    """Draws for a seed do not depend on draws made before, nor on the global generator."""
    result = _fits(5)["logistic_ngd"]
    want = result.sample(30, seed=9)
    result.sample(7, seed=1)
    global_generator.seed(0)
    got = result.sample(30, seed=9)
    assert all(np.array_equal(got[k], want[k]) for k in want)


SCRIPT = DIGEST_SOURCE + textwrap.dedent("""

    import json
    import sys

    if __name__ == "__main__":
        print(json.dumps(digests(int(sys.argv[1]))))
""")


@pytest.mark.slow
def test_same_numbers_across_processes(tmp_path):
    """Two fresh interpreters (started outside the checkout, with different PYTHONHASHSEED)
    running the same fits with seed 5 print digests identical to each other and to this
    process's: fits, draws and ArviZ arrays do not depend on the process."""
    script = tmp_path / "digests.py"
    script.write_text(SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), "5"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONHASHSEED": hash_seed})
             for hash_seed in ("1", "2")]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    here = digests(5)
    assert outputs[0] == outputs[1]
    assert outputs[0] == here
    assert digests(6) != here


def test_digest_reflects_bytes():
    """The digest used across processes changes with one ulp, with dtype and with shape."""
    x = np.array([1.0, 2.0])
    assert digest(x) != digest(np.nextafter(x, 3))
    assert digest(x) != digest(x.astype(np.float32))
    assert digest(x) != digest(x.reshape(2, 1))
    assert digest(x) == digest(x.copy()) == hashlib.sha256(
        b"<f8(2,)" + x.tobytes()).hexdigest()
