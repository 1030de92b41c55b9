"""Trace a Pareto front to files: the work behind the ``trace`` and ``demo`` commands.

:func:`trace_to_folder` runs :func:`paretomtl.front.trace` for a named problem and
front method over :func:`paretomtl.front.simplex_rays`, then writes into a folder:

- ``points.csv``: one row per found point: the ray's weights ``r1..rm``, the
  objective values ``f1..fm``, ``stationarity`` (bound-aware, at the point),
  ``converged`` (1 or 0) and ``iterations``.
- ``indicators.json``: the run (problem, n_var, method, rays, seed, seconds) and
  GD (the mean exact distance to the true front, :meth:`Problem.front_distance`),
  IGD, IGD+ and the hypervolume of the found points against a dense sample of
  the true front (``problem.pareto_front``: 1000 points for two objectives, 10 000
  for three or more), with the reference point 1.1 in every objective; the
  hypervolume also as a fraction of the sample's own. The indicators need moocore
  (``pip install 'paretomtl[indicators]'``); without it they are null and a
  ``note`` says so.
- ``front.png``: the true front (a line; a surface for three objectives) and the
  found points, if matplotlib is installed (``pip install 'paretomtl[plot]'``).

:class:`ProgressBar` is the text progress bar the command line passes as
``progress``; :func:`report` prints a trace's summary.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from paretomtl.cli.output import check_writable as check_writable  # re-exported
from paretomtl.cli.output import staged
from paretomtl.front import TraceResult, front_method_info, simplex_rays, trace
from paretomtl.indicators import gd, hypervolume, igd, igd_plus
from paretomtl.problems import Problem, get_problem

REFERENCE = 1.1  # the hypervolume's reference point, in every objective
FRONT_SAMPLE_2D = 1000  # true-front points for two objectives
FRONT_SAMPLE_ND = 10_000  # ... and for three or more
INDICATORS_NOTE = "the hypervolume needs moocore: pip install 'paretomtl[indicators]'"
PLOT_NOTE = "matplotlib missing: pip install 'paretomtl[plot]'"
OUTPUTS = ("points.csv", "indicators.json", "front.png")  # what a trace writes


class ProgressBar:
    """A text progress bar, called as ``bar(done, total)``.

    On a terminal it redraws one line in place (``\\r``); otherwise (a log file, a
    pipe) it prints at most four lines, one as each quarter of the work completes.

    Example:
        >>> import io
        >>> stream = io.StringIO()
        >>> bar = ProgressBar("trace", stream=stream)
        >>> for done in range(1, 9):
        ...     bar(done, 8)
        >>> print(stream.getvalue(), end="")
        trace   2/8 (25%)
        trace   4/8 (50%)
        trace   6/8 (75%)
        trace   8/8 (100%)
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self._quarter = 0
        self._start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        total = max(int(total), 1)
        done = min(max(int(done), 0), total)
        n = len(str(total))
        if self.tty:
            filled = self.width * done // total
            bar = "#" * filled + "." * (self.width - filled)
            seconds = time.perf_counter() - self._start
            self.stream.write(
                f"\r{self.label} [{bar}] {done:>{n}}/{total} {seconds:5.1f} s"
                + ("\n" if done == total else "")
            )
            self.stream.flush()
            return
        quarter = 4 * done // total
        if quarter > self._quarter:
            self._quarter = quarter
            self.stream.write(f"{self.label} {done:>{n + 2}}/{total} ({100 * done // total}%)\n")
            self.stream.flush()


def prepare(
    problem: str, method: str, rays: int, n_var: int | None = None
) -> tuple[Problem, str, np.ndarray]:
    """Check the arguments of a trace; return the problem, the method's name and the rays.

    Raises a ValueError with a one-line message for an unknown problem or method (it
    lists the valid ones) or a ray count that :func:`paretomtl.front.simplex_rays`
    refuses (below 1, or not a Das-Dennis lattice size for three or more
    objectives); the message then starts with ``--rays``.

    Example:
        >>> problem, method, rays = prepare("dtlz2", "tchebycheff", 15, n_var=5)
        >>> problem, method, rays.shape
        (DTLZ2(n_var=5), 'tchebycheff', (15, 3))
    """
    options = {} if n_var is None else {"n_var": n_var}
    prob = get_problem(problem, **options)
    name = front_method_info(method).name
    try:
        R = simplex_rays(prob.n_obj, rays)
    except ValueError as exc:
        raise ValueError(f"--rays {rays}: {exc}") from exc
    return prob, name, R


def true_front(problem: Problem) -> np.ndarray:
    """The dense sample of the true front that the indicators are measured against."""
    n = FRONT_SAMPLE_2D if problem.n_obj == 2 else FRONT_SAMPLE_ND
    return problem.pareto_front(n)


def indicators(points: np.ndarray, front: np.ndarray, problem: Problem | None = None) -> dict:
    """GD, IGD, IGD+ and hypervolume of ``points`` against ``front`` (the hypervolume
    keys None without moocore; the distances need only numpy).

    With ``problem``, GD is the mean of :meth:`Problem.front_distance`, the exact
    distance to the true front (``front``'s gaps would otherwise dominate it: about
    3.6e-4 for points exactly on ZDT1's front against 1000 samples); IGD, IGD+ and
    the hypervolume are always against ``front``.

    Example:
        >>> from paretomtl.problems import ZDT1
        >>> front = ZDT1().pareto_front(1000)
        >>> out = indicators(front[::111], front)
        >>> out["gd"], round(out["igd"], 3), round(out["hypervolume_fraction"], 3)
        (0.0, 0.041, 0.929)
    """
    ref = [REFERENCE] * front.shape[1]
    keys = ("gd", "igd", "igd_plus", "hypervolume", "hypervolume_true_front")
    distances = (
        gd(points, front) if problem is None else float(problem.front_distance(points).mean()),
        igd(points, front),
        igd_plus(points, front),
    )
    out = dict(zip(keys[:3], distances, strict=True))
    try:  # moocore is imported on first use, by the hypervolume
        volumes = (hypervolume(points, reference=ref), hypervolume(front, reference=ref))
    except ImportError:
        return {
            **out,
            **dict.fromkeys(keys[3:]),
            "hypervolume_fraction": None,
            "note": INDICATORS_NOTE,
        }
    out.update(zip(keys[3:], volumes, strict=True))
    out["hypervolume_fraction"] = volumes[0] / volumes[1]
    return out


def trace_to_folder(
    problem: str,
    method: str,
    rays: int,
    out: Path,
    *,
    seed: int = 0,
    n_var: int | None = None,
    progress: object = None,
) -> dict:
    """Trace the front of ``problem`` with ``method`` from ``rays`` rays; write the files.

    Args:
        problem: a problem's name (:func:`paretomtl.problems.available_problems`).
        method: a front method's name (:func:`paretomtl.front.available_front_methods`).
        rays: how many preference vectors (:func:`paretomtl.front.simplex_rays`).
        out: the folder for ``points.csv``, ``indicators.json`` and ``front.png``.
        seed: the seed of the random starts.
        n_var: the number of variables (default: the problem's own).
        progress: passed to :func:`paretomtl.front.trace`, e.g. a :class:`ProgressBar`.

    Returns:
        The content of ``indicators.json``, plus ``points``, ``indicators`` and
        ``plot``: where each file went (``plot`` None without matplotlib).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     res = trace_to_folder("zdt1", "tchebycheff", 4, Path(tmp), n_var=5)
        ...     Path(res["points"]).read_text().splitlines()[0]
        'r1,r2,f1,f2,stationarity,converged,iterations'
        >>> res["converged"], res["rays"], round(res["igd"], 3)
        (4, 4, 0.126)
    """
    prob, name, R = prepare(problem, method, rays, n_var)
    with staged(out, OUTPUTS) as stage:
        tic = time.perf_counter()
        result = trace(prob, name, R, seed=seed, progress=progress)
        seconds = time.perf_counter() - tic
        front = true_front(prob)
        write_points(stage / "points.csv", result)
        summary = {
            "problem": prob.name,
            "n_var": prob.n_var,
            "n_obj": prob.n_obj,
            "method": name,
            "rays": len(R),
            "seed": seed,
            "seconds": seconds,
            "n_points": len(result.points),
            "converged": int(np.count_nonzero(result.converged)),
            "reference_point": [REFERENCE] * prob.n_obj,
            "true_front_points": len(front),
            **indicators(result.points, front, prob),
        }
        (stage / "indicators.json").write_text(json.dumps(summary, indent=2) + "\n")
        plot = plot_front(stage / "front.png", prob, result.points, result.converged, front, name)
    return {
        **summary,
        "points": str(out / "points.csv"),
        "indicators": str(out / "indicators.json"),
        "plot": None if plot is None else str(out / "front.png"),
    }


def write_points(path: Path, result: TraceResult) -> None:
    """``points.csv``: per point its ray, objective values, stationarity, convergence."""
    m = result.points.shape[1]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [f"r{i + 1}" for i in range(m)]
            + [f"f{i + 1}" for i in range(m)]
            + ["stationarity", "converged", "iterations"]
        )
        for k in range(len(result.points)):
            ray = result.rays[k] if k < len(result.rays) else [math.nan] * m
            writer.writerow(
                [repr(float(v)) for v in ray]
                + [repr(float(v)) for v in result.points[k]]
                + [
                    repr(float(result.stationarity[k])),
                    int(bool(result.converged[k])),
                    int(result.iterations[k]),
                ]
            )


def _fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "n/a" if value is None else format(scale * value, spec)


def report(res: dict) -> None:
    """Print the summary of a trace: what :func:`trace_to_folder` returned.

    Example:
        >>> res = {"problem": "zdt1", "n_var": 5, "n_obj": 2, "method": "epo", "rays": 4,
        ...        "seed": 0, "converged": 4, "n_points": 4, "seconds": 0.5,
        ...        "reference_point": [1.1, 1.1], "true_front_points": 1000, "gd": None,
        ...        "igd": None, "igd_plus": None, "hypervolume": None,
        ...        "hypervolume_fraction": None, "points": "p.csv", "indicators": "i.json",
        ...        "plot": "front.png"}
        >>> report(res)  # doctest: +ELLIPSIS
        zdt1 (n_var=5, 2 objectives): epo from 4 rays, seed 0: 4/4 converged in 0.50 s
        GD n/a  IGD n/a  IGD+ n/a  HV n/a = n/a % of the true front's (reference point ...
        points:     p.csv
        indicators: i.json
        plot:       front.png
    """
    print(
        f"{res['problem']} (n_var={res['n_var']}, {res['n_obj']} objectives): {res['method']} "
        f"from {res['rays']} rays, seed {res['seed']}: {res['converged']}/{res['n_points']} "
        f"converged in {res['seconds']:.2f} s"
    )
    ref = ", ".join(f"{v:g}" for v in res["reference_point"])
    print(
        f"GD {_fmt(res['gd'], '.3g')}  IGD {_fmt(res['igd'], '.4f')}  "
        f"IGD+ {_fmt(res['igd_plus'], '.4f')}  HV {_fmt(res['hypervolume'], '.4f')} = "
        f"{_fmt(res['hypervolume_fraction'], '.1f', 100.0)} % of the true front's "
        f"(reference point ({ref}); true front: {res['true_front_points']} points)"
    )
    if "note" in res:
        print(f"note: {res['note']}")
    print(f"points:     {res['points']}")
    print(f"indicators: {res['indicators']}")
    print(f"plot:       {res['plot'] or f'skipped ({PLOT_NOTE})'}")


def _front_line(problem: Problem, front: np.ndarray) -> np.ndarray:
    """A 2-D front to draw as a line, with NaN rows at its gaps (ZDT3) so it skips them.

    Sampled evenly along the curve where the problem can, so that a step much longer
    than the others is a gap, not a steep stretch (ZDT1 near f1 = 0).
    """
    if "arclength" in problem.front_spacings:
        front = problem.pareto_front(len(front), spacing="arclength")
    step = np.linalg.norm(np.diff(front, axis=0), axis=1)
    gaps = np.flatnonzero(step > 10.0 * np.median(step))
    return np.insert(front, gaps + 1, np.nan, axis=0)


def plot_front(
    path: Path,
    problem: Problem,
    points: np.ndarray,
    converged: np.ndarray,
    front: np.ndarray,
    method: str,
) -> str | None:
    """Draw the true front and the found points into ``path``; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    m = problem.n_obj
    title = f"{problem.name} (n_var={problem.n_var}): {method}, {len(points)} rays"
    ok = np.asarray(converged, dtype=bool)
    if m == 2:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        line = _front_line(problem, front)
        ax.plot(line[:, 0], line[:, 1], "k-", lw=1.5, label="true Pareto front")
        ax.plot(points[ok, 0], points[ok, 1], "o", color="tab:red", ms=5, label="found")
        if not ok.all():
            ax.plot(
                points[~ok, 0], points[~ok, 1], "x", color="tab:blue", ms=7, label="not converged"
            )
        ax.set_xlabel("$f_1$")
        ax.set_ylabel("$f_2$")
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(loc="upper right", fontsize=8)
    else:
        fig = plt.figure(figsize=(6, 5.5))
        ax = fig.add_subplot(projection="3d")
        # A coarser sample for the surface: it is drawn, not measured.
        surface = problem.pareto_front(800) if m == 3 else front
        try:
            ax.plot_trisurf(
                surface[:, 0], surface[:, 1], surface[:, 2], color="0.6", alpha=0.35, lw=0
            )
        except (ValueError, RuntimeError):  # a front that is no graph over (f1, f2)
            ax.scatter(surface[:, 0], surface[:, 1], surface[:, 2], s=1, color="0.5")
        ax.scatter(points[ok, 0], points[ok, 1], points[ok, 2], color="tab:red", s=18)
        if not ok.all():
            ax.scatter(
                points[~ok, 0], points[~ok, 1], points[~ok, 2], color="tab:blue", marker="x", s=30
            )
        ax.set_xlabel("$f_1$")
        ax.set_ylabel("$f_2$")
        ax.zaxis.set_rotate_label(False)
        ax.set_zlabel("$f_3$")
        ax.view_init(elev=25, azim=45)
        title += "\ntrue front (grey), found points (red)"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
