"""Time and peak memory of one multi-task training step through the torch adapter.

Run from the repository root:

    .venv/bin/python benchmarks/torch_step.py [--quick] [--threads N] [--out FILE]

For a shared MLP trunk with K linear heads (on the CPU: "1M", 256 -> 1024 -> 512 -> 256
at batch 128, and "1.6M", issue 11's 512 -> 1024 -> 1024 at batch 256; on a GPU: 10M
and 100M), each configuration runs in its own subprocess (so peak memory is its own)
and reports the median step time (zero_grad, forward, backward) and the peak memory
above the model and data:

- ``sum``: plain ``sum(losses).backward()``, the baseline of the "x sum" column;
- ``jacobian/<mode>``: the per-task gradients alone, the floor of every full-Jacobian
  method and the baseline of the "x floor" column: K ``torch.autograd.grad`` calls
  (``autograd``), or one call with ``is_grads_batched=True`` (``batched``); each
  call's gradients are dropped at once;
- ``ours/<method>/<mode>[/<precision>]``: ``paretomtl.adapters.torch.Aggregator`` with
  the modes autograd, batched and representation, at the default Gram precision
  unless one is named;
- ``torchjd/<method>``: TorchJD's ``mtl_backward`` + ``jac_to_grad`` for the methods
  both libraries have (MGDA, PCGrad), when torchjd is installed.

Section 2 times issue 11's targets with the compared steps interleaved in one process
(round-robin over the repeats, so that the machine's drift hits them alike): the
full-Jacobian step against the Jacobian floor, the representation step against the
summed backward. Section 3 compares the two Gram precisions on the gradients of a
short training run, with the float32 gradients' own error as the yardstick. Section
4 times the aggregation alone (Gram + solve + combine, from a ready Jacobian)
against two reads of the Jacobian at the memory bandwidth measured in the same run.
Peak memory is CUDA's max_memory_allocated on a GPU, and the growth of the process's
peak RSS on the CPU.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from _common import cpu_model, load_average

CONFIGS = {  # size: (trunk widths, batch)
    "1M": ((256, 1024, 512, 256), 128),
    "1.6M": ((512, 1024, 1024), 256),  # issue 11: 1.57 M shared parameters
    "10M": ((1024, 2048, 2048, 1024), 128),
    "100M": ((2048, 8192, 8192, 2048), 128),
}
TARGET_SIZE = "1.6M"
FLOOR_RATIO = 1.1  # full-Jacobian step / Jacobian floor, at the default precision
REPRESENTATION_RATIO = 1.5  # representation step / summed backward


def default_precision() -> str:
    from paretomtl.adapters.torch import Aggregator

    return inspect.signature(Aggregator).parameters["gram_precision"].default


def build(size: str, K: int, device: str, seed: int = 0):
    torch.manual_seed(seed)
    w, batch = CONFIGS[size]
    layers = []
    for a, b in itertools.pairwise(w):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    trunk = torch.nn.Sequential(*layers).to(device)
    heads = torch.nn.ModuleList(torch.nn.Linear(w[-1], 1) for _ in range(K)).to(device)
    x = torch.randn(batch, w[0], device=device)
    ys = torch.randn(K, batch, device=device)
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
    if name == "jacobian/autograd":

        def step():
            losses, _ = losses_of(trunk, heads, x, ys)
            for i, loss in enumerate(losses):
                torch.autograd.grad(loss, shared, retain_graph=i < len(losses) - 1)

        return step
    if name == "jacobian/batched":

        def step():
            losses, _ = losses_of(trunk, heads, x, ys)
            stacked = torch.stack(losses)
            eye = torch.eye(len(losses), dtype=stacked.dtype, device=stacked.device)
            torch.autograd.grad(stacked, shared, grad_outputs=eye, is_grads_batched=True)

        return step
    if name.startswith("ours/"):
        from paretomtl.adapters.torch import Aggregator

        _, method, mode, *precision = name.split("/")
        options = {"gram_precision": precision[0]} if precision else {}
        agg = Aggregator(method, mode=mode, seed=0, **options)

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


def floor_of(name: str) -> str | None:
    """The Jacobian-floor row a step is compared with (None: not a full-Jacobian step)."""
    parts = name.split("/")
    if parts[0] == "torchjd":
        return "jacobian/autograd"
    if parts[0] == "ours" and parts[2] in ("autograd", "batched"):
        return f"jacobian/{parts[2]}"
    return None


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


def run_interleaved(names: list[str], size: str, K: int, device: str, repeats: int) -> dict:
    """Median ms per step of each name, the steps taken round-robin in one process."""
    trunk, heads, x, ys = build(size, K, device)
    params = list(trunk.parameters()) + list(heads.parameters())
    steps = {name: make_step(name, trunk, heads, x, ys) for name in names}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats + 2):  # two warm-up rounds
        for name, step in steps.items():
            for p in params:
                p.grad = None
            sync()
            tic = time.perf_counter()
            step()
            sync()
            if r >= 2:
                times[name].append(time.perf_counter() - tic)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def subprocess_json(args: list[str], threads: int | None) -> tuple[dict | None, str]:
    cmd = [sys.executable, __file__, *args]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        return None, lines[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


def precision_study(device: str) -> list[str]:
    """float32 products in 4096-column blocks summed in float64 ("blockwise") against
    the float64 Gram of the same float32 gradients, with the float32 gradients' own
    error (against a float64 copy of the model) as the yardstick."""
    from paretomtl import solvers
    from paretomtl.adapters.torch import Aggregator
    from paretomtl.adapters.torch._jacobian import gram_matrix, per_task_grads

    K = 4
    trunk, heads, _, _ = build(TARGET_SIZE, K, device)
    w, batch = CONFIGS[TARGET_SIZE]
    teacher = torch.nn.Sequential(
        torch.nn.Linear(w[0], 64), torch.nn.Tanh(), torch.nn.Linear(64, K)
    )
    teacher = teacher.to(device)
    params = list(trunk.parameters()) + list(heads.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    agg = Aggregator("mgda", gram_precision="float64")

    def data(step: int):
        g = torch.Generator().manual_seed(step)
        x = torch.randn(batch, w[0], generator=g).to(device)
        with torch.no_grad():
            y = teacher(x).T + 0.1 * torch.randn(K, batch, generator=g).to(device)
        return x, y

    def gram_error(A: np.ndarray, B: np.ndarray) -> float:
        """max |A - B| in units of sqrt(B_ii B_jj) (an error on the cosines)."""
        d = np.sqrt(np.outer(np.diagonal(B), np.diagonal(B)))
        return float((np.abs(A - B) / d).max())

    def direction_error(wa: np.ndarray, wb: np.ndarray, G: np.ndarray) -> float:
        """|J^T wa - J^T wb| / |J^T wb|, from the Gram matrix."""
        dw = wa - wb
        return float(np.sqrt(max(dw @ G @ dw, 0.0) / (wb @ G @ wb)))

    rows = {
        "Gram, cosine units": [],
        "MGDA weights, max rel": [],
        "MGDA direction, rel": [],
        "PCGrad weights, max rel": [],
    }
    checkpoints = (0, 25, 50, 100, 150)
    for step in range(checkpoints[-1] + 1):
        x, y = data(step)
        if step in checkpoints:
            losses, _ = losses_of(trunk, heads, x, y)
            jac = per_task_grads(losses, list(trunk.parameters()), "autograd")
            G = {"float64": gram_matrix(jac, K), "blockwise": gram_matrix(jac, K, "blockwise")}
            del jac, losses
            trunk64, heads64 = copy.deepcopy(trunk).double(), copy.deepcopy(heads).double()
            losses64, _ = losses_of(trunk64, heads64, x.double(), y.double())
            G["exact"] = gram_matrix(
                per_task_grads(losses64, list(trunk64.parameters()), "autograd"), K
            )
            del trunk64, heads64, losses64
            mgda = {k: solvers.mgda(gram=g).weights for k, g in G.items()}
            pcgrad = {k: solvers.pcgrad(gram=g, seed=step).weights for k, g in G.items()}
            # (blockwise vs float64, float64 of the float32 gradients vs float64 model)
            for key, (a, b) in (
                ("blockwise", ("blockwise", "float64")),
                ("f32", ("float64", "exact")),
            ):
                rows["Gram, cosine units"].append((key, gram_error(G[a], G[b])))
                rel = np.abs(mgda[a] - mgda[b]).max() / np.abs(mgda[b]).max()
                rows["MGDA weights, max rel"].append((key, float(rel)))
                rows["MGDA direction, rel"].append((key, direction_error(mgda[a], mgda[b], G[b])))
                rel = np.abs(pcgrad[a] - pcgrad[b]).max() / np.abs(pcgrad[b]).max()
                rows["PCGrad weights, max rel"].append((key, float(rel)))
        opt.zero_grad()
        losses, _ = losses_of(trunk, heads, x, y)
        agg.backward(losses, list(trunk.parameters()))
        opt.step()
    lines = [
        "\n3. Gram precision: 'blockwise' against 'float64' on the same float32 gradients, "
        "and the yardstick: the error the float32 gradients already carry",
        f"a) a short MGDA training run ({TARGET_SIZE}, K = {K}, targets from a random "
        f"teacher), max over steps {list(checkpoints)}; yardstick: the float64 Gram of the "
        "float32 gradients against that of a float64 copy of the model",
        f"{'quantity':<26} {'blockwise vs float64':>21} {'yardstick':>10}",
    ]
    for label, values in rows.items():
        block = max(v for k, v in values if k == "blockwise")
        f32 = max(v for k, v in values if k == "f32")
        lines.append(f"{label:<26} {block:>21.1e} {f32:>10.1e}")
    # A hard case: a nearly opposed pair, so that MGDA's min-norm direction is short.
    rng = np.random.default_rng(0)
    M = sum(p.numel() for p in trunk.parameters())
    s = rng.standard_normal(M)
    J = np.stack([s + 1e-3 * rng.standard_normal(M) for _ in range(K)])
    J[1] = -J[0] + 1e-3 * rng.standard_normal(M)
    J *= 10.0 ** rng.uniform(-1.0, 1.0, (K, 1)) / np.sqrt(M)
    J32 = torch.from_numpy(J.astype(np.float32)).to(device)
    G = {"exact": J @ J.T, "float64": gram_matrix([J32], K)}
    G["blockwise"] = gram_matrix([J32], K, "blockwise")
    mgda = {k: solvers.mgda(gram=g).weights for k, g in G.items()}
    short = np.sqrt(mgda["exact"] @ G["exact"] @ mgda["exact"] / np.diagonal(G["exact"]).max())
    lines += [
        f"b) synthetic float32 J, K = {K}, M = {M}: rows s + 1e-3 noise, row 1 = -row 0 + "
        f"1e-3 noise (|MGDA direction| = {short:.0e} max |g_i|); yardstick: the float32 "
        "rounding of J alone (float64 Gram of the float32 J against the float64 J's)",
        f"{'Gram, cosine units':<26} {gram_error(G['blockwise'], G['float64']):>21.1e} "
        f"{gram_error(G['float64'], G['exact']):>10.1e}",
        f"{'MGDA direction, rel':<26} "
        f"{direction_error(mgda['blockwise'], mgda['float64'], G['float64']):>21.1e} "
        f"{direction_error(mgda['float64'], mgda['exact'], G['exact']):>10.1e}",
    ]
    return lines


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
    precision = default_precision()

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
        G = gram_matrix(jac, K, precision)
        w = solvers.mgda(gram=G).weights
        accumulate_combination(params, jac, w)

    t_agg = bench(aggregate)
    t_gram = bench(lambda: gram_matrix(jac, K, "float64"))
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
    ap.add_argument("--quick", action="store_true", help="one K per size, few repeats")
    ap.add_argument("--out", help="also write the tables to this file")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--single", help=argparse.SUPPRESS)
    ap.add_argument("--interleaved", help=argparse.SUPPRESS)
    ap.add_argument("--size", default=None)
    ap.add_argument("--K", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.single:
        print(json.dumps(run_single(args.single, args.size, args.K, device, args.repeats)))
        return
    if args.interleaved:
        names = args.interleaved.split(",")
        print(json.dumps(run_interleaved(names, args.size, args.K, device, args.repeats)))
        return
    start = time.perf_counter()
    try:
        import torchjd  # noqa: F401

        peers = ["torchjd/mgda", "torchjd/pcgrad"]
    except ImportError:
        peers = []
    precision = default_precision()
    names = ["sum", "jacobian/autograd", "jacobian/batched"]
    names += [f"ours/mgda/{m}" for m in ("autograd", "batched", "representation")]
    names += [f"ours/mgda/autograd/{p}" for p in ("float64", "blockwise") if p != precision]
    names += ["ours/pcgrad/autograd", "ours/pcgrad/batched", *peers]
    sizes = (
        {"1M": [2, 10], "1.6M": [4, 10]} if device == "cpu" else {"10M": [2, 10], "100M": [2, 10]}
    )
    if args.quick:
        sizes = {size: Ks[:1] for size, Ks in sizes.items()}
    repeats = 3 if args.quick else 10
    machine = torch.cuda.get_device_name() if device == "cuda" else cpu_model()
    lines = [
        f"# torch_step on {device}: {machine}",
        f"# torch {torch.__version__}, threads {torch.get_num_threads()}, default "
        f"gram_precision '{precision}', load average at start {load_average()}",
        "",
        "1. One step per configuration, each in its own process (median of "
        f"{repeats}; x floor: against jacobian/<mode>)",
        f"{'size':>5} {'K':>3} {'method':<30} {'ms/step':>9} {'x sum':>7} {'x floor':>8} "
        f"{'peak MB':>9}",
    ]
    print("\n".join(lines), flush=True)
    for size, Ks in sizes.items():
        for K in Ks:
            done: dict[str, float] = {}
            for name in names:
                args_ = ["--single", name, "--size", size, "--K", str(K)]
                r, why = subprocess_json([*args_, "--repeats", str(repeats)], args.threads)
                if r is None:
                    line = f"{size:>5} {K:>3} {name:<30} failed: {why}"
                else:
                    done[name] = r["ms"]
                    floor = done.get(floor_of(name) or "")
                    x_floor = f"{r['ms'] / floor:>8.2f}" if floor else f"{'':>8}"
                    line = (
                        f"{size:>5} {K:>3} {name:<30} {r['ms']:>9.2f} "
                        f"{r['ms'] / done['sum']:>7.2f} {x_floor} {r['peak_mb']:>9.1f}"
                    )
                print(line, flush=True)
                lines.append(line)
    lines += targets(device, precision, args.threads, quick=args.quick)
    study = precision_study(device)
    print("\n".join(study), flush=True)
    lines += study
    head = (
        f"\n4. Aggregation alone, from a ready Jacobian (aggregate: Gram at '{precision}' "
        "+ MGDA + combination)\n"
        f"{'size':>5} {'K':>3} {'J MB':>8} {'GB/s':>6} {'2 reads ms':>11} {'f64 Gram ms':>12} "
        f"{'blockwise ms':>13} {'aggregate ms':>13} {'ratio':>6}"
    )
    print(head)
    lines.append(head)
    for size, Ks in sizes.items():
        for K in Ks:
            r = aggregation_only(size, K, device, repeats)
            line = (
                f"{size:>5} {K:>3} {r['jacobian_mb']:>8.1f} {r['bandwidth_gbs']:>6.1f} "
                f"{r['two_reads_ms']:>11.2f} {r['gram_ms']:>12.2f} {r['blockwise_ms']:>13.2f} "
                f"{r['aggregate_ms']:>13.2f} {r['ratio']:>6.2f}"
            )
            print(line)
            lines.append(line)
    note = (
        "# ratio = aggregate / two reads of the Jacobian at the measured bandwidth "
        "(target on a GPU: <= 1.3)\n"
        f"# total {time.perf_counter() - start:.0f} s; load average at end {load_average()}"
    )
    print(note)
    lines.append(note)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


def targets(device: str, precision: str, threads: int | None, quick: bool) -> list[str]:
    """Issue 11's ratios, each from steps interleaved in one process."""
    repeats = 5 if quick else 30
    size = TARGET_SIZE if device == "cpu" else "10M"
    lines = [
        f"\n2. Targets (issue 11), steps interleaved in one process ({size}, median of "
        f"{repeats} rounds)",
        f"{'K':>3} {'step':<34} {'ms/step':>9} {'ratio':>14}",
    ]
    checks = []
    for K in (4,) if quick else (4, 10):
        floor, full = "jacobian/autograd", "ours/mgda/autograd"
        names = ["sum", floor, full, "ours/mgda/representation"]
        names += [f"{full}/{p}" for p in ("float64", "blockwise") if p != precision]
        args = ["--interleaved", ",".join(names), "--size", size, "--K", str(K)]
        ms, why = subprocess_json([*args, "--repeats", str(repeats)], threads)
        if ms is None:
            lines.append(f"{K:>3} failed: {why}")
            continue
        for name in names:
            if name == "sum":
                ratio = ""
            elif name.endswith("representation"):
                ratio = f"{ms[name] / ms['sum']:.3f} x sum"
            else:
                ratio = f"{ms[name] / ms[floor]:.3f} x floor"
            lines.append(f"{K:>3} {name:<34} {ms[name]:>9.2f} {ratio:>14}")
        checks.append((K, "full-Jacobian step (mgda, autograd)", ms[full] / ms[floor], FLOOR_RATIO))
        rep = ms["ours/mgda/representation"] / ms["sum"]
        checks.append((K, "representation step (mgda)", rep, REPRESENTATION_RATIO))
    for K, what, ratio, target in checks:
        base = "the Jacobian floor" if target == FLOOR_RATIO else "the summed backward"
        verdict = "PASS" if ratio <= target else "FAIL"
        lines.append(f"[{verdict}] K={K}: {what} within {target}x of {base}: {ratio:.3f}x")
    print("\n".join(lines), flush=True)
    return lines


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
