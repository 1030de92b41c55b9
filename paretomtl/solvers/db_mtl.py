"""DB-MTL: log-loss gradients, smoothed by an EMA, each scaled to the largest norm."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import (
    as_real_task_vector,
    check_gram_size,
    check_num_tasks,
    check_real,
    check_reciprocal,
)
from paretomtl.solvers._input import as_grads, prepare_scaled, unscaled_gram
from paretomtl.solvers._kxm import check_same_columns, direction_dtype, needs_grads_error
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.solvers.moco import row_norms
from paretomtl.state import Stateful, array, count, real


def _max_norm_sum(rows: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, d)``: alpha_i = max_j n_j / n_i (0 for a zero row) and
    d = sum_i alpha_i rows_i, computed row by row where alpha_i overflows."""
    top = float(norms.max())
    alpha = np.zeros(norms.shape[0])
    nonzero = norms > 0
    with np.errstate(over="ignore"):
        alpha[nonzero] = top / norms[nonzero]
    finite = np.isfinite(alpha)
    if finite.all():  # the common case: one pass, no copy of the rows
        return alpha, alpha @ rows
    d = alpha[finite] @ rows[finite]
    for i in np.flatnonzero(~finite):  # a norm below 1e-308 of the largest: unit row first
        d = d + (rows[i] / norms[i]) * top
    return alpha, d


@register(
    "db-mtl",
    kind="stateful-gradient",
    paper=(
        "Lin, Jiang, Ye, Zhang, Chen, Chen, Liu, Tsang & Kwok, Dual-Balancing for "
        "Multi-Task Learning, arXiv:2308.12029, 2023"
    ),
    summary="gradients of log-losses, EMA-smoothed, each rescaled to the largest norm",
)
class DBMTL(Stateful):
    r"""DB-MTL: dual balancing of loss scales (log transform) and gradient magnitudes.

    Loss balancing: each task's loss is replaced by its logarithm, whose gradient is
    :math:`\nabla \log L_i = g_i / L_i` (so ``losses`` are required, > 0). Gradient
    balancing: these are smoothed by an exponential moving average and each is scaled
    to the norm of the largest. At step :math:`t = 1, 2, \ldots`:

    .. math::

        \beta_t &= \beta\, t^{-\sigma}, \qquad
        \hat g_{t,i} = \beta_t\, \hat g_{t-1,i} + (1 - \beta_t)\, \frac{g_{t,i}}{L_{t,i}}
        \qquad (\hat g_{0,i} = 0),

        \alpha_{t,i} &= \frac{\max_j \|\hat g_{t,j}\|}{\|\hat g_{t,i}\|}, \qquad
        d_t = \sum_i \alpha_{t,i}\, \hat g_{t,i}
            = \max_j \|\hat g_{t,j}\| \sum_i \frac{\hat g_{t,i}}{\|\hat g_{t,i}\|}.

    The direction is a combination of the smoothed log-loss gradients, the K x M state
    (held in float64): ``weights`` is None and :math:`\alpha_t` is ``extras["alpha"]``.
    On the first step (and whenever :math:`\beta_t = 0`) it is a weighted sum of the
    current gradients, :math:`d_t = \sum_i (1 - \beta_t)\,\alpha_{t,i} / L_{t,i}\; g_{t,i}`;
    ``weights`` stays None there too, so that every step reports the same way.

    Lin et al. (arXiv:2308.12029, 2023) define the method (log transform, EMA of the
    gradients, maximum-norm scaling). What the reference code does, and what is done
    here:

    - Defaults: LibMTL's ``DB_MTL`` (``LibMTL/weighting/DB_MTL.py``, from the
      authors): :math:`\beta = 0.9`, :math:`\sigma = 0` (a constant rate), the buffer
      starting at 0 with no bias correction: the first step's smoothed gradients are
      :math:`(1-\beta)\, g_i / L_i`, so the early directions are short (for constant
      gradients, by the factor :math:`1 - \beta^t`: 0.1 at the first step with the
      defaults). TorchJD has no DB-MTL.
    - LibMTL takes the gradient of :math:`\log(L_i + 10^{-8})` and divides by
      :math:`\|\hat g_i\| + 10^{-8}`. Here neither eps is added: losses must be > 0
      (a loss of 0 has no logarithm), a zero smoothed gradient contributes nothing
      (as in LibMTL, where it is multiplied by a finite factor), and the answer
      does not depend on the scale of the gradients or the losses (LibMTL's differs
      from this by about :math:`10^{-8}/L_i` and :math:`10^{-8}/\|\hat g_i\|` relative).

    Args:
        num_tasks: K >= 1; every update must bring K gradients of the same length M.
        beta: EMA rate :math:`\beta`, in [0, 1) (0: no memory, the current log-loss
            gradients).
        beta_sigma: decay exponent :math:`\sigma \ge 0` of the rate.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import DBMTL
        >>> db = DBMTL(2, beta=0.0)
        >>> res = db.update(np.array([[3.0, 0.0], [0.0, 1.0]]), losses=[1.0, 2.0])
        >>> res.extras["alpha"]  # norms of g_i / L_i: 3 and 0.5
        array([1., 6.])
        >>> res.direction
        array([3., 3.])
    """

    needs_grads = True
    hyperparameters = {
        "beta": real(low=0.0, high=1.0, high_open=True),
        "beta_sigma": real(low=0.0),
    }
    fields = {"_buffer": array("KxM", optional=True), "_step": count()}

    def __init__(self, num_tasks: int, beta: float = 0.9, beta_sigma: float = 0.0) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.beta = check_real(beta, "beta", low=0.0, high=1.0, high_open=True)
        self.beta_sigma = check_real(beta_sigma, "beta_sigma", low=0.0)
        self.reset()

    def reset(self) -> None:
        """Smoothed gradients forgotten (M is free again), step 0."""
        self._buffer: np.ndarray | None = None
        self._step = 0

    @property
    def buffer(self) -> np.ndarray | None:
        r"""The K x M smoothed log-loss gradients :math:`\hat g` (a copy; None before
        the first step)."""
        return None if self._buffer is None else self._buffer.copy()

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def check_state(self, values: dict) -> None:
        buffer, step = values["_buffer"], values["_step"]
        if (buffer is None) != (step == 0):
            seen = "None" if buffer is None else "an array"
            raise ValueError(
                f"state['buffer'] is {seen} at step {step}: it is None exactly before the "
                f"first step (state['step'] == 0)"
            )

    def update(
        self, grads: object = None, *, gram: object = None, losses: object = None
    ) -> SolverResult:
        """One DB-MTL step on this step's K x M gradients and K losses.

        Args:
            grads: K x M task gradients (of the losses themselves, not of their logs),
                one per row (required).
            gram: their K x K Gram matrix, if already computed (checked against grads).
            losses: the K loss values (required, each > 0).

        Returns:
            SolverResult with ``weights`` None, ``direction`` in the dtype of ``grads``
            (float32 for float16), ``gram`` of the current gradients, and ``extras``:
            ``"alpha"`` (the scale of each smoothed gradient), ``"buffer_norms"``
            (:math:`\\|\\hat g_i\\|`) and ``"beta"`` (:math:`\\beta_t` used).
        """
        if grads is None:
            raise needs_grads_error("db-mtl", "it smooths each task's gradient vector")
        p = prepare_scaled(as_grads(grads), gram)
        J = p.grads
        check_gram_size(p.gram, self.num_tasks, "DBMTL")
        check_same_columns(self._buffer, J, "DBMTL")
        K = self.num_tasks
        if losses is None:
            raise ValueError(
                "losses are needed: DB-MTL follows the gradients of log L_i, g_i / L_i; "
                "pass losses=<K loss values, each > 0>"
            )
        L = as_real_task_vector(losses, "losses", K, need="> 0")
        if L.min() < 1e-300:  # only then can 1 / L overflow
            check_reciprocal(L, "losses", "DB-MTL divides each gradient by its loss")
        t = self._step + 1
        beta_t = self.beta * float(t) ** -self.beta_sigma
        with np.errstate(over="ignore", invalid="ignore"):
            logged = J / L[:, None]  # float64 (L is)
            if self._buffer is None:
                logged *= 1.0 - beta_t
                buffer = logged
            else:  # logged + beta_t (buffer - logged), one new array
                buffer = np.subtract(self._buffer, logged)
                buffer *= beta_t
                buffer += logged
        norms = row_norms(buffer)  # not finite exactly where a row is not
        if not np.isfinite(norms).all():
            i = int(np.flatnonzero(~np.isfinite(norms))[0])
            raise ValueError(
                f"grads[{i}] / losses[{i}] (task {i}) overflows float64 ({L[i]!r} is too "
                f"small a loss for this gradient); scale the losses up"
            )
        alpha, d = _max_norm_sum(buffer, norms)
        if not np.isfinite(d).all():
            raise ValueError(
                "the direction overflows float64: the smoothed log-loss gradients are too "
                "long (norms near 1e308); scale the losses up"
            )
        self._buffer, self._step = buffer, t  # nothing failed
        G, exponent = unscaled_gram(p.gram, p.exponent)
        return SolverResult(
            weights=None,
            direction=d.astype(direction_dtype(J), copy=False),
            gram=G,
            method="db-mtl",
            extras={"alpha": alpha, "buffer_norms": norms, "beta": beta_t},
            gram_exponent=exponent,
        )

    __call__ = update
