"""FAMO: the weights z_i / D_i (normalised), the logit update from the change of log losses,
against the authors' algorithm written out in torch (autograd, torch's Adam and SGD with
weight decay), against torchjd's FAMO scalariser, and the paper's properties."""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paretomtl.weighting import FAMO
from paretomtl.weighting.famo import log_gaps
from tests.asserts import assert_same_state

BIGGEST = float(np.finfo(np.float64).max)


class Reference:
    """The authors' FAMO (famo.py, LibMTL's FAMO.py, the paper's Algorithm 2), in torch.

    weights(L): the gradient in L of sum_i z_i log(D_i) / c, c = sum_j z_j / D_j held
    constant, D = L - m + eps. update(before, after): the logits' gradient is the
    vector-Jacobian product of softmax with delta = log D(before) - log D(after); torch's
    Adam (or SGD) with weight_decay = gamma steps them.
    """

    def __init__(self, K, lr, gamma, optimizer="adam", min_losses=0.0, eps=1e-8):
        self.torch = torch = pytest.importorskip("torch")
        self.xi = torch.zeros(K, dtype=torch.float64, requires_grad=True)
        make = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        self.opt = make([self.xi], lr=lr, weight_decay=gamma)
        self.m = torch.as_tensor(np.broadcast_to(min_losses, (K,)).copy(), dtype=torch.float64)
        self.eps = eps

    def weights(self, L, xi=None):
        """The weights for losses L at the reference's logits (or at ``xi``)."""
        torch = self.torch
        Lt = torch.tensor(L, dtype=torch.float64, requires_grad=True)
        logits = self.xi if xi is None else torch.tensor(xi, dtype=torch.float64)
        z = torch.softmax(logits, -1).detach()
        D = Lt - self.m + self.eps
        c = (z / D).sum().detach()
        (D.log() * z / c).sum().backward()
        return Lt.grad.numpy().copy()

    def update(self, before, after):
        torch = self.torch
        b = torch.tensor(before, dtype=torch.float64)
        a = torch.tensor(after, dtype=torch.float64)
        delta = (b - self.m + self.eps).log() - (a - self.m + self.eps).log()
        d = torch.autograd.grad(torch.softmax(self.xi, -1), self.xi, grad_outputs=delta)[0]
        self.opt.zero_grad()
        self.xi.grad = d
        self.opt.step()

    @property
    def logits(self):
        return self.xi.detach().numpy().copy()

    def adam_moments(self):
        """Adam's bias-corrected moments (m_hat, v_hat) after the last step."""
        state = self.opt.state[self.xi]
        t = float(state["step"])
        m = state["exp_avg"].numpy() / (1.0 - 0.9**t)
        v = state["exp_avg_sq"].numpy() / (1.0 - 0.999**t)
        return m, v


class LogitTolerance:
    """A first-order bound on how far two float64 runs of the same logit updates drift.

    Each step's gradient g = z (delta - z.delta) + gamma xi is rounded by both codes:
    by <= (K + 2) u z_i (|delta_i| + sum_j z_j |delta_j|) each, u = 2^-53; a drift e
    of the logits moves z by e^(2e) - 1 ~ 2e relative and so g by <= 6 e max|delta|
    (+ gamma e). SGD moves the logits by lr times that. Adam's step lr m_hat /
    (sqrt(v_hat) + eps) moves by <= lr R / (sqrt(v_hat) + eps) (1 + |m_hat| /
    (sqrt(v_hat) + eps)) when every gradient in its memory moves by <= R (m_hat is
    a weighted mean of them, sqrt(v_hat) a weighted RMS): its eps = 1e-8 turns a
    gradient that is pure rounding (~1e-17, e.g. tasks whose logs fall equally) into
    a step of ~lr 1e-9, whichever way each code rounds it.
    """

    def __init__(self, K, lr, gamma, optimizer):
        self.K, self.lr, self.gamma, self.optimizer = K, lr, gamma, optimizer
        self.drift = 0.0
        self.memory = 0.0
        self.travel = 0.0  # how far either run's logits can have moved from the start

    def step(self, xi, before, after, ref, m=0.0, eps=1e-8):
        delta = np.log(np.asarray(before) - m + eps) - np.log(np.asarray(after) - m + eps)
        z = np.exp(xi - xi.max())
        z /= z.sum()
        absd = np.abs(delta)
        rounding = 2 * (self.K + 2) * 2.0**-53 * float((z * (absd + z @ absd)).max())
        rounding += 2 * 2.0**-53 * self.gamma * float(np.abs(xi).max())
        error = rounding + (6 * float(absd.max()) + self.gamma) * self.drift
        if self.optimizer == "sgd":
            self.drift += self.lr * error
            # |g_i| <= z_i 2 max|delta| + gamma |xi_i|, for either run's logits
            self.travel += self.lr * (
                2 * float(absd.max()) + self.gamma * (float(np.abs(xi).max()) + self.travel)
            )
            return
        self.travel += 3.17 * self.lr
        self.memory = max(self.memory, error)
        m_hat, v_hat = ref.adam_moments()
        denominator = np.sqrt(v_hat) + 1e-8
        factor = (1.0 + np.abs(m_hat) / denominator) / denominator
        self.drift += self.lr * self.memory * float(factor.max())

    def weights_rtol(self):
        # w = softmax(xi - log D): a logit drift e moves each weight by <= e^(2e) - 1.
        return 1e-12 + float(np.expm1(2.0 * min(self.drift, 1.0)))

    def check(self, famo, ref, L):
        """Our weights and logits against the reference's, as far as float64 decides them.

        While the bound stays <= 1e-6, both agree within it. Past that (Adam met
        gradients that are rounding and amplified them by up to 1 / eps = 1e8, so the
        two runs may legitimately part), what stays checkable: our weights are the
        authors' formula at our own logits, and the logits are within the two runs'
        steps (Adam, Kingma & Ba: each step <= lr (1 - beta1) / sqrt(1 - beta2) < 3.17 lr
        per logit; by Cauchy-Schwarz on the moments' weights, sqrt(10 * 5.3 * 0.1) < 2.3
        in the first 10 steps. SGD: lr |g|). SGD's bound grows by up to 1 + 6 lr
        max|delta| a step: it is a bound, not an estimate.
        """
        w = famo.update(L)
        if self.drift <= 1e-6:
            np.testing.assert_allclose(w, ref.weights(L), rtol=self.weights_rtol())
            np.testing.assert_allclose(famo.logits, ref.logits, rtol=1e-11, atol=1e-13 + self.drift)
            return
        np.testing.assert_allclose(w, ref.weights(L, famo.logits), rtol=1e-12)
        gap = np.abs(famo.logits - ref.logits).max()
        assert gap <= 2 * self.travel + 1e-6


runs = st.integers(1, 6).flatmap(
    lambda K: st.lists(
        st.lists(st.floats(1e-4, 1e3), min_size=K, max_size=K), min_size=1, max_size=10
    )
)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@given(losses=runs, lr=st.floats(1e-3, 0.5), gamma=st.sampled_from([0.0, 1e-3, 0.1]))
# Found by the thorough profile: delta = (0, 0, 0, -log 2, log 2) makes the first three
# gradient entries 0 but for rounding (~1e-18 here, exactly 0 in torch), which Adam's eps
# turns into logits 9e-11 apart and weights 6e-11 apart (LogitTolerance bounds it).
@example(losses=[[1.0, 1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 2.0, 1.0]], lr=0.5, gamma=0.0)
def test_deferred_updates_match_the_authors_algorithm(optimizer, losses, lr, gamma):
    # Here each call first moves the logits from the previous call's losses to these,
    # then weights these: the authors' loop with L'_t = L_{t+1}.
    K = len(losses[0])
    famo = FAMO(K, lr=lr, gamma=gamma, optimizer=optimizer)
    ref = Reference(K, lr, gamma, optimizer)
    tol = LogitTolerance(K, lr, gamma, optimizer)
    previous = None
    for L in losses:
        if previous is not None:
            xi = ref.logits
            ref.update(previous, L)
            tol.step(xi, previous, L, ref)
        tol.check(famo, ref, L)
        previous = L
    assert famo.step == len(losses) - 1


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@given(losses=runs, seed=st.integers(0, 2**31))
def test_observe_follows_the_authors_order(optimizer, losses, seed):
    # The authors: weights for L_t, the network's step, then the logits from L_t to the
    # same batch's L'_t. observe(L'_t) is that update.
    K = len(losses[0])
    rng = np.random.default_rng(seed)
    famo = FAMO(K, lr=0.05, gamma=1e-3, optimizer=optimizer, min_losses=-0.5, eps=1e-6)
    ref = Reference(K, 0.05, 1e-3, optimizer, min_losses=-0.5, eps=1e-6)
    tol = LogitTolerance(K, 0.05, 1e-3, optimizer)
    for L in losses:
        after = np.array(L) * rng.uniform(0.5, 1.2, K)
        tol.check(famo, ref, L)  # weights, and the logits of the last observe
        famo.observe(after)
        xi = ref.logits
        ref.update(L, after)
        tol.step(xi, L, after, ref, m=-0.5, eps=1e-6)
    tol.check(famo, ref, losses[-1])
    assert famo.step == len(losses)


def torchjd_weights(scalarizer, L, torch):
    Lt = torch.tensor(L, dtype=torch.float64, requires_grad=True)
    scalarizer(Lt).backward()
    return Lt.grad.numpy().copy()


@pytest.mark.parametrize("order", ["deferred", "observe"])
def test_matches_torchjd_famo(order):
    torch = pytest.importorskip("torch")
    scalarization = pytest.importorskip("torchjd.scalarization")
    rng = np.random.default_rng(5)
    worst_w = worst_xi = 0.0
    for K in (1, 2, 5, 10, 32, 128):
        jd = scalarization.FAMO(K).double()  # lr 0.025, weight decay 1e-3, min_losses 0
        ours = FAMO(K)
        previous = None
        for t in range(30):
            # hard inputs too: losses over twelve decades, some at their minimum 0
            L = 10.0 ** rng.uniform(-6, 6, K) if t % 3 else rng.uniform(0, 2, K)
            if t % 5 == 4:
                L[rng.integers(K)] = 0.0
            if order == "deferred" and previous is not None:
                jd.update(torch.tensor(L))
            w_ref = torchjd_weights(jd, L, torch)
            w = ours.update(L)
            if order == "observe":
                after = L * rng.uniform(0.3, 1.1, K)
                jd.update(torch.tensor(after))
                ours.observe(after)
            previous = L
            worst_w = max(worst_w, float((np.abs(w - w_ref) / w_ref).max()))
            xi_ref = jd._w.detach().numpy()
            scale = np.maximum(np.abs(xi_ref), 1e-3)
            worst_xi = max(worst_xi, float((np.abs(ours.logits - xi_ref) / scale).max()))
    assert worst_w <= 1e-12, worst_w
    assert worst_xi <= 1e-10, worst_xi


@given(
    xi=st.lists(st.floats(-5, 5), min_size=2, max_size=6),
    data=st.data(),
    lr=st.floats(1e-3, 1.0),
    gamma=st.floats(0.0, 0.5),
)
def test_sgd_is_the_papers_algorithm_1_with_the_softmax_jacobian(xi, data, lr, gamma):
    # xi <- xi - lr (J_z^T delta + gamma xi), J_z = diag(z) - z z^T, by hand.
    K = len(xi)
    before = np.array(data.draw(st.lists(st.floats(1e-3, 1e3), min_size=K, max_size=K)))
    after = np.array(data.draw(st.lists(st.floats(1e-3, 1e3), min_size=K, max_size=K)))
    famo = FAMO(K, lr=lr, gamma=gamma, optimizer="sgd")
    state = famo.state_dict()
    state["logits"] = np.array(xi)  # a warm start
    famo.load_state_dict(state)
    famo.update(before)
    famo.update(after)
    x = np.array(xi)
    z = np.exp(x) / np.exp(x).sum()
    J = np.diag(z) - np.outer(z, z)
    delta = np.log(before + 1e-8) - np.log(after + 1e-8)
    expected = x - lr * (J.T @ delta + gamma * x)
    np.testing.assert_allclose(famo.logits, expected, rtol=1e-12, atol=1e-13)


def test_hand_worked_two_tasks():
    # L = (1, 3): z = (1/2, 1/2), w proportional to (1, 1/3) -> (3/4, 1/4).
    famo = FAMO(2, eps=1e-300)
    np.testing.assert_allclose(famo.update([1.0, 3.0]), [0.75, 0.25], rtol=1e-15)
    # L = (0.5, 3): delta = (log 2, 0), z.delta = log(2)/2, grad = (1, -1) log(2) / 4;
    # Adam's first step is lr g / (|g| + 1e-8).
    w = famo.update([0.5, 3.0])
    g = math.log(2) / 4
    xi = 0.025 * g / (g + 1e-8)
    np.testing.assert_allclose(famo.logits, [-xi, xi], rtol=1e-13)
    a, b = math.exp(-xi) / 0.5, math.exp(xi) / 3.0
    np.testing.assert_allclose(w, [a / (a + b), b / (a + b)], rtol=1e-14)


@given(losses=runs)
def test_weights_are_a_convex_combination(losses):
    famo = FAMO(len(losses[0]), lr=0.2)
    for L in losses:
        w = famo.update(L)
        assert (w > 0).all()
        assert abs(w.sum() - 1.0) <= 1e-14


def test_equal_rates_of_decrease_leave_the_logits_in_place():
    # Every log loss falls by the same amount: J_z^T delta = 0, so with gamma = 0 the
    # logits stay (Adam then sees only rounding, ~1e-17, and moves by ~1e-10).
    famo = FAMO(4, gamma=0.0, eps=1e-300)
    L = np.array([1.0, 10.0, 0.1, 3.0])
    for t in range(20):
        famo.update(L * 0.9**t)
    np.testing.assert_allclose(famo.logits, 0.0, atol=1e-8)


def test_the_lagging_task_gains_weight():
    # Task 1's loss stalls while task 0's falls: task 1's logit, and its share of z, grow.
    famo = FAMO(2, gamma=0.0)
    for t in range(50):
        famo.update([0.95**t, 1.0])
    xi = famo.logits
    assert xi[1] > 0.5 > -0.5 > xi[0]


def test_a_common_scale_of_the_losses_changes_nothing():
    # w and delta depend on the ratios D_i(t) / D_i(t') and D_i / D_j only (eps aside).
    rng = np.random.default_rng(2)
    a, b = FAMO(3, eps=1e-300), FAMO(3, eps=1e-300)
    for _ in range(15):
        L = rng.uniform(0.1, 2.0, 3)
        np.testing.assert_allclose(b.update(1e6 * L), a.update(L), rtol=1e-12)
    np.testing.assert_allclose(b.logits, a.logits, rtol=1e-10, atol=1e-13)


def test_min_losses_shift_the_losses():
    rng = np.random.default_rng(4)
    a, b = FAMO(3), FAMO(3, min_losses=[-2.0, 0.5, 10.0])
    for _ in range(10):
        L = rng.uniform(0.1, 2.0, 3)
        np.testing.assert_allclose(b.update(L + b.min_losses), a.update(L), rtol=1e-12)
    np.testing.assert_allclose(b.logits, a.logits, rtol=1e-10, atol=1e-13)


def test_log_gap_beyond_float64_range_is_exact():
    # L - m = 3e308 overflows; log D is computed from the quarters, to rounding.
    got = log_gaps(np.array([1.5e308, 2.0]), np.array([-1.5e308, 1.0]), 1e-8)
    expected = [math.log(3.0) + 308 * math.log(10.0), math.log(1.0 + 1e-8)]
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    famo = FAMO(2, min_losses=[-1.5e308, 0.0], eps=1e-8)
    w = famo.update([1.5e308, 1.0])  # w_0 = (1 / 3e308) / (1 / 3e308 + 1 / D_1): subnormal
    # (the softmax of logs near -709 carries ~1e-13 of relative rounding)
    np.testing.assert_allclose(w, [(1.0 + 1e-8) / 3.0 * 1e-308, 1.0], rtol=1e-12)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("lr", [1e-3, 1.0, 1e300, BIGGEST])
@pytest.mark.parametrize("gamma", [0.0, 1e-3, BIGGEST])
def test_extreme_inputs_keep_weights_and_logits_finite(optimizer, lr, gamma):
    famo = FAMO(3, lr=lr, gamma=gamma, optimizer=optimizer)
    for L in ([0.0, 1e308, 1.0], [BIGGEST, 0.0, 1e-320], [1.0, 1.0, 1.0], [0.0, 0.0, BIGGEST]):
        w = famo.update(L)
        assert np.isfinite(w).all() and (w >= 0).all() and abs(w.sum() - 1) < 1e-12
        assert np.isfinite(famo.logits).all() and np.abs(famo.logits).max() <= 1e300
        FAMO(3, lr=lr, gamma=gamma, optimizer=optimizer).load_state_dict(famo.state_dict())


def test_defaults():
    famo = FAMO(3)
    assert (famo.lr, famo.gamma, famo.optimizer, famo.eps) == (0.025, 1e-3, "adam", 1e-8)
    np.testing.assert_array_equal(famo.min_losses, np.zeros(3))
    np.testing.assert_array_equal(famo.logits, np.zeros(3))


def test_a_loss_below_its_minimum_names_the_task_and_changes_nothing():
    famo = FAMO(3, min_losses=[0.0, 1.0, 0.0])
    famo.update([1.0, 2.0, 3.0])
    before = famo.state_dict()
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\) is 0.5; .* min_losses\[1\]"):
        famo.update([1.0, 0.5, 3.0])
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\)"):
        famo.observe([1.0, 0.5, 3.0])
    assert_same_state(famo.state_dict(), before)


def test_observe_needs_a_pending_update():
    famo = FAMO(2)
    with pytest.raises(ValueError, match="observe"):
        famo.observe([1.0, 1.0])
    famo.update([1.0, 2.0])
    famo.observe([0.5, 2.0])
    with pytest.raises(ValueError, match="observe"):
        famo.observe([0.5, 2.0])
    xi = famo.logits
    famo.update([0.4, 1.0])  # no logit step of its own after observe
    np.testing.assert_array_equal(famo.logits, xi)
    assert famo.step == 1


def test_resume_with_observe_is_bit_identical():
    rng = np.random.default_rng(6)
    seq = [rng.uniform(0.1, 2, 3) for _ in range(8)]
    straight = FAMO(3, lr=0.1)
    first = FAMO(3, lr=0.1)
    for t, L in enumerate(seq):
        w = straight.update(L)
        straight.observe(0.9 * L)
        if t < 4:
            first.update(L)
            first.observe(0.9 * L)
        elif t == 4:
            resumed = FAMO(3, lr=0.1)
            resumed.load_state_dict(first.state_dict())
        if t >= 4:
            assert resumed.update(L).tobytes() == w.tobytes()
            resumed.observe(0.9 * L)
    assert_same_state(resumed.state_dict(), straight.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": 0.0}, ValueError, "lr"),
        ({"gamma": -1e-3}, ValueError, "gamma"),
        ({"gamma": math.inf}, ValueError, "gamma"),
        ({"eps": 0.0}, ValueError, "eps"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
        ({"min_losses": [0.0, math.nan]}, ValueError, r"min_losses\[1\] \(task 1\)"),
        ({"min_losses": [0.0, 0.0, 0.0]}, ValueError, r"min_losses must have shape \(2,\)"),
        ({"lr": "fast"}, TypeError, "lr"),
    ],
)
def test_bad_options_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        FAMO(2, **kwargs)


def test_corrupt_states_are_refused_and_change_nothing():
    famo = FAMO(2, min_losses=0.5)
    for L in ([1.0, 2.0], [0.9, 1.5]):
        famo.update(L)
    good = famo.state_dict()
    fresh = FAMO(2, min_losses=0.5)
    before = fresh.state_dict()
    broken = [
        ({"logits": np.array([0.0, 2e300])}, "logits"),
        ({"weights": np.array([0.5, 0.6])}, "sum to 1"),
        ({"weights": None}, "weights"),
        ({"previous": np.array([0.1, 1.0])}, "previous"),
        ({"step": 0}, "adam_m"),
        ({"adam_v": np.array([-1.0, 0.0])}, "adam_v"),
    ]
    for change, match in broken:
        with pytest.raises(ValueError, match=match):
            fresh.load_state_dict({**good, **change})
        assert_same_state(fresh.state_dict(), before)
    fresh.load_state_dict(good)
    assert_same_state(fresh.state_dict(), good)


positive_any = st.one_of(
    st.floats(1e-320, BIGGEST),
    st.integers(-320, 308).map(lambda e: 10.0**e),
    st.sampled_from([0.0, 1e-320, 5e-309, 1.0, 1e308, BIGGEST]),
)
rates = st.one_of(st.floats(5e-324, BIGGEST), st.sampled_from([1e-3, 1.0, 1e150, BIGGEST]))


@pytest.mark.filterwarnings("error")
@given(data=st.data())
def test_any_finite_input_gives_finite_weights_or_names_the_task(data):
    K = data.draw(st.integers(1, 4), label="K")
    kwargs = {
        "lr": data.draw(rates, label="lr"),
        "gamma": data.draw(st.one_of(st.floats(0.0, BIGGEST), st.just(1e-3)), label="gamma"),
        "optimizer": data.draw(st.sampled_from(["adam", "sgd"]), label="optimizer"),
        "min_losses": data.draw(st.floats(-BIGGEST, 1e-300), label="min_losses"),
        "eps": data.draw(st.one_of(st.floats(5e-324, BIGGEST), st.just(1e-8)), label="eps"),
    }
    famo = FAMO(K, **kwargs)
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        L = data.draw(st.lists(positive_any, min_size=K, max_size=K), label="losses")
        before = famo.state_dict()
        try:
            w = famo(L)
        except ValueError as exc:  # a loss below min_losses
            assert "(task " in str(exc)
            assert_same_state(famo.state_dict(), before)
            continue
        assert np.isfinite(w).all() and (w >= 0).all() and abs(w.sum() - 1.0) < 1e-12
        if data.draw(st.booleans(), label="observe"):
            after = famo.state_dict()
            try:
                famo.observe(data.draw(st.lists(positive_any, min_size=K, max_size=K)))
            except ValueError as exc:  # a loss below min_losses, named; nothing changed
                assert "(task " in str(exc)
                assert_same_state(famo.state_dict(), after)
        FAMO(K, **kwargs).load_state_dict(famo.state_dict())
