"""Rays on the simplex: the two-objective convention and the Das-Dennis lattice."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.front import das_dennis, simplex_rays


def test_two_objectives_linspace_with_ends():
    R = simplex_rays(2, 16)
    np.testing.assert_array_equal(R[:, 0], np.linspace(0, 1, 16))
    np.testing.assert_array_equal(R[:, 1], 1 - np.linspace(0, 1, 16))


@pytest.mark.parametrize(("m", "H", "size"), [(3, 4, 15), (3, 12, 91), (2, 5, 6), (4, 3, 20)])
def test_das_dennis_sizes(m, H, size):
    R = das_dennis(m, H)
    assert R.shape == (size, m) == (math.comb(H + m - 1, m - 1), m)
    assert simplex_rays(m, size).shape == (size, m)


@given(st.integers(2, 5), st.integers(1, 8))
def test_das_dennis_is_the_whole_lattice(m, H):
    R = das_dennis(m, H)
    k = np.rint(R * H)
    np.testing.assert_allclose(R * H, k, atol=1e-12)  # multiples of 1/H
    assert (k >= 0).all() and (k.sum(axis=1) == H).all()
    np.testing.assert_allclose(R.sum(axis=1), 1.0, atol=1e-12)
    assert len({tuple(row) for row in k}) == len(k)  # distinct, so all C(H+m-1, m-1)


def test_one_ray_is_the_centre():
    np.testing.assert_array_equal(simplex_rays(3, 1), [[1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_array_equal(simplex_rays(2, 1), [[0.5, 0.5]])


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: simplex_rays(2, 0), "count"),
        (lambda: simplex_rays(1, 4), "n_obj"),
        (lambda: das_dennis(3, 0), "divisions"),
        (lambda: das_dennis(1, 3), "n_obj"),
        (lambda: simplex_rays(3, 16), "count"),
    ],
)
def test_bad_arguments_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_lattice_size_error_gives_the_nearest_sizes():
    with pytest.raises(ValueError, match=r"15 \(H=4\) and 21 \(H=5\)"):
        simplex_rays(3, 16)


def test_non_integer_counts_are_type_errors():
    with pytest.raises(TypeError, match="count"):
        simplex_rays(2, 4.0)
    with pytest.raises(TypeError, match="n_obj"):
        simplex_rays(True, 4)
