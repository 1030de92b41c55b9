"""PBI: w = w_hat + theta f_perp / |f_perp|; checked against torch autograd of d1 + theta d2
written out, torchjd's PBI scalariser, the subgradient inequality of the convex F, and
the invariances of the construction."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import PBI
from tests.asserts import assert_same_state

BIGGEST = float(np.finfo(np.float64).max)


def pbi_value(L, p, z, theta):
    """d1 + theta d2, written out in numpy."""
    w_hat = p / np.linalg.norm(p)
    f = np.asarray(L) - z
    d1 = f @ w_hat
    return d1 + theta * np.linalg.norm(f - d1 * w_hat)


def autograd_weights(L, p, z, theta):
    torch = pytest.importorskip("torch")
    Lt = torch.tensor(L, dtype=torch.float64, requires_grad=True)
    w_hat = torch.tensor(p) / torch.linalg.norm(torch.tensor(p))
    f = Lt - torch.tensor(z)
    d1 = (f * w_hat).sum()
    (d1 + theta * torch.linalg.norm(f - d1 * w_hat)).backward()
    return Lt.grad.numpy().copy()


def torchjd_weights(L, p, z, theta, torch, scalarization):
    Lt = torch.tensor(L, dtype=torch.float64, requires_grad=True)
    scalarization.PBI(theta, torch.tensor(p), torch.tensor(z))(Lt).backward()
    return Lt.grad.numpy().copy()


def off_the_ray(L, p, z, rel=1e-6):
    w_hat = p / np.linalg.norm(p)
    f = np.asarray(L) - z
    return np.linalg.norm(f - (f @ w_hat) * w_hat) > rel * max(np.linalg.norm(f), 1e-300)


vectors = st.integers(1, 8).flatmap(
    lambda K: st.tuples(
        st.lists(st.floats(-1e3, 1e3), min_size=K, max_size=K),
        st.lists(st.floats(0.0, 3.0), min_size=K, max_size=K),
        st.lists(st.floats(-10.0, 10.0), min_size=K, max_size=K),
    )
)


@given(v=vectors, theta=st.sampled_from([0.0, 0.5, 5.0, 100.0]))
def test_weights_are_the_gradient_of_d1_plus_theta_d2(v, theta):
    L, p, z = (np.array(x) for x in v)
    if p.max() <= 1e-3 or not off_the_ray(L, p, z, rel=1e-3):
        # near the ray the gradient's direction is ill-conditioned (rounding of L - z is
        # amplified by |f| / |f_perp|); on it: test_on_the_ray_the_minimum_norm_subgradient
        return
    ours = PBI(len(L), theta, p, reference=z).update(L)
    np.testing.assert_allclose(
        ours, autograd_weights(L, p, z, theta), rtol=0, atol=1e-12 * (1 + theta)
    )


@given(v=vectors, theta=st.sampled_from([0.0, 5.0, 50.0]), seed=st.integers(0, 2**32 - 1))
def test_subgradient_inequality(v, theta, seed):
    # F = d1 + theta d2 is convex (a linear map's norm plus a linear form): its gradient,
    # or on the ray the subgradient we return, satisfies F(L + h) >= F(L) + w . h
    L, p, z = (np.array(x) for x in v)
    if p.max() <= 1e-3:
        return
    K = len(L)
    rng = np.random.default_rng(seed)
    for L0 in (L, z + 2.5 * p):  # a generic point and one on the ray
        w = PBI(K, theta, p, reference=z).update(L0)
        F0 = pbi_value(L0, p, z, theta)
        for _ in range(5):
            h = rng.normal(size=K) * 10.0 ** rng.uniform(-3, 2)
            slack = 1e-9 * (1 + theta) * (np.abs(L0 - z).sum() + np.abs(h).sum())
            assert pbi_value(L0 + h, p, z, theta) >= F0 + w @ h - slack


def test_matches_torchjd_pbi_within_1e_12():
    torch = pytest.importorskip("torch")
    scalarization = pytest.importorskip("torchjd.scalarization")
    rng = np.random.default_rng(1)
    worst = 0.0
    for K in (2, 5, 10, 32, 128):
        for theta in (0.5, 5.0, 50.0):
            for trial in range(6):
                L = rng.uniform(0.0, 2.0, K)
                p = rng.dirichlet(np.full(K, 1.2))
                z = np.zeros(K)
                if trial == 1:  # twelve decades
                    L = 10.0 ** rng.uniform(-6, 6, K)
                if trial == 2:  # a reference, losses of either sign
                    z = rng.normal(size=K)
                    L = rng.normal(size=K)
                if trial == 3:  # a preference with zeros
                    p[: K // 2] = 0.0
                if trial == 4:  # near the ray, but off it by more than 1e-6 (torchjd's sqrt)
                    L = 2.0 * p + 1e-3 * rng.normal(size=K)
                if trial == 5:  # duplicated tasks
                    L[1] = L[0]
                    p[1] = p[0]
                ref = torchjd_weights(L, p, z, theta, torch, scalarization)
                ours = PBI(K, theta, p, reference=z, eps=1e-12).update(L)
                worst = max(worst, float(np.abs(ours - ref).max() / (1 + theta)))
    assert worst <= 1e-12, worst


def test_torchjd_smoothing_is_not_scale_invariant_ours_is():
    # torchjd adds 1e-12 under the square root: at losses near 1e-6 its weights drift far
    # from the exact gradient; the default eps = 0 depends on the direction of L - z only.
    torch = pytest.importorskip("torch")
    scalarization = pytest.importorskip("torchjd.scalarization")
    p, z = np.array([0.5, 0.5]), np.zeros(2)
    L = np.array([1.0, 3.0])
    exact = PBI(2, 5.0, p).update(L)
    np.testing.assert_allclose(exact, np.array([-4.0, 6.0]) / np.sqrt(2.0), rtol=1e-15)
    for c in (1e-9, 1e-6, 1e3, 1e300):
        np.testing.assert_allclose(PBI(2, 5.0, p).update(c * L), exact, rtol=1e-15)
    ref = torchjd_weights(1e-6 * L, p, z, 5.0, torch, scalarization)
    assert np.abs(ref - exact).max() > 0.5  # 15 % of the largest weight
    # and eps = 1e-12 reproduces it
    np.testing.assert_allclose(PBI(2, 5.0, p, eps=1e-12).update(1e-6 * L), ref, rtol=1e-12)


@pytest.mark.parametrize("eps", [0.0, 1e-12])
def test_on_the_ray_the_minimum_norm_subgradient(eps):
    torch = pytest.importorskip("torch")
    scalarization = pytest.importorskip("torchjd.scalarization")
    for K, p, L, z in (
        (1, [1.0], [2.5], [0.0]),  # one task: always on the ray
        (3, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]),  # w_hat is not exact here
        (3, [0.2, 0.3, 0.5], [0.4, 0.6, 1.0], [0.0, 0.0, 0.0]),
        (2, [0.5, 0.5], [3.0, 3.0], [1.0, 1.0]),
        (2, [1.0, 3.0], [-1.0, 5.0], [-2.0, 2.0]),
        (4, [1.0, 0.0, 2.0, 1.0], [7.0, 7.0, 7.0, 7.0], [7.0, 7.0, 7.0, 7.0]),  # L = z
    ):
        p, L, z = np.array(p), np.array(L), np.array(z)
        w = PBI(K, 5.0, p, reference=z, eps=eps).update(L)
        w_hat = p / np.linalg.norm(p)
        np.testing.assert_allclose(w, w_hat, rtol=1e-15)
        # torchjd (1e-12 under the root): the same up to rounding noise / 1e-6
        ref = torchjd_weights(L, p, z, 5.0, torch, scalarization)
        np.testing.assert_allclose(w, ref, rtol=0, atol=1e-8)


@given(v=vectors, theta=st.floats(0.0, 1e3), c=st.floats(1e-3, 1e3), seed=st.integers(0, 99))
def test_structure_and_invariances(v, theta, c, seed):
    L, p, z = (np.array(x) for x in v)
    if p.max() <= 1e-3:
        return
    K = len(L)
    w = PBI(K, theta, p, reference=z).update(L)
    w_hat = p / np.linalg.norm(p)
    assert abs(w @ w_hat - 1.0) <= 1e-12 * (1 + theta)  # d1's gradient plus a part orthogonal
    g = w - w_hat  # 0 on the ray (up to the rounding of w_hat), else of norm theta
    assert np.linalg.norm(g) <= 1e-15 or abs(np.linalg.norm(g) - theta) <= 1e-12 * (1 + theta)
    assert (w >= -theta - 1e-15).all() and (w <= 1 + theta + 1e-15).all()
    f = L - z
    perp = np.linalg.norm(f - (f @ w_hat) * w_hat)
    if perp <= 1e-9 * np.linalg.norm(f):
        return  # at or near the ray: the direction of f_perp is rounding (see above)
    # near the ray the direction of f_perp is ill-conditioned: rounding of order
    # eps |f| moves it by eps |f| / |f_perp|, so the tolerance carries that factor
    tol = 1e-13 * K * (1 + theta) * np.linalg.norm(f) / perp
    # only the direction of L - z and of p matter
    np.testing.assert_allclose(PBI(K, theta, c * p, reference=z).update(L), w, atol=tol)
    if ((L + 1.0) - (z + 1.0) == f).all():  # the shift kept L - z exactly
        np.testing.assert_allclose(PBI(K, theta, p, reference=z + 1.0).update(L + 1.0), w, atol=tol)
    Lc = z + c * f
    if (np.abs((Lc - z) - c * f) <= 1e-13 * np.abs(c * f)).all():  # the same direction
        np.testing.assert_allclose(PBI(K, theta, p, reference=z).update(Lc), w, atol=tol)
    # permuting the tasks permutes the weights
    perm = np.random.default_rng(seed).permutation(K)
    got = PBI(K, theta, p[perm], reference=z[perm]).update(L[perm])
    np.testing.assert_allclose(got, w[perm], atol=tol)


def test_k2_closed_form():
    # K = 2, p = (1, 1), z = 0: f_perp = (L1 - L2) / 2 (1, -1), so w = (1, 1) / sqrt 2 +
    # theta sign(L1 - L2) (1, -1) / sqrt 2
    s = 1 / np.sqrt(2.0)
    for L, sign in (([1.0, 3.0], -1), ([5.0, 0.5], 1), ([1e-200, 0.0], 1)):
        np.testing.assert_allclose(
            PBI(2, 5.0, [1.0, 1.0]).update(L), [s + 5 * sign * s, s - 5 * sign * s], rtol=1e-14
        )


@pytest.mark.parametrize(
    ("L", "z"),
    [
        ([BIGGEST, -BIGGEST], [-BIGGEST, BIGGEST]),  # L - z overflows
        ([5e-324, 0.0], [0.0, 0.0]),  # subnormal
        ([1e-310, 1e300], [0.0, -1e300]),
        ([1e308, 1.0], [0.0, 0.0]),
    ],
)
@pytest.mark.parametrize("theta", [0.0, 5.0, BIGGEST])
@pytest.mark.parametrize("eps", [0.0, 1e-12, BIGGEST])
def test_extreme_inputs_give_finite_weights(L, z, theta, eps):
    w = PBI(2, theta, [0.3, 0.7], reference=z, eps=eps).update(L)
    assert np.isfinite(w).all() and (w >= -theta).all() and (w <= 1 + theta).all()
    if eps == 0.0:  # the direction of L - z decides: the same as at a quarter of the scale
        quarter = PBI(2, theta, [0.3, 0.7], reference=np.array(z) / 4).update(np.array(L) / 4)
        if min(abs(x) for x in L if x) > 1e-300:
            np.testing.assert_allclose(w, quarter, rtol=1e-15)


def test_options_are_validated_and_preference_can_change():
    with pytest.raises(ValueError, match="theta"):
        PBI(2, theta=-1.0)
    with pytest.raises(ValueError, match=r"preference\[:\] is all 0"):
        PBI(2, preference=0.0)
    with pytest.raises(ValueError, match=r"reference\[0\] \(task 0\)"):
        PBI(2, reference=[np.inf, 0.0])
    with pytest.raises(ValueError, match="eps"):
        PBI(2, eps=-1e-12)
    pbi = PBI(3)
    np.testing.assert_array_equal(pbi.reference, np.zeros(3))
    p = np.array([0.1, 0.6, 0.3])
    pbi.set_preference(p)
    L = [0.3, 1.0, 2.0]
    np.testing.assert_array_equal(pbi.update(L), PBI(3, preference=p).update(L))
    before = pbi.state_dict()
    with pytest.raises(ValueError, match="preference"):
        pbi.set_preference([0.0, 0.0, 0.0])
    assert_same_state(pbi.state_dict(), before)
    state = pbi.state_dict()
    state["hyperparameters"]["preference"] = np.zeros(3)
    with pytest.raises(ValueError, match="preference"):
        pbi.load_state_dict(state)
    assert_same_state(pbi.state_dict(), before)
