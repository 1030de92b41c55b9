"""Tchebycheff under tiny weights: converged=True only at the true minimiser.

The min-max stopping test once compared the unit step with the largest row
norm at the start; with r = (1e-8, 1) on ZDT1 the step's multipliers sit on the
1e-8 row, whose residual that scale hid, and the run claimed convergence with
the max 1.5e-4 above its minimum. Every run here is checked against the closed
form of :math:`\\min_x \\max_i r_i f_i(x)` (z = the ideal point, 0 on both
problems): a converged run must be there; a run that is not there must say so.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy.optimize import brentq

from paretomtl.front import tchebycheff
from paretomtl.front.scalarization import tchebycheff_pass
from paretomtl.problems import ZDT1, ParetoMTLToy

EPSILONS = (1e-8, 1e-6, 1e-4, 1e-2)
RAYS = [(eps, 1.0) for eps in EPSILONS] + [(1.0, eps) for eps in EPSILONS]
PROBLEMS = {"zdt1": ZDT1, "paretomtl-toy": ParetoMTLToy}
# Runs that end honestly with converged=False: test_crawls_converge, strict xfails.
CRAWLS = {
    ("zdt1", (1.0, 1e-8)): "measured: 2000 iterations (max_iter), the max 5.5e-8 "
    "against 1.0e-8 (g = 5.5 still): the term 1e-8 f2 moves g only through slopes "
    "3e-9 while x1 ~ 5e-8 has curvature ~4e2 in it, so the min-max step's one t cannot "
    "serve both",
    ("paretomtl-toy", (1.0, 1e-8)): "measured: 176 iterations, the max 2e-12 below "
    "the closed form, but the relative stationarity stalls at 5e-6 (> 1e-6): f1, "
    "curvature 2 and multiplier 3.7e-6, leaves an offset ~5e-10 across the Pareto set "
    "that the linearised steps remove by less than 4 ulps of the max per step",
}


def zdt1_minimum(r1: float, r2: float) -> float:
    """min max(r1 f1, r2 f2) on ZDT1 (z = 0).

    Any x with g > 1 is dominated by the same x1 with g = 1, so the minimum is on
    the front f2 = 1 - sqrt(f1), f1 in [0, 1], where r1 f1 rises from 0 and
    r2 f2 falls to 0: it is where they meet. With s = sqrt(f1),
    r1 s^2 + r2 s - r2 = 0, s = 2 r2 / (r2 + sqrt(r2^2 + 4 r1 r2)) (the form without
    cancellation when r1 << r2), and the minimum is r1 s^2.
    """
    s = 2.0 * r2 / (r2 + np.sqrt(r2 * r2 + 4.0 * r1 * r2))
    return r1 * s * s


def toy_minimum(r1: float, r2: float) -> float:
    """min max(r1 f1, r2 f2) on the Pareto MTL toy (z = 0), any dimension.

    Projecting x onto the segment [-a, a] lowers both objectives, so the minimum
    is on it: x = s a, f1 = 1 - exp(-(1 - s)^2), f2 = 1 - exp(-(1 + s)^2), with
    r1 f1 falling and r2 f2 rising in u = 1 + s in [0, 2]: where they meet. The
    root is found in u (about 1e-4 for r = (1e-8, 1)) so that its relative
    accuracy is that of the minimum.
    """

    def terms(u: float) -> tuple[float, float]:
        return r1 * -np.expm1(-((2.0 - u) ** 2)), r2 * -np.expm1(-(u * u))

    u = brentq(lambda u: terms(u)[0] - terms(u)[1], 0.0, 2.0, xtol=1e-300, rtol=1e-15)
    return max(terms(u))


MINIMA = {"zdt1": zdt1_minimum, "paretomtl-toy": toy_minimum}


@cache
def run(name: str, r: tuple[float, float]):
    """tchebycheff on ``name`` for ray r, from the default seed-0 start."""
    problem = PROBLEMS[name]()
    x0 = np.random.default_rng(0).uniform(problem.lower, problem.upper)
    return tchebycheff(problem, list(r), x0)


def relative_error(objective: float, minimum: float) -> float:
    return abs(objective - minimum) / minimum


def test_closed_forms_meet_the_preference():
    # the minimum is where the terms meet: check it against the front itself
    for r1, r2 in RAYS:
        phi = zdt1_minimum(r1, r2)
        f1 = phi / r1
        assert r2 * (1.0 - np.sqrt(f1)) == pytest.approx(phi, rel=1e-12)
        phi = toy_minimum(r1, r2)
        u = 2.0 - np.sqrt(-np.log1p(-phi / r1))  # f1 = phi / r1 at x = (u - 1) a
        assert r2 * -np.expm1(-(u * u)) == pytest.approx(phi, rel=1e-9)
    assert zdt1_minimum(1e-8, 1.0) == pytest.approx(1e-8 * (1.0 - 2e-8), rel=1e-15)


def test_reproduction_lands_on_the_minimiser():
    # helper-34's case: was converged=True with the max 1.5e-4 above the minimum
    res = run("zdt1", (1e-8, 1.0))
    err = relative_error(res.objective, zdt1_minimum(1e-8, 1.0))
    assert not res.converged or err <= 1e-9, (res.converged, err)
    assert res.converged and err <= 1e-9  # and the fix gets there


@pytest.mark.parametrize("r", RAYS, ids=str)
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_converged_only_at_the_closed_form(name, r):
    # The stopping test is relative stationarity tol = 1e-8, not an objective
    # tolerance; measured, every converged run of this sweep is within 1.8e-10 of the
    # minimum (ZDT1, r = (1e-6, 1), the worst), so the brief's 1e-9 is held here.
    res = run(name, r)
    err = relative_error(res.objective, MINIMA[name](*r))
    assert not res.converged or err <= 1e-9, err
    if (name, r) not in CRAWLS:  # where it can, it gets there
        assert res.converged


@pytest.mark.parametrize(
    ("name", "r"),
    [
        pytest.param(*case, marks=pytest.mark.xfail(strict=True, reason=why))
        for case, why in CRAWLS.items()
    ],
)
def test_crawls_converge(name, r):
    assert run(name, r).converged


@cache
def run_near_the_toy_set():
    """helper-34's second case: a pass from within 1e-5 of the Pareto set, near f2's
    minimiser x = -a, where B = (1e-8 grad f1, grad f2) is badly conditioned."""
    problem = ParetoMTLToy(20)
    a = np.full(20, 1.0 / np.sqrt(20))
    noise = np.random.default_rng(1).standard_normal(20) / np.sqrt(20)
    return tchebycheff_pass(problem, [1e-8, 1.0], (-1.0 + 1e-4) * a + 1e-5 * noise)


def test_toy_near_its_pareto_set_is_honest():
    res = run_near_the_toy_set()
    err = relative_error(res.objective, toy_minimum(1e-8, 1.0))
    assert not res.converged or err <= 1e-9, err


@pytest.mark.xfail(
    strict=True,
    reason="measured: from 1e-5 off the Pareto set near x = -a the min-max steps "
    "crawl (1855 iterations, converged=False, max 1e-8 relative above its minimum)",
)
def test_toy_near_its_pareto_set_converges_quickly():
    res = run_near_the_toy_set()
    assert res.converged and res.iterations <= 200


@pytest.mark.parametrize("c", [1e-12, 1e-4, 1e4, 1e12], ids=str)
@pytest.mark.parametrize("base", [(1e-8, 1.0), (0.3, 0.7)], ids=str)
def test_scaling_the_preference_changes_nothing(base, c):
    # r and c r have the same minimisers: the same steps, the same stop, the max
    # times c (with t = 1 in the test, c = 1e4 once stopped 2e-5 above the minimum)
    problem = ZDT1()
    x0 = np.random.default_rng(0).uniform(problem.lower, problem.upper)
    one = tchebycheff(problem, list(base), x0)
    scaled = tchebycheff(problem, [c * base[0], c * base[1]], x0)
    np.testing.assert_allclose(scaled.x, one.x, rtol=1e-12)  # r / sum(r) rounds apart
    assert scaled.converged and one.converged
    assert scaled.iterations == one.iterations
    assert scaled.objective == pytest.approx(c * one.objective, rel=1e-12)
    err = relative_error(scaled.objective, zdt1_minimum(c * base[0], c * base[1]))
    assert err <= 1e-9, err
