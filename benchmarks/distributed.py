"""Bytes and time of one optimizer step on torch.distributed, against plain DDP.

Run from the repository root:

    .venv/bin/python benchmarks/distributed.py [--quick] [--out FILE]
    .venv/bin/python benchmarks/distributed.py --out benchmarks/results/distributed_cpu.txt
    .venv/bin/python benchmarks/distributed.py --nccl \
        --out 'benchmarks/results/distributed_{device}.txt'

R processes (R in {2, 4}; ``--quick``: 2) are spawned on this machine and join a gloo
process group over loopback (``--nccl``: one GPU each, NCCL, when there are at least
two). For K in {2, 4, 10} tasks (``--quick``: {2, 4}) a multi-task MLP (a shared ReLU
trunk of about 0.46 M parameters, ``--quick``: 3 k, and K linear heads; MSE losses;
SGD) runs these steps, interleaved round-robin so that the machine's drift hits them
alike, each on its own copy of the model:

- ``ddp-sum``: the baseline, a DDP-wrapped model and ``sum(losses).backward()``; its
  bytes are counted by a DDP communication hook that adds up its buckets' bytes and
  does the all-reduce itself;
- ``exact/all-reduce``, ``exact/reduce-scatter``: ``Aggregator("mgda", ddp=model,
  distributed="exact", exchange=...)``; bytes from ``agg.traffic``;
- ``local``: ``distributed="local"``;
- ``fsdp-sum`` and ``sharded`` (unless ``--no-sharded``): the model under
  ``fully_shard``, with summed losses, and with ``Aggregator("mgda",
  distributed="sharded")``.

Bytes are those one rank sends per step in the ring model (an all-reduce of n bytes
sends 2 (R - 1) / R * n, a reduce-scatter of an n-byte input and an all-gather of an
n-byte output (R - 1) / R * n each), the model ``agg.traffic`` uses. The "wire" column
counts, independently of ``agg.traffic``, every collective the step calls through
``torch.distributed`` (a wrapper around its all-reduce, reduce-scatter and all-gather):
for the DDP variants it must equal the "counted" column, and for the FSDP variants it
includes FSDP's own all-gathers and reduce-scatters, which ``agg.traffic`` does not
see. The step time is the median over the timed steps of the slowest rank's time of
zero_grad, forward, backward (or the aggregated backward) and ``optimizer.step()``.

The target of issue 14 is checked on the numbers of the same run and printed
PASS/MISS: the exact mode's bytes (reduce-scatter exchange) within (K + 1) / 2 + 10 %
of plain DDP's. A MISS is only printed (timings and counts are no test); the exit
status is 0.

A second section measures local mode against exact mode on a toy problem (a small
trunk, K = 4, different data on every rank, SGD along exact mode): the cosine between
the combined gradients of the two modes at the same parameters, how far the task
weights of local mode differ between ranks and from exact mode's, the exact mode's
gradient against one process on the global batch (``distributed="off"``), and the
largest parameter difference between ranks after training in each mode.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import functools
import inspect
import itertools
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.distributed as dist
from _common import Report, cpu_model, load_average

SHARDED_VARIANTS = ("fsdp-sum", "sharded")
DDP_VARIANTS = ("ddp-sum", "exact/all-reduce", "exact/reduce-scatter", "local")
TARGET_SLACK = 1.10  # exact (reduce-scatter) bytes <= (K + 1) / 2 * 1.10 x plain DDP's


@dataclass
class Config:
    """What every spawned process runs (plain data: it crosses the spawn)."""

    backend: str
    Ks: tuple[int, ...]
    widths: tuple[int, ...]
    batch: int
    warmup: int
    steps: int
    sharded: bool
    toy_steps: int
    lr: float = 1e-3


class Net(torch.nn.Module):
    """A shared ReLU trunk and K linear heads of one output each."""

    def __init__(self, widths: tuple[int, ...], K: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        layers: list[torch.nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        self.trunk = torch.nn.Sequential(*layers)
        self.heads = torch.nn.ModuleList(torch.nn.Linear(widths[-1], 1) for _ in range(K))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = self.trunk(x)
        return [h(z) for h in self.heads]  # (B, 1) each: no view for FSDP to warn about


def losses_of(outputs: list[torch.Tensor], y: torch.Tensor) -> list[torch.Tensor]:
    return [(o - y[:, i : i + 1]).pow(2).mean() for i, o in enumerate(outputs)]


def batch_of(widths, K: int, batch: int, seed: list[int], device) -> tuple:
    """Inputs and K targets that share a component, so that the tasks half agree."""
    g = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
    x = torch.randn(batch, widths[0], generator=g)
    common = torch.randn(widths[0], 1, generator=g)
    own = torch.randn(widths[0], K, generator=g)
    y = torch.tanh(x @ (common + own) / np.sqrt(widths[0]))
    return x.to(device), y.to(device)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- counting ------------------------------------------------------------------------
class Wire:
    """Bytes sent per rank (ring model) by the collectives called through
    ``torch.distributed`` while installed: all_reduce, and the single-tensor
    all-gather and reduce-scatter (their ``*_tensor`` aliases call these)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.calls = 0

    def install(self) -> None:
        gather = "all_gather_single" if hasattr(dist, "all_gather_single") else None
        scatter = "reduce_scatter_single" if hasattr(dist, "reduce_scatter_single") else None
        plan = {  # name: (argument whose bytes count, factor)
            "all_reduce": ("tensor", 2.0),
            gather or "all_gather_into_tensor": ("output_tensor", 1.0),
            scatter or "reduce_scatter_tensor": ("input", 1.0),
        }
        for name, (arg, factor) in plan.items():
            setattr(dist, name, self._wrap(getattr(dist, name), arg, factor))

    def _wrap(self, fn, arg: str, factor: float):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def counted(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            t = bound.arguments[arg]
            size = dist.get_world_size(bound.arguments.get("group"))
            self.bytes += round(factor * t.numel() * t.element_size() * (size - 1) / size)
            self.calls += 1
            return fn(*args, **kwargs)

        return counted


def counting_hook(state: dict, bucket):  # DDP refuses a string return annotation
    """DDP communication hook: count the bucket's bytes, average it over the ranks."""
    buf = bucket.buffer()
    state["bytes"] += buf.numel() * buf.element_size()
    state["calls"] += 1
    buf.div_(dist.get_world_size())
    fut = dist.all_reduce(buf, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


# -- the variants --------------------------------------------------------------------
class Variant:
    """One way of taking a step, on its own copy of the model."""

    def __init__(self, name: str, K: int, cfg: Config, device: torch.device, mesh) -> None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        from paretomtl.adapters.torch import Aggregator

        self.name = name
        self.hook = {"bytes": 0, "calls": 0}
        self.agg = None
        net = Net(cfg.widths, K, seed=0).to(device)
        ids = [device.index] if device.type == "cuda" else None
        if name in SHARDED_VARIANTS:
            from torch.distributed.fsdp import fully_shard

            fully_shard(net.trunk, mesh=mesh)
            fully_shard(net, mesh=mesh)
            self.model, inner = net, net
        else:
            self.model = DDP(net, device_ids=ids)
            inner = net
            if name == "ddp-sum":
                self.model.register_comm_hook(self.hook, counting_hook)
        self.shared = list(inner.trunk.parameters())
        self.heads = list(inner.heads.parameters())
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr)
        if name.startswith("exact/"):
            exchange = name.split("/")[1]
            self.agg = Aggregator("mgda", ddp=self.model, distributed="exact", exchange=exchange)
        elif name == "local":
            self.agg = Aggregator("mgda", ddp=self.model, distributed="local")
        elif name == "sharded":
            self.agg = Aggregator("mgda", distributed="sharded")

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        losses = losses_of(self.model(x), y)
        if self.agg is None:
            sum(losses).backward()
        else:
            self.agg.backward(losses, self.shared, task_params=self.heads)
        self.opt.step()

    def counted(self) -> int:
        """Bytes sent so far: agg.traffic, or the hook's buckets in the ring model."""
        if self.agg is not None:
            return self.agg.traffic.bytes
        R = dist.get_world_size()
        return round(2 * self.hook["bytes"] * (R - 1) / R)


def measure(K: int, cfg: Config, device: torch.device, mesh, wire: Wire) -> dict:
    rank = dist.get_rank()
    names = [*DDP_VARIANTS, *(SHARDED_VARIANTS if cfg.sharded else ())]
    variants = [Variant(n, K, cfg, device, mesh) for n in names]
    x, y = batch_of(cfg.widths, K, cfg.batch, [K, rank], device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = {v.name: [] for v in variants}
    wire_bytes = dict.fromkeys(times, 0)
    counted_start: dict[str, int] = {}
    for rep in range(cfg.warmup + cfg.steps):
        if rep == cfg.warmup:
            counted_start = {v.name: v.counted() for v in variants}
        for v in variants:
            dist.barrier()
            sync()
            before = wire.bytes
            t0 = time.perf_counter()
            v.step(x, y)
            sync()
            dt = time.perf_counter() - t0
            if rep >= cfg.warmup:
                times[v.name].append(dt)
                wire_bytes[v.name] += wire.bytes - before
    slowest = {}
    for name, ts in times.items():
        t = torch.tensor(ts, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)  # outside the steps: not attributed
        slowest[name] = statistics.median(t.cpu().tolist())
    M = sum(p.numel() for p in variants[0].shared)
    rows = {}
    for v in variants:
        counted = (v.counted() - counted_start[v.name]) / cfg.steps
        rows[v.name] = {
            "seconds": slowest[v.name],
            "counted": None if v.name == "fsdp-sum" else counted,
            "wire": wire_bytes[v.name] / cfg.steps,
        }
    del variants
    return {"K": K, "M": M, "T": K * (cfg.widths[-1] + 1), "rows": rows}


# -- local against exact on a toy ----------------------------------------------------
def flat_grads(params) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1).double() for p in params])


def flat_params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in module.parameters()])


def max_rank_spread(t: torch.Tensor) -> float:
    """max over entries of (max over ranks - min over ranks) of a float64 vector."""
    hi, lo = t.clone(), -t.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MAX)
    return float((hi + lo).max())


def accuracy(cfg: Config, device: torch.device) -> dict:
    """Train a toy along exact mode; at every step also take local mode's combined
    gradient at the same parameters; train a second copy in local mode."""
    from paretomtl.adapters.torch import Aggregator

    rank, R, K, B = dist.get_rank(), dist.get_world_size(), 4, 16
    widths = (8, 32, 16)
    exact_net = Net(widths, K, seed=1).to(device)
    local_net = copy.deepcopy(exact_net)
    start = flat_params(exact_net)
    exact_agg = Aggregator("mgda", distributed="exact")
    probe_agg = Aggregator("mgda", distributed="local")
    local_agg = Aggregator("mgda", distributed="local")
    exact_opt = torch.optim.SGD(exact_net.parameters(), lr=0.1)
    local_opt = torch.optim.SGD(local_net.parameters(), lr=0.1)
    cosines, w_between, w_vs_exact, ref_diff = [], [], [], []
    for step in range(cfg.toy_steps):
        batches = [batch_of(widths, K, B, [7, r, step], device) for r in range(R)]
        x, y = batches[rank]
        shared = list(exact_net.trunk.parameters())
        # local mode's combined gradient at exact mode's parameters
        exact_net.zero_grad(set_to_none=True)
        info_l = probe_agg.backward(losses_of(exact_net(x), y), shared)
        g_local = flat_grads(shared)
        exact_net.zero_grad(set_to_none=True)
        info_e = exact_agg.backward(losses_of(exact_net(x), y), shared)
        g_exact = flat_grads(shared)
        cosines.append(float(g_local @ g_exact / (g_local.norm() * g_exact.norm())))
        w_l = torch.as_tensor(info_l.weights, dtype=torch.float64, device=device)
        w_between.append(max_rank_spread(w_l))
        w_vs_exact.append(float(np.abs(info_l.weights - info_e.weights).max()))
        if rank == 0:  # one process on the global batch: no collective
            ref_net = copy.deepcopy(exact_net)
            ref_net.zero_grad(set_to_none=True)
            X = torch.cat([b[0] for b in batches])
            Y = torch.cat([b[1] for b in batches])
            Aggregator("mgda", distributed="off").backward(
                losses_of(ref_net(X), Y), list(ref_net.trunk.parameters())
            )
            g_ref = flat_grads(list(ref_net.parameters()))
            g_all = flat_grads(list(exact_net.parameters()))
            ref_diff.append(float((g_all - g_ref).abs().max() / g_ref.abs().max()))
        exact_opt.step()
        local_net.zero_grad(set_to_none=True)
        local_agg.backward(losses_of(local_net(x), y), list(local_net.trunk.parameters()))
        local_opt.step()
    theta_e, theta_l = flat_params(exact_net), flat_params(local_net)
    return {
        "R": R,
        "K": K,
        "steps": cfg.toy_steps,
        "widths": list(widths),
        "batch": B,
        "cos_median": statistics.median(cosines),
        "cos_min": min(cosines),
        "w_between_max": max(w_between),
        "w_vs_exact_max": max(w_vs_exact),
        "ref_rel_max": max(ref_diff) if ref_diff else None,
        "params_spread_exact": max_rank_spread(theta_e),
        "params_spread_local": max_rank_spread(theta_l),
        "local_drift": float((theta_l - theta_e).norm() / (theta_e - start).norm()),
    }


# -- the processes -------------------------------------------------------------------
def worker(rank: int, R: int, port: int, cfg: dict, out_path: str) -> None:
    cfg = Config(**cfg)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if cfg.backend == "nccl":
        torch.cuda.set_device(rank)
        device = torch.device("cuda", rank)
    else:
        device = torch.device("cpu")
    dist.init_process_group(
        cfg.backend, rank=rank, world_size=R, timeout=datetime.timedelta(seconds=300)
    )
    try:
        mesh = None
        if cfg.sharded:
            from torch.distributed.device_mesh import init_device_mesh

            mesh = init_device_mesh(device.type, (R,))
        wire = Wire()
        wire.install()
        results = [measure(K, cfg, device, mesh, wire) for K in cfg.Ks]
        toy = accuracy(cfg, device)
        if rank == 0:
            with open(out_path, "w") as f:
                json.dump({"R": R, "timing": results, "toy": toy}, f)
        # No rank tears gloo down while another is still in a collective: twice a rank
        # aborted at exit ("terminate called without an active exception") without it.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_group(R: int, cfg: Config) -> dict:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        mp.start_processes(
            worker, args=(R, free_port(), asdict(cfg), out), nprocs=R, start_method="spawn"
        )
        with open(out) as f:
            return json.load(f)


# -- the report ----------------------------------------------------------------------
def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3f} {unit}"
    return f"{n:.0f} B"


def device_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def accumulation(draws: int, micro: int = 4, K: int = 3, batch: int = 16) -> dict:
    """One process, ``micro`` micro-batches per optimizer step: the combined trunk
    gradient when MGDA solves every micro-batch (the gradients add up in ``.grad``)
    against solving once on the summed Jacobian (``Aggregator.accumulate``), over
    ``draws`` draws of the data at fixed parameters."""
    from paretomtl.adapters.torch import Aggregator

    torch.manual_seed(0)
    trunk = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 16))
    heads = torch.nn.ModuleList(torch.nn.Linear(16, 1) for _ in range(K))
    W = torch.randn(K, 10)
    cosines, gaps = [], []
    for _ in range(draws):
        xs = [torch.randn(batch, 10) for _ in range(micro)]
        ys = [torch.tanh(x @ W.T) + 0.3 * torch.randn(batch, K) for x in xs]

        def combined(once: bool, xs=xs, ys=ys):
            for p in trunk.parameters():
                p.grad = None
            agg = Aggregator("mgda", distributed="off")
            for m, (x, y) in enumerate(zip(xs, ys, strict=True)):
                z = trunk(x)
                losses = [(h(z)[:, 0] - y[:, i]).pow(2).mean() / micro for i, h in enumerate(heads)]
                if once and m < micro - 1:
                    with agg.accumulate():
                        agg.backward(losses, trunk.parameters())
                else:
                    info = agg.backward(losses, trunk.parameters())
            return torch.cat([p.grad.reshape(-1) for p in trunk.parameters()]), info.weights

        each, _ = combined(False)
        once, _ = combined(True)
        cosines.append(float(torch.nn.functional.cosine_similarity(each, once, dim=0)))
        gaps.append(float((each - once).norm() / once.norm()))
    return {
        "draws": draws,
        "micro": micro,
        "K": K,
        "batch": batch,
        "cos_median": statistics.median(cosines),
        "cos_min": min(cosines),
        "gap_median": statistics.median(gaps),
        "gap_max": max(gaps),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (R=2, K in {2, 4})")
    parser.add_argument(
        "--out", metavar="FILE", help="also write the report to FILE ({device}: cpu or the GPU)"
    )
    parser.add_argument("--nccl", action="store_true", help="NCCL, one GPU per process")
    parser.add_argument("--no-sharded", action="store_true", help="leave out fully_shard")
    parser.add_argument("--ranks", type=int, nargs="*", help="process counts (default 2 4)")
    args = parser.parse_args(argv)
    backend = "gloo"
    device_name = cpu_model()
    slug = "cpu"
    if args.nccl:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count < 2 or not dist.is_nccl_available():
            print(f"--nccl needs NCCL and at least 2 GPUs; this machine has {count}")
            return 0
        backend = "nccl"
        device_name = torch.cuda.get_device_name(0)
        slug = device_slug(device_name)
    ranks = args.ranks or ([2] if args.quick else [2, 4])
    if backend == "nccl":
        ranks = [r for r in ranks if r <= torch.cuda.device_count()]
    if not ranks:
        print("no process count to run (--ranks; with --nccl, at most one process per GPU)")
        return 0
    if args.quick:
        cfg = Config(backend, (2, 4), (16, 64, 32), 16, 2, 5, not args.no_sharded, 5)
    else:
        cfg = Config(backend, (2, 4, 10), (128, 512, 512, 256), 32, 3, 25, not args.no_sharded, 30)
    report = Report()
    start = time.perf_counter()
    report(f"paretomtl on torch.distributed against plain DDP ({time.strftime('%Y-%m-%d %H:%M')})")
    if backend == "nccl":
        report(f"GPU: {device_name} x {torch.cuda.device_count()}; CPU: {cpu_model()}")
    else:
        report(f"CPU: {device_name}; {os.cpu_count()} cores; load average {load_average()}")
    report(
        f"torch {torch.__version__}, backend {backend}, processes spawned on this machine"
        + (" over loopback, 1 thread each" if backend == "gloo" else ", one GPU each")
    )
    trunk = Net(cfg.widths, 1, 0).trunk
    report(
        f"model: trunk {'-'.join(map(str, cfg.widths))} (ReLU; M = {n_params(trunk):,} shared "
        f"parameters), K heads {cfg.widths[-1]}-1 (T = {cfg.widths[-1] + 1} K parameters); "
        f"batch {cfg.batch} per rank; MGDA; SGD"
    )
    report(
        f"{cfg.warmup} warm-up + {cfg.steps} timed steps per variant, interleaved; ms/step: "
        f"median of the slowest rank's step"
    )
    crowded = [R for R in ranks if backend == "gloo" and R > (os.cpu_count() or 1)]
    if crowded:
        report(
            f"R = {', '.join(map(str, crowded))}: more processes than cores; those times "
            f"include the processes' sharing of the cores"
        )
    report()
    results = []
    for R in ranks:
        t0 = time.perf_counter()
        results.append(run_group(R, cfg))
        print(f"[R = {R} done in {time.perf_counter() - t0:.0f} s]", flush=True)
    report.heading("1. Bytes sent per rank and time per optimizer step")
    report(
        "counted: agg.traffic (the aggregator's collectives), for ddp-sum its comm hook's "
        "buckets;\nwire: every torch.distributed collective the step called (FSDP's too); "
        "both per rank and step, ring model.\nx DDP: bytes (counted; wire for the FSDP rows) "
        "and time against ddp-sum at the same R and K."
    )
    report()
    rows: list[list[str]] = []
    checks: list[str] = []
    consistent: list[str] = []
    for res in results:
        R = res["R"]
        for t in res["timing"]:
            K, r = t["K"], t["rows"]
            base_b, base_t = r["ddp-sum"]["counted"], r["ddp-sum"]["seconds"]
            for name, row in r.items():
                b = row["wire"] if name in SHARDED_VARIANTS else row["counted"]
                rows.append(
                    [
                        f"R={R} K={K:<2d} {name}",
                        fmt_bytes(row["counted"]),
                        fmt_bytes(row["wire"]),
                        f"{b / base_b:.2f}",
                        f"{(K + 1) / 2:.1f}" if name == "exact/reduce-scatter" else "",
                        f"{row['seconds'] * 1e3:.1f}",
                        f"{row['seconds'] / base_t:.2f}",
                    ]
                )
                if row["counted"] is not None and name != "sharded":
                    if round(row["counted"]) != round(row["wire"]):
                        consistent.append(f"R={R} K={K} {name}: {row['counted']} != {row['wire']}")
            rows.append([])
            ratio = r["exact/reduce-scatter"]["counted"] / base_b
            bound = (K + 1) / 2 * TARGET_SLACK
            verdict = "PASS" if ratio <= bound else "MISS"
            checks.append(
                f"  {verdict} R={R} K={K:<2d}: exact (reduce-scatter) {ratio:.3f}x plain DDP's "
                f"bytes; bound (K + 1)/2 + 10 % = {bound:.3f}x"
                f" (all-reduce exchange: {r['exact/all-reduce']['counted'] / base_b:.3f}x)"
            )
    report.table(["R, K, variant", "counted", "wire", "x DDP", "(K+1)/2", "ms/step", "x DDP"], rows)
    report("Target (issue 14):")
    for line in checks:
        report(line)
    if consistent:
        report("  MISS agg.traffic differs from the wire count: " + "; ".join(consistent))
    else:
        report("  PASS agg.traffic equals the wire count for every DDP variant and step")
    report()
    if cfg.sharded:
        report(
            "FSDP rows: 'counted' of sharded is its K x K Gram, losses and agreement only; "
            "its wire bytes over fsdp-sum's:"
        )
        for res in results:
            for t in res["timing"]:
                r = t["rows"]
                ratio = r["sharded"]["wire"] / r["fsdp-sum"]["wire"]
                report(f"  R={res['R']} K={t['K']:<2d}: sharded / fsdp-sum = {ratio:.2f}x")
        report()
    report.heading("2. Local mode against exact mode (toy)")
    toy0 = results[0]["toy"]
    report(
        f"trunk {'-'.join(map(str, toy0['widths']))}, K = {toy0['K']}, batch {toy0['batch']} "
        f"per rank, different data on every rank and step, {toy0['steps']} SGD steps (lr 0.1) "
        f"along exact mode;\nat each step local mode's combined gradient is taken at the same "
        f"parameters; a second copy trains in local mode."
    )
    report()
    toy_rows = []
    for res in results:
        toy = res["toy"]
        toy_rows.append(
            [
                f"R={toy['R']}",
                f"{toy['cos_median']:.4f}",
                f"{toy['cos_min']:.4f}",
                f"{toy['w_vs_exact_max']:.3f}",
                f"{toy['w_between_max']:.3f}",
                f"{toy['ref_rel_max']:.1e}",
                f"{toy['params_spread_exact']:.1e}",
                f"{toy['params_spread_local']:.1e}",
                f"{toy['local_drift']:.3f}",
            ]
        )
    report.table(
        [
            "ranks",
            "cos med",
            "cos min",
            "|w_l-w_e|",
            "w_l spread",
            "exact vs 1 proc",
            "params spread exact",
            "local",
            "local drift",
        ],
        toy_rows,
    )
    report(
        "cos: cosine between local and exact combined gradients of the trunk; |w_l-w_e|: "
        "largest difference\nbetween a rank's local MGDA weights and exact mode's; w_l "
        "spread: largest difference of the local\nweights between ranks; exact vs 1 proc: "
        "max |g_exact - g_ref| / max |g_ref|, g_ref from one process\non the global batch "
        "(distributed='off'); params spread: largest parameter difference between ranks\n"
        "after training; local drift: ||theta_local - theta_exact|| / ||theta_exact - "
        "theta_0|| after training."
    )
    report()
    acc = accumulation(5 if args.quick else 50)
    report.heading("3. Micro-batches: one solve per optimizer step against one per micro-batch")
    report(
        f"one process; trunk 10-32-16 (tanh), K = {acc['K']}, {acc['micro']} micro-batches of "
        f"{acc['batch']} per optimizer step, MGDA, {acc['draws']} draws of the data;\n"
        f"'each': every micro-batch solved, the combined gradients summed in .grad; 'once': "
        f"Aggregator.accumulate(), one solve on the summed Jacobian."
    )
    report(
        f"cosine(each, once): median {acc['cos_median']:.4f}, min {acc['cos_min']:.4f}; "
        f"||each - once|| / ||once||: median {acc['gap_median']:.3f}, max {acc['gap_max']:.3f}"
    )
    report()
    report(f"total time {time.perf_counter() - start:.0f} s; load average {load_average()}")
    if args.out:
        path = args.out.replace("{device}", slug)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(report.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
