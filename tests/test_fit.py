"""natvi.fit: validation, history, every optimizer, the optimizer arithmetic, hard problems."""

import math

import numpy as np
import pytest
from scipy import special

import natvi
from natvi import optim
from natvi.families import MeanFieldGaussian
from natvi.model import Latent, Model
from natvi.models import LogisticRegression

EUCLIDEAN = ["sgd", "momentum", "adagrad", "rmsprop", "adadelta", "adam"]
FACTORIES = EUCLIDEAN + ["natural_gradient"]


# ---- models ----------------------------------------------------------------------------
def _small_model():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 3))
    y = (rng.random(100) < special.expit(0.3 + X @ [1.0, -1.0, 0.5])).astype(int)
    return LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)


def _correlated_model():
    """Three nearly identical features: x, x + 1e-3·noise, x + 1e-3·noise, and one more."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200)
    X = np.column_stack([x, x + 1e-3 * rng.standard_normal(200),
                         x + 1e-3 * rng.standard_normal(200), rng.standard_normal(200)])
    y = (rng.random(200) < special.expit(X @ [1.0, 0.5, -0.5, 1.0])).astype(int)
    return LogisticRegression(X, y, prior_scale=1.0, intercept_scale=1.0)


class GaussianTarget(Model):
    """log p(z) = log N(z; b, diag(s²)), normalized, so the best ELBO is exactly 0.

    With ``cliff=True`` the expected log joint is NaN everywhere except at the
    starting point, so no step can ever be taken.
    """

    deterministic = True

    def __init__(self, b, s, cliff=False):
        self.b, self.s, self.cliff = np.asarray(b, float), np.asarray(s, float), cliff
        self.latents = {"z": Latent(self.b.shape, "real")}

    def expected_log_joint(self, posterior, rng=None):
        q = posterior["z"]
        s2 = self.s**2
        value = np.sum(-0.5 * np.log(2 * np.pi * s2) - ((q.loc - self.b) ** 2 + q.variance)
                       / (2 * s2))
        if self.cliff and not (np.all(q.loc == 0) and np.all(q.variance == 1)):
            value = np.nan
        return float(value), {"z": q.grad_mean_from_moments(-(q.loc - self.b) / s2,
                                                            -0.5 / s2 + 0 * q.loc)}

    def log_joint(self, draws):
        z = draws["z"]
        return np.sum(-0.5 * np.log(2 * np.pi * self.s**2) - (z - self.b) ** 2
                      / (2 * self.s**2), axis=-1)

    def initial_posterior(self, families):
        return {"z": families["z"](loc=np.zeros_like(self.b), scale=np.ones_like(self.b))}


@pytest.fixture(scope="module")
def small_model():
    return _small_model()


@pytest.fixture(scope="module")
def small_fit(small_model):
    return natvi.fit(small_model, "ngd", family=MeanFieldGaussian)


def _all_finite(posterior):
    return all(np.all(np.isfinite(q.natural)) and np.all(np.isfinite(q.loc))
               and np.all(q.scale > 0) for q in posterior.values())


# ---- validation -------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["model", None, np.ones((3, 2)), {"coef": 1}])
def test_model_must_be_a_model(model):
    with pytest.raises(ValueError, match="^model:"):
        natvi.fit(model, family=MeanFieldGaussian)


@pytest.mark.parametrize("optimizer", ["bogus", "Adam", "", 3, None, object(),
                                       optim.adam(0.1)._asdict()])
def test_bad_optimizer(small_model, optimizer):
    with pytest.raises(ValueError, match="^optimizer:"):
        natvi.fit(small_model, optimizer, family=MeanFieldGaussian)


@pytest.mark.parametrize("max_iter", [0, -1, 2.5, 10.0, True, "10", None])
def test_bad_max_iter(small_model, max_iter):
    with pytest.raises(ValueError, match="^max_iter:"):
        natvi.fit(small_model, max_iter=max_iter, family=MeanFieldGaussian)


@pytest.mark.parametrize("tol", [-1e-3, -np.inf, np.nan, np.inf, "1e-3", True])
def test_bad_tol(small_model, tol):
    with pytest.raises(ValueError, match="^tol:"):
        natvi.fit(small_model, tol=tol, family=MeanFieldGaussian)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True, [1, 2]])
def test_bad_seed(small_model, seed):
    with pytest.raises(ValueError, match="^seed:"):
        natvi.fit(small_model, seed=seed, family=MeanFieldGaussian)


def test_good_seeds_accepted(small_model):
    for seed in (0, np.int64(3), np.random.SeedSequence(1), np.random.default_rng(2), None):
        assert natvi.fit(small_model, max_iter=1, seed=seed, family=MeanFieldGaussian).n_iter == 1


def test_family_dict_with_unknown_latent(small_model):
    with pytest.raises(ValueError, match="^family:.*'slope'"):
        natvi.fit(small_model, family={"slope": MeanFieldGaussian})


def test_family_with_mismatched_support(small_model):
    class PositiveGaussian(MeanFieldGaussian):
        support = "positive"

    with pytest.raises(ValueError, match="^family:.*support"):
        natvi.fit(small_model, family=PositiveGaussian)
    with pytest.raises(ValueError, match="^family:.*support"):
        natvi.fit(small_model, family={"coef": PositiveGaussian})


@pytest.mark.parametrize("family", [int, "MeanFieldGaussian", MeanFieldGaussian(0.0, 1.0)])
def test_family_not_a_family_class(small_model, family):
    with pytest.raises(ValueError, match="^family:"):
        natvi.fit(small_model, family=family)


def test_family_dict_and_class_accepted(small_model):
    a = natvi.fit(small_model, family={"coef": MeanFieldGaussian}, max_iter=3)
    b = natvi.fit(small_model, family=MeanFieldGaussian, max_iter=3)
    np.testing.assert_array_equal(a.history["elbo"], b.history["elbo"])


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("lr", [0, 0.0, -0.1, np.nan, np.inf, "0.1", None, True])
def test_learning_rate_must_be_positive(factory, lr):
    with pytest.raises(ValueError, match="^learning_rate:"):
        getattr(optim, factory)(lr)


@pytest.mark.parametrize("factory", EUCLIDEAN)
def test_euclidean_coordinates_checked(factory):
    with pytest.raises(ValueError, match="^coordinates:"):
        getattr(optim, factory)(coordinates="mean")


@pytest.mark.parametrize("method", ["sample", "to_arviz", "pareto_k"])
@pytest.mark.parametrize("draws", [0, -1, 2.5, True])
def test_bad_draws(small_fit, method, draws):
    with pytest.raises(ValueError, match="^draws:"):
        getattr(small_fit, method)(draws)


# ---- history and status --------------------------------------------------------------------
def test_history(small_fit):
    h = small_fit.history
    assert set(h) == {"elbo", "step_size", "grad_evals", "seconds", "rejected"}
    n = small_fit.n_iter
    assert n >= 1
    for key, arr in h.items():
        assert isinstance(arr, np.ndarray) and arr.shape == (n + 1,), key
    assert np.all(np.diff(h["grad_evals"]) >= 0) and h["grad_evals"][0] == 1
    assert np.all(np.diff(h["seconds"]) >= 0) and h["seconds"][0] >= 0
    assert h["step_size"][0] == 0 and np.all(h["step_size"][1:] > 0)
    assert np.all(h["rejected"] >= 0)
    # NGD with a line search on a deterministic ELBO: never downhill.
    assert np.all(np.diff(h["elbo"]) >= 0)
    assert small_fit.elbo == h["elbo"][-1]
    assert small_fit.status == "converged" and small_fit.converged
    assert 0 <= small_fit.gain <= 1e-9


def test_max_iter_status(small_model):
    result = natvi.fit(small_model, "ngd", max_iter=2, family=MeanFieldGaussian)
    assert result.status == "max_iter" and not result.converged
    assert result.n_iter == 2 and len(result.history["elbo"]) == 3


def test_conjugate_target_one_step():
    """A Gaussian target: one natural-gradient step of ρ = 1 is the exact posterior."""
    model = GaussianTarget([1.0, -2.0, 0.5], [0.5, 2.0, 1.0])
    for opt in (optim.natural_gradient(), optim.natural_gradient(line_search=False)):
        result = natvi.fit(model, opt, family=MeanFieldGaussian)
        assert result.status == "converged" and result.n_iter == 1
        q = result.posterior["z"]
        np.testing.assert_allclose(q.loc, model.b, rtol=1e-12)
        np.testing.assert_allclose(q.scale, model.s, rtol=1e-12)
        assert result.elbo == pytest.approx(0.0, abs=1e-12)  # log p(x) = 0, KL = 0


def test_no_finite_step_is_diverged():
    """Nowhere to go but NaN: statuses say so and the parameters stay finite."""
    model = GaussianTarget([1.0, -2.0], [1.0, 1.0], cliff=True)
    euclid = natvi.fit(model, optim.sgd(0.1), max_iter=10, family=MeanFieldGaussian)
    # No step survived its halvings: no step taken, the start kept.
    assert euclid.status == "diverged" and euclid.n_iter == 0
    assert euclid.history["elbo"].size == 1
    ngd = natvi.fit(model, "ngd", max_iter=10, family=MeanFieldGaussian)
    assert ngd.status == "diverged"
    assert ngd.history["rejected"][-1] > 0
    for result in (euclid, ngd):
        assert _all_finite(result.posterior)
        assert np.all(np.isfinite(result.history["elbo"]))
        assert len(result.history["elbo"]) == result.n_iter + 1
        np.testing.assert_array_equal(result.posterior["z"].loc, 0.0)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:divide by zero:RuntimeWarning")
def test_converged_only_at_the_optimum(small_model):
    """Regression: momentum(1) blows up to variances ~1e-23; ⟨g, Fg⟩ lost every digit there,
    came out negative, and fit reported "converged" at an ELBO of −1130 (optimum −53)."""
    result = natvi.fit(small_model, optim.momentum(1.0), max_iter=200, family=MeanFieldGaussian)
    assert result.status != "converged"
    assert not result.gain < 0


# ---- every optimizer, both coordinates ------------------------------------------------
@pytest.mark.parametrize("coordinates", ["unconstrained", "natural"])
@pytest.mark.parametrize("name", EUCLIDEAN)
def test_euclidean_optimizers_improve(small_model, name, coordinates):
    opt = getattr(optim, name)(coordinates=coordinates)  # each factory's default rate
    assert opt.coordinates == coordinates and not opt.natural
    result = natvi.fit(small_model, opt, max_iter=100, family=MeanFieldGaussian)
    assert result.status in ("max_iter", "converged")
    assert _all_finite(result.posterior)
    assert np.all(np.isfinite(result.history["elbo"]))
    assert result.elbo > result.history["elbo"][0]


def test_adam_converges_to_the_ngd_optimum(small_model, small_fit):
    result = natvi.fit(small_model, optim.adam(0.1), max_iter=1000, family=MeanFieldGaussian)
    assert result.converged
    assert result.elbo == pytest.approx(small_fit.elbo, abs=1e-7)
    for name, q0 in small_fit.posterior.items():
        q = result.posterior[name]
        np.testing.assert_array_less(np.abs(q.loc - q0.loc), 1e-3 * q0.scale)
        np.testing.assert_allclose(q.scale, q0.scale, rtol=1e-3)
    assert result.history["grad_evals"][-1] > small_fit.history["grad_evals"][-1]


# ---- the update formulas, by hand --------------------------------------------------------
# Two leaves, three scalars; two steps with gradients g1 then g2. Expected updates are
# computed scalar by scalar with the textbook recurrences.
_P = {"a": np.array([1.0, -2.0]), "b": np.array([[0.5]])}
_G1 = {"a": np.array([0.3, -1.2]), "b": np.array([[2.0]])}
_G2 = {"a": np.array([-0.5, -0.4]), "b": np.array([[1.0]])}


def _two_steps(opt):
    state = opt.init(_P)
    u1, state, _ = opt.update(_G1, state, _P)
    p1 = {k: _P[k] + u1[k] for k in _P}
    u2, state, _ = opt.update(_G2, state, p1)
    return u1, u2, state


def _scalars(tree):
    return [float(x) for k in ("a", "b") for x in np.ravel(tree[k])]


def _check(opt, expected1, expected2, rtol=1e-12):
    u1, u2, state = _two_steps(opt)
    np.testing.assert_allclose(_scalars(u1), expected1, rtol=rtol, atol=0)
    np.testing.assert_allclose(_scalars(u2), expected2, rtol=rtol, atol=0)
    assert int(state.count) == 2
    return u1, u2


G1, G2 = _scalars(_G1), _scalars(_G2)


def test_sgd_arithmetic():
    _check(optim.sgd(0.1), [0.03, -0.12, 0.2], [-0.05, -0.04, 0.1])


def test_momentum_arithmetic():
    lr, beta = 0.1, 0.9
    # m1 = g1, Δ1 = lr·g1; m2 = β·g1 + g2, Δ2 = lr·m2.
    _check(optim.momentum(lr, beta), [lr * g for g in G1],
           [lr * (beta * a + b) for a, b in zip(G1, G2, strict=True)])
    # Given numbers: second update of the first scalar = 0.1·(0.9·0.3 − 0.5) = −0.023.
    u1, u2, _ = _two_steps(optim.momentum(0.1, 0.9))
    assert u2["a"][0] == pytest.approx(-0.023, rel=1e-12)


def test_nesterov_arithmetic():
    lr, beta = 0.1, 0.9
    # Look-ahead form: m_t = β·m_{t−1} + g_t, Δ_t = lr·(g_t + β·m_t).
    exp1 = [lr * (g + beta * g) for g in G1]
    exp2 = [lr * (b + beta * (beta * a + b)) for a, b in zip(G1, G2, strict=True)]
    _check(optim.momentum(lr, beta, nesterov=True), exp1, exp2)


def test_adagrad_arithmetic():
    lr, eps = 0.5, 1e-8
    exp1 = [lr * g / (abs(g) + eps) for g in G1]              # ≈ lr·sign(g1)
    exp2 = [lr * b / (math.sqrt(a * a + b * b) + eps) for a, b in zip(G1, G2, strict=True)]
    _check(optim.adagrad(lr, eps=eps), exp1, exp2)


def test_rmsprop_arithmetic():
    lr, rho, eps = 0.01, 0.9, 1e-8
    exp1 = [lr * g / (math.sqrt(0.1 * g * g) + eps) for g in G1]
    exp2 = [lr * b / (math.sqrt(0.9 * 0.1 * a * a + 0.1 * b * b) + eps)
            for a, b in zip(G1, G2, strict=True)]
    u1, _ = _check(optim.rmsprop(lr, rho, eps=eps), exp1, exp2)
    # First step: lr·sign(g)/√0.1 = ±0.0316227..., to eps.
    np.testing.assert_allclose(u1["b"], [[0.01 / math.sqrt(0.1)]], rtol=1e-7)


def test_adadelta_arithmetic():
    lr, rho, eps = 1.0, 0.95, 1e-6
    exp1, exp2 = [], []
    for g1, g2 in zip(G1, G2, strict=True):
        v = (1 - rho) * g1**2                                      # E[g²]_1
        d1 = math.sqrt(0 + eps) / math.sqrt(v + eps) * g1          # RMS[Δ]_0 / RMS[g]_1 · g1
        u = (1 - rho) * d1**2                                      # E[Δ²]_1
        v = rho * v + (1 - rho) * g2**2                            # E[g²]_2
        d2 = math.sqrt(u + eps) / math.sqrt(v + eps) * g2
        exp1.append(lr * d1)
        exp2.append(lr * d2)
    _check(optim.adadelta(lr, rho, eps=eps), exp1, exp2)
    # Zeiler's first step is tiny: √ε / √((1−ρ)g² + ε)·g ≈ 1e-3·sign(g)/√0.05 for |g| ≫ √ε.
    u1, _, _ = _two_steps(optim.adadelta(1.0, 0.95, eps=1e-6))
    assert u1["b"][0, 0] == pytest.approx(1e-3 / math.sqrt(0.05 * 4 + 1e-6) * 2, rel=1e-12)


def test_adam_arithmetic():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    exp1, exp2 = [], []
    for g1, g2 in zip(G1, G2, strict=True):
        m, v = (1 - b1) * g1, (1 - b2) * g1 * g1
        exp1.append(lr * (m / (1 - b1)) / (math.sqrt(v / (1 - b2)) + eps))
        m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2 * g2
        exp2.append(lr * (m / (1 - b1**2)) / (math.sqrt(v / (1 - b2**2)) + eps))
    u1, u2 = _check(optim.adam(lr, b1, b2, eps=eps), exp1, exp2)
    # Bias correction makes the first step lr·sign(g), to eps.
    np.testing.assert_allclose(_scalars(u1), [0.01, -0.01, 0.01], rtol=1e-7)
    # Leaf "b": g1 = 2, g2 = 1. m̂ = (0.09·2 + 0.1·1)/0.19 = 0.28/0.19,
    # v̂ = (0.000999·4 + 0.001·1)/0.001999 = 0.004996/0.001999.
    expected = 0.01 * (0.28 / 0.19) / math.sqrt(0.004996 / 0.001999)
    assert u2["b"][0, 0] == pytest.approx(expected, rel=1e-7)


def test_natural_gradient_scheduled_arithmetic():
    # Without an objective: η ← η + ρ ∇_μ L with ρ from the schedule.
    u1, u2, _ = _two_steps(optim.natural_gradient(0.5, line_search=False))
    np.testing.assert_allclose(_scalars(u1), [0.5 * g for g in G1], rtol=1e-15)
    np.testing.assert_allclose(_scalars(u2), [0.5 * g for g in G2], rtol=1e-15)
    # Robbins–Monro: ρ_t = lr·(t + delay)^(−decay), t = 0, 1, ...
    opt = optim.natural_gradient(0.8, schedule="robbins_monro", decay=0.7, delay=2.0)
    u1, u2, _ = _two_steps(opt)
    np.testing.assert_allclose(_scalars(u1), [0.8 * 2.0**-0.7 * g for g in G1], rtol=1e-14)
    np.testing.assert_allclose(_scalars(u2), [0.8 * 3.0**-0.7 * g for g in G2], rtol=1e-14)


def test_natural_gradient_halves_out_of_domain_steps():
    opt = optim.natural_gradient(1.0, line_search=False)
    state = opt.init(_P)
    # "valid" only while every parameter stays above −2.5: a[1] = −2 − 1.2ρ needs ρ < 5/12,
    # so ρ = 1 → 1/2 → 1/4 (two halvings).
    updates, state, info = opt.update(
        _G1, state, _P, valid=lambda p: all(np.all(v > -2.5) for v in p.values()))
    assert info == optim.Info(step_size=0.25, rejected=2) and float(state.step_size) == 0.25
    np.testing.assert_allclose(_scalars(updates), [0.25 * g for g in G1], rtol=1e-15)


# ---- a hard problem: nearly collinear features -----------------------------------------------
@pytest.fixture(scope="module")
def correlated_model():
    return _correlated_model()


def test_default_ngd_converges_on_correlated_features(correlated_model):
    result = natvi.fit(correlated_model, "ngd", family=MeanFieldGaussian)
    assert result.converged and result.n_iter < 100
    assert np.all(np.diff(result.history["elbo"]) >= 0)
    assert _all_finite(result.posterior)


def test_fixed_unit_step_diverges_and_backtracking_stops_it(correlated_model):
    """The Jacobi divergence: plain steps η ← η + ∇_μ L go downhill on correlated features;
    natural_gradient(line_search=False) halves such steps, so its ELBO never decreases."""
    from natvi.elbo import elbo

    start = correlated_model.initial_posterior({"intercept": natvi.MeanFieldGaussian,
                                                "coef": natvi.MeanFieldGaussian})
    eta = {k: q.natural for k, q in start.items()}
    elbos = []
    for _ in range(10):
        q = {k: natvi.MeanFieldGaussian.from_natural(e) for k, e in eta.items()}
        value, grads = elbo(correlated_model, q)
        elbos.append(value)
        eta = {k: eta[k] + grads[k] for k in eta}
        if not all(natvi.MeanFieldGaussian.in_domain(e).all() for e in eta.values()):
            break
    assert elbos[-1] < elbos[0] - 1.0   # the plain unit step has gone downhill

    result = natvi.fit(correlated_model, optim.natural_gradient(1.0, line_search=False),
                       max_iter=50, family=MeanFieldGaussian)
    h = result.history
    assert np.all(np.diff(h["elbo"]) >= 0)
    assert h["rejected"].sum() > 0      # unit steps were refused and halved
    np.testing.assert_allclose(h["step_size"][1:], 0.5 ** h["rejected"][1:])
    assert _all_finite(result.posterior) and np.all(np.isfinite(h["elbo"]))


def test_out_of_domain_steps_are_halved_and_recorded(correlated_model):
    """ρ = 3 makes precisions negative; each such step is halved, counted, never NaN."""
    result = natvi.fit(correlated_model, optim.natural_gradient(3.0, line_search=False),
                       max_iter=50, family=MeanFieldGaussian)
    h = result.history
    assert result.status in ("max_iter", "diverged")
    assert h["rejected"].sum() > 0
    np.testing.assert_allclose(h["step_size"][1:], 3.0 * 0.5 ** h["rejected"][1:])
    assert _all_finite(result.posterior) and np.all(np.isfinite(h["elbo"]))


# ---- both routes to the natural gradient ---------------------------------------------------
def test_natural_gradient_equals_fisher_solve_of_eta_gradient(small_model):
    rng = np.random.default_rng(8)
    posterior = {"intercept": MeanFieldGaussian(loc=0.2, scale=0.6),
                 "coef": MeanFieldGaussian(loc=rng.normal(scale=0.5, size=3),
                                           scale=rng.uniform(0.3, 0.8, size=3))}
    _, nat = natvi.elbo(small_model, posterior)
    for name, q in posterior.items():
        eta = np.array(q.natural)
        fd = np.zeros_like(eta)
        for idx in np.ndindex(eta.shape):
            h = 1e-6 * max(1.0, abs(eta[idx]))
            vals = []
            for sign in (1, -1):
                e = eta.copy()
                e[idx] += sign * h
                moved = dict(posterior, **{name: MeanFieldGaussian.from_natural(e)})
                vals.append(natvi.elbo(small_model, moved)[0])
            fd[idx] = (vals[0] - vals[1]) / (2 * h)
        # ∇_η L = F ∇_μ L, and ∇_μ L = F⁻¹ ∇_η L.
        np.testing.assert_allclose(q.fisher_vector_product(nat[name]), fd, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(q.fisher_solve(fd), nat[name], rtol=1e-5, atol=1e-5)


# ---- sampling and interruption -------------------------------------------------------------
def test_sample_reproducible(small_fit):
    a, b = small_fit.sample(500, seed=3), small_fit.sample(500, seed=3)
    c = small_fit.sample(500, seed=4)
    assert list(a) == ["intercept", "coef"]
    assert a["intercept"].shape == (500,) and a["coef"].shape == (500, 3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.any(a[k] == c[k])
    big = small_fit.sample(20000, seed=5)["coef"]
    q = small_fit.posterior["coef"]
    np.testing.assert_allclose(big.mean(axis=0), q.loc, atol=5 * q.scale.max() / np.sqrt(20000))


def test_keyboard_interrupt_from_callback(small_model):
    seen = []

    def callback(iteration, elbo, posterior):
        seen.append((iteration, elbo))
        if iteration == 3:
            raise KeyboardInterrupt

    result = natvi.fit(small_model, "ngd", callback=callback, family=MeanFieldGaussian)
    assert result.status == "interrupted" and not result.converged
    assert result.n_iter == 3 and [i for i, _ in seen] == [1, 2, 3]
    assert result.elbo == seen[-1][1] == result.history["elbo"][-1]
    assert len(result.history["elbo"]) == 4
    assert _all_finite(result.posterior)


# ---- Euclidean optimizers that go downhill ------------------------------------------------
def _scaled_column_model():
    """Breast cancer with one standardized column multiplied by 1e8: plain gradient steps
    on it overshoot by orders of magnitude."""
    from natvi.data import load_breast_cancer

    X, y, _ = load_breast_cancer()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    X[:, 0] *= 1e8
    return LogisticRegression(X, y)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_collapsed_elbo_is_diverged_and_the_best_iterate_is_returned(name):
    """sgd and adam end far below their own start (−9e17 and −1e7 from −517): the status is
    "diverged", the message says so, and the result holds the best iterate (here the
    start), its ELBO the history's maximum; strict=True raises."""
    model = _scaled_column_model()
    with np.errstate(all="ignore"):
        result = natvi.fit(model, name, family=MeanFieldGaussian, max_iter=300)
    elbos = result.history["elbo"]
    assert elbos[-1] < elbos[0] - 1e3
    assert result.status == "diverged" and not result.converged
    assert "fell from" in result.message and "best iterate" in result.message
    assert result.elbo == elbos.max()
    assert natvi.elbo(model, result.posterior)[0] == result.elbo
    assert result.n_iter == 300
    with pytest.raises(natvi.DivergenceError, match="fell from"), \
            np.errstate(all="ignore"):
        natvi.fit(model, name, family=MeanFieldGaussian, max_iter=300, strict=True)


def test_an_optimizer_that_ends_below_its_best_returns_the_best():
    """Adam with a large step oscillates: it ends below its best iterate but above its
    start, so it stops at max_iter and returns the best iterate, saying which."""
    model = _correlated_model()
    result = natvi.fit(model, optim.adam(0.5), family=MeanFieldGaussian, max_iter=40)
    elbos = result.history["elbo"]
    assert elbos[0] < elbos[-1] < elbos.max()
    assert result.status == "max_iter"
    assert result.elbo == elbos.max()
    assert f"iteration {int(np.argmax(elbos))} " in result.message


def test_the_best_iterate_survives_a_checkpoint(tmp_path):
    """Interrupted after its best iterate (37 of 40) and resumed from the checkpoint, the
    oscillating Adam fit returns the same best iterate as the uninterrupted one."""
    model, opt = _correlated_model(), optim.adam(0.5)
    want = natvi.fit(model, opt, family=MeanFieldGaussian, max_iter=40)

    def stop(n_iter, elbo, posterior):
        if n_iter == 38:
            raise KeyboardInterrupt

    natvi.fit(model, opt, family=MeanFieldGaussian, max_iter=40, callback=stop,
              checkpoint=tmp_path / "c.npz")
    got = natvi.fit(model, opt, family=MeanFieldGaussian, max_iter=40,
                    resume=tmp_path / "c.npz")
    assert got.elbo == want.elbo == want.history["elbo"][37]
    for key, q in want.posterior.items():
        np.testing.assert_array_equal(got.posterior[key].natural, q.natural)


def test_the_default_family_and_why_are_recorded_and_printed():
    """family="auto" (the default): a GLM small enough gets one full-rank Gaussian over the
    intercept and coefficients; the result records why and its summary prints it. A family
    given by the caller is recorded as such."""
    model = _correlated_model()
    result = natvi.fit(model)
    assert list(result.posterior) == [("intercept", "coef")]
    assert result.family_reason.startswith("a full-rank Gaussian over the intercept and the")
    text = str(result)
    assert result.message in text and "FullRankGaussian" in text
    assert result.family_reason in text
    mf = natvi.fit(model, family=MeanFieldGaussian)
    assert mf.family_reason == "given by the caller"
    with pytest.raises(ValueError, match='^family: expected "auto"'):
        natvi.fit(model, family="full_rank")
