"""MoCo: stochastic multi-objective gradient correction with tracked task gradients."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import (
    as_real_task_vector,
    check_choice,
    check_gram_size,
    check_num_tasks,
    check_real,
)
from paretomtl._kernels.moco import lambda_step
from paretomtl.solvers._input import as_grads, prepare_scaled, unscaled_gram
from paretomtl.solvers._kxm import check_same_columns, direction_dtype, needs_grads_error
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.state import Stateful, array, choice, count, real

_LAMBDA_UPDATES = ("projection", "softmax")
_NORMALIZATIONS = ("none", "loss")
# Rows whose squared norm leaves this range are measured again after an exact rescaling.
_NORM_LOW, _NORM_HIGH = 2.0**-900, 2.0**900
# How far the simplex weights of a loaded state may sum from 1 (rounding of a projection).
_SIMPLEX_ATOL = 1e-9


def row_norms(rows: np.ndarray) -> np.ndarray:
    """Euclidean norm of every row of a 2-D float64 array, at any scale.

    One BLAS pass; a nonzero row whose squared norm under- or overflows (norms below
    about 1e-135 or above about 1e135) is measured again after multiplying it by the
    power of two that brings its largest entry to [0.5, 1) (exact).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.moco import row_norms
        >>> row_norms(np.array([[3e-200, 4e-200], [0.0, 0.0], [3e200, 4e200]]))
        array([5.e-200, 0.e+000, 5.e+200])
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        squares = np.einsum("ij,ij->i", rows, rows)
    norms = np.sqrt(squares)
    listed = squares.tolist()  # K floats: cheaper than numpy reductions for small K
    if min(listed) >= _NORM_LOW and max(listed) <= _NORM_HIGH:  # (a NaN row: NaN either way)
        return norms
    odd = ~((squares >= _NORM_LOW) & (squares <= _NORM_HIGH))  # zero rows checked too
    for i in np.flatnonzero(odd):
        top = float(np.max(np.abs(rows[i])))
        if top == 0.0:
            norms[i] = 0.0
            continue
        e = -int(np.frexp(top)[1])
        scaled = np.ldexp(rows[i], e)
        norms[i] = np.ldexp(np.sqrt(float(scaled @ scaled)), -e)
    return norms


def _simplex_map(v: object, project: bool, name: str) -> np.ndarray:
    x = np.ascontiguousarray(v, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"{name} needs a non-empty 1-D vector; got shape {x.shape}")
    out = np.empty(x.shape[0])
    if not lambda_step(np.zeros((x.shape[0], x.shape[0])), x, 0.0, 0.0, project, out):
        raise ValueError(f"{name} needs finite entries; got {x}")
    return out


def project_to_simplex(v: object) -> np.ndarray:
    r"""Euclidean projection of a finite vector onto the probability simplex.

    .. math::

        \Pi_\Delta(v) = \arg\min_{\lambda \ge 0,\ \sum_i \lambda_i = 1} \|\lambda - v\|,
        \qquad \Pi_\Delta(v)_i = \max(v_i - \theta, 0),

    with the threshold :math:`\theta` found by sorting (Held, Wolfe & Crowder, 1974;
    Duchi et al., ICML 2008). ``v`` is first shifted by its largest entry (the
    projection is invariant to a common shift), so entries far above 1 in magnitude
    keep the differences that decide the answer (the threshold lies in
    :math:`[\max_i v_i - 1, \max_i v_i)`); the entries sum to 1 up to the rounding of
    the sorted partial sums, about one ulp per entry. It is the compiled kernel of
    MoCo's update, given no step to take.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.moco import project_to_simplex
        >>> project_to_simplex(np.array([0.5, 0.2, -1.0]))
        array([0.65, 0.35, 0.  ])
        >>> project_to_simplex(np.array([1e60, 1e60 - 1e45, 0.0]))
        array([1., 0., 0.])
    """
    return _simplex_map(v, True, "project_to_simplex")


def softmax(v: object) -> np.ndarray:
    r"""The softmax :math:`e^{v_i} / \sum_j e^{v_j}` of a finite vector, shifted by its
    largest entry so that no exponential overflows (the kernel MoCo's update uses).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.moco import softmax
        >>> softmax(np.array([0.0, np.log(3.0)]))
        array([0.25, 0.75])
    """
    return _simplex_map(v, False, "softmax")


@register(
    "moco",
    kind="stateful-gradient",
    paper=(
        "Fernando, Shen, Liu, Chaudhury, Murugesan & Chen, Mitigating Gradient Bias in "
        "Multi-objective Learning: A Provably Convergent Approach, ICLR 2023"
    ),
    summary="track each task's gradient by an EMA; one projected step on the MGDA weights",
)
class MoCo(Stateful):
    r"""MoCo: stochastic multi-objective gradient correction (tracked gradients, K x M).

    Each task's stochastic gradient :math:`g_{t,i}` is tracked by a running estimate
    :math:`y_{t,i}` (the rows of the K x M matrix :math:`Y_t`), and the MGDA weights
    :math:`\lambda` by one projected gradient step per iteration on the regularised
    min-norm problem :math:`\min_{\lambda\in\Delta} \tfrac12 \lambda^\top (Y Y^\top +
    \rho I) \lambda`. At step :math:`t = 1, 2, \ldots`:

    .. math::

        \beta_t &= \beta\, t^{-\sigma_\beta}, \qquad \gamma_t = \gamma\, t^{-\sigma_\gamma},

        Y_t &= Y_{t-1} - \beta_t\,(Y_{t-1} - G_t) \qquad (Y_0 = 0),

        \lambda_t &= \Pi_\Delta\!\big(\lambda_{t-1} - \gamma_t\,(Y_t Y_t^\top + \rho I)
            \,\lambda_{t-1}\big) \qquad (\lambda_0 = \tfrac1K \mathbf 1),

        d_t &= Y_t^\top \lambda_t,

    where :math:`G_t` is the K x M matrix of this step's gradients and :math:`\Pi_\Delta`
    the Euclidean projection onto the simplex. The direction is a combination of the
    tracked gradients, not of the current ones: ``weights`` is None, and
    :math:`\lambda_t` is ``extras["lambda"]``. The tracking removes the bias that a
    min-norm combination of noisy gradients has (Fernando et al., ICLR 2023: Algorithm
    1, convergence without growing batches). The K x M matrix :math:`Y` is the state,
    held in float64 (twice the memory of a float32 Jacobian).

    What the sources do, and what is done here:

    - :math:`\lambda` update. The paper's Algorithm 1 projects onto the simplex
      (``lambda_update="projection"``, the default). LibMTL's ``MoCo``
      (``LibMTL/weighting/MoCo.py``) and the authors' NYUv2/Cityscapes code
      (heshandevaka/MoCo, ``CAGrad/utils.py``) take the softmax of the same step
      instead (``lambda_update="softmax"``): a point inside the simplex, never on
      its boundary, and not the projection. The authors' Office-31 code (same
      repository, ``LibMTL/build/lib/LibMTL/weighting/Tracking.py``) projects, with
      the step :math:`2\gamma\, Y Y^\top \lambda` (the gradient of
      :math:`\lambda^\top Y Y^\top \lambda`): its :math:`\gamma` is half the one here.
    - Normalisation. LibMTL and the authors' NYUv2/Cityscapes code (option
      ``raw_loss``) replace each gradient by :math:`L_i\, g_i / (\|g_i\| + 10^{-8})`
      before tracking it: every task's gradient gets its loss as its length.
      ``normalization="loss"`` does this (without the :math:`10^{-8}`: a zero gradient
      stays zero, and gradients far from unit norm keep their exact direction; the
      two agree to about :math:`10^{-8} / \|g_i\|` relative); it needs ``losses`` (>= 0).
      The default ``"none"`` is Algorithm 1 on the gradients as they are.
    - Step sizes. The defaults are LibMTL's: :math:`\beta = 0.5`,
      :math:`\sigma_\beta = 0.5`, :math:`\gamma = 0.1`, :math:`\sigma_\gamma = 0.5`,
      :math:`\rho = 0`, decayed per step as above (:math:`\beta_1 = \beta`). The
      paper's theorems use step sizes set from the horizon T; the authors' NYUv2 code
      decays by the epoch index instead of the step. TorchJD has no MoCo.
    - Without normalisation :math:`\gamma_t Y Y^\top` carries the gradients' squared
      scale: large gradients drive :math:`\lambda` to a vertex in one step, tiny ones
      leave it where it is. The method is not invariant to a common scale of the
      gradients (neither is the paper's).

    Args:
        num_tasks: K >= 1; every update must bring K gradients of the same length M.
        beta: tracking rate :math:`\beta`, in (0, 1].
        beta_sigma: decay exponent :math:`\sigma_\beta \ge 0` of the tracking rate.
        gamma: step size :math:`\gamma \ge 0` of the :math:`\lambda` update (0 keeps
            :math:`\lambda` at its start: the mean of the tracked gradients).
        gamma_sigma: decay exponent :math:`\sigma_\gamma \ge 0` of the step size.
        rho: regularisation :math:`\rho \ge 0` of the :math:`\lambda` problem.
        lambda_update: ``"projection"`` (the paper) or ``"softmax"`` (LibMTL).
        normalization: ``"none"`` (the paper's algorithm) or ``"loss"`` (LibMTL).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import MoCo
        >>> moco = MoCo(2, gamma=0.5)
        >>> res = moco.update(np.array([[1.0, 0.0], [0.0, 2.0]]))
        >>> moco.tracked  # half way from 0 to the gradients (beta_1 = 0.5)
        array([[0.5, 0. ],
               [0. , 1. ]])
        >>> res.extras["lambda"]  # 1/2 - 0.5 * (Y Y^T) (1/2, 1/2), projected
        array([0.59375, 0.40625])
        >>> res.direction, res.weights is None
        (array([0.296875, 0.40625 ]), True)
    """

    needs_grads = True
    hyperparameters = {
        "beta": real(low=0.0, high=1.0, low_open=True),
        "beta_sigma": real(low=0.0),
        "gamma": real(low=0.0),
        "gamma_sigma": real(low=0.0),
        "rho": real(low=0.0),
        "lambda_update": choice(*_LAMBDA_UPDATES),
        "normalization": choice(*_NORMALIZATIONS),
    }
    fields = {
        "_tracked": array("KxM", optional=True),
        "_lambda": array("K", ">= 0", high=1.0),
        "_step": count(),
    }

    def __init__(
        self,
        num_tasks: int,
        beta: float = 0.5,
        beta_sigma: float = 0.5,
        gamma: float = 0.1,
        gamma_sigma: float = 0.5,
        rho: float = 0.0,
        lambda_update: str = "projection",
        normalization: str = "none",
    ) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.beta = check_real(beta, "beta", low=0.0, high=1.0, low_open=True)
        self.beta_sigma = check_real(beta_sigma, "beta_sigma", low=0.0)
        self.gamma = check_real(gamma, "gamma", low=0.0)
        self.gamma_sigma = check_real(gamma_sigma, "gamma_sigma", low=0.0)
        self.rho = check_real(rho, "rho", low=0.0)
        self.lambda_update = check_choice(lambda_update, "lambda_update", _LAMBDA_UPDATES)
        self.normalization = check_choice(normalization, "normalization", _NORMALIZATIONS)
        self.reset()

    def reset(self) -> None:
        """Tracked gradients forgotten (M is free again), lambda back to 1/K, step 0."""
        self._tracked: np.ndarray | None = None
        self._lambda = np.full(self.num_tasks, 1.0 / self.num_tasks)
        self._step = 0

    @property
    def tracked(self) -> np.ndarray | None:
        """The K x M tracked gradients :math:`Y` (a copy; None before the first step)."""
        return None if self._tracked is None else self._tracked.copy()

    @property
    def lambda_(self) -> np.ndarray:
        r"""The weights :math:`\lambda` on the tracked gradients (a copy)."""
        return self._lambda.copy()

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def check_state(self, values: dict) -> None:
        tracked, lam, step = values["_tracked"], values["_lambda"], values["_step"]
        if (tracked is None) != (step == 0):
            seen = "None" if tracked is None else "an array"
            raise ValueError(
                f"state['tracked'] is {seen} at step {step}: it is None exactly before the "
                f"first step (state['step'] == 0)"
            )
        total = float(lam.sum())
        if abs(total - 1.0) > _SIMPLEX_ATOL * self.num_tasks:
            raise ValueError(
                f"state['lambda'] must lie on the simplex (entries >= 0 summing to 1); "
                f"its entries sum to {total!r}"
            )

    def update(
        self, grads: object = None, *, gram: object = None, losses: object = None
    ) -> SolverResult:
        """One MoCo step on this step's K x M gradients (``gram`` optional, checked).

        Args:
            grads: K x M task gradients, one per row (required).
            gram: their K x K Gram matrix, if already computed (checked against grads).
            losses: the K loss values; read (and required, >= 0) with
                ``normalization="loss"``, else ignored.

        Returns:
            SolverResult with ``weights`` None, ``direction`` :math:`Y^\\top\\lambda` in
            the dtype of ``grads`` (float32 for float16), ``gram`` of the current
            gradients, and ``extras``: ``"lambda"``, ``"tracked_gram"``
            (:math:`Y Y^\\top`), ``"beta"`` and ``"gamma"`` (:math:`\\beta_t`,
            :math:`\\gamma_t` used).
        """
        if grads is None:
            raise needs_grads_error("moco", "it tracks each task's gradient vector")
        p = prepare_scaled(as_grads(grads), gram)
        J = p.grads
        check_gram_size(p.gram, self.num_tasks, "MoCo")
        check_same_columns(self._tracked, J, "MoCo")
        K = self.num_tasks
        current = J.astype(np.float64, copy=self.normalization == "loss")
        if self.normalization == "loss":
            if losses is None:
                raise ValueError(
                    "losses are needed with normalization='loss' (each gradient is scaled "
                    "to its loss's length); pass losses=<K loss values>"
                )
            L = as_real_task_vector(losses, "losses", K, need=">= 0")
            norms = row_norms(current)
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                scale = L / norms
            if not np.isfinite(scale).all():  # zero rows, or L / ||g|| overflows
                for i in np.flatnonzero(~np.isfinite(scale)):
                    if norms[i] > 0:  # divide first, then multiply
                        current[i] = (current[i] / norms[i]) * L[i]
                    scale[i] = 1.0  # (a zero row stays zero)
            current *= scale[:, None]
        elif losses is not None:
            as_real_task_vector(losses, "losses", K)  # not read, but still K numbers
        t = self._step + 1
        beta_t = self.beta * float(t) ** -self.beta_sigma
        gamma_t = self.gamma * float(t) ** -self.gamma_sigma
        with np.errstate(over="ignore", invalid="ignore"):
            if self._tracked is None:
                tracked = beta_t * current
            else:  # Y + beta_t (C - Y), one new array
                tracked = np.subtract(current, self._tracked)
                tracked *= beta_t
                tracked += self._tracked
            YY = tracked @ tracked.T  # not finite if any entry of Y is not
        lam = np.empty(K)
        project = self.lambda_update == "projection"
        if not lambda_step(YY, self._lambda, gamma_t, self.rho, project, lam):
            raise ValueError(
                "grads (or losses) are too large for MoCo: the tracked gradients' Gram "
                "matrix Y Y^T overflows float64 (norms above about 1e154); divide the "
                "losses by a common factor first"
            )
        direction = (lam @ tracked).astype(direction_dtype(J), copy=False)
        self._tracked, self._lambda, self._step = tracked, lam, t  # nothing failed
        G, exponent = unscaled_gram(p.gram, p.exponent)
        return SolverResult(
            weights=None,
            direction=direction,
            gram=G,
            method="moco",
            extras={
                "lambda": lam.copy(),
                "tracked_gram": YY,
                "beta": beta_t,
                "gamma": gamma_t,
            },
            gram_exponent=exponent,
        )

    __call__ = update
