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
    losses: Sequence[torch.Tensor],
    inputs: Sequence[torch.Tensor],
    mode: str,
    buffers: dict | None = None,
    *,
    retain_graph: bool = True,
    out: Sequence[torch.Tensor] | None = None,
) -> list[torch.Tensor | None]:
    """Jacobian of the K losses w.r.t. ``inputs``: one (K, *x.shape) tensor per input.

    ``mode="autograd"`` calls ``torch.autograd.grad`` once per task (retaining the
    graph) and copies each task's gradients into their rows as soon as they exist,
    so that the peak is the Jacobian plus one task's gradients; ``"batched"`` makes
    one call with ``is_grads_batched=True`` (vmap over the identity's rows) and falls
    back to the per-task loop, with a warning saying why, when the model's operations
    do not support batching. The graph is retained in both cases unless
    ``retain_graph=False``, which frees it with the last per-task backward (when the
    caller runs no other backward through it).

    ``buffers``: a dict kept by the caller between calls. The per-task loop then
    writes CPU Jacobians into the tensors it left there last time (same shape and
    dtype) instead of new ones, and the next call overwrites them. On the CPU, memory
    of a Jacobian's size goes back to the operating system when freed, so a new
    Jacobian every step is fresh memory that costs a page fault per 4 KiB touched:
    for issue 11's 25 MB Jacobian on the 2-core benchmark machine, 6,100 faults and
    5-10 ms a step (10-14% of the step of the K backward passes alone), against
    400 faults with the buffers. GPU tensors are never kept (the caching allocator
    reuses their memory).

    ``out``: one (K, *x.shape) tensor per input (views into one flat buffer that a
    collective sends, say) that receives the Jacobian instead of new memory; every
    entry is then written (zeros where a task does not reach an input) and returned.
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
                retain_graph=retain_graph,
                allow_unused=True,
            )
            if out is None:
                return list(grads)
            for J, g in zip(out, grads, strict=True):
                if g is None:
                    J.zero_()
                else:
                    J.copy_(g)
            return list(out)
        except RuntimeError as exc:
            if not retain_graph:  # part of the graph may be freed: no fallback possible
                raise RuntimeError(
                    "paretomtl: batched per-task gradients failed for this model "
                    f"({str(exc).splitlines()[0][:200]}), and the graph was not kept for "
                    "the per-task fallback (no task-specific parameters, retain_graph "
                    "False): use mode='autograd' for this model"
                ) from exc
            warnings.warn(
                "paretomtl: batched per-task gradients failed for this model "
                f"({str(exc).splitlines()[0][:200]}); falling back to one backward per "
                "task (mode='autograd')",
                RuntimeWarning,
                stacklevel=3,
            )
    if buffers is not None:
        for index in [i for i in buffers if i >= len(inputs)]:
            del buffers[index]
    jac: list[torch.Tensor | None] = [None] * len(inputs)
    unwritten = [set(range(K)) for _ in inputs]
    for i, loss in enumerate(losses):
        keep = retain_graph or i < K - 1
        grads = torch.autograd.grad(loss, list(inputs), retain_graph=keep, allow_unused=True)
        for index, g in enumerate(grads):
            if g is None:
                continue
            if jac[index] is None:
                jac[index] = (
                    _jacobian_tensor(buffers, index, (K, *g.shape), g)
                    if out is None
                    else out[index]
                )
            jac[index][i].copy_(g)
            unwritten[index].discard(i)
        del grads  # the next task's gradients reuse this memory
    for J, rows in zip(jac, unwritten, strict=True):
        if J is not None:
            for i in rows:
                J[i].zero_()  # a task that does not reach this input
    if out is not None:
        for index, J in enumerate(jac):
            if J is None:
                out[index].zero_()
                jac[index] = out[index]
    return jac


def _jacobian_tensor(
    buffers: dict | None, index: int, shape: tuple[int, ...], like: torch.Tensor
) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype and device, taken
    from ``buffers[index]`` when that fits (and left there for the next call)."""
    if buffers is None or like.device.type != "cpu":
        return like.new_empty(shape)
    held = buffers.get(index)
    if held is None or held.shape != shape or held.dtype != like.dtype:
        held = buffers[index] = like.new_empty(shape)
    return held


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
    ``"blockwise"`` (the adapter's default) multiplies in float32 (16-bit input is
    widened to float32 a block of columns at a time; TF32 is switched off for the
    call) over blocks of 4096 columns with one batched product, and sums the
    per-block K x K results in float64: no float64 copy of the Jacobian, at a relative
    error of about 1e-7 (4e-6 at worst). One K x K matrix per device crosses to the
    CPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    per_device: dict[torch.device, torch.Tensor] = {}
    # One float64 block per device, reused by every block of every parameter (a new one
    # per block was a fresh allocation each time: page faults on every block on the CPU).
    scratch: dict[torch.device, torch.Tensor] = {}
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
            width = min(chunk, flat.shape[1])
            buf = scratch.get(flat.device)
            if buf is None or buf.shape[1] < width:
                buf = scratch[flat.device] = flat.new_empty((num_tasks, width), dtype=torch.float64)
            for start in range(0, flat.shape[1], chunk):
                part = flat[:, start : start + chunk]
                block = buf[:, : part.shape[1]]
                block.copy_(part)
                acc += block @ block.T
    G = np.zeros((num_tasks, num_tasks))
    for acc in per_device.values():
        G += acc.cpu().numpy()
    return G


def accumulate_combination(
    params: Sequence[torch.Tensor], jac: Sequence[torch.Tensor | None], weights: np.ndarray
) -> None:
    """``p.grad += sum_i weights_i J_p[i]`` on each parameter's device (like autograd)."""
    # One copy of the weights per device and dtype, not one (a transfer) per parameter.
    copies: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
    for p, J in zip(params, jac, strict=True):
        if J is None:
            continue
        w = copies.get((J.dtype, J.device))
        if w is None:
            w = torch.as_tensor(weights, dtype=J.dtype, device=J.device)
            copies[J.dtype, J.device] = w
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
        # Widened a chunk at a time (a multiple of the block: the same blocks), not
        # as a float32 copy of the whole Jacobian.
        chunk = _CHUNK.get(flat.device.type, _CHUNK_DEFAULT)
        return sum(
            _blockwise_gram(flat[:, start : start + chunk].to(torch.float32))
            for start in range(0, flat.shape[1], chunk)
        )
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
