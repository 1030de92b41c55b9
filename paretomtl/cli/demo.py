"""The README's demo, and the descent demo of the founding solvers.

``python -m paretomtl demo`` traces the Pareto front of ZDT1 (Zitzler, Deb & Thiele,
2000; 30 variables) from 16 preference vectors spread evenly on the simplex, one
front-method run per vector, and writes the found points, their quality
indicators against the true front and a plot into ``results/demo``
(:func:`paretomtl.cli.trace.trace_to_folder`). It is ``python -m paretomtl trace``
with the defaults below, the one place they are set (``trace`` writes to
``results/trace`` by default).

``python -m paretomtl descent`` (:func:`descent`) runs the founding gradient
solvers on the two-objective example of Pareto MTL (Lin et al., NeurIPS 2019):

    f_1(x) = 1 - exp(-||x - 1/sqrt(d)||^2),   f_2(x) = 1 - exp(-||x + 1/sqrt(d)||^2)

whose Pareto set is the segment between the two centres +-1/sqrt(d) (1, ..., 1)
(``paretomtl.problems.ParetoMTLToy`` with d = 2, box [-1, 1]^2). From
the same random starts, gradient descent along the direction of each method (MGDA,
the Pareto step with lower bounds, PCGrad, and the plain sum of gradients) runs a
fixed number of projected steps. It writes the final points and their distance to Pareto
stationarity (the MGDA min-norm value there) as CSV and JSON, and a PNG plot of the
trajectories in objective space against the true front; :func:`report_descent`
prints its summary.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np

from paretomtl import solvers
from paretomtl.cli.output import staged
from paretomtl.cli.trace import PLOT_NOTE, trace_to_folder
from paretomtl.problems import get_problem

# The demo's trace: `python -m paretomtl demo` (and the defaults of `trace`).
PROBLEM = "zdt1"
METHOD = "epo"
RAYS = 16
SEED = 0
OUT = "results/demo"

# The descent demo's methods: `python -m paretomtl descent`.
DESCENT_METHODS = ("mgda", "pareto-step", "pcgrad", "sum")


def _direction(method: str, grads: np.ndarray, step: int) -> np.ndarray:
    if method == "mgda":
        return solvers.mgda(grads).direction
    if method == "pareto-step":
        return solvers.pareto_step(grads, lower_bounds=[0.2, 0.2]).direction
    if method == "pcgrad":
        return solvers.pcgrad(grads, seed=step).direction
    if method == "sum":
        return grads.sum(axis=0)
    raise ValueError(f"method must be one of {DESCENT_METHODS}; got {method!r}")


def run(out: Path | str = OUT, *, progress: object = None) -> dict:
    """Trace the demo's front: :func:`paretomtl.cli.trace.trace_to_folder` with the defaults."""
    return trace_to_folder(PROBLEM, METHOD, RAYS, Path(out), seed=SEED, progress=progress)


def descent(
    out: Path, *, starts: int = 8, steps: int = 150, lr: float = 0.2, seed: int = 0
) -> dict:
    """Run the descent demo; write ``points.csv``, ``summary.json`` and ``front.png`` into
    out (all at once, when every file is written: :func:`paretomtl.cli.output.staged`)."""
    with staged(out, ("points.csv", "summary.json", "front.png")) as stage:
        summary = _descent(stage, starts, steps, lr, seed)
    if summary["plot"] is not None:
        summary["plot"] = str(out / "front.png")
    return summary


def _descent(out: Path, starts: int, steps: int, lr: float, seed: int) -> dict:
    problem = get_problem("paretomtl-toy", n_var=2)
    rng = np.random.default_rng(seed)
    x0s = rng.uniform(problem.lower, problem.upper, size=(starts, 2))
    trajectories: dict[str, list[np.ndarray]] = {}
    rows = []
    timings = {}
    for method in DESCENT_METHODS:
        tic = time.perf_counter()
        paths = []
        for k, x0 in enumerate(x0s):
            x = x0.copy()
            path = []
            for step in range(steps):
                values, grads = problem.evaluate(x)
                path.append(values)
                # A projected step: the box [-1, 1]^2 holds the Pareto set.
                x = np.clip(x - lr * _direction(method, grads, step), problem.lower, problem.upper)
            values, grads = problem.evaluate(x)
            path.append(values)
            paths.append(np.array(path))
            stationarity = solvers.mgda(grads).objective
            rows.append(
                {
                    "method": method,
                    "start": k,
                    "x0": float(x[0]),
                    "x1": float(x[1]),
                    "f1": float(values[0]),
                    "f2": float(values[1]),
                    "min_norm_sq": float(stationarity),
                }
            )
        timings[method] = time.perf_counter() - tic
        trajectories[method] = paths
    with open(out / "points.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "problem": "Pareto MTL toy, d = 2 (Lin et al. 2019)",
        "starts": starts,
        "steps": steps,
        "lr": lr,
        "methods": {
            m: {
                "median_min_norm_sq": float(
                    np.median([r["min_norm_sq"] for r in rows if r["method"] == m])
                ),
                "max_min_norm_sq": float(
                    np.max([r["min_norm_sq"] for r in rows if r["method"] == m])
                ),
                "seconds": timings[m],
            }
            for m in DESCENT_METHODS
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["plot"] = _plot(out / "front.png", trajectories, problem.pareto_front(200))
    return summary


def report_descent(summary: dict, out: Path) -> None:
    """Print what :func:`descent` returned: a table of the methods and the files in ``out``."""
    print(f"problem: {summary['problem']}, {summary['starts']} starts x {summary['steps']} steps")
    print(f"{'method':<12} {'median ||d*||^2':>16} {'worst ||d*||^2':>16} {'seconds':>8}")
    for name, m in summary["methods"].items():
        print(
            f"{name:<12} {m['median_min_norm_sq']:>16.3e} {m['max_min_norm_sq']:>16.3e} "
            f"{m['seconds']:>8.2f}"
        )
    print(f"points:  {out / 'points.csv'}")
    print(f"summary: {out / 'summary.json'}")
    print(f"plot:    {summary['plot'] or f'skipped ({PLOT_NOTE})'}")


def _plot(path: Path, trajectories: dict[str, list[np.ndarray]], front: np.ndarray) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, len(trajectories), figsize=(4 * len(trajectories), 4))
    for ax, (method, paths) in zip(axes, trajectories.items(), strict=True):
        ax.plot(front[:, 0], front[:, 1], "k-", lw=2, label="true Pareto front")
        for p in paths:
            ax.plot(p[:, 0], p[:, 1], "-", color="tab:blue", alpha=0.5, lw=1)
            ax.plot(p[-1, 0], p[-1, 1], "o", color="tab:red", ms=4)
        ax.set_title(method)
        ax.set_xlabel("$f_1$")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
    axes[0].set_ylabel("$f_2$")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle("Descent on the Pareto MTL toy: trajectories (blue), end points (red)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
