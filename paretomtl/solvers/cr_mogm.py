"""CR-MOGM: MGDA's weights smoothed by a moving average across steps."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_gram_size, check_num_tasks, check_real
from paretomtl.solvers import _simplex
from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.state import Stateful, array, count, real, value


def _check_initial(x: object, K: int, where: str) -> np.ndarray | None:
    if x is None:
        return None
    return as_real_task_vector(x, where, K)


@register(
    "cr-mogm",
    kind="stateful-gradient",
    paper=(
        "Zhou et al., On the Convergence of Stochastic "
        "Multi-Objective Gradient Manipulation and Beyond, NeurIPS 2022"
    ),
    summary="correlation-reduced MGDA: an exponential moving average of the MGDA weights",
)
class CRMOGM(Stateful):
    r"""CR-MOGM (correlation-reduced multi-objective gradient manipulation) on MGDA.

    With stochastic gradients, the MGDA weights :math:`\hat\lambda_k` of a step are
    correlated with that step's noise, which biases the update (Zhou et al., "On the
    Convergence of Stochastic Multi-Objective Gradient Manipulation and Beyond",
    NeurIPS 2022). CR-MOGM averages the weights over steps,

    .. math::

        \hat\lambda_k = \arg\min_{\lambda \in \Delta} \lambda^\top G_k \lambda, \qquad
        \lambda_k = \alpha\, \lambda_{k-1} + (1 - \alpha)\, \hat\lambda_k,

    and the update is :math:`d_k = \sum_i \lambda_{k,i}\, g_i`. :math:`\hat\lambda_k` is
    MGDA's exact minimiser (:func:`~paretomtl.solvers.mgda`, Wolfe's active-set
    method on G; its iterations, convergence and KKT residual are reported). With
    ``initial_weights=None`` the average starts at the first step's MGDA weights
    (:math:`\lambda_0 = \hat\lambda_1`, so :math:`\lambda_1 = \hat\lambda_1` for any
    :math:`\alpha`); otherwise at ``initial_weights``. A convex combination of points
    of the simplex stays on it. The weights are invariant to a common positive scale
    of the gradients (any scale works: the Gram matrix is rescaled by a power of two
    where float64 could not hold it).

    Conventions: :math:`\alpha` weighs the *previous* average, as in TorchJD's
    ``CRMOGMWeighting`` (default 0.9 there and here); :math:`\alpha = 0` is plain
    MGDA and :math:`\alpha = 1` freezes the weights. The paper's corollary lets the
    rate vary with the learning rate (the average forgetting more slowly as the
    learning rate decays); set the attribute ``alpha`` between updates for such a
    schedule (it is checked to lie in [0, 1]). TorchJD wraps any weighting;
    here the wrapped method is MGDA, the paper's main instance (its TorchJD
    counterpart ``MGDAWeighting`` is an iterative solver with a 1e-3 tolerance, so
    the averaged weights differ from this class's by that solver's error).

    Args:
        num_tasks: K >= 1; every update must bring K gradients.
        alpha: weight of the previous average, in [0, 1].
        initial_weights: :math:`\lambda_0` (K finite numbers), or None (see above).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import CRMOGM
        >>> cr = CRMOGM(2, alpha=0.5)
        >>> cr.update(gram=np.diag([1.0, 4.0])).weights  # MGDA: (4, 1) / 5
        array([0.8, 0.2])
        >>> cr.update(gram=np.diag([4.0, 1.0])).weights  # (0.8 + 0.2) / 2, (0.2 + 0.8) / 2
        array([0.5, 0.5])
    """

    hyperparameters = {
        "alpha": real(low=0.0, high=1.0),
        "initial_weights": value(_check_initial),
    }
    fields = {
        "_lambda": array("K", optional=True),
        "_step": count(),
    }

    def __init__(self, num_tasks: int, alpha: float = 0.9, initial_weights: object = None) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self._alpha = check_real(alpha, "alpha", low=0.0, high=1.0)
        self.initial_weights = _check_initial(initial_weights, self.num_tasks, "initial_weights")
        self.reset()

    @property
    def alpha(self) -> float:
        """Weight of the previous average, in [0, 1]; may be changed between updates."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._alpha = check_real(value, "alpha", low=0.0, high=1.0)

    def reset(self) -> None:
        """Average back to ``initial_weights`` (or to the next step's MGDA weights)."""
        init = self.initial_weights
        self._lambda = None if init is None else init.copy()
        self._step = 0

    @property
    def weights(self) -> np.ndarray | None:
        r"""The current average :math:`\lambda_k` (a copy), None before the first step
        when there are no ``initial_weights``."""
        return None if self._lambda is None else self._lambda.copy()

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def check_state(self, values: dict) -> None:
        lam, step, init = values["_lambda"], values["_step"], values["initial_weights"]
        if lam is None and (step > 0 or init is not None):
            raise ValueError(
                f"state['lambda'] is None (no average yet), which only a fresh object "
                f"without initial_weights has; got step {step} and initial_weights {init}"
            )

    def update(self, grads: object = None, *, gram: object = None) -> SolverResult:
        """One CR-MOGM step on K x M gradients and/or their K x K Gram matrix.

        Returns:
            SolverResult with ``weights`` (:math:`\\lambda_k`), ``direction`` (when
            ``grads`` was given), MGDA's ``iterations``, ``converged`` and
            ``kkt_residual`` (for :math:`\\hat\\lambda_k`), ``objective``
            (:math:`\\lambda_k^\\top G \\lambda_k`) and ``extras["mgda_weights"]``
            (:math:`\\hat\\lambda_k`).
        """
        p = prepare_scaled(grads, gram)  # any scale: the Gram of 2**e * grads
        check_gram_size(p.gram, self.num_tasks, "CRMOGM")
        sol = _simplex.solve(p.gram, None, "exact")
        hat = sol.weights
        prev = hat if self._lambda is None else self._lambda
        lam = self._alpha * prev + (1.0 - self._alpha) * hat
        self._lambda = lam
        self._step += 1
        G, exponent = unscaled_gram(p.gram, p.exponent)
        return SolverResult(
            weights=lam.copy(),
            direction=combine(lam, p.grads),
            gram=G,
            method="cr-mogm",
            iterations=sol.iterations,
            converged=sol.converged,
            objective=float(lam @ G @ lam),
            kkt_residual=sol.kkt_residual,
            extras={"mgda_weights": hat.copy()},
            gram_exponent=exponent,
        )

    __call__ = update
