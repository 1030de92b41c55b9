"""EPO's direction programs against the paper's LP, solved here by vertex enumeration.

The reference (``paper_program`` and ``vertices``) is written from Mahapatra & Rajan,
ICML 2020 (its balance and descent programs) and the authors' code (dbmptr/EPOSearch,
``epo_lp.py``): the non-uniformity as a KL divergence from scipy, the losses with the
largest r_j l_j picked by exact equality (as the authors do), the rows as written
(scaled only to judge a vertex's conditioning), every vertex enumerated (K <= 4) instead
of a simplex solver. Cases where rounding could decide the program (a or C a near but
not at 0, ties within 1e-12, mu at eps) are tested in test_epo_scale_and_rounding.py;
ill-conditioned programs, whose optimum rounding moves, are left out.
"""

import itertools

import numpy as np
import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from scipy.special import rel_entr

from paretomtl.solvers import epo, non_uniformity


def paper_program(C, l, r, eps):
    """Mode, objective c and constraints A x >= b of the paper's step, and the relaxed rows.

    l_hat = r l / sum(r l); mu = KL(l_hat || 1/m); a = r (log(m l_hat) - mu).
    Balance (mu > eps): max x'Ca s.t. (Cx)_j >= (Ca)_j where (Ca)_j <= 0, (Cx)_j >= 0 on
    J* = argmax r l, free where (Ca)_j > 0; all (Cx)_j >= 0 if no (Ca)_j > 0.
    Descent: max 1'Cx s.t. Cx >= 0 and x'Ca >= min(0, max_j (Ca)_j); relaxed: Cx >= 0.
    """
    m = len(l)
    rl = r * l
    hat = rl / rl.sum()
    mu = float(rel_entr(hat, np.full(m, 1.0 / m)).sum())
    a = r * (np.log(m * hat) - mu)
    Ca = C @ a
    info = {"mu": mu, "a": a, "Ca": Ca, "rl": rl}
    if mu > eps:
        free = Ca > 0
        star = rl == rl.max()
        if free.any():
            rows = ~free | star
            return "balance", Ca, C[rows], np.where(star, 0.0, Ca)[rows], None, info
        return "balance", Ca, C, np.zeros(m), None, info
    A = np.vstack([C, Ca[None, :]])
    b = np.append(np.zeros(m), min(0.0, float(Ca.max())))
    return "descent", C.sum(axis=0), A, b, (C, np.zeros(m)), info


def vertices(A, b, tol=1e-9, conditions=None):
    """Every vertex of {x >= 0, sum x = 1, A x >= b}, feasible to tol (relative per row).

    A vertex has m - 1 linearly independent active inequalities besides the sum. The
    condition numbers of their systems (rows of unit size) go to ``conditions``.
    """
    m = A.shape[1]
    rows = np.vstack([np.eye(m), A])
    rhs = np.concatenate([np.zeros(m), b])
    size = np.abs(rows).max(axis=1)
    unit = np.where(size > 0, size, 1.0)  # rows of unit size, for the conditioning
    rows, rhs = rows / unit[:, None], rhs / unit
    found = []
    for S in itertools.combinations(np.flatnonzero(size > 0), m - 1):
        M = np.vstack([rows[list(S)], np.ones(m)])
        cond = np.linalg.cond(M)
        if cond > 1e12:
            continue
        x = np.linalg.solve(M, np.append(rhs[list(S)], 1.0))
        if (rows @ x - rhs >= -tol * np.maximum(1.0, np.abs(rhs))).all():
            found.append(x)
            if conditions is not None:
                conditions.append(cond)
    return np.array(found).reshape(-1, m)


def feasible(x, A, b, tol=1e-9):
    size = np.maximum(np.abs(A).max(axis=1), np.abs(b)) if len(A) else np.zeros(0)
    return x.min() >= -1e-12 and (A @ x - b >= -tol * size).all()


@st.composite
def cases(draw):
    K = draw(st.integers(2, 4))
    M = draw(st.integers(1, 4))
    # Gradients shorter than 1e-135 of the longest raise (test_a_lost_gradient_raises).
    entries = st.floats(-3, 3).map(lambda x: x if abs(x) >= 1e-60 else 0.0)
    J = np.array(draw(st.lists(entries, min_size=K * M, max_size=K * M))).reshape(K, M)
    r = np.array(draw(st.lists(st.floats(0.05, 1), min_size=K, max_size=K)))
    if draw(st.booleans()):  # losses on the preference ray, r_i l_i equal (to rounding)
        l = draw(st.floats(0.05, 5)) / r
    else:
        l = np.array(draw(st.lists(st.floats(0.05, 5), min_size=K, max_size=K)))
    return J, l, r


# Degenerate programs (a zero gradient, nearly parallel rows) on which HiGHS, at tight
# tolerances, stops with status "unknown" or calls a feasible program infeasible.
_ONES = np.ones(4)


@given(cases(), st.sampled_from([0.0, 1e-4, 0.5, np.inf]))
@example(
    (
        np.array([[1.0, 0, 1], [0, 0, -1], [-(2.0**-24), 0, 1], [0, 0, 0]]),
        np.array([2.0, 1, 1, 1]),
        _ONES,
    ),
    0.5,
)
@example(
    (np.array([[0, 0, 0], [0, 0, 1.0], [0, 1, 0], [0, 1e-8, -3]]), np.array([1.0, 1, 1, 2]), _ONES),
    0.5,
)
@example((np.array([[0, 0, 0.5], [0, 1.0, -1], [0, 0, 1], [0, -3, 1e-8]]), _ONES, _ONES), 0.0)
def test_weights_solve_the_papers_program(case, eps):
    J, l, r = case
    C = J @ J.T
    mode, c, A, b, relaxed_rows, info = paper_program(C, l, r, eps)
    a, Ca, rl = info["a"], info["Ca"], info["rl"]
    # Leave out what rounding may decide (tested on its own elsewhere): a or C a near
    # but not at 0 (losses a few ulps off balance, a nearly in C's null space), mu at
    # eps, near-ties of r_i l_i, and in balance mode the sign of a (Ca)_j near 0.
    size = np.abs(C) @ np.abs(a)
    assume(not (0 < np.abs(a).max() <= 1e-9 * r.max()))
    assume(not (0 < np.abs(Ca).max() <= 1e-9 * size.max()))
    assume(not (np.isfinite(eps) and 0 < abs(info["mu"] - eps) <= 1e-9 * eps))
    assume(not ((rl >= rl.max() * (1 - 1e-12)) & (rl < rl.max())).any())
    if mode == "balance":
        assume(not ((np.abs(Ca) <= 1e-9 * size) & (Ca != 0)).any())

    res = epo(J, losses=l, preference=r, eps=eps)
    w = res.weights
    assert res.extras["mode"] == mode
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(res.direction, w @ J, atol=1e-12)
    if mode == "descent" and res.extras["relaxed"]:  # restricted program: no vertex
        assert len(vertices(A, b, tol=1e-12)) == 0
        A, b = relaxed_rows
    else:
        assert feasible(w, A, b)
    conditions = []
    V = vertices(A, b, conditions=conditions)
    assert len(V) > 0  # the programs solved are feasible: MGDA's weights satisfy them
    # An ill-conditioned vertex moves by cond * (rounding of C) and more: not compared.
    assume(max(conditions) <= 1e6)
    assert res.converged and res.extras["lp_status"] == "optimal"
    values = V @ c
    best = values.max()
    # HiGHS's absolute tolerances (1e-10 on unit rows) let a row coefficient of 1e-13
    # move the optimum's value by 1e-9: values agree to 1e-7 of the cost's size.
    tol = 1e-7 * max(1.0, np.abs(c).max())
    assert best - tol <= c @ w <= best + tol
    assert res.extras["rate"] == pytest.approx(c @ w, rel=1e-9, abs=tol)
    # A unique optimum (every other vertex clearly worse) is the answer itself.
    near = V[values >= best - 1e-4 * max(1.0, np.abs(c).max())]
    if np.ptp(near, axis=0).max() <= 1e-9:
        event("unique optimum")
        np.testing.assert_allclose(w, near[0], atol=1e-6)
    event(f"{mode}{' relaxed' if res.extras['relaxed'] else ''}")


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
    hat = r2 * l / (r2 * l).sum()  # the KL divergence from uniform, from scipy
    assert mu == pytest.approx(rel_entr(hat, np.full(len(l), 1 / len(l))).sum(), abs=1e-12)


def test_hand_worked_balance_step():
    # f_i = x_i^2 / 2 at x = (2, 1): l = (2, 0.5), gradients (2, 0), (0, 1), r = (1, 1).
    # l_hat = (0.8, 0.2); only task 1 may move, and it must fall: beta = e_1.
    res = epo(np.diag([2.0, 1.0]), losses=[2.0, 0.5], preference=[1.0, 1.0])
    assert res.extras["mode"] == "balance"
    np.testing.assert_allclose(res.weights, [1.0, 0.0])
    expected_mu = 0.8 * np.log(1.6) + 0.2 * np.log(0.4)
    assert res.objective == pytest.approx(expected_mu)


def test_hand_worked_descent_step():
    # Balanced losses, C = [[18, -1.4], [-1.4, 13.6]]: max 1'C b = 16.6 b1 + 12.2 b2 with
    # (C b)_2 = -1.4 b1 + 13.6 b2 >= 0, i.e. b2 >= 1.4 / 15: b = (1 - 1.4/15, 1.4/15).
    res = epo(gram=[[18.0, -1.4], [-1.4, 13.6]], losses=[1.0, 1.0], preference=[1.0, 1.0])
    assert res.extras["mode"] == "descent" and not res.extras["relaxed"]
    np.testing.assert_allclose(res.weights, [1 - 1.4 / 15, 1.4 / 15], rtol=1e-12)
    assert res.extras["rate"] == pytest.approx(16.6 - 4.4 * 1.4 / 15, rel=1e-12)


def test_a_lost_gradient_raises():
    # (C beta)_2 = g_2 . d >= 0 is a constraint however short g_2 is; where float64
    # cannot hold g_2's Gram entries next to g_1's, it would vanish unseen.
    with pytest.raises(ValueError, match=r"grads\[1\] \(task 1\) is nonzero but too short"):
        epo(np.array([[2.0], [-5e-324]]), losses=[1.0, 1.0])


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
