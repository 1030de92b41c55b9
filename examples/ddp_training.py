"""Multi-task training with DistributedDataParallel and a paretomtl method, on every rank.

Run with torchrun (two processes, gloo on the CPU, NCCL when there is a GPU per process):

    torchrun --nproc_per_node 2 examples/ddp_training.py [--method mgda] [--steps 60]

or without torchrun, the script spawning its processes itself (as CI runs it):

    .venv/bin/python examples/ddp_training.py --spawn 2 --quick

A shared MLP trunk with three linear heads (three regression tasks on synthetic data)
is wrapped in ``DistributedDataParallel``; a ``DistributedSampler`` gives each rank
its own part of every epoch. The only change to a DDP training loop is the backward:

    model = DistributedDataParallel(net)
    agg = Aggregator("mgda", ddp=model)            # takes over DDP's gradient averaging
    ...
    losses = [loss_1, loss_2, loss_3]
    agg.backward(losses, net.trunk.parameters())  # instead of sum(losses).backward()
    optimizer.step()

``ddp=model`` hands DDP's gradient synchronisation to the aggregator: the per-task
gradients never pass through DDP's reducer, so it is switched off and the aggregator
averages them over the ranks itself. In the default ``distributed="exact"`` mode every
rank then solves on the per-task gradients of the global batch: the printout shows
the same task weights on every rank, and at the end a checksum of the parameters,
gathered from every rank, shows that the replicas are still bit-identical. With
``--distributed local`` each rank solves on its own batch: the weights differ between
ranks, the averaged update (and so the parameters) does not. Any method name of
``paretomtl.solvers.available()`` or ``paretomtl.weighting.available()`` can be passed
as ``--method`` (GradNorm gets the last trunk layer as ``layer=``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from paretomtl.adapters.torch import Aggregator

TASKS = 3


class MultiTaskNet(torch.nn.Module):
    """A shared trunk and one linear head per task."""

    def __init__(self, d_in: int = 16, width: int = 64, tasks: int = TASKS) -> None:
        super().__init__()
        torch.manual_seed(0)  # the same initial weights on every rank (DDP checks them)
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(d_in, width),
            torch.nn.ReLU(),
            torch.nn.Linear(width, width),
            torch.nn.ReLU(),
        )
        self.heads = torch.nn.ModuleList(torch.nn.Linear(width, 1) for _ in range(tasks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = self.trunk(x)
        return [head(z) for head in self.heads]


def synthetic_data(n: int = 4096, d_in: int = 16, tasks: int = TASKS) -> TensorDataset:
    """Three regressions of one input that share part of their signal and conflict in
    the rest, at three scales."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d_in, generator=g)
    common = torch.randn(d_in, generator=g)
    ys = []
    for k in range(tasks):
        own = torch.randn(d_in, generator=g)
        scale = (1.0, 2.0, 3.0)[k % 3]
        ys.append(scale * torch.tanh((x @ (common + 1.5 * own)) / np.sqrt(d_in)))
    return TensorDataset(x, torch.stack(ys, dim=1))


def checksum(module: torch.nn.Module) -> int:
    """A 63-bit digest of every parameter's bytes, in order."""
    h = hashlib.sha256()
    for p in module.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return int.from_bytes(h.digest()[:8], "little") >> 1


def train(rank: int, world: int, args: argparse.Namespace) -> bool:
    """The training loop of one rank; True if the replicas ended identical."""
    local_rank = int(os.environ.get("LOCAL_RANK", rank))  # torchrun sets these
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    use_cuda = (
        torch.cuda.is_available() and torch.cuda.device_count() >= local_world and not args.cpu
    )
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(1)
    dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    try:
        result = _train(rank, world, device, args)
        dist.barrier()  # every rank done before any tears the process group down
        return result
    finally:
        dist.destroy_process_group()


def _train(rank: int, world: int, device: torch.device, args: argparse.Namespace) -> bool:
    data = synthetic_data()
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=args.batch, sampler=sampler, drop_last=True)
    net = MultiTaskNet().to(device)
    model = DistributedDataParallel(net, device_ids=None if use_cpu(device) else [device.index])
    agg = Aggregator(args.method, ddp=model, distributed=args.distributed, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    layer = list(net.trunk[2].parameters())  # GradNorm's shared layer W
    say = print if rank == 0 else (lambda *a, **k: None)
    say(
        f"{world} ranks, backend {dist.get_backend()}, device {device.type}; method "
        f"{args.method!r}, distributed={args.distributed!r}; batch {args.batch} per rank "
        f"({args.batch * world} global); {sum(p.numel() for p in net.parameters()):,} parameters"
    )
    step, epoch = 0, 0
    while step < args.steps:
        sampler.set_epoch(epoch)  # a new split of the data set between the ranks
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            outputs = model(x)
            losses = [(out[:, 0] - y[:, k]).pow(2).mean() for k, out in enumerate(outputs)]
            optimizer.zero_grad(set_to_none=True)
            info = agg.backward(
                losses,
                net.trunk.parameters(),
                task_params=net.heads.parameters(),
                layer=layer if args.method == "gradnorm" else None,
            )
            optimizer.step()
            step += 1
            if step % args.every == 0 or step == 1 or step == args.steps:
                report(step, info, net, world)
            if step == args.steps:
                break
        epoch += 1
        if hasattr(agg.method_state, "end_epoch"):  # DWA: the epoch's losses
            agg.method_state.end_epoch()
    # Every rank's parameter checksum, gathered on every rank.
    mine = torch.tensor([checksum(net)], dtype=torch.int64, device=device)
    every = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(every, mine)
    sums = [int(t.item()) for t in every]
    same = len(set(sums)) == 1
    say("parameter checksums (sha256 of every parameter's bytes), one per rank:")
    for r, s in enumerate(sums):
        say(f"  rank {r}: {s:016x}")
    say(
        f"parameters identical on all {world} ranks: {'yes' if same else 'NO'} "
        f"(after {step} steps; aggregator bytes sent by rank 0: {agg.traffic.bytes:,})"
    )
    return same


def use_cpu(device: torch.device) -> bool:
    return device.type == "cpu"


def report(step: int, info, net: torch.nn.Module, world: int) -> None:
    """Rank 0 prints every rank's losses, task weights and first parameters; whether
    the weights and all the parameters (compared exactly) agree between ranks."""
    weights = None if info.weights is None else [float(w) for w in info.weights]
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).cpu()
    mine = {
        "weights": weights,
        "losses": [float(v) for v in info.losses],
        "params": flat.numpy().tobytes(),
        "first": [float(v) for v in flat[:3]],
    }
    every: list = [None] * world
    dist.all_gather_object(every, mine)
    if dist.get_rank() != 0:
        return
    print(f"step {step}")
    for r, e in enumerate(every):
        w = "-" if e["weights"] is None else " ".join(f"{v:.4f}" for v in e["weights"])
        print(
            f"  rank {r}: losses {' '.join(f'{v:7.4f}' for v in e['losses'])} | "
            f"task weights {w} | trunk.0.weight[:3] {' '.join(f'{v:+.6f}' for v in e['first'])}"
        )
    same_w = all(e["weights"] == every[0]["weights"] for e in every)
    same_p = all(e["params"] == every[0]["params"] for e in every)
    print(
        f"  same task weights on every rank: {'yes' if same_w else 'no'}; "
        f"parameters bit-identical: {'yes' if same_p else 'NO'}"
    )


def _spawned(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if not train(rank, world, args):
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="mgda", help="a paretomtl method name")
    parser.add_argument(
        "--distributed", default="exact", choices=("exact", "local"), help="aggregator mode"
    )
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps")
    parser.add_argument("--quick", action="store_true", help="20 steps (CI)")
    parser.add_argument("--every", type=int, default=10, help="print every this many steps")
    parser.add_argument("--batch", type=int, default=32, help="batch per rank")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--spawn", type=int, metavar="N", help="start N processes (no torchrun)")
    parser.add_argument("--cpu", action="store_true", help="gloo on the CPU even with GPUs")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.every = min(args.steps, 20), min(args.every, 5)
    if args.spawn:
        import torch.multiprocessing as mp

        with socket.socket() as s:  # a free port for the rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mp.start_processes(
            _spawned, args=(args.spawn, port, args), nprocs=args.spawn, start_method="spawn"
        )
        return 0
    if "RANK" not in os.environ:
        parser.error(
            "start it with torchrun --nproc_per_node 2 examples/ddp_training.py, or pass --spawn 2"
        )
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return 0 if train(rank, world, args) else 1


if __name__ == "__main__":
    sys.exit(main())
