"""Every registered gradient method against its peer implementation, a row per method.

Run from the repository root:

    .venv/bin/python benchmarks/methods.py [--quick] [--out FILE]

For each method of ``paretomtl.solvers`` the median time of one call at K in
{2, 5, 10, 32, 128} (``--quick``: {2, 10}), next to TorchJD's implementation of the same
method where TorchJD 0.18 has one, timed in the same run, interleaved, on the same
inputs: a Gram matrix of MTL-like gradients (M = 1000 columns) for the methods that work
in Gram space (TorchJD's ``Weighting`` called on the Gramian as a float64 tensor), the
K x M float64 matrix itself for those that need it, and for those TorchJD only has as an
``Aggregator`` (Nash-MTL, ConFIG, GradDrop, TrimmedMean) or as a ``Weighting`` of the
matrix rather than of its Gramian (Mean, Sum, Random, ExcessMTL): ours is then timed
from the same matrix too (TorchJD's MoDo and SDMGrad take a K x K cross-Gram matrix of
two batches: they get the Gram matrix). Stateful methods are called repeatedly on the same
input (their state moves on, as in training). Methods TorchJD does not have are timed
alone.

The targets of issue 13 are evaluated on the numbers of the same run and printed
PASS/FAIL: every method at least 3x faster than TorchJD at K = 10 and no slower at any
K; UPGrad at least 50x faster at K = 128; CAGrad and Nash-MTL at least 20x faster.
Missed targets only print FAIL (timings are no test); the exit status is 0.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from _common import Report, cpu_model, load_average

from paretomtl import solvers
from paretomtl._kernels._jit import compile_now

M_COLUMNS = 1000


@dataclass(frozen=True)
class Peer:
    """TorchJD's counterpart: ``make(K)`` builds it; it takes the Gramian or the Jacobian."""

    make: Callable[[int], Callable]
    takes: str  # "gram" or "jacobian"
    min_tasks: int = 1


# our name -> (our options, TorchJD's counterpart built with the same options)
def _w(name: str, **kw) -> Callable[[int], Callable]:
    def make(K: int) -> Callable:
        from torchjd import aggregation

        return getattr(aggregation, name)(**kw)

    return make


def _nash(K: int) -> Callable:
    from torchjd.aggregation import NashMTL

    return NashMTL(n_tasks=K)


def _crmogm(K: int) -> Callable:
    from torchjd.aggregation import CRMOGMWeighting, MGDAWeighting

    return CRMOGMWeighting(MGDAWeighting())


PEERS: dict[str, tuple[dict, Peer]] = {
    "mgda": ({}, Peer(_w("MGDAWeighting"), "gram")),
    "pcgrad": ({"seed": 0}, Peer(_w("PCGradWeighting"), "gram")),
    "gradvac": ({"seed": 0}, Peer(_w("GradVacWeighting"), "gram")),
    "mean": ({}, Peer(_w("MeanWeighting"), "jacobian")),
    "sum": ({}, Peer(_w("SumWeighting"), "jacobian")),
    "random": ({"seed": 0}, Peer(_w("RandomWeighting"), "jacobian")),
    "upgrad": ({}, Peer(_w("UPGradWeighting"), "gram")),
    "dualproj": ({}, Peer(_w("DualProjWeighting"), "gram")),
    "cagrad": ({"c": 0.5}, Peer(_w("CAGradWeighting", c=0.5), "gram")),
    "imtl-g": ({}, Peer(_w("IMTLGWeighting"), "gram")),
    "aligned-mtl": ({}, Peer(_w("AlignedMTLWeighting"), "gram")),
    "krum": ({"n_byzantine": 1}, Peer(_w("KrumWeighting", n_byzantine=1), "gram", 4)),
    "fairgrad": ({"alpha": 1.0}, Peer(_w("FairGradWeighting", alpha=1.0), "gram")),
    "modo": ({}, Peer(_w("MoDoWeighting"), "gram")),
    "sdmgrad": ({}, Peer(_w("SDMGradWeighting"), "gram")),
    "cr-mogm": ({}, Peer(_crmogm, "gram")),
    "excess-mtl": ({}, Peer(_w("ExcessMTLWeighting"), "jacobian")),
    "pcd": ({}, Peer(_w("PCDWeighting"), "gram")),
    "nash-mtl": ({}, Peer(_nash, "jacobian")),
    "config": ({}, Peer(_w("ConFIG"), "jacobian")),
    "graddrop": ({"seed": 0}, Peer(_w("GradDrop"), "jacobian")),
    "trimmed-mean": ({"trim_number": 1}, Peer(_w("TrimmedMean", trim_number=1), "jacobian", 3)),
}
# Targets beyond the common ones: (method, K, minimum speed-up over TorchJD).
SPECIAL_TARGETS = (("upgrad", 128, 50.0), ("cagrad", 10, 20.0), ("nash-mtl", 10, 20.0))


def mtl_jacobian(K: int, M: int, seed: int) -> np.ndarray:
    """MTL-like task gradients: a shared component, task noise, 20 % of the rows
    negated, norms log-uniform over two decades."""
    rng = np.random.default_rng([seed, K])
    rho = rng.uniform(0.3, 0.7)
    J = np.sqrt(1.0 - rho) * rng.standard_normal((K, M)) + np.sqrt(rho) * rng.standard_normal(M)
    sign = np.where(rng.random(K) < 0.2, -1.0, 1.0)
    return J * (sign * 10.0 ** rng.uniform(-1.0, 1.0, K))[:, None]


def _our_call(name: str, options: dict, K: int, J: np.ndarray, from_jacobian: bool) -> Callable:
    entry = solvers.info(name)
    options = {k: v for k, v in options.items() if k in _option_names(entry)}
    if entry.kind == "stateful-gradient":
        method = solvers.method(name, num_tasks=K, **options)
        reads_losses = "losses" in inspect.signature(entry.obj.update).parameters
    else:
        method = solvers.method(name, **options)
        reads_losses = method.needs_losses
    extra = {"losses": np.linspace(1.0, 2.0, K)} if reads_losses else {}
    G = J @ J.T
    if from_jacobian or getattr(entry.obj, "needs_grads", False):
        return lambda: method(J, **extra)
    return lambda: method(gram=G, **extra)


def _option_names(entry) -> set:
    target = entry.obj
    params = inspect.signature(target).parameters
    return {n for n in params if n not in ("grads", "gram", "losses", "num_tasks")}


def _peer_call(peer: Peer, K: int, J: np.ndarray) -> Callable:
    import torch

    fn = peer.make(K)
    x = torch.from_numpy(J if peer.takes == "jacobian" else J @ J.T)
    return lambda: fn(x)


def median_times(fns: dict[str, Callable[[], object]], budget_s: float, rounds: int = 5):
    """Median seconds per call of each callable, timed in interleaved slices."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    inner: dict[str, int] = {}
    for k, fn in fns.items():
        fn()  # warm-up: compilation, caches
        compile_now()  # time the compiled kernels, not the first calls' Python route
        t0 = time.perf_counter()
        fn()
        inner[k] = max(1, int(50e-6 / max(time.perf_counter() - t0, 1e-7)))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for k, fn in fns.items():
                end = time.perf_counter() + budget_s / rounds / len(fns)
                while True:
                    t0 = time.perf_counter()
                    for _ in range(inner[k]):
                        fn()
                    now = time.perf_counter()
                    samples[k].append((now - t0) / inner[k])
                    if now >= end:
                        break
    finally:
        if gc_was_enabled:
            gc.enable()
    return {k: statistics.median(v) for k, v in samples.items()}


def fmt(seconds: float) -> str:
    us = seconds * 1e6
    if us >= 1e4:
        return f"{us / 1e3:.1f} ms"
    return f"{us:.1f} us" if us < 100 else f"{us:.0f} us"


def short_paper(paper: str) -> str:
    """ "Surname et al. year" (or "A & B year", "A year") from a registry paper string."""
    if paper.startswith("experimental"):
        return "experimental"
    chunks = [c.strip() for c in paper.split(",")]
    first = chunks[0]
    if " & " not in first and "et al." not in first:
        second = chunks[1] if len(chunks) > 1 else ""
        if len(second.split()) == 1 or " & " in second:  # another author's surname
            first += " et al."
    years = re.findall(r"\b(?:19|20)\d\d\b", paper)
    return f"{first} {years[0]}" if years else first


def peer_available() -> str | None:
    try:
        import torchjd  # noqa: F401
    except ImportError as exc:
        return f"torchjd not installed ({exc}); ours timed alone"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (K in {2, 10})")
    parser.add_argument("--out", metavar="FILE", help="also write the report to FILE")
    parser.add_argument("--only", nargs="*", help="these methods only")
    args = parser.parse_args(argv)
    Ks = (2, 10) if args.quick else (2, 5, 10, 32, 128)
    budget = 0.05 if args.quick else 0.4
    report = Report()
    start = time.perf_counter()
    report(f"paretomtl methods against TorchJD ({time.strftime('%Y-%m-%d %H:%M:%S')})")
    report(f"CPU: {cpu_model()}; {os.cpu_count()} cores; load average {load_average()}")
    missing = peer_available()
    if missing:
        report(missing)
    else:
        from importlib import metadata

        report(f"torchjd {metadata.version('torchjd')}, torch {metadata.version('torch')}")
    report(f"inputs: MTL-like gradients, M = {M_COLUMNS} columns, float64; median per call")
    report()
    names = args.only or solvers.available()
    rows: list[list[str]] = []
    speedups: dict[tuple[str, int], float] = {}
    times: dict[tuple[str, int], tuple[float, float | None]] = {}
    for name in names:
        options, peer = PEERS.get(name, ({}, None))
        if missing:
            peer = None
        from_jacobian = peer is not None and peer.takes == "jacobian"
        ours_cells, peer_cells, ratio_cells = [], [], []
        for K in Ks:
            if peer is not None and K < peer.min_tasks:  # the method is undefined there
                ours_cells.append("-")
                peer_cells.append("-")
                ratio_cells.append("-")
                continue
            J = mtl_jacobian(K, M_COLUMNS, seed=1)
            fns = {"ours": _our_call(name, options, K, J, from_jacobian)}
            if peer is not None and K >= peer.min_tasks:
                fns["peer"] = _peer_call(peer, K, J)
            t = median_times(fns, budget)
            times[name, K] = (t["ours"], t.get("peer"))
            ours_cells.append(fmt(t["ours"]))
            if "peer" in t:
                speedups[name, K] = t["peer"] / t["ours"]
                peer_cells.append(fmt(t["peer"]))
                ratio_cells.append(f"{speedups[name, K]:.1f}x")
            else:
                peer_cells.append("-")
                ratio_cells.append("-")
        needs_grads = getattr(solvers.info(name).obj, "needs_grads", False)
        src = "J" if from_jacobian or needs_grads else "G"
        rows.append([f"{name} ({src})", *ours_cells])
        if peer is not None:
            rows.append(["  torchjd", *peer_cells])
            rows.append(["  speed-up", *ratio_cells])
    report.table(["method", *(f"K={K}" for K in Ks)], rows)
    report("As a README table (K = 10; ratio = TorchJD's time / ours):")
    report()
    report("| method | paper | works on | memory | K = 10: ours | TorchJD | ratio |")
    report("|---|---|---|---|---|---|---|")
    for name in names:
        entry = solvers.info(name)
        on = "K x M" if getattr(entry.obj, "needs_grads", False) else "Gram"
        memory = "stateful" if entry.kind == "stateful-gradient" else "-"
        ours, theirs = times.get((name, 10), (None, None))
        cells = [fmt(ours) if ours else "-", fmt(theirs) if theirs else "-"]
        ratio = "-"
        if ours and theirs:
            r = theirs / ours
            ratio = f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"
        row = [f"`{name}`", short_paper(entry.paper), on, memory, *cells, ratio]
        report("| " + " | ".join(row) + " |")
    report()
    report("Targets (issue 13):")
    for name in names:
        ks = [K for K in Ks if (name, K) in speedups]
        if not ks:
            continue
        slowest = min(speedups[name, K] for K in ks)
        at10 = speedups.get((name, 10))
        ok = slowest >= 1.0 and (at10 is None or at10 >= 3.0)
        report(
            f"  {'PASS' if ok else 'FAIL'} {name}: >= 3x at K = 10 "
            f"({at10 and f'{at10:.1f}x'}), >= 1x everywhere (slowest {slowest:.1f}x)"
        )
    for name, K, need in SPECIAL_TARGETS:
        if (name, K) in speedups:
            got = speedups[name, K]
            verdict = "PASS" if got >= need else "FAIL"
            report(f"  {verdict} {name}: >= {need:g}x at K = {K} ({got:.1f}x)")
    report(f"total time {time.perf_counter() - start:.0f} s; load average {load_average()}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write("\n".join(report.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
