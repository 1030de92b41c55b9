"""The issue's scale numbers on ZDT1, reproduced, and the convention that gives them.

The exact point of a preference vector r is the front point where r_1 f_1 = r_2 f_2.
On ZDT1, with u = sqrt(f1) and f2 = 1 - u: r_1 u^2 = r_2 (1 - u), so
u = (-r_2 + sqrt(r_2^2 + 4 r_1 r_2)) / (2 r_1) (and f = (1, 0) when r_1 = 0).
With r = (t, 1 - t), t = linspace(0, 1, K) (both ends included), against the front
sampled evenly in f1 with 1000 points (ZDT1().pareto_front(1000), as pymoo spaces
it): K = 16 gives IGD 0.0255 and 96.03 % of the true hypervolume 1.21 - 1/3 (reference
(1.1, 1.1)); K = 64 gives 0.0061 and 99.08 %. Rays on the open interval, or evenly
spread in angle, do not reproduce these numbers; neither does a front sampled
evenly in arc length (IGD 0.029).
"""

import numpy as np
import pytest
from scipy.optimize import brentq

from paretomtl.indicators import hypervolume, igd
from paretomtl.problems import ZDT1

pytest.importorskip("moocore")

TRUE_HV = 1.21 - 1 / 3  # 1.1^2 - integral_0^1 (1 - sqrt(f1)) df1


def exact_points(t):
    r1, r2 = np.asarray(t, dtype=float), 1.0 - np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (-r2 + np.sqrt(r2**2 + 4 * r1 * r2)) / (2 * r1)
    u = np.where(r1 == 0, 1.0, u)
    return np.stack([u**2, 1 - u], axis=1)


def test_exact_points_meet_their_preference_and_bisection():
    t = np.linspace(0, 1, 16)
    F = exact_points(t)
    np.testing.assert_allclose(t * F[:, 0], (1 - t) * F[:, 1], atol=1e-15)
    for ti, f in zip(t[1:-1], F[1:-1], strict=True):  # independent: bisection in f1
        f1 = brentq(lambda a, ti=ti: ti * a - (1 - ti) * (1 - np.sqrt(a)), 0, 1, xtol=1e-15)
        assert f[0] == pytest.approx(f1, abs=1e-12)


@pytest.mark.parametrize(("K", "want_igd", "want_hv"), [(16, 0.026, 0.960), (64, 0.006, 0.991)])
def test_issue_numbers(K, want_igd, want_hv):
    F = exact_points(np.linspace(0, 1, K))
    front = ZDT1().pareto_front(1000)
    assert round(igd(F, front), 3) == want_igd
    assert round(hypervolume(F, [1.1, 1.1]) / TRUE_HV, 3) == want_hv


def test_other_conventions_do_not_reproduce_them():
    front = ZDT1().pareto_front(1000)
    open_rays = exact_points(np.linspace(0, 1, 18)[1:-1])
    assert round(hypervolume(open_rays, [1.1, 1.1]) / TRUE_HV, 3) != 0.960
    angle = np.linspace(0, np.pi / 2, 16)
    angle_rays = exact_points(np.cos(angle) / (np.cos(angle) + np.sin(angle)))
    assert round(igd(angle_rays, front), 3) != 0.026
    closed = exact_points(np.linspace(0, 1, 16))
    assert round(igd(closed, ZDT1().pareto_front(1000, spacing="arclength")), 3) != 0.026
