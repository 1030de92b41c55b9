"""Methods handed to the adapter as objects or plain functions work as names do."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import solvers, state, weighting  # noqa: E402
from paretomtl.adapters.torch import Aggregator, backward  # noqa: E402
from tests.adapters.test_torch import Net, data, explicit_jacobian, flat_grad  # noqa: E402


def one_step(method, **kwargs):
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    J = explicit_jacobian(losses, net.shared())
    info = Aggregator(method, **kwargs).backward(losses, net.shared())
    return info, J, flat_grad(net.shared())


def test_a_solver_object_equals_the_name_with_options():
    by_name, J, d_name = one_step("pcgrad", seed=4, options={"reduction": "mean"})
    by_object, _, d_object = one_step(solvers.method("pcgrad", reduction="mean", seed=4))
    np.testing.assert_array_equal(by_object.weights, by_name.weights)
    np.testing.assert_array_equal(d_object, d_name)
    np.testing.assert_allclose(d_object, by_object.weights @ J, rtol=1e-10, atol=1e-14)
    assert by_object.method == "pcgrad"


def test_a_plain_function_of_the_gram_matrix_is_a_method():
    def inverse_norms(gram):  # the user's own method: w_i = 1 / ||g_i||
        return 1.0 / np.sqrt(np.diagonal(gram))

    info, J, d = one_step(inverse_norms)
    np.testing.assert_allclose(info.weights, 1.0 / np.linalg.norm(J, axis=1), rtol=1e-10)
    np.testing.assert_allclose(d, info.weights @ J, rtol=1e-10, atol=1e-14)
    assert info.method == "inverse_norms" and info.result.method == "inverse_norms"
    reference, _, _ = one_step("gradient-normalization")
    np.testing.assert_allclose(info.weights, reference.weights, rtol=1e-12)


def test_a_function_that_reads_the_losses_gets_them():
    seen = {}

    def by_loss(gram, losses):
        seen["losses"] = losses
        return losses / losses.sum()

    info, _, _ = one_step(by_loss)
    np.testing.assert_array_equal(seen["losses"], info.losses)
    np.testing.assert_allclose(info.weights, info.losses / info.losses.sum())


@pytest.mark.parametrize("bad", [np.ones(2), np.array([1.0, np.nan, 1.0]), "weights"])
def test_a_function_returning_bad_weights_is_refused_by_name(bad):
    def broken(gram):
        return bad

    with pytest.raises(ValueError, match="'broken' must return K = 3 finite weights"):
        one_step(broken)


def test_stateful_objects_keep_their_memory_and_checkpoint():
    gv = solvers.GradVac(3, beta=0.5, seed=1)
    agg = Aggregator(gv)
    net = Net()
    x, ys = data()
    for _ in range(3):
        net.zero_grad()
        losses, _ = net.losses(x, ys)
        agg.backward(losses, net.shared())
    assert agg.method_state is gv and gv.step == 3
    state = agg.state_dict()
    twin = Aggregator(solvers.GradVac(3, beta=0.5, seed=99))
    twin.load_state_dict(state)
    np.testing.assert_array_equal(twin.method_state.targets, gv.targets)
    agg.reset()
    assert gv.step == 0 and not gv.targets.any()


def test_a_loss_weighting_object_is_a_loss_method():
    dwa = weighting.DynamicWeightAverage(3, per="step", temperature=1.0)
    net = Net()
    x, ys = data()
    agg = Aggregator(dwa)
    infos = []
    for _ in range(3):
        net.zero_grad()
        losses, _ = net.losses(x, ys)
        infos.append(agg.backward(losses, net.shared()))
    assert agg.method_state is dwa and dwa.periods == 3
    assert infos[-1].gram is None  # no per-task gradients were formed
    np.testing.assert_allclose(infos[-1].weights, [1.0, 1.0, 1.0])  # same losses: ratio 1


def test_a_gradnorm_object_needs_its_layer():
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    with pytest.raises(ValueError, match="gradnorm needs layer="):
        Aggregator(weighting.GradNorm(3)).backward(losses, net.shared())


def test_objects_refuse_options_and_stateful_ones_the_shortcut():
    with pytest.raises(ValueError, match="an object carries its own options"):
        Aggregator(solvers.method("mgda"), options={"method": "exact"})
    with pytest.raises(TypeError, match="method must be a registry name"):
        Aggregator(3.5)
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    with pytest.raises(ValueError, match="keeps state between steps"):
        backward(losses, net.shared(), solvers.GradVac(3))
    with pytest.raises(ValueError, match=r"unknown method 'nope'; gradient methods: .*mgda"):
        Aggregator("nope")


class HalfAndHalf(weighting.LossWeighting):
    """A user's loss weighting: weights 1, then 1/2 for every task after the first step."""

    fields = {"_calls": state.count()}

    def __init__(self, num_tasks):
        super().__init__(num_tasks)
        self.reset()

    def _reset(self):
        self._calls = 0

    def _compute(self, losses):
        self._calls += 1
        return np.full(self.num_tasks, 1.0 if self._calls == 1 else 0.5)


class EveryOther(state.Stateful):
    """A user's stateful gradient method: MGDA on odd steps, the mean on even ones."""

    fields = {"_step": state.count()}

    def __init__(self, num_tasks):
        self.num_tasks = num_tasks
        self.reset()

    def reset(self):
        self._step = 0

    def __call__(self, gram):
        self._step += 1
        if self._step % 2:
            return solvers.mgda(gram=gram)
        return np.full(self.num_tasks, 1.0 / self.num_tasks)


def test_user_subclasses_work_where_built_ins_do():
    net = Net()
    x, ys = data()
    for method, kind in ((HalfAndHalf(3), "loss"), (EveryOther(3), "gradient")):
        agg = Aggregator(method)
        infos = []
        for _ in range(3):
            net.zero_grad()
            losses, _ = net.losses(x, ys)
            infos.append(agg.backward(losses, net.shared()))
        assert (infos[0].gram is None) == (kind == "loss")
        twin = Aggregator(type(method)(3))
        twin.load_state_dict(agg.state_dict())
        assert twin.method_state.state_dict()["calls" if kind == "loss" else "step"] == 3
    np.testing.assert_allclose(infos[1].weights, [1 / 3] * 3)
    np.testing.assert_allclose(infos[2].weights, solvers.mgda(gram=infos[2].gram).weights)
