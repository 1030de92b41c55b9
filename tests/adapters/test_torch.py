"""The torch adapter against the numpy solvers on an explicitly built Jacobian."""

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import solvers  # noqa: E402
from paretomtl.adapters.torch import Aggregator, backward, gram_matrix  # noqa: E402

# Gram-space methods; those that need the K x M gradients (needs_grads) are covered by
# tests/adapters/test_torch_grads_methods.py.
GRADIENT_METHODS = [
    n for n in solvers.available("gradient") if not getattr(solvers.get(n), "needs_grads", False)
]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class Net(torch.nn.Module):
    """A shared trunk and one head per task; one head reaches only part of the trunk."""

    def __init__(self, tasks=3, dtype=torch.float64, device="cpu"):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8), torch.nn.Tanh()
        )
        self.unused = torch.nn.Linear(5, 5)  # shared by declaration, reached by no task
        self.heads = torch.nn.ModuleList(torch.nn.Linear(8, 1) for _ in range(tasks))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.to(dtype=dtype, device=device)

    def shared(self):
        return list(self.trunk.parameters()) + list(self.unused.parameters())

    def losses(self, x, ys):
        z = self.trunk(x)
        return [
            ((h(z).squeeze(-1) - y) ** 2).mean() for h, y in zip(self.heads, ys, strict=True)
        ], z


def data(tasks=3, n=32, dtype=torch.float64, device="cpu", seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g).to(dtype=dtype, device=device)
    ys = [
        (torch.sin(x[:, 0] * (k + 1)) * (-1) ** k + 0.1 * k).to(dtype=dtype, device=device)
        for k in range(tasks)
    ]
    return x, ys


def explicit_jacobian(losses, params):
    """K x M Jacobian by one plain backward per task (unused parameters as zeros)."""
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
    return torch.stack(rows).detach().cpu().double().numpy()


def flat_grad(params):
    return (
        torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in params])
        .detach()
        .cpu()
        .double()
        .numpy()
    )


def method_options(name):
    options = {"pareto-step": {"lower_bounds": 0.1}}.get(name, {})
    if "seed" in inspect.signature(solvers.get(name)).parameters:
        options["seed"] = 3  # random methods (PCGrad's orders, random weights)
    return options


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", GRADIENT_METHODS)
@pytest.mark.parametrize("mode", ["autograd", "batched"])
def test_combined_gradient_equals_numpy_solver(method, dtype, mode, device):
    net = Net(dtype=dtype, device=device)
    x, ys = data(dtype=dtype, device=device)
    losses, _ = net.losses(x, ys)
    shared = net.shared()
    J = explicit_jacobian(losses, shared)
    opts = method_options(method)
    values = np.array([float(loss.detach()) for loss in losses])  # read only by EPO
    expected = solvers.method(method, **opts)(J, losses=values)
    seed = opts.pop("seed", None)
    info = backward(losses, shared, method, mode=mode, seed=seed, options=opts)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(info.gram, J @ J.T, rtol=tol, atol=tol * np.abs(J @ J.T).max())
    np.testing.assert_allclose(info.weights, expected.weights, rtol=1e-6, atol=1e-6)
    d = flat_grad(shared)
    scale = np.abs(expected.direction).max()
    np.testing.assert_allclose(d, expected.direction, rtol=0, atol=max(tol, 1e-6) * scale)
    # The unused shared layer: zero columns, .grad left as autograd would (None or 0).
    assert net.unused.weight.grad is None or not net.unused.weight.grad.any()
    # Task-specific heads got their ordinary gradients.
    for k, head in enumerate(net.heads):
        (g,) = torch.autograd.grad(
            net.losses(x, ys)[0][k], head.weight, retain_graph=False, allow_unused=False
        )
        torch.testing.assert_close(head.weight.grad, g)
    # Cosines are the Gram's.
    Gd = np.sqrt(np.diagonal(info.gram))
    np.testing.assert_allclose(info.cosines, info.gram / np.outer(Gd, Gd), atol=1e-12)


def test_grad_accumulates_like_autograd():
    net = Net()
    x, ys = data()
    shared = net.shared()
    losses, _ = net.losses(x, ys)
    backward(losses, shared, "mgda")
    first = flat_grad(shared)
    losses, _ = net.losses(x, ys)
    backward(losses, shared, "mgda")
    np.testing.assert_allclose(flat_grad(shared), 2 * first, rtol=1e-12)


def test_representation_mode_combines_trunk_gradients_with_feature_weights():
    net = Net()
    x, ys = data()
    losses, z = net.losses(x, ys)
    trunk = list(net.trunk.parameters())
    J_trunk = explicit_jacobian(losses, trunk)
    J_z = explicit_jacobian(losses, [z])
    info = backward(losses, trunk, "mgda", mode="representation", features=z)
    # The weights are MGDA's on the feature Jacobian (Sener & Koltun's MGDA-UB) ...
    np.testing.assert_allclose(info.weights, solvers.mgda(J_z).weights, atol=1e-8)
    # ... and the trunk receives exactly that combination of its task gradients.
    np.testing.assert_allclose(flat_grad(trunk), info.weights @ J_trunk, rtol=1e-10, atol=1e-12)
    assert all(h.weight.grad is not None for h in net.heads)


def test_batched_falls_back_with_a_warning(monkeypatch):
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    real_grad = torch.autograd.grad

    def refuse_batched(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("vmap: this operation is not supported")
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", refuse_batched)
    with pytest.warns(RuntimeWarning, match="falling back"):
        info = backward(losses, net.shared(), "mgda", mode="batched")
    assert np.isfinite(info.weights).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_raises_naming_task_and_leaves_grad(bad):
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    losses[1] = losses[1] * bad
    with pytest.raises(ValueError, match="task 1"):
        backward(losses, net.shared(), "mgda")
    assert all(p.grad is None for p in net.parameters())
    info = backward(losses, net.shared(), "mgda", on_nonfinite="skip")
    assert info.skipped and "task 1" in info.reason
    assert all(p.grad is None for p in net.parameters())


def test_non_finite_gradient_raises_naming_task():
    net = Net()
    x, ys = data()
    losses, z = net.losses(x, ys)
    # A finite loss whose gradient is NaN: sqrt at 0 has an infinite derivative.
    losses[2] = losses[2] + torch.sqrt(z[:, 0] * 0).sum()
    with pytest.raises(ValueError, match="task 2"):
        backward(losses, net.shared(), "pcgrad", seed=0)
    assert all(p.grad is None for p in net.parameters())


def test_gradscaler_grad_is_scaled_and_inf_skips():
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    net = Net(dtype=torch.float32)
    x, ys = data(dtype=torch.float32)
    shared = net.shared()
    losses, _ = net.losses(x, ys)
    J = explicit_jacobian(losses, shared)
    info = backward(losses, shared, "mgda", scaler=scaler)
    np.testing.assert_allclose(info.gram, J @ J.T, rtol=1e-5)
    np.testing.assert_allclose(info.weights, solvers.mgda(J).weights, atol=1e-5)
    np.testing.assert_allclose(
        flat_grad(shared) / 1024.0, solvers.mgda(J).direction, rtol=1e-4, atol=1e-6
    )
    # A non-finite loss under a scaler: inf in .grad, so scaler.step skips the step.
    net.zero_grad()
    losses, _ = net.losses(x, ys)
    losses[0] = losses[0] * float("inf")
    info = backward(losses, shared, "mgda", scaler=scaler)
    assert info.skipped
    assert torch.isinf(net.trunk[0].weight.grad).all()


def test_autocast_bfloat16_gram_is_accumulated_in_float64():
    net = Net(dtype=torch.float32)
    x, ys = data(dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses, _ = net.losses(x, ys)
        info = backward(losses, net.shared(), "mgda")
    assert info.gram.dtype == np.float64 and np.isfinite(info.gram).all()
    assert abs(info.weights.sum() - 1) < 1e-12


def test_gram_matrix_mixed_dtypes_and_none():
    J1 = torch.randn(3, 4, 5, dtype=torch.float32)
    J2 = torch.randn(3, 7, dtype=torch.float64)
    J3 = torch.randn(3, 2).to(torch.bfloat16)
    G = gram_matrix([J1, None, J2, J3], 3)
    ref = sum(
        J.reshape(3, -1).double().numpy() @ J.reshape(3, -1).double().numpy().T
        for J in (J1, J2, J3)
    )
    np.testing.assert_allclose(G, ref, rtol=1e-12)


@pytest.mark.parametrize("method", ["mgda", "pcgrad", "pareto-step"])
def test_short_training_run_improves_every_task(method):
    torch.manual_seed(0)
    net = Net(tasks=3, dtype=torch.float32)
    x, ys = data(tasks=3, n=128, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    agg = Aggregator(
        method, seed=0, options={"lower_bounds": 0.1} if method == "pareto-step" else None
    )
    with torch.no_grad():
        start = [float(v) for v in net.losses(x, ys)[0]]
    for _ in range(150):
        opt.zero_grad()
        losses, _ = net.losses(x, ys)
        agg.backward(losses, net.shared())
        opt.step()
    with torch.no_grad():
        end = [float(v) for v in net.losses(x, ys)[0]]
    assert all(e < 0.7 * s for s, e in zip(start, end, strict=True)), (start, end)


def test_pcgrad_state_round_trip_is_bit_identical():
    def run(steps, agg, net, x, ys):
        for _ in range(steps):
            net.zero_grad()
            losses, _ = net.losses(x, ys)
            agg.backward(losses, net.shared())
        return flat_grad(net.shared())

    x, ys = data()
    straight = run(5, Aggregator("pcgrad", seed=11), Net(), x, ys)
    agg = Aggregator("pcgrad", seed=11)
    net = Net()
    run(2, agg, net, x, ys)
    resumed = Aggregator("pcgrad", seed=999)
    resumed.load_state_dict(agg.state_dict())
    got = run(3, resumed, net, x, ys)
    assert got.tobytes() == straight.tobytes()


def test_gradnorm_end_to_end_matches_numpy_route():
    net = Net(tasks=2)
    x, ys = data(tasks=2)
    layer = list(net.trunk[2].parameters())  # the last shared layer W
    agg = Aggregator("gradnorm", options={"alpha": 1.5, "lr": 0.05})
    reference = solvers.GradNorm(2, alpha=1.5, lr=0.05)
    applied = []
    for _ in range(4):
        net.zero_grad()
        losses, _ = net.losses(x, ys)
        Jw = explicit_jacobian(losses, layer)
        norms = np.linalg.norm(Jw, axis=1)
        values = np.array([float(v.detach()) for v in losses])
        w_before = reference.weights
        info = agg.backward(losses, net.shared(), layer=layer)
        applied.append(info.weights)
        np.testing.assert_allclose(info.weights, w_before, rtol=1e-14)
        reference.update(values, norms)
        np.testing.assert_allclose(agg.method_state.weights, reference.weights, rtol=1e-10)
    # The time average of the weights the steps applied (GradNorm's section 5.4).
    np.testing.assert_allclose(
        agg.method_state.average_weights(), np.mean(applied, axis=0), rtol=1e-14
    )
    # The backward was of sum_i w_i L_i: the trunk's gradient is that weighted sum.
    net.zero_grad()
    losses, _ = net.losses(x, ys)
    J = explicit_jacobian(losses, net.shared())
    w = agg.method_state.weights
    agg.backward(losses, net.shared(), layer=layer)
    np.testing.assert_allclose(flat_grad(net.shared()), w @ J, rtol=1e-10, atol=1e-14)
    # State round trip.
    clone = Aggregator("gradnorm", options={"alpha": 1.5, "lr": 0.05})
    clone.load_state_dict(agg.state_dict())
    assert clone.method_state.weights.tobytes() == agg.method_state.weights.tobytes()


def test_stateful_method_needs_the_object_form_and_layer():
    net = Net(tasks=2)
    x, ys = data(tasks=2)
    losses, _ = net.losses(x, ys)
    with pytest.raises(ValueError, match="Aggregator"):
        backward(losses, net.shared(), "gradnorm")
    with pytest.raises(ValueError, match="layer="):
        Aggregator("gradnorm").backward(losses, net.shared())


def test_bad_arguments():
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    with pytest.raises(ValueError, match="unknown method"):
        backward(losses, net.shared(), "nope")
    with pytest.raises(ValueError, match="mode"):
        backward(losses, net.shared(), "mgda", mode="fast")
    with pytest.raises(ValueError, match="losses is empty"):
        backward([], net.shared(), "mgda")
    with pytest.raises(ValueError, match="shared_params is empty"):
        backward(losses, [], "mgda")
    with pytest.raises(ValueError, match="features="):
        backward(losses, net.shared(), "mgda", mode="representation")
    with pytest.raises(ValueError, match=r"losses\[0\]"):
        backward([torch.ones(2, requires_grad=True)], net.shared(), "mgda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_half_precision_gram_matches_float64():
    net = Net(dtype=torch.float16, device="cuda")
    x, ys = data(dtype=torch.float16, device="cuda")
    losses, _ = net.losses(x, ys)
    shared = net.shared()
    J = explicit_jacobian(losses, shared)
    info = backward(losses, shared, "mgda", gram_precision="float64")
    np.testing.assert_allclose(info.gram, J @ J.T, rtol=1e-9, atol=1e-9 * np.abs(J @ J.T).max())


def test_conflict_tracking_in_info_matches_numpy_tracker_and_resumes():
    from paretomtl.solvers import ConflictTracker

    net = Net()
    x, ys = data()
    agg = Aggregator("mgda", track_conflicts={"beta1": 0.5})
    reference = ConflictTracker(3, beta1=0.5)
    for step in range(3):
        net.zero_grad()
        losses, _ = net.losses(x * (1 + 0.2 * step), ys)
        J = explicit_jacobian(losses, net.shared())
        expected = reference.update(J)
        info = agg.backward(losses, net.shared())
        np.testing.assert_allclose(info.conflicts.mean_cosine, expected.mean_cosine, atol=1e-12)
        np.testing.assert_allclose(
            info.conflicts.conflict_frequency, expected.conflict_frequency, atol=1e-12
        )
        assert info.conflicts.step == step + 1
    clone = Aggregator("mgda", track_conflicts={"beta1": 0.5})
    clone.load_state_dict(agg.state_dict())
    losses, _ = net.losses(x, ys)
    a = agg.backward(losses, net.shared(), retain_graph=True).conflicts
    b = clone.backward(losses, net.shared()).conflicts
    assert a.mean_cosine.tobytes() == b.mean_cosine.tobytes()
    with pytest.raises(ValueError, match="track_conflicts"):
        Aggregator("dwa", track_conflicts=True)


def test_blockwise_gram_precision_is_close_to_float64():
    rng = torch.Generator().manual_seed(0)
    jac = [torch.randn(4, 70, 130, generator=rng), torch.randn(4, 9000, generator=rng), None]
    jac.append(torch.randn(4, 33, generator=rng).to(torch.bfloat16))
    exact = gram_matrix(jac, 4)
    fast = gram_matrix(jac, 4, "blockwise")
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-6 * np.abs(exact).max())
    before = torch.get_float32_matmul_precision()
    gram_matrix(jac, 4, "blockwise")
    assert torch.get_float32_matmul_precision() == before
    with pytest.raises(ValueError, match="precision"):
        gram_matrix(jac, 4, "float16")
    net = Net(dtype=torch.float32)
    x, ys = data(dtype=torch.float32)
    losses, _ = net.losses(x, ys)
    J = explicit_jacobian(losses, net.shared())
    info = Aggregator("mgda", gram_precision="blockwise").backward(losses, net.shared())
    np.testing.assert_allclose(info.weights, solvers.mgda(J).weights, atol=1e-5)
    with pytest.raises(ValueError, match="gram_precision"):
        Aggregator("mgda", gram_precision="half")


@pytest.mark.parametrize("mode", ["autograd", "batched"])
def test_epo_gets_the_losses_and_matches_the_numpy_solver(mode):
    net = Net()
    x, ys = data()
    losses, _ = net.losses(x, ys)
    shared = net.shared()
    J = explicit_jacobian(losses, shared)
    values = np.array([float(loss.detach()) for loss in losses])
    r = np.array([1.0, 2.0, 0.5])[: len(values)]
    expected = solvers.epo(J, losses=values, preference=r)
    info = backward(losses, shared, "epo", mode=mode, options={"preference": r})
    np.testing.assert_allclose(info.weights, expected.weights, atol=1e-6)
    d = flat_grad(shared)
    np.testing.assert_allclose(d, expected.direction, atol=1e-6 * np.abs(expected.direction).max())
