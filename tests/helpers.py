"""Helpers shared by several test modules (the family registry has its own module)."""

import importlib
import sys

import numpy as np

from natvi import serialization


def count_calls(model):
    """Wrap the model's engine's expected_log_joint to count its calls; returns the list
    counter."""
    calls, original = [0], model.engine.expected_log_joint

    def counted(posterior, rng=None):
        calls[0] += 1
        return original(posterior, rng)

    model.engine.expected_log_joint = counted
    return calls


def import_without(monkeypatch, module, dependency):
    """``module`` imported afresh while ``dependency`` cannot be imported; the original module
    is back in sys.modules and on its package after the test."""
    monkeypatch.setitem(sys.modules, dependency, None)
    monkeypatch.delitem(sys.modules, module.__name__)
    package, _, name = module.__name__.rpartition(".")
    monkeypatch.setattr(sys.modules[package], name, module, raising=False)
    return importlib.import_module(module.__name__)


def _truncated(fraction):
    def make(path, source):
        data = source.read_bytes()
        path.write_bytes(data[:int(len(data) * fraction)])
    return make


#: files natvi did not write, for readers that must refuse them with a ValueError: label →
#: writer(path, a good file of the kind read, to truncate), or None for no file at all
BAD_FILES = {
    "missing": None,
    "empty": lambda p, s: p.write_bytes(b""),
    "random bytes": lambda p, s: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "text": lambda p, s: p.write_text("natvi file\n"),
    **{f"truncated {100 * f:g}%": _truncated(f) for f in (0.05, 0.1, 0.5, 0.6, 0.99)},
    "foreign npz": lambda p, s: np.savez(p, a=np.arange(3), b=np.eye(2)),
    "npz with only an elbo": lambda p, s: np.savez(p, elbo=np.array(1.0)),
    "npz needing pickle": lambda p, s: np.savez(
        p, __meta__=np.array([{"format": "natvi"}], dtype=object)),
    "directory": lambda p, s: p.mkdir(),
}


def bad_file(label, directory, source):
    """The path of the BAD_FILES entry ``label`` in ``directory``, written (where there is a
    file) from the good file ``source``."""
    path = directory / "bad.npz"
    if BAD_FILES[label] is not None:
        BAD_FILES[label](path, source)
    return path


def central_directory_offsets(data):
    """Offsets of the fields 'version needed', 'flags' and 'compression' of every entry of
    the central directory (signature PK\\x01\\x02) of the zip file ``data`` (bytes)."""
    out, start = [], data.find(b"PK\x01\x02")
    while start >= 0:
        out += [start + 6, start + 8, start + 10]
        start = data.find(b"PK\x01\x02", start + 1)
    return out


def read_flipped(data, offsets, path, read, prefix):
    """What ``read(path)`` returns for the file ``data`` with one byte flipped, for each of
    ``offsets`` in turn where it returns; where it fails, that must be a ValueError starting
    with ``prefix`` (other exceptions are collected and reported together)."""
    got, leaked = [], {}
    for offset in offsets:
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            got.append(read(path))
        except ValueError as exc:
            assert str(exc).startswith(prefix)
        except Exception as exc:  # collected and reported below
            leaked[offset] = f"{type(exc).__name__}: {exc}"
    assert not leaked, leaked
    return got


def rewrite(kind, source, path, meta_edit=None, arrays_edit=None):
    """Copy the natvi file ``source`` of ``kind`` ("result", "checkpoint") to ``path``, its
    metadata and arrays edited in place by ``meta_edit`` and ``arrays_edit`` (valid CRCs)."""
    meta, arrays = serialization.read(source, kind)
    if meta_edit:
        meta_edit(meta)
    if arrays_edit:
        arrays_edit(arrays)
    serialization.write(path, kind, meta, arrays)


def same_fit(r0, r1, elbo_rtol=1e-10, rtol=1e-8):
    """The same fit, up to where summation order can move a converged optimum: a gain of
    1e-13 nats (the stopping rule) leaves each mean up to √(2e-13) ≈ 4.5e-7 sds from the
    stationary point, so means agree to 1e-6 sds and sds to 1e-6 relative (and to ``rtol``
    where that is looser). The iterations may differ by one or two: where the last steps
    gain less than the ELBO's rounding, the summation order decides when the fit stops."""
    assert abs(r1.elbo - r0.elbo) <= elbo_rtol * abs(r0.elbo)
    for key, q in r0.posterior.items():
        np.testing.assert_allclose(r1.posterior[key].mean(), q.mean(), rtol=rtol,
                                   atol=1e-6 * np.sqrt(np.min(q.var())))
        np.testing.assert_allclose(np.sqrt(r1.posterior[key].var()), np.sqrt(q.var()),
                                   rtol=max(rtol, 1e-6), atol=1e-12)


def reference_models():
    """examples/reference_models.py as a module (examples/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "reference_models.py"
    spec = importlib.util.spec_from_file_location("reference_models", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reference_models", module)
    spec.loader.exec_module(module)
    return module
