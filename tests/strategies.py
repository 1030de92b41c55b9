"""Hypothesis strategies for task-gradient matrices, shared by the solver tests.

The families mirror what makes the problem hard in practice: conflicting tasks,
rank deficiency (K > M), badly scaled rows, near-duplicate and colinear rows, and
exact zeros.
"""

import numpy as np
from hypothesis import strategies as st


@st.composite
def grads_matrices(draw, min_tasks=1, max_tasks=8, max_dim=8, allow_zero_rows=True):
    """A K x M float64 gradient matrix from one of several hard families."""
    K = draw(st.integers(min_tasks, max_tasks))
    M = draw(st.integers(1, max_dim))
    seed = draw(st.integers(0, 2**32 - 1))
    family = draw(
        st.sampled_from(
            ["gaussian", "conflicting", "scaled", "near_duplicate", "colinear", "low_rank", "zeros"]
        )
    )
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((K, M))
    if family == "conflicting" and K >= 2:
        J[1:] = -0.8 * J[:1] + 0.3 * rng.standard_normal((K - 1, M))
    elif family == "scaled":
        J *= 10.0 ** rng.uniform(-6, 6, size=(K, 1))
    elif family == "near_duplicate" and K >= 2:
        J[1] = J[0] * (1 + 1e-9 * rng.standard_normal(M))
    elif family == "colinear" and K >= 2:
        J[1] = J[0] * rng.uniform(0.1, 3.0)
    elif family == "low_rank" and M >= 2:
        J = rng.standard_normal((K, 1)) @ rng.standard_normal((1, M)) + 1e-3 * J
    elif family == "zeros" and allow_zero_rows:
        J[rng.random(K) < 0.3] = 0.0
    return J
