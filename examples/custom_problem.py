"""Trace the Pareto front of a problem you define yourself, as a torch function.

Fonseca & Fleming's problem (Evolutionary Computation 3(1), 1995) on [-4, 4]^n:

    f_1(x) = 1 - exp(-sum_i (x_i - 1/sqrt(n))^2),  f_2(x) = 1 - exp(-sum_i (x_i + 1/sqrt(n))^2).

Its Pareto set is x_1 = ... = x_n = s/sqrt(n), s in [-1, 1], so its front is known in
closed form, F(s) = (1 - exp(-(s - 1)^2), 1 - exp(-(s + 1)^2)): a concave curve, which
the Tchebycheff scalarisation traces (a weighted sum would find only its ends). The
Jacobian and Hessian-vector products come from torch autograd
(paretomtl.adapters.torch.problem); the script prints each point's distance to the true
front.

    python examples/custom_problem.py           # 11 rays, n = 10
    python examples/custom_problem.py --quick   # 5 rays, n = 3
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from paretomtl.adapters.torch import problem
from paretomtl.front import simplex_rays, trace


def fonseca_fleming(x: torch.Tensor) -> torch.Tensor:
    """The two objectives at x, shape (2,)."""
    a = 1.0 / math.sqrt(x.numel())
    return torch.stack(
        [1.0 - torch.exp(-((x - a) ** 2).sum()), 1.0 - torch.exp(-((x + a) ** 2).sum())]
    )


def true_front(s: np.ndarray) -> np.ndarray:
    """The front in closed form, F(s) for s in [-1, 1] (f_1 rises as s falls)."""
    return np.stack([1.0 - np.exp(-((s - 1.0) ** 2)), 1.0 - np.exp(-((s + 1.0) ** 2))], axis=-1)


def distance_to_front(p: np.ndarray) -> float:
    """min over s in [-1, 1] of ||F(s) - p||: a dense grid, refined by a bounded search."""
    s = np.linspace(-1.0, 1.0, 4001)
    d2 = ((true_front(s) - p) ** 2).sum(axis=1)
    j = int(np.argmin(d2))
    lo, hi = s[max(j - 1, 0)], s[min(j + 1, len(s) - 1)]
    res = minimize_scalar(
        lambda u: float(((true_front(np.array(u)) - p) ** 2).sum()),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return math.sqrt(max(min(float(d2[j]), float(res.fun)), 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rays, 3 variables")
    args = parser.parse_args()
    n_var, n_rays = (3, 5) if args.quick else (10, 11)

    ff = problem(fonseca_fleming, n_var, lower=-4.0, upper=4.0)
    # Far from the centre both objectives are flat at 1 (vanishing gradients): start
    # every ray at the origin, where the gradients are large.
    out = trace(ff, "tchebycheff", simplex_rays(2, n_rays), x0=np.zeros(n_var))
    distances = np.array([distance_to_front(p) for p in out.points])
    print(f"{ff!r}: {n_rays} rays, method {out.method}")
    print("   ray            f1        f2        distance to the true front")
    for r, p, d in zip(out.rays, out.points, distances, strict=True):
        print(f"   ({r[0]:.2f}, {r[1]:.2f})   {p[0]:.6f}  {p[1]:.6f}  {d:.2e}")
    print(f"max distance {distances.max():.2e}, all converged: {bool(out.converged.all())}")


if __name__ == "__main__":
    main()
