"""GradVac: raise each pair's gradient cosine to a target that tracks its history."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import (
    as_generator,
    check_choice,
    check_gram_size,
    check_num_tasks,
    check_real,
)
from paretomtl._kernels.gradvac import gradvac_coefficients
from paretomtl.solvers._input import lost_error, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.solvers.pcgrad import coefficient_result
from paretomtl.state import Stateful, array, choice, count, generator, real

_REDUCTIONS = ("sum", "mean")
_TARGET_UPDATES = ("every-pair", "when-below")


def other_task_orders(num_tasks: int, rng: np.random.Generator) -> np.ndarray:
    """K x (K - 1) array: row i is a random order of the tasks other than i.

    Each row is an independent permutation drawn with ``rng.permuted``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.gradvac import other_task_orders
        >>> other_task_orders(3, np.random.default_rng(0)).shape
        (3, 2)
    """
    K = num_tasks
    base = np.array([[j for j in range(K) if j != i] for i in range(K)], dtype=np.int64)
    base = base.reshape(K, K - 1)
    return rng.permuted(base, axis=1)


@register(
    "gradvac",
    kind="stateful-gradient",
    paper=(
        "Wang, Tsvetkov, Firat & Cao, Gradient Vaccine: Investigating and Improving "
        "Multi-task Optimization in Massively Multilingual Models, ICLR 2021"
    ),
    summary="lift each pair's cosine to an EMA target of its past cosines, in random order",
)
class GradVac(Stateful):
    r"""Gradient Vaccine (GradVac), computed in Gram space, with its targets as state.

    Every pair (i, j), i != j, has a target cosine :math:`\hat\phi_{ij}`, starting at
    0. At each step, for each task i, starting from :math:`g_i' = g_i` and visiting the
    other tasks j in a random order (drawn anew for every i and every step):

    .. math::

        \phi_{ij} &= \frac{\langle g_i', g_j\rangle}{\|g_i'\|\,\|g_j\|},

        \text{if } \phi_{ij} < \hat\phi_{ij}:\quad
        g_i' &\leftarrow g_i' + \frac{\|g_i'\| \big(\hat\phi_{ij}\sqrt{1-\phi_{ij}^2}
            - \phi_{ij}\sqrt{1-\hat\phi_{ij}^2}\big)}
            {\|g_j\|\sqrt{1-\hat\phi_{ij}^2}}\; g_j,

        \hat\phi_{ij} &\leftarrow (1-\beta)\,\hat\phi_{ij} + \beta\,\phi_{ij},

    and the update is :math:`\sum_i g_i'` (``reduction="sum"``, the paper) or the
    mean. The added multiple of :math:`g_j` is the one (it is >= 0) that turns the angle
    between :math:`g_i'` and :math:`g_j` to exactly :math:`\arccos\hat\phi_{ij}`. With
    all targets 0 (the first step) this is PCGrad's projection, without i itself in
    the order.

    What the sources say, and what is done here:

    - Order of operations and which cosine feeds the EMA: the paper's Algorithm 1
      (Wang et al., ICLR 2021) computes :math:`\phi_{ij}` from the current
      :math:`g_i'` (already adjusted towards earlier j), adjusts if it is below the
      target, then updates the target with that same pre-adjustment
      :math:`\phi_{ij}`. TorchJD (SimplexLab/TorchJD,
      ``src/torchjd/aggregation/_gradvac.py``) and LibMTL
      (``LibMTL/weighting/GradVac.py``) do the same. So does this class.
    - Which pairs update their target: the paper, TorchJD and LibMTL update
      :math:`\hat\phi_{ij}` for every pair visited (``target_update="every-pair"``,
      the default; it matches current LibMTL up to the effect of LibMTL's
      ``eps = 1e-8`` terms, below). LibMTL before its 2024-02-15 fix ("fix a bug in
      GradVac", commit d2d84fa) updated the target only inside the ``if``, i.e.
      only when :math:`\phi_{ij} < \hat\phi_{ij}`; its targets then started at 0
      and could only decrease, never tracking alignment above 0. That old
      behaviour is ``target_update="when-below"``, kept for reproducing runs made
      with LibMTL before that fix.
    - :math:`\beta`: the default is :math:`10^{-2}`, a slow average (a memory of
      about 100 steps), the value we read in the paper's setup; LibMTL and TorchJD
      default to 0.5 (a memory of about 2 steps).
    - Granularity: the paper applies the rule per layer or per parameter block as an
      option; this class works on whatever gradients it is given (one block). Run
      one object per block for the per-layer variant.
    - Zero gradients: :math:`\phi_{ij} = 0` when :math:`g_i'` or :math:`g_j` is
      zero; no adjustment is made with a zero gradient, and the target still moves
      towards 0. The reference codes add ``eps = 1e-8`` to the denominators instead,
      which gives the same 0 for zero gradients but also shrinks the cosines towards
      0 and damps the adjustments wherever :math:`\|g_i'\|\,\|g_j\|` is not far
      above 1e-8 (gradient norms of 1e-4 and below); this class has no eps, so its
      answer does not depend on the scale of the gradients.
    - A target of exactly :math:`\pm 1` cannot be reached by adding a multiple of
      :math:`g_j` (the step diverges); the adjustment is then skipped.

    In Gram space, :math:`g_i' = \sum_j A_{ij} g_j`: :math:`\langle g_i', g_j\rangle =
    (AG)_{ij}`, :math:`\|g_i'\|^2 = (A G A^\top)_{ii}`, and an adjustment adds w to
    :math:`A_{ij}`. The weights are :math:`A^\top 1` (divided by K for the mean); the
    method costs O(K^3) on G and one pass over the gradients when they are given. It
    equals the sequential loop on the vectors for the same orders (tested to 1e-10).

    Args:
        num_tasks: K >= 1; every update must bring K gradients.
        beta: EMA rate of the targets, in [0, 1] (1: the target is the last cosine).
        seed: int or ``numpy.random.Generator`` for the orders (a Generator is used as
            is, not copied); None draws fresh entropy (not reproducible).
        reduction: ``"sum"`` (default, the paper) or ``"mean"``.
        target_update: ``"every-pair"`` (default: the paper, TorchJD, LibMTL) or
            ``"when-below"`` (LibMTL before its 2024-02-15 fix).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import GradVac
        >>> gv = GradVac(2, beta=0.5, seed=0)
        >>> res = gv.update(np.array([[1.0, 0.0], [-1.0, 1.0]]))  # targets 0: PCGrad
        >>> res.direction
        array([0.5, 1.5])
        >>> gv.targets.round(4)  # half way from 0 to cos = -0.7071
        array([[ 0.    , -0.3536],
               [-0.3536,  0.    ]])
    """

    hyperparameters = {
        "beta": real(low=0.0, high=1.0),
        "reduction": choice(*_REDUCTIONS),
        "target_update": choice(*_TARGET_UPDATES),
    }
    fields = {
        "_targets": array("KxK", low=-1.0, high=1.0),  # EMAs of cosines
        "_step": count(),
        "_rng": generator(),
    }

    def __init__(
        self,
        num_tasks: int,
        beta: float = 1e-2,
        seed: int | np.random.Generator | None = None,
        reduction: str = "sum",
        target_update: str = "every-pair",
    ) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.beta = check_real(beta, "beta", low=0.0, high=1.0)
        self.reduction = check_choice(reduction, "reduction", _REDUCTIONS)
        self.target_update = check_choice(target_update, "target_update", _TARGET_UPDATES)
        self._rng = as_generator(seed)
        self.reset()

    def reset(self) -> None:
        """Targets back to 0 and step to 0 (the random generator keeps its state)."""
        self._targets = np.zeros((self.num_tasks, self.num_tasks))
        self._step = 0

    @property
    def targets(self) -> np.ndarray:
        r"""The K x K targets :math:`\hat\phi_{ij}` (a copy; diagonal 0, not used)."""
        return self._targets.copy()

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def check_state(self, values: dict) -> None:
        # Targets other than 0 at step 0 are a warm start, allowed; (i, i) is no pair.
        targets = values["_targets"]
        if (np.diagonal(targets) != 0).any():
            raise ValueError(
                f"state['targets'] must have a zero diagonal (no pair (i, i)); got {targets}"
            )

    def update(self, grads: object = None, *, gram: object = None) -> SolverResult:
        """One GradVac step on K x M gradients and/or their K x K Gram matrix.

        Returns:
            SolverResult with ``weights``, ``direction`` (when ``grads`` was given)
            and ``extras``: ``"coefficients"`` (A), ``"adjustments"`` (how many),
            ``"orders"`` (K x (K - 1), row i the order of the other tasks),
            ``"cosines"`` (the pre-adjustment :math:`\\phi_{ij}` met; diagonal 0),
            ``"targets"`` (after the update, a copy).
        """
        p = prepare_scaled(grads, gram)  # any scale: the Gram of 2**e * grads
        if p.lost:
            raise lost_error(p.lost, "gradvac")
        J, G = p.grads, p.gram
        check_gram_size(G, self.num_tasks, "GradVac")
        K = self.num_tasks
        orders = other_task_orders(K, self._rng)
        targets = self._targets.copy()  # the state changes only once the kernel is done
        A, n_adj, phis = gradvac_coefficients(
            G, orders, targets, self.beta, self.target_update == "every-pair"
        )
        self._targets = targets
        self._step += 1
        extras = {
            "adjustments": int(n_adj),
            "orders": orders,
            "cosines": phis,
            "targets": targets.copy(),
        }
        G, exponent = unscaled_gram(G, p.exponent)
        return coefficient_result(
            A, J, G, self.reduction, "gradvac", extras, gram_exponent=exponent
        )

    __call__ = update
