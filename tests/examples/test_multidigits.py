"""examples/multidigits.py: the data never mixes train and test images, the labels are
the images', Delta_m has LibMTL's signs, and the training function keeps its interface."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))
import multidigits as md  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return md.make_data(3, quick=True)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_pairs_never_mix_train_and_test_images(data):
    train, test = set(data.train_images.tolist()), set(data.test_images.tolist())
    assert not train & test
    assert len(train | test) == 1797
    assert set(data.sources_train.ravel().tolist()) <= train
    assert set(data.sources_test.ravel().tolist()) <= test


def test_the_split_and_pairs_are_fixed_by_the_seed(data):
    again, other = md.make_data(3, quick=True), md.make_data(4, quick=True)
    assert np.array_equal(again.sources_train, data.sources_train)
    assert torch.equal(again.x_test, data.x_test)
    assert not np.array_equal(other.test_images, data.test_images)


def test_labels_and_halves_are_the_source_images(data, digits):
    for x, y, sources in [
        (data.x_train, data.y_train, data.sources_train),
        (data.x_test, data.y_test, data.sources_test),
    ]:
        assert x.shape[1:] == (1, 8, 16)
        left, right = x[:, 0, :, :8].numpy(), x[:, 0, :, 8:].numpy()
        np.testing.assert_array_equal(left, digits.images[sources[:, 0]] / 16.0)
        np.testing.assert_array_equal(right, digits.images[sources[:, 1]] / 16.0)
        np.testing.assert_array_equal(y.numpy(), digits.target[sources])


def test_overlay_keeps_both_digits():
    a, b = np.zeros((1, 8, 8)), np.zeros((1, 8, 8))
    a[0, 0, 0], b[0, 0, 0] = 0.5, 0.75
    image = md.compose(a, b, "overlay")
    dr, dc = md.OVERLAY_SHIFT
    assert image.shape == (1, 8 + dr, 8 + dc)
    assert image[0, 0, 0] == 0.5 and image[0, dr, dc] == 0.75


def test_delta_m_of_the_baseline_is_zero():
    base = {"acc_left": 0.9, "acc_right": 0.8, "sum_mae": 2.0}
    assert md.delta_m(base, base) == 0.0


def test_delta_m_signs_by_hand():
    base = {"acc_left": 0.9, "acc_right": 0.8, "sum_mae": 2.0}
    # Left accuracy 10 % higher (better), right unchanged, sum MAE halved (better): the
    # lower-is-better metric counts its fall as a gain, +50 %.
    better = {"acc_left": 0.99, "acc_right": 0.8, "sum_mae": 1.0}
    assert md.delta_m(better, base) == pytest.approx((10.0 + 0.0 + 50.0) / 3)
    # The same MAE change the other way (1.5 times the baseline) is a loss of 50 %.
    worse = {"acc_left": 0.99, "acc_right": 0.8, "sum_mae": 3.0}
    assert md.delta_m(worse, base) == pytest.approx((10.0 + 0.0 - 50.0) / 3)
    # An accuracy that falls is a loss: 0.72 is 10 % below 0.8.
    lower = {"acc_left": 0.9, "acc_right": 0.72, "sum_mae": 2.0}
    assert md.delta_m(lower, base) == pytest.approx(-10.0 / 3)


@pytest.mark.skipif(importlib.util.find_spec("LibMTL") is None, reason="LibMTL not installed")
def test_delta_m_is_libmtls_count_improvement():
    utils = md._import_libmtl().utils
    base = {"acc_left": 0.9, "acc_right": 0.8, "sum_mae": 2.0}
    new = {"acc_left": 0.93, "acc_right": 0.71, "sum_mae": 2.6}
    weight = {m: [int(h)] for m, h in md.HIGHER_IS_BETTER.items()}
    theirs = utils.count_improvement(
        {m: [v] for m, v in base.items()}, {m: [v] for m, v in new.items()}, weight
    )
    assert md.delta_m(new, base) == pytest.approx(100 * theirs)


def test_mean_ranks_share_ties():
    rows = [
        {"acc_left": 0.9, "acc_right": 0.9, "sum_mae": 1.0},
        {"acc_left": 0.8, "acc_right": 0.9, "sum_mae": 2.0},
    ]
    assert md.mean_ranks(rows) == pytest.approx([(1 + 1.5 + 1) / 3, (2 + 1.5 + 2) / 3])


def test_train_returns_the_documented_keys(data):
    for method in ("pcgrad", "equal", "single:sum"):
        out = md.train(method, 0, data, quick=True)
        for key in ("acc_left", "acc_right", "sum_mae", "seconds_per_step", "projections"):
            assert key in out
        assert 0.0 <= out["acc_left"] <= 1.0 and out["sum_mae"] >= 0.0
        assert (out["projections"] is None) == (method != "pcgrad")
    first, again = (md.train("pcgrad", 0, data, quick=True) for _ in range(2))
    for key in ("acc_left", "acc_right", "sum_mae", "projections"):
        assert first[key] == again[key]
