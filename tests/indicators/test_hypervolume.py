"""Hypervolume: hand-worked 2-D and 3-D cases, an inclusion-exclusion oracle, edges."""

import itertools

import numpy as np
import pytest

from paretomtl.indicators import hypervolume
from paretomtl.problems import ZDT1

pytest.importorskip("moocore")


def inclusion_exclusion(P, r):
    """HV as the signed sum over subsets S of the box [max over S, r] (exact, slow)."""
    P = P[np.all(P < r, axis=1)]
    total = 0.0
    for k in range(1, len(P) + 1):
        for S in itertools.combinations(range(len(P)), k):
            corner = P[list(S)].max(axis=0)
            total += (-1) ** (k + 1) * np.prod(r - corner)
    return total


def test_2d_by_hand():
    # Sweep in f1: [1,2] x [3,4] + [2,3] x [2,4] + [3,4] x [1,4] = 1 + 2 + 3 = 6.
    P = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(P, [4.0, 4.0]) == 6.0
    # A dominated point, a duplicate and a point beyond the reference add nothing.
    more = np.vstack([P, [[2.5, 2.5], [2.0, 2.0], [0.5, 4.5]]])
    assert hypervolume(more, [4.0, 4.0]) == 6.0


def test_3d_by_inclusion_exclusion_by_hand():
    # Boxes to r = (4, 4, 4): 3*2*1 + 2*1*3 + 1*3*2 = 18; pairwise corners (2,3,3),
    # (3,2,3), (3,3,2) give 2 each: -6; the triple corner (3,3,3) gives +1: 13.
    P = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 1.0], [3.0, 1.0, 2.0]])
    assert hypervolume(P, [4.0, 4.0, 4.0]) == 13.0
    assert inclusion_exclusion(P, np.array([4.0, 4.0, 4.0])) == 13.0


@pytest.mark.parametrize("m", [2, 3, 4])
def test_matches_inclusion_exclusion_on_random_sets(m):
    rng = np.random.default_rng(m)
    for _ in range(20):
        P = rng.random((rng.integers(1, 8), m))
        r = rng.uniform(0.7, 1.2, size=m)
        assert hypervolume(P, r) == pytest.approx(inclusion_exclusion(P, r), rel=1e-12, abs=1e-15)


def test_reference_dominated_by_nothing_gives_zero():
    assert hypervolume([[5.0, 1.0], [1.0, 5.0]], [4.0, 4.0]) == 0.0
    assert hypervolume([[4.0, 1.0]], [4.0, 4.0]) == 0.0  # on the boundary: not strict
    assert hypervolume(np.empty((0, 3)), [1.0, 1.0, 1.0]) == 0.0


def test_one_objective():
    assert hypervolume([[0.25], [0.5]], [1.0]) == 0.75


def test_true_zdt1_front_approaches_the_analytic_value():
    # HV of the whole front for r = (1.1, 1.1): 1.1^2 minus the area under
    # f2 = 1 - sqrt(f1) on [0, 1], i.e. 1.21 - 1/3; a finite sample's staircase
    # misses about half a step per point.
    exact = 1.21 - 1 / 3
    for n in (100, 10_000):
        hv = hypervolume(ZDT1().pareto_front(n), [1.1, 1.1])
        assert 0 < exact - hv < 1.0 / n


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"^points must be a 2-D array"):
        hypervolume([1.0, 2.0], [3.0, 3.0])
    with pytest.raises(ValueError, match=r"^points\[1, 0\] is nan"):
        hypervolume([[1.0, 2.0], [np.nan, 1.0]], [3.0, 3.0])
    with pytest.raises(ValueError, match=r"^reference must have shape \(2,\)"):
        hypervolume([[1.0, 2.0]], [3.0, 3.0, 3.0])
    with pytest.raises(ValueError, match=r"^reference must be finite"):
        hypervolume([[1.0, 2.0]], [3.0, np.inf])
