"""SciPy modules imported on first use.

scipy.special and scipy.linalg take about 0.2 s to import (scipy.special loads SciPy's
array-API layer): two thirds of ``import natvi``, which the main job, a logistic regression
on mean-field Gaussians, would pay without ever calling them. Each name here stands in
for its module and imports it on the first attribute access.
"""

import importlib


class LazyModule:
    """A module imported on the first attribute access, and used as the module after.

    Parameters
    ----------
    name : str
        The module's full name, such as ``"scipy.special"``.
    """

    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attr):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self):
        return f"<module {self._name!r}, imported on first use>"


special = LazyModule("scipy.special")
linalg = LazyModule("scipy.linalg")
