"""The convex quadratic: closed-form front, general Hessians, construction checks."""

import numpy as np
import pytest

from paretomtl.problems import ConvexQuadratic


def random_spd(rng, n):
    A = rng.normal(size=(n, n))
    return A @ A.T + 0.5 * np.eye(n)


def test_default_front_is_sqrt_f1_plus_sqrt_f2_equal_one():
    for spacing in ("parameter", "arclength"):
        F = ConvexQuadratic().pareto_front(200, spacing=spacing)
        np.testing.assert_allclose(np.sqrt(F).sum(axis=1), 1.0, rtol=1e-13)


def test_general_closed_form_with_scaled_centers():
    rng = np.random.default_rng(0)
    centers = rng.uniform(-0.4, 0.4, size=(2, 3))
    D = np.linalg.norm(centers[1] - centers[0])
    F = ConvexQuadratic(3, centers=centers).pareto_front(50)
    np.testing.assert_allclose(np.sqrt(2 * F).sum(axis=1), D, rtol=1e-13)


def test_general_hessians_give_weighted_sum_stationary_points():
    rng = np.random.default_rng(1)
    H = np.stack([random_spd(rng, 4), random_spd(rng, 4)])
    centers = rng.uniform(-0.3, 0.3, size=(2, 4))
    p = ConvexQuadratic(4, centers=centers, hessians=H, lower=-5, upper=5)
    lam = np.linspace(0, 1, 9)
    X = p.pareto_set(9)
    for l, x in zip(lam, X, strict=True):
        J = p.evaluate(x)[1]
        np.testing.assert_allclose((1 - l) * J[0] + l * J[1], 0.0, atol=1e-12)
    np.testing.assert_allclose(p.hvp(X[3], np.eye(4)[1]), H[:, :, 1])
    assert "hessians" in repr(p)


def test_box_must_hold_the_pareto_set():
    with pytest.raises(ValueError, match="Pareto set leaves the box"):
        ConvexQuadratic(2, centers=[[2.0, 0.0], [-2.0, 0.0]])


@pytest.mark.parametrize(
    ("hessians", "match"),
    [
        (np.stack([np.eye(2), -np.eye(2)]), r"hessians\[1\] must be positive definite"),
        (np.stack([np.eye(2), [[1.0, 0.5], [0.0, 1.0]]]), r"hessians\[1\] must be symmetric"),
        (np.eye(2), r"hessians must be a finite array of shape \(2, 2, 2\)"),
    ],
)
def test_bad_hessians(hessians, match):
    with pytest.raises(ValueError, match=match):
        ConvexQuadratic(2, hessians=hessians)


def test_bad_centers_and_bounds():
    with pytest.raises(ValueError, match="centers must be"):
        ConvexQuadratic(2, centers=[[0.0, np.nan], [0.0, 0.0]])
    with pytest.raises(ValueError, match="lower < upper"):
        ConvexQuadratic(2, lower=1.0, upper=-1.0)
