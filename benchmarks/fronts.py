"""Benchmark of the front methods against the exact preference points of the true front.

Run from the repository root:

    .venv/bin/python benchmarks/fronts.py [--quick] [--check] [--out FILE]

What it does. For each problem (zdt1, zdt2, zdt3, paretomtl-toy, convex-quadratic,
dtlz2, with their default sizes), each registered front method
(:func:`paretomtl.front.available_front_methods`, so methods added later are picked up
without editing this file) and each number of rays (16 and 64 evenly spread rays
``simplex_rays(2, K)`` for two objectives; the Das-Dennis lattices of 15 and 91 rays,
``simplex_rays(3, 15)`` and ``simplex_rays(3, 91)``, for DTLZ2), it runs
``trace(problem, method, rays, seed=0)`` and reports, in one table:

- GD: the mean distance of the points found to the true front,
  ``problem.front_distance(points).mean()`` (accurate to about 1e-8 on two-objective
  fronts, the floor that shows in the "exact points" rows; a closed form on DTLZ2).
- IGD against ``pareto_front(1000)`` (two objectives, evenly spaced in the front's
  parameter, the issue's convention) or ``pareto_front(5000)`` (DTLZ2, an even spread
  by area), and its ratio to the IGD of the exact points.
- HV with the reference point 1.1 in every objective (it lies above every point of
  every true front, ZDT3's included: its f2 runs from -0.77 to 1), as a fraction of the
  true front's HV (two objectives: the HV of a 200 001-point sample, within 1e-5 of the
  true value; DTLZ2: exactly :math:`1.1^3 - \\pi/6`, the box less the unit ball's
  octant) and as a ratio to the HV of the exact points.
- the wall time of the trace, the worst bound-aware stationarity and the number of runs
  that stopped before their convergence test (``converged`` False).

The exact points, :func:`paretomtl.front.preference_points`, are the true front's points
where :math:`r_i f_i` is equal for all i (EPO's exact Pareto optimal points; zeros of a
ray lifted to ``EDGE_WEIGHT * max(r)``, as the methods do): the best any method can do
with those rays. Each group of the table starts with their row ("exact points").

The issue's targets are then checked on the numbers of the same run and printed
PASS/FAIL: for "epo" and "tchebycheff" on zdt1, zdt2, paretomtl-toy and dtlz2 (both ray
counts), GD < 1e-4, HV >= 0.99 x the exact points' HV and IGD <= 1.05 x theirs; on zdt1
with 64 rays, IGD < 1e-2. A target of a method that is not registered prints "not
registered". The exit status is 0 (it is a report) unless ``--check`` is given, then 1
on any FAIL. ``--quick`` is the CI smoke run: zdt1 and dtlz2, 16 and 15 rays, two
methods (EPO and Tchebycheff where registered), about 30 s: each trace gets a time
budget of 60 s there (``--budget`` sets one for any run), and one that runs past it is
abandoned. A method that raises or runs over its budget is reported as an error row
(and its targets FAIL).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from importlib import metadata

import numpy as np
from _common import Report, cpu_model, load_average

import paretomtl
from paretomtl.front import available_front_methods, preference_points, simplex_rays, trace
from paretomtl.indicators import hypervolume, igd
from paretomtl.problems import DTLZ2, get_problem

PROBLEMS = ("zdt1", "zdt2", "zdt3", "paretomtl-toy", "convex-quadratic", "dtlz2")
RAY_COUNTS = {2: (16, 64), 3: (15, 91)}  # by number of objectives
REFERENCE = 1.1  # hypervolume reference point, in every objective
IGD_POINTS = {2: 1000, 3: 5000}  # true-front sample for IGD
DENSE_2D = 200_001  # true-front sample for the true HV (two objectives)
EXACT = "exact points"

TARGET_METHODS = ("epo", "tchebycheff")
TARGET_PROBLEMS = ("zdt1", "zdt2", "paretomtl-toy", "dtlz2")
GD_MAX = 1e-4
HV_MIN_RATIO = 0.99
IGD_MAX_RATIO = 1.05
ZDT1_64_IGD_MAX = 1e-2
NOT_MEASURED = "not measured in this run"
QUICK_BUDGET = 60.0  # seconds per trace in --quick runs (EPO on DTLZ2, 15 rays: ~18 s)


@dataclass
class Row:
    """The indicators of one point set (a method's trace, or the exact points)."""

    problem: str
    n_rays: int
    method: str
    gd: float = float("nan")
    igd: float = float("nan")
    hv: float = float("nan")  # fraction of the true front's HV
    seconds: float = float("nan")
    worst_stationarity: float = float("nan")
    not_converged: int = 0
    n_points: int = 0
    error: str | None = None


# --------------------------------------------------------------------------- the true fronts


class TrueFront:
    """What the indicators need of a problem's true front.

    Attributes:
        igd_front: the sample IGD is measured against.
        hv: the true front's hypervolume for the reference point.
        reference: the reference point.
    """

    def __init__(self, problem) -> None:
        m = problem.n_obj
        self.problem = problem
        self.reference = np.full(m, REFERENCE)
        self.igd_front = problem.pareto_front(IGD_POINTS[m])
        if isinstance(problem, DTLZ2):
            dense = self.igd_front
            self.hv = REFERENCE**3 - np.pi / 6.0
        else:
            dense = problem.pareto_front(DENSE_2D)
            self.hv = hypervolume(dense, self.reference)
        if dense.max() >= REFERENCE:
            raise ValueError(f"reference point {REFERENCE} does not lie above {problem.name}")

    def gd(self, points: np.ndarray) -> float:
        """Mean distance of ``points`` to the true front (GD with p = 1)."""
        return float(np.mean(self.problem.front_distance(points)))

    def row(self, name: str, n_rays: int, method: str, points: np.ndarray) -> Row:
        """A Row with GD, IGD and the HV fraction of ``points``."""
        return Row(
            problem=name,
            n_rays=n_rays,
            method=method,
            gd=self.gd(points),
            igd=igd(points, self.igd_front),
            hv=hypervolume(points, self.reference) / self.hv,
            n_points=len(points),
        )


# --------------------------------------------------------------------------- the runs


class OverBudget(Exception):
    """Raised from trace's progress callback when a trace runs past its time budget."""


def run_method(
    front: TrueFront, name: str, rays: np.ndarray, method: str, budget: float | None
) -> Row:
    """Trace ``method`` over ``rays`` on the problem and measure the points found.

    With a ``budget`` (seconds), the trace is abandoned after the first point that
    ends past it, and the Row carries the error "over budget".
    """
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - t0
        if budget is not None and elapsed > budget and done < total:
            raise OverBudget(
                f"over the {budget:g} s budget: {done}/{total} rays in {elapsed:.1f} s"
            )

    try:
        out = trace(front.problem, method, rays, seed=0, progress=progress)
    except OverBudget as exc:
        return Row(name, len(rays), method, seconds=time.perf_counter() - t0, error=str(exc))
    except Exception as exc:  # a broken method is reported, not fatal
        traceback.print_exc(file=sys.stderr)
        seconds = time.perf_counter() - t0
        return Row(name, len(rays), method, seconds=seconds, error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - t0
    if not np.isfinite(out.points).all():
        return Row(name, len(rays), method, seconds=seconds, error="non-finite points")
    row = front.row(name, len(rays), method, out.points)
    row.seconds = seconds
    row.worst_stationarity = float(np.max(out.stationarity))
    row.not_converged = int(np.sum(~np.asarray(out.converged, dtype=bool)))
    return row


def run_all(
    problems: tuple[str, ...], methods: tuple[str, ...], quick: bool, budget: float | None
) -> dict[tuple[str, int], list[Row]]:
    """Every (problem, ray count) group: the exact points' Row, then one per method."""
    groups: dict[tuple[str, int], list[Row]] = {}
    for name in problems:
        problem = get_problem(name)
        front = TrueFront(problem)
        counts = RAY_COUNTS[problem.n_obj][:1] if quick else RAY_COUNTS[problem.n_obj]
        for count in counts:
            rays = simplex_rays(problem.n_obj, count)
            rows = [front.row(name, count, EXACT, preference_points(problem, rays))]
            for method in methods:
                row = run_method(front, name, rays, method, budget)
                print(f"  {name} {count} rays {method}: {row.seconds:.1f} s", file=sys.stderr)
                rows.append(row)
            groups[name, count] = rows
    return groups


# --------------------------------------------------------------------------- the report


def ratio(value: float, reference: float) -> str:
    """value / reference, or '-' when the reference is 0 or missing."""
    if not np.isfinite(value) or not np.isfinite(reference) or reference == 0:
        return "-"
    return f"{value / reference:.3f}"


def table(report: Report, groups: dict[tuple[str, int], list[Row]]) -> None:
    """One table: per group the exact points' row, then each method's."""
    headers = [
        "problem",
        "rays",
        "method",
        "GD",
        "IGD",
        "IGD/exact",
        "HV/true",
        "HV/exact",
        "time s",
        "worst stat",
        "not conv",
    ]
    rows: list[list[str]] = []
    errors: list[str] = []
    for (name, count), group in groups.items():
        exact = group[0]
        for row in group:
            if row.error is not None:
                rows.append([name, str(count), row.method, "error"] + [""] * 7)
                errors.append(f"error: {name}, {count} rays, {row.method}: {row.error}")
                continue
            is_exact = row.method == EXACT
            rows.append(
                [
                    name,
                    str(count),
                    row.method,
                    f"{row.gd:.1e}",
                    f"{row.igd:.4f}",
                    "" if is_exact else ratio(row.igd, exact.igd),
                    f"{row.hv:.4f}",
                    "" if is_exact else ratio(row.hv, exact.hv),
                    "" if is_exact else f"{row.seconds:.2f}",
                    "" if is_exact else f"{row.worst_stationarity:.1e}",
                    "" if is_exact else f"{row.not_converged}/{row.n_points}",
                ]
            )
        rows.append([])
    rows.pop()
    report.table(headers, rows)
    if errors:
        report("\n".join(errors))
        report()


def targets(
    report: Report,
    groups: dict[tuple[str, int], list[Row]],
    registered: tuple[str, ...],
) -> bool:
    """Print PASS/FAIL per target; return True when none FAILs."""
    report.heading("Targets (from the numbers of this run)")
    lines: list[tuple[str, bool | None, str]] = []
    for method in TARGET_METHODS:
        for name in TARGET_PROBLEMS:
            n_obj = 3 if name == "dtlz2" else 2
            for count in RAY_COUNTS[n_obj]:
                checks = [
                    f"GD < {GD_MAX:g}",
                    f"HV >= {HV_MIN_RATIO} x exact",
                    f"IGD <= {IGD_MAX_RATIO} x exact",
                ]
                if name == "zdt1" and count == 64:
                    checks.append(f"IGD < {ZDT1_64_IGD_MAX:g}")
                for check in checks:
                    label = f"{method} {name} {count} rays: {check}"
                    if method not in registered:
                        lines.append((label, None, "not registered"))
                        continue
                    group = groups.get((name, count))
                    row = None if group is None else next(r for r in group if r.method == method)
                    if row is None:
                        lines.append((label, None, NOT_MEASURED))
                    elif row.error is not None:
                        lines.append((label, False, row.error))
                    else:
                        lines.append((label, *evaluate(check, row, group[0])))
    unmeasured = sum(detail == NOT_MEASURED for _, _, detail in lines)
    for label, ok, detail in lines:
        if detail == NOT_MEASURED:
            continue
        verdict = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        report(f"[{verdict}] {label}: {detail}")
    if unmeasured:
        report(f"({unmeasured} targets not measured in this run)")
    report()
    return not any(ok is False for _, ok, _ in lines)


def evaluate(check: str, row: Row, exact: Row) -> tuple[bool, str]:
    """(passed, detail) of one target on a method's Row and the exact points' Row."""
    if check.startswith("GD"):
        return row.gd < GD_MAX, f"GD {row.gd:.1e}"
    if check.startswith("HV"):
        r = row.hv / exact.hv
        return r >= HV_MIN_RATIO, f"HV {row.hv:.4f} of true, {r:.4f} x exact ({exact.hv:.4f})"
    if check.startswith("IGD <="):
        r = row.igd / exact.igd
        return r <= IGD_MAX_RATIO, f"IGD {row.igd:.4f}, {r:.3f} x exact ({exact.igd:.4f})"
    return row.igd < ZDT1_64_IGD_MAX, f"IGD {row.igd:.4f}"


def machine(report: Report) -> None:
    """CPU, load and versions."""
    model, load = cpu_model(), load_average()
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in ("scipy", "moocore"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    versions.append(f"paretomtl {paretomtl.__version__}")
    report(f"CPU: {model} ({platform.machine()}), os.cpu_count() {os.cpu_count()}")
    report(f"load average at start: {load} (other work on the machine skews timings)")
    report("versions: " + ", ".join(versions))
    report()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; the exit status is 1 only with --check and a FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 30 s)")
    parser.add_argument("--check", action="store_true", help="exit 1 if any target FAILs")
    parser.add_argument("--out", metavar="FILE", help="also write the report to FILE")
    parser.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help=f"abandon a trace that runs longer (default: none; {QUICK_BUDGET:g} with --quick)",
    )
    args = parser.parse_args(argv)
    registered = available_front_methods()
    if args.quick:
        problems = ("zdt1", "dtlz2")
        preferred = [m for m in TARGET_METHODS if m in registered]
        methods = tuple((preferred + [m for m in registered if m not in preferred])[:2])
    else:
        problems, methods = PROBLEMS, registered
    report = Report()
    start = time.perf_counter()
    mode = "quick" if args.quick else "full"
    report(f"paretomtl front benchmark ({mode} run, {time.strftime('%Y-%m-%d %H:%M:%S')})")
    report()
    machine(report)
    report(f"methods: {', '.join(methods)} (registered: {', '.join(registered)})")
    report(
        "trace(problem, method, rays, seed=0), default problem sizes and method options. "
        "GD: mean of problem.front_distance (to ~1e-8; dtlz2: closed form). "
        "IGD: against pareto_front(1000) (dtlz2: 5000). HV: "
        "reference point 1.1 per objective; HV/true: fraction of the true front's HV; "
        "X/exact: ratio to the exact points of the same rays. worst stat: largest "
        "bound-aware stationarity; not conv: runs stopped before their test."
    )
    report()
    budget = args.budget if args.budget is not None else (QUICK_BUDGET if args.quick else None)
    if budget is not None:
        report(f"time budget per trace: {budget:g} s (a trace past it is abandoned: error)")
        report()
    groups = run_all(problems, methods, args.quick, budget)
    table(report, groups)
    passed = targets(report, groups, registered)
    report(f"total time {time.perf_counter() - start:.0f} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write("\n".join(report.lines) + "\n")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
