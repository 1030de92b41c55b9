"""Exact distance to the true front against a brute-force dense sample."""

import numpy as np
import pytest

from paretomtl.problems import available_problems, get_problem


@pytest.mark.parametrize("name", available_problems())
def test_points_of_the_front_are_at_distance_zero(name):
    p = get_problem(name)
    F = p.pareto_front(101)
    assert p.front_distance(F).max() < 1e-7


@pytest.mark.parametrize("name", available_problems())
def test_matches_a_dense_sample_from_above_and_within_its_gap(name):
    p = get_problem(name)
    rng = np.random.default_rng(7)
    F = p.pareto_front(40)
    P = F + rng.normal(scale=0.05, size=F.shape)  # off the front, both sides
    dense = p.pareto_front(200_000 if p.n_obj == 2 else 400_000)
    brute = np.array([np.sqrt(((dense - q) ** 2).sum(axis=1)).min() for q in P])
    d = p.front_distance(P)
    gap = 2e-4 if p.n_obj == 2 else 1e-2  # how far a sample point can be from the curve
    assert (d <= brute + 1e-7).all()  # never above a sampled point's distance
    assert (d >= brute - gap).all()


def test_dtlz2_closed_form_below_the_orthant():
    p = get_problem("dtlz2")
    d = p.front_distance(np.array([[-1.0, -2.0, -3.0], [2.0, -1.0, 0.0]]))
    np.testing.assert_allclose(d, [np.sqrt(4 + 4 + 9), np.sqrt(1 + 1)])


def test_bad_points_name_the_argument():
    with pytest.raises(ValueError, match="points"):
        get_problem("zdt1").front_distance(np.zeros((3, 3)))


@pytest.mark.parametrize("name", available_problems())
def test_ideal_point_is_the_fronts_componentwise_minimum(name):
    p = get_problem(name)
    dense = p.pareto_front(1_000_001 if p.n_obj == 2 else 400_000).min(axis=0)
    z = p.ideal_point
    assert (z <= dense + 1e-15).all()  # no sample point is below it
    assert (z >= dense - (1e-6 if p.n_obj == 2 else 1e-2)).all()  # the sample's gaps
    if name != "zdt3":
        np.testing.assert_array_equal(z, 0.0)
