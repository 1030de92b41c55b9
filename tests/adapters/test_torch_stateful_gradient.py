"""Stateful gradient methods (GradVac, momentum PCGrad) through the torch adapter."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import solvers  # noqa: E402
from paretomtl.adapters.torch import Aggregator  # noqa: E402
from tests.adapters.test_torch import Net, data, explicit_jacobian, flat_grad  # noqa: E402

CASES = [
    ("gradvac", {"beta": 0.3}),
    ("gradvac", {"target_update": "when-below", "reduction": "mean"}),
    ("momentum-pcgrad", {}),
    ("momentum-pcgrad", {"beta1": 0.5, "threshold": 0.2}),
]


def train_steps(agg, net, x, ys, steps, lr=0.05):
    """Plain SGD steps through the aggregator, so that the gradients change."""
    infos = []
    for _ in range(steps):
        net.zero_grad()
        losses, _ = net.losses(x, ys)
        infos.append(agg.backward(losses, net.shared()))
        with torch.no_grad():
            for p in net.parameters():
                if p.grad is not None:
                    p -= lr * p.grad
    return infos


@pytest.mark.parametrize(("method", "options"), CASES)
def test_weights_equal_numpy_object_on_explicit_jacobian(method, options):
    net = Net()
    x, ys = data()
    agg = Aggregator(method, seed=5, options=options)
    reference = solvers.get(method)(3, seed=5, **options)
    surgeries = 0
    for _ in range(6):
        net.zero_grad()
        losses, _ = net.losses(x, ys)
        J = explicit_jacobian(losses, net.shared())
        info = agg.backward(losses, net.shared())
        expected = reference.update(gram=J @ J.T)
        np.testing.assert_allclose(info.weights, expected.weights, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(flat_grad(net.shared()), expected.weights @ J, atol=1e-10)
        assert info.result.method.startswith(method)
        surgeries += expected.extras.get("adjustments", expected.extras.get("projections"))
        with torch.no_grad():
            for p in net.parameters():
                if p.grad is not None:
                    p -= 0.05 * p.grad
    assert agg.method_state.step == reference.step == 6
    assert surgeries > 0  # the tasks conflict: the methods did change the gradients
    if method == "gradvac":
        np.testing.assert_allclose(agg.method_state.targets, reference.targets, atol=1e-10)


@pytest.mark.parametrize(("method", "options"), CASES)
def test_aggregator_state_round_trip_is_bit_identical(method, options):
    x, ys = data()
    straight_net = Net()
    straight = train_steps(Aggregator(method, seed=11, options=options), straight_net, x, ys, 5)
    net = Net()
    first = Aggregator(method, seed=11, options=options)
    train_steps(first, net, x, ys, 2)
    resumed = Aggregator(method, seed=999, options=options)
    resumed.load_state_dict(first.state_dict())
    got = train_steps(resumed, net, x, ys, 3)
    for a, b in zip(got, straight[2:], strict=True):
        assert a.weights.tobytes() == b.weights.tobytes()
    for p, q in zip(net.parameters(), straight_net.parameters(), strict=True):
        assert p.detach().numpy().tobytes() == q.detach().numpy().tobytes()
    assert resumed.method_state.step == 5


def test_task_count_change_is_refused():
    net = Net(tasks=3)
    x, ys = data(tasks=3)
    agg = Aggregator("gradvac", seed=0)
    losses, _ = net.losses(x, ys)
    agg.backward(losses, net.shared())
    net.zero_grad()
    losses, _ = net.losses(x, ys)
    with pytest.raises(ValueError, match="has 3 tasks; got 2"):
        agg.backward(losses[:2], net.shared())
    assert all(p.grad is None for p in net.shared())
