"""Checks at the public boundary: each raises ValueError naming the argument."""

import numbers

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
