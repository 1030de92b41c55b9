"""The torch adapter refuses or reports what would otherwise go silently wrong (issue 12,
class 6): duplicated shared parameters, features off the losses' path, frozen shared
parameters, a graph left retained, a task that never reaches the shared parameters."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import solvers  # noqa: E402
from paretomtl.adapters.torch import Aggregator, backward  # noqa: E402
from tests.adapters.test_torch import Net, data, explicit_jacobian, flat_grad  # noqa: E402

MODES = ["autograd", "batched"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["mgda", "pcgrad", "mean"])
@pytest.mark.parametrize("copies", [2, 3])
def test_a_shared_parameter_listed_twice_is_refused(method, mode, copies):
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    shared = net.shared()
    doubled = shared + shared[:1] * (copies - 1)
    with pytest.raises(ValueError, match=r"shared_params\[\d+\] appears more than once"):
        backward(losses, doubled, method, mode=mode, seed=0)
    assert all(p.grad is None for p in net.parameters())  # nothing was written


@pytest.mark.parametrize("method", ["mgda", "pcgrad"])
def test_features_off_the_losses_path_are_refused(method):
    net = Net()
    x, ys = data()
    losses, z = net.losses(x, ys)
    elsewhere = torch.tanh(net.trunk(x * 2.0))  # same shape, another graph
    with pytest.raises(ValueError, match=r"features\[0\] is not on the path of any loss"):
        backward(losses, net.shared(), method, mode="representation", features=elsewhere)
    assert all(p.grad is None for p in net.parameters())
    info = backward(losses, net.shared(), method, mode="representation", features=z, seed=0)
    assert net.trunk[0].weight.grad is not None and info.weights.shape == (3,)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("frozen", [[0], [1], [0, 2]])
def test_frozen_shared_parameters_are_skipped_as_torch_does(frozen, mode):
    net = Net()
    x, ys = data()
    shared = net.shared()
    for i in frozen:
        shared[i].requires_grad_(False)
    live = [p for p in shared if p.requires_grad]
    losses, _ = net.losses(x, ys)
    J = explicit_jacobian(losses, live)
    info = backward(losses, shared, "mgda", mode=mode)
    np.testing.assert_allclose(info.gram, J @ J.T, rtol=1e-10)
    np.testing.assert_allclose(flat_grad(live), info.weights @ J, rtol=1e-9, atol=1e-14)
    assert all(shared[i].grad is None for i in frozen)


def test_all_shared_parameters_frozen_is_an_error():
    net = Net()
    x, ys = data()
    for p in net.shared():
        p.requires_grad_(False)
    losses, _ = net.losses(x, ys)
    with pytest.raises(ValueError, match="no shared_params requires grad"):
        backward(losses, net.shared(), "mgda")


@pytest.mark.parametrize("mode", [*MODES, "representation"])
@pytest.mark.parametrize("method", ["mgda", "pcgrad"])
def test_the_graph_is_freed_when_nothing_else_needs_it(method, mode):
    net = Net()
    x, ys = data()
    losses, z = net.losses(x, ys)
    features = z if mode == "representation" else None
    backward(losses, net.shared(), method, mode=mode, features=features, task_params=[], seed=0)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        sum(losses).backward()  # as after Tensor.backward(): the buffers are freed


def test_retain_graph_keeps_it():
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    backward(losses, net.shared(), "mgda", task_params=[], retain_graph=True)
    sum(losses).backward()  # would raise if the graph had been freed


class Detached(Net):
    """Task 1's loss does not depend on the trunk: its shared gradient is zero."""

    def losses(self, x, ys):
        losses, z = super().losses(x, ys)
        head = self.heads[1]
        losses[1] = ((head(torch.zeros_like(z)).squeeze(-1) - ys[1]) ** 2).mean()
        return losses, z


@pytest.mark.parametrize("method", ["mgda", "pcgrad", "mean"])
def test_a_task_that_never_reaches_the_shared_parameters_is_named_once(method):
    net = Detached()
    x, ys = data()
    agg = Aggregator(method, seed=0)
    with pytest.warns(RuntimeWarning, match=r"task 1 .* zero gradient") as caught:
        for _ in range(3):
            net.zero_grad()
            losses, _ = net.losses(x, ys)
            agg.backward(losses, net.shared())
    assert len([w for w in caught if "task 1" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a healthy model warns nothing
        net = Net()
        losses, _ = net.losses(x, ys)
        Aggregator(method, seed=0).backward(losses, net.shared())


def corruptions(state):
    """One malformed copy of an Aggregator state per kind of damage."""
    bad_rng = {**state["rng"], "state": {**state["rng"]["state"], "inc": 2}}
    method_state = dict(state["method_state"])
    method_state["targets"] = np.full((3, 3), np.nan)
    yield "missing", {k: v for k, v in state.items() if k != "steps"}, "missing"
    yield "unknown", {**state, "extra": 1}, "unknown"
    yield "steps", {**state, "steps": -1}, r"state\['steps'\]"
    yield "rng", {**state, "rng": bad_rng}, r"state\['rng'\]"
    yield "method_state", {**state, "method_state": method_state}, r"targets"


@pytest.mark.parametrize("given", [False, True])
def test_a_malformed_aggregator_state_changes_nothing(given):
    net = Net()
    x, ys = data()
    agg = Aggregator(solvers.GradVac(3, seed=0) if given else "gradvac", seed=0)
    for _ in range(2):
        net.zero_grad()
        losses, _ = net.losses(x, ys)
        agg.backward(losses, net.shared())
    before = agg.state_dict()
    for name, broken, match in corruptions(agg.state_dict()):
        with pytest.raises(ValueError, match=match):
            agg.load_state_dict(broken)
        after = agg.state_dict()
        assert after["steps"] == before["steps"] and after["rng"] == before["rng"], name
        np.testing.assert_array_equal(
            after["method_state"]["targets"], before["method_state"]["targets"]
        )
