"""MoDo: task weights moved by projected gradient steps on the simplex, one per update."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import check_gram_size, check_num_tasks, check_real
from paretomtl._kernels.simplex_steps import modo_step, project_simplex
from paretomtl.solvers._input import combine, prepare
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.state import Stateful, array, count, real


def simplex_projection(y: object) -> np.ndarray:
    r"""Euclidean projection of a vector onto the probability simplex (exact, by sorting).

    .. math::

        \operatorname{Proj}_\Delta(y) = \arg\min_{x \ge 0,\ \sum_i x_i = 1} \|x - y\|^2
        = \max(y - \theta, 0),

    with :math:`\theta` the threshold that makes the entries sum to 1, found from the
    sorted entries (Held, Wolfe & Crowder 1974). The vector is shifted by its maximum
    first, so the answer is right for entries of any magnitude.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.modo import simplex_projection
        >>> simplex_projection(np.array([0.5, 0.5, -1.0]))
        array([0.5, 0.5, 0. ])
        >>> simplex_projection(np.array([2.0, 0.0]))  # theta = 1
        array([1., 0.])
    """
    arr = np.ascontiguousarray(y, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"y must be a non-empty finite vector; got {arr!r:.80}")
    return project_simplex(arr)


@register(
    "modo",
    kind="stateful-gradient",
    paper=(
        "Chen, Fernando, Ying & Chen, Three-Way Trade-Off in Multi-Objective Learning: "
        "Optimization, Generalization and Conflict-Avoidance, NeurIPS 2023"
    ),
    summary="weights moved by one projected step on the simplex per update (double sampling)",
)
class MoDo(Stateful):
    r"""MoDo (multi-objective gradient with double sampling), on the Gram matrix.

    The weights :math:`\lambda` start uniform, :math:`1/K`, and at each update take one
    projected gradient step on :math:`\tfrac12 \lambda^\top G \lambda +
    \tfrac{\rho}{2}\|\lambda\|^2`:

    .. math::

        \lambda \leftarrow \operatorname{Proj}_\Delta\big(\lambda - \gamma\,(G\lambda
        + \rho\,\lambda)\big),

    and the update direction is :math:`d = \sum_i \lambda_i g_i` with the new
    :math:`\lambda` (Chen, Fernando, Ying & Chen, "Three-Way Trade-Off in
    Multi-Objective Learning: Optimization, Generalization and Conflict-Avoidance",
    NeurIPS 2023; JMLR 2024). The projection is exact (sort-based; see
    :func:`simplex_projection`).

    Double sampling: the paper forms :math:`G = J_1 J_2^\top` from two independent
    minibatches (an unbiased estimate of the true Gram matrix) and a third for the
    direction. In paretomtl's protocol a step brings one set of gradients, so the
    update here uses one Gram matrix :math:`J J^\top` per step and the same
    gradients for the direction: the single-sample form of the rule (with stochastic
    gradients :math:`J J^\top` is a biased estimate of the true Gram matrix, the bias
    that the paper's double sampling removes). TorchJD's
    ``MoDoWeighting`` takes whatever K x K matrix it is given, so it also accepts
    the (non-symmetric) cross product :math:`J_1 J_2^\top`; ``gram`` here must be a
    Gram matrix (symmetric, positive semi-definite). The two agree when given the
    same Gram matrices.

    The rule is not invariant to the scale of the gradients: :math:`\gamma` multiplies
    G, so the step is measured in squared gradient units. Gram matrices whose
    products overflow float64 are refused with a ValueError.

    Defaults: :math:`\gamma = 0.1`, :math:`\rho = 0.1`, those of TorchJD's
    ``MoDoWeighting``; LibMTL's ``--MoDo_gamma`` defaults to 1e-3 (``--MoDo_rho`` to
    0.1, as here). The simplex projection of TorchJD and LibMTL (adapted from the
    authors' code) does not shift by the maximum first; on steps of size
    :math:`\gamma\|G\lambda\|` above about 1e16 their threshold rounds away and they
    return weights that sum to less than 1 (all zeros in the worst case); the answers
    agree otherwise.

    Args:
        num_tasks: K >= 1; every update must bring K gradients.
        gamma: step size :math:`\gamma > 0`.
        rho: :math:`\ell_2` regularisation :math:`\rho \ge 0`.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import MoDo
        >>> modo = MoDo(2, gamma=0.5, rho=0.0)
        >>> res = modo.update(gram=np.array([[1.0, 0.0], [0.0, 3.0]]))
        >>> res.weights  # Proj([0.5 - 0.25, 0.5 - 0.75]) = Proj([0.25, -0.25])
        array([0.75, 0.25])
        >>> modo.step
        1
    """

    hyperparameters = {
        "gamma": real(low=0.0, low_open=True),
        "rho": real(low=0.0),
    }
    fields = {
        "_lambda": array("K", ">= 0", high=1.0),
        "_step": count(),
    }

    def __init__(self, num_tasks: int, gamma: float = 0.1, rho: float = 0.1) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.gamma = check_real(gamma, "gamma", low=0.0, low_open=True)
        self.rho = check_real(rho, "rho", low=0.0)
        self.reset()

    def reset(self) -> None:
        """Weights back to uniform (1/K) and step to 0."""
        self._lambda = np.full(self.num_tasks, 1.0 / self.num_tasks)
        self._step = 0

    @property
    def weights(self) -> np.ndarray:
        r"""The current :math:`\lambda` (a copy)."""
        return self._lambda.copy()

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def check_state(self, values: dict) -> None:
        lam = values["_lambda"]
        if abs(float(lam.sum()) - 1.0) > 1e-9:
            raise ValueError(
                f"state['lambda'] must lie on the simplex (entries >= 0 summing to 1); "
                f"its sum is {float(lam.sum())!r}"
            )

    def update(self, grads: object = None, *, gram: object = None) -> SolverResult:
        """One MoDo step on K x M gradients and/or their K x K Gram matrix.

        Returns:
            SolverResult with ``weights`` (the new :math:`\\lambda`), ``direction``
            (when ``grads`` was given), ``objective`` (:math:`\\lambda^\\top G
            \\lambda` at the new weights) and ``extras["step_point"]`` (the point
            before the projection).
        """
        J, G = prepare(grads, gram)
        check_gram_size(G, self.num_tasks, "MoDo")
        lam, y, ok = modo_step(G, self._lambda, self.gamma, self.rho)
        if not ok:
            raise ValueError(
                f"gamma * gram @ weights overflows float64 (gamma={self.gamma!r}, largest "
                f"|gram| entry {float(np.abs(G).max()):.3g}); scale the gradients down"
            )
        self._lambda = lam
        self._step += 1
        return SolverResult(
            weights=lam.copy(),
            direction=combine(lam, J),
            gram=G,
            method="modo",
            objective=float(lam @ G @ lam),
            extras={"step_point": y},
        )

    __call__ = update
