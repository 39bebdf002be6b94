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

    def __getattr__(self, attr):
        # Only called for names not found on the instance: each is looked up once and kept,
        # so later accesses cost what a module attribute costs. The instance's own fields
        # are never looked up here (copy and pickle ask for them before __init__ has run).
        if attr.startswith("__") or attr == "_name":
            raise AttributeError(attr)
        value = getattr(importlib.import_module(self._name), attr)
        self.__dict__[attr] = value
        return value

    def __dir__(self):
        return dir(importlib.import_module(self._name))

    def __reduce__(self):
        return LazyModule, (self._name,)

    def __repr__(self):
        return f"<module {self._name!r}, imported on first use>"


special = LazyModule("scipy.special")
linalg = LazyModule("scipy.linalg")
