"""trace and the registry: the starts (drawn once, in one place), names, errors."""

import numpy as np
import pytest

from paretomtl._registry import Entry
from paretomtl.front import (
    FrontMethodInfo,
    available_front_methods,
    continuation,
    epo_search,
    front_method_info,
    linear_scalarization,
    pareto_mtl,
    preference_points,
    register_front_method,
    simplex_rays,
    smooth_tchebycheff,
    tchebycheff,
    trace,
)
from paretomtl.problems import ZDT1, ZDT2, ConvexQuadratic

METHODS = ("linear", "tchebycheff", "stch")
RAYS = simplex_rays(2, 8)
PER_RAY = {
    "linear": linear_scalarization,
    "stch": smooth_tchebycheff,
    "tchebycheff": tchebycheff,
    "epo": epo_search,
}


# Values from routes that share nothing with the runs: the distance to the true front
# (a refined search along its parametrisation, accurate to about 1e-8) and the exact
# preference points (brentq along it).
FRONT_TOL = 1e-7


def assert_on_the_front(problem, points):
    assert problem.front_distance(np.atleast_2d(points)).max() < FRONT_TOL


def assert_at_the_preference_points(problem, rays, points, atol=1e-6):
    rays, points = np.atleast_2d(rays), np.atleast_2d(points)
    interior = (rays > 0).all(axis=1)
    np.testing.assert_allclose(
        points[interior], preference_points(problem, rays[interior]), atol=atol
    )


# ------------------------------------------------------------- the starts
def test_reproducible_with_a_seed():
    problem = ZDT1(n_var=8)
    for method in METHODS:
        a = trace(problem, method, RAYS, seed=7)
        b = trace(problem, method, RAYS, seed=7)
        np.testing.assert_array_equal(a.xs, b.xs)
        np.testing.assert_array_equal(a.points, b.points)
        assert_on_the_front(problem, a.points)
        if method == "tchebycheff":
            assert_at_the_preference_points(problem, RAYS, a.points)
    c = trace(problem, "linear", RAYS, seed=8)
    assert not np.array_equal(trace(problem, "linear", RAYS, seed=7).xs, c.xs)
    gen = trace(problem, "stch", RAYS, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(gen.xs, trace(problem, "stch", RAYS, seed=7).xs)


def test_given_starts():
    problem = ZDT2(n_var=5)
    x0 = np.full(5, 0.5)
    one = trace(problem, "tchebycheff", RAYS[:3], x0=x0)
    each = trace(problem, "tchebycheff", RAYS[:3], x0=np.tile(x0, (3, 1)))
    np.testing.assert_array_equal(one.points, each.points)
    assert_on_the_front(problem, one.points)
    assert_at_the_preference_points(problem, RAYS[:3], one.points)


def test_ray_k_starts_at_the_kth_draw_of_the_seed():
    problem, rays = ZDT2(n_var=5), RAYS[1:5]
    rng = np.random.default_rng(11)
    drawn = np.array([rng.uniform(problem.lower, problem.upper) for _ in rays])
    for method in ("tchebycheff", "pareto-mtl"):
        seeded = trace(problem, method, rays, seed=11)
        given = trace(problem, method, rays, x0=drawn)
        np.testing.assert_array_equal(seeded.xs, given.xs)
        assert_on_the_front(problem, seeded.points)
    assert_at_the_preference_points(problem, rays, trace(problem, "tchebycheff", rays).points)


@pytest.mark.parametrize("method", list(PER_RAY))
def test_a_method_with_a_seed_starts_where_ray_0_of_trace_does(method):
    problem = ZDT1(n_var=5)
    alone = PER_RAY[method](problem, RAYS[1], seed=3)
    np.testing.assert_array_equal(alone.x, trace(problem, method, RAYS[1:3], seed=3).xs[0])
    assert_on_the_front(problem, alone.values)
    if method in ("tchebycheff", "epo"):  # the exact preference point
        assert_at_the_preference_points(problem, RAYS[1], alone.values)
    elif method == "linear":  # min r1 s^2 + r2 (1 - s) over s in [0, 1]: s = r2 / (2 r1) = 3 -> 1
        np.testing.assert_allclose(alone.values, [1.0, 0.0], atol=1e-12)


def test_ray_set_and_walk_methods_start_where_trace_does():
    problem = ConvexQuadratic(n_var=3)
    R = simplex_rays(2, 3)
    alone = pareto_mtl(problem, R[0], rays=R, index=0, seed=4)
    np.testing.assert_array_equal(alone.x, trace(problem, "pareto-mtl", R, seed=4).xs[0])
    walked = continuation(problem, 5, seed=4)
    np.testing.assert_array_equal(walked.xs, trace(problem, "continuation", RAYS[:5], seed=4).xs)
    assert_on_the_front(problem, alone.values)
    assert_on_the_front(problem, walked.points)


def test_bad_starts_name_x0():
    problem = ZDT1(n_var=4)
    with pytest.raises(ValueError, match=r"x0 must have shape \(4,\) or \(8, 4\)"):
        trace(problem, "linear", RAYS, x0=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"x0 must be finite with shape \(4,\)"):
        trace(problem, "linear", RAYS, x0=np.full(4, np.nan))
    with pytest.raises(ValueError, match=r"x0 must be finite with shape \(4,\)"):
        trace(problem, "continuation", RAYS, x0=np.zeros((8, 4)))  # a walk has one start


# ------------------------------------------------------------- the registry
def test_every_method_is_listed_with_its_kind():
    names = available_front_methods()
    assert names == ("continuation", "epo", "linear", "pareto-mtl", "stch", "tchebycheff")
    kinds = {name: front_method_info(name).kind for name in names}
    assert kinds["pareto-mtl"] == "ray-set" and kinds["continuation"] == "walk"
    assert {kinds[name] for name in PER_RAY} == {"per-ray"}
    for name in PER_RAY:
        info = front_method_info(name)
        assert isinstance(info, FrontMethodInfo) and info.obj is PER_RAY[name]
        assert info.name == name and info.paper and info.summary
    assert FrontMethodInfo is Entry


def test_names_are_forgiving_and_unknown_names_listed():
    assert front_method_info("Pareto_MTL").name == "pareto-mtl"
    with pytest.raises(ValueError, match=r"unknown front method 'nope'.*available: .*tchebycheff"):
        front_method_info("nope")
    with pytest.raises(ValueError, match=r"unknown front method 'nope'"):
        trace(ZDT1(n_var=4), "nope", RAYS)


def test_registering_checks_kind_and_name():
    with pytest.raises(ValueError, match="kind must be one of"):
        register_front_method("mine", kind="grid", paper="", summary="")
    with pytest.raises(ValueError, match="'epo' is already registered"):
        register_front_method("epo", kind="per-ray", paper="", summary="")(epo_search)
    assert available_front_methods().count("epo") == 1
