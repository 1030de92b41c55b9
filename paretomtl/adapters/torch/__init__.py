"""PyTorch adapter: per-task gradients out, one combined gradient in.

The only module of paretomtl that imports torch (install ``paretomtl[torch]``).
Three changed lines in a training loop::

    agg = paretomtl.adapters.torch.Aggregator("mgda")          # once
    info = agg.backward(losses, model.trunk.parameters())       # instead of sum(losses).backward()
    optimizer.step()                                            # unchanged

or, for stateless methods, ``paretomtl.adapters.torch.backward(losses, shared, "pcgrad")``.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "paretomtl.adapters.torch needs PyTorch: pip install 'paretomtl[torch]'"
    ) from exc

from paretomtl.adapters.torch._aggregator import Aggregator, StepInfo, backward
from paretomtl.adapters.torch._jacobian import gram_matrix, per_task_grads
from paretomtl.adapters.torch._problem import problem
from paretomtl.adapters.torch._uncertainty import UncertaintyWeightingLoss

__all__ = [
    "Aggregator",
    "StepInfo",
    "UncertaintyWeightingLoss",
    "backward",
    "gram_matrix",
    "per_task_grads",
    "problem",
]
