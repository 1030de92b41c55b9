"""Random weighting of the task gradients: softmax of a standard normal draw."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_generator
from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult


@register(
    "random",
    kind="gradient",
    paper=(
        "Lin, Ye, Xu, Shi & Zhang, Reasonable Effectiveness of Random Weighting: "
        "A Litmus Test for Multi-Task Learning, TMLR 2022"
    ),
    summary="random weights softmax(z), z ~ N(0, I), on the task gradients (fresh each call)",
)
def random(
    grads: object = None,
    *,
    gram: object = None,
    seed: int | np.random.Generator | None = None,
) -> SolverResult:
    r"""Random weighting of the gradients (TorchJD's ``Random``), seeded.

    .. math::

        w = \operatorname{softmax}(z),\qquad z \sim \mathcal N(0, I_K),\qquad
        d = \sum_i w_i g_i,

    positive weights summing to 1, drawn afresh at each call (Lin, Ye, Xu, Shi &
    Zhang, "Reasonable Effectiveness of Random Weighting: A Litmus Test for
    Multi-Task Learning", TMLR 2022, Algorithm 2: random gradient weighting).
    The weights ignore the gradients. The same draw weighting the losses instead is
    the paper's RLW, the loss weighting ``rlw`` (``paretomtl.weighting``, LibMTL's
    ``RLW``): since :math:`\nabla \sum_i w_i L_i = \sum_i w_i g_i`, both give the
    same step for the same draw, and with the same seed this function's first call
    returns ``RandomLossWeighting(K, seed=seed)``'s first weights bit for bit. This
    one runs on the gradient route (K per-task gradients, which it does not need),
    ``rlw`` on the loss route (one backward); the Gram-space form exists for
    comparing methods on the same footing. TorchJD draws with ``torch.randn``, so
    its draws differ from numpy's; the distribution is the same.

    Randomness: ``seed`` is an int >= 0, a ``numpy.random.Generator`` (advanced by
    the call; ``solvers.method("random", seed=s)`` and the torch adapter hold one
    and pass it at every call) or None (fresh entropy, not reproducible).

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        seed: int, Generator or None.

    Raises:
        ValueError: for a negative ``seed`` or bad input.
        TypeError: for a ``seed`` that is not an int, Generator or None.

    Returns:
        SolverResult with ``weights`` and ``direction``; ``extras["z"]`` is the draw.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import random
        >>> w = random(gram=np.eye(3), seed=0).weights
        >>> w.round(4), round(float(w.sum()), 12)
        (array([0.2902, 0.2242, 0.4855]), 1.0)
    """
    rng = as_generator(seed)
    p = prepare_scaled(grads, gram)
    K = p.gram.shape[0]
    z = rng.standard_normal(K)
    e = np.exp(z - z.max())
    weights = e / e.sum()
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method="random",
        extras={"z": z},
        gram_exponent=exponent,
    )
