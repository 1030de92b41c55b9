"""examples/two_objective_toy.py: its analytic gradients and its computed Pareto set."""

from __future__ import annotations

import numpy as np
import pytest

from tests.examples import example_module


@pytest.fixture(scope="module")
def toy_module():
    with example_module("two_objective_toy") as module:
        yield module


def smooth_points(module, n: int, seed: int = 0) -> np.ndarray:
    """Random points of [-10, 10]^2 away from the kinks: the floors of the log valleys
    (|u| small) and the gates' switch at x2 = 0."""
    x = np.random.default_rng(seed).uniform(-10.0, 10.0, (4 * n, 2))
    th = np.tanh(x[:, 1])
    u1 = -0.5 * x[:, 0] - 3.5 + th
    u2 = -0.5 * x[:, 0] + 3.5 - th
    keep = (np.abs(u1) > 0.05) & (np.abs(u2) > 0.05) & (np.abs(x[:, 1]) > 0.01)
    return x[keep][:n]


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_jacobian_matches_central_differences(toy_module, scale):
    x = smooth_points(toy_module, 300)
    _, J = toy_module.toy(x, scale)
    h = 1e-6
    for k in range(2):
        step = np.zeros(2)
        step[k] = h
        up, _ = toy_module.toy(x + step, scale)
        down, _ = toy_module.toy(x - step, scale)
        fd = (up - down) / (2 * h)  # (n, 2): d L_i / d x_k
        np.testing.assert_allclose(J[:, :, k], fd, rtol=1e-6, atol=1e-6)


def test_losses_are_the_authors_formulas(toy_module):
    # CAGrad's toy.py at three points, evaluated by hand: (0, 0) (both gates shut),
    # (9, 9) (upper half plane) and (0, -8) (lower half plane).
    losses, _ = toy_module.toy(np.array([[0.0, 0.0], [9.0, 9.0], [0.0, -8.0]]))
    t9, gate_up, gate_down = np.tanh(9.0), np.tanh(4.5), np.tanh(4.0)
    expected = [
        [0.0, 0.0],
        [(np.log(8.0 - t9) + 6) * gate_up, (np.log(1.0 + t9) + 6) * gate_up],
        [(4.9 - 20.0) * gate_down, (4.9 - 20.0) * gate_down],
    ]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)


def test_pareto_set_is_pareto_critical_and_undominated(toy_module):
    pareto = toy_module.pareto_set(n=21, grid=41)
    assert len(pareto) == 21  # no scalarised minimiser dominated by another
    np.testing.assert_allclose(pareto[[0, -1], 0], [-7.0, 7.0], atol=1e-5)
    losses, J = toy_module.toy(pareto)
    # MGDA's min-norm point of the hull of the two gradients is 0 on the set.
    assert max(toy_module.mgda_norm(j) for j in J) < 1e-6
    # No point of a grid over the domain dominates a point of the set.
    axis = np.linspace(-10.0, 10.0, 201)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    grid_losses, _ = toy_module.toy(grid)
    better = (grid_losses[None] <= losses[:, None] + 1e-12).all(axis=-1)
    assert not better.any()
