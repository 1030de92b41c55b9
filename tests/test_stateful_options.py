"""Every constructor option of every stateful method is checked, and a bad one is named.

For each option of each class (the loss weightings, GradVac, momentum PCGrad, the
conflict tracker) a table says what it takes; hypothesis generates values it does not
take (NaN, infinities, values out of range, bools for numbers, numbers for names,
strings for numbers, complex numbers, wrong lengths, unknown names, ...). Each must
raise ValueError or TypeError whose message names the option. Valid values of every
kind are accepted (the table is not stricter than the classes).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers, weighting
from paretomtl.solvers import ConflictTracker

BIGGEST = float(np.finfo(np.float64).max)
not_numbers = st.sampled_from(
    ["1.0", "0.5", b"1", None, True, False, complex(1.0, 0.0), [1.0], (0.5,), {"x": 1}, object()]
)


def reals_outside(low, high, *, low_open=False, high_open=False, allow_inf=()):
    """Floats that are not in the interval (and never an allowed infinity)."""

    def inside(x):
        above_low = x > low if low_open else x >= low
        below_high = x < high if high_open else x <= high
        return (above_low and below_high and math.isfinite(x)) or x in allow_inf

    pieces = [st.just(math.nan), st.just(math.inf), st.just(-math.inf)]
    if low > -math.inf:
        pieces.append(st.floats(max_value=low))
    if high < math.inf:
        pieces.append(st.floats(min_value=high))
    return st.one_of(*pieces).filter(lambda x: not inside(x))


def bad_real(low=-math.inf, high=math.inf, **kw):
    return st.one_of(reals_outside(low, high, **kw), not_numbers)


def bad_choice(options):
    return st.one_of(
        st.text(max_size=12).filter(lambda s: s not in options),
        st.sampled_from([None, 0, 1, 1.0, True, b"sum", [options[0]], (options[0],)]),
        st.sampled_from([o.upper() for o in options] + [o + " " for o in options]),
    )


def bad_count(minimum):
    return st.one_of(
        st.integers(max_value=minimum - 1),
        st.floats(allow_nan=True),
        st.sampled_from([True, False, "3", None, 2.0, complex(2, 0), [2]]),
    )


def bad_vector(K, *, need, low=None, divisor=False):
    """K-vectors with one bad entry, the wrong length, or the wrong type; with
    ``divisor`` also an entry whose reciprocal overflows."""
    bad_entry = [math.nan, math.inf, -math.inf]
    if need in ("> 0", ">= 0"):
        bad_entry += [-1.0, -1e-300, -BIGGEST]
    if need == "> 0":
        bad_entry += [0.0, -0.0]
    if divisor:
        bad_entry += [1e-320, 5e-324, 5.5e-309]
    if low is not None:
        bad_entry += [low - 1.0, -BIGGEST]
    one_bad = st.tuples(st.integers(0, K - 1), st.sampled_from(bad_entry)).map(
        lambda iv: [iv[1] if i == iv[0] else 1.0 for i in range(K)]
    )
    wrong_length = st.sampled_from([0, 1, K + 1, K + 2]).map(lambda n: [1.0] * n)
    wrong_type = st.sampled_from(
        [[True] * K, ["1.0"] * K, "1.0", [complex(1, 1)] * K, [[1.0]] * K, [None] * K, None]
    )
    return st.one_of(one_bad, wrong_length, wrong_type)


def bad_seed():
    return st.one_of(
        st.integers(max_value=-1),
        st.floats(allow_nan=True),
        st.sampled_from([True, False, "0", b"0", [0], complex(0, 0)]),
    )


def bad_task_types(K):
    return st.one_of(
        st.text(max_size=12).filter(lambda s: s not in ("regression", "classification")),
        st.sampled_from([None, 1, True, ["regression"] * (K + 1), [["regression"]] * K]),
        st.sampled_from([["Regression"] * K, [1] * K, [None] * K]),
    )


K = 3
# class -> (required arguments, {option: strategy of bad values}, {option: a valid value})
TABLE = {
    weighting.ConstantWeighting: (
        {"weights": [1.0, 0.5, 0.0]},
        {"weights": bad_vector(K, need=">= 0")},
    ),
    weighting.EqualWeighting: ({}, {}),
    weighting.DynamicWeightAverage: (
        {},
        {
            "temperature": bad_real(0.0, math.inf, low_open=True),
            "per": bad_choice(("epoch", "step")),
            "epoch_steps": bad_count(1).filter(lambda x: x is not None),
        },
    ),
    weighting.GeneralizedMeanWeighting: (
        {"gamma": 1.0},
        {"gamma": st.one_of(st.just(math.nan), not_numbers)},
    ),
    weighting.GeometricLossStrategy: ({}, {}),
    weighting.LiveLossNormalization: ({}, {}),
    weighting.GradNorm: (
        {},
        {
            "alpha": bad_real(0.0),
            "lr": bad_real(0.0, low_open=True),
            "optimizer": bad_choice(("adam", "sgd")),
            "min_weight": bad_real(0.0, 1.0, low_open=True, high_open=True),
            "initial_losses": bad_vector(K, need="> 0").filter(lambda x: x is not None),
        },
    ),
    weighting.InitialLossNormalization: (
        {},
        {
            "warmup_steps": bad_count(1).filter(lambda x: x is not None),
            "initial_losses": bad_vector(K, need="> 0", divisor=True).filter(
                lambda x: x is not None
            ),
        },
    ),
    weighting.PriorLossNormalization: (
        {"prior_losses": [1.0, 2.0, 3.0]},
        {"prior_losses": bad_vector(K, need="> 0", divisor=True)},
    ),
    weighting.RandomLossWeighting: (
        {},
        {"seed": bad_seed(), "distribution": bad_choice(("normal", "uniform"))},
    ),
    weighting.UncertaintyWeighting: (
        {"task_types": "regression"},
        {
            "task_types": bad_task_types(K),
            "lr": bad_real(0.0, low_open=True),
            "optimizer": bad_choice(("adam", "sgd")),
            "initial_log_variances": st.one_of(
                bad_vector(K, need="finite", low=-700.0),
                st.sampled_from([-701.0, -1e300, math.nan, math.inf]),
            ),
        },
    ),
    solvers.GradVac: (
        {},
        {
            "beta": bad_real(0.0, 1.0),
            "seed": bad_seed(),
            "reduction": bad_choice(("sum", "mean")),
            "target_update": bad_choice(("every-pair", "when-below")),
        },
    ),
    solvers.MomentumPCGrad: (
        {},
        {
            "beta1": bad_real(0.0, 1.0, high_open=True),
            "beta2": bad_real(0.0, 1.0, high_open=True),
            "threshold": st.one_of(
                reals_outside(0.0, math.inf, allow_inf=(math.inf,)), not_numbers
            ),
            "seed": bad_seed(),
            "reduction": bad_choice(("sum", "mean")),
        },
    ),
    solvers.MoCo: (
        {},
        {
            "beta": bad_real(0.0, 1.0, low_open=True),
            "beta_sigma": bad_real(0.0),
            "gamma": bad_real(0.0),
            "gamma_sigma": bad_real(0.0),
            "rho": bad_real(0.0),
            "lambda_update": bad_choice(("projection", "softmax")),
            "normalization": bad_choice(("none", "loss")),
        },
    ),
    solvers.DBMTL: (
        {},
        {"beta": bad_real(0.0, 1.0, high_open=True), "beta_sigma": bad_real(0.0)},
    ),
    solvers.NashMTL: (
        {},
        {
            "max_norm": bad_real(0.0),
            "update_weights_every": bad_count(1),
            "tol": bad_real(0.0, 1.0, low_open=True, high_open=True),
            "max_iter": bad_count(1),
        },
    ),
    solvers.PCD: (
        {},
        {
            "tau": st.one_of(
                reals_outside(0.0, 1.0),
                not_numbers.filter(lambda x: not isinstance(x, tuple | list)),
                bad_vector(2, need=">= 0").filter(lambda x: x is not None),
                st.sampled_from([[0.5, 1.5], [0.1], [0.1, 0.2, 0.3]]),
            ),
            "beta": bad_real(0.0, 1.0, high_open=True),
            "eps": bad_real(0.0),
        },
    ),
    solvers.MoDo: ({}, {"gamma": bad_real(0.0, low_open=True), "rho": bad_real(0.0)}),
    solvers.SDMGrad: (
        {},
        {
            "lambda_": bad_real(0.0),
            "lr": bad_real(0.0, low_open=True),
            "momentum": bad_real(0.0, 1.0, high_open=True),
            "n_iter": bad_count(1),
            "pref_vector": bad_vector(K, need=">= 0").filter(lambda x: x is not None),
            "eps": bad_real(0.0),
        },
    ),
    solvers.CRMOGM: (
        {},
        {
            "alpha": bad_real(0.0, 1.0),
            "initial_weights": bad_vector(K, need="finite").filter(lambda x: x is not None),
        },
    ),
    solvers.ExcessMTL: (
        {},
        {
            "robust_step_size": bad_real(0.0, low_open=True),
            "n_warmup_steps": bad_count(1),
            "eps": bad_real(0.0),
            "baseline_eps": bad_real(0.0),
            "weights_sum": bad_choice(("one", "num-tasks")),
        },
    ),
    weighting.COSMOS: (
        {},
        {
            "lambda_": bad_real(0.0),
            "preference": bad_vector(K, need=">= 0").filter(lambda x: x is not None),
            "eps": bad_real(0.0, low_open=True),
        },
    ),
    weighting.PBI: (
        {},
        {
            "theta": bad_real(0.0),
            "preference": st.one_of(
                bad_vector(K, need=">= 0").filter(lambda x: x is not None), st.just([0.0] * K)
            ),
            "reference": bad_vector(K, need="finite").filter(lambda x: x is not None),
            "eps": bad_real(0.0),
        },
    ),
    weighting.IMTLL: (
        {},
        {
            "lr": bad_real(0.0, low_open=True),
            "optimizer": bad_choice(("adam", "sgd")),
            "initial_scales": bad_vector(K, need="finite", low=-708.0),
        },
    ),
    weighting.FAMO: (
        {},
        {
            "lr": bad_real(0.0, low_open=True),
            "gamma": bad_real(0.0),
            "optimizer": bad_choice(("adam", "sgd")),
            "min_losses": bad_vector(K, need="finite"),
            "eps": bad_real(0.0, low_open=True),
        },
    ),
    weighting.SmoothTchebycheff: (
        {},
        {
            "mu": bad_real(0.0, low_open=True),
            "preference": bad_vector(K, need="> 0"),
            "warmup_epochs": bad_count(0),
            "per": bad_choice(("epoch", "step")),
            "reference": bad_vector(K, need="> 0").filter(lambda x: x is not None),
        },
    ),
    ConflictTracker: (
        {},
        {
            "beta1": bad_real(0.0, 1.0, high_open=True),
            "beta2": bad_real(0.0, 1.0, high_open=True),
        },
    ),
}
VALID = {  # a valid value of every option, of every kind it takes
    "weights": [[0.0, 1e308, 2.0], np.array([1, 2, 3], dtype=np.int32)],
    "temperature": [5e-324, 1e300, 2],
    "per": ["epoch", "step"],
    "epoch_steps": [None, 1, np.int64(100)],
    "gamma": [math.inf, -math.inf, 0, -1e300, np.float32(2.5)],
    "alpha": [0.0, 1e300, 2],
    "lr": [5e-324, 1e300, 1],
    "optimizer": ["adam", "sgd"],
    "min_weight": [5e-324, 0.999999],
    "initial_losses": [None, [5.6e-309, 1e308, 1.0]],
    "warmup_steps": [1, np.int64(5)],
    "prior_losses": [[5.6e-309, 1e308, 1]],
    "seed": [None, 0, np.int64(3), np.random.default_rng(1)],
    "distribution": ["normal", "uniform"],
    "task_types": ["regression", ("classification", "regression", "classification")],
    "initial_log_variances": [-700.0, 1e300, [0.0, -1.0, 2.0]],
    "beta": [0.0, 1.0, 0.5],  # MoCo takes (0, 1], DB-MTL [0, 1): see VALID_FOR
    "beta_sigma": [0.0, 1e300, 2],
    "gamma_sigma": [0.0, 0.5, 3],
    "rho": [0.0, 1e-300, 7],
    "lambda_update": ["projection", "softmax"],
    "normalization": ["none", "loss"],
    "reduction": ["sum", "mean"],
    "target_update": ["every-pair", "when-below"],
    "beta1": [0.0, 0.999999],
    "beta2": [0.0, 0.5],
    "threshold": [0.0, math.inf, 3],
    "lambda_": [0.0, 1e300, 1],
    "momentum": [0.0, 0.999999],
    "n_iter": [1, np.int64(30)],
    "pref_vector": [None, [0.0, 1e300, 2]],
    "eps": [0.0, 1e-8, 1],
    "initial_weights": [None, [-1.0, 0.5, 2]],
    "initial_scales": [0.0, [-708.0, 708.0, 1]],
    "min_losses": [0.0, [-1e300, 0.0, 1]],
    "mu": [5e-324, 1e300, 2],
    "max_norm": [0.0, 1e300, 1],
    "tau": [0.0, 1.0, 0.02, 1, [0.0, 1.0], np.array([0.3, 0.7])],
    "theta": [0.0, 1e300, 5],
    "update_weights_every": [1, np.int64(4)],
    "tol": [1e-300, 0.5],
    "max_iter": [1, np.int64(1000)],
    "robust_step_size": [5e-324, 1e300, 1],
    "n_warmup_steps": [1, np.int64(3)],
    "baseline_eps": [0.0, 1e-7, 1],
    "weights_sum": ["one", "num-tasks"],
    "preference": [1.0, [5e-324, 1e300, 2]],
    "warmup_epochs": [0, np.int64(4)],
    "reference": [None, [5e-324, 1e300, 2]],
}
# where one class takes a narrower range of an option another class shares the name of
VALID_FOR = {
    (solvers.MoCo, "beta"): [5e-324, 0.5, 1.0, 1],
    (solvers.MoCo, "gamma"): [0.0, 1e300, 2],
    (solvers.DBMTL, "beta"): [0.0, 0.5, 0.999999, 0],
    (solvers.MoDo, "gamma"): [5e-324, 1e300, 2],
    (solvers.PCD, "beta"): [0.0, 0.5, 0.999999, 0],
    (weighting.COSMOS, "eps"): [5e-324, 1e300, 2],
    (weighting.PBI, "reference"): [None, -1e300, [5e-324, -1e300, 2]],
    (solvers.CRMOGM, "alpha"): [0.0, 1.0, 0.5, 1],
    (weighting.FAMO, "gamma"): [0.0, 1e300, 2],
    (weighting.FAMO, "eps"): [5e-324, 1e300, 2],
}
OPTIONS = [(cls, option) for cls, (_, bad) in TABLE.items() for option in bad]


def test_every_stateful_class_is_in_the_table():
    registered = {weighting.get(name) for name in weighting.available()}
    registered |= {solvers.get(name) for name in solvers.available("stateful-gradient")}
    assert registered | {ConflictTracker} == set(TABLE)


@pytest.mark.parametrize(("cls", "option"), OPTIONS, ids=lambda x: getattr(x, "__name__", x))
@given(data=st.data())
def test_a_bad_option_is_refused_by_name(cls, option, data):
    required, bad = TABLE[cls]
    value = data.draw(bad[option], label=option)
    with pytest.raises((ValueError, TypeError)) as error:
        cls(K, **{**required, option: value})
    assert option in str(error.value), str(error.value)


@pytest.mark.parametrize(("cls", "option"), OPTIONS, ids=lambda x: getattr(x, "__name__", x))
def test_valid_options_are_accepted(cls, option):
    required, _ = TABLE[cls]
    for value in VALID_FOR.get((cls, option), VALID[option]):
        obj = cls(K, **{**required, option: value})
        assert obj.num_tasks == K


@pytest.mark.parametrize("cls", list(TABLE), ids=lambda c: c.__name__)
@given(num_tasks=bad_count(1))
def test_a_bad_num_tasks_is_refused_by_name(cls, num_tasks):
    required, _ = TABLE[cls]
    with pytest.raises((ValueError, TypeError), match="num_tasks"):
        cls(num_tasks, **required)
