"""Pareto MTL (Lin et al., NeurIPS 2019) as a front method: one point per sub-region."""

import functools

import numpy as np
import pytest

from paretomtl.front import (
    directions_from_rays,
    front_method_info,
    pareto_mtl,
    simplex_rays,
    trace,
)
from paretomtl.front.pareto_mtl import _constraints, _Direction, _tangent_min_norm
from paretomtl.front.stationarity import active_bounds, project_gradients
from paretomtl.problems import DTLZ2, ZDT1, ZDT2, ConvexQuadratic, ParetoMTLToy
from paretomtl.solvers import mgda

RAYS = simplex_rays(2, 8)


def _zdt1_front(f):
    return f[:, 1] - (1.0 - np.sqrt(f[:, 0]))


def _zdt2_front(f):
    return f[:, 1] - (1.0 - f[:, 0] ** 2)


def _quadratic_front(f):
    return np.sqrt(f[:, 0]) + np.sqrt(f[:, 1]) - 1.0  # default centres: D = sqrt(2)


def _toy_front(f):
    return np.sqrt(-np.log1p(-f[:, 0])) + np.sqrt(-np.log1p(-f[:, 1])) - 2.0


PROBLEMS = {
    "zdt1": (lambda: ZDT1(n_var=30), _zdt1_front),
    "zdt2": (lambda: ZDT2(n_var=30), _zdt2_front),
    "toy": (lambda: ParetoMTLToy(n_var=20), _toy_front),
    "quadratic": (lambda: ConvexQuadratic(n_var=10), _quadratic_front),
}


@functools.cache
def traced(problem: str, n_rays: int = 8, seed: int = 0):
    return trace(PROBLEMS[problem][0](), "pareto-mtl", simplex_rays(2, n_rays), seed=seed)


def _sub_region_values(rays: np.ndarray, points: np.ndarray) -> np.ndarray:
    """max_j (u_j - u_k)^T f_k / ||f_k|| for each point k: <= 0 inside its sub-region."""
    U = directions_from_rays(rays)
    out = []
    for k, f in enumerate(points):
        W = np.delete(U, k, axis=0) - U[k]
        W = W[np.linalg.norm(W, axis=1) > 1e-6]
        out.append((W @ f).max() / np.linalg.norm(f) if len(W) else -1.0)
    return np.array(out)


def test_registered_as_a_ray_set_method():
    info = front_method_info("pareto-mtl")
    assert info.kind == "ray-set" and info.obj is pareto_mtl
    assert "NeurIPS 2019" in info.paper


# ------------------------------------------------------------- the directions
def test_directions_point_at_one_over_r_and_the_end_rays_at_the_axes():
    U = directions_from_rays(simplex_rays(2, 5))
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), 1.0)
    # ray (0, 1) (all weight on f2) -> u ~ (1, 0), the end where f2 ~ 0
    np.testing.assert_allclose(U[0], [1.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(U[-1], [0.0, 1.0], atol=1e-7)
    r = np.array([0.2, 0.8])
    u = directions_from_rays(r[None, :])[0]
    np.testing.assert_allclose(u, (1 / r) / np.linalg.norm(1 / r))
    # directions sweep from the f1 axis to the f2 axis, in ray order
    assert np.all(np.diff(np.arctan2(U[:, 1], U[:, 0])) > 0)


@pytest.mark.parametrize("rays", [[0.5, 0.5], [[0.5, -0.5]], [[0.0, 0.0]], [[np.nan, 1.0]]])
def test_directions_reject_bad_rays(rays):
    with pytest.raises(ValueError, match="rays"):
        directions_from_rays(rays)


# ------------------------------------------------------------- the points
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_every_point_is_stationary_on_the_front_and_in_its_sub_region(problem):
    out = traced(problem)
    assert out.points.shape == (8, 2)
    assert out.stationarity.max() < 1e-4
    assert out.stationarity.max() < 1e-12  # the aim: far below the threshold
    assert out.converged.all()
    # on the true front: Pareto optimal, not only weakly (the ZDT end rays)
    np.testing.assert_allclose(PROBLEMS[problem][1](out.points), 0.0, atol=1e-8)
    assert _sub_region_values(out.rays, out.points).max() <= 1e-9


@pytest.mark.parametrize("problem", ["zdt1", "zdt2"])
@pytest.mark.parametrize("n_rays", [3, 5, 12])
def test_zdt_other_ray_counts(problem, n_rays):
    # 5 rays on ZDT1: the earlier draft's line search stalled at x1 = 1 (0.92)
    out = traced(problem, n_rays)
    assert out.stationarity.max() < 1e-12 and out.converged.all()
    np.testing.assert_allclose(PROBLEMS[problem][1](out.points), 0.0, atol=1e-8)
    assert _sub_region_values(out.rays, out.points).max() <= 1e-9


def test_the_concave_front_is_covered():
    f1 = traced("zdt2").points[:, 0]
    assert np.all(np.diff(f1) < 0)  # one point per sub-region, in ray order
    assert ((f1 > 0.2) & (f1 < 0.8)).sum() >= 3, f1  # linear scalarisation finds none


@pytest.mark.parametrize("problem", ["zdt1", "zdt2"])
def test_end_rays_reach_the_front_not_a_weakly_pareto_point(problem):
    # ray (1, 0) asks for f1 ~ 0; x1 = 0 with g > 1 is weakly Pareto optimal, f2 = g
    for seed in range(3):
        res = traced(problem, 8, seed).results
        assert res[-1].values[0] < 0.1 and res[-1].values[1] == pytest.approx(1.0, abs=1e-12)
        assert res[0].values[1] < 0.1 and np.all(res[0].x[1:] == 0.0)


def test_single_ray_is_box_aware_mgda():
    out = trace(ZDT1(n_var=10), "pareto-mtl", [[0.5, 0.5]], seed=1)
    assert out.converged.all() and out.stationarity.max() < 1e-12
    np.testing.assert_allclose(_zdt1_front(out.points), 0.0, atol=1e-12)


def test_three_objectives_dtlz2():
    out = trace(DTLZ2(n_var=12), "pareto-mtl", simplex_rays(3, 15), seed=0)
    assert out.converged.all() and out.stationarity.max() < 1e-12
    np.testing.assert_allclose(np.linalg.norm(out.points, axis=1), 1.0, atol=1e-9)
    assert _sub_region_values(out.rays, out.points).max() <= 1e-9


@pytest.mark.xfail(
    strict=True,
    reason=(
        "measured: ray 4's start lies on the toy's plateau, f = (0.9999988, 0.99963), "
        "gradients 1e-5 and 2e-3; the joint step creeps through a thin wedge, phase 1 "
        "then saturates f to (1.0, 0.99999999), where float64 cannot resolve a decrease, "
        "and the run ends 1.6e-9 outside its sub-region (converged=False)"
    ),
)
def test_toy_from_a_start_on_its_plateau():
    out = traced("toy", 8, 2)
    assert out.converged.all()
    assert _sub_region_values(out.rays, out.points).max() <= 1e-9


# ------------------------------------------------------------- the QP
def _box_qp_reference(A, at_lower, at_upper):
    """cvxpy: min ||A^T lam - w||^2, lam in the simplex, w in the polar of the tangent cone."""
    cp = pytest.importorskip("cvxpy")
    K, n = A.shape
    lam, w = cp.Variable(K), cp.Variable(n)
    free = ~(at_lower | at_upper)
    constraints = [lam >= 0, cp.sum(lam) == 1]
    for mask, side in ((at_lower, 1.0), (at_upper, -1.0), (free, 0.0)):
        idx = np.flatnonzero(mask)
        if idx.size:
            constraints.append(side * w[idx] >= 0 if side else w[idx] == 0)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(A.T @ lam - w)), constraints)
    problem.solve(solver="CLARABEL")
    return problem.value, A.T @ lam.value - w.value


@pytest.mark.parametrize("K", [2, 3, 5])
def test_box_aware_min_norm_matches_cvxpy(K):
    pytest.importorskip("cvxpy")
    rng = np.random.default_rng(K)
    for _ in range(10):
        n = 6
        A = rng.normal(size=(K, n))
        side = rng.integers(0, 3, n)  # 0 free, 1 at lower, 2 at upper
        at_lower, at_upper = side == 1, side == 2
        weights, d, hold = _tangent_min_norm(A, at_lower, at_upper, np.zeros(n, dtype=bool))
        value, d_ref = _box_qp_reference(A, at_lower, at_upper)
        assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
        assert d @ d == pytest.approx(value, abs=1e-7)
        np.testing.assert_allclose(d, d_ref, atol=1e-4)
        # -d is a feasible direction and lowers every row on the box
        assert np.all(d[at_lower] <= 0) and np.all(d[at_upper] >= 0) and not d[hold].any()
        assert np.all(A @ d >= d @ d - 1e-12)


def test_one_step_of_the_method_matches_cvxpy():
    # ZDT1 at x1 = 1 (upper bound), some distance variables at 0, g > 1: the point where
    # projecting each gradient separately stalled the earlier draft
    problem = ZDT1(n_var=6)
    x = np.array([1.0, 0.0, 0.3, 0.0, 0.7, 0.2])
    values, J = problem.evaluate(x)
    at_lower, at_upper = active_bounds(problem, x, 1e-12)
    U = directions_from_rays(simplex_rays(2, 5))
    W = np.delete(U, 0, axis=0) - U[0]  # ray 0's sub-region: f2 small
    ref = np.linalg.norm(J, axis=1).max()
    c, c_rows, c_ref = _constraints(W, values, J, ref)
    active = c >= c.max()  # the nearest boundary only
    sol = _Direction(
        J, c_rows, (ref, c_ref), np.ones(2, bool), active, at_lower, at_upper, np.zeros(6, bool)
    )
    rows = np.vstack([J, c_rows[active]])
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    value, d_ref = _box_qp_reference(unit, at_lower, at_upper)
    assert sol.value == pytest.approx(value, abs=1e-7)
    np.testing.assert_allclose(sol.d, d_ref, atol=1e-4)
    # the step -d lowers both objectives and the constraint to first order
    assert np.all(rows @ sol.d > 0) and sol.d[0] >= 0


def test_projecting_each_gradient_first_is_not_a_descent_direction():
    # x_0 at its lower bound: g1 = (3, 1) wants x_0 lower, g2 = (-1, 0.2) wants it higher
    A = np.array([[3.0, 1.0], [-1.0, 0.2]])
    at_lower, none = np.array([True, False]), np.zeros(2, dtype=bool)
    naive = mgda(project_gradients(A, at_lower, none)).direction
    assert naive[0] < 0 and A[0] @ naive < 0  # -naive raises x_0, and f1 with it
    weights, d, _ = _tangent_min_norm(A, at_lower, none, none)
    assert np.all(A @ d >= d @ d - 1e-15)
    # by hand: phi(l) = min(4l - 1, 0)^2 + (0.2 + 0.8 l)^2 is least at l = 3/13
    np.testing.assert_allclose(weights, [3 / 13, 10 / 13], atol=1e-12)
    np.testing.assert_allclose(d, [-1 / 13, 5 / 13], atol=1e-12)


# ------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"index": 8}, ValueError, "index"),
        ({"index": -1}, ValueError, "index"),
        ({"index": 1.0}, TypeError, "index"),
        ({"rays": np.ones((8, 3))}, ValueError, "rays"),
        ({"rays": np.ones(8)}, ValueError, "rays"),
        ({"rays": -RAYS}, ValueError, "rays"),
        ({"preference": RAYS[2]}, ValueError, "preference"),
        ({"preference": [0.0, 0.0]}, ValueError, "preference"),
        ({"eps": 1.0}, ValueError, "eps"),
        ({"eps": -0.1}, ValueError, "eps"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"max_iter": -1}, ValueError, "max_iter"),
        ({"x0": np.zeros(3)}, ValueError, "x0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    args = {"preference": RAYS[1], "rays": RAYS, "index": 1, **kwargs}
    with pytest.raises(error, match=match):
        pareto_mtl(ZDT1(n_var=4), **args)


def test_trace_checks_the_rays_too():
    with pytest.raises(ValueError, match="rays"):
        trace(ZDT1(n_var=4), "pareto-mtl", np.ones((3, 3)))
