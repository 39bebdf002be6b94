"""Checks at the public boundary: each raises ValueError naming the argument."""

import numbers
import os

import numpy as np


def as_float_array(x, name):
    """``x`` as a float array; booleans and numbers only."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # e.g. ragged nested lists
        raise ValueError(f"{name}: expected a numeric array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real values, got complex dtype {arr.dtype}")
    return arr.astype(float)


def check_finite_array(x, name):
    arr = as_float_array(x, name)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, found NaN or inf")
    return arr


def check_positive_array(x, name):
    arr = check_finite_array(x, name)
    if not np.all(arr > 0):
        raise ValueError(f"{name}: expected values > 0, got minimum {arr.min()}")
    return arr


def check_positive_scalar(x, name):
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name}: expected a positive number, got {x!r}")
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {x!r}")
    return float(x)


def check_nonnegative_scalar(x, name):
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name}: expected a non-negative number, got {x!r}")
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {x!r}")
    return float(x)


def check_positive_int(x, name):
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {x!r}")
    return int(x)


def check_choice(x, name, choices):
    if x not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {x!r}")
    return x


def as_rng(seed, name="seed"):
    """A ``numpy.random.Generator`` from a seed, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence) or (
            isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ValueError(f"{name}: expected a non-negative integer, a SeedSequence or a "
                     f"numpy.random.Generator, got {seed!r}")


#: environment variable that sets the most bytes one call may allocate, e.g. ``2e9``
#: (``inf``: no limit); read at each call
MAX_BYTES_ENV = "NATVI_MAX_BYTES"
#: share of the available memory one call may take when ``NATVI_MAX_BYTES`` is not set: the
#: estimates are rough, and the rest of the session needs memory too
MEMORY_SHARE = 0.5
#: the limit when the available memory cannot be read
FALLBACK_MAX_BYTES = 4 * 10**9


#: where Linux tells the free memory, and a container's (cgroup v2) own limit and usage
MEMINFO = "/proc/meminfo"
CGROUP = "/sys/fs/cgroup"


def available_memory():
    """Bytes of memory free for new allocations, or None when the system does not say.

    On Linux, ``MemAvailable`` of ``/proc/meminfo`` (free memory plus reclaimable caches),
    at most a container's free memory (:func:`container_memory`); elsewhere the free
    physical pages of ``os.sysconf``, where it offers them.
    """
    try:
        with open(MEMINFO) as f:
            fields = dict(line.split(":", 1) for line in f)
        free = int(fields["MemAvailable"].split()[0]) * 1024  # in kB
    except (OSError, KeyError, ValueError):
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
            return None
    container = container_memory()
    return free if container is None else max(min(free, container), 0)


def container_memory():
    """The memory limit of this process's cgroup v2 less its working set (usage less the
    inactive file cache, as ``docker stats`` counts it), in bytes; None without a limit.

    ``/proc/meminfo`` describes the host, whose free memory a container cannot take.
    """
    try:
        with open(os.path.join(CGROUP, "memory.max")) as f:
            limit = int(f.read())  # "max": no limit, a ValueError
        with open(os.path.join(CGROUP, "memory.current")) as f:
            used = int(f.read())
        with open(os.path.join(CGROUP, "memory.stat")) as f:
            stat = dict(line.split() for line in f)
        return limit - used + int(stat.get("inactive_file", 0))
    except (OSError, ValueError):
        return None


def memory_limit():
    """The most bytes one natvi call may allocate, and where that limit comes from.

    ``NATVI_MAX_BYTES`` when set (a number of bytes, ``inf`` for no limit); otherwise
    ``MEMORY_SHARE`` (half) of :func:`available_memory` at the time of the call; otherwise
    ``FALLBACK_MAX_BYTES`` (4 GB).

    Returns
    -------
    limit : float
        Bytes.
    source : str
        The origin of the limit, in words, for error messages.
    """
    text = os.environ.get(MAX_BYTES_ENV)
    if text is not None:
        try:
            limit = float(text)
        except ValueError:
            limit = np.nan
        if not limit > 0:
            raise ValueError(f"{MAX_BYTES_ENV}: expected a number of bytes > 0 (e.g. 2e9, or "
                             f"inf for no limit), got {text!r}")
        return limit, f"set by {MAX_BYTES_ENV}"
    free = available_memory()
    if free is None:
        return float(FALLBACK_MAX_BYTES), (f"natvi's cap when the free memory is unknown; set "
                                           f"{MAX_BYTES_ENV} to change it")
    return MEMORY_SHARE * free, (f"{MEMORY_SHARE:.0%} of the {format_bytes(free)} of memory "
                                 f"free; set {MAX_BYTES_ENV} to change it")


def check_memory(n_bytes, name, what, fix):
    """Refuse, before allocating, a call that would need more memory than
    :func:`memory_limit` allows.

    Parameters
    ----------
    n_bytes : int or float
        Estimated peak bytes of the call.
    name : str
        The argument that sets the size, named in the error.
    what : str
        What would be allocated, e.g. ``"1000000 draws from q"``.
    fix : str
        What to do instead, e.g. ``"ask for fewer draws"``.
    """
    limit, source = memory_limit()
    if n_bytes > limit:
        raise ValueError(f"{name}: {what} would take about {format_bytes(n_bytes)} of memory, "
                         f"over the limit of {format_bytes(limit)} ({source}); {fix}")


def format_bytes(n_bytes):
    """``n_bytes`` in decimal units, e.g. ``"8.0 GB"``."""
    value, units = float(n_bytes), ("bytes", "kB", "MB", "GB", "TB", "PB", "EB")
    for unit in units[:-1]:
        if value < 999.95:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} {units[-1]}"


#: arrays of the draws' size that drawing from q holds at its peak: the draws, the standard
#: normals or uniforms they come from, and two temporaries (Beta draws, made in log space from
#: two Gamma draws each, take about twice that)
SAMPLE_ARRAYS = 4
#: float64 values per draw that evaluating log densities at the draws adds beside the model's
#: own: log p(x, z), log q(z), and the importance weights of the Pareto fit with its temporaries
DENSITY_VALUES = 16


def check_draws_memory(model, draws, name="draws", log_density=None, extra=None):
    """``draws`` as an int, or ValueError if that many draws from q (and the model's log
    density at them) would not fit in memory, before any is drawn.

    The estimate of the peak is rough (the tests hold it to a factor of two; the default
    limit, half the free memory, leaves the margin; see :func:`memory_limit`):
    ``SAMPLE_ARRAYS`` float64 arrays of draws × the latents' values; with ``log_density``,
    also ``DENSITY_VALUES`` per draw and the model's ``log_density_memory``.

    Parameters
    ----------
    model : natvi.Model
        The model whose latents are drawn.
    draws : int
        Number of draws.
    name : str
        The argument named in the error (``"--draws"`` on the command line).
    log_density : {None, "log_joint", "pointwise_log_likelihood"}
        The model's method evaluated at the draws, if any (``to_arviz`` evaluates both: it
        counts the pointwise log-likelihood, which it keeps and which takes the more memory).
    extra : tuple of (str, callable), optional
        What else the call keeps per draw, in words (e.g. ``"replicated data"``), and its
        peak bytes as a function of the number of draws.
    """
    draws = check_positive_int(draws, name)
    values = sum(int(np.prod(latent.shape)) for latent in model.latents.values())
    n_bytes = 8 * draws * SAMPLE_ARRAYS * values
    what = f"{draws} draws from q"
    if log_density is not None:
        pointwise = log_density == "pointwise_log_likelihood"
        n_bytes += 8 * draws * DENSITY_VALUES + model.log_density_memory(draws, pointwise)
        what += f" and {'the pointwise log-likelihood' if pointwise else 'log p(x, z)'} at each"
    if extra is not None:
        n_bytes += extra[1](draws)
        what += f" and {extra[0]}"
    check_memory(n_bytes, name, what, "ask for fewer draws")
    return draws


# ---- data: designs and responses, for every model, the CLI and the estimator ------------
#: rows of X checked at a time: no N × D temporary
_ROWS = 8192


def too_large(detail, name="X"):
    """The error message for features too large to fit at, with ``detail`` saying why."""
    # X.std(0) alone overflows too where |x| > 1e154: hence the division first.
    return (f"{name}: features too large to fit at this scale ({detail}); rescale them: "
            f"divide each column by its largest absolute value, X / abs(X).max(0), then "
            f"standardize, (X - X.mean(0)) / X.std(0)")


def check_numeric_columns(frame, name):
    """Raise a ValueError naming ``name`` and the columns of the data frame ``frame`` (pandas
    or dask) that are not real numbers."""
    # ``dtype.kind`` answers for NumPy and pandas extension dtypes alike (str, category,
    # Int64, boolean), where np.issubdtype raises TypeError on the extension ones.
    bad = [str(c) for c, dt in zip(frame.columns, frame.dtypes, strict=True)
           if getattr(dt, "kind", "O") not in "biuf"]
    if bad:
        raise ValueError(f"{name}: expected real numeric columns, got non-numeric or "
                         f"complex column(s) {listed(bad)}")


def design_matrix(X, name="X", check_scale=True):
    """X as a finite 2-D float array, with column names (from a DataFrame if given).

    float64 and float32 arrays are used as they are — also non-contiguous views and
    memory-maps — never copied (the GLM engine reads X in chunks, converting each to
    float64); other real dtypes (integers, booleans, float16) are converted to float64.
    Errors name ``name`` and, for NaN, infinite or non-numeric values, the columns;
    ``check_scale`` also refuses columns whose sums of squares overflow (a caller that
    rescales X first checks it after).
    """
    columns = getattr(X, "columns", None)
    if columns is not None:
        check_numeric_columns(X, name)
        names = [str(c) for c in columns]
        # Nullable columns (Int64, Float64, boolean) would give an object array; missing
        # values become NaN, which the finiteness check below reports.
        X = X.to_numpy(dtype=float, na_value=np.nan)
    else:
        names = None
    try:
        arr = np.asarray(X)
    except Exception as exc:  # e.g. ragged nested lists
        raise ValueError(f"{name}: expected a numeric 2-D array ({exc})") from None
    if arr.dtype not in (np.float32, np.float64):
        arr = as_float_array(arr, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (observations × features), got "
                         f"{arr.ndim}-D")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one row, got 0")
    if names is None:
        names = [f"x{j}" for j in range(arr.shape[1])]
    squares = np.zeros(arr.shape[1])
    for start in range(0, arr.shape[0], _ROWS):
        chunk = arr[start:start + _ROWS]
        with np.errstate(over="ignore", invalid="ignore"):
            squares += np.einsum("ij,ij->j", chunk, chunk, dtype=float)
    # NaN or inf in X make the sums NaN or inf (one pass costs what isfinite does)
    if not np.all(np.isfinite(squares)):
        _check_finite_columns(arr, names, name)
    # The engine forms xᵢⱼ² and Σᵢ cᵢxᵢⱼ² (the starting precision): past float64's range
    # they are inf, and the fit would fail later with a message about q's scale.
    overflow = [c for c, s in zip(names, squares, strict=True) if not np.isfinite(s)]
    if overflow and check_scale:
        raise ValueError(too_large(f"the sum of squares of column(s) {listed(overflow)} "
                                   "overflows float64", name))
    return arr, names


def _check_finite_columns(arr, names, name):
    """ValueError naming the columns with NaN, then those with ±inf, if any."""
    nan, inf = np.zeros(arr.shape[1], bool), np.zeros(arr.shape[1], bool)
    for start in range(0, arr.shape[0], _ROWS):
        chunk = arr[start:start + _ROWS]
        nan |= np.isnan(chunk).any(axis=0)
        inf |= np.isinf(chunk).any(axis=0)
    for found, what in ((nan, "missing (NaN)"), (inf, "infinite")):
        if found.any():
            raise ValueError(f"{name}: expected finite values, found {what} values in "
                             f"column(s) {listed(np.asarray(names)[found].tolist())}")


def listed(items, n=8):
    """``items`` as a list for a message, cut after ``n`` items."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:n])
    return f"[{shown}, ... ({len(items)} in all)]" if len(items) > n else f"[{shown}]"


def response(y, n=None, name="y"):
    """A numeric 1-D response as floats, of length ``n`` (the rows of X) if given; pandas
    Series accepted."""
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number)
                                 or np.issubdtype(y.dtype, np.bool_)):
        raise ValueError(f"{name}: expected numeric values, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real values, got dtype {y.dtype}")
    y = y.astype(float)
    if y.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name}: expected a 1-D array of length {n} (the rows of X), "
                         f"got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name}: expected finite values, found NaN or inf")
    return y


def binary_labels(y, n=None, name="y"):
    """Labels in {0, 1} (booleans accepted) as floats; ``n`` the rows of X, if any."""
    y = response(y, n, name)
    bad = ~np.isin(y, (0.0, 1.0))
    if np.any(bad):
        raise ValueError(f"{name}: expected labels in {{0, 1}}, got "
                         f"{np.unique(y[bad])[:5].tolist()}")
    return y


def counts(y, n=None, name="counts"):
    """Non-negative integer counts as floats; ``n`` the expected length, if any."""
    y = response(y, n, name)
    bad = (y < 0) | (y != np.round(y))
    if np.any(bad):
        raise ValueError(f"{name}: expected non-negative integers, got "
                         f"{np.unique(y[bad])[:5].tolist()}")
    return y


def exposures(exposure, n):
    """Positive exposures (time at risk, population) of length ``n``; None → ones."""
    if exposure is None:
        return np.ones(n)
    e = response(exposure, n, "exposure")
    if not np.all(e > 0):
        raise ValueError(f"exposure: expected values > 0, got minimum {e.min()}")
    return e


def check_flag(value, name):
    """``value`` as a bool: True or False (NumPy's too), else ValueError naming ``name``."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)
