"""IMTL-L: the weights e^s, the gradient e^s L - 1 of the scaled loss, the fixed point,
torch autograd and torchjd's IMTLL scalariser as references, the range bounds."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import IMTLL, UncertaintyWeighting
from tests.asserts import assert_same_state

BIGGEST = float(np.finfo(np.float64).max)


def scaled_total(s, L):
    """The paper's scaled loss: sum_i exp(s_i) L_i - s_i."""
    return float(np.sum(np.exp(s) * L - s))


def test_hand_worked_sgd_steps():
    # s = 0, lr = 0.1, L = (2, 0.5): w = (1, 1); grad = w L - 1 = (1, -0.5); s = (-0.1, 0.05).
    # Step 2, same L: w = (e^-0.1, e^0.05); s_0 = -0.1 - 0.1 (2 e^-0.1 - 1).
    imtl = IMTLL(2, lr=0.1, optimizer="sgd")
    assert imtl.weights is None
    np.testing.assert_array_equal(imtl.update([2.0, 0.5]), [1.0, 1.0])
    np.testing.assert_allclose(imtl.scales, [-0.1, 0.05], rtol=1e-15)
    np.testing.assert_allclose(
        imtl.update([2.0, 0.5]), [math.exp(-0.1), math.exp(0.05)], rtol=1e-15
    )
    np.testing.assert_allclose(
        imtl.scales,
        [-0.1 - 0.1 * (2 * math.exp(-0.1) - 1), 0.05 - 0.1 * (0.5 * math.exp(0.05) - 1)],
        rtol=1e-15,
    )
    assert imtl.step == 2


@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=5),
    st.lists(st.floats(0, 1e3), min_size=5, max_size=5),
)
def test_step_is_the_central_difference_of_the_scaled_loss(s0, losses):
    # SGD at lr = 1e-3 (steps below 150, within the bounds): grad = (s - s_new) / lr.
    K = len(s0)
    s0, L = np.array(s0), np.array(losses[:K])
    imtl = IMTLL(K, lr=1e-3, optimizer="sgd", initial_scales=s0)
    w = imtl.update(L)
    np.testing.assert_allclose(w, np.exp(s0), rtol=1e-15)
    grad = (s0 - imtl.scales) / 1e-3
    h = 1e-6
    for i in range(K):
        e = np.zeros(K)
        e[i] = h
        fd = (scaled_total(s0 + e, L) - scaled_total(s0 - e, L)) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, rtol=0, atol=1e-5 * (1 + math.exp(s0[i]) * L[i]))


@pytest.mark.parametrize("loss", [1e-3, 0.25, 1.0, 40.0, 1e6])
def test_sgd_reaches_the_fixed_point_where_every_scaled_loss_is_one(loss):
    # d/ds (e^s L - s) = 0 at s* = -log L; the curvature there is e^s L = 1, so SGD with
    # lr = 1/2 contracts by 1/2 per step near s* (from s* + 1 here: from 0, a large loss
    # would first throw s to its bound, from where it climbs back by lr a step).
    imtl = IMTLL(1, lr=0.5, optimizer="sgd", initial_scales=1.0 - math.log(loss))
    for _ in range(300):
        imtl.update([loss])
    np.testing.assert_allclose(imtl.scales, [-math.log(loss)], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(imtl.update([loss]) * loss, [1.0], rtol=1e-12)


def torch_run(losses, lr, optimizer, s0):
    """Autograd of sum exp(s) L - s: the weights are its gradient in L, s steps with torch."""
    torch = pytest.importorskip("torch")
    s = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)([s], lr=lr)
    weights, scales = [], []
    for L in losses:
        Lt = torch.tensor(L, dtype=torch.float64, requires_grad=True)
        opt.zero_grad()
        (torch.exp(s) * Lt - s).sum().backward()
        weights.append(Lt.grad.numpy().copy())
        opt.step()
        scales.append(s.detach().numpy().copy())
    return weights, scales


def loss_runs(top):
    return st.integers(1, 6).flatmap(
        lambda K: st.lists(
            st.lists(st.floats(0.0, top), min_size=K, max_size=K), min_size=1, max_size=12
        )
    )


# SGD's steps are lr (e^s L - 1): losses up to 10 keep them within the bounds of s.
@pytest.mark.parametrize(("optimizer", "top"), [("adam", 1e3), ("sgd", 10.0)])
@given(data=st.data(), lr=st.floats(1e-4, 0.3), seed=st.integers(0, 2**31))
def test_matches_torch_autograd_and_torch_optimisers(optimizer, top, data, lr, seed):
    losses = data.draw(loss_runs(top), label="losses")
    K = len(losses[0])
    s0 = np.random.default_rng(seed).uniform(-2, 2, K)
    imtl = IMTLL(K, lr=lr, optimizer=optimizer, initial_scales=s0)
    weights, scales = torch_run(losses, lr, optimizer, s0)
    for L, w, s in zip(losses, weights, scales, strict=True):
        np.testing.assert_allclose(imtl.update(L), w, rtol=1e-13)
        np.testing.assert_allclose(imtl.scales, s, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_matches_torchjd_imtll(optimizer):
    # torchjd.scalarization.IMTLL is sum exp(s) L - s with s an nn.Parameter trained by
    # the user's optimiser: its gradient in L is the weight vector here.
    torch = pytest.importorskip("torch")
    scalarization = pytest.importorskip("torchjd.scalarization")
    rng = np.random.default_rng(3)
    worst = 0.0
    for K in (1, 2, 5, 10, 32):
        scalarizer = scalarization.IMTLL(K).double()
        make = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        opt = make(scalarizer.parameters(), lr=0.05)
        ours = IMTLL(K, lr=0.05, optimizer=optimizer)
        for t in range(40):
            # Adam: losses over twelve decades; SGD's step grows with L, so small ones.
            wide = t % 2 and optimizer == "adam"
            L = 10.0 ** rng.uniform(-6, 6, K) if wide else rng.uniform(0, 3, K)
            if t % 7 == 3:
                L[0] = 0.0
            Lt = torch.tensor(L, requires_grad=True)
            opt.zero_grad()
            scalarizer(Lt).backward()
            opt.step()
            w = ours.update(L)
            rel = np.abs(w - Lt.grad.numpy()) / np.abs(Lt.grad.numpy())
            worst = max(worst, rel.max())
            np.testing.assert_allclose(
                ours.scales, scalarizer.log_scale.detach().numpy(), rtol=1e-12, atol=1e-13
            )
    assert worst <= 1e-12, worst


@pytest.mark.parametrize("lr", [0.01, 0.3])
def test_is_uncertainty_weighting_with_s_negated_and_half_the_rate(lr):
    # e^s L - s = 2 (1/2 e^-u L + u/2) at u = -s: Kendall et al.'s regression loss.
    rng = np.random.default_rng(0)
    s0 = rng.uniform(-1, 1, 4)
    imtl = IMTLL(4, lr=lr, optimizer="sgd", initial_scales=s0)
    uw = UncertaintyWeighting(
        4, "regression", lr=2 * lr, optimizer="sgd", initial_log_variances=-s0
    )
    for _ in range(30):
        L = rng.uniform(0.1, 5, 4)
        np.testing.assert_allclose(imtl.update(L), 2 * uw.update(L), rtol=1e-13)
        np.testing.assert_allclose(imtl.scales, -uw.log_variances, rtol=1e-12, atol=1e-14)


def test_adam_first_step_is_lr_times_the_sign():
    imtl = IMTLL(3, lr=0.01, initial_scales=[0.0, 1.0, -2.0])
    imtl.update([3.0, 0.0, 1.0])  # grad = (2, -1, e^-2 - 1 < 0)
    np.testing.assert_allclose(imtl.scales, [-0.01, 1.01, -1.99], rtol=1e-7)


def test_permuting_the_tasks_permutes_scales_and_weights():
    rng = np.random.default_rng(1)
    a, b = IMTLL(5, lr=0.1), IMTLL(5, lr=0.1)
    perm = rng.permutation(5)
    for _ in range(10):
        L = rng.uniform(0, 4, 5)
        np.testing.assert_array_equal(b.update(L[perm]), a.update(L)[perm])
    np.testing.assert_array_equal(b.scales, a.scales[perm])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("lr", [1e-3, 1.0, 1e300, BIGGEST])
def test_extreme_losses_keep_scales_within_bounds_and_weights_finite(optimizer, lr):
    imtl = IMTLL(3, lr=lr, optimizer=optimizer)
    for L in ([0.0, 1e308, 1.0], [BIGGEST, 0.0, 1e-320], [1.0, 1.0, 1.0], [0.0, 0.0, BIGGEST]):
        w = imtl.update(L)
        assert np.isfinite(w).all() and (w > 0).all()
        s = imtl.scales
        assert np.isfinite(s).all() and np.abs(s).max() <= 708.0
        IMTLL(3, lr=lr, optimizer=optimizer).load_state_dict(imtl.state_dict())


def test_a_zero_loss_raises_its_scale_to_the_bound():
    imtl = IMTLL(1, lr=10.0, optimizer="sgd")
    for _ in range(80):
        imtl.update([0.0])  # grad -1: s rises by 10 a step, then stops at 708
    np.testing.assert_array_equal(imtl.scales, [708.0])
    np.testing.assert_allclose(imtl.update([0.0]), [math.exp(708.0)], rtol=1e-15)


def test_defaults():
    imtl = IMTLL(3)
    assert imtl.lr == 1e-3 and imtl.optimizer == "adam"
    np.testing.assert_array_equal(imtl.scales, np.zeros(3))
    np.testing.assert_array_equal(imtl.update([5.0, 1.0, 0.1]), np.ones(3))  # the plain sum


def test_objective_is_the_scaled_loss_at_the_current_s():
    imtl = IMTLL(2, initial_scales=[0.3, -1.0])
    L = np.array([2.0, 0.7])
    assert imtl.objective(L) == pytest.approx(scaled_total(np.array([0.3, -1.0]), L), rel=1e-15)
    assert imtl.step == 0


def test_scales_is_a_copy():
    imtl = IMTLL(2)
    imtl.scales[0] = 5.0
    np.testing.assert_array_equal(imtl.scales, [0.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": math.inf}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
        ({"initial_scales": [0.0, 0.0, 0.0]}, ValueError, r"initial_scales must have shape \(2,\)"),
        ({"initial_scales": [0.0, 709.0]}, ValueError, r"initial_scales\[1\] \(task 1\)"),
        ({"initial_scales": [math.nan, 0.0]}, ValueError, r"initial_scales\[0\] \(task 0\)"),
    ],
)
def test_bad_options_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        IMTLL(2, **kwargs)


def test_corrupt_states_are_refused_and_change_nothing():
    imtl = IMTLL(2, lr=0.1)
    imtl.update([1.0, 2.0])
    good = imtl.state_dict()
    fresh = IMTLL(2, lr=0.1)
    before = fresh.state_dict()
    broken = [
        ({"scales": np.array([0.0, 709.0])}, "scales"),
        ({"adam_v": np.array([-1.0, 0.0])}, "adam_v"),
        ({"step": 0}, "adam_m"),  # moments at step 0
        ({"weights": None}, "weights"),
        ({"step": -1}, "step"),
    ]
    for change, match in broken:
        with pytest.raises(ValueError, match=match):
            fresh.load_state_dict({**good, **change})
        assert_same_state(fresh.state_dict(), before)
    sgd = IMTLL(2, lr=0.1, optimizer="sgd")
    with pytest.raises(ValueError, match="adam_m"):
        sgd.load_state_dict(
            {**good, "hyperparameters": {**good["hyperparameters"], "optimizer": "sgd"}}
        )
    fresh.load_state_dict(good)
    assert_same_state(fresh.state_dict(), good)


positive_any = st.one_of(
    st.floats(1e-320, BIGGEST),
    st.integers(-320, 308).map(lambda e: 10.0**e),
    st.sampled_from([0.0, 1e-320, 5e-309, 1.0, 1e308, BIGGEST]),
)
rates = st.one_of(st.floats(5e-324, BIGGEST), st.sampled_from([1e-3, 1.0, 1e150, BIGGEST]))


@pytest.mark.filterwarnings("error")
@given(data=st.data())
def test_any_finite_input_gives_finite_weights_and_a_loadable_state(data):
    K = data.draw(st.integers(1, 4), label="K")
    kwargs = {
        "lr": data.draw(rates, label="lr"),
        "optimizer": data.draw(st.sampled_from(["adam", "sgd"]), label="optimizer"),
        "initial_scales": data.draw(st.floats(-708.0, 708.0), label="s0"),
    }
    imtl = IMTLL(K, **kwargs)
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        w = imtl(data.draw(st.lists(positive_any, min_size=K, max_size=K), label="losses"))
        assert np.isfinite(w).all() and (w > 0).all()
        IMTLL(K, **kwargs).load_state_dict(imtl.state_dict())
