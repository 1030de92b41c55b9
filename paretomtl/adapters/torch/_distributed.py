"""Several processes, one step: the collectives of a distributed aggregated backward.

Everything here is built on ``torch.distributed`` (any backend: gloo on CPUs, NCCL on
GPUs). A :class:`Group` wraps the process group an :class:`Aggregator` synchronises
over, counts what it sends, and offers the few collectives a step needs:

- :meth:`Group.agree`: one small MAX all-reduce at the start of every step, so that every
  rank learns whether the K tasks, the number of shared and task-specific entries
  match, and whether any rank has a non-finite loss; the step then goes on, skips or
  raises on every rank together.
- :meth:`Group.mean_`: an all-reduce averaged over the ranks (the per-task gradients of
  the global batch, the task-specific gradients, the combined gradient in local mode).
- :meth:`Group.reduce_scatter_mean` and :meth:`Group.all_gather`: the sharded exchange
  of exact mode, where each rank holds 1/R of the columns of the global Jacobian.

The traffic count is the ring algorithm's bytes sent per rank: an all-reduce of n
bytes sends 2 (R - 1) / R * n, a reduce-scatter of an n-byte input and an all-gather
of an n-byte output (R - 1) / R * n each. Plain DDP's all-reduce of the M gradient
entries is the unit against which the benchmark reports it.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

# Aggregator(distributed=...): "auto" is exact when a process group of more than one
# rank is initialised (sharded when the shared parameters are DTensors), else off.
DISTRIBUTED = ("auto", "exact", "local", "sharded", "off")
EXCHANGES = ("auto", "all-reduce", "reduce-scatter")


@dataclass
class Traffic:
    """Bytes sent per rank by this aggregator's collectives (ring model), and calls."""

    bytes: int = 0
    calls: int = 0


def _dtensor_type():
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch < 2.4
        try:
            from torch.distributed._tensor import DTensor
        except ImportError:
            return None
    return DTensor


def is_sharded(t: torch.Tensor) -> bool:
    """Whether ``t`` is a DTensor (a parameter sharded by ``fully_shard``)."""
    cls = _dtensor_type()
    return cls is not None and isinstance(t, cls)


def local_part(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of a DTensor (the tensor itself otherwise)."""
    return t.to_local() if is_sharded(t) else t


def fingerprint(obj: object) -> int:
    """A 62-bit digest of a picklable object (a generator's and a method's state)."""
    digest = hashlib.sha256(pickle.dumps(obj, protocol=4)).digest()
    return int.from_bytes(digest[:8], "little") >> 2


def initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def resolve_mode(distributed: str, group: object, shared: Sequence[torch.Tensor]) -> str:
    """The mode a step runs in: "off", "exact", "local" or "sharded"."""
    sharded = [is_sharded(p) for p in shared]
    if distributed == "off":
        if any(sharded):
            raise ValueError(
                "distributed='off', but the shared parameters are DTensors (sharded by "
                "fully_shard); pass distributed='sharded' (or 'auto')"
            )
        return "off"
    if not initialised():
        if distributed == "auto":
            return "off"
        raise ValueError(
            f"distributed={distributed!r} needs an initialised process group "
            f"(torch.distributed.init_process_group, or torchrun); none is; pass "
            f"distributed='off' (or 'auto') to train in this process alone"
        )
    if distributed == "auto":
        if dist.get_world_size(group) == 1:
            return "off"
        distributed = "sharded" if any(sharded) else "exact"
    if distributed == "sharded":
        if not all(sharded):
            i = sharded.index(False)
            raise ValueError(
                f"distributed='sharded' needs the shared parameters sharded by "
                f"torch.distributed.fsdp.fully_shard (DTensors); shared_params[{i}] is a "
                f"plain tensor: shard the trunk, and collect its parameters once before "
                f"training (between forward and backward fully_shard swaps a module's "
                f"parameters for unsharded tensors); or use distributed='exact' with "
                f"replicated parameters (DDP)"
            )
    elif any(sharded):
        raise ValueError(
            f"distributed={distributed!r} is for replicated parameters, but the shared "
            f"parameters are DTensors (sharded by fully_shard); use distributed='sharded'"
        )
    return distributed


class Group:
    """The process group a distributed aggregator synchronises over.

    Args:
        group: a ``torch.distributed`` process group, or None for the default group.
        mode: "exact", "local" or "sharded".
        exchange: how exact mode exchanges the per-task gradients: "all-reduce" (the
            K x M Jacobian averaged on every rank: K times DDP's bytes), "reduce-scatter"
            (each rank gets 1/R of its columns, forms that shard's K x K Gram, and
            all-gathers the combined gradient: (K + 1) / 2 times DDP's bytes), or
            "auto": reduce-scatter, except on gloo, whose reduce-scatter is an
            all-reduce underneath and measured slower than the all-reduce route
            (benchmarks/distributed.py).
    """

    def __init__(self, group: object, mode: str, exchange: str) -> None:
        self.group = group
        self.mode = mode
        self.size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.backend = str(dist.get_backend(group))
        if exchange == "auto":
            exchange = "all-reduce" if self.backend == "gloo" else "reduce-scatter"
        self.exchange = exchange
        self.traffic = Traffic()
        # Small control tensors live where the backend can reduce them.
        if self.backend == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.device = torch.device("cpu")

    # -- counted collectives -----------------------------------------------------
    def _count(self, nbytes: int, factor: float) -> None:
        self.traffic.bytes += round(factor * nbytes * (self.size - 1) / self.size)
        self.traffic.calls += 1

    def all_reduce_(self, t: torch.Tensor, op=dist.ReduceOp.SUM) -> torch.Tensor:
        self._count(t.numel() * t.element_size(), 2.0)
        dist.all_reduce(t, op=op, group=self.group)
        return t

    def mean_(self, t: torch.Tensor) -> torch.Tensor:
        """Average ``t`` over the ranks, in place."""
        self.all_reduce_(t)
        return t.div_(self.size)

    def reduce_scatter_mean(self, out: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        """``out`` = this rank's 1/R of the rank-average of ``inp`` (flat, R * n)."""
        self._count(inp.numel() * inp.element_size(), 1.0)
        fn = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        fn(out, inp, group=self.group)
        return out.div_(self.size)

    def all_gather(self, out: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        self._count(out.numel() * out.element_size(), 1.0)
        fn = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        fn(out, inp, group=self.group)
        return out

    def broadcast_buffers(self, buffers: Sequence[torch.Tensor]) -> None:
        """Copy rank 0's ``buffers`` to every rank: one broadcast per dtype and device."""
        groups: dict[tuple, list[torch.Tensor]] = {}
        for b in buffers:
            groups.setdefault((b.dtype, b.device), []).append(b)
        src = dist.get_global_rank(self.group, 0) if self.group is not None else 0
        for tensors in groups.values():
            flat = torch.cat([t.reshape(-1) for t in tensors])
            self._count(flat.numel() * flat.element_size(), self.size / (self.size - 1))
            dist.broadcast(flat, src=src, group=self.group)
            start = 0
            for t in tensors:
                n = t.numel()
                t.copy_(flat[start : start + n].view_as(t))
                start += n

    def sum_numpy(self, x: np.ndarray) -> np.ndarray:
        """The float64 array summed over the ranks (a K x K Gram, K losses)."""
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(self.device)
        return self.all_reduce_(t).cpu().numpy()

    def agree(self, sizes: dict[str, int], bad: bool, *, quiet: bool = False) -> bool:
        """Check that every rank has the same ``sizes``; return whether any rank is
        ``bad``. One MAX all-reduce; a mismatch raises on every rank together (with
        ``quiet``, returns True instead)."""
        values = list(sizes.values())
        t = torch.tensor([*values, *(-v for v in values), int(bad)], dtype=torch.int64)
        t = self.all_reduce_(t.to(self.device), op=dist.ReduceOp.MAX)
        reduced = t.cpu().tolist()
        n = len(values)
        high, low = reduced[:n], [-v for v in reduced[n : 2 * n]]
        differ = [k for k, hi, lo in zip(sizes, high, low, strict=True) if hi != lo]
        if differ and quiet:
            return True
        if differ:
            detail = ", ".join(
                f"{k} from {lo} to {hi}"
                for k, hi, lo in zip(sizes, high, low, strict=True)
                if hi != lo
            )
            raise ValueError(
                f"paretomtl: the ranks disagree on {', '.join(differ)} ({detail} across "
                f"ranks; this rank, {self.rank}, has {[sizes[k] for k in differ]}): every "
                f"rank must pass the same tasks and the same shared and task-specific "
                f"parameters, in the same order; no .grad was changed on any rank"
            )
        return bool(reduced[-1])
