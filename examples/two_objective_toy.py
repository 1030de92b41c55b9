"""The 2-D two-objective toy of CAGrad, Nash-MTL and FAMO: which methods reach the Pareto set.

Run: .venv/bin/python examples/two_objective_toy.py [--quick] [--out DIR] [--jobs N]
(from a fresh clone: bash scripts/example.sh two_objective_toy). It writes
results/two_objective_toy/: the runs in the plane and in objective space, one panel per
method, for each version of the toy (four PNGs), two_objective_toy.csv (every run:
where it is, its losses, its distance to the Pareto set, MGDA's min-norm there, the
step from which it stays on the set) and pareto_set.csv. The full run is about 340 s
of CPU, spread over --jobs processes (default: every core; about 3 minutes on an idle
2-core machine); --quick runs 600 steps.

The problem is the authors' (Liu et al., "Conflict-Averse Gradient Descent for
Multi-task Learning", NeurIPS 2021, Fig. 1; toy.py of github.com/Cranial-XIX/CAGrad,
lines 21-54), copied with a factor s on L1 into Nash-MTL's and FAMO's code
(experiments/toy/problem.py of AvivNavon/nash-mtl and Cranial-XIX/FAMO). On
x = (x1, x2) in [-10, 10]^2:

    f1 = log max(|0.5 (-x1 - 7) - tanh(-x2)|, 5e-6) + 6
    f2 = log max(|0.5 (-x1 + 3) + tanh(-x2) + 2|, 5e-6) + 6
    g1 = ((x1 - 7)^2 + 0.1 (x2 + 8)^2) / 10 - 20,  g2 = ((x1 + 7)^2 + 0.1 (x2 + 8)^2) / 10 - 20
    c1 = max(tanh(x2 / 2), 0),  c2 = max(tanh(-x2 / 2), 0)
    L1 = s (c1 f1 + c2 g1),  L2 = c1 f2 + c2 g2

Above x2 = 0 each loss is a narrow log valley (x1 = -7 + 2 tanh x2 for L1,
7 - 2 tanh x2 for L2); below, two shallow quadratic bowls centred at (7, -8) and
(-7, -8). ``toy`` gives the losses and their closed-form gradients in numpy (equal to
torch autograd on the authors' code, clamps included: the floored logs pass no
gradient, both gates pass one at x2 = 0; tests/examples/test_two_objective_toy.py
checks them against central differences).

Two versions, each from the papers' own starts:

- balanced, CAGrad's Fig. 1: s = 1, starts (-8.5, 7.5), (-8.5, -5), (9, 9)
  (toy.py lines 346-350), 100000 steps (line 360).
- scaled, Nash-MTL's Fig. 1 (Navon et al., ICML 2022; experiments/toy/trainer.py
  lines 32-38, 83, 85) and FAMO's Fig. 1 (Liu et al., NeurIPS 2023; its copy of that
  trainer.py, lines 35-41, 97, 99): s = 0.1, starts (-8.5, 7.5), (0, 0), (9, 9),
  (-7.5, -0.5), (9, -1), reported after 35000 steps (Nash-MTL's count) and 50000
  (FAMO's).

Every run is Adam on x (lr 1e-3, torch's betas and eps, as all three papers' code:
toy.py line 361, trainer.py lines 53-58) fed each step the method's direction:
``mean`` (descent on the mean of the losses, the papers' "GD"/"LS"/"Adam": under Adam
the mean and the sum differ only through Adam's eps), ``mgda``, ``pcgrad`` (the mean
of the projected gradients, toy.py lines 270-279), ``cagrad`` (c = 0.5, the
direction divided by 1 + c, toy.py lines 299-327 and 368; Nash-MTL's toy used c = 0.4),
``nash-mtl`` (the direction clipped to norm 1, as the authors' NashMTL), ``imtl-g``,
``upgrad`` and ``aligned-mtl``: ``paretomtl.solvers.method(name, ...)`` on the
2 x 2 Jacobian; and ``famo``, the loss weighting ``paretomtl.weighting.FAMO`` as
FAMO's toy drives it (trainer.py lines 59 and 74-76, run.sh): logits' Adam lr 0.025,
gamma 0, loss minima (-21 s, -21), the logits stepped from the previous step's losses
to this step's before the weights are formed; the direction is those weights times
the Jacobian.

The Pareto set is computed, not taken from the papers: for 201 t in [0, 1],
t L1 + (1 - t) L2 (s = 1; the set in the plane does not depend on s) is minimised over
the domain by L-BFGS-B from the best point of an 81 x 81 grid; the 201 minimisers are
mutually non-dominated, MGDA's min-norm point of the two gradients' hull is at most
4.5e-9 of the larger gradient at each (Pareto critical), and no point of an
801 x 801 grid of the domain dominates any of them. It runs from (-7, -8.4345) through
(0, -8.3551) to (7, -8.4345): the papers draw it as the segment x2 = -8.3552, exact
at x1 = 0 only. A run is on the set when within 0.05 of the line through these points;
the table gives where (x1) and from which step on it stays there.

What the papers show, and what we measured (full run):

- CAGrad, Fig. 1 (its repository's misc/cagrad.gif, whose last frame is step
  100000): descent on the mean stays above the ridge from the two upper starts and
  reaches the minimiser of the mean, (0, -8.36), from (-8.5, -5); MGDA and PCGrad
  reach the set from all three starts but away from that minimiser (MGDA at x1 near
  -7, -3.3 and 3.3, PCGrad near -6.5, -2.2 and 2.6, the upper runs late); CAGrad
  reaches the minimiser from all three. Ours after 100000 steps: mean 1/3 (the upper
  runs stop at (-5.1, 2.1) and (5.0, 2.3)); MGDA 3/3 at x1 = -6.99, -3.32, +3.33;
  PCGrad 3/3 at -6.45, -2.34, +3.21, the upper runs on the set only from steps 54.3k
  and 58.3k on; CAGrad 3/3 at the minimiser, from steps 8.6k, 64.2k and 68.2k on.
  All as the figure shows but PCGrad's right-hand run, which ends at x1 = 3.2, not
  2.6.
- Nash-MTL, Fig. 1 ("Losses have a large difference in scale"; for LS, PCGrad and
  CAGrad, the caption says, L2's larger gradient controls the optimisation), read off
  the figure (misc/toy_pareto_2d.png in its repository; axes 0.1 L1 and L2) after
  35000 steps: LS 4/5 on the front, all at its L2 end (-0.38, -19.8), the fifth run
  held at 0.1 L1 = 0.73; PCGrad 4/5, at (-1.95, -5.5) and three between (-0.9, -18.7)
  and (-0.7, -19.3); CAGrad 4/5 near the L2 end; MGDA 5/5, three at the L1 end
  (0.1 L1 = -2); Nash-MTL 5/5, spread over the front. Ours at 35000 steps: mean 3/5
  on the set, at (-0.38, -19.83); a fourth run, from (-8.5, 7.5), is at
  (-0.38, -19.82), 0.008 from the front in objective space (on it, in a figure) but
  0.83 above the set in the plane (on it from step 38.0k); the fifth, from (9, 9), is
  held at 0.1 L1 = 0.73 (L2 from -0.81 at 35k to 1.45 at 50k: the figure's vertical
  stroke); PCGrad 4/5, at (-1.96, -5.51), (-0.93, -18.66), (-0.83, -18.98),
  (-0.70, -19.30), the run from (9, 9) held near the ridge x2 = 0; CAGrad 3/5 on the
  set and 4/5 on the front (its run from (-8.5, 7.5) is 0.004 from the front, on the
  set from 37.5k), at (-0.38, -19.83), the run from (9, 9) held near the ridge; MGDA
  5/5, at (-2.00, -0.46), (-2.00, -0.41), (-1.99, -2.85), (-1.19, -17.47),
  (-0.73, -19.24); Nash-MTL 5/5, at (-1.95, -5.86), (-1.83, -10.15), (-1.51, -15.09),
  (-1.01, -18.33), (-0.94, -18.61). Every end point is the figure's, to the eye.
- FAMO, Fig. 1 (50000 steps): "ADAM fails in 1 out of 5 runs to reach the Pareto
  front", FAMO "decreases task losses in a balanced way": its five runs end mid-front,
  0.1 L1 between about -1.75 and -1.3. Ours at 50000 steps: mean 4/5 (the run from
  (9, 9) is held, at 0.1 L1 = 0.73 as in the figure); FAMO 5/5, at 0.1 L1 = -1.72,
  -1.56, -1.52, -1.47, -1.37. The figure's other panel, each method's time for 50000
  steps (Adam 33 s ... Nash-MTL 995 s), is not reproduced: our runs advance together
  (see benchmarks/methods.py for the solvers' times).

The methods the papers do not show: Nash-MTL reaches the set first from every start
of both versions (by step 15.2k); IMTL-G 3/3 and 5/5, spread like Nash-MTL;
Aligned-MTL 3/3 and 4/5, all at the minimiser of the sum but stopping just above the
set (0.025 in the balanced version, 0.008 in the scaled one; 1e-5 and 5e-4 from the
front), where its min-norm residual is 5e-4; FAMO 3/3 in the balanced version too,
at x1 = -0.12, -3.78, +0.11. UPGrad's direction equals PCGrad's for two tasks (each
projects one gradient onto the other's normal when they conflict, then averages),
so its runs are PCGrad's until rounding parts them where an iterate zig-zags in a
log valley (balanced, from (-8.5, 7.5): x1 = -2.66 against -2.34).

Where we differ and why: PCGrad's balanced run from (9, 9) ends at x1 = 3.21 where
CAGrad's figure has it near 2.6, and two scaled runs (mean and CAGrad from
(-8.5, 7.5)) that Nash-MTL's loss-space figure shows on the front at step 35000 are
on the set here only from 37.5k-38.0k. The latter is mostly the measure: the floor
of the lower valley is so flat across x2 that 0.6-0.8 above the set costs less than
0.01 in the losses (our table judges the plane; the CSV gives both distances). For
the rest, our arithmetic is not the authors': float64 and exact solvers here,
float32 (torch.Tensor) and iterative solvers there (CAGrad's toy: scipy's bounded
scalar search; Nash-MTL's code: SLSQP for CAGrad, cvxpy for Nash-MTL), and CAGrad's c
is 0.5 (CAGrad's toy) where Nash-MTL's toy used 0.4. Both runs end after a long
zig-zag down a log valley, whose course such differences move.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.spatial import cKDTree

from paretomtl import solvers
from paretomtl.weighting import FAMO

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gallery

NAME = "two_objective_toy"
LOWER = 5e-6  # the floor of |u| inside the logs (CAGrad toy.py, line 21)


# -- the problem ----------------------------------------------------------------------
def _log_valley(u: np.ndarray, du: tuple[float | np.ndarray, np.ndarray]):
    """log(max(|u|, LOWER)) + 6 and its gradient (du = (du/dx1, du/dx2)); the gradient
    is 0 where the floor holds, as torch.clamp's."""
    live = np.abs(u) >= LOWER
    f = np.log(np.maximum(np.abs(u), LOWER)) + 6.0
    inv = np.where(live, 1.0 / np.where(live, u, 1.0), 0.0)  # d log|u| / du = 1 / u
    return f, (inv * du[0], inv * du[1])


def toy(x: object, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The losses (..., 2) and the Jacobian (..., 2, 2), row i the gradient of L_i, at x (..., 2).

    L_1 is multiplied by ``scale`` (1 in CAGrad's toy, 0.1 in Nash-MTL's and FAMO's).
    """
    x = np.asarray(x, dtype=np.float64)
    x1, x2 = x[..., 0], x[..., 1]
    th = np.tanh(x2)
    dth = 1.0 - th * th
    # Upper half plane: two log valleys, |u_i| = 0 on the curves x1 = -+(7 - 2 tanh x2).
    f1, df1 = _log_valley(-0.5 * x1 - 3.5 + th, (-0.5, dth))  # 0.5 (-x1 - 7) - tanh(-x2)
    f2, df2 = _log_valley(-0.5 * x1 + 3.5 - th, (-0.5, -dth))  # 0.5 (-x1 + 3) + tanh(-x2) + 2
    # Lower half plane: two quadratic bowls centred at (+-7, -8).
    q1 = ((x1 - 7.0) ** 2 + 0.1 * (x2 + 8.0) ** 2) / 10.0 - 20.0
    q2 = ((x1 + 7.0) ** 2 + 0.1 * (x2 + 8.0) ** 2) / 10.0 - 20.0
    dq1, dq2, dq_x2 = 0.2 * (x1 - 7.0), 0.2 * (x1 + 7.0), 0.02 * (x2 + 8.0)
    # The gates c1 = max(tanh(x2 / 2), 0), c2 = max(tanh(-x2 / 2), 0); both pass a
    # gradient at x2 = 0, as torch.clamp does.
    h = np.tanh(0.5 * x2)
    dh = 0.5 * (1.0 - h * h)
    c1, c2 = np.maximum(h, 0.0), np.maximum(-h, 0.0)
    dc1, dc2 = np.where(h >= 0.0, dh, 0.0), np.where(h <= 0.0, -dh, 0.0)
    L1 = scale * (f1 * c1 + q1 * c2)
    L2 = f2 * c1 + q2 * c2
    J = np.empty((*x.shape[:-1], 2, 2))
    J[..., 0, 0] = scale * (df1[0] * c1 + dq1 * c2)
    J[..., 0, 1] = scale * (df1[1] * c1 + f1 * dc1 + dq_x2 * c2 + q1 * dc2)
    J[..., 1, 0] = df2[0] * c1 + dq2 * c2
    J[..., 1, 1] = df2[1] * c1 + f2 * dc1 + dq_x2 * c2 + q2 * dc2
    return np.stack([L1, L2], axis=-1), J


# -- the Pareto set ---------------------------------------------------------------------
def mgda_norm(J: np.ndarray) -> float:
    """||min-norm point of the convex hull of the gradients|| / the larger gradient's
    norm: 0 at a Pareto-critical point (MGDA's stationarity)."""
    largest = float(np.linalg.norm(J, axis=1).max())
    if largest == 0.0:
        return 0.0
    return float(np.linalg.norm(solvers.mgda(J).direction)) / largest


def pareto_set(n: int = 201, grid: int = 81) -> np.ndarray:
    """Points (x1, x2) of the Pareto set, one per t in [0, 1]: the minimiser of
    t L1 + (1 - t) L2 over [-10, 10]^2, from the best point of a grid x grid grid,
    polished by L-BFGS-B; the dominated ones dropped. Ordered by x1."""
    axis = np.linspace(-10.0, 10.0, grid)
    coarse = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    coarse_losses, _ = toy(coarse)
    points = []
    for t in np.linspace(0.0, 1.0, n):
        weights = np.array([t, 1.0 - t])

        def scalarised(x, weights=weights):
            losses, J = toy(x)
            return float(weights @ losses), weights @ J

        x0 = coarse[np.argmin(coarse_losses @ weights)]
        res = minimize(
            scalarised,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-10.0, 10.0)] * 2,
            options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 1000},
        )
        points.append(res.x)
    points = np.array(points)
    return points[non_dominated(toy(points)[0])]


def non_dominated(losses: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``losses`` (n x 2) that no other row dominates, by L1."""
    order = np.lexsort((losses[:, 1], losses[:, 0]))
    best_l2 = np.minimum.accumulate(losses[order, 1])
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = losses[order[1:], 1] < best_l2[:-1]
    return np.sort(order[keep])


class PolylineDistance:
    """Distance in the plane to the polyline through ``points`` (n x 2, in order)."""

    def __init__(self, points: np.ndarray, refine: int = 20) -> None:
        steps = np.linspace(0.0, 1.0, refine, endpoint=False)[:, None, None]
        dense = points[:-1] + steps * (points[1:] - points[:-1])
        self.tree = cKDTree(np.vstack([dense.reshape(-1, 2), points[-1:]]))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.tree.query(x)[0]


# -- the methods ------------------------------------------------------------------------
# Options of solvers.method for the gradient methods: the toys' own where they set one
# (PCGrad averages the projected gradients and CAGrad divides by 1 + c in CAGrad's
# toy.py, lines 270-327; c = 0.5 there); the package's defaults otherwise (Nash-MTL:
# the direction clipped to norm 1, as the authors' NashMTL(max_norm=1.0)).
GRADIENT_METHODS: dict[str, dict[str, object]] = {
    "mean": {},
    "mgda": {},
    "pcgrad": {"reduction": "mean", "seed": 0},
    "cagrad": {"c": 0.5, "rescale": 2},
    "nash-mtl": {"num_tasks": 2},
    "imtl-g": {},
    "upgrad": {},
    "aligned-mtl": {},
}
METHODS = (*GRADIENT_METHODS, "famo")


def direction_rule(name: str, scale: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A fresh ``(losses, J) -> update direction`` for the method ``name``."""
    if name == "famo":
        # FAMO's toy (FAMO repository, experiments/toy/trainer.py lines 52-84 and run.sh):
        # logits' Adam lr 0.025, gamma 0, min losses (-21 scale, -21); the logits move
        # from the last step's losses to these before the weights are formed.
        famo = FAMO(2, lr=0.025, gamma=0.0, min_losses=[-21.0 * scale, -21.0])
        return lambda losses, J: famo.update(losses) @ J
    solver = solvers.method(name, **GRADIENT_METHODS[name])
    return lambda losses, J: solver(J).direction


class Adam:
    """torch.optim.Adam's step (lr 1e-3, betas (0.9, 0.999), eps 1e-8), on numpy arrays."""

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = self.v = 0.0
        self.t = 0

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        b1, b2 = self.betas
        self.t += 1
        self.m = b1 * self.m + (1.0 - b1) * grad
        self.v = b2 * self.v + (1.0 - b2) * grad * grad
        denom = np.sqrt(self.v) / np.sqrt(1.0 - b2**self.t) + self.eps
        return x - self.lr / (1.0 - b1**self.t) * self.m / denom


def simulate(scale: float, starts, steps: int, methods) -> np.ndarray:
    """The iterates of Adam driven by each method from each start: an array
    (steps + 1, methods, starts, 2), x_0 = the start. All these runs advance together
    (one vectorised evaluation of the toy per step); each has its own method state."""
    starts = np.asarray(starts, dtype=np.float64)
    rules = [[direction_rule(name, scale) for _ in starts] for name in methods]
    x = np.broadcast_to(starts, (len(methods), *starts.shape)).copy()
    paths = np.empty((steps + 1, *x.shape))
    direction = np.empty_like(x)
    adam = Adam()  # elementwise: one Adam per run and coordinate
    for k in range(steps):
        paths[k] = x
        losses, J = toy(x, scale)
        for i, row in enumerate(rules):
            for j, rule in enumerate(row):
                direction[i, j] = rule(losses[i, j], J[i, j])
        x = adam.step(x, direction)
    paths[steps] = x
    return paths


# -- the experiment ---------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One paper's version of the toy: L1's scale, the starts, the step counts reported."""

    name: str
    paper: str
    scale: float
    starts: tuple[tuple[float, float], ...]
    checkpoints: tuple[int, ...]  # steps at which the runs are reported; the last: all


SETTINGS = (
    # CAGrad toy.py: F = Toy() (line 331), inits (lines 346-350), n_iter = 100000 (line 360).
    Setting("balanced", "CAGrad Fig. 1", 1.0, ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0)), (100_000,)),
    # Nash-MTL experiments/toy/trainer.py: Toy(scale=0.1) (lines 27 and 85), inits (lines
    # 32-38), 35000 steps (line 83); FAMO's copy of it runs 50000 (its line 97).
    Setting(
        "scaled",
        "Nash-MTL Fig. 1, FAMO Fig. 1",
        0.1,
        ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)),
        (35_000, 50_000),
    ),
)
QUICK_STEPS = 600
ON_SET = 0.05  # a run is on the Pareto set when its iterate is this close to it
METHOD_GROUPS = (METHODS[0::2], METHODS[1::2])  # one job per setting and group


@dataclass(frozen=True)
class Outcome:
    """Where one run (a method from a start) stands after ``steps`` steps."""

    setting: Setting
    method: str
    start: tuple[float, float]
    steps: int
    x: np.ndarray
    losses: np.ndarray
    distance: float  # to the Pareto set, in the plane
    front_gap: float  # distance of (s L1, L2) to the Pareto front, in objective space
    settled: int | None  # first step from which the iterates stay on the set
    to_sum_min: float  # distance to the minimiser of scale L1 + L2
    stationarity: float  # mgda_norm of the Jacobian

    @property
    def on_set(self) -> bool:
        return self.distance <= ON_SET


@functools.cache
def sum_minimiser(scale: float) -> np.ndarray:
    """The minimiser of scale L1 + L2 (where descent on the sum should end)."""
    axis = np.linspace(-10.0, 10.0, 201)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    summed = toy(grid, scale)[0].sum(axis=1)

    def objective(x):
        losses, J = toy(x, scale)
        return float(losses.sum()), J.sum(axis=0)

    res = minimize(
        objective,
        grid[np.argmin(summed)],
        jac=True,
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-11},
    )
    return res.x


def outcomes(
    setting: Setting, method: str, start, path: np.ndarray, pareto_x: np.ndarray
) -> list[Outcome]:
    """The run ``path`` (its iterates x_0, x_1, ...) judged at each checkpoint against
    the Pareto set (its points ``pareto_x``) and front."""
    distance = PolylineDistance(pareto_x)
    front = PolylineDistance(toy(pareto_x, setting.scale)[0])
    far = distance(path) > ON_SET
    result = []
    for steps in sorted({min(n, len(path) - 1) for n in setting.checkpoints}):
        x = path[steps]
        losses, J = toy(x, setting.scale)
        off = np.flatnonzero(far[: steps + 1])
        result.append(
            Outcome(
                setting=setting,
                method=method,
                start=start,
                steps=steps,
                x=x,
                losses=losses,
                distance=float(distance(x)),
                front_gap=float(front(losses)),
                settled=None if far[steps] else (int(off[-1]) + 1 if len(off) else 0),
                to_sum_min=float(np.linalg.norm(x - sum_minimiser(setting.scale))),
                stationarity=mgda_norm(J),
            )
        )
    return result


def steps_for(setting: Setting, quick: bool) -> int:
    return QUICK_STEPS if quick else max(setting.checkpoints)


def run_all(quick: bool, jobs: int) -> dict[str, np.ndarray]:
    """Every setting's paths, (steps + 1, methods, starts, 2), by setting name: one job
    per setting and group of methods, ``jobs`` processes at a time."""
    tasks = [(s, group) for s in SETTINGS for group in METHOD_GROUPS]
    args = [(s.scale, s.starts, steps_for(s, quick), group) for s, group in tasks]
    paths = {
        s.name: np.empty((steps_for(s, quick) + 1, len(METHODS), len(s.starts), 2))
        for s in SETTINGS
    }

    def store(task: int, result: np.ndarray) -> None:
        setting, group = tasks[task]
        for k, method in enumerate(group):
            paths[setting.name][:, METHODS.index(method)] = result[:, k]

    if jobs == 1:
        for i, a in _gallery.progress(enumerate(args), total=len(args), desc="runs"):
            store(i, simulate(*a))
        return paths
    # spawn, not fork: the parent has threads (numba's kernel loader) that fork would copy
    context = get_context("spawn")
    with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=context) as pool:
        futures = {pool.submit(simulate, *a): i for i, a in enumerate(args)}
        for future in _gallery.progress(as_completed(futures), total=len(tasks), desc="runs"):
            store(futures[future], future.result())
    return paths


# -- the report -------------------------------------------------------------------------
def cell(out: Outcome) -> str:
    """'set -2.94 @14.6k' (on the set at x1 = -2.94, from step 14.6k on; '*': at
    the minimiser of the sum), or 'off (-5.0,+2.9)' (where the run is)."""
    x1, x2 = out.x
    if not out.on_set:
        return f"off ({x1:+.1f},{x2:+.1f})"
    star = "*" if out.to_sum_min <= ON_SET else " "
    return f"set {x1:+.2f}{star}@{out.settled / 1000:.1f}k"


def print_table(setting: Setting, results: list[Outcome]) -> None:
    last = max(r.steps for r in results)
    checkpoints = sorted({r.steps for r in results})
    print(
        f"\n{setting.name} ({setting.paper}): L1 x {setting.scale:g}, Adam lr 1e-3, "
        f"where each run is after {last} steps"
    )
    starts = [f"({a:g}, {b:g})" for a, b in setting.starts]
    counts = " ".join(f"@{n // 1000}k" if n >= 1000 else f"@{n}" for n in checkpoints)
    print(f"{'method':<12} " + " ".join(f"{s:<17}" for s in starts) + f" on set {counts}")
    for method in METHODS:
        mine = [r for r in results if r.method == method]
        cells = " ".join(f"{cell(r):<17}" for r in mine if r.steps == last)
        on = " ".join(
            f"{sum(r.on_set for r in mine if r.steps == n)}/{len(setting.starts)}"
            for n in checkpoints
        )
        print(f"{method:<12} {cells} {on}")


def rows(results: list[Outcome]) -> list[dict[str, object]]:
    return [
        {
            "setting": r.setting.name,
            "scale_L1": r.setting.scale,
            "method": r.method,
            "start_x1": r.start[0],
            "start_x2": r.start[1],
            "steps": r.steps,
            "x1": float(r.x[0]),
            "x2": float(r.x[1]),
            "L1": float(r.losses[0]),
            "L2": float(r.losses[1]),
            "distance_to_set": r.distance,
            "distance_to_front": r.front_gap,
            "mgda_norm": r.stationarity,
            "on_set": int(r.on_set),
            "on_set_from_step": "" if r.settled is None else r.settled,
            "distance_to_sum_minimiser": r.to_sum_min,
        }
        for r in results
    ]


# -- the figures ------------------------------------------------------------------------
def thin(path: np.ndarray, points: int = 700) -> np.ndarray:
    """At most about ``points`` iterates of ``path``, the last one kept."""
    stride = max(1, len(path) // points)
    return np.vstack([path[::stride], path[-1:]])


def start_legend(fig, setting: Setting) -> None:
    plt = _gallery.pyplot()
    handles = [
        plt.Line2D([], [], color=f"C{k}", label=f"start ({a:g}, {b:g})")
        for k, (a, b) in enumerate(setting.starts)
    ]
    handles += [
        plt.Line2D([], [], color="0.55", lw=5, label="Pareto set / front"),
        plt.Line2D([], [], ls="", marker="*", color="k", label="minimiser of the sum"),
        plt.Line2D([], [], ls="", marker="o", mfc="w", mec="k", label="end on the set"),
        plt.Line2D([], [], ls="", marker="X", mfc="w", mec="k", label="end off the set"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, frameon=False)


def plot_panels(
    setting: Setting,
    paths: np.ndarray,
    results: list[Outcome],
    pareto_x: np.ndarray,
    space: str,
    path: Path,
) -> Path:
    """One panel per method: its runs (``paths``, steps + 1 x methods x starts x 2) in
    the plane over the contours of scale L1 + L2 (``space="x"``), or in objective space
    (``space="losses"``), with the Pareto set or front and the sum's minimiser (star)."""
    plt = _gallery.pyplot()
    fig, axes = plt.subplots(3, 3, figsize=(7.6, 8.4), sharex=True, sharey=True)
    in_space = (lambda x: x) if space == "x" else (lambda x: toy(x, setting.scale)[0])
    steps = len(paths) - 1
    for i, (ax, method) in enumerate(zip(axes.flat, METHODS, strict=True)):
        if space == "x":
            axis = np.linspace(-10.0, 10.0, 201)
            grid = np.stack(np.meshgrid(axis, axis), axis=-1)
            summed = toy(grid, setting.scale)[0].sum(axis=-1)
            ax.contourf(grid[..., 0], grid[..., 1], summed, 12, cmap="viridis", alpha=0.35)
            ax.set_aspect("equal")
        ax.plot(*in_space(pareto_x).T, color="0.55", lw=5, solid_capstyle="butt", zorder=1)
        ax.plot(*in_space(sum_minimiser(setting.scale)), "*", color="k", ms=10, zorder=2)
        final = [r for r in results if r.method == method and r.steps == steps]
        for k, outcome in enumerate(final):
            points = in_space(thin(paths[:, i, k]))
            ax.plot(*points.T, color=f"C{k}", lw=1.0, zorder=3, antialiased=False)
            ax.plot(*points[0], "o", color="k", ms=4, zorder=4)
            marker = "o" if outcome.on_set else "X"
            ax.plot(*points[-1], marker=marker, color=f"C{k}", mec="k", ms=7, zorder=5)
        on = sum(r.on_set for r in final)
        ax.set_title(f"{method}: {on}/{len(final)} on the Pareto set", fontsize=10)
    scaled_l1 = "L1" if setting.scale == 1 else f"{setting.scale:g} L1"
    xlabel, ylabel = ("x1", "x2") if space == "x" else (scaled_l1, "L2")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    what = "over the contours of the summed losses" if space == "x" else "in objective space"
    fig.suptitle(f"{setting.paper}: {steps} Adam steps from each start, {what}", fontsize=11)
    start_legend(fig, setting)
    fig.tight_layout(rect=(0, 0.06, 1, 0.98))
    return _gallery.save(fig, path)


# -- the run ----------------------------------------------------------------------------
def dominated_by_grid(pareto_x: np.ndarray, n: int) -> int:
    """How many points of the computed set a point of an n x n grid of [-10, 10]^2
    dominates (0 expected): a check that owes nothing to the scalarisation."""
    axis = np.linspace(-10.0, 10.0, n)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    grid_losses = toy(grid)[0]
    best = grid_losses[non_dominated(grid_losses)]  # any dominating point implies one here
    losses = toy(pareto_x)[0]
    return int((best[None] <= losses[:, None]).all(axis=-1).any(axis=1).sum())


def main(argv: list[str] | None = None) -> None:
    parser = _gallery.parser(NAME, __doc__)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    args = parser.parse_args(argv)
    out = _gallery.out_dir(args.out)
    tic = time.perf_counter()
    pareto_x = pareto_set(51 if args.quick else 201)
    pareto_losses, pareto_J = toy(pareto_x)
    criticality = [mgda_norm(J) for J in pareto_J]
    beaten = dominated_by_grid(pareto_x, 201 if args.quick else 801)
    print(
        f"Pareto set: {len(pareto_x)} points, x1 in [{pareto_x[:, 0].min():.2f}, "
        f"{pareto_x[:, 0].max():.2f}], x2 in [{pareto_x[:, 1].min():.4f}, "
        f"{pareto_x[:, 1].max():.4f}]; MGDA min-norm at most {max(criticality):.1e} "
        f"(relative); {beaten} of them dominated by a point of a grid over [-10, 10]^2"
    )
    _gallery.write_csv(
        out / "pareto_set.csv",
        [
            {"x1": a, "x2": b, "L1": l1, "L2": l2, "mgda_norm": c}
            for (a, b), (l1, l2), c in zip(pareto_x, pareto_losses, criticality, strict=True)
        ],
    )
    paths = run_all(args.quick, args.jobs)
    results = []
    for setting in SETTINGS:
        mine = [
            outcome
            for i, method in enumerate(METHODS)
            for j, start in enumerate(setting.starts)
            for outcome in outcomes(setting, method, start, paths[setting.name][:, i, j], pareto_x)
        ]
        print_table(setting, mine)
        for space in ("x", "losses"):
            figure = out / f"{NAME}_{setting.name}_{space}.png"
            plot_panels(setting, paths[setting.name], mine, pareto_x, space, figure)
        results += mine
    print(
        f"\n'set v @Nk': on the Pareto set (within {ON_SET} of it) at x1 = v, and from "
        "step N on; '*': at the minimiser of the summed losses; 'off (x1, x2)': where it is"
    )
    print(f"table: {_gallery.write_csv(out / f'{NAME}.csv', rows(results))}")
    print(f"total {time.perf_counter() - tic:.0f} s")


if __name__ == "__main__":
    main()
