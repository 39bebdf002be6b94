"""Mistakes in a custom model's functions: one clear error naming the function, not an
autograd traceback (natvi.Model's log_joint, pointwise_log_likelihood and closed_form)."""

import math

import autograd.numpy as anp
import numpy as np
import pytest

import natvi

DATA = np.random.default_rng(0).normal(3.0, 2.0, size=50)
LATENTS = {"mu": "real", "tau": "positive"}
#: three draws of the latents, as FitResult.sample gives them
DRAWS = {"mu": np.array([-0.5, 0.0, 0.5]), "tau": np.array([0.5, 1.0, 2.0])}


def _terms(z):
    return 0.5 * anp.log(z["tau"]) - 0.5 * z["tau"] * (DATA - z["mu"]) ** 2


def _log_joint(z):
    return anp.sum(_terms(z)) - 0.5 * z["mu"] ** 2 - z["tau"]


def _fit(log_joint, **kwargs):
    return natvi.fit(natvi.Model(log_joint, LATENTS, **kwargs), max_iter=2, seed=0)


def _float_of_mu(z):
    return -0.5 * float(z["mu"]) ** 2 + anp.log(z["tau"])


def _assigned_into_numpy(z):
    values = np.zeros(2)
    values[0] = z["mu"]
    return -0.5 * anp.sum(values**2) - z["tau"]


def _np_exp_of_list(z):
    return -anp.sum(np.exp(np.array([z["mu"], z["tau"]])))


def _np_where(z):
    return np.where(z["mu"] > 0, -z["mu"], z["mu"]) - z["tau"]


def _item(z):
    return -z["mu"].item() ** 2 - z["tau"]


def _math_exp(z):
    return -math.exp(z["mu"]) - z["tau"]


# ---- log_joint -----------------------------------------------------------------------------
def test_vector_log_joint_asks_for_a_sum():
    """The per-observation terms without anp.sum: a ValueError with the shape and the fix,
    at the start of the fit and from Model.log_joint (pareto_k, to_arviz)."""
    with pytest.raises(ValueError, match=r"log_joint: must return a scalar .* got an array "
                                         r"of shape \(50,\).*anp\.sum"):
        _fit(_terms)
    with pytest.raises(ValueError, match=r"log_joint: .*shape \(50,\)"):
        natvi.Model(_terms, LATENTS).log_joint(DRAWS)


@pytest.mark.parametrize("returned, match", [
    (None, r"log_joint: returned None.*return"),
    ("-1.0", r"log_joint: must return a real number .* got str '-1\.0'"),
    ({"y": 1.0}, r"log_joint: must return a real number .* got dict"),
    (True, r"log_joint: must return a real number .* got bool"),
    (1.0 + 2.0j, r"log_joint: returned a complex value \(1\+2j\).*real"),
])
def test_log_joint_returning_a_non_number(returned, match):
    """None (a forgotten return), a string, a dict, a bool or a complex number: a TypeError
    naming log_joint, at the start of the fit and from Model.log_joint."""
    with pytest.raises(TypeError, match=match):
        _fit(lambda z: returned)
    with pytest.raises(TypeError, match=match):
        natvi.Model(lambda z: returned, LATENTS).log_joint(DRAWS)


def test_complex_arithmetic_on_traced_latents():
    """A complex result computed from the latents (traced by autograd) is refused too."""
    with pytest.raises(TypeError, match=r"log_joint: returned a complex value"):
        _fit(lambda z: anp.sqrt(z["mu"] + 0j) - z["tau"])


def test_integer_log_joint_is_accepted():
    """A constant int (a flat density) is a real scalar; autograd alone fails on it."""
    result = _fit(lambda z: 0)
    assert np.isfinite(result.elbo)


@pytest.mark.parametrize("log_joint", [_float_of_mu, _assigned_into_numpy, _np_exp_of_list,
                                       _item, _math_exp])
def test_plain_numpy_on_traced_latents(log_joint):
    """float(), .item(), math and plain-NumPy calls on the latents fail inside autograd:
    one TypeError saying to use autograd.numpy, with autograd's exception chained."""
    with pytest.raises(TypeError, match=r"log_joint: could not be differentiated by autograd "
                                        r".*import autograd\.numpy as anp.*float\(\)") as info:
        _fit(log_joint)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("log_joint", [lambda z: np.where(z["mu"] > 0, -z["mu"], z["mu"]),
                                       _np_where])
def test_plain_numpy_that_drops_the_trace(log_joint):
    """np.where on a traced latent returns an object array holding autograd's box, and
    arithmetic on it a box inside a box (autograd would return a zero gradient in mu, or
    fail in natvi's engine): the same error."""
    with pytest.raises(TypeError, match=r"log_joint: could not be differentiated by autograd "
                                        r"\(its result holds values autograd lost track of"):
        _fit(log_joint)


def test_latent_name_typo():
    """z["m"] for the latent "mu": a ValueError listing the latents and the close match, in
    the fit and from Model.log_joint, with the lookup chained."""
    def typo(z):
        return -0.5 * z["m"] ** 2 - z["tau"]

    match = (r"log_joint: looked up latent 'm', which the model does not have; its latents "
             r"are \['mu', 'tau'\] \(did you mean 'mu'\?\)")
    with pytest.raises(ValueError, match=match) as info:
        _fit(typo)
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(ValueError, match=match):
        natvi.Model(typo, LATENTS).log_joint(DRAWS)
    with pytest.raises(ValueError, match=r"looked up latent 'sigma'.*\['mu', 'tau'\]$"):
        _fit(lambda z: -z["sigma"])


def test_other_key_errors_in_user_code_are_left_alone():
    """A KeyError from the user's own dict is the user's, and a user function that catches
    KeyError for an optional latent keeps working."""
    table = {"a": 1.0}
    with pytest.raises(KeyError, match="'b'"):
        _fit(lambda z: table["b"] - z["mu"] ** 2)

    def optional_offset(z):
        try:
            offset = z["offset"]
        except KeyError:
            offset = 0.0
        return _log_joint(z) + offset

    result = _fit(optional_offset)
    assert np.isfinite(result.elbo)


# ---- pointwise_log_likelihood --------------------------------------------------------------
def _pointwise_model(pointwise, **kwargs):
    return natvi.Model(_log_joint, LATENTS, pointwise_log_likelihood=pointwise, **kwargs)


def test_pointwise_length_varying_between_draws():
    """Arrays of different lengths at different draws: a ValueError with the shapes seen."""
    def varying(z):
        return _terms(z)[: 49 + int(z["mu"] > 0)]

    with pytest.raises(ValueError, match=r"pointwise_log_likelihood: returned shape \(50,\) "
                                         r"for 'y' at draw 2 but \(49,\) at draw 0.*same"):
        _pointwise_model(varying).pointwise_log_likelihood(DRAWS)


def test_pointwise_keys_varying_between_draws():
    """A dict whose keys change from draw to draw: a ValueError naming the keys."""
    def varying(z):
        return {"y": _terms(z)} if z["mu"] < 0 else {"y": _terms(z), "x": _terms(z)}

    with pytest.raises(ValueError, match=r"pointwise_log_likelihood: returned the keys "
                                         r"\['y', 'x'\] at draw 1 but \['y'\] at draw 0"):
        _pointwise_model(varying).pointwise_log_likelihood(DRAWS)


def test_pointwise_varying_through_a_fit():
    """The same mistake found where LOO meets it: FitResult.to_arviz."""
    def varying(z):
        return _terms(z)[: 49 + int(z["mu"] * 1e6) % 2]

    result = natvi.fit(_pointwise_model(varying), max_iter=2, seed=0)
    with pytest.raises(ValueError, match="pointwise_log_likelihood: returned shape"):
        result.to_arviz(draws=40, seed=1)


@pytest.mark.parametrize("pointwise, error, match", [
    (lambda z: anp.sum(_terms(z)), ValueError,
     r"pointwise_log_likelihood: returned a scalar for 'y'.*one value per observation"),
    (lambda z: _terms(z)[:, None] * np.ones(3), ValueError,
     r"pointwise_log_likelihood: returned shape \(50, 3\) for 'y', but its observed data has "
     r"shape \(50,\)"),
    (lambda z: ["a"] * 50, TypeError,
     r"pointwise_log_likelihood: must return real numbers, got str values for 'y'"),
    (lambda z: None, TypeError, r"pointwise_log_likelihood: returned None for 'y'.*return"),
    (lambda z: _terms(z) + 0j, TypeError,
     r"pointwise_log_likelihood: must return real numbers, got complex values for 'y'"),
    (lambda z: {}, ValueError, r"pointwise_log_likelihood: returned an empty dict"),
    (lambda z: [[1.0], [1.0, 2.0]], ValueError,
     r"pointwise_log_likelihood: could not make an array of 'y'"),
    (lambda z: _terms({"mu": z["m"], "tau": z["tau"]}), ValueError,
     r"pointwise_log_likelihood: looked up latent 'm'.*did you mean 'mu'"),
])
def test_bad_pointwise_values(pointwise, error, match):
    """A scalar, a 2-D array that does not fit the observed data, strings, None, complex
    values, no observations, ragged lists, a latent typo: one error naming
    pointwise_log_likelihood."""
    model = _pointwise_model(pointwise, observed_data={"y": DATA})
    with pytest.raises(error, match=match):
        model.pointwise_log_likelihood(DRAWS)


def test_pointwise_per_observation_shapes_that_fit():
    """One value per observation of a multivariate observed array (N, 2) and per cell of a
    grid stay accepted: the shape is a leading part of the observed data's shape."""
    def grid(z):
        return {"y": _terms(z), "grid": _terms(z).reshape(10, 5)}

    model = _pointwise_model(grid, observed_data={"y": np.stack([DATA, DATA], axis=1)})
    out = model.pointwise_log_likelihood(DRAWS)
    assert out["y"].shape == (3, 50) and out["grid"].shape == (3, 10, 5)


# ---- closed_form ---------------------------------------------------------------------------
def _closed(means):
    """E_q[-mu²/2 - tau] in the mean parameters (E[mu], E[mu²]) and (E[log tau], E[tau])."""
    return -0.5 * means["mu"][1] - means["tau"][1]


def _closed_fit(closed_form):
    model = natvi.Model(_log_joint, LATENTS, closed_form=closed_form)
    return natvi.fit(model, family={"mu": natvi.MeanFieldGaussian, "tau": natvi.Gamma},
                     max_iter=2, seed=0)


@pytest.mark.parametrize("closed_form, error, match", [
    (lambda m: -0.5 * m["mu"] - m["tau"], ValueError,
     r"closed_form: must return a scalar .* got an array of shape \(2,\).*anp\.sum"),
    (lambda m: None, TypeError, r"closed_form: returned None"),
    (lambda m: -0.5 * float(m["mu"][1]) - m["tau"][1], TypeError,
     r"closed_form: could not be differentiated by autograd.*autograd\.numpy"),
    (lambda m: -np.exp(np.array([m["mu"][1], m["tau"][1]])).sum(), TypeError,
     r"closed_form: could not be differentiated by autograd"),
    (lambda m: -0.5 * m["m"][1] - m["tau"][1], ValueError,
     r"closed_form: looked up factor 'm', which the posterior does not have; its factors are "
     r"\['mu', 'tau'\] \(did you mean 'mu'\?\)"),
])
def test_bad_closed_form(closed_form, error, match):
    """A vector, None, plain NumPy on the traced mean parameters, a factor typo."""
    assert np.isfinite(_closed_fit(_closed).elbo)
    with pytest.raises(error, match=match):
        _closed_fit(closed_form)


# ---- a non-finite ELBO at the starting point ------------------------------------------------
def test_nonfinite_start_names_log_joint_and_a_draw():
    """log of a real latent: the message says log_joint returned nan, at how many of the
    draws tried, shows one, and names the supports declared."""
    def log_of_real(z):
        return _log_joint(z) + anp.log(z["mu"])

    with pytest.raises(ValueError, match=r"the ELBO at the starting point is not finite: "
                                         r"log_joint returned nan at \d+ of 100 draws from the "
                                         r"starting point, e\.g\. \{'mu': -\d\.\d+, 'tau': "
                                         r"\d\.\d+\}.*log or square root of a negative number.*"
                                         r"\{'mu': 'real', 'tau': 'positive'\}"):
        _fit(log_of_real)


def test_nonfinite_start_from_the_data():
    """NaN in the data: the log joint is at fault at every draw, and the data are named."""
    data = DATA.copy()
    data[3] = np.nan

    def log_joint(z):
        return anp.sum(-0.5 * (data - z["mu"]) ** 2)

    with pytest.raises(ValueError, match=r"log_joint returned nan at 100 of 100 draws.*"
                                         r"check the data"):
        natvi.fit(natvi.Model(log_joint, {"mu": "real"}), max_iter=2, seed=0)


def test_nonfinite_start_gradient():
    """A finite value with a NaN gradient (anp.where over a square root of a negative
    number): the message names the latent whose gradient is not finite."""
    def where_sqrt(z):
        return _log_joint(z) + anp.where(z["mu"] > 0, anp.sqrt(z["mu"]), 0.0)

    with pytest.raises(ValueError, match=r"not finite: the gradient of log_joint in \['mu'\] "
                                         r"is not finite at draws from the starting point, "
                                         r"where its values are finite.*anp\.where"):
        _fit(where_sqrt)


def test_nonfinite_start_not_reproduced():
    """Non-finite only at the fit's own first evaluation (a rare draw): the message says the
    log joint was finite at the draws tried."""
    calls = []

    def first_call_nan(z):
        calls.append(1)
        return _log_joint(z) + (np.nan if len(calls) == 1 else 0.0)

    with pytest.raises(ValueError, match=r"log_joint and its gradient were finite at 100 "
                                         r"other draws from the starting point"):
        _fit(first_call_nan)


def test_nonfinite_start_closed_form():
    """closed_form non-finite at the starting point's mean parameters: it is named, with
    the mean parameters."""
    with pytest.raises(ValueError, match=r"not finite: closed_form returned -?inf at the "
                                         r"starting point's mean parameters \{'mu': "):
        _closed_fit(lambda m: _closed(m) + anp.log(m["mu"][0]))
