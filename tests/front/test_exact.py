"""The exact preference points: closed forms, the equal-r_i f_i condition, the ends, ZDT3's
gaps, the error cases, and the issue's reference numbers on ZDT1."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.front import EDGE_WEIGHT, preference_points, simplex_rays, trace
from paretomtl.problems import (
    DTLZ2,
    ZDT1,
    ZDT2,
    ZDT3,
    ConvexQuadratic,
    ParetoMTLToy,
    Problem,
)

RAYS_64 = simplex_rays(2, 64)
ray_weight = st.floats(1e-6, 1.0, allow_nan=False, allow_infinity=False)


def lifted(R):
    R = np.asarray(R, dtype=float)
    return np.maximum(R, EDGE_WEIGHT * R.max(axis=1, keepdims=True))


def zdt1_closed_form(R):
    """s = sqrt(f1) solves r1 s^2 + r2 s - r2 = 0 (f2 = 1 - s); the stable root."""
    r1, r2 = lifted(R).T
    s = 2 * r2 / (r2 + np.sqrt(r2**2 + 4 * r1 * r2))
    return np.stack([s**2, 1 - s], axis=1)


def zdt2_closed_form(R):
    """f1 solves r2 f1^2 + r1 f1 - r2 = 0 (f2 = 1 - f1^2); the stable root."""
    r1, r2 = lifted(R).T
    f1 = 2 * r2 / (r1 + np.sqrt(r1**2 + 4 * r2**2))
    return np.stack([f1, 1 - f1**2], axis=1)


def assert_equal_products(R, F, rtol=1e-12):
    P = lifted(R) * F
    np.testing.assert_allclose(P, P[:, :1] * np.ones_like(P), rtol=rtol, atol=0)


@pytest.mark.parametrize(
    ("problem", "closed_form"), [(ZDT1(), zdt1_closed_form), (ZDT2(), zdt2_closed_form)]
)
def test_zdt_closed_forms(problem, closed_form):
    F = preference_points(problem, RAYS_64)
    want = closed_form(RAYS_64)
    np.testing.assert_allclose(F, want, rtol=1e-13, atol=1e-15)
    assert_equal_products(RAYS_64[1:-1], F[1:-1])


@given(ray_weight, ray_weight)
def test_zdt_closed_forms_random_rays(a, b):
    R = np.array([[a, b]])
    np.testing.assert_allclose(
        preference_points(ZDT1(n_var=3), R), zdt1_closed_form(R), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(
        preference_points(ZDT2(n_var=3), R), zdt2_closed_form(R), rtol=1e-12, atol=1e-15
    )


def test_dtlz2_on_the_sphere_with_equal_products():
    R = simplex_rays(3, 91)
    F = preference_points(DTLZ2(), R)
    np.testing.assert_allclose(np.linalg.norm(F, axis=1), 1.0, rtol=1e-14)
    assert (F > 0).all()
    assert_equal_products(R, F)
    np.testing.assert_allclose(
        preference_points(DTLZ2(), [[1.0, 1.0, 1.0]]), np.full((1, 3), 1 / np.sqrt(3)), rtol=1e-15
    )


def toy_front_residual(F):
    return np.sqrt(-np.log1p(-F[:, 0])) + np.sqrt(-np.log1p(-F[:, 1])) - 2.0


def quadratic_front_residual(F):
    return np.sqrt(F[:, 0]) + np.sqrt(F[:, 1]) - 1.0


@pytest.mark.parametrize(
    ("problem", "residual"),
    [(ParetoMTLToy(), toy_front_residual), (ConvexQuadratic(), quadratic_front_residual)],
)
def test_toy_and_quadratic(problem, residual):
    F = preference_points(problem, RAYS_64)
    assert_equal_products(RAYS_64[1:-1], F[1:-1])
    assert np.abs(residual(F)).max() < 1e-12
    # end rays: the lifted ray's point, to the rounding of the front's parametrisation
    assert_equal_products(RAYS_64[[0, -1]], F[[0, -1]], rtol=1e-8)


def test_quadratic_with_general_hessians():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 4, 4))
    H = np.einsum("kij,klj->kil", A, A) + 0.5 * np.eye(4)
    problem = ConvexQuadratic(n_var=4, hessians=H, lower=-5.0, upper=5.0)
    F = preference_points(problem, RAYS_64)
    assert_equal_products(RAYS_64[1:-1], F[1:-1], rtol=1e-11)
    assert np.all(np.diff(F[:, 0]) <= 0) and np.all(np.diff(F[:, 1]) >= 0)
    # on the front: the Tchebycheff method, which knows nothing of its parametrisation,
    # finds the same points
    R = simplex_rays(2, 7)[1:-1]
    out = trace(problem, "tchebycheff", R, seed=0)
    np.testing.assert_allclose(out.points, preference_points(problem, R), atol=1e-7)


def test_end_rays():
    F = preference_points(ZDT1(), [[1.0, 0.0], [0.0, 1.0]])
    # ray (1, 0) -> lifted (1, 1e-8): f1 = 1e-8 f2, about 1e-8, at the f1 = 0 end
    assert F[0, 0] == pytest.approx(EDGE_WEIGHT * F[0, 1], rel=1e-12)
    assert F[0, 1] == pytest.approx(1.0 - np.sqrt(F[0, 0]), rel=1e-15)
    assert F[0, 1] == pytest.approx(0.9999, rel=1e-7)
    # ray (0, 1) -> lifted (1e-8, 1): f2 = 1e-8 f1, about 1e-8, at the f1 = 1 end
    assert F[1, 0] == pytest.approx(1.0, abs=1e-7)
    assert F[1, 1] == pytest.approx(EDGE_WEIGHT, rel=1e-6)
    # DTLZ2: f proportional to 1 / r'
    F = preference_points(DTLZ2(), [[0.0, 0.0, 1.0], [0.0, 2.0, 2.0]])
    np.testing.assert_allclose(F[0], [np.sqrt(0.5), np.sqrt(0.5), np.sqrt(0.5) * 1e-8], rtol=1e-12)
    np.testing.assert_allclose(F[1], [1.0, 1e-8, 1e-8], rtol=1e-12)
    # the ray's scale does not matter, only its direction
    np.testing.assert_allclose(
        preference_points(ZDT1(), 7.0 * RAYS_64), preference_points(ZDT1(), RAYS_64), rtol=1e-14
    )


@pytest.mark.parametrize(("problem", "count"), [(ZDT1(n_var=5), 9), (ZDT2(n_var=5), 9)])
def test_the_tchebycheff_method_reaches_them(problem, count):
    R = simplex_rays(2, count)
    out = trace(problem, "tchebycheff", R, seed=0)
    F = preference_points(problem, R)
    np.testing.assert_allclose(out.points[1:-1], F[1:-1], atol=1e-6)
    # at the ends it holds x1 = 0 (or 1) and reaches the end itself, not the lifted
    # ray's point: on ZDT1 (0, 1) against (1e-8, 1 - sqrt(1e-8))
    np.testing.assert_allclose(out.points[[0, -1]], F[[0, -1]], atol=1.01e-4)


def test_zdt3_gaps_give_the_tchebycheff_point_of_the_front():
    problem = ZDT3()
    R = lifted(RAYS_64)
    F = preference_points(problem, RAYS_64)
    z = problem.ideal_point  # (0, -0.7734): preferences are measured from it
    dense = problem.pareto_front(200_001)
    ours = (R * (F - z)).max(axis=1)
    best_dense = (R[:, None, :] * (dense - z)[None, :, :]).max(axis=2).min(axis=1)
    assert (ours <= best_dense + 1e-15).all()  # nothing on the front does better
    assert np.allclose(ours, best_dense, rtol=1e-3, atol=1e-8)
    P = R * (F - z)
    crossing = np.abs(P[:, 0] - P[:, 1]) <= 1e-14
    assert 0 < crossing.sum() < len(R)  # some rays fall in the gaps
    pieces = np.array(ZDT3.pieces())
    for f1 in F[~crossing, 0]:  # each gap point is the end of a piece
        assert np.isclose(pieces, f1, rtol=1e-12, atol=0).any()


class _ThreeObjectiveUnknown(Problem):
    name = "unknown-3"

    def __init__(self):
        super().__init__(2, 3, 0.0, 1.0)


class _TwoObjectiveUnknown(Problem):
    name = "unknown-2"

    def __init__(self):
        super().__init__(2, 2, 0.0, 1.0)


@pytest.mark.parametrize("problem", [_ThreeObjectiveUnknown(), _TwoObjectiveUnknown()])
def test_unknown_problems_are_refused(problem):
    with pytest.raises(TypeError, match="does not know the true front"):
        preference_points(problem, simplex_rays(problem.n_obj, 3 if problem.n_obj == 2 else 1))


@pytest.mark.parametrize(
    ("rays", "match"),
    [
        ([0.5, 0.5], "shape"),
        (np.ones((2, 3)), "shape"),
        (np.empty((0, 2)), "shape"),
        ([[0.5, -0.5]], ">= 0"),
        ([[0.0, 0.0]], "not all zero"),
        ([[np.nan, 1.0]], "finite"),
    ],
)
def test_bad_rays(rays, match):
    with pytest.raises(ValueError, match=match):
        preference_points(ZDT1(), rays)


def test_not_a_problem():
    with pytest.raises(TypeError, match="Problem"):
        preference_points("zdt1", RAYS_64)


@pytest.mark.parametrize(("K", "want_igd", "want_hv"), [(16, 0.026, 0.960), (64, 0.006, 0.991)])
def test_issue_reference_numbers_on_zdt1(K, want_igd, want_hv):
    pytest.importorskip("moocore")
    from paretomtl.indicators import hypervolume, igd

    F = preference_points(ZDT1(), simplex_rays(2, K))
    front = ZDT1().pareto_front(1000)  # evenly spaced in f1, ends included
    assert round(igd(F, front), 3) == want_igd
    assert round(hypervolume(F, [1.1, 1.1]) / (1.21 - 1 / 3), 3) == want_hv
