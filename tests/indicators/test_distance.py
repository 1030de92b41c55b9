"""GD, IGD and IGD+: hand-worked tiny sets, a numpy oracle, the EMO 2015 example.

Every test runs twice: with moocore (skipped where it is not installed) and without it
(hidden from the import system), where the numpy route computes the three indicators;
the two routes agree within 1e-12.
"""

import importlib.util
import sys

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from paretomtl.indicators import gd, hypervolume, igd, igd_plus
from paretomtl.problems import DTLZ2, ZDT1

HAS_MOOCORE = importlib.util.find_spec("moocore") is not None


@pytest.fixture(autouse=True, params=["moocore", "numpy"])
def route(request, monkeypatch):
    """Which route computes the indicators: moocore's, or numpy's without moocore."""
    if request.param == "moocore" and not HAS_MOOCORE:
        pytest.skip("moocore is not installed")
    if request.param == "numpy":
        monkeypatch.setitem(sys.modules, "moocore", None)  # import moocore fails
    return request.param


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


def test_the_numpy_route_equals_moocore(route):
    if route == "numpy" or not HAS_MOOCORE:
        pytest.skip("compares the numpy route with moocore, from the moocore run")
    rng = np.random.default_rng(7)
    cases = [
        (rng.random((40, 2)), ZDT1().pareto_front(1000)),
        (ZDT1().pareto_front(1000)[::37] + 0.01, ZDT1().pareto_front(1000)),
        (rng.random((3000, 3)), DTLZ2().pareto_front(900)),  # many blocks of pairs
        (rng.integers(0, 3, (50, 4)).astype(float), rng.integers(0, 3, (60, 4)).astype(float)),
        (rng.standard_normal((25, 1)) * 1e6, rng.standard_normal((30, 1)) * 1e-6),
    ]
    for P, R in cases:
        with_moocore = (gd(P, R), igd(P, R), igd_plus(P, R))
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(sys.modules, "moocore", None)
            with_numpy = (gd(P, R), igd(P, R), igd_plus(P, R))
        np.testing.assert_allclose(with_numpy, with_moocore, rtol=1e-12, atol=0)


def test_without_moocore_only_the_hypervolume_needs_it(route):
    if route != "numpy":
        pytest.skip("the numpy route")
    front = ZDT1().pareto_front(101)
    assert gd(front[::10], front) == 0.0
    with pytest.raises(ImportError, match=r"pip install 'paretomtl\[indicators\]'"):
        hypervolume(front, reference=[1.1, 1.1])
