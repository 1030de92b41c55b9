"""STCH as LibMTL trains it: warm-up on log losses, the nadir from the averaging epoch,
then the gradient of K mu logsumexp(p log(L / nadir) / mu); checked against torch
autograd of LibMTL's loss written out, torchjd's STCH scalariser, and the limits in mu."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import SmoothTchebycheff
from tests.asserts import assert_same_state

BIGGEST = float(np.finfo(np.float64).max)


def libmtl_stch_loss(torch, L, nadir, mu, preference):
    """LibMTL's STCH loss after the warm-up (with a preference p; LibMTL's is all 1):
    l = log(L / nadir + 1e-20), K mu log sum exp((p l - max p l) / mu) (+ the max back)."""
    ell = preference * torch.log(L / nadir + 1e-20)
    top = ell.max().detach()
    return mu * torch.log(torch.sum(torch.exp((ell - top) / mu))) * L.numel() + top * L.numel()


def reference_weights(L, nadir, mu, preference):
    torch = pytest.importorskip("torch")
    Lt = torch.tensor(L, dtype=torch.float64, requires_grad=True)
    n = torch.tensor(nadir, dtype=torch.float64)
    p = torch.tensor(preference, dtype=torch.float64)
    libmtl_stch_loss(torch, Lt, n, mu, p).backward()
    return Lt.grad.numpy().copy()


positive = st.floats(1e-3, 1e3)


@given(
    data=st.data(),
    K=st.integers(1, 8),
    mu=st.sampled_from([0.01, 0.1, 0.5, 1.0, 3.0]),
)
def test_weights_are_the_gradient_of_libmtls_loss(data, K, mu):
    L = np.array(data.draw(st.lists(positive, min_size=K, max_size=K), label="L"))
    nadir = np.array(data.draw(st.lists(positive, min_size=K, max_size=K), label="nadir"))
    p = np.array(data.draw(st.lists(st.floats(0.1, 3.0), min_size=K, max_size=K), label="p"))
    stch = SmoothTchebycheff(K, mu=mu, preference=p, warmup_epochs=0, reference=nadir)
    # Weights below 2.2e-308 are subnormal: every operation on them rounds to a multiple
    # of 2^-1074 (absolute), and torch's backward chain then multiplies such an
    # intermediate by at most K max(p) / (mu min(L / nadir) min(nadir)) over ~8 ops (the
    # thorough profile found 1.38e-311 off by 40 spacings in torch; mpmath agrees with
    # ours to 2: see test_subnormal_weight_against_mpmath).
    spread = K * p.max() / (mu * float(np.min(L / nadir)) * nadir.min())
    atol = 8 * 2.0**-1074 * max(spread, 1.0)
    np.testing.assert_allclose(
        stch.update(L), reference_weights(L, nadir, mu, p), rtol=1e-11, atol=atol
    )


def test_subnormal_weight_against_mpmath():
    # The input the thorough profile found: weight 2 is 1.38e-311 (subnormal, spacing
    # 2^-1074 = 4.9e-324, 3.6e-13 relative); mpmath at 50 digits, then within 4 spacings.
    mpmath = pytest.importorskip("mpmath")
    L, nadir, mu = [1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 651.0, 1.0], 0.01
    with mpmath.workdps(50):
        ell = [
            mpmath.log(mpmath.mpf(a) / b + mpmath.mpf(1e-20)) for a, b in zip(L, nadir, strict=True)
        ]
        e = [mpmath.exp((x - max(ell)) / mpmath.mpf(mu)) for x in ell]
        exact = [
            float(4 * e[i] / sum(e) / (mpmath.mpf(L[i]) + mpmath.mpf(1e-20) * nadir[i]))
            for i in range(4)
        ]
    stch = SmoothTchebycheff(4, mu=mu, warmup_epochs=0, reference=np.array(nadir))
    w = stch.update(np.array(L))
    assert 0.0 < w[2] < 2.3e-308  # the subnormal case
    np.testing.assert_allclose(w, exact, rtol=1e-14, atol=4 * 2.0**-1074)


def test_matches_torchjd_stch_on_the_log_losses():
    # torchjd's STCH(mu, weights=p) is mu logsumexp(p f / mu); on f = log(L / n + 1e-20)
    # and times K it is LibMTL's loss, whose gradient in L is our weight vector.
    torch = pytest.importorskip("torch")
    scalarization = pytest.importorskip("torchjd.scalarization")
    rng = np.random.default_rng(0)
    worst = 0.0
    for K in (1, 2, 5, 10, 32, 128):
        for mu in (0.01, 0.1, 1.0, 10.0):
            for trial in range(4):
                # hard inputs: twelve decades, zeros, ties
                L = 10.0 ** rng.uniform(-6, 6, K) if trial % 2 else rng.uniform(0.1, 2, K)
                if trial == 2:
                    L[0] = 0.0
                if trial == 3 and K > 1:
                    L[1] = L[0]
                nadir = rng.uniform(0.5, 2.0, K)
                p = rng.uniform(0.2, 1.0, K)
                Lt = torch.tensor(L, requires_grad=True)
                jd = scalarization.STCH(mu, weights=torch.tensor(p))
                f = torch.log(Lt / torch.tensor(nadir) + 1e-20)
                (K * jd(f)).backward()
                ref = Lt.grad.numpy()
                ours = SmoothTchebycheff(K, mu, p, 0, reference=nadir).update(L)
                big = ref > 1e-300  # both underflow below
                worst = max(worst, float((np.abs(ours - ref)[big] / ref[big]).max()))
                np.testing.assert_allclose(ours[~big], ref[~big], atol=1e-300)
    assert worst <= 1e-12, worst


def libmtl_run(losses_by_epoch, mu, warmup_epochs):
    """LibMTL's STCH.backward loop over epochs, written out: the weights it applies."""
    K = len(losses_by_epoch[0][0])
    out, total, count, nadir = [], np.zeros(K), 0, None
    for epoch, steps in enumerate(losses_by_epoch):
        for L in steps:
            L = np.array(L)
            if epoch < warmup_epochs:
                out.append(1.0 / (L + 1e-20))  # gradient of sum log(L + 1e-20)
            elif epoch == warmup_epochs:
                total += L
                count += 1
                out.append(1.0 / (L + 1e-20))
            else:
                if nadir is None:
                    nadir = total / count
                out.append(reference_weights(L, nadir, mu, np.ones(K)))
    return out


@pytest.mark.parametrize("warmup_epochs", [0, 1, 4])
def test_epochs_follow_libmtls_schedule(warmup_epochs):
    rng = np.random.default_rng(warmup_epochs)
    epochs = [[rng.uniform(0.1, 3.0, 3) * 0.8**e for _ in range(4)] for e in range(7)]
    expected = libmtl_run(epochs, 0.5, warmup_epochs)
    stch = SmoothTchebycheff(3, mu=0.5, warmup_epochs=warmup_epochs)
    got = []
    for e, steps in enumerate(epochs):
        assert stch.phase == (
            "warmup" if e < warmup_epochs else "nadir" if e == warmup_epochs else "stch"
        )
        got += [stch.update(L) for L in steps]
        stch.end_epoch()
    for g, x in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, x, rtol=1e-11)
    np.testing.assert_allclose(stch.nadir, np.mean(epochs[warmup_epochs], axis=0), rtol=1e-14)


def test_per_step_periods():
    stch = SmoothTchebycheff(2, mu=1.0, warmup_epochs=2, per="step")
    seq = [np.array([1.0, 2.0]), np.array([0.5, 4.0]), np.array([2.0, 1.0]), np.array([1.0, 1.0])]
    for L in seq[:3]:  # two warm-up steps, then the nadir step
        np.testing.assert_array_equal(stch.update(L), 1.0 / (L + 1e-20))
    np.testing.assert_array_equal(stch.nadir, seq[2])
    assert stch.phase == "stch" and stch.periods == 3
    # L / n = (1/2, 1): softmax(log) = (1/3, 2/3); w = 2 s / (L + 1e-20 n)
    np.testing.assert_allclose(stch.update(seq[3]), [2 / 3, 4 / 3], rtol=1e-15)


def test_a_given_reference_skips_the_nadir_period():
    stch = SmoothTchebycheff(2, warmup_epochs=1, reference=[2.0, 1.0])
    assert stch.phase == "warmup"
    stch.update([1.0, 1.0])
    stch.end_epoch()
    assert stch.phase == "stch"
    np.testing.assert_array_equal(stch.nadir, [2.0, 1.0])
    # L / n = (1, 1): softmax = (1/2, 1/2), w = 2 (1/2) / L
    np.testing.assert_allclose(stch.update([2.0, 1.0]), [0.5, 1.0], rtol=1e-15)


@pytest.mark.parametrize("mu", [1e-300, 5e-324, 1e-20])
def test_mu_to_zero_is_the_tchebycheff_max(mu):
    # All the weight on the task with the largest p_i log(L_i / n_i): K p_i / (L_i + eps n_i).
    L = np.array([1.0, 3.0, 2.0, 0.5])
    n = np.array([1.0, 1.0, 0.5, 1.0])  # log ratios: 0, log 3, log 4, -log 2
    p = np.array([1.0, 1.0, 0.9, 2.0])  # p l: 0, 1.0986, 1.2477, -1.386
    w = SmoothTchebycheff(4, mu=mu, preference=p, warmup_epochs=0, reference=n).update(L)
    np.testing.assert_array_equal(w[[0, 1, 3]], 0.0)
    np.testing.assert_allclose(w[2], 4 * 0.9 / (2.0 + 1e-20 * 0.5), rtol=1e-15)


def test_mu_to_zero_splits_ties():
    L = np.array([2.0, 2.0, 1.0])
    w = SmoothTchebycheff(3, mu=1e-300, warmup_epochs=0, reference=[1.0, 1.0, 1.0]).update(L)
    np.testing.assert_allclose(w, [3 * 0.5 / 2.0, 3 * 0.5 / 2.0, 0.0], rtol=1e-15)


@pytest.mark.parametrize("mu", [1e300, BIGGEST])
def test_large_mu_is_preference_weighted_live_loss(mu):
    L = np.array([1.0, 3.0, 2e5, 1e-4])
    n = np.array([1.0, 0.5, 2.0, 3.0])
    p = np.array([0.5, 1.0, 2.0, 1.5])
    w = SmoothTchebycheff(4, mu=mu, preference=p, warmup_epochs=0, reference=n).update(L)
    np.testing.assert_allclose(w, p / (L + 1e-20 * n), rtol=1e-15)


@given(
    data=st.data(),
    K=st.integers(1, 8),
    mu=st.floats(1e-6, 1e6),
)
def test_softmax_part_sums_to_one(data, K, mu):
    # sum_i w_i (L_i + 1e-20 n_i) / (K p_i) = sum softmax = 1.
    L = np.array(data.draw(st.lists(st.floats(0.0, 1e6), min_size=K, max_size=K)))
    n = np.array(data.draw(st.lists(st.floats(1e-3, 1e3), min_size=K, max_size=K)))
    p = np.array(data.draw(st.lists(st.floats(0.01, 10.0), min_size=K, max_size=K)))
    w = SmoothTchebycheff(K, mu, p, 0, reference=n).update(L)
    assert (w >= 0).all()
    assert abs((w * (L + 1e-20 * n) / (K * p)).sum() - 1.0) <= 1e-13


def test_scaled_preference_and_mu_scale_the_weights():
    # softmax(c p l / (c mu)) = softmax(p l / mu): the weights scale by c.
    L, n, p = np.array([1.0, 2.0, 0.3]), np.array([1.5, 1.0, 0.2]), np.array([1.0, 0.5, 2.0])
    a = SmoothTchebycheff(3, 0.3, p, 0, reference=n).update(L)
    b = SmoothTchebycheff(3, 0.3 * 8, p * 8, 0, reference=n).update(L)
    np.testing.assert_allclose(b, 8 * a, rtol=1e-14)


def test_losses_of_zero_and_near_float64_limits():
    stch = SmoothTchebycheff(3, warmup_epochs=0, reference=[1.0, 1e-300, 1.0])
    w = stch.update([0.0, BIGGEST, 1e-320])  # L / n overflows for task 1: log L - log n
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w[1], 3.0 / BIGGEST, rtol=1e-12)  # all the softmax on task 1
    np.testing.assert_array_equal(SmoothTchebycheff(2).update([0.0, BIGGEST]), [1e20, 1 / BIGGEST])


def test_a_weight_beyond_float64_names_the_task_and_changes_nothing():
    # L = 0 against a nadir of 1e-300: w = K (1/2) / (1e-20 * 1e-300), beyond float64.
    stch = SmoothTchebycheff(2, mu=1e-3, warmup_epochs=0, reference=[1e-300, 1e-300])
    before = stch.state_dict()
    with pytest.raises(ValueError, match=r"losses\[0\] \(task 0\) is 0.0; its STCH weight"):
        stch.update([0.0, 0.0])
    assert_same_state(stch.state_dict(), before)


def test_a_zero_nadir_names_the_task_and_changes_nothing():
    stch = SmoothTchebycheff(2, warmup_epochs=0)
    stch.update([0.0, 1.0])
    before = stch.state_dict()
    with pytest.raises(ValueError, match=r"average losses\[0\] \(task 0\) is 0.0"):
        stch.end_epoch()
    assert_same_state(stch.state_dict(), before)
    step = SmoothTchebycheff(2, warmup_epochs=0, per="step")
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\) is 0.0; the nadir"):
        step.update([1.0, 0.0])
    assert step.weights is None and step.periods == 0
    step.update([1.0, 2.0])
    np.testing.assert_array_equal(step.nadir, [1.0, 2.0])


def test_end_epoch_misuse():
    with pytest.raises(ValueError, match="per='step'"):
        SmoothTchebycheff(2, per="step").end_epoch()


def test_an_empty_epoch_is_a_no_op():
    # As DWA's: an epoch with no update has no average losses and counts for nothing.
    stch = SmoothTchebycheff(2, warmup_epochs=1)
    assert stch.end_epoch() is False
    assert (stch.phase, stch.state_dict()["periods"]) == ("warmup", 0)
    stch.update([1.0, 2.0])
    assert stch.end_epoch() is True
    assert stch.end_epoch() is False  # a second call: still the nadir epoch, no nadir yet
    assert stch.phase == "nadir" and stch.nadir is None
    stch.update([3.0, 1.0])
    assert stch.end_epoch() is True
    np.testing.assert_array_equal(stch.nadir, [3.0, 1.0])


def test_defaults():
    stch = SmoothTchebycheff(3)
    assert (stch.mu, stch.warmup_epochs, stch.per, stch.reference) == (1.0, 4, "epoch", None)
    np.testing.assert_array_equal(stch.preference, np.ones(3))
    assert stch.phase == "warmup" and stch.nadir is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mu": 0.0}, ValueError, "mu"),
        ({"mu": math.inf}, ValueError, "mu"),
        ({"preference": [1.0, 0.0]}, ValueError, r"preference\[1\] \(task 1\)"),
        ({"preference": [1.0, 1.0, 1.0]}, ValueError, r"preference must have shape \(2,\)"),
        ({"warmup_epochs": -1}, ValueError, "warmup_epochs"),
        ({"warmup_epochs": 1.5}, ValueError, "warmup_epochs"),
        ({"per": "batch"}, ValueError, "per"),
        ({"reference": [1.0, -1.0]}, ValueError, r"reference\[1\] \(task 1\)"),
        ({"mu": "small"}, TypeError, "mu"),
    ],
)
def test_bad_options_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        SmoothTchebycheff(2, **kwargs)


def test_corrupt_states_are_refused_and_change_nothing():
    stch = SmoothTchebycheff(2, warmup_epochs=1)
    for _ in range(2):
        stch.update([1.0, 2.0])
        stch.end_epoch()
    stch.update([0.5, 1.0])
    good = stch.state_dict()
    assert good["nadir"] is not None
    fresh = SmoothTchebycheff(2, warmup_epochs=1)
    before = fresh.state_dict()
    broken = [
        ({"nadir": None}, "nadir"),
        ({"periods": 1}, "nadir"),
        ({"nadir": np.array([0.0, 1.0])}, "nadir"),
        ({"loss_mean": np.array([1.0, 1.0])}, "loss_mean"),
        ({"weights": None}, "weights"),
        ({"count": -1}, "count"),
    ]
    for change, match in broken:
        with pytest.raises(ValueError, match=match):
            fresh.load_state_dict({**good, **change})
        assert_same_state(fresh.state_dict(), before)
    fresh.load_state_dict(good)
    assert_same_state(fresh.state_dict(), good)
    given_ref = SmoothTchebycheff(2, warmup_epochs=0, reference=[1.0, 2.0])
    state = given_ref.state_dict()
    with pytest.raises(ValueError, match="reference"):
        given_ref.load_state_dict({**state, "nadir": np.array([1.0, 3.0])})


positive_any = st.one_of(
    st.floats(1e-320, BIGGEST),
    st.integers(-320, 308).map(lambda e: 10.0**e),
    st.sampled_from([1e-320, 5e-309, 1.0, 1e308, BIGGEST]),
)


@pytest.mark.filterwarnings("error")
@given(data=st.data())
def test_any_positive_input_gives_finite_weights_or_names_the_task(data):
    K = data.draw(st.integers(1, 4), label="K")
    vec = st.lists(positive_any, min_size=K, max_size=K)
    kwargs = {
        "mu": data.draw(st.one_of(st.floats(5e-324, BIGGEST), st.just(1.0)), label="mu"),
        "preference": data.draw(st.one_of(vec, st.just(1.0)), label="preference"),
        "warmup_epochs": data.draw(st.integers(0, 2), label="warmup"),
        "per": data.draw(st.sampled_from(["epoch", "step"]), label="per"),
        "reference": data.draw(st.one_of(st.none(), vec), label="reference"),
    }
    stch = SmoothTchebycheff(K, **kwargs)
    for _ in range(data.draw(st.integers(1, 8), label="steps")):
        L = data.draw(vec, label="losses")
        before = stch.state_dict()
        try:
            w = stch(L)
        except ValueError as exc:
            assert "(task " in str(exc)
            assert_same_state(stch.state_dict(), before)
            continue
        assert np.isfinite(w).all() and (w >= 0).all()
        if stch.per == "epoch" and data.draw(st.booleans(), label="end epoch"):
            stch.end_epoch()
        SmoothTchebycheff(K, **kwargs).load_state_dict(stch.state_dict())
