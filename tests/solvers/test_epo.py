"""EPO's direction programs against a brute-force search over the simplex."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.solvers import epo, non_uniformity


def _grid(K: int, n: int) -> np.ndarray:
    """Every point of the simplex with coordinates in steps of 1/n."""
    rows = [c for c in itertools.product(range(n + 1), repeat=K - 1) if sum(c) <= n]
    return np.array([[*c, n - sum(c)] for c in rows], dtype=float) / n


def _program(C, l, r, eps, relaxed=False):
    """Objective vector, constraint rows and right-hand sides, written from the paper."""
    K = len(l)
    rl = r * l
    hat = rl / rl.sum()
    mu = float(np.sum(hat[hat > 0] * np.log(K * hat[hat > 0])))
    a = r * (np.log(K * np.maximum(hat, 1e-300)) - mu)
    Ca = C @ a
    if mu > eps:
        top = rl >= rl.max() * (1 - 1e-12)
        if (Ca > 0).any():
            keep = (Ca <= 0) | top
            return Ca, C[keep], np.where(top, 0.0, Ca)[keep]
        return Ca, C, np.zeros(K)
    if relaxed:
        return C.sum(axis=0), C, np.zeros(K)
    A = np.vstack([C, Ca])
    return C.sum(axis=0), A, np.concatenate([np.zeros(K), [min(0.0, Ca.max())]])


@st.composite
def cases(draw):
    K = draw(st.integers(2, 3))
    M = draw(st.integers(1, 4))
    J = np.array(draw(st.lists(st.floats(-3, 3), min_size=K * M, max_size=K * M))).reshape(K, M)
    l = np.array(draw(st.lists(st.floats(0.05, 5), min_size=K, max_size=K)))
    r = np.array(draw(st.lists(st.floats(0.05, 1), min_size=K, max_size=K)))
    return J, l, r


@given(cases(), st.sampled_from([1e-4, np.inf]))
def test_weights_solve_the_papers_program(case, eps):
    J, l, r = case
    res = epo(J, losses=l, preference=r, eps=eps)
    C = J @ J.T
    c, A, b = _program(C, l, r, eps, res.extras["relaxed"])
    w = res.weights
    if res.extras["relaxed"]:  # only when the restricted program has no grid point
        _, A0, b0 = _program(C, l, r, eps)
        grid = _grid(len(l), 60)
        assert not (grid @ A0.T >= b0 - 1e-9 * np.abs(A0).max(axis=1)).all(axis=1).any()
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    slack = 1e-9 * np.abs(A).max(axis=1)  # relative to each row
    assert (A @ w >= b - slack).all()  # feasible
    grid = _grid(len(l), 60)
    feasible = grid[(grid @ A.T >= b - slack).all(axis=1)]
    if len(feasible):  # no grid point of the feasible set does better
        assert c @ w >= (feasible @ c).max() - 1e-9 * (1 + np.abs(c).max())
    assert res.extras["mode"] == ("descent" if eps == np.inf else res.extras["mode"])
    np.testing.assert_allclose(res.direction, w @ J, atol=1e-12)


@given(cases())
def test_descent_mode_raises_no_loss_to_first_order(case):
    J, l, r = case
    res = epo(J, losses=l, preference=r, eps=np.inf)
    assert (J @ J.T @ res.weights >= -1e-9 * (1 + np.abs(J).max() ** 2)).all()


@given(
    st.lists(st.floats(0.01, 100), min_size=2, max_size=5),
    st.floats(0.01, 100),
)
def test_non_uniformity_is_zero_only_on_the_ray_and_scale_free(l, c):
    l = np.array(l)
    r = 1.0 / l  # r_i l_i equal
    assert non_uniformity(l, r) == pytest.approx(0.0, abs=1e-12)
    r2 = np.linspace(1.0, 2.0, len(l))
    mu = non_uniformity(l, r2)
    assert mu >= 0
    assert non_uniformity(c * l, r2) == pytest.approx(mu, abs=1e-12)
    if not np.allclose(r2 * l, (r2 * l)[0], rtol=1e-6):
        assert mu > 0


def test_hand_worked_balance_step():
    # f_i = x_i^2 / 2 at x = (2, 1): l = (2, 0.5), gradients (2, 0), (0, 1), r = (1, 1).
    # l_hat = (0.8, 0.2); only task 1 may move, and it must fall: beta = e_1.
    res = epo(np.diag([2.0, 1.0]), losses=[2.0, 0.5], preference=[1.0, 1.0])
    assert res.extras["mode"] == "balance"
    np.testing.assert_allclose(res.weights, [1.0, 0.0])
    expected_mu = 0.8 * np.log(1.6) + 0.2 * np.log(0.4)
    assert res.objective == pytest.approx(expected_mu)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"losses": [1.0, -1.0], "preference": [1.0, 1.0]}, "losses"),
        ({"losses": [1.0, 1.0], "preference": [0.0, 0.0]}, "preference"),
        ({"losses": [1.0, 1.0, 1.0], "preference": [1.0, 1.0, 1.0]}, "losses"),
        ({"losses": [1.0, 1.0], "preference": [1.0, 1.0], "eps": -1.0}, "eps"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        epo(np.eye(2), **kwargs)
