"""EPO's descent steps do not creep across a valley: the Pareto MTL toy with one objective kept.

The bug: ``epo_pass(ParetoMTLToy(20), [0, 1], x0)`` took 2002 iterations (8 s) to reach
x = -a, the minimiser of f2 = 1 - exp(-|x + a|^2), where Newton or a halved step gets
in one. With one objective kept EPO is in descent mode throughout, a gradient descent
on f2 with an Armijo test on the predicted decrease; at sigma = 1e-4 with t doubled after
each success, t settled at 1, the step x + a -> (1 - 2 e^{-q}) (x + a), q = |x + a|^2,
which crosses the valley (the curvature there is 2) and lowers f2 by only about 4 q^2,
so q fell like 1 / (4k) and the pass ran out at max_iter (2000) with |x + a| ~ 1e-2;
the Tchebycheff finish then took 2 iterations. sigma = 1/2 (the descent lemma's, as the
scalarisations use) accepts on a quadratic exactly the steps up to the line minimum,
each of which at least halves the distance in the valley.

Closed forms: ray (0, 1) keeps f2 alone, minimised at x = -a with f = (1 - e^{-4}, 0)
(|x - a| = 2); ray (1, 0) mirrors it at x = a.
"""

import math

import numpy as np
import pytest

import paretomtl.front.epo as epo_module
from paretomtl.front.epo import epo_pass
from paretomtl.problems import ParetoMTLToy

RAYS = {"(0, 1)": ([0.0, 1.0], -1.0), "(1, 0)": ([1.0, 0.0], 1.0)}  # ray, sign of its end


def _start(n_var: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, n_var)


def test_the_reported_reproduction_ends_at_minus_a_in_a_few_iterations():
    toy = ParetoMTLToy(20)
    res = epo_pass(toy, [0.0, 1.0], _start(20, 0))
    assert res.iterations < 50, res.iterations  # was 2002 (8 s)
    assert res.converged and res.stationarity < 1e-30
    np.testing.assert_allclose(res.x, -toy._a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.values, [-math.expm1(-4.0), 0.0], rtol=1e-12, atol=1e-24)


@pytest.mark.parametrize("ray", RAYS)
@pytest.mark.parametrize("n_var", [2, 20, 100])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_objective_kept_ends_at_its_minimiser_in_a_few_iterations(ray, n_var, seed):
    toy = ParetoMTLToy(n_var)
    preference, sign = RAYS[ray]
    res = epo_pass(toy, preference, _start(n_var, seed))
    assert res.iterations < 50, res.iterations  # every one of these took 2002 before
    assert res.converged
    np.testing.assert_allclose(res.x, sign * toy._a, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_var", [2, 20, 100])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_descent_step_in_the_valley_at_least_halves_the_distance(monkeypatch, n_var, seed):
    """The mechanism: in the valley (|x + a| < 1/2) no step goes past the line minimum.

    Before, the accepted steps there shrank |x + a| by about 1 % each (0.18 -> 0.17 ->
    ... over 2000 iterations). The iterates are read where epo_pass starts each
    iteration (its call of active_bounds).
    """
    toy = ParetoMTLToy(n_var)
    iterates = []
    original = epo_module.active_bounds

    def spy(problem, x, tol):
        iterates.append(x.copy())
        return original(problem, x, tol)

    monkeypatch.setattr(epo_module, "active_bounds", spy)
    epo_pass(toy, [0.0, 1.0], _start(n_var, seed))
    distance = np.linalg.norm(np.array(iterates) + toy._a, axis=1)
    in_valley = (distance[:-1] < 0.5) & (distance[:-1] > 0)
    assert in_valley.any(), distance
    assert (distance[1:][in_valley] <= 0.5 * distance[:-1][in_valley]).all(), distance
