"""natvi's file format: one ``.npz`` (read with ``allow_pickle=False``) plus JSON metadata.

Used by :meth:`natvi.result.FitResult.save`, :func:`natvi.load` and checkpoints. Files
are written to a temporary file in the same directory, flushed to disk and renamed
over the target, so a crash at any moment leaves the previous file intact. A file that
is not natvi's, of another kind, of an unknown version, or corrupted is a ValueError
naming the path, never an exception from inside NumPy or zipfile.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from natvi import factors, families

FORMAT = "natvi"
#: the version this code writes, and the ones it reads
VERSION = 1
READABLE = (1,)

_META = "__meta__"


def write(path, kind, meta, arrays):
    """Write ``arrays`` ({name: array}) and the JSON-able ``meta`` atomically to ``path``."""
    path = os.fspath(path)
    # The member list guards against a damaged zip directory that still parses, but to
    # fewer entries (each entry's CRC is checked; the directory has none).
    header = {"format": FORMAT, "version": VERSION, "kind": kind, **meta,
              "members": sorted(arrays)}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".natvi-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{_META: np.array(json.dumps(header))}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path, kind, name="path"):
    """(meta, arrays) of a natvi file of ``kind``; ValueError when it is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{name}: no such file: {path!r}")
    try:
        # np.load reads each member only as far as its header says, so zipfile never gets
        # to check the CRC of a flipped data byte: check every member first.
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            raise ValueError(f"member {bad!r} fails its CRC check")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[_META][()]))
            arrays = {k: data[k] for k in data.files if k != _META}
    except Exception as exc:  # zipfile, NumPy and json raise many types on damaged files
        raise ValueError(f"{name}: {path!r} is not a readable natvi file "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{name}: {path!r} is not a natvi file")
    if meta.get("version") not in READABLE:
        raise ValueError(f"{name}: {path!r} has format version {meta.get('version')!r}; this "
                         f"natvi reads version(s) {list(READABLE)}")
    if meta.get("kind") != kind:
        raise ValueError(f"{name}: {path!r} holds a {meta.get('kind')!r}, not a {kind!r}")
    members = meta.pop("members", None)  # absent in files from before it was written
    if members is not None and sorted(arrays) != members:
        missing = sorted(set(members) - set(arrays))
        unknown = sorted(set(arrays) - set(members))
        raise ValueError(f"{name}: {path!r} is damaged: its directory does not list the "
                         f"arrays it was written with (missing {_names(missing)}, unexpected "
                         f"{_names(unknown)})")
    return meta, arrays


def _names(names):
    return (", ".join(names[:3]) + (", …" if len(names) > 3 else "")) if names else "none"


# ---- pieces of a fit: latents, factors, trees of arrays ---------------------------------
def encode_latents(latents):
    return {name: [list(lat.shape), lat.support, lat.categories]
            for name, lat in latents.items()}


def decode_latents(spec):
    from natvi.model import Latent

    return {name: Latent(tuple(shape), support, categories)
            for name, (shape, support, categories) in spec.items()}


def encode_factors(families_by_key):
    """JSON list of (latent names, family name), in order; the index is the factor's id."""
    return [[list(factors.latent_names(key)), cls.__name__]
            for key, cls in families_by_key.items()]


def decode_factors(spec):
    """{factor key: family class} from :func:`encode_factors`."""
    out = {}
    for names, family in spec:
        cls = getattr(families, family, None)
        if family not in families.__all__ or cls is None:
            raise ValueError(f"unknown family {family!r} in the file")
        out[names[0] if len(names) == 1 else tuple(names)] = cls
    return out


def put_tree(arrays, prefix, tree, keys):
    """Store a dict {factor key: array} under ``prefix|i`` (i the factor's index in keys)."""
    for i, key in enumerate(keys):
        if key in tree:
            arrays[f"{prefix}|{i}"] = np.asarray(tree[key])


def get_tree(arrays, prefix, keys):
    """Inverse of :func:`put_tree`."""
    return {key: arrays[f"{prefix}|{i}"] for i, key in enumerate(keys)
            if f"{prefix}|{i}" in arrays}


def put_state(arrays, prefix, state, keys):
    """Store an optimizer state (a NamedTuple of arrays and factor-keyed dicts)."""
    layout = {}
    for field, value in state._asdict().items():
        if isinstance(value, dict):
            layout[field] = "tree"
            put_tree(arrays, f"{prefix}|{field}", value, keys)
        else:
            layout[field] = "array"
            arrays[f"{prefix}|{field}"] = np.asarray(value)
    return {"type": type(state).__name__, "fields": layout}


def get_state(arrays, prefix, layout, template, keys):
    """The state of :func:`put_state`, as an instance of ``template``'s type."""
    if layout["type"] != type(template).__name__ or list(layout["fields"]) != list(
            template._fields):
        raise ValueError(f"the file holds the state of a {layout['type']}, but the optimizer "
                         f"given has a {type(template).__name__}")
    values = {}
    for field, kind in layout["fields"].items():
        values[field] = (get_tree(arrays, f"{prefix}|{field}", keys) if kind == "tree"
                         else arrays[f"{prefix}|{field}"])
    return type(template)(**values)
