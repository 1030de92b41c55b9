r"""Pareto MTL: MGDA restricted to one preference vector's sub-region of objective space.

From Lin, Zhen, Li, Zhang & Kwong, "Pareto Multi-Task Learning", NeurIPS 2019.
Unit preference vectors :math:`u_1, \dots, u_K` split objective space into the
sub-regions (cones with apex at the origin)

.. math::

    \Omega_k = \{F : \cos(u_j, F) \le \cos(u_k, F)\ \forall j\}
             = \{F : (u_j - u_k)^\top F \le 0\ \forall j \ne k\},

and run k solves :math:`\min_x F(x)` subject to :math:`G_j(x) = (u_j - u_k)^\top
F(x) \le 0`. The answer is a Pareto point in :math:`\Omega_k`, not the point of a
ray: the method spreads one point per sub-region over the front rather than
meeting an exact trade-off (compare :func:`paretomtl.front.tchebycheff`). The
paper's step is the MGDA direction of the objectives and of the
:math:`\epsilon`-active constraints, the dual of its QP being

.. math::

    \min_{\lambda, \beta \ge 0,\ \sum\lambda + \sum\beta = 1}
    \Big\| \sum_i \lambda_i \nabla f_i + \sum_{j \in I_\epsilon} \beta_j \nabla G_j \Big\|^2,
    \qquad \nabla G_j = \sum_i (u_j - u_k)_i \nabla f_i,

with fixed step sizes; a first phase finds a feasible start by MGDA steps on the
violated constraints alone. What is implemented, and why it departs from the
paper where it does (each point measured on ZDT1/ZDT2 with 30 variables, the
Pareto MTL toy and the convex quadratic, 1 to 12 rays, 5 seeds):

*Constraints, scale-free.* :math:`c_j = G_j / \|F\|`, the same sub-region. The
authors' code tests activity on :math:`F/\|F\|` too, but steps along
:math:`\nabla G_j`; with a line search that reads raw :math:`G_j`, shrinking F
towards the origin counts as lowering a violated :math:`G_j` (measured: the
joint step jumped ZDT1 from :math:`f_2 \approx 5` to the front end (0, 1), "less
violated" by :math:`G_j` and further from every middle sub-region). Here the rows
are :math:`\nabla c_j = (u_j - u_k - c_j F/\|F\|)^\top \nabla F / \|F\|`, which on
the boundary (:math:`c_j = 0`) is :math:`\nabla G_j / \|F\|`.

*Activity in cone widths.* :math:`\rho_j = c_j / (1 - u_j^\top u_k)` is -1 at the
centre :math:`F \propto u_k`, 0 on the boundary, and (for two objectives) linear
in the angle; constraint j is active when :math:`\rho_j \ge -\epsilon`
(``eps``, default 0.2). An absolute margin on :math:`c_j` (the paper's
:math:`G_j \ge -\epsilon`) is a fixed angle: with 12 rays the cones are so narrow
that both neighbours were active at the centre, and their gradients with the
objectives' always contain 0 in their hull (measured: runs "converged" at their
start with stationarity 0.2 to 0.9). Should the active constraints still jam the
step (min-norm 0 although dropping the strictly satisfied ones frees a
direction: Zoutendijk's jamming of feasible-direction methods), they are
dropped and :math:`\epsilon` shrinks tenfold.

*The QP on unit rows.* Each row (objective or constraint gradient) is divided
by its norm before :func:`paretomtl.solvers.mgda` solves the QP (the gradient
normalisation of Sener & Koltun's code; a zero row stays zero). Every row still
descends: :math:`\langle g_r, d\rangle \ge \|g_r\| \|d\|^2`. With raw rows the
direction is as short as the flattest gradient allows, and the steepest row's
curvature caps the step: ZDT1's ray (1, 0) crept towards :math:`x_1 = 0` for 2000
iterations and stopped near the weakly Pareto point :math:`(0, g)`,
:math:`g \approx 4` to 5, and the quadratic and the toy took up to 700
iterations; with unit rows at most about 300, and the end ray reaches (0, 1).

*The box.* Projecting each gradient onto the box's tangent cone before the QP (as
:func:`paretomtl.front.bound_aware_stationarity` does to *measure*
stationarity) gives a direction that need not descend: at a bound where the
rows' partials disagree in sign, the projection drops the outward ones while the
step still moves that coordinate inwards, raising those rows. Measured on ZDT1
(30 variables, 5 rays, raw rows as in the earlier draft) at :math:`x_1 = 1`: at
888 of 2000 sampled points an objective or active constraint rises along that
direction, so a line search on every row stalls (the draft's stationarity 0.92
at :math:`x_1 = 1`). The QP here is the box-aware one,
:math:`\min_{\lambda \in \Delta} \varphi(\lambda) = \|\Pi(\sum_r \lambda_r g_r)\|^2`,
Π zeroing the components that push out of the box; its solution satisfies
:math:`\langle g_r, d\rangle \ge \|d\|^2` for the true rows, with
:math:`d = \Pi(\sum_r \lambda_r g_r)`. φ is convex, :math:`C^1` and piecewise
quadratic; on each piece (the set of coordinates Π zeroes) it is mgda's objective
on the other columns, so each round solves the current piece with
:func:`paretomtl.solvers.mgda` and takes the exact minimiser of φ on the segment
to that solution, until the weights solve their own piece (φ's optimality
condition). Against cvxpy on 300 random instances (up to 8 rows and 30
coordinates, most at bounds) its value was never above cvxpy's. A column with a
non-finite partial (ZDT1's :math:`\partial f_2/\partial x_1 = -\infty` at
:math:`x_1 = 0`) is held.

*Phases.* The joint step (the QP above, violated constraints included, so every
objective falls while the violation does) runs first; the paper's phase 1 runs
only if it stalls outside :math:`\Omega_k`, as MGDA on the constraints within
``eps`` of the largest violation :math:`\max_j \rho_j`, with Armijo's test on
that maximum (the paper's phase 1 first, ignoring the objectives, parked a toy
run on a constrained-critical point off the front). Then the joint step again.

*Step size.* The paper uses a fixed step. Here the trial point is
:math:`x(t) = \mathrm{clip}(x - t d)` (Bertsekas' projection arc, IEEE Trans.
Autom. Control 1976), accepted by Armijo's test
:math:`\varphi(x(t)) - \varphi(x) \le \sigma \nabla\varphi(x)^\top (x(t) - x) < 0`,
:math:`\sigma = \tfrac12`, on every objective and every active constraint, and
only if every other constraint stays satisfied; else t is halved. The first
trial t is twice the last accepted one. Steps capped at the first bound, as in
:mod:`paretomtl.front.scalarization`, were measured too: ZDT1's ray (1, 0)
creeps towards :math:`x_1 = 0` and stops as "stationary" (stationarity 1e-8) at
the weakly Pareto point :math:`(0, g)`, :math:`g \approx 4` to 5; the arc's long
steps put :math:`x_1` and the distance variables on their bounds at once.

*Weakly Pareto exits.* MGDA stops wherever one objective cannot move: on ZDT at
:math:`x_1 = 0` with :math:`g > 1`, :math:`f_1 = x_1` is at its minimum and
:math:`(0, g)` is weakly Pareto optimal (bound-aware stationarity 0) though
:math:`f_2` can still fall. When the QP's value is 0 because some objectives'
feasible gradients vanish while others' do not, those objectives are *frozen*:
their binding bounds (where they would rise by leaving) are held, they leave the
QP, and the line search only forbids them to rise. On ZDT1 and ZDT2 the end rays
then reach the front's ends exactly.

*Stopping.* When :math:`\|d\|` (unit rows) is at most ``tol``, or the raw
combination :math:`\|\Pi(\sum_r \lambda_r g_r)\|` is at most ``tol`` times the
largest objective gradient norm seen.

*Objective scales.* The cones are cones of the raw objective values, as in the
paper and the authors' code. We keep raw values: the rays' meaning (the exact
point of r has :math:`r_i f_i` equal) is about raw values, and normalising (by
the start's values, say) would move the sub-regions with the start. ZDT's
:math:`f_2 \approx 5` at a random start only lengthens the path into the cone.
The cones assume non-negative objectives (losses), the origin as ideal point.

Rays: the front methods take EPO-style preference vectors r; they become
directions by :func:`directions_from_rays` (:math:`u \propto 1/r`).

Example:
    >>> from paretomtl.front import simplex_rays, trace
    >>> from paretomtl.problems import ZDT2
    >>> out = trace(ZDT2(n_var=5), "pareto-mtl", simplex_rays(2, 5), seed=0)
    >>> bool(out.converged.all()), bool(out.stationarity.max() < 1e-12)
    (True, True)
    >>> out.points[:, 0].round(3)  # one point per sub-region, end to end
    array([1.   , 0.915, 0.617, 0.304, 0.   ])
"""

from __future__ import annotations

import numpy as np

from paretomtl.front._common import EDGE_WEIGHT, PointResult, check_preference, finish, starts
from paretomtl.front._registry import REGISTRY
from paretomtl.front.stationarity import active_bounds
from paretomtl.solvers import mgda

_SIGMA = 0.5  # Armijo's sufficient-decrease fraction
_T_MAX = 1e8  # largest trial step
_T_MIN = 1e-20  # smallest trial step before giving up
_ROUNDING = 1e-6  # relative min-norm accepted when rounding stops the line search
_SAME = 1e-6  # directions closer than this split nothing: their constraint is dropped
_ZERO_ROW = 1e-12  # a gradient this small relative to the largest one is rounding: zero
_QP_ROUNDS = 50  # rounds of the box-aware QP, plus one per coordinate at a bound
_FEASIBLE = 1e-9  # largest G_j / ||F|| counted as inside the sub-region at the end


def _check_rays(rays: object, n_obj: int | None = None) -> np.ndarray:
    R = np.array(rays, dtype=np.float64)
    want = "n_obj" if n_obj is None else str(n_obj)
    if R.ndim != 2 or R.shape[0] < 1 or R.shape[1] < 1:
        raise ValueError(f"rays must have shape (n_rays >= 1, {want}); got {R.shape}")
    if n_obj is not None and R.shape[1] != n_obj:
        raise ValueError(f"rays must have shape (n_rays >= 1, {want}); got {R.shape}")
    bad = ~np.isfinite(R).all(axis=1) | (R < 0).any(axis=1) | ~(R > 0).any(axis=1)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(
            f"rays must be finite, >= 0 and not all zero in every row; "
            f"row {k} is {np.array2string(R[k])}"
        )
    return R


def directions_from_rays(rays: object) -> np.ndarray:
    r"""Pareto MTL's unit preference directions from EPO-style preference vectors.

    A preference vector r asks for the point where :math:`r_i f_i` is the same for
    every i, i.e. :math:`f \propto (1/r_1, \dots, 1/r_m)`; Pareto MTL's direction
    :math:`u` points at the sub-region's centre in objective space. So

    .. math::

        u_k = \frac{v_k}{\|v_k\|},\qquad
        (v_k)_i = \frac{1}{\max(r_{ki},\ \varepsilon \max_l r_{kl})},

    with :math:`\varepsilon` = :data:`paretomtl.front.EDGE_WEIGHT` (1e-8): a zero
    entry gets a tiny weight, so ray (1, 0), all weight on :math:`f_1`, becomes
    :math:`u \approx (0, 1)`, the end of the front where :math:`f_1 \approx 0`.
    For two objectives, :math:`r = (t, 1 - t)` gives
    :math:`u \propto (1 - t, t)`: evenly spaced rays give directions evenly
    spaced on the simplex (Lin et al., NeurIPS 2019, space theirs evenly in
    angle, ``circle_points`` in their code; any set of distinct directions
    defines sub-regions). With three or more objectives, rays that differ only
    where another entry is 0 (Das-Dennis' (0.75, 0.25, 0) and (0.5, 0.5, 0)) map
    to directions within about 1e-8 of each other (both ask for
    :math:`f_1 = f_2 = 0`); :func:`pareto_mtl` treats directions closer than
    1e-6 as one sub-region.

    Args:
        rays: (n_rays, n_obj) preference vectors, each row finite, non-negative
            and not all zero (e.g. :func:`paretomtl.front.simplex_rays`).

    Returns:
        An (n_rays, n_obj) array of unit rows.

    Example:
        >>> from paretomtl.front import directions_from_rays, simplex_rays
        >>> directions_from_rays(simplex_rays(2, 3)).round(6)
        array([[1.      , 0.      ],
               [0.707107, 0.707107],
               [0.      , 1.      ]])
    """
    R = _check_rays(rays)
    v = 1.0 / np.maximum(R, EDGE_WEIGHT * R.max(axis=1, keepdims=True))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _check_index(index: object, n_rays: int) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"index must be an int; got {type(index).__name__} {index!r}")
    if not 0 <= index < n_rays:
        raise ValueError(f"index must be in [0, {n_rays - 1}] (a row of rays); got {index}")
    return int(index)


def _project(v: np.ndarray, at_lower, at_upper, fixed) -> np.ndarray:
    """Pi(v): the components that push out of the box (and the fixed ones) zeroed."""
    p = np.where(fixed, 0.0, v)
    p = np.where(at_lower, np.minimum(p, 0.0), p)
    return np.where(at_upper, np.maximum(p, 0.0), p)


def _segment_min(v0, dv, at_lower, at_upper, fixed) -> float:
    """argmin over s in [0, 1] of ||Pi(v0 + s dv)||^2: convex, piecewise quadratic in s."""

    def slope(s: float) -> float:
        return float(_project(v0 + s * dv, at_lower, at_upper, fixed) @ dv)

    if slope(0.0) >= 0.0:
        return 0.0
    if slope(1.0) <= 0.0:
        return 1.0
    bound = (at_lower | at_upper) & ~fixed & (dv != 0)
    kinks = -v0[bound] / dv[bound]
    points = np.unique(np.concatenate([[0.0, 1.0], kinks[(kinks > 0) & (kinks < 1)]]))
    slopes = np.array([slope(s) for s in points])
    i = int(np.argmax(slopes >= 0.0))  # the slope rises from < 0 at 0 to >= 0 at 1
    lo, hi = float(points[i - 1]), float(points[i])
    kept = _project(v0 + 0.5 * (lo + hi) * dv, at_lower, at_upper, fixed) != 0.0
    curvature = float(dv[kept] @ dv[kept])
    if curvature <= 0.0:
        return hi
    return min(hi, max(lo, lo - slopes[i - 1] / curvature))


def _tangent_min_norm(
    rows: np.ndarray, at_lower: np.ndarray, at_upper: np.ndarray, fixed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The box-aware min-norm QP :math:`\min_{\lambda\in\Delta}\|\Pi(\lambda^\top A)\|^2`.

    ``rows`` is A (finite, one gradient per row); Π zeroes the components of
    :math:`v = \lambda^\top A` that push out of the box (:math:`v_k > 0` at a lower
    bound, :math:`< 0` at an upper one; the step is :math:`-\Pi(v)`) and the
    ``fixed`` columns. The objective φ is convex and :math:`C^1` (a squared distance
    to a convex cone) and piecewise quadratic: on the piece of the held set
    :math:`H(\lambda)` (the coordinates Π zeroes) it is mgda's objective on the
    other columns. Each round solves that piece with :func:`paretomtl.solvers.mgda`
    and moves to the minimiser of φ on the segment to its solution (exact: the
    slope is piecewise linear), so φ falls every round; it stops when
    :math:`\lambda` solves its own piece, which is φ's optimality condition. Returns
    the weights, the direction :math:`d = \Pi(\lambda^\top A)` and the held mask.
    """
    bound = (at_lower | at_upper) & ~fixed

    def held(v):
        return fixed | (bound & ((at_lower & (v >= 0.0)) | (at_upper & (v <= 0.0))))

    def piece(hold):
        A = rows.copy()
        A[:, hold] = 0.0
        return mgda(A).weights

    scale = float(np.abs(rows).max()) if rows.size else 0.0
    lam = piece(fixed | bound)
    for _ in range(_QP_ROUNDS + int(bound.sum())):
        v = lam @ rows
        value = float(_project(v, at_lower, at_upper, fixed) @ v)
        hold = held(v)
        lam_hat = piece(hold)
        v_hat = np.where(hold, 0.0, lam_hat @ rows)
        if value <= (1.0 + 1e-12) * float(v_hat @ v_hat) + (1e-30 * scale) ** 2:
            break  # lam solves its own piece: optimal
        s = _segment_min(v, lam_hat @ rows - v, at_lower, at_upper, fixed)
        if s <= 0.0:
            break
        lam = lam + s * (lam_hat - lam)
    v = lam @ rows
    return lam, _project(v, at_lower, at_upper, fixed), held(v)


def _normalised(W: np.ndarray, values: np.ndarray) -> np.ndarray:
    """c_j = G_j / ||F||: the constraint values on the unit sphere (scale-free)."""
    return (W @ values) / max(float(np.linalg.norm(values)), np.finfo(float).tiny)


def _constraints(W: np.ndarray, values: np.ndarray, J: np.ndarray, ref: float):
    """c_j = w_j^T F / ||F||, its gradients (w_j - c_j F/||F||)^T J / ||F||, their scales."""
    norm = max(float(np.linalg.norm(values)), np.finfo(float).tiny)
    c = (W @ values) / norm
    A = W - np.outer(c, values / norm)
    return c, (A @ J) / norm, ref * np.linalg.norm(A, axis=1) / norm


@REGISTRY.register(
    "pareto-mtl",
    kind="ray-set",
    paper="Lin, Zhen, Li, Zhang & Kwong, Pareto Multi-Task Learning, NeurIPS 2019",
    summary="MGDA restricted to the preference vector's sub-region",
)
def pareto_mtl(
    problem,
    preference: object,
    x0: object = None,
    *,
    rays: object,
    index: int,
    seed: object = None,
    max_iter: int = 2000,
    tol: float = 1e-8,
    eps: float = 0.2,
) -> PointResult:
    r"""One Pareto MTL run: a Pareto point in the sub-region of ``rays[index]``.

    With unit directions :math:`u =` :func:`directions_from_rays` ``(rays)`` and
    k = ``index``, solve (Lin, Zhen, Li, Zhang & Kwong, "Pareto Multi-Task
    Learning", NeurIPS 2019)

    .. math::

        \min_{x \in [\text{lower}, \text{upper}]} F(x)
        \quad\text{s.t.}\quad c_j(x) = \frac{(u_j - u_k)^\top F(x)}{\|F(x)\|} \le 0,
        \quad j \ne k,

    by MGDA steps on the objectives and the active constraints
    (:math:`\rho_j = c_j / (1 - u_j^\top u_k) \ge -\epsilon`), the min-norm QP
    solved box-aware by :func:`paretomtl.solvers.mgda` on unit-normalised
    gradients, each step accepted by Armijo's test on every objective and active
    constraint along the projection arc; the paper's phase 1 (MGDA on the
    violations) only when that stalls outside the sub-region (module docstring,
    which also says where and why this departs from the paper). Rays whose
    directions coincide with ``rays[index]``'s (closer than 1e-6) add no
    constraint; a single ray gives box-aware MGDA.

    Args:
        problem: a :class:`paretomtl.problems.Problem` with non-negative
            objectives (the sub-regions are cones from the origin).
        preference: r, which must equal ``rays[index]``, shape (n_obj,).
        x0: the start, shape (n_var,) (clipped into the box); default uniform in
            the box from ``seed``.
        rays: (n_rays, n_obj) the whole set of preference vectors, each row
            finite, non-negative and not all zero.
        index: this run's row of ``rays``, 0 <= index < n_rays.
        seed: seed or ``numpy.random.Generator`` for the default start.
        max_iter: iteration cap, both phases together.
        tol: stop when the direction on unit rows has norm at most ``tol``, or
            the raw combination :math:`\|\Pi(\sum_r \lambda_r g_r)\|` at most
            ``tol`` times the largest objective gradient norm seen.
        eps: :math:`\epsilon \in [0, 1)`, the activity margin in cone widths
            (-1 at the sub-region's centre, 0 on its boundary).

    Returns:
        A :class:`PointResult`: ``objective`` is the QP's value :math:`\|d\|^2`
        (unit rows) at the end, ``stationarity`` the bound-aware Pareto
        stationarity of the objectives alone, and ``converged`` is False when
        ``max_iter`` or the line search stopped it first or the point is not in
        the sub-region (some :math:`c_j > 10^{-9}`).

    Raises:
        ValueError: ``rays`` of the wrong shape or with a bad row, ``index`` out
            of range, ``preference`` not ``rays[index]``, or ``max_iter``,
            ``tol``, ``eps`` out of range.
        TypeError: ``index`` not an int.

    Example:
        >>> from paretomtl.front import pareto_mtl, simplex_rays
        >>> from paretomtl.problems import ConvexQuadratic
        >>> rays = simplex_rays(2, 3)
        >>> res = pareto_mtl(ConvexQuadratic(n_var=2), rays[1], rays=rays, index=1, seed=0)
        >>> bool(res.converged), bool(res.stationarity < 1e-16)
        (True, True)
        >>> res.values.round(4)  # in the middle cone: 22.5 to 67.5 degrees from f_1's axis
        array([0.3238, 0.1857])
    """
    r = check_preference(preference, problem.n_obj)
    R = _check_rays(rays, problem.n_obj)
    k = _check_index(index, len(R))
    if not np.array_equal(r, R[k]):
        raise ValueError(
            f"preference must equal rays[index] = rays[{k}] = {np.array2string(R[k])}; "
            f"got {np.array2string(r)}"
        )
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"max_iter must be an int >= 0; got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}")
    if not (isinstance(eps, (int, float)) and 0 <= eps < 1):
        raise ValueError(f"eps must be a number in [0, 1); got {eps!r}")
    U = directions_from_rays(R)
    W = np.delete(U, k, axis=0) - U[k]
    W = W[np.linalg.norm(W, axis=1) > _SAME]

    x = starts(problem, x0, seed)[0]
    out = _run(problem, x, W, int(max_iter), float(tol), float(eps))
    return finish(problem, *out, "pareto-mtl", r)


class _Direction:
    """The QP on unit rows at one iterate: weights, direction, held columns, measures."""

    def __init__(self, J, C_rows, refs, objectives, constraints, at_lower, at_upper, fixed):
        rows = np.vstack([J[objectives], C_rows[constraints]])
        self.n_obj_rows = int(objectives.sum())
        self.constraints = constraints
        norms = np.linalg.norm(rows, axis=1)
        ref = np.concatenate([np.full(self.n_obj_rows, refs[0]), refs[1][constraints]])
        zero = norms <= _ZERO_ROW * ref  # rounding-level rows: not directions
        unit = np.where(zero[:, None], 0.0, rows / np.where(zero, 1.0, norms)[:, None])
        self.weights, self.d, hold = _tangent_min_norm(unit, at_lower, at_upper, fixed)
        self.value = float(self.d @ self.d)
        self.norm = float(np.sqrt(self.value))
        # the same direction from the raw rows: d / s = Pi(sum_r lambda_r g_r), lambda in
        # the simplex, an upper bound on the raw min-norm
        s = float(self.weights[~zero] @ (1.0 / norms[~zero])) if (~zero).any() else 0.0
        self.raw_norm = self.norm / s if s > 0 else 0.0
        free = np.where(hold[None, :], 0.0, rows)
        self.raw_free = np.where(zero, 0.0, np.linalg.norm(free, axis=1))
        self.unit_free = np.linalg.norm(np.where(hold[None, :], 0.0, unit), axis=1)

    def small(self, tol: float, ref: float) -> bool:
        """Stationary: the unit rows' min-norm, or the raw one relative to ``ref``, <= tol."""
        return self.norm <= tol or self.raw_norm <= tol * ref

    def weak(self, tol: float, ref: float) -> np.ndarray:
        """Objective rows that cannot move: their feasible part vanishes."""
        k = self.n_obj_rows
        return (self.unit_free[:k] <= tol) | (self.raw_free[:k] <= tol * ref)


def _run(problem, x, W, max_iter, tol, eps):
    """Both phases; returns (x, values, jacobian, objective, iterations, converged)."""
    lo, hi = problem.lower, problem.upper
    m, n = problem.n_obj, problem.n_var
    half = 0.5 * np.einsum("ij,ij->i", W, W)  # -c_j at the sub-region's centre
    no_objective = np.zeros(m, dtype=bool)
    values, jacobian = problem.evaluate(x)
    frozen = np.zeros(m, dtype=bool)  # objectives at the minimum of their face
    held = np.zeros(n, dtype=bool)  # the binding bounds of the frozen objectives
    phase1 = False  # the paper's phase 1: taken when the joint step stalls outside
    scale = np.finfo(float).tiny  # the largest objective gradient norm seen
    t, value, converged, certified, it = 1.0, float("nan"), False, False, 0
    for it in range(max_iter):  # noqa: B007 - the count is reported
        rho = _normalised(W, values) / half  # -1 at the centre, 0 on the boundary
        outside = bool((rho > 0).any())
        phase1 = phase1 and outside
        at_lower, at_upper = active_bounds(problem, x, 1e-12)
        fixed = held | ~np.isfinite(jacobian).all(axis=0)
        J = np.where(fixed[None, :], 0.0, jacobian)
        ref = max(float(np.linalg.norm(J, axis=1).max()), np.finfo(float).tiny)
        scale = max(scale, ref)
        c, c_rows, c_ref = _constraints(W, values, J, ref)
        args = (J, c_rows, (ref, c_ref))
        bounds = (at_lower, at_upper, fixed)
        if phase1:  # lower the largest violation (in cone widths) and those near it
            sol = _Direction(*args, no_objective, rho >= rho.max() - eps, *bounds)
        else:
            sol = _Direction(*args, ~frozen, rho >= -eps, *bounds)
            binding = sol.constraints & (rho >= 0)
            if sol.small(tol, scale) and (sol.constraints & ~binding).any():
                # Zoutendijk's jamming: constraints inside the sub-region block every
                # direction. Drop them; if that frees a direction, shrink the margin.
                alt = _Direction(*args, ~frozen, binding, *bounds)
                if not alt.small(tol, scale):
                    sol, eps = alt, (0.1 * eps if eps > 1e-8 else 0.0)
        value = sol.value
        if sol.small(tol, scale):
            if phase1:  # a stationary point of the violation: give up
                break
            if outside:  # the joint step cannot reach the sub-region: phase 1
                phase1, t = True, 1.0
                continue
            certified = True
            weak = sol.weak(tol, scale)
            if weak.any() and not weak.all():
                idx = np.flatnonzero(~frozen)[weak]
                frozen[idx] = True
                with np.errstate(invalid="ignore"):
                    Jw = jacobian[idx]
                    held |= (at_lower & (Jw > 0).any(axis=0)) | (at_upper & (Jw < 0).any(axis=0))
                continue
            converged = True
            break
        # line search along the projection arc x(t) = clip(x - t d)
        t = min(2.0 * t, _T_MAX)
        armijo = sol.constraints
        while True:
            trial = np.clip(x - t * sol.d, lo, hi)
            step = trial - x
            if not step.any():
                break
            v_new, j_new = problem.evaluate(trial)
            c_new = _normalised(W, v_new)
            if phase1:
                ok = _accept_phase1(c / half, c_new / half, (c_rows @ step) / half, armijo)
            else:
                ok = _accept(values, v_new, J, step, frozen, c, c_new, c_rows, armijo)
            if ok and np.isfinite(v_new).all():
                break
            t *= 0.5
            if t < _T_MIN:
                step = np.zeros_like(step)
                break
        if not step.any():  # nothing left to gain at this precision
            if outside and not phase1:
                phase1, t = True, 1.0
                continue
            converged = certified or sol.small(_ROUNDING, scale)
            break
        x, values, jacobian = trial, v_new, j_new
        certified = False
    else:
        it = max_iter
    inside = not W.size or float(_normalised(W, values).max()) <= _FEASIBLE
    return x, values, jacobian, value, it, converged and inside


def _accept_phase1(rho, rho_new, pred, rows) -> bool:
    """Armijo on the largest violation max_j rho_j, with the rows' least predicted fall."""
    fall = float(pred[rows].max())
    return fall < 0 and float(rho_new.max() - rho.max()) <= _SIGMA * fall


def _accept(values, v_new, J, step, frozen, c, c_new, c_rows, armijo) -> bool:
    """Armijo on the QP's rows (each predicted to fall); the other constraints stay <= 0."""
    pred = J @ step
    free = ~frozen
    if (pred[free] >= 0).any() or (v_new[free] - values[free] > _SIGMA * pred[free]).any():
        return False
    if (v_new[frozen] > values[frozen]).any():
        return False
    pred_c = c_rows @ step
    if (pred_c[armijo] >= 0).any() or (c_new[armijo] - c[armijo] > _SIGMA * pred_c[armijo]).any():
        return False
    return not (c_new[~armijo] > 0).any()
