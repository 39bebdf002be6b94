"""Every public name of natvi has a docstring that mentions each of its arguments.

The rule, checked by walking the public API with ``inspect``:

- Public names: everything in ``natvi.__all__``, ``natvi.families.__all__``,
  ``natvi.models.__all__`` and ``natvi.optim.__all__``; the functions and classes defined
  in ``natvi.diagnostics``, ``natvi.log_densities``, ``natvi.plot`` and ``natvi.sklearn``
  whose names do not start with ``_``; ``natvi.cli.main``. Modules among them need a module
  docstring; other non-callables (constants such as ``natvi.optim.SHORTCUTS``) are not checked.
- Every public class needs a docstring, and so does every public method, classmethod,
  staticmethod and property it defines or inherits from natvi code (``FitResult``
  methods, family methods and properties, estimator methods, ...). Names starting with
  ``_`` (dunders included) and members inherited from outside natvi (``tuple``,
  scikit-learn's ``BaseEstimator``) are not checked.
- Every parameter of a public function or method must be mentioned, as a whole word, in
  its docstring; a class's constructor parameters in the class docstring or in
  ``__init__``'s. ``self``, ``cls``, ``*args`` and ``**kwargs`` are exempt.
- An override without a docstring of its own inherits its parent's (``inspect.getdoc``):
  it is accepted when that docstring mentions the override's parameters, the usual case
  of a subclass implementing a documented interface method.
"""

import importlib
import inspect
import re

import natvi
import natvi.cli
import natvi.diagnostics
import natvi.families
import natvi.log_densities
import natvi.models
import natvi.optim
import natvi.plot

try:
    import natvi.sklearn as sklearn_module
except ImportError:  # no scikit-learn: the estimator is checked where the test extra is installed
    sklearn_module = None

EXEMPT = {"self", "cls"}


def _module_public(module):
    """Functions and classes defined in ``module`` whose names do not start with ``_``."""
    return {f"{module.__name__}.{name}": obj for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__}


def _all_names(module):
    return {f"{module.__name__}.{name}": getattr(module, name) for name in module.__all__}


def public_objects():
    """{qualified name: object} of the public API, as the module docstring defines it."""
    out = {}
    for module in (natvi, natvi.families, natvi.models, natvi.optim):
        out.update(_all_names(module))
    for module in (natvi.diagnostics, natvi.log_densities, natvi.plot, sklearn_module):
        if module is not None:
            out.update(_module_public(module))
    out["natvi.cli.main"] = natvi.cli.main
    return out


def _from_natvi(obj):
    func = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    return (getattr(func, "__module__", "") or "").startswith("natvi")


def members(cls):
    """{name: (raw attribute, bound-or-plain attribute)} of ``cls``'s public members from
    natvi code: methods, classmethods, staticmethods and properties, inherited ones included."""
    out = {}
    for klass in reversed(cls.__mro__):
        for name, raw in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(raw, property | staticmethod | classmethod) or inspect.isfunction(raw):
                out[name] = raw
    return {name: (raw, getattr(cls, name)) for name, raw in out.items() if _from_natvi(raw)}


def parameters(func):
    """Names of ``func``'s parameters that its docstring must mention."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return []
    return [p.name for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in EXEMPT]


def unmentioned(names, doc):
    """The names that do not occur as whole words (identifier boundaries) in ``doc``."""
    return [n for n in names if not re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", doc or "")]


def problems():
    """Every violation of the rule, as 'qualified name: what is missing', each once (a
    method inherited by several families is reported where it is defined)."""
    found, seen = [], set()
    for qualname, obj in sorted(public_objects().items()):
        if id(obj) in seen:  # natvi.Gamma is natvi.families.Gamma
            continue
        seen.add(id(obj))
        if inspect.ismodule(obj):
            if not inspect.getdoc(obj):
                found.append(f"{qualname}: module without a docstring")
            continue
        if not callable(obj):
            continue
        doc = inspect.getdoc(obj)
        if not doc:
            found.append(f"{qualname}: no docstring")
        if not inspect.isclass(obj):
            missing = unmentioned(parameters(obj), doc)
            if missing:
                found.append(f"{qualname}: parameters {missing} not in its docstring")
            continue
        init = obj.__init__ if _from_natvi(obj.__init__) else None
        ctor_doc = (doc or "") + "\n" + (inspect.getdoc(init) or "" if init else "")
        ctor = obj if issubclass(obj, tuple) else init  # NamedTuples: the fields
        if ctor is not None:
            missing = unmentioned(parameters(ctor), ctor_doc)
            if missing:
                found.append(f"{qualname}: constructor parameters {missing} not documented")
        for name, (raw, attr) in sorted(members(obj).items()):
            # a property's docstring is its getter's, inherited through the property
            func = raw if isinstance(raw, property) else attr
            key = id(raw)
            if key in seen:
                continue
            seen.add(key)
            where = f"{_defined_in(obj, name)}.{name}"
            member_doc = inspect.getdoc(func)
            if not member_doc:
                found.append(f"{where}: no docstring")
            elif not isinstance(raw, property):
                missing = unmentioned(parameters(func), member_doc)
                if missing:
                    found.append(f"{where}: parameters {missing} not in its docstring")
    return found


def _defined_in(cls, name):
    """Qualified name of the class in ``cls``'s MRO that defines ``name``."""
    owner = next(k for k in cls.__mro__ if name in vars(k))
    return f"{owner.__module__}.{owner.__qualname__}"


class _Base:
    def method(self, z):
        """Reads z."""


class _Child(_Base):
    def method(self, z):  # inherits _Base.method's docstring
        return z


def test_public_api_is_walked():
    """The walk reaches the names it must (so an empty walk cannot pass): the fit function,
    every family with its methods and properties, FitResult's methods, the optimizers,
    the models, the diagnostics, the plot, the estimator and the command line."""
    names = public_objects()
    for expected in ("natvi.fit", "natvi.FitResult", "natvi.Model", "natvi.elbo",
                     "natvi.families.ExponentialFamily", "natvi.models.LogisticRegression",
                     "natvi.optim.natural_gradient", "natvi.optim.adam",
                     "natvi.diagnostics.loo_approximate_posterior", "natvi.diagnostics.verdict",
                     "natvi.plot.elbo", "natvi.cli.main"):
        assert expected in names, expected
    assert sklearn_module is None or "natvi.sklearn.BayesianLogisticRegression" in names
    assert "natvi.diagnostics.az" not in names  # imported names are not the module's own
    fit_result = members(natvi.FitResult)
    assert {"sample", "log_q", "pareto_k", "diagnose", "to_arviz", "converged"} <= set(fit_result)
    family = members(natvi.MeanFieldGaussian)
    assert {"natural", "mean_params", "from_natural", "fisher_solve", "sample", "log_prob",
            "entropy", "kl", "mean", "var"} <= set(family)


def test_rule_catches_what_it_should():
    """The checks fail on an undocumented function and on an unmentioned argument, and accept
    an override that inherits a docstring naming its arguments."""

    def documented(x, *args, y=1, **kwargs):
        """Uses ``x`` and y."""

    def partial(x, scale):
        """Uses x only."""

    assert unmentioned(parameters(documented), inspect.getdoc(documented)) == []
    assert unmentioned(parameters(partial), inspect.getdoc(partial)) == ["scale"]
    assert unmentioned(["x"], None) == ["x"]
    assert unmentioned(["eta"], "the natural parameters eta_prior") == ["eta"]  # whole words
    assert unmentioned(parameters(_Child.method), inspect.getdoc(_Child.method)) == []
    assert members(_Child) == {}  # test-module classes are not natvi code


def test_every_public_name_is_documented():
    """Public classes, functions, methods and properties have docstrings naming every
    argument (the rule is in this module's docstring)."""
    found = problems()
    assert not found, "\n".join(found)


def test_modules_named_in_the_api_have_docstrings():
    """Each module a user imports from has a module docstring that says what it holds."""
    for name in ("natvi", "natvi.families", "natvi.models", "natvi.optim", "natvi.diagnostics",
                 "natvi.plot", "natvi.cli", "natvi.result", "natvi.fit", "natvi.model",
                 "natvi.arviz_bridge", "natvi.progress", "natvi.data"):
        assert inspect.getdoc(importlib.import_module(name)), name
    assert sklearn_module is None or inspect.getdoc(sklearn_module)
