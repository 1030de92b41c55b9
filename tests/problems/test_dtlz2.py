"""DTLZ2: values against pymoo, the sphere-octant front and its even spread."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from paretomtl.problems import DTLZ2


def test_values_match_pymoo():
    dtlz = pytest.importorskip("pymoo.problems.many.dtlz")
    ours = DTLZ2()
    assert ours.n_var == 12 and ours.n_obj == 3  # k = 10, as Deb et al. suggest
    theirs = dtlz.DTLZ2(n_var=12, n_obj=3)
    X = np.random.default_rng(0).random((50, 12))
    np.testing.assert_allclose(
        ours.evaluate_batch(X)[0], theirs.evaluate(X), rtol=1e-12, atol=1e-15
    )


def test_front_is_the_positive_unit_octant():
    F = DTLZ2().pareto_front(1000)
    assert np.all(F >= 0)
    np.testing.assert_allclose(np.linalg.norm(F, axis=1), 1.0, rtol=1e-14)


def test_pareto_set_has_the_distance_variables_at_one_half():
    X = DTLZ2(n_var=6).pareto_set(40)
    assert np.all(X[:, 2:] == 0.5)
    assert np.all((X[:, :2] >= 0) & (X[:, :2] <= 1))


@pytest.mark.parametrize("n", [15, 91, 500])
def test_front_points_are_evenly_spread(n):
    F = DTLZ2().pareto_front(n)
    nearest = cKDTree(F).query(F, k=2)[0][:, 1]
    assert nearest.min() / nearest.max() > 0.7
    # every point of the octant is within about one spacing of the sample
    spacing = np.sqrt((np.pi / 2) / n)  # octant area pi/2 shared by n points
    Z = np.abs(np.random.default_rng(1).normal(size=(20_000, 3)))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    assert cKDTree(F).query(Z)[0].max() < 1.2 * spacing


def test_only_area_spacing():
    with pytest.raises(ValueError, match="spacing must be one of 'area'"):
        DTLZ2().pareto_front(10, spacing="arclength")


def test_needs_a_distance_variable():
    with pytest.raises(ValueError, match="n_var must be >= 3"):
        DTLZ2(n_var=2)
