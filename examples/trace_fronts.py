"""Trace a concave front with several methods and compare them with the exact points.

Run: .venv/bin/python examples/trace_fronts.py

ZDT2's front, f2 = 1 - f1^2, is concave: the weighted sum (linear scalarisation)
can only reach its two ends, while EPO, Tchebycheff and Pareto MTL spread their
points along it. The exact preference points (where r_i f_i is equal) are the best
any method can do with the same rays; every method's points are compared with
them by IGD and hypervolume (needs ``paretomtl[indicators]``), and by their exact
distance to the front (GD).
"""

from __future__ import annotations

import time

import numpy as np

from paretomtl.front import preference_points, simplex_rays, trace
from paretomtl.problems import get_problem


def main() -> None:
    problem = get_problem("zdt2", n_var=30)
    rays = simplex_rays(2, 16)
    exact = preference_points(problem, rays)
    front = problem.pareto_front(1000)
    try:
        from paretomtl.indicators import hypervolume, igd

        def scores(points: np.ndarray) -> str:
            hv = hypervolume(points, reference=[1.1, 1.1])
            hv_exact = hypervolume(exact, reference=[1.1, 1.1])
            return f"IGD {igd(points, front):.4f}  HV / exact points' {hv / hv_exact:.3f}"
    except ImportError:

        def scores(points: np.ndarray) -> str:
            return "(pip install 'paretomtl[indicators]' for IGD and HV)"

    print(f"{problem.name}: 16 rays; exact points: {scores(exact)}")
    for method in ("linear", "tchebycheff", "epo", "pareto-mtl"):
        tic = time.perf_counter()
        out = trace(problem, method, rays, seed=0)
        seconds = time.perf_counter() - tic
        spread = np.unique(out.points[:, 0].round(3)).size
        gd = problem.front_distance(out.points).mean()
        print(
            f"{method:<12} {seconds:5.2f} s  distinct f1 values {spread:2d}/16  "
            f"GD {gd:.1e}  {scores(out.points)}"
        )


if __name__ == "__main__":
    main()
