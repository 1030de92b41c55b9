"""paretomtl as a LibMTL weighting, against LibMTL itself and our own Aggregator.

The class from ``paretomtl.adapters.libmtl.weighting`` is mixed into LibMTL's HPS
architecture exactly as LibMTL's Trainer mixes a weighting in. Its ``backward``
writes the gradients our :class:`~paretomtl.adapters.torch.Aggregator` writes on the
same plain model (``rep_grad`` off: at the shared parameters; on: at the shared
representation), and the gradients LibMTL's own ``EW``, ``GLS`` and (two tasks,
where LibMTL's solver is exact) ``MGDA`` write. One epoch of LibMTL's ``Trainer`` on
the CPU with our class gives the parameters and weights of the plain loop.

LibMTL 1.1.5 (PyPI, the newest release) imports ``torchvision.models.utils`` for its
ResNets, a module torchvision no longer has (and PyPI's torchvision, a CUDA build,
does not load beside a CPU torch); the tests give LibMTL ``torch.hub``'s function
under that name while it imports (nothing here uses the ResNets) and take the
stand-in out again. Install it without its dependencies: ``pip install --no-deps
LibMTL==1.1.5``.
"""

import copy
import importlib.util
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("LibMTL") is None:
    pytest.skip("LibMTL is not installed (pip install LibMTL==1.1.5)", allow_module_level=True)


def _import_libmtl():
    """Import LibMTL, with ``torchvision.models.utils`` stood in where it is missing
    (or where torchvision does not load: a CUDA build of torchvision beside a CPU
    torch raises RuntimeError on import)."""
    try:
        return importlib.import_module("LibMTL")
    except (ImportError, RuntimeError) as exc:
        if "torchvision" not in str(exc):
            raise
    for name in [n for n in sys.modules if n == "LibMTL" or n.startswith("LibMTL.")]:
        del sys.modules[name]  # the half-imported package
    real = {}
    for name in ("torchvision", "torchvision.models", "torchvision.models.utils"):
        real[name] = sys.modules.get(name)
        stand_in = types.ModuleType(name)
        stand_in.__path__ = []  # a package, so that its submodules import
        sys.modules[name] = stand_in
    sys.modules[
        "torchvision.models.utils"
    ].load_state_dict_from_url = torch.hub.load_state_dict_from_url
    try:
        return importlib.import_module("LibMTL")
    finally:
        for name, module in real.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


LibMTL = _import_libmtl()
from LibMTL.architecture import HPS  # noqa: E402
from LibMTL.loss import AbsLoss  # noqa: E402
from LibMTL.metrics import AbsMetric  # noqa: E402
from LibMTL.weighting import EW, GLS, MGDA, AbsWeighting  # noqa: E402

from paretomtl.adapters.libmtl import ParetoWeighting, register, weighting  # noqa: E402
from paretomtl.adapters.torch import Aggregator  # noqa: E402

CPU = torch.device("cpu")


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8), torch.nn.Tanh()
        )

    def forward(self, x):
        return self.net(x)


def decoders(tasks):
    return torch.nn.ModuleDict({t: torch.nn.Linear(8, 1) for t in tasks})


class HPSForTorch2(HPS):
    """LibMTL 1.1.5's HPS with the fix LibMTL's GitHub version made for torch >= 2.0:
    ``zero_grad`` sets ``.grad`` to None there, which its gradient methods then index."""

    def zero_grad_share_params(self):
        self.encoder.zero_grad(set_to_none=False)


def build(weighting_class, tasks, rep_grad=False, seed=0, architecture=HPS):
    """The model exactly as LibMTL's Trainer builds it (trainer.py, _prepare_model)."""

    class MTLmodel(architecture, weighting_class):
        def __init__(
            self, task_name, encoder_class, decoders, rep_grad, multi_input, device, kwargs
        ):
            super().__init__(
                task_name, encoder_class, decoders, rep_grad, multi_input, device, **kwargs
            )
            self.init_param()

    torch.manual_seed(seed)
    return MTLmodel(tasks, Encoder, decoders(tasks), rep_grad, False, CPU, {})


def batch(tasks, n=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    signs = [1.0, -0.7, 0.4]
    ys = {t: signs[k] * torch.sin(x[:, 0] * (k + 1)) + 0.3 * x[:, 1] for k, t in enumerate(tasks)}
    return x, ys


def libmtl_losses(model, x, ys):
    """As LibMTL's Trainer forms them: one 1-D tensor, filled task by task."""
    preds = model(x)
    losses = torch.zeros(model.task_num)
    for k, t in enumerate(model.task_name):
        losses[k] = ((preds[t].squeeze(-1) - ys[t]) ** 2).mean()
    return losses


def grads(modules):
    return {
        f"{i}.{n}": (torch.zeros_like(p) if p.grad is None else p.grad).detach().clone()
        for i, m in enumerate(modules)
        for n, p in m.named_parameters()
    }


def assert_same_grads(a, b, rtol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        atol = rtol * max(float(b[key].abs().max()), 1e-12)
        torch.testing.assert_close(a[key], b[key], rtol=rtol, atol=atol, msg=key)


TASKS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("mgda", {}),
        ("upgrad", {}),
        ("pcgrad", {"seed": 0}),
        ("graddrop", {"seed": 0}),
        ("gradvac", {"seed": 0}),
        ("dwa", {}),
        ("gradnorm", {}),
    ],
)
@pytest.mark.parametrize("rep_grad", [False, True])
def test_backward_writes_what_our_aggregator_writes(method, kwargs, rep_grad):
    cls = weighting(method, **kwargs)
    assert issubclass(cls, AbsWeighting) and issubclass(cls, ParetoWeighting)
    model = build(cls, TASKS, rep_grad=rep_grad)
    encoder, heads = copy.deepcopy(model.encoder), copy.deepcopy(model.decoders)
    mode = "representation" if rep_grad else "autograd"
    agg = Aggregator(method, mode=mode, num_tasks=3, **kwargs)
    for step in range(2):  # stateful methods carry state into the second step
        x, ys = batch(TASKS, seed=step)
        model.zero_grad()
        w = model.backward(libmtl_losses(model, x, ys))

        encoder.zero_grad()
        heads.zero_grad()
        z = encoder(x)
        losses = [((heads[t](z).squeeze(-1) - ys[t]) ** 2).mean() for t in TASKS]
        shared = list(encoder.parameters())
        info = agg.backward(losses, shared, features=z if rep_grad else None, layer=shared)
        assert_same_grads(grads([model.encoder, model.decoders]), grads([encoder, heads]))
        if info.weights is None:
            assert w is None
        else:
            np.testing.assert_allclose(w, info.weights, rtol=1e-5, atol=1e-7)
        with torch.no_grad():  # the same SGD step on both
            for p, q in zip(
                [*model.encoder.parameters(), *model.decoders.parameters()],
                [*encoder.parameters(), *heads.parameters()],
                strict=True,
            ):
                p -= 0.1 * p.grad
                q -= 0.1 * q.grad
    assert model.paretomtl_info is not None


@pytest.mark.parametrize(("ours", "theirs", "tasks"), [("equal", EW, TASKS), ("gls", GLS, TASKS)])
def test_loss_weightings_equal_libmtls_own(ours, theirs, tasks):
    """LibMTL's EW and GLS (a backward of their weighted losses) against ours."""
    a, b = build(weighting(ours), tasks), build(theirs, tasks)
    b.load_state_dict(a.state_dict(), strict=False)
    x, ys = batch(tasks)
    wa = a.backward(libmtl_losses(a, x, ys))
    b.backward(libmtl_losses(b, x, ys))
    assert_same_grads(grads([a.encoder, a.decoders]), grads([b.encoder, b.decoders]))
    if ours == "gls":  # d/dL_i (prod_j L_j)^(1/K) = (prod_j L_j)^(1/K) / (K L_i)
        L = libmtl_losses(a, x, ys).detach().double().numpy()
        np.testing.assert_allclose(wa, np.prod(L) ** (1 / 3) / (3 * L), rtol=1e-6)


def test_two_task_mgda_equals_libmtls_own():
    """With two tasks LibMTL's MGDA solver is exact (the closed form of the segment),
    when the tasks conflict and neither gradient dominates: the same gradients."""
    tasks = ["a", "b"]
    a, b = build(weighting("mgda"), tasks), build(MGDA, tasks, architecture=HPSForTorch2)
    b.load_state_dict(a.state_dict(), strict=False)
    x, ys = batch(tasks)
    wa = a.backward(libmtl_losses(a, x, ys))
    assert 0.01 < wa[0] < 0.99, wa  # interior: LibMTL's 0.999 / 0.001 clamps do not apply
    wb = b.backward(libmtl_losses(b, x, ys), mgda_gn="none")
    np.testing.assert_allclose(wa, wb, rtol=1e-4)
    assert_same_grads(grads([a.encoder, a.decoders]), grads([b.encoder, b.decoders]), rtol=1e-4)


class MSE(AbsLoss):
    def compute_loss(self, pred, gt):
        return ((pred.squeeze(-1) - gt) ** 2).mean()


class NegMSE(AbsMetric):
    def update_fun(self, pred, gt):
        self.record.append(float(((pred.squeeze(-1) - gt) ** 2).mean()))
        self.bs.append(pred.shape[0])

    def score_fun(self):
        return [-float(np.average(self.record, weights=self.bs))]


class Loader:
    """Batches of (x, {task: y}); its iterator has LibMTL 1.1.5's ``.next()``."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        it = iter(self.batches)

        class It:
            def __next__(self):
                return next(it)

            next = __next__

        return It()


def test_one_epoch_of_libmtls_trainer_on_the_cpu():
    Trainer = LibMTL.Trainer
    if "device" in Trainer.__init__.__code__.co_varnames[1:]:
        pytest.skip("this LibMTL's Trainer differs from 1.1.5's")

    class CPUTrainer(Trainer):
        """LibMTL 1.1.5's Trainer pins cuda:0; here the device is the CPU."""

        @property
        def device(self):
            return CPU

        @device.setter
        def device(self, value):
            pass

    task_dict = {
        t: {"metrics": ["negmse"], "metrics_fn": NegMSE(), "loss_fn": MSE(), "weight": [1]}
        for t in TASKS
    }
    batches = [batch(TASKS, n=16, seed=s) for s in range(4)]
    cls = weighting("mgda", track_conflicts=True)
    torch.manual_seed(0)
    trainer = CPUTrainer(
        task_dict=task_dict,
        weighting=cls,
        architecture=HPS,
        encoder_class=Encoder,
        decoders=decoders(TASKS),
        rep_grad=False,
        multi_input=False,
        optim_param={"optim": "sgd", "lr": 0.1},
        scheduler_param=None,
        weight_args={},
        arch_args={},
    )
    encoder = copy.deepcopy(trainer.model.encoder)
    heads = copy.deepcopy(trainer.model.decoders)
    weights = trainer.train(Loader(batches), Loader(batches[:1]), epochs=1, return_weight=True)

    agg = Aggregator("mgda")
    opt = torch.optim.SGD([*encoder.parameters(), *heads.parameters()], lr=0.1)
    expected = []
    for x, ys in batches:
        opt.zero_grad()
        z = encoder(x)
        losses = [((heads[t](z).squeeze(-1) - ys[t]) ** 2).mean() for t in TASKS]
        expected.append(agg.backward(losses, encoder.parameters()).weights)
        opt.step()
    np.testing.assert_allclose(weights[:, 0, :], np.array(expected).T, rtol=1e-5, atol=1e-7)
    for p, q in zip(trainer.model.encoder.parameters(), encoder.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert trainer.model.paretomtl_info.conflicts.step == len(batches)


def test_state_rides_in_the_model_state_dict():
    cls = weighting("gradvac", seed=0)
    model = build(cls, TASKS)
    x, ys = batch(TASKS)
    model.backward(libmtl_losses(model, x, ys))
    state = model.state_dict()
    assert state["_extra_state"]["paretomtl"]["steps"] == 1
    other = build(cls, TASKS)
    other.load_state_dict(state)
    x, ys = batch(TASKS, seed=5)
    model.zero_grad()
    other.zero_grad()
    np.testing.assert_array_equal(
        model.backward(libmtl_losses(model, x, ys)), other.backward(libmtl_losses(other, x, ys))
    )


def test_register_and_errors():
    cls = weighting("upgrad", name="ParetoUPGrad")
    assert register(cls) == "ParetoUPGrad"
    assert LibMTL.weighting.ParetoUPGrad is cls
    with pytest.raises(ValueError, match="unknown method"):
        weighting("no-such-method")
    with pytest.raises(ValueError, match="rep_grad"):
        weighting("mgda", mode="representation")
    model = build(weighting("mgda"), TASKS)
    x, ys = batch(TASKS)
    with pytest.raises(TypeError, match="weight_args"):
        model.backward(libmtl_losses(model, x, ys), mgda_gn="l2")
    bad = libmtl_losses(model, x, ys) * torch.tensor([1.0, float("nan"), 1.0])
    with pytest.raises(ValueError, match="task 1"):
        model.backward(bad)
    with pytest.raises(TypeError, match="architecture"):
        weighting("mgda")().init_param()
