"""PCD: follow the primary task's gradient, guaranteeing each secondary task some progress."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import (
    as_real_array,
    check_gram_size,
    check_num_tasks,
    check_real,
)
from paretomtl._kernels.pcd import (
    ROUTE_INFEASIBLE,
    ROUTE_QP,
    ROUTE_ZERO_DIRECTION,
    ROUTE_ZERO_PRIMARY,
    pcd_step,
)
from paretomtl.solvers._input import combine, prepare
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.state import Stateful, array, count, real, value

# A constraint counts as met when its slack on the unit gradient, u_j^T d~ - tau_j
# ||g~_j||, is above -TOL (||g~_1|| + max_j tau_j ||g~_j|| + sum_j mu_j ||g~_j||): a few
# hundred roundings of the slacks' sums, far below any tolerance that matters.
TOL = 1e-12
# A secondary gradient whose part off the span of the active ones has a squared norm
# at most this fraction of its own counts as in that span (TorchJD's value): above the
# relative rounding of a float64 Gram matrix, so that rounding cannot make dependent
# gradients look independent with huge multipliers.
DEPENDENT = 1e-9
# A run stopped by its cap still counts as solved when its KKT residual is below this.
KKT_ACCEPT = 1e-9
_EPS64 = float(np.finfo(np.float64).eps)
_EPS32 = float(np.finfo(np.float32).eps)

ROUTES = {
    ROUTE_QP: ("qp", "pcd"),
    ROUTE_INFEASIBLE: ("infeasible: constraints dropped", "pcd/infeasible"),
    ROUTE_ZERO_PRIMARY: ("zero primary gradient", "pcd/zero-primary"),
    ROUTE_ZERO_DIRECTION: ("zero direction", "pcd/zero-direction"),
}


def max_iterations(num_tasks: int) -> int:
    """The step cap of one QP solve: ``10 K + 100`` (each step adds or drops one
    constraint; a solve usually takes about as many steps as it ends with active).

    Example:
        >>> from paretomtl.solvers.pcd import max_iterations
        >>> max_iterations(10)
        200
    """
    return 10 * num_tasks + 100


def _tau_vector(x: object, num_tasks: int, where: str, *, scalar: bool) -> np.ndarray:
    n = num_tasks - 1
    arr = as_real_array(x, where)
    if arr.ndim == 0 and scalar:
        arr = np.full(n, float(arr))
    elif arr.shape != (n,):
        form = "a real number or " if scalar else ""
        raise ValueError(
            f"{where} must be {form}a vector of K - 1 = {n} values (one per secondary "
            f"task); got shape {arr.shape}"
        )
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # NaN fails too
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where}[{i}] (secondary task {i + 1}) is {float(arr[i])!r}; each value "
            f"must lie in [0, 1]"
        )
    return arr


def _tau_state(x: object, K: int, where: str) -> np.ndarray:
    return _tau_vector(x, K, where, scalar=False)


def _precision(grads: object, gram: object) -> float:
    """Ten times the machine epsilon of the coarsest input (float32 for float32 or
    float16 gradients or Gram matrix, else float64), as TorchJD reads its Gramian's."""
    for x in (grads, gram):
        dtype = getattr(x, "dtype", None)
        if dtype is not None and getattr(dtype, "kind", "") == "f" and dtype.itemsize < 8:
            return 10.0 * _EPS32
    return 10.0 * _EPS64


@register(
    "pcd",
    kind="stateful-gradient",
    paper=(
        "Varam et al., Not All Objectives Are Born Equal: Priority-Constrained Descent "
        "for Hierarchical Multi-Objective Optimization, TMLR 2026, arXiv:2606.29521"
    ),
    summary="the closest direction to the primary gradient giving each secondary task tau progress",
)
class PCD(Stateful):
    r"""Priority-Constrained Descent: task 0 first, every other task guaranteed progress.

    Task 0 is the primary objective; the others are secondary. PCD moves as close as
    possible to the primary gradient while each secondary task keeps at least a
    fraction :math:`\tau_j` of the first-order progress its own normalised gradient
    would give (Varam et al., "Not All Objectives Are Born Equal: Priority-Constrained
    Descent for Hierarchical Multi-Objective Optimization", TMLR 2026,
    arXiv:2606.29521):

    .. math::

        \tilde d = \arg\min_d \tfrac12 \|d - \tilde g_1\|^2 \quad\text{s.t.}\quad
        \tilde g_j^\top d \ge \tau_j \|\tilde g_j\|^2,\ j = 2..K,
        \qquad \tilde g_i = s_i g_i,\quad s_i = (\hat v_i + \epsilon)^{-1/2},

    :math:`\hat v_i = v_i / (1 - \beta^t)` the bias-corrected moving average
    :math:`v_i \leftarrow \beta v_i + (1 - \beta) \|g_i\|^2` at step t, and the
    update is :math:`d = \tilde d\, \|g_1\| / \|\tilde d\|` (:math:`\|\tilde d\|`
    from the Gram matrix, like everything here, so the same weights come with or
    without ``grads``: exact to about :math:`\epsilon\kappa^2`, :math:`\kappa =
    \sum_i |w_i| \|g_i\| / \|d\|`, which matters only where the constraints make
    :math:`\tilde d` a cancelling combination). In Gram space (N the
    Gram matrix of the :math:`\tilde g_i`), :math:`\tilde d = \tilde g_1 + \sum_j \mu_j
    \tilde g_j` with :math:`\mu \ge 0` the solution of the dual QP
    :math:`\min_{\mu \ge 0} \tfrac12 \mu^\top N_{SS} \mu - b^\top \mu`,
    :math:`b_j = \tau_j N_{jj} - N_{j1}`, solved exactly by the dual active-set
    method of Goldfarb & Idnani (1983) in one compiled kernel
    (:mod:`paretomtl._kernels.pcd`); the weights are :math:`w = (1, \mu) \circ s\,
    \|g_1\| / \|\tilde d\|`. Each constraint is divided by
    :math:`\|\tilde g_j\|` first (zero gradients, whose constraint always holds, are
    left out), so that its slack :math:`u_j^\top \tilde d - \tau_j \|\tilde g_j\|`
    (:math:`u_j` the unit gradient) is a length, and the tolerances treat a short
    gradient's constraint as they treat a long one's. ``kkt_residual`` is the KKT
    residual of the QP: the largest violation of a constraint, or slack of a
    constraint with :math:`\mu_j > 0`, on the unit gradients, relative to
    :math:`\|\tilde g_1\| + \max_j \tau_j \|\tilde g_j\| + \sum_j \mu_j
    \|\tilde g_j\|`.

    Because of the normalisation, multiplying a secondary task's gradient by the same
    positive constant at every step changes nothing (up to :math:`\epsilon`), and
    :math:`\tau` is a scale-free fraction. Special cases (``extras["route"]``, and
    ``method``):

    - ``"zero primary gradient"`` (``pcd/zero-primary``): :math:`g_1 = 0`; the update
      is 0.
    - ``"infeasible: constraints dropped"`` (``pcd/infeasible``): the constraints
      cannot all hold (which needs K >= 3, e.g. two opposite secondary gradients with
      :math:`\tau > 0`); the update is :math:`g_1`. Decided by the active-set method
      when a violated constraint's normalised gradient :math:`\tilde g_p` lies in the
      span of the active ones (the part off it has a squared norm at most 1e-9 of
      :math:`\|\tilde g_p\|^2`, TorchJD's tolerance) and no active multiplier
      decreases along the move: then :math:`v = e_p - r \ge 0` is a Farkas
      certificate, :math:`\sum_j v_j \tilde g_j = 0` (to that tolerance) with
      :math:`\sum_j v_j \tau_j \|\tilde g_j\|^2 > 0`. ``extras["certificate"]``
      holds v (K entries, 0 for the primary task), ``extras["certificate_residual"]``
      :math:`\|\sum_j v_j \tilde g_j\|^2 / (\sum_j v_j \|\tilde g_j\|)^2`.
    - ``"zero direction"`` (``pcd/zero-direction``): :math:`\|\tilde d\|^2 \le 10
      \varepsilon (\sum_i |w_i| \|\tilde g_i\|)^2`, zero up to the rounding of the
      Gram matrix (:math:`\varepsilon` the machine epsilon of float64, or of float32
      for float32/float16 gradients or Gram matrix); the update is 0.

    Defaults (``tau=0.02``, ``beta=0.999``, ``eps=1e-8``) are TorchJD's (0.18,
    ``PCDWeighting``), which follows the paper. Differences from TorchJD: NaN or Inf
    input raises a ValueError here (TorchJD returns NaN weights and leaves its
    average); K is fixed at construction (TorchJD clears its average when the number
    of rows changes); TorchJD counts a constraint as met when its slack
    :math:`\tilde g_j^\top d - \tau_j \|\tilde g_j\|^2` is above :math:`-10^{-9}
    \max_i \|\tilde g_i\|^2`, an absolute threshold: a secondary gradient whose
    normalised norm is far below the longest (a task whose norm moved many decades
    away from its moving average) then has its constraint ignored, however badly it is
    violated, where here it is met (within ``1e-12`` on the unit gradient, see
    above). The two agree to about 1e-13 elsewhere (tested to 1e-6 on random,
    conflicting, duplicated, opposite, zero and rank-deficient gradients; where norms
    span many decades, the test checks that wherever they differ TorchJD's direction
    violates a constraint and this one does not).

    Args:
        num_tasks: K >= 1 (task 0 primary; K = 1 gives :math:`d = g_1`).
        tau: the guaranteed fraction, in [0, 1]: one value for every secondary task,
            or K - 1 values (stored as K - 1 values either way).
        beta: decay of the moving average of the squared norms, in [0, 1).
        eps: added to the moving average before the inverse square root, >= 0.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import PCD
        >>> pcd = PCD(2, tau=0.75, beta=0.0, eps=0.0)
        >>> res = pcd(np.array([[1.0, 0.0], [0.0, 2.0]]))  # d~ = (1, 0.75), rescaled to 1
        >>> res.direction, res.weights
        (array([0.8, 0.6]), array([0.8, 0.3]))
        >>> pcd = PCD(3, tau=0.1)
        >>> res = pcd(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]))  # g2 = -g3
        >>> res.extras["route"], res.direction
        ('infeasible: constraints dropped', array([1., 0.]))
    """

    hyperparameters = {
        "tau": value(_tau_state),
        "beta": real(low=0.0, high=1.0, high_open=True),
        "eps": real(low=0.0),
    }
    fields = {"_ema": array("K", ">= 0"), "_step": count()}

    def __init__(
        self, num_tasks: int, tau: object = 0.02, beta: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.tau = _tau_vector(tau, self.num_tasks, "tau", scalar=True)
        self.beta = check_real(beta, "beta", low=0.0, high=1.0, high_open=True)
        self.eps = check_real(eps, "eps", low=0.0)
        self.reset()

    def reset(self) -> None:
        """The moving average back to 0 and the step to 0."""
        self._ema = np.zeros(self.num_tasks)
        self._step = 0

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    @property
    def ema(self) -> np.ndarray:
        """The moving average of the squared gradient norms, before bias correction (a
        copy)."""
        return self._ema.copy()

    def check_state(self, values: dict) -> None:
        if values["_step"] == 0 and values["_ema"].any():
            raise ValueError(
                f"state['ema'] must be 0 at state['step'] = 0 (no update has been "
                f"averaged yet); got {values['_ema']}"
            )

    def update(self, grads: object = None, *, gram: object = None) -> SolverResult:
        """One PCD step on K x M gradients and/or their K x K Gram matrix.

        Returns:
            SolverResult with ``weights``, ``direction`` (with ``grads``),
            ``iterations`` and ``converged`` of the QP solve, ``kkt_residual`` (on
            the infeasible route, where the QP has no solution, the certificate's
            residual instead; 0 on the zero-primary route), and
            ``extras``: ``"route"`` (see the class), ``"multipliers"`` (the K - 1
            :math:`\\mu_j`; 0 when infeasible), ``"scales"`` (the K :math:`s_i`),
            ``"certificate"`` and ``"certificate_residual"`` (when infeasible).
        """
        J, G = prepare(grads, gram)
        check_gram_size(G, self.num_tasks, "PCD")
        step = self._step + 1
        correction = 1.0 - self.beta**step
        K = self.num_tasks
        new_ema, w, route, mu, cert, its, capped, res, scales = pcd_step(
            G,
            self._ema,
            self.beta,
            correction,
            self.eps,
            self.tau,
            _precision(grads, gram),
            TOL,
            DEPENDENT,
            max_iterations(K),
        )
        self._ema = new_ema
        self._step = step
        name, method = ROUTES[route]
        extras = {"route": name, "multipliers": mu, "scales": scales}
        if route == ROUTE_INFEASIBLE:
            full = np.concatenate(([0.0], cert))
            Ns = G * np.outer(scales, scales)
            spread = float(full @ np.sqrt(np.clip(np.diagonal(Ns), 0.0, None)))
            extras["certificate"] = full
            extras["certificate_residual"] = max(float(full @ Ns @ full), 0.0) / spread**2
            res = extras["certificate_residual"]  # no QP solution: the certificate's
        return SolverResult(
            weights=w,
            direction=combine(w, J),
            gram=G,
            method=method,
            iterations=int(its),
            converged=not (capped and res > KKT_ACCEPT),
            kkt_residual=float(res),
            extras=extras,
        )

    __call__ = update
