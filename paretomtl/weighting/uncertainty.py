"""Uncertainty weighting: learn each task's homoscedastic noise and weight by its inverse."""

from __future__ import annotations

import numpy as np

from paretomtl._optim import descent_step
from paretomtl.solvers._registry import register
from paretomtl.weighting._base import LossWeighting

_FACTORS = {"regression": 0.5, "classification": 1.0}


@register(
    "uncertainty",
    kind="loss",
    paper=(
        "Kendall, Gal & Cipolla, Multi-Task Learning Using Uncertainty to Weigh Losses "
        "for Scene Geometry and Semantics, CVPR 2018"
    ),
    summary="learn s_i = log sigma_i^2: minimise sum_i c_i exp(-s_i) L_i + s_i / 2",
)
class UncertaintyWeighting(LossWeighting):
    r"""Uncertainty weighting: a learnable noise scale per task (Kendall et al., CVPR 2018).

    Each task's likelihood gets a homoscedastic noise :math:`\sigma_i`, learnt with
    the network; the negative log-likelihood is, for a Gaussian regression
    (paper eq. 7) and a softmax classification with temperature
    :math:`\sigma^2` (eq. 10, after its approximation),

    .. math::

        \frac{1}{2\sigma_i^2} L_i + \log\sigma_i \quad\text{(regression)},\qquad
        \frac{1}{\sigma_i^2} L_i + \log\sigma_i \quad\text{(classification)}.

    With the paper's log-variance parametrisation :math:`s_i = \log\sigma_i^2`
    (trained "in practice" because it is more stable and needs no division by
    zero; :math:`\log\sigma_i = s_i / 2`) the total is

    .. math::

        \mathcal L(s) = \textstyle\sum_i c_i e^{-s_i} L_i + \tfrac12 s_i,\qquad
        c_i = \tfrac12\ \text{(regression)},\ 1\ \text{(classification)}.

    :meth:`update` returns this step's weights :math:`w_i = c_i e^{-s_i}` (the
    network's gradient is :math:`\sum_i w_i \nabla L_i`), then takes one optimiser
    step on s with the gradient

    .. math::

        \partial\mathcal L / \partial s_i = -c_i e^{-s_i} L_i + \tfrac12 .

    For constant losses the optimum is :math:`s_i = \log(2 c_i L_i)`, where every
    weighted loss :math:`w_i L_i = 1/2`: at equilibrium the method balances the
    tasks like live-loss normalisation. The losses must be finite and >= 0 (the
    derivation has squared errors and cross-entropies; a negative loss would send
    :math:`s_i \to -\infty`).

    The optimiser: ``"adam"`` (default; Kingma & Ba 2015, beta = (0.9, 0.999),
    eps = 1e-8, bias-corrected) or ``"sgd"`` (:math:`s \leftarrow s - \eta\,\partial`).
    The paper learns s with the network's optimiser and gives no separate rate;
    the default ``lr = 1e-3`` is Adam's own default. Start: ``s = 0``
    (:math:`\sigma = 1`, weights :math:`c_i`). A task whose loss stays at exactly 0
    (a noiseless task) has :math:`s_i` falling without bound, and its weight growing.

    Args:
        num_tasks: K >= 1.
        task_types: ``"regression"`` or ``"classification"`` for all tasks, or one
            of them per task.
        lr: step size for s, > 0.
        optimizer: ``"adam"`` or ``"sgd"``.
        initial_log_variances: :math:`s_i` at the start, a scalar or K values.

    Example:
        >>> from paretomtl.weighting import UncertaintyWeighting
        >>> uw = UncertaintyWeighting(2, task_types=("regression", "classification"),
        ...                           lr=0.1, optimizer="sgd")
        >>> uw.update([2.0, 0.5])  # c * exp(-0)
        array([0.5, 1. ])
        >>> uw.log_variances  # s - 0.1 * (-c L + 1/2) = (0.05, 0)
        array([0.05, 0.  ])
    """

    _hyperparameters = ("task_types", "lr", "optimizer", "initial_log_variances")
    _loss_domain = ">= 0"
    _why = "uncertainty weighting's likelihood needs a squared error or a cross-entropy"

    def __init__(
        self,
        num_tasks: int,
        task_types: str | tuple[str, ...] = "regression",
        lr: float = 1e-3,
        *,
        optimizer: str = "adam",
        initial_log_variances: float | object = 0.0,
    ) -> None:
        super().__init__(num_tasks)
        K = self.num_tasks
        types = (task_types,) * K if isinstance(task_types, str) else tuple(task_types)
        if len(types) != K:
            raise ValueError(f"task_types must be one type or {K}, one per task; got {len(types)}")
        for i, t in enumerate(types):
            if t not in _FACTORS:
                raise ValueError(
                    f"task_types[{i}] (task {i}) is {t!r}; use 'regression' or 'classification'"
                )
        if isinstance(lr, bool) or not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be finite and > 0; got {lr!r}")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}")
        s0 = np.array(initial_log_variances, dtype=np.float64)
        if s0.ndim == 0:
            s0 = np.full(K, float(s0))
        if s0.shape != (K,):
            raise ValueError(
                f"initial_log_variances must be a scalar or have shape ({K},); got {s0.shape}"
            )
        if not np.isfinite(s0).all():
            i = int(np.flatnonzero(~np.isfinite(s0))[0])
            raise ValueError(
                f"initial_log_variances[{i}] (task {i}) is {float(s0[i])!r}; must be finite"
            )
        self.task_types = types
        self.lr = float(lr)
        self.optimizer = optimizer
        self.initial_log_variances = s0
        self.reset()

    @property
    def factors(self) -> np.ndarray:
        """:math:`c_i`: 1/2 for regression, 1 for classification."""
        return np.array([_FACTORS[t] for t in self.task_types])

    @property
    def log_variances(self) -> np.ndarray:
        """The current :math:`s_i = \\log\\sigma_i^2` (a copy)."""
        return self._s.copy()

    def _reset(self) -> None:
        self._s = self.initial_log_variances.copy()
        self._m = np.zeros(self.num_tasks)  # Adam's moments
        self._v = np.zeros(self.num_tasks)
        self._step = 0

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def objective(self, losses: object) -> float:
        """The total :math:`\\sum_i c_i e^{-s_i} L_i + s_i/2` at the current s (no update)."""
        L = self._check_losses(losses)
        return float((self.factors * np.exp(-self._s) * L + 0.5 * self._s).sum())

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        w = self.factors * np.exp(-self._s)
        grad = 0.5 - w * losses
        step = self._step + 1
        delta, self._m, self._v = descent_step(
            self.optimizer, grad, self.lr, self._m, self._v, step
        )
        self._s = self._s - delta
        self._step = step
        return w

    def _state(self) -> dict:
        return {
            "log_variances": self._s.copy(),
            "adam_m": self._m.copy(),
            "adam_v": self._v.copy(),
            "step": self._step,
        }

    def _load_state(self, state: dict) -> None:
        self._s = np.array(state["log_variances"], dtype=np.float64)
        self._m = np.array(state["adam_m"], dtype=np.float64)
        self._v = np.array(state["adam_v"], dtype=np.float64)
        self._step = int(state["step"])
        self.task_types = tuple(self.task_types)
