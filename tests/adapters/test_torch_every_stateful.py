"""Every registered stateful gradient method through the adapter equals its numpy object.

Over several SGD steps, so that the gradients change and the state matters: the adapter's
weights, its combined gradient, and finally the method's state, against the same class
driven by hand with the explicitly built Jacobian. Methods whose direction is no weighted
sum of the current gradients (``needs_grads``) are compared on the direction.
"""

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import solvers  # noqa: E402
from paretomtl.adapters.torch import Aggregator  # noqa: E402
from tests.adapters.test_torch import Net, data, explicit_jacobian, flat_grad  # noqa: E402

STATEFUL = solvers.available("stateful-gradient")


@pytest.mark.parametrize("method", STATEFUL)
def test_adapter_equals_the_numpy_object_over_steps(method):
    cls = solvers.get(method)
    seeded = "seed" in inspect.signature(cls).parameters
    reads_losses = "losses" in inspect.signature(cls.update).parameters
    net = Net()
    x, ys = data()
    agg = Aggregator(method, seed=5)
    reference = cls(3, seed=5) if seeded else cls(3)
    for _ in range(5):
        net.zero_grad()
        losses, _ = net.losses(x, ys)
        J = explicit_jacobian(losses, net.shared())
        values = np.array([float(v.detach()) for v in losses])
        info = agg.backward(losses, net.shared())
        extra = {"losses": values} if reads_losses else {}
        expected = reference.update(J, gram=J @ J.T, **extra)
        if expected.weights is None:
            assert info.weights is None
        else:
            np.testing.assert_allclose(info.weights, expected.weights, rtol=1e-8, atol=1e-11)
        scale = float(np.abs(expected.direction).max())
        np.testing.assert_allclose(
            flat_grad(net.shared()), expected.direction, rtol=0, atol=1e-9 * max(scale, 1.0)
        )
        with torch.no_grad():
            for p in net.parameters():
                if p.grad is not None:
                    p -= 0.05 * p.grad
    assert_close_state(agg.method_state.state_dict(), reference.state_dict())


def assert_close_state(a, b, path="state"):
    """The same keys and kinds; numbers and arrays equal to rounding (the adapter forms
    its Gram matrix in torch, the reference in numpy)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_close_state(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close_state(x, y, f"{path}[{i}]")
    elif isinstance(a, (np.ndarray, float)) and not isinstance(a, bool):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11, err_msg=path)
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"
