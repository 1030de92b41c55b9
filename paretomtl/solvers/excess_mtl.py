"""ExcessMTL: task weights raised by exponentiated steps on each task's estimated excess risk."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import (
    as_real_array,
    check_choice,
    check_count,
    check_num_tasks,
    check_real,
)
from paretomtl._kernels.simplex_steps import excess_accumulate
from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._kxm import needs_grads_error
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.state import Stateful, array, choice, count, real, value

_SUMS = ("one", "num-tasks")
# Largest |gradient entry| accepted: squares and their running sums must stay finite.
_MAX_ENTRY = 1e150


def _check_sq_sum(x: object, K: int, where: str) -> np.ndarray | None:
    if x is None:
        return None
    arr = as_real_array(x, where)
    if arr.ndim != 2 or arr.shape[0] != K or arr.shape[1] < 1:
        raise ValueError(f"{where} must be a {K} x M array (M >= 1); got shape {arr.shape}")
    if not (np.isfinite(arr) & (arr >= 0)).all():
        raise ValueError(f"{where} must hold finite entries >= 0 (sums of squares)")
    return np.ascontiguousarray(arr)


def _check_warmup(x: object, K: int, where: str) -> int:
    return check_count(x, where, minimum=1)


def exponentiated_step(weights: np.ndarray, risks: np.ndarray, step_size: float) -> np.ndarray:
    r"""The exponentiated-gradient step :math:`w_i e^{\eta r_i} / \sum_j w_j e^{\eta r_j}`,
    computed in log space (no overflow for any finite :math:`\eta r`; infinite products
    share the weight equally).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.excess_mtl import exponentiated_step
        >>> exponentiated_step(np.array([0.5, 0.5]), np.array([np.log(3.0), 0.0]), 1.0)
        array([0.75, 0.25])
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        z = np.log(weights) + step_size * risks
    top = np.isposinf(z)
    if top.any():
        return top / top.sum()
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


@register(
    "excess-mtl",
    kind="stateful-gradient",
    paper="He et al., Robust Multi-Task Learning with Excess Risks, ICML 2024",
    summary="weights raised by exponentiated steps on each task's excess risk (AdaGrad proxy)",
)
class ExcessMTL(Stateful):
    r"""ExcessMTL: weight the tasks by how far each is from its own optimum.

    He et al. ("Robust Multi-Task Learning with Excess Risks", ICML 2024) weight tasks
    by their *excess* risk (loss minus the task's attainable minimum) rather than the
    loss, which noisy tasks inflate. The excess risk of task i is estimated by a
    second-order expansion around the current point, :math:`\mathcal E_i \approx g_i^\top
    H_i^{-1} g_i`, with the Hessian replaced by AdaGrad's diagonal,
    :math:`H_i = \operatorname{diag}(\sqrt{S_i + \epsilon})`, :math:`S_i = \sum_{t \le k}
    g_{i,t}^{\odot 2}` the running sum of squared gradient coordinates:

    .. math::

        \mathcal E_i = \sum_m \frac{g_{im}^2}{\sqrt{S_{im} + \epsilon}}.

    During the first ``n_warmup_steps`` updates the weights stay uniform and the
    estimates are averaged into a per-task baseline :math:`\mathcal E_i^0` (the
    paper's scale processing, its section 3.2 and appendix C.1); afterwards

    .. math::

        w_i \leftarrow \frac{w_i \exp(\eta\, \mathcal E_i / \mathcal E_i^0)}
                            {\sum_j w_j \exp(\eta\, \mathcal E_j / \mathcal E_j^0)},

    and the update is :math:`d = \sum_i w_i g_i` (``weights_sum="one"``, the paper's
    simplex) or :math:`K \sum_i w_i g_i` (``"num-tasks"``, the authors' code and
    LibMTL, whose weights sum to K).

    Not a Gram-space method: :math:`S` keeps one number per task and coordinate, so
    every update needs the K x M gradients (``needs_grads``; the state holds a K x M
    array, fixed M), and ``gram`` alone is refused.

    Defaults and the peers:

    - ``robust_step_size`` :math:`\eta` = 1e-2: the authors' code and LibMTL
      (``--robust_step_size``); TorchJD's ``ExcessMTLWeighting`` defaults to 1.
    - ``n_warmup_steps`` = 1: the authors' code and LibMTL take the first update's
      estimates as the baseline and leave that update's weights uniform. TorchJD's
      ``n_warmup_steps=m >= 1`` is the same rule as ``m`` here; its default 0
      instead updates the weights on the first call with the raw, unnormalised
      :math:`\mathcal E` (not reproduced here). The paper suggests about three
      epochs of warm-up.
    - ``eps`` :math:`\epsilon` = 1e-7 (all three peers). With ``eps=0`` coordinates
      where no gradient has been seen yet add 0.
    - ``baseline_eps`` = 0: the ratio is :math:`\mathcal E_i / \mathcal E_i^0` (the
      authors' code and LibMTL); a task whose baseline is 0 (zero gradients during
      the warm-up) takes as baseline its first positive estimate (ratio 1 then), where
      the authors' code would divide by 0. TorchJD divides by
      :math:`\mathcal E_i^0 + 10^{-7}` (``baseline_eps=1e-7`` reproduces it).
    - The exponentiated step is computed in log space (as TorchJD; the authors' code
      multiplies by :math:`e^{\eta r}`, which overflows for :math:`\eta r > 709`).

    Args:
        num_tasks: K >= 1; every update must bring K gradients.
        robust_step_size: :math:`\eta > 0`.
        n_warmup_steps: updates (>= 1) whose estimates form the baseline.
        eps: :math:`\epsilon \ge 0` in the AdaGrad denominator.
        baseline_eps: added to the baseline in the ratio, >= 0.
        weights_sum: ``"one"`` (default) or ``"num-tasks"``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import ExcessMTL
        >>> ex = ExcessMTL(2, robust_step_size=1.0, eps=0.0)
        >>> ex.update(np.array([[2.0, 0.0], [0.0, 1.0]])).weights  # warm-up: E = (2, 1)
        array([0.5, 0.5])
        >>> res = ex.update(np.eye(2))  # S = (5, 2): E = (1/sqrt(5), 1/sqrt(2))
        >>> res.extras["ratio"].round(4)  # E / (2, 1)
        array([0.2236, 0.7071])
        >>> res.weights.round(4)  # (e^0.2236, e^0.7071) / sum
        array([0.3814, 0.6186])
    """

    needs_grads = True

    hyperparameters = {
        "robust_step_size": real(low=0.0, low_open=True),
        "n_warmup_steps": value(_check_warmup),
        "eps": real(low=0.0),
        "baseline_eps": real(low=0.0),
        "weights_sum": choice(*_SUMS),
    }
    fields = {
        "_weights": array("K", ">= 0", high=1.0),
        "_sq_sum": value(_check_sq_sum),
        "_warmup_sum": array("K", ">= 0"),
        "_baseline": array("K", ">= 0", optional=True),
        "_step": count(),
    }

    def __init__(
        self,
        num_tasks: int,
        robust_step_size: float = 1e-2,
        n_warmup_steps: int = 1,
        eps: float = 1e-7,
        baseline_eps: float = 0.0,
        weights_sum: str = "one",
    ) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.robust_step_size = check_real(
            robust_step_size, "robust_step_size", low=0.0, low_open=True
        )
        self.n_warmup_steps = _check_warmup(n_warmup_steps, self.num_tasks, "n_warmup_steps")
        self.eps = check_real(eps, "eps", low=0.0)
        self.baseline_eps = check_real(baseline_eps, "baseline_eps", low=0.0)
        self.weights_sum = check_choice(weights_sum, "weights_sum", _SUMS)
        self.reset()

    def reset(self) -> None:
        """Uniform weights, no squared sums, no baseline, step 0 (warm-up again)."""
        K = self.num_tasks
        self._weights = np.full(K, 1.0 / K)
        self._sq_sum = None
        self._warmup_sum = np.zeros(K)
        self._baseline = None
        self._step = 0

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    @property
    def baseline(self) -> np.ndarray | None:
        r"""The baseline :math:`\mathcal E^0` (a copy), None during the warm-up."""
        return None if self._baseline is None else self._baseline.copy()

    def check_state(self, values: dict) -> None:
        w, base, step = values["_weights"], values["_baseline"], values["_step"]
        warm, S = values["n_warmup_steps"], values["_sq_sum"]
        if abs(float(w.sum()) - 1.0) > 1e-9:
            raise ValueError(
                f"state['weights'] must lie on the simplex (entries >= 0 summing to 1); "
                f"its sum is {float(w.sum())!r}"
            )
        if (base is None) != (step < warm):
            raise ValueError(
                f"state['baseline'] must be None during the warm-up and set after it; got "
                f"{'None' if base is None else 'a baseline'} at step {step} with "
                f"n_warmup_steps={warm}"
            )
        if (S is None) != (step == 0):
            raise ValueError(
                f"state['sq_sum'] must be None exactly at step 0; got "
                f"{'None' if S is None else 'an array'} at step {step}"
            )

    def update(self, grads: object = None, *, gram: object = None) -> SolverResult:
        """One ExcessMTL step on the K x M gradients (``gram`` optional, checked).

        Returns:
            SolverResult with ``weights`` (summing to 1 or K), ``direction``,
            ``gram`` (of the current gradients) and ``extras``: ``"excess"``
            (:math:`\\mathcal E`), ``"ratio"`` (:math:`\\mathcal E / \\mathcal E^0`,
            None during the warm-up), ``"warmup"`` (whether this was a warm-up update).
        """
        if grads is None:
            raise needs_grads_error(
                "excess-mtl", "its AdaGrad sums keep one number per task and coordinate"
            )
        p = prepare_scaled(grads, gram)
        J = p.grads
        K, M = J.shape
        if K != self.num_tasks:
            raise ValueError(
                f"this ExcessMTL was built for {self.num_tasks} tasks but got {K} gradients; "
                f"K must stay the same between calls"
            )
        if self._sq_sum is not None and self._sq_sum.shape[1] != M:
            raise ValueError(
                f"grads has {M} columns but this ExcessMTL's sums have "
                f"{self._sq_sum.shape[1]}; M must stay the same between calls (reset() first)"
            )
        top = float(np.abs(J).max())
        if top > _MAX_ENTRY:
            raise ValueError(
                f"grads has an entry of magnitude {top:.3g}; ExcessMTL sums squared "
                f"entries, which must stay below about 1e300 (entries up to {_MAX_ENTRY:g})"
            )
        J64 = np.ascontiguousarray(J, dtype=np.float64)
        S = np.zeros((K, M)) if self._sq_sum is None else self._sq_sum
        E = excess_accumulate(J64, S, self.eps)  # S updated in place: nothing fails below
        self._sq_sum = S
        self._step += 1
        warmup = self._baseline is None
        ratio = None
        if warmup:
            self._warmup_sum = self._warmup_sum + E
            if self._step == self.n_warmup_steps:
                self._baseline = self._warmup_sum / self.n_warmup_steps
        else:
            base = self._baseline
            if self.baseline_eps == 0.0:
                late = (base == 0.0) & (E > 0.0)
                if late.any():
                    base = np.where(late, E, base)
                    self._baseline = base
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(base > 0.0, E / np.where(base > 0.0, base, 1.0), 0.0)
            else:
                ratio = E / (base + self.baseline_eps)
            self._weights = exponentiated_step(self._weights, ratio, self.robust_step_size)
        weights = self._weights * (K if self.weights_sum == "num-tasks" else 1.0)
        G, exponent = unscaled_gram(p.gram, p.exponent)
        return SolverResult(
            weights=weights,
            direction=combine(weights, J),
            gram=G,
            method="excess-mtl",
            extras={"excess": E, "ratio": ratio, "warmup": warmup},
            gram_exponent=exponent,
        )

    __call__ = update
