"""Uncertainty weighting through the adapter: log-variances that the user's optimizer trains.

``Aggregator("uncertainty", options={"task_types": ...})`` builds the log-variances s as
torch parameters (``agg.parameters()``). Checked against Kendall et al.'s total
``sum_i c_i exp(-s_i) L_i + s_i / 2`` differentiated by torch autograd on its own
(closed form, not the adapter's route): the network's gradient and s's gradient, then
the user's SGD and Adam steps on s, a GradScaler, checkpoints through ``torch.save`` /
``torch.load(weights_only=True)``, and the errors and warnings that lead users there.
"""

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import weighting  # noqa: E402
from paretomtl.adapters.torch import Aggregator, UncertaintyWeightingLoss  # noqa: E402
from paretomtl.adapters.torch._uncertainty import UNTRAINED_WARNING  # noqa: E402

TYPES = ("regression", "classification", "regression")
C = np.array([0.5, 1.0, 0.5])  # the paper's factors: 1/2 regression (eq. 7), 1 classification


class Net(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.trunk = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh())
        self.heads = torch.nn.ModuleList(torch.nn.Linear(6, 1) for _ in TYPES)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.double()

    def losses(self, t):
        g = torch.Generator().manual_seed(10 + t)
        x = torch.randn(12, 4, generator=g, dtype=torch.float64)
        z = self.trunk(x)
        return [
            ((h(z).squeeze(-1) - (k + 1) * x[:, k]) ** 2).mean() for k, h in enumerate(self.heads)
        ]


def flat_grads(params):
    return torch.cat([p.grad.reshape(-1) for p in params]).numpy().copy()


def paper_total(losses, s):
    """Kendall et al.'s total, written out: sum_i c_i exp(-s_i) L_i + s_i / 2."""
    return sum(c * torch.exp(-s_i) * L + 0.5 * s_i for c, s_i, L in zip(C, s, losses, strict=True))


def test_gradients_are_the_papers_total_differentiated():
    net, ref = Net(), Net()
    agg = Aggregator("uncertainty", options={"task_types": TYPES, "initial_log_variances": 0.3})
    (s,) = list(agg.parameters())
    assert s is agg.method_state.log_variances and s.dtype == torch.float64
    info = agg.backward(net.losses(0), net.trunk.parameters())
    # The independent route: autograd of the paper's formula with s as a leaf.
    s_ref = torch.full((3,), 0.3, dtype=torch.float64, requires_grad=True)
    paper_total(ref.losses(0), s_ref).backward()
    np.testing.assert_allclose(info.weights, C * np.exp(-0.3), rtol=1e-15)
    np.testing.assert_allclose(s.grad.numpy(), s_ref.grad.numpy(), rtol=1e-13, atol=1e-15)
    for mine, theirs in ((net.trunk, ref.trunk), (net.heads, ref.heads)):
        np.testing.assert_allclose(
            flat_grads(mine.parameters()), flat_grads(theirs.parameters()), rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_users_optimizer_trains_the_log_variances(optimizer):
    make = {
        "sgd": lambda params: torch.optim.SGD(params, lr=0.1),
        "adam": lambda params: torch.optim.Adam(params, lr=0.05),
    }[optimizer]
    net, ref = Net(), Net()
    agg = Aggregator("uncertainty", options={"task_types": TYPES})
    opt = make([*net.parameters(), *agg.parameters()])
    s_ref = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt_ref = make([*ref.parameters(), s_ref])
    for t in range(6):
        opt.zero_grad()
        before = agg.method_state.log_variances.detach().clone()
        agg.backward(net.losses(t), net.trunk.parameters())
        opt.step()
        opt_ref.zero_grad()
        paper_total(ref.losses(t), s_ref).backward()
        opt_ref.step()
        s = agg.method_state.log_variances.detach()
        assert not torch.equal(s, before)  # it trains
        np.testing.assert_allclose(s.numpy(), s_ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    flat_ref = torch.cat([p.detach().reshape(-1) for p in ref.parameters()])
    np.testing.assert_allclose(flat.numpy(), flat_ref.numpy(), rtol=1e-10, atol=1e-12)
    # One SGD step by hand, in closed form: s <- s - lr (1/2 - c exp(-s) L).
    if optimizer == "sgd":
        opt.zero_grad()
        s0 = agg.method_state.log_variances.detach().numpy().copy()
        info = agg.backward(net.losses(9), net.trunk.parameters())
        opt.step()
        expected = s0 - 0.1 * (0.5 - C * np.exp(-s0) * info.losses)
        np.testing.assert_allclose(
            agg.method_state.log_variances.detach().numpy(), expected, rtol=1e-13
        )


def test_a_grad_scaler_scales_the_log_variances_gradient_too():
    net = Net()
    agg = Aggregator("uncertainty", options={"task_types": TYPES})
    opt = torch.optim.SGD([*net.parameters(), *agg.parameters()], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    info = agg.backward(net.losses(0), net.trunk.parameters(), scaler=scaler)
    s = agg.method_state.log_variances
    grad = 0.5 - C * info.losses  # at s = 0
    np.testing.assert_allclose(s.grad.numpy(), 2.0**10 * grad, rtol=1e-13)
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(s.detach().numpy(), -0.1 * grad, rtol=1e-13)


def test_state_dict_round_trips_through_torch_and_resumes_bit_for_bit():
    def train(agg, net, opt, start, stop):
        out = []
        for t in range(start, stop):
            opt.zero_grad()
            out.append(agg.backward(net.losses(t), net.trunk.parameters()).weights.tobytes())
            opt.step()
        return out

    def fresh():
        net = Net()
        agg = Aggregator("uncertainty", options={"task_types": TYPES})
        return agg, net, torch.optim.Adam([*net.parameters(), *agg.parameters()], lr=0.05)

    straight = train(*fresh(), 0, 6)
    agg, net, opt = fresh()
    train(agg, net, opt, 0, 3)
    buffer = io.BytesIO()
    torch.save({"agg": agg.state_dict(), "net": net.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    agg2, net2, opt2 = fresh()
    param = agg2.method_state.log_variances
    net2.load_state_dict(checkpoint["net"])
    agg2.load_state_dict(checkpoint["agg"])
    opt2.load_state_dict(checkpoint["opt"])
    assert agg2.method_state.log_variances is param  # loaded in place: the optimizer's own
    assert train(agg2, net2, opt2, 3, 6) == straight[3:]


def test_a_bad_state_is_refused_by_name_and_changes_nothing():
    agg = Aggregator("uncertainty", options={"task_types": TYPES, "initial_log_variances": 0.2})
    good = agg.state_dict()
    before = agg.method_state.log_variances.detach().clone()
    s = good["method_state"]["log_variances"]
    for bad, name in (
        (
            {**good["method_state"], "log_variances": torch.full((3,), float("nan"))},
            "log_variances",
        ),
        ({**good["method_state"], "log_variances": s[:2]}, "log_variances"),
        ({**good["method_state"], "log_variances": [0.0, 0.0, 0.0]}, "log_variances"),
        ({**good["method_state"], "factors": torch.tensor([1.0, 1.0, 1.0])}, "factors"),
        ({"log_variances": s}, "factors"),
        ({**good["method_state"], "extra": s}, "extra"),
    ):
        with pytest.raises(ValueError, match=name):
            agg.load_state_dict({**good, "method_state": bad})
        assert torch.equal(agg.method_state.log_variances.detach(), before)
    other = Aggregator("uncertainty", options={"task_types": ["classification"] * 3})
    with pytest.raises(ValueError, match="task types"):
        other.load_state_dict(good)


def test_task_types_are_required_and_options_of_the_numpy_route_refused():
    with pytest.raises(ValueError, match="task_types"):
        Aggregator("uncertainty")
    with pytest.raises(ValueError, match="task_types"):
        Aggregator("uncertainty", num_tasks=2)
    with pytest.raises(ValueError, match="num_tasks"):
        Aggregator("uncertainty", options={"task_types": "regression"})  # how many tasks?
    with pytest.raises(ValueError, match=r"\['lr', 'optimizer'\] do not apply"):
        Aggregator(
            "uncertainty",
            num_tasks=2,
            options={"task_types": "regression", "lr": 0.1, "optimizer": "sgd"},
        )
    with pytest.raises(ValueError, match="unknown options"):
        Aggregator("uncertainty", options={"task_types": TYPES, "temperature": 2.0})
    with pytest.raises(ValueError, match="one type or 2"):
        Aggregator("uncertainty", num_tasks=2, options={"task_types": TYPES})
    agg = Aggregator("uncertainty", num_tasks=2, options={"task_types": "classification"})
    assert agg.method_state.task_types == ("classification", "classification")
    with pytest.raises(ValueError, match="3 losses"):
        agg.backward(Net().losses(0), Net().trunk.parameters())
    assert list(Aggregator("mgda").parameters()) == []
    assert list(Aggregator("dwa").parameters()) == []


def test_the_numpy_route_still_works_and_warns_where_its_log_variances_train():
    uw = weighting.UncertaintyWeighting(3, TYPES, lr=0.1)
    with pytest.warns(UserWarning, match=r"own numpy optimizer .*agg\.parameters\(\)"):
        agg = Aggregator(uw)
    twin = weighting.UncertaintyWeighting(3, TYPES, lr=0.1)
    net = Net()
    for t in range(3):
        net.zero_grad()
        info = agg.backward(net.losses(t), net.trunk.parameters())
        assert info.weights.tobytes() == twin.update(info.losses).tobytes()
    assert uw.step == 3 and list(agg.parameters()) == []
    assert uw.log_variances.tobytes() == twin.log_variances.tobytes()


def test_a_module_given_itself_and_reset_in_place():
    module = UncertaintyWeightingLoss(3, task_types=TYPES, initial_log_variances=[0.1, 0.2, 0.3])
    agg = Aggregator(module)
    assert agg.method == "uncertainty" and agg.method_state is module
    opt = torch.optim.SGD(agg.parameters(), lr=0.5)
    net = Net()
    agg.backward(net.losses(0), net.trunk.parameters())
    opt.step()
    assert not np.allclose(module.log_variances.detach().numpy(), [0.1, 0.2, 0.3])
    param = module.log_variances
    agg.reset()
    assert module.log_variances is param
    np.testing.assert_array_equal(module.log_variances.detach().numpy(), [0.1, 0.2, 0.3])


def test_log_variances_that_no_optimizer_trains_are_named_once():
    agg = Aggregator("uncertainty", options={"task_types": TYPES})
    net = Net()
    losses = net.losses(0)
    values = [float(v.detach()) for v in losses]
    module = agg.method_state
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(UNTRAINED_WARNING):
            module.weigh(values)
    with pytest.warns(RuntimeWarning, match=r"agg\.parameters\(\)") as caught:
        for _ in range(UNTRAINED_WARNING + 5):
            module.weigh(values)
    assert len(caught) == 1
    # Trained by an optimizer: silent.
    trained = Aggregator("uncertainty", options={"task_types": TYPES})
    opt = torch.optim.SGD(trained.parameters(), lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(UNTRAINED_WARNING + 5):
            opt.zero_grad()
            trained.method_state.weigh(values)
            opt.step()


def test_bad_losses_change_nothing():
    agg = Aggregator("uncertainty", options={"task_types": TYPES})
    module = agg.method_state
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\)"):
        module.weigh([1.0, -1.0, 1.0])
    assert module.log_variances.grad is None


# -- two processes ------------------------------------------------------------------------------
def _two_ranks(rank, world, init_file, out_dir):
    """One rank of exact distributed training: half the global batch each."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        net = Net()
        agg = Aggregator("uncertainty", options={"task_types": TYPES}, distributed="exact", seed=0)
        opt = torch.optim.SGD([*net.parameters(), *agg.parameters()], lr=0.1)
        for t in range(3):
            opt.zero_grad()
            agg.backward(_halves(net, t, rank), net.trunk.parameters())
            opt.step()
        s = agg.method_state.log_variances.detach().numpy()
        np.save(f"{out_dir}/s{rank}.npy", s)
        dist.barrier()  # no rank tears gloo down while another still uses it
    finally:
        dist.destroy_process_group()


def _halves(net, t, rank):
    """The task losses of rank ``rank``'s half of step t's batch."""
    g = torch.Generator().manual_seed(10 + t)
    x = torch.randn(12, 4, generator=g, dtype=torch.float64)[6 * rank : 6 * rank + 6]
    z = net.trunk(x)
    return [((h(z).squeeze(-1) - (k + 1) * x[:, k]) ** 2).mean() for k, h in enumerate(net.heads)]


def test_exact_distributed_training_equals_one_process_on_the_global_batch(tmp_path):
    # Seeded, ranks whose state digests differ raise; built alike, they must agree (a
    # pickled tensor carries a random id, which once made every rank refuse the step).
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    import torch.multiprocessing as mp

    mp.spawn(_two_ranks, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    s0, s1 = np.load(tmp_path / "s0.npy"), np.load(tmp_path / "s1.npy")
    assert s0.tobytes() == s1.tobytes()
    net = Net()
    agg = Aggregator("uncertainty", options={"task_types": TYPES})
    opt = torch.optim.SGD([*net.parameters(), *agg.parameters()], lr=0.1)
    for t in range(3):
        opt.zero_grad()
        agg.backward(net.losses(t), net.trunk.parameters())
        opt.step()
    np.testing.assert_allclose(s0, agg.method_state.log_variances.detach().numpy(), rtol=1e-12)
