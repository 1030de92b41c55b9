"""Linear, Tchebycheff and smooth Tchebycheff scalarisation on the analytic problems."""

import functools

import numpy as np
import pytest

from paretomtl.front import (
    linear_scalarization,
    preference_points,
    simplex_rays,
    smooth_tchebycheff,
    tchebycheff,
    trace,
)
from paretomtl.front.scalarization import linear_pass, smooth_tchebycheff_pass, tchebycheff_pass
from paretomtl.problems import DTLZ2, ZDT1, ZDT2, ConvexQuadratic, ParetoMTLToy

PROBLEMS = {
    "zdt1": lambda: ZDT1(n_var=30),
    "zdt2": lambda: ZDT2(n_var=30),
    "toy": lambda: ParetoMTLToy(n_var=20),
    "quadratic": lambda: ConvexQuadratic(n_var=10),
}
METHODS = ("linear", "tchebycheff", "stch")
RAYS = simplex_rays(2, 8)


@functools.cache
def traced(problem: str, method: str, seed: int = 0):
    return trace(PROBLEMS[problem](), method, RAYS, seed=seed)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_every_point_is_bound_aware_stationary(problem, method):
    out = traced(problem, method)
    assert out.points.shape == (8, 2) and out.xs.shape[0] == 8
    assert out.stationarity.max() < 1e-4
    # well below the threshold, and the runs say they converged (or nearly)
    assert out.stationarity.max() < 1e-12
    assert out.converged.sum() >= 6
    # Pareto optimal, not only critical: on the true front (a refined search along
    # its parametrisation, accurate to about 1e-8)
    assert PROBLEMS[problem]().front_distance(out.points).max() < 1e-7


def test_linear_scalarisation_misses_the_concave_part_of_zdt2():
    f1 = traced("zdt2", "linear").points[:, 0]
    assert np.all((f1 < 1e-6) | (f1 > 1 - 1e-6)), f1


@pytest.mark.parametrize("method", ["tchebycheff", "stch"])
def test_tchebycheff_covers_the_concave_part_of_zdt2(method):
    out = traced("zdt2", method)
    f1 = out.points[:, 0]
    assert ((f1 > 0.2) & (f1 < 0.8)).sum() >= 3, f1
    # and the points are on the front f2 = 1 - f1^2 (interior rays)
    inner = out.points[1:-1]
    np.testing.assert_allclose(inner[:, 1], 1 - inner[:, 0] ** 2, atol=1e-9)


@pytest.mark.parametrize("problem", ["zdt1", "zdt2", "quadratic", "toy"])
def test_tchebycheff_points_meet_their_preference(problem):
    out = traced(problem, "tchebycheff")
    inner = slice(1, -1)  # rays with both entries > 0
    rf = out.rays[inner] * out.points[inner]
    np.testing.assert_allclose(rf[:, 0], rf[:, 1], rtol=1e-6)


def test_stch_meets_the_preference_up_to_its_smoothing():
    problem = ZDT1(n_var=10)
    r = np.array([0.3, 0.7])
    # 0.3 f1 = 0.7 f2 on f2 = 1 - s, f1 = s^2: 0.3 s^2 + 0.7 s - 0.7 = 0
    s = (-0.7 + np.sqrt(0.7**2 + 4 * 0.3 * 0.7)) / (2 * 0.3)
    exact = np.array([s**2, 1 - s])
    np.testing.assert_allclose(tchebycheff(problem, r, seed=1).values, exact, atol=1e-9)
    for mu, tol in [(0.1, 0.2), (0.01, 0.02), (0.001, 0.002)]:
        values = smooth_tchebycheff(problem, r, seed=1, mu=mu).values
        assert np.abs(values - exact).max() < tol


def test_ideal_point_shifts_the_balance():
    problem = ConvexQuadratic(n_var=4)
    r, z = np.array([0.5, 0.5]), np.array([-0.1, 0.05])
    res = tchebycheff(problem, r, ideal=z, seed=3)
    assert r[0] * (res.values[0] - z[0]) == pytest.approx(r[1] * (res.values[1] - z[1]), rel=1e-6)


def test_linear_scalarisation_on_a_convex_front_matches_the_closed_form():
    # identity quadratic: x(lam) = a1 + lam (a2 - a1) minimises (1 - lam) f1 + lam f2
    problem = ConvexQuadratic(n_var=6)
    for lam in (0.2, 0.5, 0.9):
        res = linear_scalarization(problem, [1 - lam, lam], seed=0)
        # D^2 = ||a2 - a1||^2 = 2 for the default centres
        np.testing.assert_allclose(res.values, [lam**2, (1 - lam) ** 2], atol=1e-9)


def test_three_objectives_dtlz2():
    problem = DTLZ2(n_var=6)
    out = trace(problem, "tchebycheff", simplex_rays(3, 15), seed=0, max_iter=500)
    assert out.stationarity.max() < 1e-4
    inner = (out.rays > 0).all(axis=1)
    np.testing.assert_allclose(np.linalg.norm(out.points[inner], axis=1), 1.0, atol=1e-6)
    rf = out.rays[inner] * out.points[inner]
    np.testing.assert_allclose(rf, rf[:, :1] * np.ones(3), rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: trace(p, "no-such-method", RAYS), "front method"),
        (lambda p: trace(p, "linear", np.ones((3, 3))), "rays"),
        (lambda p: trace(p, "linear", RAYS, x0=np.zeros(2)), "x0"),
        (lambda p: linear_scalarization(p, [0.0, 0.0]), "preference"),
        (lambda p: linear_scalarization(p, [-1.0, 2.0]), "preference"),
        (lambda p: tchebycheff(p, [0.5, 0.5, 0.0]), "preference"),
        (lambda p: tchebycheff(p, [0.5, 0.5], ideal=[0.0]), "ideal"),
        (lambda p: smooth_tchebycheff(p, [0.5, 0.5], mu=0.0), "mu"),
    ],
)
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(ZDT1(n_var=4))


def test_result_is_frozen():
    res = linear_scalarization(ZDT1(n_var=4), [0.5, 0.5], seed=0)
    with pytest.raises(AttributeError):
        res.x = None


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("problem", ["zdt1", "zdt2", "toy", "quadratic"])
def test_end_rays_find_the_ends_of_the_front(problem, method):
    # Without the second pass, ray (1, 0) stops at any minimiser of f1: on ZDT at
    # x1 = 0 with f2 = g up to 10, a weakly Pareto point off the front.
    p = PROBLEMS[problem]()
    out = traced(problem, method)
    front = p.pareto_front(2)  # the two ends, sorted by f1
    for k in (0, len(RAYS) - 1):
        end = front[0] if RAYS[k, 1] == 0 else front[1]  # ray (1, 0) minimises f1
        # the lifted ray (1, 1e-8) lands within about sqrt(1e-8) of the end
        np.testing.assert_allclose(out.points[k], end, atol=1e-3)
        assert out.stationarity[k] < 1e-12


@pytest.mark.parametrize(
    ("single_pass", "method"),
    [
        (linear_pass, linear_scalarization),
        (smooth_tchebycheff_pass, smooth_tchebycheff),
        (tchebycheff_pass, tchebycheff),
    ],
)
def test_a_pass_alone_stops_at_a_weakly_pareto_point_of_an_end_ray(single_pass, method):
    p, x0 = ZDT1(n_var=5), np.full(5, 0.5)
    # f1 alone: x1 = 0, the distance variables untouched, f2 = g = 1 + 9/4 * 2
    np.testing.assert_array_equal(single_pass(p, [1.0, 0.0], x0).values, [0.0, 5.5])
    np.testing.assert_allclose(method(p, [1.0, 0.0], x0).values, [0.0, 1.0], atol=1e-12)
    # with every r_i > 0 the method is its pass
    np.testing.assert_array_equal(method(p, [0.3, 0.7], x0).x, single_pass(p, [0.3, 0.7], x0).x)
    with pytest.raises(ValueError, match="x0"):  # a pass starts where it is told
        single_pass(p, [0.5, 0.5], None)


def test_end_rays_of_dtlz2_lie_on_the_sphere():
    p = DTLZ2(n_var=6)
    rays = np.eye(3)
    out = trace(p, "tchebycheff", rays, seed=1)
    np.testing.assert_allclose(np.linalg.norm(out.points, axis=1), 1.0, atol=1e-8)
    for k in range(3):  # f_k = 0 (ray e_k says nothing more), on the front
        assert out.points[k, k] < 1e-8
    # ... and of that arc, the middle: the limit of the rays near e_k (the extra
    # starts of rays with two zeros; the corner (0, 0, 1) is another f_1 = 0 point)
    np.testing.assert_allclose(out.points, preference_points(p, rays), atol=1e-6)


def test_tchebycheff_leaves_degenerate_corners_of_dtlz2():
    # With these starts (seed 0 over the 91-ray lattice) the min-max steps stopped at
    # x1 = 0, where f3 = 0 can rise only along x1 and f1, f2 are flat in it; the
    # retry from 1e-3 inside the box reaches the exact points.
    p = DTLZ2(n_var=12)
    rays = simplex_rays(3, 91)
    rng = np.random.default_rng(0)
    starts = np.array([rng.uniform(p.lower, p.upper) for _ in rays])
    pick = [13, 18, 19, 64, 68, 69]
    out = trace(p, "tchebycheff", rays[pick], x0=starts[pick])
    np.testing.assert_allclose(out.points, preference_points(p, rays[pick]), atol=1e-6)
