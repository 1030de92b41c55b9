"""GradVac: the Gram-space computation against the paper's loop on the vectors."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from paretomtl.solvers import GradVac, get, info, pcgrad
from tests.solvers.test_conflict import noisy_steps
from tests.solvers.test_pcgrad import naive_pcgrad
from tests.strategies import grads_matrices


def naive_gradvac(J, orders, targets, beta, every_pair=True):
    """Wang et al.'s Algorithm 1 on the K x M vectors, for one step.

    Returns the adjusted gradients, the new targets, and a condition record: the
    smallest |phi - target| at a decision, the smallest ||g_i'|| relative to the sum of
    the lengths it was built from (cancellation), and the largest sensitivity of an
    adjustment to rounding in phi or the target (the derivatives of w ||g_j|| / ||g_i'||).
    """
    K = J.shape[0]
    targets = targets.copy()
    out = J.astype(np.float64).copy()
    margin, cancel, sens = np.inf, np.inf, 0.0
    for i in range(K):
        g = out[i].copy()
        built = np.linalg.norm(g)
        for j in orders[i]:
            gj = J[j]
            ng, nj = np.linalg.norm(g), np.linalg.norm(gj)
            phi = float(np.clip(g @ gj / (ng * nj), -1, 1)) if ng > 0 and nj > 0 else 0.0
            if built > 0:
                cancel = min(cancel, ng / built)
            t = targets[i, j]
            margin = min(margin, abs(phi - t))
            below = phi < t
            if below and ng > 0 and nj > 0 and 1 - t * t > 0:
                s_phi, s_t = np.sqrt(1 - phi * phi), np.sqrt(1 - t * t)
                w = ng * (t * s_phi - phi * s_t) / (nj * s_t)
                g = g + w * gj
                built += abs(w) * nj
                d_phi = np.inf if (s_phi == 0 and t != 0) else abs(t) / max(s_phi, 1e-300) / s_t
                sens = max(sens, d_phi, s_phi / s_t**3)
            if every_pair or below:
                targets[i, j] = (1 - beta) * t + beta * phi
        out[i] = g
    return out, targets, (margin, cancel, sens)


def well_conditioned(condition):
    margin, cancel, sens = condition
    return margin > 1e-8 and cancel > 1e-3 and sens < 1e4


@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.integers(1, 5),
    st.floats(0.0, 1.5),
    st.sampled_from([1e-2, 0.3, 0.5, 1.0]),
    st.sampled_from(["every-pair", "when-below"]),
    st.integers(0, 2**31 - 1),
)
def test_gram_space_equals_paper_loop_over_steps(J, steps, noise, beta, target_update, seed):
    K = J.shape[0]
    gv = GradVac(K, beta=beta, seed=seed, target_update=target_update)
    targets = np.zeros((K, K))
    for Jt in noisy_steps(J, steps, noise, seed):
        res = gv.update(Jt)
        reference, targets, condition = naive_gradvac(
            Jt, res.extras["orders"], targets, beta, target_update == "every-pair"
        )
        # A decision within rounding of the threshold, or an ill-conditioned step,
        # may go either way in the two routes.
        assume(well_conditioned(condition))
        scale = max(np.abs(reference).sum(axis=0).max(), np.abs(Jt).max(), 1e-300)
        A = res.extras["coefficients"]
        np.testing.assert_allclose(A @ Jt, reference, rtol=0, atol=1e-10 * scale)
        np.testing.assert_allclose(res.direction, reference.sum(axis=0), atol=1e-10 * scale)
        np.testing.assert_allclose(gv.targets, targets, rtol=0, atol=1e-10)
        np.testing.assert_allclose(res.extras["targets"], targets, rtol=0, atol=1e-10)


@given(grads_matrices(min_tasks=2, max_tasks=6, max_dim=8), st.integers(0, 2**31 - 1))
def test_first_step_is_pcgrad(J, seed):
    # With every target at 0 an adjustment is PCGrad's projection; PCGrad's orders
    # also hold i itself, a no-op in first place.
    K = J.shape[0]
    res = GradVac(K, seed=seed).update(J)
    orders = np.column_stack([np.arange(K), res.extras["orders"]])
    _, margin = naive_pcgrad(J, orders)
    assume(margin > 1e-9)
    expected = pcgrad(J, orders=orders)
    # (The counts can differ where a projection left g_i' = 0 in exact arithmetic:
    # PCGrad then may project the rounding residue, a no-op at this tolerance.)
    scale = max(np.abs(expected.extras["coefficients"] @ J).max(), np.abs(J).max(), 1e-300)
    diff = (res.extras["coefficients"] - expected.extras["coefficients"]) @ J
    np.testing.assert_allclose(diff, 0, atol=1e-10 * scale)


def test_targets_follow_the_ema_of_the_cosine():
    # K = 2: each phi is the cosine of the original pair (one other task), so after n
    # steps the target is sum_s beta (1 - beta)^(n - s) cos_s.
    rng = np.random.default_rng(0)
    beta = 0.1
    gv = GradVac(2, beta=beta, seed=0)
    expected = 0.0
    for _ in range(20):
        J = rng.standard_normal((2, 4))
        c = J[0] @ J[1] / np.linalg.norm(J[0]) / np.linalg.norm(J[1])
        res = gv.update(J)
        expected = (1 - beta) * expected + beta * c
        np.testing.assert_allclose(gv.targets[0, 1], expected, rtol=0, atol=1e-14)
        np.testing.assert_allclose(gv.targets[1, 0], expected, rtol=0, atol=1e-14)
        np.testing.assert_allclose(res.extras["cosines"][0, 1], c, atol=1e-14)
    assert gv.step == 20
    np.testing.assert_array_equal(np.diagonal(gv.targets), 0.0)


def test_adjustment_reaches_the_target_cosine():
    # Two tasks whose cosine (-0.6) is below the target: afterwards g_i' has exactly
    # the target's angle with g_j.
    J = np.array([[1.0, 0.0, 0.0], [-0.6, 0.8, 0.0]])
    gv = GradVac(2, beta=0.5, seed=1)
    state = gv.state_dict()
    state["targets"] = np.array([[0.0, 0.3], [0.3, 0.0]])
    gv.load_state_dict(state)
    res = gv.update(J)
    g = res.extras["coefficients"] @ J
    for i, j in ((0, 1), (1, 0)):
        cos = g[i] @ J[j] / np.linalg.norm(g[i]) / np.linalg.norm(J[j])
        assert cos == pytest.approx(0.3, abs=1e-14)
    np.testing.assert_allclose(gv.targets[0, 1], 0.5 * 0.3 + 0.5 * -0.6, atol=1e-15)
    assert res.extras["adjustments"] == 2


def test_when_below_targets_never_rise():
    # LibMTL's variant: targets start at 0 and move only towards lower cosines.
    rng = np.random.default_rng(4)
    gv = GradVac(4, beta=0.5, seed=2, target_update="when-below")
    previous = gv.targets
    for _ in range(30):
        gv.update(rng.standard_normal((4, 6)))
        assert (gv.targets <= previous + 1e-15).all()
        previous = gv.targets
    assert (previous < 0).any()


def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(5)
    Js = [rng.standard_normal((5, 8)) - 0.5 * np.eye(5, 8) for _ in range(7)]
    straight = GradVac(5, beta=0.2, seed=42)
    directions = [straight.update(J).direction for J in Js]
    first = GradVac(5, beta=0.2, seed=42)
    for J in Js[:3]:
        first.update(J)
    state = first.state_dict()
    resumed = GradVac(5, seed=7)  # other seed and beta: the state brings its own
    resumed.load_state_dict(state)
    for J, d in zip(Js[3:], directions[3:], strict=True):
        assert resumed.update(J).direction.tobytes() == d.tobytes()
    assert resumed.targets.tobytes() == straight.targets.tobytes()
    assert resumed.step == straight.step == 7
    # The saved state is a copy: running on does not change it.
    again = GradVac(5, seed=0)
    again.load_state_dict(state)
    assert again.update(Js[3]).direction.tobytes() == directions[3].tobytes()


def test_same_seed_same_result_and_generator_is_shared():
    rng = np.random.default_rng(6)
    Js = [rng.standard_normal((4, 5)) for _ in range(3)]
    a, b = GradVac(4, seed=3), GradVac(4, seed=3)
    for J in Js:
        assert a.update(J).weights.tobytes() == b.update(J).weights.tobytes()
    gen = np.random.default_rng(3)
    c = GradVac(4, seed=gen)
    c.update(Js[0])
    assert gen.bit_generator.state == c.state_dict()["rng"]


def test_gram_only_mean_and_scale_invariance():
    rng = np.random.default_rng(7)
    J = rng.standard_normal((4, 30))
    J[1] = -J[0] + 0.3 * J[1]
    full = GradVac(4, seed=1).update(J)
    gram_only = GradVac(4, seed=1).update(gram=J @ J.T)
    assert gram_only.direction is None
    np.testing.assert_allclose(gram_only.weights, full.weights, rtol=1e-12)
    mean = GradVac(4, seed=1, reduction="mean").update(J)
    np.testing.assert_allclose(mean.weights * 4, full.weights, rtol=1e-14)
    # No eps: a common scale, however small, leaves the weights as they are.
    for s in (1e-12, 1e12):
        scaled = GradVac(4, seed=1).update(J * s)
        np.testing.assert_allclose(scaled.weights, full.weights, rtol=1e-12)


def test_zero_gradients_and_single_task():
    J = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.5]])
    gv = GradVac(3, beta=0.5, seed=0)
    for _ in range(3):
        res = gv.update(J)
        assert np.isfinite(res.weights).all()
        A = res.extras["coefficients"]
        assert A[0, 1] == 0.0 and A[2, 1] == 0.0  # nothing added from a zero gradient
        np.testing.assert_array_equal(res.extras["cosines"][1], 0.0)
    one = GradVac(1, seed=0).update(np.array([[3.0, 4.0]]))
    np.testing.assert_array_equal(one.weights, [1.0])
    assert one.extras["orders"].shape == (1, 0)


def test_target_of_one_is_not_chased():
    # Colinear gradients drive the target to exactly 1 with beta = 1; a later cosine
    # below 1 cannot be lifted to 1 by adding a multiple of g_j: no adjustment.
    gv = GradVac(2, beta=1.0, seed=0)
    gv.update(np.array([[1.0, 0.0], [2.0, 0.0]]))
    assert gv.targets[0, 1] == 1.0
    res = gv.update(np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert res.extras["adjustments"] == 0
    np.testing.assert_array_equal(res.weights, [1.0, 1.0])


def test_registered_as_stateful_gradient():
    assert info("gradvac").kind == "stateful-gradient"
    assert get("gradvac") is GradVac
    assert "ICLR 2021" in info("gradvac").paper


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_tasks"):
        GradVac(0)
    with pytest.raises(ValueError, match="beta"):
        GradVac(2, beta=1.5)
    with pytest.raises(ValueError, match="reduction"):
        GradVac(2, reduction="max")
    with pytest.raises(ValueError, match="target_update"):
        GradVac(2, target_update="sometimes")
    with pytest.raises(TypeError, match="seed"):
        GradVac(2, seed=1.5)
    gv = GradVac(3, seed=0)
    gv.update(np.eye(3))
    with pytest.raises(ValueError, match="K must stay the same"):
        gv.update(np.eye(4))
    with pytest.raises(ValueError, match="K must stay the same"):
        gv.update(gram=np.eye(2))
    assert gv.step == 1
    with pytest.raises(ValueError, match="2 tasks"):
        gv.load_state_dict(GradVac(2).state_dict())


def test_agrees_with_torchjd():
    # TorchJD's GradVacWeighting (eps = 0) is the paper's rule in Gram space too. For
    # K = 2 the orders are fixed and the objects agree directly; for K = 3 TorchJD's
    # orders (torch.randperm) are replayed through the paper loop above.
    torch = pytest.importorskip("torch")
    aggregation = pytest.importorskip("torchjd.aggregation")
    rng = np.random.default_rng(0)
    theirs = aggregation.GradVacWeighting(beta=0.5, eps=0.0)
    ours = GradVac(2, beta=0.5, seed=0)
    for _ in range(6):
        J = rng.standard_normal((2, 5))
        J[1] = -0.7 * J[0] + 0.5 * J[1]
        w = theirs(torch.from_numpy(J @ J.T)).numpy()
        np.testing.assert_allclose(ours.update(J).weights, w, rtol=1e-12)
    np.testing.assert_allclose(ours.targets, theirs._phi_t.numpy(), atol=1e-15)

    K, theirs, targets = 3, aggregation.GradVacWeighting(beta=0.5, eps=0.0), np.zeros((3, 3))
    torch.manual_seed(7)
    for _ in range(6):
        J = rng.standard_normal((K, 6))
        J[1] = -0.8 * J[0] + 0.5 * J[1]
        before = torch.random.get_rng_state()
        w = theirs(torch.from_numpy(J @ J.T)).numpy()
        torch.random.set_rng_state(before)
        others = [[j for j in range(K) if j != i] for i in range(K)]
        orders = np.array([[o[p] for p in torch.randperm(K - 1).tolist()] for o in others])
        reference, targets, _ = naive_gradvac(J, orders, targets, 0.5)
        np.testing.assert_allclose(w @ J, reference.sum(axis=0), atol=1e-12)
    np.testing.assert_allclose(theirs._phi_t.numpy(), targets, atol=1e-14)
