"""FAMO: loss weights z_i / L_i from learnt logits, updated by the change of log losses."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_choice, check_real
from paretomtl.state import array, choice, count, real
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._optim import ADAM_MOMENT_BOUNDS, check_moments, descent_step
from paretomtl.weighting._registry import register

# The logits stay within +-1e300: their differences, which are all the softmax
# reads, stay finite, and so does the decay term gamma * xi for any gamma <= 1e8.
LOGIT_BOUND = 1e300
_LOG4 = float(np.log(4.0))


def log_gaps(losses: np.ndarray, min_losses: np.ndarray, eps: float) -> np.ndarray:
    r""":math:`\log(L_i - m_i + \epsilon)`, also where the difference overflows float64."""
    with np.errstate(over="ignore"):
        gap = losses - min_losses + eps
    finite = np.isfinite(gap)
    if finite.all():
        return np.log(gap)
    # Where the gap overflows, a quarter of it does not (three terms below max / 4).
    quarter = np.where(finite, 1.0, 0.25 * losses - 0.25 * min_losses + 0.25 * eps)
    return np.where(finite, np.log(np.where(finite, gap, 1.0)), np.log(quarter) + _LOG4)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


@register(
    "famo",
    kind="loss",
    paper=("Liu, Feng, Stone & Liu, FAMO: Fast Adaptive Multitask Optimization, NeurIPS 2023"),
    summary="w_i proportional to softmax(xi)_i / (L_i - m_i); xi learnt from the change of log L",
)
class FAMO(LossWeighting):
    r"""FAMO, Fast Adaptive Multitask Optimization (Liu, Feng, Stone & Liu, NeurIPS 2023).

    FAMO descends a weighted sum of *log* losses whose weights are learnt so that
    every task's log loss falls at about the same rate. With logits :math:`\xi`,
    :math:`z = \operatorname{softmax}(\xi)`, the lower bounds :math:`m_i` of the
    losses (``min_losses``) and :math:`D_i = L_i - m_i + \epsilon`, the network
    minimises :math:`\tfrac1c\sum_i z_i \log D_i` with the normalisation
    :math:`c = \sum_i z_i / D_i` held constant, so its loss weights are

    .. math::

        w_i = \frac{z_i / D_i}{\sum_j z_j / D_j}, \qquad \textstyle\sum_i w_i = 1,

    (the update is a convex combination of the task gradients). After the step, the
    change of the log losses from one step to the next,
    :math:`\delta_i = \log D_i(t) - \log D_i(t+1)`, drives the logits: the paper's
    gradient for :math:`\xi` is :math:`J_z^\top \delta` with :math:`J_z` the
    softmax's Jacobian, plus the decay :math:`\gamma \xi`:

    .. math::

        g = z \odot (\delta - z^\top \delta) + \gamma\, \xi ,

    and :math:`\xi` takes an optimiser step with g (Adam by default, as the authors'
    code and LibMTL; ``"sgd"`` is the paper's Algorithm 1,
    :math:`\xi \leftarrow \xi - \beta g`). A task whose log loss fell less than the
    z-weighted average gets a larger logit.

    **When the logits move.** The authors' code (and LibMTL's trainer, and
    ``torchjd.scalarization.FAMO``) recomputes the losses on the *same* batch after
    the network's step and updates :math:`\xi` from that pair at once. A loss
    weighting here is called once per step with that step's losses, so by default
    the update of :math:`\xi` from step t's losses happens at the next call: each
    :meth:`update` first moves :math:`\xi` with :math:`\delta = \log D(L_{t-1}) -
    \log D(L_t)` (the previous call's losses against these, which come from the next
    batch, at the new parameters), then returns the weights for :math:`L_t`. The
    first call only returns weights. To follow the authors exactly, call
    :meth:`observe` with the same batch's losses after the network's step: it moves
    :math:`\xi` from that pair, and the next :meth:`update` then makes no logit step
    of its own.

    Defaults (the paper's Algorithm 2 and LibMTL): ``lr = 0.025`` (the logits'
    Adam step size, LibMTL's ``FAMO_w_lr``), ``gamma = 1e-3`` (the decay, Adam's
    coupled weight decay as in ``torch.optim.Adam``; LibMTL's ``FAMO_w_gamma``
    and torchjd's default too; the authors' ``famo.py`` uses 0.01 and their
    ``weight_methods.py`` 1e-5), ``eps = 1e-8``, ``min_losses = 0``, logits 0 at the
    start (equal z). Adam is Kingma & Ba's (beta = (0.9, 0.999), eps = 1e-8,
    bias-corrected; the gradient clipped to :math:`\pm 2^{500}` before the moments).

    Range: the logits are kept within :math:`\pm 10^{300}`; the weights are computed
    as :math:`\operatorname{softmax}(\xi - \log D)`, the same numbers without
    overflow, so they are finite for any finite losses; :math:`\log D` is taken
    without overflow where :math:`L - m` leaves float64's range. Each loss must be
    finite and :math:`\ge m_i` (the paper's :math:`m_i` is the loss's minimum).

    Args:
        num_tasks: K >= 1.
        lr: the logits' step size, > 0 (default 0.025).
        gamma: the decay of the logits, >= 0 (default 1e-3).
        optimizer: ``"adam"`` (default) or ``"sgd"``.
        min_losses: :math:`m_i`, a scalar or K finite values (default 0).
        eps: :math:`\epsilon > 0` added to :math:`L_i - m_i` (default 1e-8).

    Example:
        >>> from paretomtl.weighting import FAMO
        >>> famo = FAMO(2)
        >>> famo.update([1.0, 3.0]).round(6)  # z = (1/2, 1/2): w proportional to 1/L
        array([0.75, 0.25])
        >>> famo.logits  # the logits move at the next call
        array([0., 0.])
        >>> w = famo.update([0.5, 3.0])  # task 0's log loss fell by log 2, task 1's by 0
        >>> famo.logits.round(6)  # Adam's first step: -lr sign(g), g = (1, -1) log(2) / 4
        array([-0.025,  0.025])
    """

    hyperparameters = {
        "lr": real(low=0.0, low_open=True),
        "gamma": real(low=0.0),
        "optimizer": choice("adam", "sgd"),
        "min_losses": array("K"),
        "eps": real(low=0.0, low_open=True),
    }
    fields = {
        "_logits": array("K", low=-LOGIT_BOUND, high=LOGIT_BOUND),
        "_adam_m": array("K", low=-ADAM_MOMENT_BOUNDS[0], high=ADAM_MOMENT_BOUNDS[0]),
        "_adam_v": array("K", ">= 0", high=ADAM_MOMENT_BOUNDS[1]),
        "_step": count(),
        "_previous": array("K", optional=True),
    }

    def __init__(
        self,
        num_tasks: int,
        lr: float = 0.025,
        gamma: float = 1e-3,
        *,
        optimizer: str = "adam",
        min_losses: float | object = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(num_tasks)
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.gamma = check_real(gamma, "gamma", low=0.0)
        self.optimizer = check_choice(optimizer, "optimizer", ("adam", "sgd"))
        self.min_losses = as_real_task_vector(
            min_losses, "min_losses", self.num_tasks, broadcast=True
        )
        self.eps = check_real(eps, "eps", low=0.0, low_open=True)
        self.reset()

    @property
    def logits(self) -> np.ndarray:
        r"""The current logits :math:`\xi` (a copy)."""
        return self._logits.copy()

    @property
    def step(self) -> int:
        """How many logit updates have been made."""
        return self._step

    def _reset(self) -> None:
        K = self.num_tasks
        self._logits = np.zeros(K)
        self._adam_m = np.zeros(K)
        self._adam_v = np.zeros(K)
        self._step = 0
        self._previous: np.ndarray | None = None  # losses awaiting their logit update

    def _check_losses(self, losses: object) -> np.ndarray:
        L = super()._check_losses(losses)
        below = L < self.min_losses
        if below.any():
            i = int(np.flatnonzero(below)[0])
            raise ValueError(
                f"losses[{i}] (task {i}) is {float(L[i])!r}; each loss must be >= its "
                f"min_losses[{i}] = {float(self.min_losses[i])!r} (FAMO takes log(L - m + eps))"
            )
        return L

    def _logit_step(self, before: np.ndarray, after: np.ndarray):
        """The logits and Adam state after one step from the losses ``before`` -> ``after``."""
        m0, eps = self.min_losses, self.eps
        delta = log_gaps(before, m0, eps) - log_gaps(after, m0, eps)
        xi = self._logits
        z = _softmax(xi)
        step = self._step + 1
        with np.errstate(over="ignore"):
            grad = z * (delta - z @ delta) + self.gamma * xi
            update, m, v = descent_step(
                self.optimizer, grad, self.lr, self._adam_m, self._adam_v, step
            )
            xi = np.clip(xi - update, -LOGIT_BOUND, LOGIT_BOUND)
        return xi, m, v, step

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        if self._previous is not None:
            self._logits, self._adam_m, self._adam_v, self._step = self._logit_step(
                self._previous, losses
            )
        w = _softmax(self._logits - log_gaps(losses, self.min_losses, self.eps))
        self._previous = losses.copy()
        return w

    def observe(self, losses: object) -> None:
        """The authors' logit update: ``losses`` are the last batch's, after the step.

        Moves :math:`\\xi` with :math:`\\delta = \\log D(L_t) - \\log D(L'_t)`, where
        :math:`L_t` are the losses the last :meth:`update` weighted and :math:`L'_t`
        these (the same batch, recomputed after the network's step); the next
        :meth:`update` then makes no logit step. Raises ValueError if no
        :meth:`update` is waiting for its logit step.
        """
        L = self._check_losses(losses)
        if self._previous is None:
            raise ValueError(
                "observe(losses) needs an update() since the last observe(): it updates the "
                "logits from the losses that update() weighted to these"
            )
        self._logits, self._adam_m, self._adam_v, self._step = self._logit_step(self._previous, L)
        self._previous = None

    def check_state(self, values: dict) -> None:
        step, w = values["_step"], values["_weights"]
        previous = values["_previous"]
        if w is None and (step > 0 or previous is not None):
            raise ValueError(
                f"state['weights'] is None but the state has seen updates (state['step'] {step})"
            )
        if w is not None and not np.isclose(w.sum(), 1.0, rtol=1e-9, atol=0.0):
            raise ValueError(f"state['weights'] must sum to 1; got {w} (sum {w.sum()!r})")
        if previous is not None and (previous < values["min_losses"]).any():
            raise ValueError(
                f"state['previous'] {previous} must be >= min_losses {values['min_losses']}"
            )
        check_moments(values)
