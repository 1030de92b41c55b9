"""GD, IGD and IGD+: hand-worked tiny sets, a numpy oracle, the EMO 2015 example."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from paretomtl.indicators import gd, igd, igd_plus

pytest.importorskip("moocore")


def oracle(P, R):
    """(GD, IGD, IGD+) from their definitions, in plain numpy."""
    D = cdist(P, R)
    plus = np.sqrt((np.maximum(P[:, None, :] - R[None, :, :], 0.0) ** 2).sum(axis=2))
    return D.min(axis=1).mean(), D.min(axis=0).mean(), plus.min(axis=0).mean()


def test_by_hand_one_point_two_targets():
    # P = {(0,0)}, R = {(1,0), (3,0)}: IGD = (1 + 3)/2 = 2; GD = 1 (nearest is (1,0));
    # IGD+: P is better than both targets, so d+ = 0.
    P, R = [[0.0, 0.0]], [[1.0, 0.0], [3.0, 0.0]]
    assert igd(P, R) == 2.0
    assert gd(P, R) == 1.0
    assert igd_plus(P, R) == 0.0


def test_by_hand_two_points():
    # P = {(0,1), (1,1)}, R = {(0,1), (1,0)}. GD: (0 + 1)/2. IGD: (0 + 1)/2, since
    # (1,0) is 1 from (1,1) and sqrt 2 from (0,1). IGD+ from (1,0): d+((1,0),(1,1))
    # = |(0, 1)| = 1, d+((1,0),(0,1)) = |(0, 1)| = 1: (0 + 1)/2.
    P, R = [[0.0, 1.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]
    assert gd(P, R) == 0.5
    assert igd(P, R) == 0.5
    assert igd_plus(P, R) == 0.5


def test_ishibuchi_2015_example_4():
    # IGD prefers B, although A is better in the Pareto sense; IGD+ prefers A.
    # IGD+(A) by hand: the five targets' nearest d+ are 2, 1, sqrt 2, 1, 2.
    R = np.array([[10, 0], [6, 1], [2, 2], [1, 6], [0, 10]], dtype=float)
    A = np.array([[4, 2], [3, 3], [2, 4]], dtype=float)
    B = np.array([[8, 2], [4, 4], [2, 8]], dtype=float)
    assert igd(A, R) > igd(B, R)
    assert igd_plus(A, R) == pytest.approx((6 + np.sqrt(2)) / 5, rel=1e-15)
    assert igd_plus(A, R) < igd_plus(B, R)


@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_match_the_definitions_on_random_sets(m):
    rng = np.random.default_rng(m)
    for _ in range(10):
        P = rng.random((rng.integers(1, 30), m))
        R = rng.random((rng.integers(1, 40), m))
        want = oracle(P, R)
        got = (gd(P, R), igd(P, R), igd_plus(P, R))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        assert got[2] <= got[1] + 1e-15


def test_front_against_itself_is_zero():
    R = np.random.default_rng(0).random((20, 3))
    assert gd(R, R) == igd(R, R) == igd_plus(R, R) == 0.0
    assert gd(R[:5], R) == 0.0


@pytest.mark.parametrize("fn", [gd, igd, igd_plus])
def test_bad_input_names_the_argument(fn):
    R = [[0.0, 1.0], [1.0, 0.0]]
    with pytest.raises(ValueError, match=r"^points must hold at least one point"):
        fn(np.empty((0, 2)), R)
    with pytest.raises(ValueError, match=r"^front must hold at least one point"):
        fn(R, np.empty((0, 2)))
    with pytest.raises(ValueError, match=r"^points must be a 2-D array"):
        fn([0.5, 0.5], R)
    with pytest.raises(ValueError, match=r"^front\[1, 1\] is nan"):
        fn(R, [[0.0, 1.0], [1.0, np.nan]])
    with pytest.raises(ValueError, match=r"^points has 3 objectives .* front has 2"):
        fn([[0.0, 1.0, 2.0]], R)
