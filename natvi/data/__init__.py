"""Real data sets shipped with natvi (sources and citations in README.md beside this file)."""

import csv
from importlib import resources

import numpy as np


def load_breast_cancer():
    """The Wisconsin diagnostic breast cancer data: 569 tumours × 30 features.

    Returns
    -------
    X : ndarray, shape (569, 30)
        Raw (unstandardized) features.
    y : ndarray, shape (569,)
        1 for malignant, 0 for benign.
    feature_names : list of str
    """
    with resources.files(__package__).joinpath("breast_cancer.csv").open() as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.array(rows[1:], dtype=float)
    return body[:, :-1], body[:, -1].astype(int), header[:-1]


def load_caravan():
    """The COIL 2000 insurance data: 5822 customers × 85 features, caravan policy or not.

    Returns
    -------
    X : ndarray, shape (5822, 85)
        Raw (unstandardized) integer-coded features, as floats.
    y : ndarray, shape (5822,)
        1 for a customer with a caravan insurance policy (348 rows), else 0.
    feature_names : list of str
        The original UCI column names (``MOSTYPE`` … ``ABYSTAND``).
    """
    with resources.files(__package__).joinpath("caravan.csv").open() as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.array(rows[1:], dtype=float)
    return body[:, :-1], body[:, -1].astype(int), header[:-1]
