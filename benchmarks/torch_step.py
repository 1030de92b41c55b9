"""Time and peak memory of one multi-task training step through the torch adapter.

Run:
    .venv/bin/python benchmarks/torch_step.py [--quick] [--out FILE]

For a shared MLP trunk (about 1M parameters on the CPU; 10M and 100M on a GPU) with
K in {2, 10} linear heads, each configuration runs in its own subprocess (so peak
memory is its own) and reports the median step time (zero_grad, forward, backward)
and the peak memory above the model and data:

- ``sum``: plain ``sum(losses).backward()``, the baseline of every ratio;
- ``ours/<method>/<mode>``: ``paretomtl.adapters.torch.Aggregator`` with the modes
  autograd, batched and representation;
- ``torchjd/<method>``: TorchJD's ``mtl_backward`` + ``jac_to_grad`` for the methods
  both libraries have (MGDA, PCGrad), when torchjd is installed.

A second table times the aggregation alone (Gram + solve + combine, from a ready
Jacobian) against two reads of the Jacobian at the memory bandwidth measured in the
same run (a large tensor sum). Peak memory is CUDA's max_memory_allocated on a GPU,
and the growth of the process's peak RSS on the CPU.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

WIDTHS = {
    "1M": (256, 1024, 512, 256),
    "10M": (1024, 2048, 2048, 1024),
    "100M": (2048, 8192, 8192, 2048),
}


def build(size: str, K: int, device: str):
    torch.manual_seed(0)
    w = WIDTHS[size]
    layers = []
    for a, b in itertools.pairwise(w):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    trunk = torch.nn.Sequential(*layers).to(device)
    heads = torch.nn.ModuleList(torch.nn.Linear(w[-1], 1) for _ in range(K)).to(device)
    x = torch.randn(128, w[0], device=device)
    ys = torch.randn(K, 128, device=device)
    return trunk, heads, x, ys


def losses_of(trunk, heads, x, ys):
    z = trunk(x)
    return [((h(z).squeeze(-1) - y) ** 2).mean() for h, y in zip(heads, ys, strict=True)], z


def make_step(name: str, trunk, heads, x, ys):
    shared = list(trunk.parameters())
    if name == "sum":

        def step():
            losses, _ = losses_of(trunk, heads, x, ys)
            sum(losses).backward()

        return step
    if name.startswith("ours/"):
        from paretomtl.adapters.torch import Aggregator

        _, method, mode = name.split("/")
        agg = Aggregator(method, mode=mode, seed=0)

        def step():
            losses, z = losses_of(trunk, heads, x, ys)
            agg.backward(losses, shared, features=z if mode == "representation" else None)

        return step
    if name.startswith("torchjd/"):
        from torchjd.aggregation import MGDA, PCGrad
        from torchjd.autojac import jac_to_grad, mtl_backward

        aggregator = {"mgda": MGDA, "pcgrad": PCGrad}[name.split("/")[1]]()

        def step():
            losses, z = losses_of(trunk, heads, x, ys)
            mtl_backward(losses, features=z)
            jac_to_grad(shared, aggregator)

        return step
    raise ValueError(name)


def run_single(name: str, size: str, K: int, device: str, repeats: int) -> dict:
    trunk, heads, x, ys = build(size, K, device)
    step = make_step(name, trunk, heads, x, ys)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for p in list(trunk.parameters()) + list(heads.parameters()):
        p.grad = None
    step()  # warm-up (and numba compilation, from the on-disk cache)
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        for p in list(trunk.parameters()) + list(heads.parameters()):
            p.grad = None
        sync()
        tic = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - tic)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    params = sum(p.numel() for p in trunk.parameters())
    return {
        "name": name,
        "ms": 1e3 * statistics.median(times),
        "peak_mb": peak / 2**20,
        "params": params,
    }


def aggregation_only(size: str, K: int, device: str, repeats: int) -> dict:
    """Gram + solve + combine from a ready Jacobian vs two reads of it at bandwidth."""
    from paretomtl import solvers
    from paretomtl.adapters.torch._jacobian import accumulate_combination, gram_matrix

    trunk, _, _, _ = build(size, K, device)
    params = list(trunk.parameters())
    jac = [torch.randn(K, *p.shape, device=device) for p in params]
    nbytes = sum(J.numel() * J.element_size() for J in jac)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    big = torch.randn(nbytes // 4, device=device)

    def bench(fn) -> float:
        fn()
        sync()
        ts = []
        for _ in range(repeats):
            tic = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - tic)
        return statistics.median(ts)

    t_read = bench(lambda: big.sum())
    bandwidth = nbytes / t_read

    def aggregate():
        G = gram_matrix(jac, K)
        w = solvers.mgda(gram=G).weights
        accumulate_combination(params, jac, w)

    t_agg = bench(aggregate)
    t_gram = bench(lambda: gram_matrix(jac, K))
    t_block = bench(lambda: gram_matrix(jac, K, "blockwise"))
    return {
        "K": K,
        "jacobian_mb": nbytes / 2**20,
        "bandwidth_gbs": bandwidth / 1e9,
        "two_reads_ms": 2e3 * t_read,
        "aggregate_ms": 1e3 * t_agg,
        "gram_ms": 1e3 * t_gram,
        "blockwise_ms": 1e3 * t_block,
        "ratio": t_agg / (2 * t_read),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="K = 2 only, few repeats")
    ap.add_argument("--out", help="also write the tables to this file")
    ap.add_argument("--single", help=argparse.SUPPRESS)
    ap.add_argument("--size", default=None)
    ap.add_argument("--K", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.single:
        print(json.dumps(run_single(args.single, args.size, args.K, device, args.repeats)))
        return
    try:
        import torchjd  # noqa: F401

        peers = ["torchjd/mgda", "torchjd/pcgrad"]
    except ImportError:
        peers = []
    names = ["sum"]
    names += [f"ours/mgda/{m}" for m in ("autograd", "batched", "representation")]
    names += ["ours/pcgrad/autograd", "ours/pcgrad/batched", *peers]
    sizes = ["1M"] if device == "cpu" else ["10M", "100M"]
    Ks = [2] if args.quick else [2, 10]
    repeats = 3 if args.quick else 10
    lines = [
        f"# torch_step on {device}: "
        + (torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"),
        f"# torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}",
        "",
        f"{'size':>5} {'K':>3} {'method':<26} {'ms/step':>9} {'x sum':>7} {'peak MB':>9}",
    ]
    print("\n".join(lines), flush=True)
    for size in sizes:
        for K in Ks:
            base = None
            for name in names:
                cmd = [
                    sys.executable,
                    __file__,
                    "--single",
                    name,
                    "--size",
                    size,
                    "--K",
                    str(K),
                    "--repeats",
                    str(repeats),
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    why = proc.stderr.strip().splitlines()[-1]
                    line = f"{size:>5} {K:>3} {name:<26} failed: {why}"
                else:
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    base = r["ms"] if name == "sum" else base
                    line = (
                        f"{size:>5} {K:>3} {name:<26} {r['ms']:>9.2f} {r['ms'] / base:>7.2f} "
                        f"{r['peak_mb']:>9.1f}"
                    )
                print(line, flush=True)
                lines.append(line)
    head = (
        f"\n{'size':>5} {'K':>3} {'J MB':>8} {'GB/s':>6} {'2 reads ms':>11} {'Gram ms':>8} "
        f"{'aggregate ms':>13} {'ratio':>6} {'blockwise Gram ms':>18}"
    )
    print(head)
    lines.append(head)
    for size in sizes:
        for K in Ks:
            r = aggregation_only(size, K, device, repeats)
            line = (
                f"{size:>5} {K:>3} {r['jacobian_mb']:>8.1f} {r['bandwidth_gbs']:>6.1f} "
                f"{r['two_reads_ms']:>11.2f} {r['gram_ms']:>8.2f} {r['aggregate_ms']:>13.2f} "
                f"{r['ratio']:>6.2f} {r['blockwise_ms']:>18.2f}"
            )
            print(line)
            lines.append(line)
    note = (
        "\n# ratio = aggregate / two reads of the Jacobian at the measured bandwidth "
        "(target on a GPU: <= 1.3); Gram and aggregate use gram_precision='float64', the "
        "last column the 'blockwise' route (float32 blocks summed in float64)"
    )
    print(note)
    lines.append(note)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
