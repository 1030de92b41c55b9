"""EPO search on the analytic problems: exact preference points, stationary."""

import functools

import numpy as np
import pytest

from paretomtl.front import epo_search, preference_points, simplex_rays, trace
from paretomtl.front.epo import epo_pass
from paretomtl.problems import DTLZ2, ZDT1, ZDT2, ConvexQuadratic, ParetoMTLToy

PROBLEMS = {
    "zdt1": lambda: ZDT1(n_var=30),
    "zdt2": lambda: ZDT2(n_var=30),
    "toy": lambda: ParetoMTLToy(n_var=20),
    "quadratic": lambda: ConvexQuadratic(n_var=10),
    "dtlz2": lambda: DTLZ2(n_var=12),
}


@functools.cache
def traced(problem: str):
    p = PROBLEMS[problem]()
    rays = simplex_rays(p.n_obj, 8 if p.n_obj == 2 else 15)
    return trace(p, "epo", rays, seed=0)


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_every_point_is_stationary_converged_and_on_the_true_front(problem):
    out = traced(problem)
    assert out.stationarity.max() < 1e-12
    assert out.converged.all()
    # the distance to the true front (closed form for DTLZ2, else a refined search
    # along its parametrisation, accurate to about 1e-8)
    assert PROBLEMS[problem]().front_distance(out.points).max() < 1e-7


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_interior_rays_meet_their_preference_exactly(problem):
    out = traced(problem)
    interior = (out.rays > 0).all(axis=1)
    assert interior.sum() >= 3
    rf = out.rays[interior] * out.points[interior]
    spread = (rf.max(axis=1) - rf.min(axis=1)) / rf.max(axis=1)
    assert spread.max() < 1e-4
    # and they are the problem's exact preference points (brentq along the front)
    exact = preference_points(PROBLEMS[problem](), out.rays[interior])
    np.testing.assert_allclose(out.points[interior], exact, atol=1e-9)


def test_covers_the_concave_front_of_zdt2():
    # r1 f1 = r2 (1 - f1^2): the exact point of each ray, in closed form.
    out = traced("zdt2")
    r1, r2 = out.rays[:, 0], out.rays[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(r2 > 0, (-r1 + np.sqrt(r1**2 + 4 * r2**2)) / (2 * r2), 1.0)
    f1 = np.where(r1 == 0, 1.0, np.where(r2 == 0, 0.0, f1))
    np.testing.assert_allclose(out.points[:, 0], f1, atol=1e-4)
    np.testing.assert_allclose(out.points[:, 1], 1 - out.points[:, 0] ** 2, atol=1e-10)


def test_zdt1_points_on_the_front():
    out = traced("zdt1")
    np.testing.assert_allclose(out.points[:, 1], 1 - np.sqrt(out.points[:, 0]), atol=1e-10)


def test_dtlz2_points_on_the_sphere():
    out = traced("dtlz2")
    np.testing.assert_allclose(np.linalg.norm(out.points, axis=1), 1.0, atol=1e-8)


def test_ideal_point_shifts_the_preference():
    p = ConvexQuadratic(n_var=4)
    z = np.array([0.05, 0.0])
    res = epo_search(p, [1.0, 1.0], ideal=z, seed=1)
    assert res.values[0] - z[0] == pytest.approx(res.values[1] - z[1], rel=1e-6)
    assert res.converged
    # on the front sqrt(f1) + sqrt(f2) = 1 with f1 - 0.05 = f2: sqrt(f1) = 1.05 / 2
    np.testing.assert_allclose(res.values, [0.525**2, 0.475**2], atol=1e-7)


def test_reproducible_and_at_the_closed_form_point():
    p = ZDT1(n_var=10)
    a = epo_search(p, [0.3, 0.7], seed=5)
    b = epo_search(p, [0.3, 0.7], seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    # 0.3 f1 = 0.7 f2 on f2 = 1 - s, f1 = s^2: 0.3 s^2 + 0.7 s - 0.7 = 0
    s = (-0.7 + np.sqrt(0.7**2 + 4 * 0.3 * 0.7)) / (2 * 0.3)
    np.testing.assert_allclose(a.values, [s**2, 1 - s], atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preference": [1.0, -1.0]}, "preference"),
        ({"preference": [1.0, 1.0], "ideal": [5.0, 5.0]}, "ideal"),
        ({"preference": [1.0, 1.0], "eps": -1.0}, "eps"),
        ({"preference": [1.0, 1.0], "x0": np.zeros(3)}, "x0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        epo_search(ConvexQuadratic(n_var=4), **kwargs)


def test_dtlz2_points_are_the_exact_preference_points_vertex_rays_included():
    # Ray (1, 0, 0)'s first pass can stop on the face x1 = 1, whose corner (0, 0, 1)
    # no first-order step leaves; the extra starts find the arc's middle.
    out = traced("dtlz2")
    exact = preference_points(DTLZ2(n_var=12), out.rays)
    np.testing.assert_allclose(out.points, exact, atol=1e-6)


def test_the_pass_alone_stops_at_a_weakly_pareto_point_of_an_end_ray():
    p, x0 = ZDT1(n_var=5), np.full(5, 0.5)
    np.testing.assert_array_equal(epo_pass(p, [1.0, 0.0], x0).values, [0.0, 5.5])
    np.testing.assert_allclose(epo_search(p, [1.0, 0.0], x0).values, [0.0, 1.0], atol=1e-12)
    np.testing.assert_array_equal(epo_search(p, [0.3, 0.7], x0).x, epo_pass(p, [0.3, 0.7], x0).x)
