"""Finite weights for every finite positive input, or a clear error: never inf, NaN or a warning.

Over every registered weighting, hypothesis draws the options (learning rates up to
1.8e308, temperatures from 5e-324, exponents of any size, given losses from 1e-320) and
a sequence of steps whose losses span 1e-320 .. 1.8e308 (gradient norms 0 .. 1.8e308
for GradNorm). Each step returns K finite weights >= 0 and leaves a finite state that
the class's own checks accept when it is loaded into a fresh object; or it raises a
ValueError naming the task (or the option) and changes nothing. Warnings are errors
here: no RuntimeWarning (overflow, invalid value) may escape.
"""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import weighting
from paretomtl.weighting import (
    DynamicWeightAverage,
    GradNorm,
    LiveLossNormalization,
    SmoothTchebycheff,
    UncertaintyWeighting,
)

pytestmark = pytest.mark.filterwarnings("error")

BIGGEST = float(np.finfo(np.float64).max)
positive = st.one_of(
    st.floats(1e-320, BIGGEST),
    st.integers(-320, 308).map(lambda e: 10.0**e),
    st.sampled_from([1e-320, 5e-309, 5.6e-309, 2.2250738585072014e-308, 1.0, 1e308, BIGGEST]),
)
rates = st.one_of(
    st.floats(5e-324, BIGGEST),
    st.integers(-320, 308).map(lambda e: 10.0**e),
    st.sampled_from([1e-3, 1.0, 1e3, 1e150, 1e300, BIGGEST]),
)
huge_reals = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1e-300, -1e-300, 1e300, -1e300, BIGGEST, -BIGGEST]),
)


def vectors(elements, K):
    return st.lists(elements, min_size=K, max_size=K)


def options(name, K):
    """A strategy for the constructor's keyword options of weighting ``name``."""
    choose = st.sampled_from
    table = {
        "constant": st.fixed_dictionaries({"weights": vectors(st.floats(0.0, BIGGEST), K)}),
        "equal": st.just({}),
        "initial-loss": st.one_of(
            st.fixed_dictionaries({"warmup_steps": st.integers(1, 4)}),
            st.fixed_dictionaries({"initial_losses": vectors(positive, K)}),
        ),
        "prior-loss": st.fixed_dictionaries({"prior_losses": vectors(positive, K)}),
        "live-loss": st.just({}),
        "gls": st.just({}),
        "generalized-mean": st.fixed_dictionaries(
            {"gamma": st.one_of(huge_reals, choose([np.inf, -np.inf]))}
        ),
        "uncertainty": st.fixed_dictionaries(
            {
                "task_types": choose(["regression", "classification"]),
                "lr": rates,
                "optimizer": choose(["adam", "sgd"]),
                "initial_log_variances": st.floats(-700.0, BIGGEST),
            }
        ),
        "dwa": st.fixed_dictionaries(
            {
                "temperature": st.one_of(st.floats(5e-324, BIGGEST), choose([5e-324, 1e-300])),
                "per": choose(["epoch", "step"]),
            }
        ),
        "rlw": st.fixed_dictionaries(
            {"seed": st.integers(0, 2**32 - 1), "distribution": choose(["normal", "uniform"])}
        ),
        "imtl-l": st.fixed_dictionaries(
            {
                "lr": rates,
                "optimizer": choose(["adam", "sgd"]),
                "initial_scales": st.floats(-708.0, 708.0),
            }
        ),
        "famo": st.fixed_dictionaries(
            {
                "lr": rates,
                "gamma": st.one_of(st.floats(0.0, BIGGEST), choose([0.0, 1e-3])),
                "optimizer": choose(["adam", "sgd"]),
                "min_losses": st.one_of(st.floats(-BIGGEST, 0.0), vectors(positive, K)),
                "eps": st.one_of(st.floats(5e-324, BIGGEST), choose([1e-8])),
            }
        ),
        "stch": st.fixed_dictionaries(
            {
                "mu": st.one_of(st.floats(5e-324, BIGGEST), choose([1e-300, 1.0])),
                "preference": st.one_of(st.just(1.0), vectors(positive, K)),
                "warmup_epochs": st.integers(0, 2),
                "per": choose(["epoch", "step"]),
                "reference": st.one_of(st.none(), vectors(positive, K)),
            }
        ),
        "cosmos": st.fixed_dictionaries(
            {
                "lambda_": st.one_of(st.floats(0.0, BIGGEST), choose([0.0, 2.0, 1e300])),
                "preference": st.one_of(
                    st.none(), st.just(1.0), vectors(st.one_of(st.just(0.0), positive), K)
                ),
                "eps": st.one_of(st.floats(5e-324, BIGGEST), choose([1e-8, 5e-324])),
            }
        ),
        "pbi": st.fixed_dictionaries(
            {
                "theta": st.one_of(st.floats(0.0, BIGGEST), choose([0.0, 5.0, BIGGEST])),
                "preference": st.one_of(
                    st.none(), st.just(1.0), vectors(st.one_of(st.just(0.0), positive), K)
                ),
                "reference": st.one_of(st.none(), huge_reals, vectors(huge_reals, K)),
                "eps": st.one_of(st.floats(0.0, BIGGEST), choose([0.0, 1e-12])),
            }
        ),
        "gradnorm": st.fixed_dictionaries(
            {
                "alpha": st.one_of(st.floats(0.0, BIGGEST), choose([0.0, 1.5, 1e300])),
                "lr": rates,
                "optimizer": choose(["adam", "sgd"]),
                "min_weight": st.one_of(
                    st.floats(0.0, 1.0, exclude_min=True, exclude_max=True), choose([5e-324])
                ),
                "initial_losses": st.one_of(st.none(), vectors(positive, K)),
            }
        ),
    }
    return table[name]


def non_finite_arrays(state, path="state"):
    """Paths of the non-finite numbers in a state dict, but for the options (gamma may be
    +-inf)."""
    bad = []
    if isinstance(state, dict):
        for k, v in state.items():
            if k != "hyperparameters":
                bad += non_finite_arrays(v, f"{path}[{k!r}]")
    elif isinstance(state, list | tuple):
        for i, v in enumerate(state):
            bad += non_finite_arrays(v, f"{path}[{i}]")
    elif isinstance(state, np.ndarray) and state.dtype.kind == "f":
        if not np.isfinite(state).all():
            bad.append(path)
    elif isinstance(state, float) and not np.isfinite(state):
        bad.append(path)
    return bad


def same_state(a, b):
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and a == b


NAMED = re.compile(r"\(task \d+\)|\blr\b")


@pytest.mark.parametrize("name", weighting.available())
@given(data=st.data())
def test_weights_and_state_stay_finite_or_the_error_names_the_task(name, data):
    K = data.draw(st.integers(1, 4), label="K")
    kwargs = data.draw(options(name, K), label="options")
    cls = weighting.get(name)
    try:
        obj = cls(K, **kwargs)
    except ValueError as exc:  # an option whose reciprocal overflows, say
        assert any(f"{option}[" in str(exc) for option in kwargs), str(exc)
        return
    is_gradnorm = isinstance(obj, GradNorm)
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        losses = data.draw(vectors(positive, K), label="losses")
        before = obj.state_dict()
        try:
            if is_gradnorm:
                norms = data.draw(vectors(st.one_of(st.just(0.0), positive), K), label="norms")
                w = obj(losses, norms)
            else:
                w = obj(losses)
        except ValueError as exc:
            assert NAMED.search(str(exc)), str(exc)
            assert same_state(obj.state_dict(), before)
            continue
        assert w.dtype == np.float64 and w.shape == (K,)
        signed = getattr(cls, "weight_domain", ">= 0") == "finite"  # COSMOS, PBI
        assert np.isfinite(w).all() and (signed or (w >= 0).all()), (losses, w)
        if isinstance(obj, DynamicWeightAverage | SmoothTchebycheff) and obj.per == "epoch":
            if data.draw(st.booleans(), label="end epoch"):
                obj.end_epoch()
        state = obj.state_dict()
        assert not non_finite_arrays(state), non_finite_arrays(state)
        cls(K, **kwargs).load_state_dict(state)  # the class's own checks accept it


def test_uncertainty_after_a_loss_of_1e308_keeps_learning():
    # Adam's moments used to overflow to inf here, freezing s (and the weights) for good.
    uw = UncertaintyWeighting(2, "regression", lr=0.1)
    uw.update([1e308, 1.0])
    assert np.isfinite(uw.state_dict()["adam_v"]).all()
    s = uw.log_variances
    assert s[0] > 0.0  # the huge loss lowered task 0's weight
    for _ in range(3):
        uw.update([1.0, 1.0])
        assert uw.log_variances[0] > s[0]  # and it still moves
        s = uw.log_variances


def test_uncertainty_with_a_huge_learning_rate_stays_finite():
    for optimizer in ("sgd", "adam"):
        uw = UncertaintyWeighting(2, "regression", lr=1e300, optimizer=optimizer)
        for losses in ([1e-3, 1e3], [0.0, 1e308], [1.0, 1.0], [1e-320, 1e-300]):
            w = uw.update(losses)
            assert np.isfinite(w).all() and np.isfinite(uw.log_variances).all()
        assert uw.log_variances.min() >= -700.0


def test_live_loss_of_a_subnormal_names_the_task():
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\) is 1e-320; 1 / losses\[1\]"):
        LiveLossNormalization(2).update([1.0, 1e-320])
    np.testing.assert_array_equal(LiveLossNormalization(1).update([5.6e-309]), [1 / 5.6e-309])


def test_gradnorm_step_that_overflows_names_lr_and_changes_nothing():
    gn = GradNorm(2, lr=1e300, optimizer="sgd")
    before = gn.state_dict()
    with pytest.raises(ValueError, match=r"lr = 1e\+300 is too large"):
        gn.update([1.0, 1.0], [1e10, 0.0])
    assert same_state(gn.state_dict(), before)
    for optimizer in ("adam", "sgd"):
        gn = GradNorm(2, alpha=3.0, lr=1e-3, optimizer=optimizer)
        for losses in ([1e-320, 1e308], [1e308, 1e-320], [1.0, 1.0]):
            w = gn.update(losses, [1e308, 1e-300])  # rates and norms at the extremes
            assert np.isfinite(w).all() and abs(w.sum() - 2.0) < 1e-12


@pytest.mark.parametrize("big", [1e308, BIGGEST])
def test_epoch_and_warmup_means_of_huge_losses_stay_finite(big):
    # The mean of two losses near 1.8e308 is in range; their sum is not.
    dwa = DynamicWeightAverage(2)
    for _ in range(2):
        for _ in range(3):
            dwa.update([big, 1.0])
        dwa.end_epoch()
    np.testing.assert_array_equal(dwa.average_losses, [big, 1.0])
    np.testing.assert_allclose(dwa.update([1.0, 1.0]), [1.0, 1.0], rtol=1e-15)
    norm = weighting.InitialLossNormalization(2, warmup_steps=3)
    for _ in range(3):
        w = norm.update([big, 2.0])
    np.testing.assert_array_equal(norm.initial_losses, [big, 2.0])
    np.testing.assert_array_equal(w, [1.0 / big, 0.5])
