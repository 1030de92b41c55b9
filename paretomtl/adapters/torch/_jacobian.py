"""Per-task gradients of the shared parameters, their Gram matrix, and the combination.

The Jacobian is kept as one tensor per parameter, shape (K, *param.shape), never
flattened into a K x M copy; ``None`` stands for a parameter no task reaches (zeros).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

MODES = ("autograd", "batched", "representation")
# Columns per float64 block when a low-precision Jacobian is accumulated in float64:
# cache-sized blocks on the CPU (measured: 1 << 16 is 3x faster than 1 << 20 there),
# large blocks on a GPU, where each block is a kernel launch.
_CHUNK = {"cpu": 1 << 16}
_CHUNK_DEFAULT = 1 << 22


def per_task_grads(
    losses: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor], mode: str
) -> list[torch.Tensor | None]:
    """Jacobian of the K losses w.r.t. ``inputs``: one (K, *x.shape) tensor per input.

    ``mode="autograd"`` calls ``torch.autograd.grad`` once per task (retaining the
    graph); ``"batched"`` makes one call with ``is_grads_batched=True`` (vmap over
    the identity's rows) and falls back to the per-task loop, with a warning saying
    why, when the model's operations do not support batching. The graph is retained
    in both cases; the caller frees it with its last backward.
    """
    K = len(losses)
    if mode == "batched":
        try:
            stacked = torch.stack([loss.reshape(()) for loss in losses])
            eye = torch.eye(K, dtype=stacked.dtype, device=stacked.device)
            grads = torch.autograd.grad(
                stacked,
                list(inputs),
                grad_outputs=eye,
                is_grads_batched=True,
                retain_graph=True,
                allow_unused=True,
            )
            return list(grads)
        except RuntimeError as exc:
            warnings.warn(
                "paretomtl: batched per-task gradients failed for this model "
                f"({str(exc).splitlines()[0][:200]}); falling back to one backward per "
                "task (mode='autograd')",
                RuntimeWarning,
                stacklevel=3,
            )
    rows: list[list[torch.Tensor | None]] = []
    for loss in losses:
        rows.append(
            list(torch.autograd.grad(loss, list(inputs), retain_graph=True, allow_unused=True))
        )
    jac: list[torch.Tensor | None] = []
    for p_idx, x in enumerate(inputs):
        column = [row[p_idx] for row in rows]
        if all(g is None for g in column):
            jac.append(None)
        else:
            jac.append(torch.stack([torch.zeros_like(x) if g is None else g for g in column]))
    return jac


def gram_matrix(jac: Sequence[torch.Tensor | None], num_tasks: int) -> np.ndarray:
    """G = sum over parameters of J_p J_p^T, accumulated in float64 on each device.

    Low-precision blocks (float32, float16, bfloat16) are converted to float64 a block
    of columns at a time, so TF32 or half-precision products never reach the solver.
    One K x K matrix per device crosses to the CPU.
    """
    per_device: dict[torch.device, torch.Tensor] = {}
    for J in jac:
        if J is None:
            continue
        flat = J.reshape(num_tasks, -1)
        acc = per_device.get(flat.device)
        if acc is None:
            acc = torch.zeros(num_tasks, num_tasks, dtype=torch.float64, device=flat.device)
            per_device[flat.device] = acc
        if flat.dtype == torch.float64:
            acc += flat @ flat.T
        else:
            chunk = _CHUNK.get(flat.device.type, _CHUNK_DEFAULT)
            for start in range(0, flat.shape[1], chunk):
                block = flat[:, start : start + chunk].to(torch.float64)
                acc += block @ block.T
    G = np.zeros((num_tasks, num_tasks))
    for acc in per_device.values():
        G += acc.cpu().numpy()
    return G


def accumulate_combination(
    params: Sequence[torch.Tensor], jac: Sequence[torch.Tensor | None], weights: np.ndarray
) -> None:
    """``p.grad += sum_i weights_i J_p[i]`` on each parameter's device (like autograd)."""
    for p, J in zip(params, jac, strict=True):
        if J is None:
            continue
        w = torch.as_tensor(weights, dtype=J.dtype, device=J.device)
        d = torch.tensordot(w, J, dims=1).to(p.dtype)
        if p.grad is None:
            p.grad = d
        else:
            p.grad.add_(d)


def fill_non_finite(params: Sequence[torch.Tensor]) -> None:
    """Write +inf into the shared gradients, so that a GradScaler skips the step."""
    for p in params:
        if p.grad is None:
            p.grad = torch.full_like(p, float("inf"))
        else:
            p.grad.fill_(float("inf"))


def graph_leaves(roots: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Leaf tensors that require grad and are reachable from ``roots`` (graph order)."""
    found: dict[int, torch.Tensor] = {}
    seen: set[int] = set()
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            found.setdefault(id(variable), variable)
        for nxt, _ in node.next_functions:
            if nxt is not None:
                stack.append(nxt)
    return list(found.values())
