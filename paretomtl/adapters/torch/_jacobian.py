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
        for row in rows:
            row[p_idx] = None  # each per-task gradient lives until its stack only
        if all(g is None for g in column):
            jac.append(None)
        else:
            jac.append(torch.stack([torch.zeros_like(x) if g is None else g for g in column]))
        del column
    return jac


PRECISIONS = ("float64", "blockwise")
# Columns per float32 product in the "blockwise" route: each block's sum runs in
# float32 over at most this many terms (relative error about 1e-7 typical,
# sqrt(4096) * 6e-8 = 4e-6 worst), then blocks are summed in float64.
_BLOCK = 1 << 12


def gram_matrix(
    jac: Sequence[torch.Tensor | None], num_tasks: int, precision: str = "float64"
) -> np.ndarray:
    """G = sum over parameters of J_p J_p^T, accumulated in float64 on each device.

    ``precision="float64"`` (default) converts low-precision blocks (float32, float16,
    bfloat16) to float64 a block of columns at a time, so neither TF32 nor
    half-precision products reach the solver: exact to float64 rounding.
    ``"blockwise"`` multiplies in float32 (16-bit input is widened to float32 first;
    TF32 is switched off for the call) over blocks of 4096 columns with one batched
    product, and sums the per-block K x K results in float64: no float64 copy of the
    Jacobian, at a relative error of about 1e-7 (4e-6 at worst). One K x K matrix per
    device crosses to the CPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
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
        elif precision == "blockwise":
            acc += _blockwise_gram(flat)
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


def _blockwise_gram(flat: torch.Tensor) -> torch.Tensor:
    """sum over 4096-column blocks of (block @ block.T in float32), in float64."""
    if flat.dtype != torch.float32:
        flat = flat.to(torch.float32)
    K, n = flat.shape
    full = (n // _BLOCK) * _BLOCK
    out = torch.zeros(K, K, dtype=torch.float64, device=flat.device)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32 in these products
    try:
        if full:
            # (nb, K, block) strided view: one batched product, no copy of J.
            blocks = flat[:, :full].reshape(K, full // _BLOCK, _BLOCK).transpose(0, 1)
            out += torch.bmm(blocks, blocks.transpose(1, 2)).to(torch.float64).sum(dim=0)
        if full < n:
            tail = flat[:, full:]
            out += (tail @ tail.T).to(torch.float64)
    finally:
        torch.set_float32_matmul_precision(previous)
    return out
