"""COSMOS: w = r - lambda d cos(r, L) / dL; checked against torch autograd of the loss
written out, torchjd's COSMOS scalariser, and the properties of the cosine."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import COSMOS
from tests.asserts import assert_same_state

BIGGEST = float(np.finfo(np.float64).max)


def autograd_weights(L, r, lam):
    """The gradient of r . L - lam (r . L) / (|r| |L|), the cosine without any floor."""
    torch = pytest.importorskip("torch")
    Lt = torch.tensor(L, dtype=torch.float64, requires_grad=True)
    rt = torch.tensor(r, dtype=torch.float64)
    dot = (rt * Lt).sum()
    (dot - lam * dot / (rt.norm() * torch.sqrt((Lt * Lt).sum()))).backward()
    return Lt.grad.numpy().copy()


def torchjd_weights(L, r, lam, torch, scalarization):
    Lt = torch.tensor(L, dtype=torch.float64, requires_grad=True)
    scalarization.COSMOS(lam, torch.tensor(r, dtype=torch.float64))(Lt).backward()
    return Lt.grad.numpy().copy()


def assert_close(ours, ref, r, lam, L, rtol=1e-12):
    """Within rtol of the larger of the two terms of w = r - lam dcos/dL (a weight near 0
    is a difference of two larger numbers)."""
    u = min(1.0, np.linalg.norm(r) / 1e-8)  # |r| / max(|r|, eps)
    scale = np.abs(r).max() + lam * u / max(np.linalg.norm(L), 1e-8)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rtol * scale)
    return float(np.abs(ours - ref).max() / scale)


@given(
    data=st.data(),
    K=st.integers(1, 8),
    lam=st.sampled_from([0.0, 0.01, 1.0, 2.0, 8.0]),
)
def test_weights_are_the_gradient_of_the_cosmos_loss(data, K, lam):
    L = np.array(data.draw(st.lists(st.floats(-1e3, 1e3), min_size=K, max_size=K), label="L"))
    r = np.array(data.draw(st.lists(st.floats(0.0, 3.0), min_size=K, max_size=K), label="r"))
    if np.linalg.norm(L) <= 1e-6 or np.linalg.norm(r) <= 1e-6:
        return  # the floor's region: checked against torchjd below
    ours = COSMOS(K, lambda_=lam, preference=r).update(L)
    assert_close(ours, autograd_weights(L, r, lam), r, lam, L)


def test_matches_torchjd_cosmos_within_1e_12():
    torch = pytest.importorskip("torch")
    scalarization = pytest.importorskip("torchjd.scalarization")
    rng = np.random.default_rng(0)
    worst = 0.0
    for K in (1, 2, 5, 10, 32, 128):
        for lam in (0.01, 2.0, 8.0):
            for trial in range(8):
                L = rng.uniform(0.0, 2.0, K)
                r = rng.dirichlet(np.full(K, 1.2))
                if trial == 1:  # twelve decades
                    L = 10.0 ** rng.uniform(-6, 6, K)
                if trial == 2:  # zeros and a preference with zeros
                    L[: K // 2] = 0.0
                    r[K - K // 3 :] = 0.0
                if trial == 3:  # inside the cosine's floor, |L| < 1e-8
                    L = rng.uniform(0.0, 1e-9, K)
                if trial == 4:  # all zero
                    L = np.zeros(K)
                if trial == 5:  # on the ray of r
                    L = 3.0 * r
                if trial == 6:  # losses of either sign
                    L = rng.normal(size=K)
                if trial == 7:  # a tiny preference, inside its floor
                    r = r * 1e-9
                ref = torchjd_weights(L, r, lam, torch, scalarization)
                ours = COSMOS(K, lambda_=lam, preference=r).update(L)
                worst = max(worst, assert_close(ours, ref, r, lam, L))
    assert worst <= 1e-12, worst


def test_no_penalty_is_the_linear_scalarisation():
    r = np.array([0.2, 0.0, 0.8])
    for L in ([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-1e300, 1e308, 5e-324]):
        np.testing.assert_array_equal(COSMOS(3, lambda_=0.0, preference=r).update(L), r)


@given(c=st.floats(1e-3, 1e3), K=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_on_the_ray_the_cosine_is_stationary(c, K, seed):
    # cos(r, L) is largest (1) where L is a positive multiple of r: its gradient is 0 there
    r = np.random.default_rng(seed).dirichlet(np.ones(K))
    np.testing.assert_allclose(COSMOS(K, 2.0, r).update(c * r), r, rtol=0, atol=1e-12 / c)


@given(
    data=st.data(),
    K=st.integers(1, 6),
    c=st.floats(1e-3, 1e3),
)
def test_homogeneity_of_the_cosine(data, K, c):
    # cos(r, cL) = cos(r, L): its gradient scales as 1 / c, and L . dcos/dL = 0 (Euler)
    L = np.array(data.draw(st.lists(st.floats(0.1, 10.0), min_size=K, max_size=K), label="L"))
    r = np.array(data.draw(st.lists(st.floats(0.1, 1.0), min_size=K, max_size=K), label="r"))
    lam = 2.0
    w, wc = COSMOS(K, lam, r).update(L), COSMOS(K, lam, r).update(c * L)
    np.testing.assert_allclose(c * (wc - r), w - r, rtol=1e-9, atol=1e-12 * lam)
    assert abs(L @ (w - r)) <= 1e-12 * lam * K


def test_weights_can_be_negative_and_follow_the_paper_k2():
    # K = 2, r = (1/2, 1/2), L = (0, 1): cos = 1/sqrt 2 and dcos/dL = (1/sqrt 2, 0)
    w = COSMOS(2, lambda_=2.0).update([0.0, 1.0])
    np.testing.assert_allclose(w, [0.5 - np.sqrt(2.0), 0.5], rtol=1e-15)
    assert w[0] < 0


def test_continuous_across_the_floor():
    # torch's floor applies to the value only: the weights are continuous at |L| = eps
    r = np.array([0.3, 0.7])
    direction = np.array([0.6, 0.8])
    below = COSMOS(2, 1.0, r).update(direction * 1e-8 * (1 - 1e-12))
    above = COSMOS(2, 1.0, r).update(direction * 1e-8 * (1 + 1e-12))
    np.testing.assert_allclose(below, above, rtol=1e-10)
    # at L = 0: r - lambda r / (|r| eps)
    np.testing.assert_allclose(
        COSMOS(2, 1.0, r).update([0.0, 0.0]), r - r / np.linalg.norm(r) / 1e-8, rtol=1e-15
    )
    # a larger floor is felt (eps = 1 > |L|, |r|): torch's cosine_similarity with that eps
    torch = pytest.importorskip("torch")
    for L in (direction * 0.5, direction * 3.0, np.array([0.0, 0.0])):
        Lt = torch.tensor(L, requires_grad=True)
        rt = torch.tensor(r)
        ((rt * Lt).sum() - torch.nn.functional.cosine_similarity(rt, Lt, dim=0, eps=1.0)).backward()
        w = COSMOS(2, 1.0, r, eps=1.0).update(L)
        np.testing.assert_allclose(w, Lt.grad.numpy(), rtol=1e-14)


@pytest.mark.parametrize(
    "L",
    [[1e308, BIGGEST], [BIGGEST, -BIGGEST], [5e-324, 0.0], [1e-300, 1e300], [-1e-320, 1e-310]],
)
def test_extreme_losses_give_finite_weights(L):
    r = np.array([0.4, 0.6])
    w = COSMOS(2, 2.0, r).update(L)
    assert np.isfinite(w).all()
    L = np.array(L)
    if np.abs(L).max() > 1e250:  # the cosine's gradient vanishes: w = r to the last bit
        np.testing.assert_allclose(w, r, rtol=1e-15)


def test_a_weight_beyond_float64_names_the_task_and_changes_nothing():
    cosmos = COSMOS(2, lambda_=1e300, eps=1e-300)
    cosmos.update([1.0, 2.0])
    before = cosmos.state_dict()
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\) is 0.0; its COSMOS weight"):
        cosmos.update([1e-300, 0.0])
    assert_same_state(cosmos.state_dict(), before)
    # just in range: lambda / |L| = 1e300 / 1e-7, times (0, 1 / sqrt 2)
    w = COSMOS(2, 1e300).update([1e-7, 0.0])
    np.testing.assert_allclose(w, [0.5, 0.5 - 1e307 / np.sqrt(2.0)], rtol=1e-15)


def test_preference_is_validated_and_can_change_every_step():
    with pytest.raises(ValueError, match=r"preference\[:\] is all 0"):
        COSMOS(2, preference=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"preference\[1\] \(task 1\)"):
        COSMOS(2, preference=[1.0, -0.5])
    with pytest.raises(ValueError, match="lambda_"):
        COSMOS(2, lambda_=-1.0)
    with pytest.raises(ValueError, match="eps"):
        COSMOS(2, eps=0.0)
    cosmos = COSMOS(3)
    np.testing.assert_array_equal(cosmos.preference, np.full(3, 1 / 3))
    rng = np.random.default_rng(4)
    p = rng.dirichlet([1.2] * 3)
    cosmos.set_preference(p)
    L = [0.3, 1.0, 2.0]
    np.testing.assert_array_equal(cosmos.update(L), COSMOS(3, preference=p).update(L))
    before = cosmos.state_dict()
    with pytest.raises(ValueError, match="preference"):
        cosmos.set_preference([1.0, np.nan, 0.0])
    assert_same_state(cosmos.state_dict(), before)
    # the preference in use is saved with the state
    other = COSMOS(3)
    other.load_state_dict(before)
    np.testing.assert_array_equal(other.update(L), cosmos.update(L))


def test_a_state_with_an_all_zero_preference_is_refused():
    cosmos = COSMOS(2)
    state = cosmos.state_dict()
    state["hyperparameters"]["preference"] = np.zeros(2)
    with pytest.raises(ValueError, match="preference"):
        cosmos.load_state_dict(state)
    np.testing.assert_array_equal(cosmos.preference, [0.5, 0.5])
