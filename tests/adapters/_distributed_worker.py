"""What each spawned rank of tests/adapters/test_distributed.py runs.

:func:`main` joins a gloo process group over loopback and runs a list of scenarios in
order; every ``scenario_<name>(rank, R, **options)`` runs on every rank and returns
plain data (numpy arrays, numbers, strings, dicts), put on a queue for the parent.
The parent builds its references in one process, without a process group, from the
same model, data and loss helpers (:class:`Net`, :func:`batch`, :func:`rows`,
:func:`step`).

A scenario that raises unexpectedly is reported with its traceback and ends the rank's
run (its collectives may be out of step with the other ranks'); a collective then
waiting on a rank that has left fails after ``PG_TIMEOUT`` seconds instead of hanging.
"""

from __future__ import annotations

import copy
import os
import pickle
import time
import traceback
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from paretomtl.adapters.torch import Aggregator

DTYPE = torch.float64
IN, HIDDEN, FEATURES, K = 6, 16, 7, 3  # M = 231 trunk entries: not a multiple of R
N = 4  # rows per rank (per micro-batch)
LR = 0.1
PG_TIMEOUT = 30  # seconds a collective waits for the other ranks
OPTIONS = {"dwa": {"per": "step"}, "gradvac": {"beta": 0.5}}  # state that shows in 3 steps


class Net(torch.nn.Module):
    """A shared trunk and K one-output heads, the same on every rank."""

    def __init__(self, dtype: torch.dtype = DTYPE) -> None:
        super().__init__()
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(IN, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, FEATURES)
        )
        self.heads = torch.nn.ModuleList(torch.nn.Linear(FEATURES, 1) for _ in range(K))
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.to(dtype)

    def forward(self, x):
        z = self.trunk(x)
        return z, [h(z) for h in self.heads]  # (n, 1) each; no view out of fully_shard


def batch(step: int, R: int, micro: int = 1, dtype: torch.dtype = DTYPE):
    """The global batch of optimizer step ``step``: R * micro * N rows."""
    g = torch.Generator().manual_seed(1000 + step)
    n = R * micro * N
    x = torch.randn(n, IN, generator=g, dtype=torch.float64)
    y = torch.randn(n, K, generator=g, dtype=torch.float64) + torch.sin(2 * x[:, :K])
    return x.to(dtype), y.to(dtype)


def rows(rank: int, part: int = 0, micro: int = 1) -> slice:
    """Rank ``rank``'s micro-batch ``part`` of the global batch."""
    start = (rank * micro + part) * N
    return slice(start, start + N)


def task_losses(outputs, y, scale: float = 1.0):
    return [scale * (o - y[:, i : i + 1]).pow(2).mean() for i, o in enumerate(outputs)]


def parameters(net: Net) -> list[torch.Tensor]:
    """Trunk then heads: the order of every flattened gradient and parameter vector."""
    return [*net.trunk.parameters(), *net.heads.parameters()]


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def flat(tensors) -> np.ndarray:
    """The tensors (DTensors gathered whole) as one float64 numpy vector."""
    return np.concatenate([_full(t).detach().reshape(-1).double().numpy() for t in tensors])


def grads(net: Net) -> np.ndarray:
    missing = [i for i, p in enumerate(parameters(net)) if p.grad is None]
    if missing:
        raise AssertionError(f"parameters {missing} have no .grad")
    return flat(p.grad for p in parameters(net))


def step(agg, net, x, y, *, model=None, sharded=False, features=False, scale=1.0, drop=0):
    """One aggregated backward of the losses of (x, y); ``model`` is what is called
    (a DDP wrapper), ``net`` holds the parameters; ``drop`` leaves out the last tasks."""
    z, outputs = (model or net)(x)
    losses = task_losses(outputs, y, scale)
    if drop:
        losses = losses[:-drop]
    options = {}
    if agg.method == "gradnorm":
        options["layer"] = [net.trunk[2].weight]
    if sharded:
        options["task_params"] = net.sharded_heads
    if features:
        options["features"] = z
    return agg.backward(losses, net.trunk.parameters(), **options)


_MESH = {}


def shard(net: Net, R: int) -> None:
    """fully_shard the trunk, then the whole model (the heads with the root)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if R not in _MESH:
        _MESH[R] = init_device_mesh("cpu", (R,))
    fully_shard(net.trunk, mesh=_MESH[R])
    fully_shard(net, mesh=_MESH[R])
    # The sharded parameter objects, collected once before training as the adapter asks:
    # between forward and backward fully_shard registers unsharded stand-ins instead.
    net.sharded_heads = list(net.heads.parameters())


def aggregator(method: str, **kw) -> Aggregator:
    return Aggregator(method, seed=0, options=OPTIONS.get(method), **kw)


# -- scenarios ------------------------------------------------------------------------
def scenario_train(rank, R, *, method, mode, exchange="auto", steps=3, dtype="float64"):
    """``steps`` SGD steps of ``method`` on this rank's part of each global batch."""
    dtype = getattr(torch, dtype)
    net = Net(dtype)
    sharded = mode == "sharded"
    if sharded:
        shard(net, R)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    agg = aggregator(method, distributed=mode, exchange=exchange)
    out = {"grads": [], "weights": [], "losses": []}
    for t in range(steps):
        x, y = batch(t, R, dtype=dtype)
        opt.zero_grad(set_to_none=True)
        info = step(agg, net, x[rows(rank)], y[rows(rank)], sharded=sharded)
        out["grads"].append(grads(net))
        out["weights"].append(np.array(info.weights))
        out["losses"].append(np.array(info.losses))
        opt.step()
    out["params"] = flat(parameters(net))
    out["state"] = agg.state_dict()
    out["mode"] = agg.distributed_mode
    return out


def scenario_representation(rank, R, *, method, steps=2):
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    agg = aggregator(method, distributed="exact", mode="representation")
    out = {"grads": [], "weights": []}
    for t in range(steps):
        x, y = batch(t, R)
        opt.zero_grad(set_to_none=True)
        info = step(agg, net, x[rows(rank)], y[rows(rank)], features=True)
        out["grads"].append(grads(net))
        out["weights"].append(np.array(info.weights))
        opt.step()
    return out


def scenario_local(rank, R, *, steps=2):
    """Local mode: each rank solves on its own batch; the combinations are averaged."""
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    agg = aggregator("mgda", distributed="local")
    out = {"grads": [], "weights": [], "params": []}
    for t in range(steps):
        x, y = batch(t, R)
        out["params"].append(flat(parameters(net)))
        opt.zero_grad(set_to_none=True)
        info = step(agg, net, x[rows(rank)], y[rows(rank)])
        out["grads"].append(grads(net))
        out["weights"].append(np.array(info.weights))
        opt.step()
    out["mode"] = agg.distributed_mode
    out["bytes"] = agg.traffic.bytes
    return out


def _continue(agg, net, rank, R, first, last):
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    out = {"grads": [], "weights": []}
    for t in range(first, last):
        x, y = batch(t, R)
        opt.zero_grad(set_to_none=True)
        info = step(agg, net, x[rows(rank)], y[rows(rank)])
        out["grads"].append(grads(net))
        out["weights"].append(np.array(info.weights))
        opt.step()
    return out


def scenario_checkpoint(rank, R, *, exchange):
    """GradVac checkpointed after 2 steps on every rank, resumed in fresh aggregators."""

    def fresh():
        return aggregator("gradvac", distributed="exact", exchange=exchange)

    net, agg = Net(), fresh()
    _continue(agg, net, rank, R, 0, 2)
    saved = pickle.dumps(agg.state_dict())  # as a checkpoint file would hold it
    weights = copy.deepcopy(net.state_dict())
    continued = _continue(agg, net, rank, R, 2, 4)
    resumed_net, resumed = Net(), fresh()
    resumed_net.load_state_dict(weights)
    resumed.load_state_dict(pickle.loads(saved))
    out = {"continued": continued, "resumed": _continue(resumed, resumed_net, rank, R, 2, 4)}
    control_net = Net()
    control_net.load_state_dict(weights)
    out["not_loaded"] = _continue(fresh(), control_net, rank, R, 2, 3)
    out["saved"] = pickle.loads(saved)
    # Loaded on rank 0 only: the ranks' states differ, every rank refuses the step.
    partial_net, partial = Net(), fresh()
    partial_net.load_state_dict(weights)
    if rank == 0:
        partial.load_state_dict(pickle.loads(saved))
    try:
        _continue(partial, partial_net, rank, R, 2, 3)
        out["partial"] = None
    except ValueError as exc:
        out["partial"] = str(exc)
    return out


def scenario_nonfinite(rank, R, *, where, policy, mode, exchange="auto", method="mgda"):
    """On the last rank only, task 1's loss is NaN (``where="loss"``), or finite with a
    NaN gradient at the trunk (``"gradient"``); then a finite step on every rank."""
    net = Net()
    sharded = mode == "sharded"
    if sharded:
        shard(net, R)
    agg = aggregator(method, distributed=mode, exchange=exchange, on_nonfinite=policy)
    # The parameter objects now: under fully_shard, the root's forward swaps the heads'
    # registered parameters for unsharded ones until a backward reshards them.
    params = parameters(net)
    for p in params:
        p.grad = torch.full_like(p, 7.0)
    x, y = batch(0, R)
    z, outputs = net(x[rows(rank)])
    losses = task_losses(outputs, y[rows(rank)])
    if rank == R - 1 and where == "loss":
        losses[1] = losses[1] * float("nan")
    elif rank == R - 1:  # sqrt's derivative at 0 is inf, times 0: NaN, the value stays
        losses[1] = losses[1] + torch.sqrt(0.0 * z.sum())
    options = {"task_params": net.sharded_heads} if sharded else {}
    out = {"raised": None, "skipped": None}
    try:
        info = agg.backward(losses, net.trunk.parameters(), **options)
        out["skipped"], out["reason"] = info.skipped, info.reason
    except ValueError as exc:
        out["raised"] = str(exc)
    out["after"] = flat(p.grad for p in params)
    for p in params:
        p.grad = None
    x, y = batch(1, R)
    info = step(agg, net, x[rows(rank)], y[rows(rank)], sharded=sharded)
    out["next_skipped"] = info.skipped
    out["next_grads"] = grads(net)
    out["next_weights"] = np.array(info.weights)
    return out


def scenario_accumulate(rank, R, *, method, mode, exchange="auto", micro=3, steps=2):
    """micro - 1 micro-batches inside accumulate(), the last one solves; per step."""
    net = Net()
    sharded = mode == "sharded"
    if sharded:
        shard(net, R)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    agg = aggregator(method, distributed=mode, exchange=exchange)
    out = {"grads": [], "weights": [], "inside": []}
    for t in range(steps):
        x, y = batch(t, R, micro)
        opt.zero_grad(set_to_none=True)
        with agg.accumulate():
            for m in range(micro - 1):
                part = rows(rank, m, micro)
                info = step(agg, net, x[part], y[part], sharded=sharded)
                out["inside"].append((info.accumulated, info.weights is None))
        part = rows(rank, micro - 1, micro)
        info = step(agg, net, x[part], y[part], sharded=sharded)
        out["grads"].append(grads(net))
        out["weights"].append(np.array(info.weights))
        out["accumulated"] = info.accumulated
        opt.step()
    return out


def scenario_mismatch(rank, R):
    """Ranks passing different tasks or shared parameters; then a good step."""
    out = {}
    x, y = batch(0, R)
    x, y = x[rows(rank)], y[rows(rank)]
    cases = {
        "tasks": dict(method="mgda", drop=1 if rank == 0 else 0),
        "weighting tasks": dict(method="dwa", drop=1 if rank == 0 else 0),
    }
    for name, case in cases.items():
        net = Net()
        agg = aggregator(case["method"], distributed="exact")
        try:
            step(agg, net, x, y, drop=case["drop"])
            out[name] = None
        except ValueError as exc:
            out[name] = str(exc)
        out[name + " untouched"] = all(p.grad is None for p in net.parameters())
    net = Net()
    agg = aggregator("mgda", distributed="exact")
    _, outputs = net(x)
    shared = net.trunk.parameters() if rank == 0 else net.trunk[2].parameters()
    try:
        agg.backward(task_losses(outputs, y), shared)
        out["shared"] = None
    except ValueError as exc:
        out["shared"] = str(exc)
    out["shared untouched"] = all(p.grad is None for p in net.parameters())
    step(agg, net, x, y)  # the same aggregator, now with matching inputs
    out["next_grads"] = grads(net)
    # fully_shard: the heads' parameters read after the forward are unsharded stand-ins,
    # whose .grad FSDP never writes; refused on every rank, nothing written.
    net = Net()
    shard(net, R)
    agg = aggregator("mgda")
    _, outputs = net(x)
    try:
        agg.backward(
            task_losses(outputs, y), net.trunk.parameters(), task_params=net.heads.parameters()
        )
        out["stand-ins"] = None
    except ValueError as exc:
        out["stand-ins"] = str(exc)
    out["stand-ins untouched"] = all(p.grad is None for p in parameters(net))
    # PCGrad seeded differently on each rank: refused on every rank.
    try:
        step(Aggregator("pcgrad", seed=rank, distributed="exact"), Net(), x, y)
        out["seeds"] = None
    except ValueError as exc:
        out["seeds"] = str(exc)
    # Not seeded: the ranks adopt rank 0's generator and draw the same task orders.
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    agg = Aggregator("pcgrad", distributed="exact")
    out["unseeded"] = []
    for t in range(3):
        xt, yt = batch(t, R)
        opt.zero_grad(set_to_none=True)
        step(agg, net, xt[rows(rank)], yt[rows(rank)])
        out["unseeded"].append(grads(net))
        opt.step()
    # A method object given without a seed, under an aggregator without one: only the
    # aggregator's generators differ, and rank 0's is adopted (the object is equal).
    from paretomtl.weighting import DynamicWeightAverage

    net = Net()
    try:
        info = step(Aggregator(DynamicWeightAverage(K), distributed="exact"), net, x, y)
        out["given object"] = None
        out["given object weights"] = info.weights
    except ValueError as exc:
        out["given object"] = str(exc)
    return out


def scenario_traffic(rank, R):
    x, y = batch(0, R)
    out = {}
    for name, mode, exchange in [
        ("all-reduce", "exact", "all-reduce"),
        ("reduce-scatter", "exact", "reduce-scatter"),
        ("local", "local", "auto"),
    ]:
        net = Net()
        agg = aggregator("mgda", distributed=mode, exchange=exchange)
        step(agg, net, x[rows(rank)], y[rows(rank)])
        out[name] = (agg.traffic.bytes, agg.traffic.calls)
    net = Net()
    out["M"] = sum(p.numel() for p in net.trunk.parameters())
    out["T"] = sum(p.numel() for p in net.heads.parameters())
    out["itemsize"] = torch.empty((), dtype=DTYPE).element_size()
    return out


def _ddp(net):
    return torch.nn.parallel.DistributedDataParallel(net)


def scenario_ddp(rank, R, *, method, exchange="auto", steps=3):
    """A DDP-wrapped model, the aggregator handed the wrapper (ddp=)."""
    net = Net()
    model = _ddp(net)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    agg = aggregator(method, ddp=model, exchange=exchange)
    out = {"grads": [], "weights": []}
    for t in range(steps):
        x, y = batch(t, R)
        opt.zero_grad(set_to_none=True)
        info = step(agg, net, x[rows(rank)], y[rows(rank)], model=model)
        out["grads"].append(grads(net))
        out["weights"].append(np.array(info.weights))
        opt.step()
    out["mode"] = agg.distributed_mode
    return out


def scenario_ddp_without(rank, R, *, distributed):
    """A DDP-wrapped model, the aggregator not told (the issue's report)."""
    net = Net()
    model = _ddp(net)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    agg = aggregator("mgda", distributed=distributed)
    out = {"grads": [], "weights": [], "error": None}
    for t in range(2):
        x, y = batch(t, R)
        opt.zero_grad(set_to_none=True)
        try:
            info = step(agg, net, x[rows(rank)], y[rows(rank)], model=model)
        except RuntimeError as exc:
            out["error"] = f"step {t}: {exc}"
            break
        out["grads"].append(grads(net))
        out["weights"].append(np.array(info.weights))
        opt.step()
    return out


# -- the rank's main ------------------------------------------------------------------
def main(rank: int, R: int, port: int, queue, plan) -> None:
    """Join the group and run ``plan``, a list of (key, scenario name, options).

    After each scenario the ranks meet at the store: the run goes on only where every
    rank ended it the same way (all well, or all with the same exception type, such as
    a bug met on every rank before any collective); otherwise the collectives may be
    out of step, and the rank stops."""
    torch.set_num_threads(1)
    if os.path.exists("/sys/class/net/lo"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    timeout = timedelta(seconds=PG_TIMEOUT)
    try:
        store = dist.TCPStore("127.0.0.1", port, R, rank == 0, timeout=timeout)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=R, timeout=timeout)
    except Exception:
        queue.put((rank, None, "error", traceback.format_exc(), 0.0))
        return
    queue.put((rank, None, "ready", None, 0.0))
    try:
        for key, name, options in plan:
            start = time.perf_counter()
            try:
                result = globals()["scenario_" + name](rank, R, **options)
                status = "ok"
            except Exception as exc:
                result, status = traceback.format_exc(), type(exc).__name__
            seconds = time.perf_counter() - start
            queue.put((rank, key, "ok" if status == "ok" else "error", result, seconds))
            store.set(f"scenario/{key}/{rank}", status)
            names = [f"scenario/{key}/{r}" for r in range(R)]
            try:
                store.wait(names, timedelta(seconds=PG_TIMEOUT + 10))
                statuses = {store.get(n).decode() for n in names}
            except Exception:
                statuses = {"a rank did not finish"}
            if len(statuses) != 1:
                queue.put((rank, None, "stopped", f"after {key}: {sorted(statuses)}", 0.0))
                return
        queue.put((rank, None, "done", None, 0.0))
    finally:
        dist.destroy_process_group()
