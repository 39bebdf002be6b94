"""natvi's file format: one ``.npz`` (read with ``allow_pickle=False``) plus JSON metadata.

Used by :meth:`natvi.result.FitResult.save`, :func:`natvi.load` and checkpoints. Files
are written to a temporary file in the same directory, flushed to disk and renamed
over the target, so a crash at any moment leaves the previous file intact. A file that
is not natvi's, of another kind, of an unknown version, or corrupted is a ValueError
naming the path, never an exception from inside NumPy or zipfile.

A temporary file is named ``.natvi-<target>-<pid>-<random>.tmp`` (the target's name cut
to 48 characters). A writer killed mid-write (SIGKILL, power loss) leaves it behind, so
every successful write of a target removes that target's temporaries whose process is no
longer running; a live writer's (this process's included) is never touched. The check is
by process id on this machine: two machines writing one target on a shared file system
at the same moment is not supported (one of the writes may then fail).

Reading spends no more memory or time than the file's size: natvi writes its arrays
uncompressed, and a member that is compressed (which may inflate to any size: a zip
bomb), that overlaps another, or whose sizes disagree with the bytes the file holds for
it or with its array header is refused before any array data is read.
"""

import json
import math
import os
import re
import tempfile
import zipfile

import numpy as np

from natvi import factors, families
from natvi.model import as_latent

FORMAT = "natvi"
#: the version this code writes, and the ones it reads
VERSION = 1
READABLE = (1,)

_META = "__meta__"
#: characters of the target's name kept in a temporary file's name (a file name may hold
#: 255 bytes, a character up to 4)
_NAME_KEPT = 48


class Damaged(ValueError):
    """A field of a natvi file that is missing or does not hold what natvi writes there.

    The message names the field; the loader adds the file.
    """


def check_path(path, name, *, writable=False, optional=False):
    """``path`` as a string (None passes if ``optional``); ValueError naming ``name`` when it
    is not a path.

    A file to write must not be a directory (IsADirectoryError) and its directory must
    exist (ValueError), so that a fit fails before its first iteration, not at its first
    checkpoint.
    """
    if path is None and optional:
        return None
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        got = repr(path) if isinstance(path, str | bytes) else type(path).__name__
        raise ValueError(f"{name}: expected a file path (a str or os.PathLike), got {got}")
    if writable and os.path.isdir(path):
        raise IsADirectoryError(f"{name}: {path!r} is a directory; give the path of a file "
                                f"in it")
    if writable and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"{name}: the directory of {path!r} does not exist; create it first")
    return path


def write(path, kind, meta, arrays):
    """Write ``arrays`` ({name: array}) and the JSON-able ``meta`` atomically to ``path``."""
    path = os.fspath(path)
    # The member list guards against a damaged zip directory that still parses, but to
    # fewer entries (each entry's CRC is checked; the directory has none).
    header = {"format": FORMAT, "version": VERSION, "kind": kind, **meta,
              "members": sorted(arrays)}
    directory, target = os.path.split(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_temporary_prefix(target)}{os.getpid()}-",
                                   suffix=".tmp", dir=directory)
    except OSError as exc:  # its message would name the temporary file, not the user's
        raise type(exc)(exc.errno, f"cannot write {path!r}: {exc.strerror}") from None
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
    _remove_stale_temporaries(directory, target)


def _temporary_prefix(target):
    return f".natvi-{target[:_NAME_KEPT]}-"


def _remove_stale_temporaries(directory, target):
    """Remove the temporaries of writes to ``target`` whose process is gone."""
    pattern = re.compile(re.escape(_temporary_prefix(target)) + r"(\d+)-\w+\.tmp")
    for entry in os.listdir(directory):
        match = pattern.fullmatch(entry)
        if match and not _running(int(match[1])):
            try:
                os.unlink(os.path.join(directory, entry))
            except OSError:  # removed by another writer meanwhile, or not ours to remove
                pass


def _running(pid):
    """Is process ``pid`` running on this machine? True when that cannot be told."""
    if os.name != "posix":  # elsewhere os.kill(pid, 0) would terminate the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process, or not a process id
        return True
    return True


def read(path, kind, name="path"):
    """(meta, arrays) of a natvi file of ``kind``; ValueError when it is not one."""
    path = check_path(path, name)
    if not os.path.isfile(path):
        raise ValueError(f"{name}: no such file: {path!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            _check_members(archive, os.path.getsize(path))
            # np.load reads each member only as far as its header says, so zipfile never
            # gets to check the CRC of a flipped data byte: check every member first.
            bad = archive.testzip()
        if bad is not None:
            raise ValueError(f"member {bad!r} fails its CRC check")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[_META][()]))
            arrays = {k: data[k] for k in data.files if k != _META}
    except Damaged as exc:
        raise ValueError(f"{name}: {path!r} is not a readable natvi file: {exc}") from None
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


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def _check_members(archive, size):
    """Refuse, from the zip directory and the arrays' headers alone, a member that would
    take more bytes than the ``size`` bytes of the file hold for it."""
    seen, end = set(), 0
    for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
        member = info.filename
        if member in seen:
            raise Damaged(f"member {member!r} appears twice")
        seen.add(member)
        if info.compress_type != zipfile.ZIP_STORED:
            raise Damaged(f"member {member!r} is compressed (zip method "
                          f"{info.compress_type}); natvi writes its arrays uncompressed and "
                          f"does not inflate them, as a compressed member may inflate to any "
                          f"size")
        if (info.file_size != info.compress_size or info.header_offset < end
                or info.header_offset + info.compress_size > size):
            raise Damaged(f"member {member!r} declares {info.file_size} bytes, more than the "
                          f"file holds for it")
        end = info.header_offset + info.compress_size
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in _NPY_HEADERS:
                raise Damaged(f"member {member!r} has an array header of unknown version "
                              f"{version}")
            shape, _, dtype = _NPY_HEADERS[version](f)
            needed = f.tell() + math.prod(shape) * dtype.itemsize
        if needed != info.file_size:
            raise Damaged(f"member {member!r} holds {info.file_size} bytes, but its array "
                          f"header declares {needed}")


def _names(names):
    return (", ".join(names[:3]) + (", …" if len(names) > 3 else "")) if names else "none"


# ---- what a field must hold ------------------------------------------------------------
def field(meta, key):
    """``meta[key]``; :class:`Damaged` when it is missing."""
    if key not in meta:
        raise Damaged(f"{key} is missing")
    return meta[key]


def _what(integer, nonnegative, nonfinite, many=False):
    """What a value must be, as "a non-negative integer" (``many``: "non-negative integers")."""
    what = (("non-negative " if nonnegative else "")
            + ("integer" if integer else "number" if nonfinite else "finite number")
            + "s" * many + (" (inf and NaN allowed)" if nonfinite else ""))
    return what if many else f"{'an' if what[0] in 'aeiou' else 'a'} {what}"


def number(meta, key, *, integer=False, nonnegative=False, nonfinite=False):
    """``meta[key]``, a JSON number: an integer if ``integer``, ≥ 0 if ``nonnegative``,
    finite unless ``nonfinite``; :class:`Damaged` naming ``key`` otherwise."""
    value = field(meta, key)
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        ok = False
    elif integer:
        ok = value >= 0 or not nonnegative
    else:
        try:
            value = float(value)
        except OverflowError:  # an integer of hundreds of digits
            value = math.copysign(math.inf, value)
        ok = (nonfinite or math.isfinite(value)) and not (nonnegative and value < 0)
    if not ok:
        raise Damaged(f"{key} must be {_what(integer, nonnegative, nonfinite)}, got "
                      f"{field(meta, key)!r}")
    return value


def choice(meta, key, choices):
    """``meta[key]``, one of the strings ``choices``; :class:`Damaged` otherwise."""
    value = field(meta, key)
    if not isinstance(value, str) or value not in choices:
        raise Damaged(f"{key} must be one of {list(choices)}, got {value!r}")
    return value


def array(arrays, key, *, shape=None, integer=False, nonnegative=False, nonfinite=False,
          nondecreasing=False):
    """``arrays[key]``: of ``shape`` if given, of floats (integers if ``integer``), ≥ 0 if
    ``nonnegative``, finite unless ``nonfinite``, in order if ``nondecreasing``;
    :class:`Damaged` naming ``key`` otherwise."""
    if key not in arrays:
        raise Damaged(f"array {key} is missing")
    value = arrays[key]
    if shape is not None and value.shape != shape:
        raise Damaged(f"{key} has shape {value.shape}, expected {shape}")
    what = _what(integer, nonnegative, nonfinite, many=True)
    if value.dtype.kind not in ("iu" if integer else "f"):
        raise Damaged(f"{key} must hold {what}, got an array of {value.dtype}")
    bad = np.zeros(value.shape, bool) if nonfinite else ~np.isfinite(value)
    if nonnegative:
        bad |= value < 0
    if np.any(bad):
        index = tuple(int(i) for i in np.unravel_index(np.argmax(bad), value.shape))
        at = f" at index {index[0] if len(index) == 1 else index}" if value.ndim else ""
        raise Damaged(f"{key} must hold {what}, got {value[index].item()!r}{at}")
    if nondecreasing and np.any(np.diff(value) < 0):
        i = int(np.argmax(np.diff(value) < 0)) + 1
        raise Damaged(f"{key} must not decrease, got {value[i - 1].item()!r} then "
                      f"{value[i].item()!r} at index {i}")
    return value


#: the arrays of a fit's history (the start, then one entry per iteration), as written by
#: natvi.fit, and what each holds
HISTORY = {"elbo": {}, "step_size": {"nonnegative": True},
           "grad_evals": {"integer": True, "nonnegative": True, "nondecreasing": True},
           "seconds": {"nonnegative": True, "nondecreasing": True},
           "rejected": {"integer": True, "nonnegative": True}}


def get_history(meta, arrays, n_iter):
    """The history of a fit of ``n_iter`` iterations: {name: array of n_iter + 1}."""
    names = field(meta, "history")
    if (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
            or sorted(names) != sorted(HISTORY)):
        raise Damaged(f"history must list the arrays {list(HISTORY)}, got {names!r}")
    return {name: array(arrays, f"history|{name}", shape=(n_iter + 1,), **HISTORY[name])
            for name in names}


# ---- pieces of a fit: latents, factors, trees of arrays ---------------------------------
def encode_latents(latents):
    return {name: [list(lat.shape), lat.support, lat.categories]
            for name, lat in latents.items()}


def decode_latents(spec):
    """{name: Latent} from :func:`encode_latents`; :class:`Damaged` when it is not one."""
    try:
        return {name: as_latent((tuple(shape), support, categories), name)
                for name, (shape, support, categories) in spec.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise Damaged(f"latents must map each name to a valid [shape, support, categories] "
                      f"({type(exc).__name__}: {exc})") from None


def encode_factors(families_by_key):
    """JSON list of (latent names, family name), in order; the index is the factor's id."""
    return [[list(factors.latent_names(key)), cls.__name__]
            for key, cls in families_by_key.items()]


def decode_factors(spec, latents):
    """{factor key: family class} from :func:`encode_factors`, checked to cover each of
    ``latents`` once, with a family that covers its support; :class:`Damaged` otherwise."""
    out, covered = {}, []
    for entry in spec if isinstance(spec, list) else [spec]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list)
                and entry[0] and all(isinstance(n, str) for n in entry[0])
                and isinstance(entry[1], str)):
            raise Damaged(f"factors must be a list of [latent names, family name], got an "
                          f"entry {entry!r}")
        names, family = entry
        cls = getattr(families, family, None) if isinstance(family, str) else None
        if family not in families.__all__ or not families.is_family(cls):
            raise Damaged(f"factors: unknown family {family!r}")
        if len(names) > 1 and not cls.joint:
            raise Damaged(f"factors: only a FullRankGaussian covers several latents, got "
                          f"{family} over {names}")
        for name in names:
            if name in latents and not factors.covers(cls, latents[name].support):
                raise Damaged(f"factors: {family} has support {cls.support!r}, but latent "
                              f"{name!r} has {latents[name].support!r}")
        covered += names
        out[names[0] if len(names) == 1 else tuple(names)] = cls
    if sorted(covered) != sorted(latents):
        raise Damaged(f"factors must cover each latent once, got {covered} for latents "
                      f"{list(latents)}")
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
