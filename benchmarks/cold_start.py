"""First-call latency with an empty numba cache (issue 15: "first call stalls").

Run from the repository root:

    .venv/bin/python benchmarks/cold_start.py [--runs N] [--quick] [--root DIR] [--out FILE]

Each run of each case is one fresh Python process with ``NUMBA_CACHE_DIR`` set to a
new empty temporary directory, so that every kernel it needs is compiled (or, since
the change below, run as Python first). The process times its case from after its
imports and ends with ``os._exit`` once it has printed its result (a background
compilation still under way, and the removal of the cache folder, do not count).
The table gives the median over the runs, the
range, and the 1-minute load average before each run (the machine is shared: a run
under load is slower). Cases and targets (issue 15, on this machine):

- ``mgda``: the first ``solvers.mgda(J)``, J a 4 x 1000 float64 matrix: <= 1.5 s;
- ``step <method>``: the first training step through
  ``paretomtl.adapters.torch.Aggregator(method)`` (the aggregator's construction,
  forward pass, ``backward`` and ``optimizer.step()``; a two-layer MLP trunk, three
  linear heads, batch 64) for each founding method: mgda, pareto-step (lower
  bounds 0.1), pcgrad, gradnorm: <= 2 s each;
- ``demo trace``: the demo's front trace, ``trace_to_folder`` with the demo's
  defaults (``python -m paretomtl demo``: ZDT1, EPO, 16 rays, indicators and plot
  when moocore and matplotlib are installed) into a temporary folder: <= 3 s;
- ``mgda K=64`` (no target): 64 x 1000 gradients, too large for the Python route:
  this call waits for the compilation, as every first call used to.

``--methods`` instead times the first call of every registered gradient method on
4 x 1000 gradients (a stateful one: built for K = 4, one ``update``), one run each
unless ``--runs`` says otherwise.

``--root DIR`` runs the cases against the ``paretomtl`` package in DIR (DIR goes
first on ``PYTHONPATH``): with a checkout of the commit before the change, this
gives the "before" column of ``benchmarks/results/cold_start_cpu.txt``. ``--quick``
runs each case once and skips the step cases of loss weightings.

Results on the benchmark machine (AMD EPYC, 2 cores shared with other work; numba
0.68.1, Python 3.11.7), seconds, median of the runs, 1-minute load average 1.0-2.1;
the full tables, and runs under a load of 3-8, in benchmarks/results/cold_start_cpu.txt:

    case               before (f475153, 3 runs)   after (5 runs)   target
    mgda                                   14.3             0.01      1.5
    step mgda                              13.5             0.02      2
    step pareto-step                       17.4             0.02      2
    step pcgrad                            2.07             0.02      2
    step gradnorm                          0.01             0.01      2
    demo trace                             18.2             1.46      3
    mgda K=64                              13.4             7.15      -

Before, each first call compiled its kernels (about 14 s for the exact simplex QP
solver with the kernels it calls, 2 s for PCGrad's). After, a first call on small
input runs the kernels as Python (paretomtl._kernels._jit); the K = 64 call still
compiles, half as long as before (the kernels no longer use numpy features whose
numba implementations compile for seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Report, cpu_model, load_average

TARGETS = {"mgda": 1.5, "step": 2.0, "demo trace": 3.0}
STEP_METHODS = ("mgda", "pareto-step", "pcgrad", "gradnorm")

_PRELUDE = r"""
import json, os, sys, time
t0 = time.perf_counter()
import numpy as np
import paretomtl
from paretomtl import solvers
imports = time.perf_counter() - t0

def done(seconds, **extra):
    print(json.dumps({"seconds": seconds, "imports": imports, "paretomtl": paretomtl.__file__,
                      **extra}), flush=True)
    os._exit(0)  # no exit-time wait for background compilation, no cleanup counted
"""

_MGDA = r"""
J = np.random.default_rng(0).standard_normal((K, 1000))
t = time.perf_counter()
res = solvers.mgda(J)
first = time.perf_counter() - t
t = time.perf_counter()
solvers.mgda(J)
done(first, second=time.perf_counter() - t, weights_sum=float(res.weights.sum()))
"""

_STEP = r"""
t = time.perf_counter()
import torch
from paretomtl.adapters.torch import Aggregator
imports += time.perf_counter() - t
torch.manual_seed(0)
trunk = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32))
heads = [torch.nn.Linear(32, 1) for _ in range(3)]
params = list(trunk.parameters()) + [p for h in heads for p in h.parameters()]
optimizer = torch.optim.SGD(params, lr=0.01)
x = torch.randn(64, 16)
options = {"lower_bounds": 0.1} if METHOD == "pareto-step" else None

def step(agg):
    optimizer.zero_grad()
    z = torch.relu(trunk(x))
    losses = [h(z).pow(2).mean() for h in heads]
    kw = {"layer": [trunk[2].weight]} if METHOD == "gradnorm" else {}
    agg.backward(losses, trunk.parameters(), **kw)
    optimizer.step()

t = time.perf_counter()
agg = Aggregator(METHOD, options=options)
step(agg)
first = time.perf_counter() - t
t = time.perf_counter()
step(agg)
done(first, second=time.perf_counter() - t)
"""

_TRACE = r"""
import tempfile
from pathlib import Path
from paretomtl.cli.demo import METHOD, PROBLEM, RAYS, SEED
from paretomtl.cli.trace import trace_to_folder
imports = time.perf_counter() - t0
out = Path(tempfile.mkdtemp(prefix="paretomtl-cold-trace-")) / "demo"
t = time.perf_counter()
trace_to_folder(PROBLEM, METHOD, RAYS, out, seed=SEED)
done(time.perf_counter() - t)
"""


_METHOD = r"""
import inspect
J = np.random.default_rng(0).standard_normal((4, 1000))
entry = solvers.info(NAME)
kwargs = {}
if entry.kind == "gradient":
    params = inspect.signature(entry.obj).parameters
    kwargs = {k: v for k, v in (("seed", 0), ("losses", np.ones(4))) if k in params}
    call = lambda: entry.obj(J, **kwargs)
else:
    params = inspect.signature(entry.obj).parameters
    method = entry.obj(4, **({"seed": 0} if "seed" in params else {}))
    takes_losses = "losses" in inspect.signature(method.update).parameters
    call = lambda: method(J, **({"losses": np.ones(4)} if takes_losses else {}))
t = time.perf_counter()
call()
done(time.perf_counter() - t)
"""


def method_cases() -> dict[str, str]:
    """One case per registered gradient method (``--methods``): its first call."""
    import paretomtl.solvers

    return {
        f"method {name}": _PRELUDE + f"NAME = {name!r}\n" + _METHOD
        for name in paretomtl.solvers.available()
    }


def cases(quick: bool) -> dict[str, str]:
    """Case name -> child script."""
    found = {"mgda": _PRELUDE + "K = 4\n" + _MGDA}
    for method in STEP_METHODS:
        if quick and method == "gradnorm":
            continue
        found[f"step {method}"] = _PRELUDE + f"METHOD = {method!r}\n" + _STEP
    found["demo trace"] = _PRELUDE + _TRACE
    found["mgda K=64"] = _PRELUDE + "K = 64\n" + _MGDA
    return found


def target_of(name: str) -> float | None:
    """The issue's target for a case, or None."""
    if name == "mgda":
        return TARGETS["mgda"]
    if name.startswith("step "):
        return TARGETS["step"]
    return TARGETS.get(name)


def run_once(script: str, root: Path | None) -> dict:
    """One fresh process with an empty cache; its JSON line plus the load before it."""
    env = dict(os.environ)
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="paretomtl-cold-numba-") as cache:
        env["NUMBA_CACHE_DIR"] = cache
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child process failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**out, "load": load, "wall": wall}


def fmt(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=None, help="processes per case (5; 1 with --quick, --methods)"
    )
    parser.add_argument("--quick", action="store_true", help="one run per case, fewer cases")
    parser.add_argument("--root", type=Path, default=None, help="run the paretomtl found here")
    parser.add_argument("--only", nargs="*", default=None, help="run only these cases")
    parser.add_argument(
        "--methods", action="store_true", help="only the first call of every gradient method"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick or args.methods else 5)
    report = Report()
    report.heading(f"paretomtl cold start ({time.strftime('%Y-%m-%d %H:%M:%S')})")
    report(f"CPU: {cpu_model()}, os.cpu_count() {os.cpu_count()}")
    report(f"load average at start: {load_average()}")
    report(f"python {sys.version.split()[0]}, runs per case: {runs}")
    todo = method_cases() if args.methods else cases(args.quick)
    if args.only:
        todo = {k: v for k, v in todo.items() if k in args.only}
    rows, misses, where = [], [], None
    for name, script in todo.items():
        results = [run_once(script, args.root) for _ in range(runs)]
        where = results[0]["paretomtl"]
        times = [r["seconds"] for r in results]
        med = statistics.median(times)
        target = target_of(name)
        verdict = "" if target is None else ("PASS" if med <= target else "FAIL")
        if verdict == "FAIL":
            misses.append(name)
        second = statistics.median(r["second"] for r in results) if "second" in results[0] else None
        rows.append(
            [
                name,
                fmt(med),
                f"{fmt(min(times))}-{fmt(max(times))}",
                "-" if second is None else f"{second * 1e3:.1f} ms",
                fmt(statistics.median(r["imports"] for r in results)),
                fmt(statistics.median(r["wall"] for r in results)),
                " ".join(f"{r['load']:.1f}" for r in results),
                "-" if target is None else f"{target:g}",
                verdict,
            ]
        )
        print(f"  {name}: " + ", ".join(f"{t:.2f}" for t in times), file=sys.stderr, flush=True)
    report(f"paretomtl: {where}")
    report()
    report(
        "seconds: the case itself in a fresh process with an empty numba cache (median, "
        "range); second: the same call once more; imports: numpy, paretomtl (and torch for "
        "the steps); process: the child's wall time to its result, imports included; load: "
        "the 1-minute load average before each run."
    )
    report.table(
        [
            "case",
            "seconds",
            "range",
            "second",
            "imports",
            "process",
            "load per run",
            "target",
            "",
        ],
        rows,
    )
    report(f"load average at end: {load_average()}")
    report("misses: " + (", ".join(misses) if misses else "none"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(report.lines) + "\n")


if __name__ == "__main__":
    main()
