"""A ``torch.compile``d model through every adapter mode: the gradients of the eager one.

``mode="autograd"`` and ``"batched"`` on a whole compiled model, ``"representation"``
on a compiled trunk (and heads), and loss weightings (GradNorm, which differentiates
each task at ``layer``, and GLS): every parameter's ``.grad`` equals the uncompiled
model's within 1e-5. Where vmap cannot run through the compiled graph (inductor), the
batched mode falls back to one backward per task with a warning; the gradients are the
same either way.

The backend is ``aot_eager`` (AOTAutograd's compiled forward and backward graphs, the
part that changes what autograd differentiates through, without generating C++):
``inductor`` compiles C++ and takes minutes from a cold cache on the 2-core CI
machine. ``PARETOMTL_COMPILE_BACKEND=inductor`` runs these tests with it;
``PARETOMTL_SKIP_COMPILE=1`` skips them. They skip themselves where ``torch.compile``
is unavailable (a Python version dynamo does not support, no compiler).
"""

import copy
import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl.adapters.torch import Aggregator  # noqa: E402

BACKEND = os.environ.get("PARETOMTL_COMPILE_BACKEND", "aot_eager")
RTOL = 1e-5

if os.environ.get("PARETOMTL_SKIP_COMPILE"):
    pytest.skip("PARETOMTL_SKIP_COMPILE is set", allow_module_level=True)


def _compile_works() -> str | None:
    """None where torch.compile runs here, else why not."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    try:
        f = torch.compile(lambda t: (t * 2).sum(), backend=BACKEND)
        x = torch.ones(3, requires_grad=True)
        f(x).backward()
    except Exception as exc:  # any failure to compile means: not available here
        return f"torch.compile(backend={BACKEND!r}) fails here: {type(exc).__name__}: {exc}"
    return None


_WHY_NOT = _compile_works()
if _WHY_NOT:
    pytest.skip(_WHY_NOT, allow_module_level=True)


class Trunk(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(6, 24)
        self.last = torch.nn.Linear(24, 12)

    def forward(self, x):
        return torch.tanh(self.last(torch.relu(self.first(x))))


class Net(torch.nn.Module):
    def __init__(self, tasks=3):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = Trunk()
        self.heads = torch.nn.ModuleList(torch.nn.Linear(12, 1) for _ in range(tasks))

    def forward(self, x):
        z = self.trunk(x)
        return z, [h(z).squeeze(-1) for h in self.heads]


def data(n=32):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=g)
    ys = [torch.sin((k + 1) * x[:, 0]) * (-1) ** k + 0.2 * x[:, 1] for k in range(3)]
    return x, ys


def task_losses(outputs, ys):
    return [((o - y) ** 2).mean() for o, y in zip(outputs, ys, strict=True)]


@pytest.fixture(scope="module")
def models():
    """An eager model, and a copy compiled whole and trunk-and-heads (compiled once)."""
    eager = Net()
    compiled = copy.deepcopy(eager)
    return {
        "eager": eager,
        "compiled": compiled,
        "whole": torch.compile(compiled, backend=BACKEND),
        "trunk": torch.compile(compiled.trunk, backend=BACKEND),
        "heads": [torch.compile(h, backend=BACKEND) for h in compiled.heads],
    }


def run(models, compiled, method, mode, **options):
    """One aggregated backward; the model's .grad afterwards, by parameter name."""
    x, ys = data()
    net = models["compiled"] if compiled else models["eager"]
    net.zero_grad(set_to_none=True)
    if mode == "representation":
        z = models["trunk"](x) if compiled else net.trunk(x)
        heads = models["heads"] if compiled else net.heads
        outputs = [h(z).squeeze(-1) for h in heads]
    else:
        z, outputs = models["whole"](x) if compiled else net(x)
    agg = Aggregator(method, mode=mode, seed=0, **options)
    layer = list(net.trunk.last.parameters())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = agg.backward(
            task_losses(outputs, ys),
            net.trunk.parameters(),
            features=z if mode == "representation" else None,
            layer=layer,
        )
    grads = {n: p.grad.detach().clone() for n, p in net.named_parameters()}
    return grads, info, [str(w.message) for w in caught]


CASES = [
    ("mgda", "autograd"),
    ("mgda", "batched"),
    ("mgda", "representation"),
    ("pcgrad", "batched"),
    ("graddrop", "autograd"),
    ("upgrad", "representation"),
    ("gradnorm", "autograd"),
    ("gls", "autograd"),
]


@pytest.mark.parametrize(("method", "mode"), CASES)
def test_compiled_gradients_equal_eager(models, method, mode):
    eager, info_e, _ = run(models, False, method, mode)
    compiled, info_c, warned = run(models, True, method, mode)
    assert eager.keys() == compiled.keys()
    for name in eager:
        scale = float(eager[name].abs().max())
        torch.testing.assert_close(
            compiled[name], eager[name], rtol=RTOL, atol=RTOL * max(scale, 1e-12), msg=name
        )
    if info_e.weights is not None:
        np.testing.assert_allclose(info_c.weights, info_e.weights, rtol=RTOL, atol=1e-7)
    # vmap through a compiled graph works (aot_eager) or falls back, saying so; nothing
    # else warns.
    fallback = [w for w in warned if "batched per-task gradients failed" in w]
    assert fallback == warned
    assert not fallback or mode == "batched"


def test_representation_needs_features_on_the_graph(models):
    """A model compiled whole returns z beside the heads' outputs, not on their path:
    representation mode says so (compile the trunk on its own, as above)."""
    x, ys = data()
    z, outputs = models["whole"](x)
    agg = Aggregator("mgda", mode="representation")
    with pytest.raises(ValueError, match="not on the path of any loss"):
        agg.backward(task_losses(outputs, ys), models["compiled"].trunk.parameters(), features=z)
