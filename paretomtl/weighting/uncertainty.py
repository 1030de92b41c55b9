"""Uncertainty weighting: learn each task's homoscedastic noise and weight by its inverse."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_choice, check_real
from paretomtl.state import array, choice, count, real, value
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._optim import ADAM_MOMENT_BOUNDS, check_moments, descent_step
from paretomtl.weighting._registry import register

TASK_FACTORS = {"regression": 0.5, "classification": 1.0}
"""The factor :math:`c_i` of each task type in :math:`c_i e^{-s_i} L_i + s_i / 2`."""
# s = log sigma^2 stays >= -700: the weights c exp(-s) are then at most about 1e304.
LOWEST_LOG_VARIANCE = -700.0
_HIGHEST = float(np.finfo(np.float64).max)
TASK_TYPES_HELP = (
    "'regression' (a Gaussian likelihood: c = 1/2, Kendall et al.'s eq. 7) or "
    "'classification' (a softmax likelihood: c = 1, eq. 10), one for every task or one "
    "per task, e.g. task_types=('regression', 'classification')"
)


def _check_task_types(types: object, K: int, where: str) -> tuple[str, ...]:
    """K task types, each 'regression' or 'classification', as a tuple."""
    if isinstance(types, str) or not isinstance(types, list | tuple) or len(types) != K:
        raise ValueError(f"{where} must be one type or {K}, one per task; got {types!r}")
    for i, t in enumerate(types):
        if not isinstance(t, str) or t not in TASK_FACTORS:
            raise ValueError(
                f"{where}[{i}] (task {i}) is {t!r}; use 'regression' or 'classification'"
            )
    return tuple(types)


def check_task_types(task_types: object, num_tasks: int | None) -> tuple[str, ...]:
    """``task_types`` (one type for all tasks, or one per task) as K types; with
    ``num_tasks`` None, K is the sequence's length. No default: the method's
    likelihood depends on it, so it must be said.

    Example:
        >>> from paretomtl.weighting.uncertainty import check_task_types
        >>> check_task_types("regression", 2), check_task_types(["classification"], None)
        (('regression', 'regression'), ('classification',))
        >>> check_task_types(None, 2)
        Traceback (most recent call last):
        ...
        ValueError: task_types is required: 'regression' (a Gaussian likelihood: c = 1/2, Kendall et al.'s eq. 7) or 'classification' (a softmax likelihood: c = 1, eq. 10), one for every task or one per task, e.g. task_types=('regression', 'classification'); got None
    """  # noqa: E501
    if task_types is None:
        raise ValueError(f"task_types is required: {TASK_TYPES_HELP}; got None")
    if isinstance(task_types, str):
        if num_tasks is None:
            raise ValueError(
                f"task_types={task_types!r} names one type for all tasks, which does not say "
                f"how many tasks there are: pass num_tasks, or one type per task"
            )
        task_types = (task_types,) * num_tasks
    if not isinstance(task_types, list | tuple):
        raise ValueError(f"task_types must be {TASK_TYPES_HELP}; got {task_types!r}")
    if num_tasks is None:
        num_tasks = len(task_types)
        if num_tasks == 0:
            raise ValueError("task_types is empty; give one type per task")
    return _check_task_types(task_types, num_tasks, "task_types")


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
    tasks like live-loss normalisation.

    ``task_types`` is required: there is no default, because the paper's two
    likelihoods differ (:math:`c_i = 1/2` or 1). The choice shifts :math:`s_i` by
    :math:`\log 2` and so the starting weights (:math:`c_i` at :math:`s = 0`) and
    the path; the optimum weight :math:`1 / (2 L_i)` is the same for both.

    **With PyTorch** the log-variances belong with the network's parameters, trained
    by the same optimiser, scheduler and checkpoint (the paper trains them with the
    network): ``Aggregator("uncertainty", options={"task_types": ...})`` builds
    them as torch parameters (:class:`~paretomtl.adapters.torch.UncertaintyWeightingLoss`;
    add ``agg.parameters()`` to the optimiser). This class is the framework-free
    route: it trains s itself, with the optimiser below, at every :meth:`update`
    (passed to the Aggregator as an object it still does, with a warning).

    The losses must be finite and >= 0 (the derivation has squared errors and
    cross-entropies; a negative loss would send :math:`s_i \to -\infty`).

    Range: :math:`s_i` is kept >= -700 (a step that would go below stops there), so
    the weights stay below about 1e304 (:math:`c_i e^{700}`). Without the bound the
    update is unbounded below: a task whose loss is 0 (or, at equilibrium, below
    about 1e-304) has an optimum weight beyond float64's range, and a large ``lr``
    sends s to -inf, the weights to inf and then s to NaN. A step upwards that
    overflows float64 (a huge ``lr``) stops at its largest float; above
    :math:`s \approx 745` the weight is 0 to float64. Within these bounds the update
    is the paper's (Adam's gradient clip at 3e150 aside, see below).

    The optimiser: ``"adam"`` (default; Kingma & Ba 2015, beta = (0.9, 0.999),
    eps = 1e-8, bias-corrected; the gradient clipped to :math:`\pm 2^{500}` before it
    enters the moments, whose squares would otherwise overflow: a loss of 1e308 would
    leave them at inf and s frozen) or ``"sgd"``
    (:math:`s \leftarrow s - \eta\,\partial`).
    The paper learns s with the network's optimiser and gives no separate rate;
    the default ``lr = 1e-3`` is Adam's own default. Start: ``s = 0``
    (:math:`\sigma = 1`, weights :math:`c_i`). A task whose loss stays at exactly 0
    (a noiseless task) has :math:`s_i` falling without bound, and its weight growing.

    Args:
        num_tasks: K >= 1.
        task_types: required: ``"regression"`` or ``"classification"`` for all
            tasks, or one of them per task.
        lr: step size for s, > 0.
        optimizer: ``"adam"`` or ``"sgd"``.
        initial_log_variances: :math:`s_i` at the start, a scalar or K values, finite
            and >= -700.

    Example:
        >>> from paretomtl.weighting import UncertaintyWeighting
        >>> uw = UncertaintyWeighting(2, task_types=("regression", "classification"),
        ...                           lr=0.1, optimizer="sgd")
        >>> uw.update([2.0, 0.5])  # c * exp(-0)
        array([0.5, 1. ])
        >>> uw.log_variances  # s - 0.1 * (-c L + 1/2) = (0.05, 0)
        array([0.05, 0.  ])
    """

    hyperparameters = {
        "task_types": value(_check_task_types),
        "lr": real(low=0.0, low_open=True),
        "optimizer": choice("adam", "sgd"),
        "initial_log_variances": array("K", low=LOWEST_LOG_VARIANCE),
    }
    fields = {
        "_log_variances": array("K", low=LOWEST_LOG_VARIANCE),
        "_adam_m": array("K", low=-ADAM_MOMENT_BOUNDS[0], high=ADAM_MOMENT_BOUNDS[0]),
        "_adam_v": array("K", ">= 0", high=ADAM_MOMENT_BOUNDS[1]),
        "_step": count(),
    }
    loss_domain = ">= 0"
    why = "uncertainty weighting's likelihood needs a squared error or a cross-entropy"

    def __init__(
        self,
        num_tasks: int,
        task_types: str | tuple[str, ...] | None = None,
        lr: float = 1e-3,
        *,
        optimizer: str = "adam",
        initial_log_variances: float | object = 0.0,
    ) -> None:
        super().__init__(num_tasks)
        K = self.num_tasks
        types = check_task_types(task_types, K)
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.optimizer = check_choice(optimizer, "optimizer", ("adam", "sgd"))
        s0 = as_real_task_vector(initial_log_variances, "initial_log_variances", K, broadcast=True)
        if (s0 < LOWEST_LOG_VARIANCE).any():
            i = int(np.flatnonzero(s0 < LOWEST_LOG_VARIANCE)[0])
            raise ValueError(
                f"initial_log_variances[{i}] (task {i}) is {float(s0[i])!r}; each must be "
                f">= {LOWEST_LOG_VARIANCE:g} (the weight c exp(-s) within float64's range)"
            )
        self.initial_log_variances = s0
        self.task_types = types
        self.reset()

    @property
    def factors(self) -> np.ndarray:
        """:math:`c_i`: 1/2 for regression, 1 for classification."""
        return np.array([TASK_FACTORS[t] for t in self.task_types])

    @property
    def log_variances(self) -> np.ndarray:
        """The current :math:`s_i = \\log\\sigma_i^2` (a copy)."""
        return self._log_variances.copy()

    def _reset(self) -> None:
        self._log_variances = self.initial_log_variances.copy()
        self._adam_m = np.zeros(self.num_tasks)  # Adam's moments
        self._adam_v = np.zeros(self.num_tasks)
        self._step = 0

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def objective(self, losses: object) -> float:
        """The total :math:`\\sum_i c_i e^{-s_i} L_i + s_i/2` at the current s (no update)."""
        L = self._check_losses(losses)
        return float(
            (self.factors * np.exp(-self._log_variances) * L + 0.5 * self._log_variances).sum()
        )

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        w = self.factors * np.exp(-self._log_variances)
        step = self._step + 1
        # w L may overflow to inf (1e304 * 1e308): Adam clips the gradient; with SGD
        # the step is +-inf and s stops at a bound. s - delta is never inf - inf.
        with np.errstate(over="ignore"):
            grad = 0.5 - w * losses
            delta, m, v = descent_step(
                self.optimizer, grad, self.lr, self._adam_m, self._adam_v, step
            )
            s = np.clip(self._log_variances - delta, LOWEST_LOG_VARIANCE, _HIGHEST)
        self._log_variances, self._adam_m, self._adam_v, self._step = s, m, v, step
        return w

    def check_state(self, values: dict) -> None:
        # Log-variances set at step 0 are a warm start, allowed; moments at step 0 would
        # be amplified by the bias correction, 1 / (1 - beta^t).
        step, w = values["_step"], values["_weights"]
        if step > 0 and w is None:
            raise ValueError(f"state['weights'] is None after state['step'] = {step} updates")
        check_moments(values)
