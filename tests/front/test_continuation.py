"""Continuation along bi-objective fronts: stationary points, on the true front, spread
evenly from end to end; its errors; and its place in the registry."""

import functools
import sys

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from paretomtl.front import (
    bound_aware_stationarity,
    continuation,
    front_method_info,
    simplex_rays,
    trace,
)
from paretomtl.front.stationarity import active_bounds, project_gradients
from paretomtl.problems import DTLZ2, ZDT1, ZDT2, ConvexQuadratic, ParetoMTLToy, Problem

PROBLEMS = {
    "zdt1": lambda: ZDT1(n_var=30),
    "zdt2": lambda: ZDT2(n_var=30),
    "quadratic": lambda: ConvexQuadratic(n_var=10),
    "toy": lambda: ParetoMTLToy(n_var=20),
}
N = 25

# Each front in closed form, as a residual that is 0 on it.
ON_FRONT = {
    "zdt1": lambda F: F[:, 1] - (1.0 - np.sqrt(F[:, 0])),
    "zdt2": lambda F: F[:, 1] - (1.0 - F[:, 0] ** 2),
    "quadratic": lambda F: np.sqrt(F[:, 0]) + np.sqrt(F[:, 1]) - 1.0,
    "toy": lambda F: np.sqrt(-np.log1p(-F[:, 0])) + np.sqrt(-np.log1p(-F[:, 1])) - 2.0,
}


@functools.cache
def traced(name: str, n_points: int = N, seed: int = 0):
    return continuation(PROBLEMS[name](), n_points, seed=seed)


def gaps(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(points, axis=0), axis=1)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_every_point_is_bound_aware_stationary_along_the_whole_front(name):
    out = traced(name)
    assert out.points.shape == (N, 2) and out.xs.shape == (N, PROBLEMS[name]().n_var)
    assert out.stationarity.max() < 1e-10  # the requirement
    assert out.converged.all()
    # the stored value is the library's measure, recomputed from scratch
    problem = PROBLEMS[name]()
    again = [bound_aware_stationarity(problem, x).value for x in out.xs]
    np.testing.assert_allclose(out.stationarity, again, rtol=0, atol=1e-25)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_points_lie_on_the_true_front(name):
    out = traced(name)
    assert np.abs(ON_FRONT[name](out.points)).max() < 1e-8


def test_zdt1_points_lie_on_its_pareto_set():
    out = traced("zdt1")
    assert np.all(out.xs[:, 1:] == 0.0)  # held exactly at the lower bound
    np.testing.assert_array_equal(out.points[:, 0], out.xs[:, 0])
    np.testing.assert_allclose(out.points[:, 1], 1.0 - np.sqrt(out.points[:, 0]), atol=1e-8)


def test_quadratic_points_are_near_a_dense_sample_of_its_front():
    out = traced("quadratic")
    dense = ConvexQuadratic(n_var=10).pareto_front(20001)
    dist = np.linalg.norm(out.points[:, None, :] - dense[None, :, :], axis=2).min(axis=1)
    assert dist.max() < 1e-4


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_points_cover_the_front_evenly_from_end_to_end(name):
    out = traced(name)
    F = out.points
    spacing = gaps(F)
    assert np.all(np.diff(F[:, 0]) > 0) and np.all(np.diff(F[:, 1]) < 0)  # sorted along it
    true_ends = PROBLEMS[name]().pareto_front(2)
    assert np.linalg.norm(F[0] - true_ends[0]) <= spacing.min()
    assert np.linalg.norm(F[-1] - true_ends[1]) <= spacing.min()
    assert spacing.max() <= 3.0 * spacing.min()
    # in fact nearly equal, and together about the front's arclength
    assert spacing.max() <= 1.1 * spacing.min()
    length = gaps(PROBLEMS[name]().pareto_front(20001, spacing="arclength")).sum()
    assert spacing.sum() == pytest.approx(length, rel=0.01)


def test_the_ends_are_exact():
    np.testing.assert_array_equal(traced("zdt1").points[[0, -1]], [[0.0, 1.0], [1.0, 0.0]])
    # Newton on grad f_i = 0 removes the end ray's EDGE_WEIGHT offset (about 1e-8)
    np.testing.assert_allclose(
        traced("quadratic").points[[0, -1]], [[0.0, 1.0], [1.0, 0.0]], atol=1e-14
    )


def test_rays_are_the_tchebycheff_preferences_the_points_meet():
    out = traced("zdt2")
    np.testing.assert_allclose(out.rays.sum(axis=1), 1.0)
    np.testing.assert_allclose(out.rays[[0, -1]], [[1.0, 0.0], [0.0, 1.0]], atol=1e-12)
    weighted = out.rays * out.points  # r_1 f_1 = r_2 f_2 at every point
    np.testing.assert_allclose(weighted[:, 0], weighted[:, 1], atol=1e-15)
    preferences = np.array([res.preference for res in out.results])
    np.testing.assert_array_equal(preferences, out.rays)
    assert {res.method for res in out.results} == {"continuation"}


@pytest.mark.parametrize("n_points", [1, 2, 3, 8])
def test_exactly_n_points(n_points):
    out = continuation(ZDT2(n_var=5), n_points, seed=1)
    assert out.points.shape == (n_points, 2) and len(out.results) == n_points
    assert out.stationarity.max() < 1e-10
    assert np.abs(ON_FRONT["zdt2"](out.points)).max() < 1e-8


def test_one_point_is_the_start_the_tchebycheff_point_of_the_middle_ray():
    out = continuation(ZDT1(n_var=30), 1, seed=0)
    golden = (3.0 - np.sqrt(5.0)) / 2.0  # f1 = f2 = 1 - sqrt(f1)
    np.testing.assert_allclose(out.points, [[golden, golden]], atol=1e-9)


def test_reproducible_with_the_same_seed_and_independent_of_the_start():
    again = continuation(ZDT1(n_var=30), N, seed=0)
    np.testing.assert_array_equal(again.points, traced("zdt1").points)
    np.testing.assert_array_equal(again.xs, traced("zdt1").xs)
    assert np.abs(ON_FRONT["zdt1"](again.points)).max() < 1e-8
    # another seed, or an explicit x0, traces the same front
    other = continuation(ZDT1(n_var=30), N, seed=7)
    np.testing.assert_allclose(other.points, traced("zdt1").points, atol=1e-6)
    x0 = np.full(30, 0.9)
    from_x0 = continuation(ZDT1(n_var=30), N, x0)
    np.testing.assert_allclose(from_x0.points, traced("zdt1").points, atol=1e-6)


@pytest.mark.parametrize("walk_step", [0.02, 0.5])
def test_a_coarse_or_fine_walk_gives_the_same_front(walk_step):
    out = continuation(ZDT2(n_var=10), 11, seed=0, walk_step=walk_step)
    assert out.stationarity.max() < 1e-10
    assert np.abs(ON_FRONT["zdt2"](out.points)).max() < 1e-8
    assert gaps(out.points).max() <= 1.2 * gaps(out.points).min()


def test_an_ill_conditioned_quadratic():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(2, 4, 4))
    hessians = np.einsum("kij,klj->kil", A, A) + 0.2 * np.eye(4)
    problem = ConvexQuadratic(n_var=4, hessians=hessians, lower=-5.0, upper=5.0)
    out = continuation(problem, 12, seed=0)
    assert out.stationarity.max() < 1e-10
    # each point minimises a weighted sum: x(lam) for some lam in [0, 1]
    dense = problem.pareto_front(20001)
    dist = np.linalg.norm(out.points[:, None, :] - dense[None, :, :], axis=2).min(axis=1)
    assert dist.max() < 1e-3
    assert out.points[0, 0] == pytest.approx(0.0, abs=1e-14)  # exact minimiser of f1
    assert out.points[-1, 1] == pytest.approx(0.0, abs=1e-14)


class BoxedQuadratic(Problem):
    """f_i = |x - a_i|^2 / 2 in 2-D with a box that cuts the unconstrained Pareto set.

    Weighted sums are 1/2 |x - c(lam)|^2 + const, c(lam) = (1 - lam) a_1 + lam a_2,
    so the Pareto set is the box projection of the segment: x_2 sits at a bound on
    both outer parts of the front.
    """

    name = "boxed-quadratic"
    has_hvp = True

    def __init__(self):
        super().__init__(2, 2, [-1.0, -0.2], [1.0, 0.2])
        self.a = np.array([[1.0, 0.5], [-1.0, -0.5]])

    def _evaluate(self, X):
        D = X[:, None, :] - self.a[None]
        return 0.5 * (D**2).sum(axis=2), D.copy()

    def _hvp(self, X, V):
        return np.repeat(V[:, None, :], 2, axis=1)

    def pareto_set_dense(self, n):
        lam = np.linspace(0.0, 1.0, n)[:, None]
        return np.clip((1 - lam) * self.a[0] + lam * self.a[1], self.lower, self.upper)


def exact_kkt_measure(problem, x) -> float:
    """min over s in [0, 1] of |Pi((1 - s) g1 + s g2)|^2 (convex in s: Brent's method)."""
    _, J = problem.evaluate(x)
    at_lower, at_upper = active_bounds(problem, x, 1e-12)

    def measure(s: float) -> float:
        v = project_gradients(((1 - s) * J[0] + s * J[1])[None, :], at_lower, at_upper)[0]
        return float(v @ v)

    best = minimize_scalar(measure, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-14})
    return min(float(best.fun), measure(0.0), measure(1.0))


def test_a_bound_that_binds_in_the_middle_of_the_front():
    problem = BoxedQuadratic()
    out = continuation(problem, 15, seed=0)
    X = problem.pareto_set_dense(200001)
    dense = problem.evaluate_batch(X)[0]
    dist = np.linalg.norm(out.points[:, None, :] - dense[None, :, :], axis=2).min(axis=1)
    assert dist.max() < 1e-4
    held = np.abs(out.xs[:, 1]) == 0.2
    assert held.sum() >= 6 and (~held).sum() >= 3  # both kinds of point were traced
    # KKT points: some convex weights make every projected component vanish (the
    # library's measure is only an upper bound here: at x_2 = 0.2 the objectives'
    # partial derivatives in x_2 disagree in sign)
    assert max(exact_kkt_measure(problem, x) for x in out.xs) < 1e-20
    assert gaps(out.points).max() <= 1.2 * gaps(out.points).min()


def test_progress_is_called_once_per_point():
    calls = []
    continuation(ZDT2(n_var=5), 6, seed=0, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 6) for k in range(1, 7)]


def test_three_objectives_are_refused():
    with pytest.raises(ValueError, match=r"n_obj = 2.*n_obj = 3"):
        continuation(DTLZ2(), 5)


@pytest.mark.parametrize("n_points", [0, -3])
def test_n_points_below_one_is_refused(n_points):
    with pytest.raises(ValueError, match="n_points must be >= 1"):
        continuation(ZDT1(n_var=5), n_points)


def test_non_integer_n_points_is_refused():
    with pytest.raises(TypeError, match="n_points must be an int"):
        continuation(ZDT1(n_var=5), 4.0)


class NoHessian(Problem):
    """f_i = |x - a_i|^2 / 2 without Hessian-vector products."""

    name = "no-hvp"

    def __init__(self):
        super().__init__(2, 2, -1.0, 1.0)

    def _evaluate(self, X):
        a = np.array([[0.5, 0.5], [-0.5, -0.5]])
        D = X[:, None, :] - a[None]
        return 0.5 * (D**2).sum(axis=2), D.copy()


def test_a_problem_without_hessian_vector_products_is_refused():
    assert not NoHessian().has_hvp
    with pytest.raises(ValueError, match="no Hessian-vector products"):
        continuation(NoHessian(), 5)


@pytest.mark.parametrize("walk_step", [0.0, -1.0, float("nan"), "big"])
def test_bad_walk_step_is_refused(walk_step):
    with pytest.raises(ValueError, match="walk_step must be None or a positive"):
        continuation(ZDT1(n_var=5), 5, walk_step=walk_step)


def test_via_the_registry():
    info = front_method_info("continuation")
    assert info.kind == "walk" and info.obj is continuation
    assert "Hillermeier" in info.paper
    calls = []
    out = trace(
        ZDT1(n_var=30),
        "continuation",
        simplex_rays(2, 9),
        seed=0,
        progress=lambda done, total: calls.append(done),
    )
    assert out.points.shape == (9, 2) and out.method == "continuation"
    assert calls == list(range(1, 10))
    assert out.stationarity.max() < 1e-10
    np.testing.assert_allclose(out.points[:, 1], 1.0 - np.sqrt(out.points[:, 0]), atol=1e-8)


def test_the_tchebycheff_fallback_when_newton_fails(monkeypatch):
    module = sys.modules["paretomtl.front._continuation"]
    monkeypatch.setattr(module, "_correct", lambda *args, **kwargs: None)
    out = continuation(ZDT2(n_var=10), 7, seed=0)  # no walk: every point from the fallback
    assert out.points.shape == (7, 2) and out.stationarity.max() < 1e-10
    assert np.abs(ON_FRONT["zdt2"](out.points)).max() < 1e-8
    assert np.all(np.diff(out.points[:, 0]) > 0)
