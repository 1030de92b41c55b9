"""IMTL-L: learnable loss scales e^{s_i} that drive every scaled loss towards 1."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_choice, check_real
from paretomtl.state import array, choice, count, real
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._optim import ADAM_MOMENT_BOUNDS, check_moments, descent_step
from paretomtl.weighting._registry import register

# s stays within +-708: the weights e^s are then normal float64 numbers, from about
# 3.3e-308 to 3.0e307.
SCALE_BOUND = 708.0


@register(
    "imtl-l",
    kind="loss",
    paper=(
        "Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, Towards Impartial Multi-task "
        "Learning, ICLR 2021"
    ),
    summary="learn s_i: minimise sum_i exp(s_i) L_i - s_i; weights exp(s_i)",
)
class IMTLL(LossWeighting):
    r"""IMTL-L, the loss half of Impartial Multi-task Learning (Liu et al., ICLR 2021).

    Each task gets a learnable log-scale :math:`s_i`; the network minimises the
    scaled losses and the scales are learnt with it by gradient descent on

    .. math::

        \mathcal L(s) = \textstyle\sum_i e^{s_i} L_i - s_i ,\qquad
        \frac{\partial \mathcal L}{\partial s_i} = e^{s_i} L_i - 1 .

    The :math:`-s_i` term keeps the scales from collapsing to 0; at a fixed loss the
    optimum is :math:`e^{s_i} L_i = 1`, so at equilibrium every scaled loss is 1
    (the paper's "impartial" losses, whatever each task's natural scale).
    :meth:`update` returns this step's weights :math:`w_i = e^{s_i}` (the network's
    gradient is :math:`\sum_i w_i \nabla L_i`), then takes one optimiser step on s
    with the gradient above, as :class:`~paretomtl.weighting.UncertaintyWeighting`
    does. Up to the sign of s and a factor 2, this is uncertainty weighting for
    regression: :math:`\mathcal L(s) = 2\,\big(\tfrac12 e^{-u} L + \tfrac12 u\big)`
    at :math:`u = -s`, so the weights here are twice Kendall et al.'s, and the two
    follow the same path (:math:`s = -u`) when this one's SGD rate is half theirs
    (Adam at equal rates: the same path up to Adam's eps).

    Defaults: ``s = 0`` (weights 1: the plain sum of the losses, as the paper, LibMTL
    and torchjd start), ``optimizer="adam"`` (Kingma & Ba 2015, beta = (0.9, 0.999),
    eps = 1e-8, bias-corrected; its gradient clipped to :math:`\pm 2^{500}` before it
    enters the moments) with ``lr = 1e-3``. The paper trains s with the network's
    own optimiser and gives no separate rate, as do LibMTL (its ``loss_scale``
    parameter) and torchjd (``torchjd.scalarization.IMTLL``, whose ``log_scale``
    the user hands to an optimiser); ``1e-3`` is Adam's own default. ``"sgd"`` is
    :math:`s \leftarrow s - \eta\,\partial\mathcal L/\partial s`.

    LibMTL's ``IMTL`` is the paper's full method, IMTL-L and IMTL-G together: it
    scales the losses by :math:`e^{s_i}` (s learnt with the gradient above) and then
    combines the per-task gradients of the *scaled* losses with IMTL-G's closed form.
    Here the halves are separate: this class is the loss weighting (the
    ``imtl-l`` name; it needs only the losses), and IMTL-G is the gradient method
    ``imtl-g`` of :mod:`paretomtl.solvers`.

    Range: s is kept within :math:`\pm 708` (a step that would leave stops at the
    bound), so the weights stay normal float64 numbers. A loss of exactly 0 has no
    optimum (:math:`\partial\mathcal L/\partial s_i = -1`): its s rises to the bound.
    A loss above about 3e307 has its optimum :math:`s_i = -\log L_i` below -708, and
    its scaled loss stays above 1 there. The losses must be finite and >= 0 (the
    paper balances non-negative losses; a negative one would drive s up forever).

    Args:
        num_tasks: K >= 1.
        lr: step size for s, > 0 (default 1e-3).
        optimizer: ``"adam"`` (default) or ``"sgd"``.
        initial_scales: :math:`s_i` at the start, a scalar or K values within
            :math:`\pm 708` (default 0).

    Example:
        >>> from paretomtl.weighting import IMTLL
        >>> imtl = IMTLL(2, lr=0.1, optimizer="sgd")
        >>> imtl.update([2.0, 0.5])  # e^0
        array([1., 1.])
        >>> imtl.scales  # s - 0.1 (e^0 L - 1) = (-0.1, 0.05)
        array([-0.1 ,  0.05])
    """

    hyperparameters = {
        "lr": real(low=0.0, low_open=True),
        "optimizer": choice("adam", "sgd"),
        "initial_scales": array("K", low=-SCALE_BOUND, high=SCALE_BOUND),
    }
    fields = {
        "_scales": array("K", low=-SCALE_BOUND, high=SCALE_BOUND),
        "_adam_m": array("K", low=-ADAM_MOMENT_BOUNDS[0], high=ADAM_MOMENT_BOUNDS[0]),
        "_adam_v": array("K", ">= 0", high=ADAM_MOMENT_BOUNDS[1]),
        "_step": count(),
    }
    loss_domain = ">= 0"
    why = "IMTL-L balances non-negative losses"

    def __init__(
        self,
        num_tasks: int,
        lr: float = 1e-3,
        *,
        optimizer: str = "adam",
        initial_scales: float | object = 0.0,
    ) -> None:
        super().__init__(num_tasks)
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.optimizer = check_choice(optimizer, "optimizer", ("adam", "sgd"))
        s0 = as_real_task_vector(initial_scales, "initial_scales", self.num_tasks, broadcast=True)
        outside = np.abs(s0) > SCALE_BOUND
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"initial_scales[{i}] (task {i}) is {float(s0[i])!r}; each must lie in "
                f"[-{SCALE_BOUND:g}, {SCALE_BOUND:g}] (the weight e^s a normal float64)"
            )
        self.initial_scales = s0
        self.reset()

    @property
    def scales(self) -> np.ndarray:
        """The current log-scales :math:`s_i` (a copy); the weights are :math:`e^{s_i}`."""
        return self._scales.copy()

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def _reset(self) -> None:
        self._scales = self.initial_scales.copy()
        self._adam_m = np.zeros(self.num_tasks)
        self._adam_v = np.zeros(self.num_tasks)
        self._step = 0

    def objective(self, losses: object) -> float:
        """:math:`\\sum_i e^{s_i} L_i - s_i` at the current s (no update)."""
        L = self._check_losses(losses)
        return float((np.exp(self._scales) * L - self._scales).sum())

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        w = np.exp(self._scales)
        step = self._step + 1
        # w L overflows to inf for losses near 1e308 at large s: Adam clips the
        # gradient, SGD's step is -inf and s stops at its bound (never inf - inf).
        with np.errstate(over="ignore"):
            grad = w * losses - 1.0
            delta, m, v = descent_step(
                self.optimizer, grad, self.lr, self._adam_m, self._adam_v, step
            )
            s = np.clip(self._scales - delta, -SCALE_BOUND, SCALE_BOUND)
        self._scales, self._adam_m, self._adam_v, self._step = s, m, v, step
        return w

    def check_state(self, values: dict) -> None:
        step, w = values["_step"], values["_weights"]
        if step > 0 and w is None:
            raise ValueError(f"state['weights'] is None after state['step'] = {step} updates")
        # Scales set at step 0 are a warm start; moments at step 0 would be amplified
        # by Adam's bias correction 1 / (1 - beta^t).
        check_moments(values)
