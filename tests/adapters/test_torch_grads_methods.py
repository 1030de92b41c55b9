"""Methods that need the K x M gradients (``needs_grads``) through the torch adapter.

Every registered such method (GradDrop, TrimmedMean, and the stateful ones that track
gradients) and two of a user's own (a function and a stateful object) must write into
``.grad`` exactly what the numpy route gives on the explicitly built Jacobian.
"""

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import solvers, state  # noqa: E402
from paretomtl.adapters.torch import Aggregator, backward  # noqa: E402
from paretomtl.solvers import SolverResult  # noqa: E402
from tests.adapters.test_torch import Net, data, flat_grad  # noqa: E402

GRADS_METHODS = [n for n in solvers.available() if getattr(solvers.get(n), "needs_grads", False)]


def jacobian(losses, params):
    """K x M Jacobian by one plain backward per task, in the parameters' dtype."""
    rows = []
    for loss in losses:
        gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (torch.zeros_like(p) if g is None else g).reshape(-1)
                    for g, p in zip(gs, params, strict=True)
                ]
            )
        )
    return torch.stack(rows).detach().cpu().numpy()


def coordinate_median(grads=None, *, gram=None):
    """A user's K x M method: the coordinate-wise median (no weights)."""
    if grads is None:
        raise ValueError("coordinate_median needs grads")
    J = np.asarray(grads)
    G = J.astype(np.float64) @ J.astype(np.float64).T
    d = np.median(J.astype(np.float64), axis=0).astype(np.result_type(J.dtype, np.float32))
    return SolverResult(weights=None, direction=d, gram=G, method="coordinate-median")


coordinate_median.needs_grads = True


class LossTracker(state.Stateful):
    """A user's stateful K x M method: an EMA of loss-weighted gradients, a random sign."""

    needs_grads = True
    hyperparameters = {"beta": state.real(low=0.0, high=1.0)}
    fields = {
        "_tracked": state.value(lambda x, K, where: None if x is None else np.array(x)),
        "_step": state.count(),
        "_rng": state.generator(),
    }

    def __init__(self, num_tasks, beta=0.5, seed=None):
        self.num_tasks, self.beta = num_tasks, beta
        self._rng = np.random.default_rng(seed)
        self.reset()

    def reset(self):
        self._tracked, self._step = None, 0

    def update(self, grads=None, *, gram=None, losses=None):
        if grads is None:
            raise ValueError("LossTracker needs grads")
        J = np.asarray(grads, dtype=np.float64) * np.asarray(losses)[:, None]
        prev = np.zeros_like(J) if self._tracked is None else self._tracked
        self._tracked = self.beta * prev + (1 - self.beta) * J
        self._step += 1
        sign = self._rng.choice([-1.0, 1.0])
        d = (sign * self._tracked.sum(axis=0)).astype(np.result_type(grads.dtype, np.float32))
        G = np.asarray(grads, dtype=np.float64) @ np.asarray(grads, dtype=np.float64).T
        return SolverResult(weights=None, direction=d, gram=G, method="loss-tracker")

    __call__ = update


def has_seed(obj):
    return "seed" in inspect.signature(obj).parameters


def reference(name, K, seed):
    """The numpy object the adapter should be equivalent to."""
    entry = solvers.info(name)
    options = {"seed": seed} if has_seed(entry.obj) else {}
    if entry.kind == "stateful-gradient":
        return solvers.method(name, num_tasks=K, **options)
    return solvers.method(name, **options)


def call(method, J, gram, losses):
    extra = {"losses": losses} if "losses" in inspect.signature(method).parameters else {}
    return method(J, gram=gram, **extra)


def sgd(net, lr=0.05):
    with torch.no_grad():
        for p in net.parameters():
            if p.grad is not None:
                p -= lr * p.grad


def check_step(info, expected, J, shared, dtype):
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    G = J.astype(float) @ J.astype(float).T
    np.testing.assert_allclose(info.gram, G, rtol=0, atol=tol * np.abs(G).max())
    assert expected.direction.shape == (J.shape[1],)
    scale = np.abs(expected.direction).max() + 1e-300
    np.testing.assert_allclose(flat_grad(shared), expected.direction, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(info.result.direction, expected.direction, rtol=0, atol=tol * scale)
    if expected.weights is None:
        assert info.weights is None
    else:
        np.testing.assert_allclose(info.weights, expected.weights, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode", ["autograd", "batched"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", GRADS_METHODS)
def test_registered_methods_equal_the_numpy_route(name, dtype, mode):
    net = Net(dtype=dtype)
    x, ys = data(dtype=dtype)
    agg = Aggregator(name, mode=mode, seed=5)
    ref = reference(name, 3, seed=5)
    for step in range(2):
        net.zero_grad()
        losses, _ = net.losses(x * (1 + 0.1 * step), ys)
        J = jacobian(losses, net.shared())
        info = agg.backward(losses, net.shared())
        assert J.dtype == np.dtype(str(dtype).removeprefix("torch."))
        expected = call(ref, J, info.gram, info.losses)
        check_step(info, expected, J, net.shared(), dtype)
        assert net.unused.weight.grad is None or not net.unused.weight.grad.any()
        assert all(h.weight.grad is not None for h in net.heads)  # ordinary backward
        sgd(net)


@pytest.mark.parametrize("mode", ["autograd", "batched"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_users_function_and_stateful_object_get_the_gradients(dtype, mode):
    x, ys = data(dtype=dtype)
    for make in (lambda: coordinate_median, lambda: LossTracker(3, seed=2)):
        net = Net(dtype=dtype)
        agg, ref = Aggregator(make(), mode=mode), make()
        for _ in range(3):
            net.zero_grad()
            losses, _ = net.losses(x, ys)
            J = jacobian(losses, net.shared())
            info = agg.backward(losses, net.shared())
            check_step(info, call(ref, J, info.gram, info.losses), J, net.shared(), dtype)
            sgd(net)
        assert info.method in ("coordinate_median", "LossTracker")


def test_an_object_equals_the_name_with_the_same_seed():
    x, ys = data()
    grads = []
    for method, kwargs in (("graddrop", {"seed": 4}), (solvers.method("graddrop", seed=4), {})):
        net = Net()
        losses, _ = net.losses(x, ys)
        Aggregator(method, **kwargs).backward(losses, net.shared())
        grads.append(flat_grad(net.shared()))
    np.testing.assert_array_equal(grads[0], grads[1])


@pytest.mark.parametrize("method", ["graddrop", "trimmed-mean", coordinate_median])
def test_representation_mode_gives_the_method_the_feature_gradients(method):
    net = Net()
    x, ys = data()
    losses, z = net.losses(x, ys)
    trunk = list(net.trunk.parameters())
    Jz = jacobian(losses, [z])
    info = backward(losses, trunk, method, mode="representation", features=z, seed=6)
    if method == "graddrop":
        expected = solvers.graddrop(Jz, seed=6).direction
    elif method == "trimmed-mean":
        expected = solvers.trimmed_mean(Jz).direction
    else:
        expected = coordinate_median(Jz).direction
    np.testing.assert_allclose(info.result.direction, expected, rtol=1e-12, atol=1e-15)
    # The trunk gets the backward of z with that direction as its gradient.
    losses, z = net.losses(x, ys)
    want = torch.autograd.grad(z, trunk, grad_outputs=torch.from_numpy(expected).reshape(z.shape))
    got = [p.grad for p in trunk]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)
    assert all(h.weight.grad is not None for h in net.heads)


@pytest.mark.parametrize("method", ["trimmed-mean", "tracker"])
def test_gradscaler_method_sees_unscaled_gradients_and_grad_stays_scaled(method):
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    net = Net(dtype=torch.float32)
    x, ys = data(dtype=torch.float32)
    losses, _ = net.losses(x, ys)
    J = jacobian(losses, net.shared())
    obj = LossTracker(3, seed=1) if method == "tracker" else method
    info = Aggregator(obj).backward(losses, net.shared(), scaler=scaler)
    ref = LossTracker(3, seed=1) if method == "tracker" else solvers.method(method)
    expected = call(ref, J, None, info.losses).direction
    np.testing.assert_allclose(info.losses, [float(v.detach()) for v in losses], rtol=1e-6)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(info.result.direction, expected, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(flat_grad(net.shared()) / 1024.0, expected, atol=1e-6 * scale)


@pytest.mark.parametrize(
    ("dtypes", "received"),
    [
        ((torch.float16,), np.float16),
        ((torch.bfloat16,), np.float32),
        ((torch.float32, torch.float64), np.float64),
    ],
)
def test_the_method_receives_the_parameters_dtype(dtypes, received):
    seen = {}

    def spy(grads=None, *, gram=None):
        seen["dtype"], seen["shape"] = grads.dtype, grads.shape
        return coordinate_median(grads, gram=gram)

    spy.needs_grads = True
    a = torch.randn(4, 3).to(dtypes[0]).requires_grad_()
    b = torch.randn(5).to(dtypes[-1]).requires_grad_()
    losses = [(a.sum() * k + (b * b).sum() * (k - 1)).float() for k in range(3)]
    info = backward(losses, [a, b], spy)
    assert seen == {"dtype": np.dtype(received), "shape": (3, 17)}
    assert a.grad.dtype == dtypes[0] and b.grad.dtype == dtypes[-1]
    np.testing.assert_allclose(
        a.grad.double().numpy().ravel(), info.result.direction[:12].astype(float), rtol=1e-2
    )


RESUMABLE = ["graddrop"] + [n for n in GRADS_METHODS if solvers.info(n).kind != "gradient"]


@pytest.mark.parametrize("name", RESUMABLE)
def test_state_round_trip_is_bit_identical(name):  # GradDrop: the generator's state
    x, ys = data()

    def run(agg, net, steps):
        for _ in range(steps):
            net.zero_grad()
            losses, _ = net.losses(x, ys)
            agg.backward(losses, net.shared())
            sgd(net)

    straight_net = Net()
    run(Aggregator(name, seed=11), straight_net, 5)
    net, first = Net(), Aggregator(name, seed=11)
    run(first, net, 2)
    resumed = Aggregator(name, seed=999)
    resumed.load_state_dict(first.state_dict())
    run(resumed, net, 3)
    for p, q in zip(net.parameters(), straight_net.parameters(), strict=True):
        assert p.detach().numpy().tobytes() == q.detach().numpy().tobytes()


def test_a_users_stateful_object_resumes_bit_for_bit():
    x, ys = data()

    def run(agg, net, steps):
        for _ in range(steps):
            net.zero_grad()
            losses, _ = net.losses(x, ys)
            agg.backward(losses, net.shared())
            sgd(net)

    straight_net = Net()
    run(Aggregator(LossTracker(3, seed=3)), straight_net, 4)
    net, first = Net(), Aggregator(LossTracker(3, seed=3))
    run(first, net, 2)
    resumed = Aggregator(LossTracker(3, seed=99))
    resumed.load_state_dict(first.state_dict())
    run(resumed, net, 2)
    for p, q in zip(net.parameters(), straight_net.parameters(), strict=True):
        assert p.detach().numpy().tobytes() == q.detach().numpy().tobytes()


@pytest.mark.parametrize(
    "returned",
    [np.ones(3), "weights", np.ones(5), np.array([np.nan] * 262)],
    ids=["weights", "string", "short", "nan"],
)
def test_a_bad_direction_is_refused_by_name_and_changes_no_grad(returned):
    def broken(grads=None, *, gram=None):
        if isinstance(returned, np.ndarray) and returned.shape == (3,):
            return returned  # weights where a direction is needed
        return SolverResult(weights=None, direction=returned, gram=gram, method="broken")

    broken.needs_grads = True
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    with pytest.raises(ValueError, match="'broken'"):
        Aggregator(broken).backward(losses, net.shared())
    assert all(p.grad is None for p in net.shared())


def test_the_methods_are_built_for_the_k_by_m_path():
    for name in GRADS_METHODS:
        assert Aggregator(name).route.needs_grads
    assert {"graddrop", "trimmed-mean"} <= set(GRADS_METHODS)
    assert not Aggregator("mgda").route.needs_grads
    assert Aggregator(coordinate_median).route.needs_grads
    assert Aggregator(solvers.method("trimmed-mean", trim_number=0)).route.needs_grads
