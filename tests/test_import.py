"""``import natvi`` stays light: ArviZ (with xarray, pandas, matplotlib), autograd.scipy
(with scipy.stats, scipy.integrate, scipy.signal), scipy.special and scipy.linalg load only
where they are used, and a mean-field logistic regression uses none of them."""

import subprocess
import sys

import pytest

SCRIPT = """
import sys
import numpy as np
import natvi
from natvi.models import LogisticRegression
heavy = ["arviz", "xarray", "pandas", "matplotlib", "autograd.scipy", "scipy.stats",
         "scipy.special", "scipy.linalg"]
print(*[m for m in heavy if m in sys.modules])
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 2))
result = natvi.fit(LogisticRegression(X, (X[:, 0] > 0).astype(float)),
                   family=natvi.MeanFieldGaussian)
print(*[m for m in heavy if m in sys.modules])
result.to_arviz(draws=50)
print("arviz" in sys.modules)
"""


def test_import_and_fit_do_not_load_arviz_until_asked(tmp_path):
    # cwd: not the checkout, whose natvi/ would shadow the installed package
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["", "", "True"]


def test_lazy_module_imports_on_first_use_and_is_the_module_after(monkeypatch):
    import colorsys
    import copy
    import pickle

    from natvi.lazy_modules import LazyModule

    monkeypatch.delitem(sys.modules, "colorsys")
    lazy = LazyModule("colorsys")
    assert "colorsys" not in sys.modules
    assert "imported on first use" in repr(lazy)
    assert lazy.rgb_to_hsv(1.0, 0.0, 0.0) == colorsys.rgb_to_hsv(1.0, 0.0, 0.0)
    assert "colorsys" in sys.modules
    assert "hls_to_rgb" in dir(lazy)
    for twin in (copy.copy(lazy), copy.deepcopy(lazy), pickle.loads(pickle.dumps(lazy))):
        assert twin.hls_to_rgb(0.0, 0.5, 1.0) == (1.0, 0.0, 0.0)
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(lazy, "no_such_name")  # noqa: B009 (the attribute error is the point)


def test_every_package_directory_is_installed():
    # The package list in pyproject.toml is explicit (models/ installs as natvi.models), so a
    # new subpackage missing from it works in a checkout and breaks every installed copy.
    import pathlib
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    where = {pathlib.Path(d): name for name, d in config["package-dir"].items()}
    found = set()
    for top, name in where.items():
        for init in (root / top).rglob("__init__.py"):
            parts = init.parent.relative_to(root / top).parts
            found.add(".".join((name, *parts)))
    assert found == set(config["packages"])
