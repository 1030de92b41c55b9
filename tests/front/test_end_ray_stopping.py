"""The end-ray pass stops at float64's floor, counts its iterations and says when it ran out.

The bug: ``linear_scalarization(ParetoMTLToy(20), [0, 1], x0)`` took 10 005 iterations
(4 s) and said ``converged=True``. Its first pass ends at x = -a in 5 iterations, where
grad f2 = 0; the second pass (f1 lifted to the weight 1e-8) asked for a projected
gradient below 7e-18, under the rounding of grad f2 (about 1e-16), so Armijo, whose
demanded decrease was under the rounding of phi, accepted steps that changed nothing
until ``max_iter``; the end-ray wrapper then called the capped pass converged because its
point was stationary.

Closed forms used here. Pareto MTL toy, ray (0, 1), x = s a (|a| = 1), delta = 1 + s:
the lifted linear scalarisation 1e-8 f1 + f2 is stationary where
delta e^{-delta^2} = 1e-8 (2 - delta) e^{-(2 - delta)^2} (delta = 3.66e-10: the
Pareto end -a moved by the lift); STCH's softmax weights scale the 1e-8 by
exp((1e-8 f1 - f2) / mu); Tchebycheff and EPO meet the lifted preference,
1 - e^{-delta^2} = 1e-8 (1 - e^{-(2 - delta)^2}) (delta = 9.9e-5). ZDT1: the ends
(0, 1) and (1, 0) themselves (the binding bounds are held). DTLZ2, ray e_k: the face
f_k = 0 of the unit sphere, at a corner for the linear-like methods (1e-8 (f_i + f_j)
is least at a corner of the concave arc) and at its middle (1/sqrt 2 twice) for
Tchebycheff and EPO.
"""

import math

import numpy as np
import pytest

import paretomtl.front._end_rays as end_rays
from paretomtl.front import EDGE_WEIGHT, linear_scalarization, tchebycheff, trace
from paretomtl.front._common import finish
from paretomtl.front.scalarization import linear_pass, tchebycheff_pass
from paretomtl.problems import DTLZ2, ZDT1, ParetoMTLToy

METHODS = ("linear", "stch", "tchebycheff", "epo")
W = EDGE_WEIGHT
MU = 0.01  # STCH's default

TOY = ParetoMTLToy(20)
A = TOY._a  # a = (1, ..., 1) / sqrt(20), |a| = 1
TOY_RAYS = np.array([[0.0, 1.0], [1.0, 0.0]])
VERTICES = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
CASES = {
    "toy": (TOY, TOY_RAYS),
    "zdt1": (ZDT1(), TOY_RAYS),
    "dtlz2": (DTLZ2(), np.vstack([VERTICES, [[0.0, 0.5, 0.5]]])),
}


def _fixed_point(step, delta=0.0):
    for _ in range(50):
        delta = step(delta)
    return delta


def _delta_linear(weight=W):
    return _fixed_point(lambda d: weight * (2 - d) * math.exp(-((2 - d) ** 2) + d * d))


def _delta_stch():
    def step(d):
        f1, f2 = -math.expm1(-((2 - d) ** 2)), -math.expm1(-d * d)
        return _delta_linear(W * math.exp((W * f1 - f2) / MU)) if d else _delta_linear()

    return _fixed_point(step)


def _delta_tchebycheff():
    return _fixed_point(lambda d: math.sqrt(-math.log1p(-W * -math.expm1(-((2 - d) ** 2)))))


TOY_DELTA = {
    "linear": _delta_linear(),
    "stch": _delta_stch(),
    "tchebycheff": _delta_tchebycheff(),
    "epo": _delta_tchebycheff(),
}

_RUNS: dict = {}


def _traced(case: str, method: str):
    """trace(...) over the case's end rays, with every end-ray pass recorded.

    Returns the TraceResult and, per call of the second pass in order, (ray, first
    pass's iterations, second pass's iterations).
    """
    if (case, method) not in _RUNS:
        problem, rays = CASES[case]
        calls = []
        original = end_rays._second_pass

        def spy(single_pass, problem, r, first, options):
            out = original(single_pass, problem, r, first, options)
            calls.append((r.copy(), first.iterations, out.iterations - first.iterations))
            return out

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(end_rays, "_second_pass", spy)
            out = trace(problem, method, rays, seed=0)
        _RUNS[case, method] = (out, calls)
    return _RUNS[case, method]


def _toy_end(delta: float, ray: np.ndarray) -> np.ndarray:
    """x = s a with 1 - |s| = delta, on the side of the kept objective."""
    return (1.0 - delta) * (A if ray[0] > 0 else -A)


def test_the_reported_reproduction_stops_in_a_few_iterations_at_the_end():
    x0 = np.random.default_rng(0).uniform(-0.5, 0.5, 20)
    res = linear_scalarization(TOY, [0.0, 1.0], x0)
    assert res.iterations < 50, res.iterations  # was 10 005 (4 s)
    assert res.converged and res.stationarity < 1e-30
    # the lifted problem's minimiser, in closed form, to 1e-12 ...
    delta = TOY_DELTA["linear"]
    assert 3.6e-10 < delta < 3.7e-10
    np.testing.assert_allclose(res.x, -(1.0 - delta) * A, rtol=0, atol=1e-12)
    # ... which is the Pareto end x = -a moved by the lift, 2 EDGE_WEIGHT e^-4 in all
    assert np.linalg.norm(res.x + A) <= 2 * W * math.exp(-4) * (1 + 1e-6)
    f_end = [-math.expm1(-((2 - delta) ** 2)), -math.expm1(-delta * delta)]
    np.testing.assert_allclose(res.values, f_end, rtol=1e-12, atol=1e-24)


@pytest.mark.parametrize("method", METHODS)
def test_toy_end_rays_land_on_their_closed_form(method):
    out, calls = _traced("toy", method)
    for k, ray in enumerate(out.rays):
        np.testing.assert_allclose(out.xs[k], _toy_end(TOY_DELTA[method], ray), rtol=0, atol=1e-12)
        assert out.converged[k]
    assert all(second < 50 for _, _, second in calls), calls


@pytest.mark.parametrize("method", METHODS)
def test_toy_end_rays_take_fewer_than_50_iterations(method):
    # EPO's first pass took 2002 here (tests/front/test_epo_descent.py)
    out, _ = _traced("toy", method)
    assert out.iterations.max() < 50, out.iterations


@pytest.mark.parametrize("method", METHODS)
def test_zdt1_end_rays_reach_the_ends_of_the_front(method):
    out, calls = _traced("zdt1", method)
    np.testing.assert_allclose(out.points, [[1.0, 0.0], [0.0, 1.0]], rtol=0, atol=1e-12)
    assert out.converged.all()
    # a second pass takes one step per bound it meets (29 distance variables)
    assert all(second < 100 for _, _, second in calls), calls


@pytest.mark.parametrize("method", METHODS)
def test_dtlz2_vertex_rays_reach_their_face_of_the_sphere(method):
    out, calls = _traced("dtlz2", method)
    assert out.converged.all()
    np.testing.assert_allclose(np.linalg.norm(out.points, axis=1), 1.0, rtol=0, atol=1e-12)
    for k, ray in enumerate(out.rays[:3]):
        kept = int(np.argmax(ray))
        others = np.delete(out.points[k], kept)
        assert abs(out.points[k, kept]) < 1e-12
        if method in ("tchebycheff", "epo"):  # the middle of the face
            np.testing.assert_allclose(others, [math.sqrt(0.5)] * 2, rtol=0, atol=1e-12)
        else:  # a corner of the face: 1e-8 (f_i + f_j) is least there
            np.testing.assert_allclose(np.sort(others), [0.0, 1.0], rtol=0, atol=1e-12)
    # no pass runs to a cap (10 000, 2000, or 300 for the vertex rays' extra starts)
    assert all(second < 100 for _, _, second in calls), calls


@pytest.mark.parametrize("method", METHODS)
def test_iterations_count_every_pass_of_every_start(method):
    out, calls = _traced("dtlz2", method)
    rays = [tuple(r) for r, _, _ in calls]
    totals = [
        sum(first + second for r, first, second in calls if tuple(r) == tuple(ray))
        for ray in out.rays
    ]
    # vertex rays: 1 + 7 extra starts, each with its two passes; the edge ray: one of each
    assert [rays.count(tuple(ray)) for ray in out.rays] == [8, 8, 8, 1]
    assert out.iterations.tolist() == totals


def _end_point_pass(iterations, converged):
    """A single pass that lands on the toy's Pareto end -a (stationary) as told to."""

    def single_pass(problem, preference, x0, *, max_iter, tol):
        r = np.asarray(preference, dtype=float)
        x = -A.copy()
        values, jacobian = problem.evaluate(x)
        its = max_iter if iterations == "cap" else iterations
        return finish(problem, x, values, jacobian, float(r @ values), its, converged, "stub", r)

    return single_pass


@pytest.mark.parametrize(
    ("iterations", "converged", "expected"),
    [
        ("cap", False, False),  # ran out: not converged, though its point is stationary
        (7, False, True),  # stopped short of its own test at a stationary point (EPO)
        (7, True, True),
    ],
)
def test_a_pass_that_ran_out_of_iterations_is_not_converged(iterations, converged, expected):
    single_pass = _end_point_pass(iterations, converged)
    x0 = np.zeros(TOY.n_var)
    res = end_rays.run_with_end_rays(
        single_pass, TOY, [0.0, 1.0], x0, vertex_pass=single_pass, max_iter=40, tol=1e-8
    )
    assert res.stationarity < 1e-30  # the end point is Pareto critical either way
    assert res.converged is expected


def test_a_capped_first_or_second_pass_makes_a_real_run_unconverged():
    x0 = np.random.default_rng(0).uniform(-0.5, 0.5, 20)
    # linear: the first pass needs 5 iterations
    assert not linear_scalarization(TOY, [0.0, 1.0], x0, max_iter=3).converged
    assert linear_scalarization(TOY, [0.0, 1.0], x0, max_iter=6).converged
    # tchebycheff: the first pass needs 5, the second 22; all said converged before
    assert not tchebycheff(TOY, [0.0, 1.0], x0, max_iter=15).converged
    assert tchebycheff(TOY, [0.0, 1.0], x0, max_iter=40).converged


class _WithoutHvp:
    """The toy without Hessian-vector products: gradient steps only."""

    def __init__(self, problem):
        self.problem, self.n_var, self.n_obj = problem, problem.n_var, problem.n_obj
        self.lower, self.upper, self.ideal_point = problem.lower, problem.upper, np.zeros(2)

    def evaluate(self, x):
        return self.problem.evaluate(x)


@pytest.mark.parametrize("problem", [TOY, _WithoutHvp(TOY)], ids=["newton", "gradient"])
def test_the_lifted_pass_from_the_end_stops_at_the_rounding_floor(problem):
    """From x = -a exactly (grad f2 = 0), the weights (1e-8, 1): the second pass alone."""
    res = linear_pass(problem, [W, 1.0], -A.copy())
    assert res.iterations <= 20 and res.converged, (res.iterations, res.converged)
    delta = TOY_DELTA["linear"]
    np.testing.assert_allclose(res.x, -(1.0 - delta) * A, rtol=0, atol=1e-12)


def test_min_max_steps_stop_at_the_rounding_floor():
    res = tchebycheff_pass(TOY, [W, 1.0], -A.copy())
    assert res.iterations < 50 and res.converged, (res.iterations, res.converged)
    np.testing.assert_allclose(res.x, -(1.0 - TOY_DELTA["tchebycheff"]) * A, rtol=0, atol=1e-12)
