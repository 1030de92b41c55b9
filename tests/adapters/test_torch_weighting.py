"""Loss weightings through the torch adapter agree with their numpy objects."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import weighting  # noqa: E402
from paretomtl.adapters.torch import Aggregator, UncertaintyWeightingLoss  # noqa: E402
from tests.adapters.test_torch import Net, data, explicit_jacobian, flat_grad  # noqa: E402

OPTIONS = {
    "constant": {"weights": [0.5, 1.0, 2.0]},
    "prior-loss": {"prior_losses": [1.0, 0.5, 2.0]},
    "generalized-mean": {"gamma": 2.0},
    "rlw": {"seed": 4},
    "dwa": {"per": "step"},
}


# Uncertainty weighting through the adapter trains torch parameters with the user's
# optimizer: tests/adapters/test_torch_uncertainty_params.py covers it.
@pytest.mark.parametrize("method", [m for m in weighting.available("loss") if m != "uncertainty"])
def test_adapter_weights_equal_numpy_route(method):
    net = Net(tasks=3)
    x, ys = data(tasks=3)
    options = OPTIONS.get(method, {})
    agg = Aggregator(method, options=options)
    reference = weighting.get(method)(3, **options)
    for step in range(4):
        net.zero_grad()
        losses, _ = net.losses(x, ys)
        losses = [loss * (1 + 0.3 * step * k) for k, loss in enumerate(losses)]
        J = explicit_jacobian(losses, net.shared())
        values = np.array([float(v.detach()) for v in losses])
        expected = reference.update(values)
        info = agg.backward(losses, net.shared())
        np.testing.assert_array_equal(info.weights, expected)
        # One ordinary backward of sum_i w_i L_i: the trunk gets w @ J.
        np.testing.assert_allclose(flat_grad(net.shared()), expected @ J, rtol=1e-10, atol=1e-14)
        assert info.gram is None


def test_dwa_per_epoch_through_method_state():
    agg = Aggregator("dwa", num_tasks=2, options={"temperature": 1.0})
    net = Net(tasks=2)
    x, ys = data(tasks=2)
    for _epoch in range(3):
        for _ in range(2):
            net.zero_grad()
            losses, _ = net.losses(x, ys)
            w = agg.backward(losses, net.shared()).weights
        agg.method_state.end_epoch()
    assert agg.method_state.periods == 3
    assert w.shape == (2,) and abs(w.sum() - 2) < 1e-12


def test_uncertainty_torch_parameters_agree_with_numpy_update():
    # One SGD step on s through torch autograd vs the closed-form update.
    lr = 0.1
    types = ("regression", "classification", "regression")
    module = UncertaintyWeightingLoss(3, task_types=types, initial_log_variances=0.3)
    opt = torch.optim.SGD(module.parameters(), lr=lr)
    numpy_route = weighting.UncertaintyWeighting(
        3, task_types=types, lr=lr, optimizer="sgd", initial_log_variances=0.3
    )
    rng = np.random.default_rng(0)
    for _ in range(5):
        L = rng.uniform(0.1, 3.0, 3)
        w_np = numpy_route.update(L)
        np.testing.assert_allclose(module.weights().numpy(), w_np, rtol=1e-14)
        opt.zero_grad()
        module([torch.tensor(v, dtype=torch.float64) for v in L]).backward()
        opt.step()
        np.testing.assert_allclose(
            module.log_variances.detach().numpy(), numpy_route.log_variances, rtol=1e-13
        )


def test_loss_weighting_rejects_bad_losses_before_touching_grad():
    net = Net(tasks=3)
    x, ys = data(tasks=3)
    losses, _ = net.losses(x, ys)
    losses[1] = losses[1] * 0.0  # live-loss needs positive losses
    with pytest.raises(ValueError, match="task 1"):
        Aggregator("live-loss").backward(losses, net.shared())
    assert all(p.grad is None for p in net.parameters())


def test_aggregator_state_round_trip_for_rlw_is_bit_identical():
    def run(agg, steps):
        out = []
        for _ in range(steps):
            net = Net(tasks=3)
            x, ys = data(tasks=3)
            losses, _ = net.losses(x, ys)
            out.append(agg.backward(losses, net.shared()).weights)
        return out

    straight = run(Aggregator("rlw", seed=9), 5)
    first = Aggregator("rlw", seed=9)
    run(first, 2)
    resumed = Aggregator("rlw", seed=0)
    resumed.load_state_dict(first.state_dict())
    again = run(resumed, 3)
    for a, b in zip(straight[2:], again, strict=True):
        assert a.tobytes() == b.tobytes()


def test_aggregator_end_epoch_before_the_first_step_and_after():
    agg = Aggregator("dwa")
    assert agg.end_epoch() is False  # no method yet: nothing to end, no AttributeError
    net = Net(tasks=2)
    x, ys = data(tasks=2)
    for epoch in range(3):
        for _ in range(2):
            losses, _ = net.losses(x, ys)
            losses[0] = losses[0] * 2.0**-epoch  # task 0 falls faster than task 1
            info = agg.backward(losses, net.trunk.parameters())
        if epoch < 2:
            np.testing.assert_allclose(info.weights, [1.0, 1.0])  # no two epochs yet
        assert agg.end_epoch() is True  # closes an epoch with steps in it
        assert agg.end_epoch() is False  # an empty one: nothing to average
    assert info.weights[0] < info.weights[1]  # DWA weights the slower task up
    with pytest.raises(ValueError, match="no epochs"):
        mgda = Aggregator("mgda")
        mgda.backward(net.losses(x, ys)[0], net.trunk.parameters())
        mgda.end_epoch()
