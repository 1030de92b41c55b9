"""ExcessMTL: the authors' loop on plain numpy, torchjd, the K x M protocol and its state."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import ExcessMTL
from paretomtl.state import same_plain
from tests.strategies import grads_matrices


def authors_loop(Js, step_size, eps=1e-7):
    """He et al.'s code (also LibMTL's) on numpy: weights 1 at first, the first call's
    excess risks are the baseline, later calls w <- w exp(eta E / E0), rescaled to sum K."""
    K, M = Js[0].shape
    loss_weight = np.ones(K)
    grad_sum = np.zeros((K, M))
    initial = None
    out = []
    for J in Js:
        E = np.zeros(K)
        for i in range(K):
            grad_sum[i] += J[i] ** 2
            E[i] = (J[i] / np.sqrt(grad_sum[i] + eps)) @ J[i]
        if initial is None:
            initial = E
        else:
            loss_weight = loss_weight * np.exp(E / initial * step_size)
            loss_weight = loss_weight / loss_weight.sum() * K
        out.append(loss_weight.copy())
    return out


def steps(K, M, n, seed, scales=None):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((K, M))
    out = []
    for t in range(n):
        J = base / np.sqrt(t + 1) + 0.5 * rng.standard_normal((K, M))
        out.append(J if scales is None else J * scales[:, None])
    return out


@given(
    st.integers(1, 6),
    st.integers(1, 9),
    st.sampled_from([1e-2, 0.3, 1.0]),
    st.integers(1, 8),
    st.integers(0, 2**31 - 1),
)
def test_matches_the_authors_loop(K, M, step_size, n, seed):
    Js = steps(K, M, n, seed)
    ex = ExcessMTL(K, robust_step_size=step_size, weights_sum="num-tasks")
    for J, expected in zip(Js, authors_loop(Js, step_size), strict=True):
        res = ex.update(J)
        np.testing.assert_allclose(res.weights, expected, rtol=1e-12)
        np.testing.assert_allclose(res.direction, res.weights @ J, rtol=1e-12, atol=1e-14)
        assert res.weights.sum() == pytest.approx(K, rel=1e-12)


def test_simplex_weights_are_the_num_tasks_ones_over_k():
    Js = steps(3, 5, 6, 0)
    a, b = (
        ExcessMTL(3, robust_step_size=0.5),
        ExcessMTL(3, robust_step_size=0.5, weights_sum="num-tasks"),
    )
    for J in Js:
        np.testing.assert_allclose(a.update(J).weights * 3, b.update(J).weights, rtol=1e-14)


def test_higher_excess_ratio_gets_more_weight_k2():
    # Task 0's gradient stays large while task 1's shrinks: E_0 / E_0^0 > E_1 / E_1^0.
    ex = ExcessMTL(2, robust_step_size=1.0)
    ex.update(np.array([[1.0, 1.0], [1.0, 1.0]]))
    res = ex.update(np.array([[1.0, 1.0], [0.1, 0.1]]))
    assert res.extras["ratio"][0] > res.extras["ratio"][1]
    w = res.weights
    r = res.extras["ratio"]
    np.testing.assert_allclose(w[0] / w[1], np.exp(r[0] - r[1]), rtol=1e-14)


@pytest.mark.parametrize("warmup", [1, 2, 3])
@pytest.mark.parametrize("K", [2, 5, 10, 32])
def test_agrees_with_torchjd_over_a_run(K, warmup):
    # torchjd divides by E0 + 1e-7: baseline_eps=1e-7 here; torchjd's n_warmup_steps >= 1
    # is the same rule as ours.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import ExcessMTLWeighting

    rng = np.random.default_rng(K)
    scales = 10.0 ** rng.uniform(-3, 3, size=K)
    ours = ExcessMTL(K, robust_step_size=1.0, n_warmup_steps=warmup, baseline_eps=1e-7)
    theirs = ExcessMTLWeighting(robust_step_size=1.0, n_warmup_steps=warmup)
    worst = 0.0
    for J in steps(K, 7, 10, K, scales):
        J[rng.random(K) < 0.1] = 0.0
        w = ours.update(J).weights
        t = theirs(torch.from_numpy(J)).numpy()
        worst = max(worst, np.abs(w - t).max() / np.abs(t).max())
    assert worst <= 1e-6


def test_torchjd_without_warmup_updates_on_raw_excess_and_we_refuse_it():
    # The documented difference: torchjd's n_warmup_steps=0 moves the weights at the
    # first call by exp(eta * E) with the unnormalised E; the authors' code (and ours,
    # n_warmup_steps=1) keeps them uniform then.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import ExcessMTLWeighting

    J = np.array([[3.0, 0.0], [0.0, 1.0]])
    t = ExcessMTLWeighting(robust_step_size=1.0)(torch.from_numpy(J)).numpy()
    E = np.array([9.0 / np.sqrt(9.0 + 1e-7), 1.0 / np.sqrt(1.0 + 1e-7)])
    np.testing.assert_allclose(t, np.exp(E) / np.exp(E).sum(), rtol=1e-12)
    np.testing.assert_array_equal(ExcessMTL(2, robust_step_size=1.0).update(J).weights, [0.5, 0.5])
    with pytest.raises(ValueError, match="n_warmup_steps"):
        ExcessMTL(2, n_warmup_steps=0)


@given(st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_ratios_are_invariant_to_per_task_scales_without_eps(K, seed):
    # E_i scales like |g_i| and so does its baseline: the ratios, hence the weights,
    # do not depend on each task's scale (eps = 0).
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-30, 30, size=K)
    a, b = ExcessMTL(K, eps=0.0, robust_step_size=1.0), ExcessMTL(K, eps=0.0, robust_step_size=1.0)
    for J in steps(K, 4, 5, seed):
        np.testing.assert_allclose(
            a.update(J).weights, b.update(J * scales[:, None]).weights, rtol=1e-12
        )


def test_warmup_averages_the_baseline():
    ex = ExcessMTL(2, n_warmup_steps=2, eps=0.0)
    r1 = ex.update(np.array([[1.0], [2.0]]))  # S = (1, 4): E = (1, 2)
    assert ex.baseline is None and r1.extras["warmup"] and r1.extras["ratio"] is None
    r2 = ex.update(np.array([[1.0], [2.0]]))  # S = (2, 8): E = (1/sqrt2, 4/sqrt8)
    np.testing.assert_allclose(ex.baseline, [(1 + 2**-0.5) / 2, (2 + 2**0.5) / 2])
    np.testing.assert_array_equal(r2.weights, [0.5, 0.5])
    r3 = ex.update(np.array([[1.0], [2.0]]))
    assert not r3.extras["warmup"]
    np.testing.assert_allclose(
        r3.extras["ratio"], np.array([3**-0.5, 4 / np.sqrt(12)]) / ex.baseline
    )


def test_a_task_with_zero_baseline_takes_its_first_positive_estimate():
    ex = ExcessMTL(2, robust_step_size=1.0, eps=0.0)
    ex.update(np.array([[1.0, 0.0], [0.0, 0.0]]))  # task 1: baseline 0
    res = ex.update(np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert res.extras["ratio"][1] == 0.0 and np.isfinite(res.weights).all()
    res = ex.update(np.array([[1.0, 0.0], [0.0, 5.0]]))
    assert res.extras["ratio"][1] == 1.0  # its baseline is this estimate
    np.testing.assert_allclose(ex.baseline[1], 5.0)
    assert np.isfinite(res.weights).all()


@given(grads_matrices(max_tasks=8, max_dim=6))
def test_weights_stay_finite_on_hard_families(J):
    K = J.shape[0]
    ex = ExcessMTL(K, robust_step_size=100.0)
    for s in (1.0, 1e30, 1e-30, 1.0):
        res = ex.update(J * s)
        assert np.isfinite(res.weights).all() and (res.weights >= 0).all()
        assert res.weights.sum() == pytest.approx(1.0, abs=1e-12)


def test_huge_step_saturates_instead_of_overflowing():
    ex = ExcessMTL(3, robust_step_size=1e300)
    ex.update(np.ones((3, 2)))
    w = ex.update(np.array([[2.0, 2.0], [1.0, 1.0], [1.0, 1.0]])).weights
    np.testing.assert_array_equal(w, [1.0, 0.0, 0.0])


def test_k128_float32():
    rng = np.random.default_rng(1)
    ex = ExcessMTL(128)
    for _ in range(3):
        J = rng.standard_normal((128, 50)).astype(np.float32)
        res = ex.update(J)
    assert res.direction.dtype == np.float32 and np.isfinite(res.weights).all()
    np.testing.assert_allclose(
        res.direction, res.weights @ J.astype(np.float64), rtol=1e-4, atol=1e-5
    )


def test_needs_grads_and_a_fixed_width():
    assert ExcessMTL.needs_grads
    ex = ExcessMTL(2)
    with pytest.raises(ValueError, match="needs grads"):
        ex.update(gram=np.eye(2))
    J = np.array([[1.0, 0.0], [0.0, 1.0]])
    res = ex.update(J, gram=J @ J.T)
    np.testing.assert_allclose(res.gram, J @ J.T)
    before = ex.state_dict()
    with pytest.raises(ValueError, match="columns"):
        ex.update(np.ones((2, 3)))
    with pytest.raises(ValueError, match="built for 2 tasks"):
        ex.update(np.ones((3, 2)))
    with pytest.raises(ValueError, match="magnitude"):
        ex.update(np.array([[1e200, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="gram does not match"):
        ex.update(J, gram=2 * J @ J.T)
    assert same_plain(before, ex.state_dict())


def test_state_round_trip_is_bit_identical():
    Js = steps(3, 5, 10, 4)
    a = ExcessMTL(3, robust_step_size=0.7, n_warmup_steps=2, weights_sum="num-tasks")
    for J in Js[:5]:
        a.update(J)
    b = ExcessMTL(3)
    b.load_state_dict(a.state_dict())
    assert (b.robust_step_size, b.n_warmup_steps, b.weights_sum, b.step) == (0.7, 2, "num-tasks", 5)
    for J in Js[5:]:
        np.testing.assert_array_equal(a.update(J).weights, b.update(J).weights)
    a.reset()
    assert a.step == 0 and a.baseline is None and a.state_dict()["sq_sum"] is None


@pytest.mark.parametrize(
    "where, key, bad, match",
    [
        (None, "weights", np.array([0.5, 0.5, 0.5]), "simplex"),
        (None, "sq_sum", np.ones((2, 4)), "3 x M"),
        (None, "sq_sum", -np.ones((3, 4)), "sq_sum"),
        (None, "sq_sum", None, "sq_sum"),
        (None, "baseline", None, "baseline"),
        (None, "baseline", np.array([1.0, -1.0, 1.0]), "baseline"),
        (None, "warmup_sum", np.array([np.nan, 1.0, 1.0]), "warmup_sum"),
        ("hyperparameters", "n_warmup_steps", 0, "n_warmup_steps"),
        ("hyperparameters", "weights_sum", "two", "weights_sum"),
        ("hyperparameters", "robust_step_size", 0.0, "robust_step_size"),
    ],
)
def test_corrupt_state_is_refused_and_changes_nothing(where, key, bad, match):
    ex = ExcessMTL(3)
    for J in steps(3, 4, 3, 0):
        ex.update(J)
    before = ex.state_dict()
    state = ex.state_dict()
    (state if where is None else state[where])[key] = bad
    with pytest.raises(ValueError, match=match):
        ex.load_state_dict(state)
    assert same_plain(before, ex.state_dict())


def test_registered_as_a_stateful_method():
    entry = solvers.info("excess-mtl")
    assert entry.kind == "stateful-gradient" and "Excess Risks" in entry.paper
    assert solvers.method("excess_mtl", num_tasks=3, robust_step_size=0.5).robust_step_size == 0.5
    for kwargs, name in [
        ({"robust_step_size": 0.0}, "robust_step_size"),
        ({"eps": -1.0}, "eps"),
        ({"baseline_eps": -1.0}, "baseline_eps"),
        ({"weights_sum": "k"}, "weights_sum"),
    ]:
        with pytest.raises(ValueError, match=name):
            ExcessMTL(2, **kwargs)
