"""COSMOS: the preference-weighted loss minus lambda times cos(preference, losses)."""

from __future__ import annotations

import math

import numpy as np

from paretomtl._checks import as_real_task_vector, check_real
from paretomtl.state import array, real
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import register

# torch.nn.functional.cosine_similarity's default floor on each norm (the authors' code
# and torchjd's COSMOS scalariser call it with that default).
COSINE_EPS = 1e-8


def check_preference(x: object, K: int, name: str = "preference") -> np.ndarray:
    """K finite entries >= 0, at least one > 0 (a scalar stands for K equal entries)."""
    p = as_real_task_vector(x, name, K, need=">= 0", broadcast=True)
    if not (p > 0.0).any():
        raise ValueError(f"{name}[:] is all 0 ({p}); at least one entry must be > 0")
    return p


def unit_and_norm(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    r"""``(x / |x|, m, q)`` with :math:`|x| = m q`, m = max |x_i| and q in [1, sqrt(K)]:
    no overflow or underflow of the squares for any finite x; ``(0, 0, 0)`` for x = 0."""
    m = float(np.abs(x).max())
    if m == 0.0:
        return np.zeros_like(x), 0.0, 0.0
    y = x / m
    q = math.sqrt(float(y @ y))
    return y / q, m, q


@register(
    "cosmos",
    kind="loss",
    paper=(
        "Ruchte & Grabocka, Scalable Pareto Front Approximation for Deep Multi-Objective "
        "Learning, ICDM 2021"
    ),
    summary="gradient of r . L - lambda cos(r, L): w = r - lambda d cos(r, L) / dL",
)
class COSMOS(LossWeighting):
    r"""COSMOS's scalarised loss as a loss weighting (weights of either sign).

    Paper: Michael Ruchte & Josif Grabocka, "Scalable Pareto Front Approximation for
    Deep Multi-Objective Learning", IEEE ICDM 2021.

    COSMOS trains one network, conditioned on a preference :math:`r` (on the simplex),
    on the linear scalarisation penalised by the cosine between the loss vector and
    the preference:

    .. math::

        F(L) = \sum_i r_i L_i - \lambda \cos(r, L), \qquad
        \cos(r, L) = \frac{r^\top L}{\max(\lVert r\rVert, \epsilon)\,
                                     \max(\lVert L\rVert, \epsilon)} ,

    with :math:`\epsilon` the floor of ``torch.nn.functional.cosine_similarity``,
    which the authors' code (and ``torchjd.scalarization.COSMOS``) computes the cosine
    with. The loss weights are the gradient of F with respect to the losses,

    .. math::

        w = r - \frac{\lambda}{n} \Big(u - (u^\top \hat L)\,\frac{\lVert L\rVert}{n}\,
            \hat L\Big), \qquad
        u = \frac{r}{\max(\lVert r\rVert, \epsilon)},\quad
        \hat L = \frac{L}{\lVert L\rVert},\quad n = \max(\lVert L\rVert, \epsilon).

    Where :math:`\lVert L\rVert > \epsilon` this is the exact gradient,
    :math:`r - \lambda (\hat r - \cos\,\hat L) / \lVert L\rVert`: the penalty pulls
    the losses toward the ray of r, so a weight is negative where lowering that loss
    would turn L away from the ray (the method's weights have either sign). Where
    :math:`\lVert L\rVert \le \epsilon` it is what torch's autograd returns for the
    floored cosine (the floor is applied without a gradient, so the norm keeps its
    own): the trainer's gradient with the authors' code; at L = 0 it is
    :math:`r - \lambda u / \epsilon`. It is continuous in L.

    The network's conditioning on r is the user's part: to approximate the whole
    front as the paper does, draw r from a Dirichlet distribution before every
    forward pass (the authors use concentration 1.2 on Multi-MNIST), feed it to the
    network and pass it to :meth:`set_preference`, e.g.
    ``cosmos.set_preference(rng.dirichlet([1.2] * K))``.

    Defaults: ``lambda_ = 2`` (the authors' code's default, used on Multi-MNIST and
    Multi-Fashion; the paper uses 0.01 on the fairness data sets, 8 on
    Multi-Fashion+MNIST, 3 on CelebA; torchjd has no default), ``preference`` 1/K
    each (the centre of the simplex; torchjd has no default), ``eps = 1e-8`` (torch's).
    A preference :math:`c\,r` changes the linear part by c and leaves the cosine as it
    is (unless :math:`\lVert r\rVert \le \epsilon`).

    Computed without overflow or underflow of the norms for any finite losses and
    options; a weight beyond float64's range (a huge :math:`\lambda` over a tiny
    :math:`\lVert L\rVert`) raises a ValueError naming the task. The losses may have
    any sign (as in torchjd; the paper's are >= 0).

    Args:
        num_tasks: K >= 1.
        lambda_: the penalty :math:`\lambda \ge 0` (default 2.0); 0 gives w = r.
        preference: :math:`r`, a scalar or K values >= 0, not all 0 (default 1/K).
        eps: the floor :math:`\epsilon > 0` on both norms (default 1e-8).

    Example:
        >>> from paretomtl.weighting import COSMOS
        >>> cosmos = COSMOS(2, lambda_=2.0)  # r = (1/2, 1/2)
        >>> cosmos.update([1.0, 1.0])  # L on the ray of r: the cosine is at its maximum
        array([0.5, 0.5])
        >>> cosmos.update([0.0, 1.0]).round(6)  # r - 2 (r_hat - cos L_hat) / |L|
        array([-0.914214,  0.5     ])
    """

    hyperparameters = {
        "lambda_": real(low=0.0),
        "preference": array("K", ">= 0"),
        "eps": real(low=0.0, low_open=True),
    }
    fields = {"_weights": array("K", optional=True)}
    weight_domain = "finite"  # the weights have either sign

    def __init__(
        self,
        num_tasks: int,
        lambda_: float = 2.0,
        preference: float | object | None = None,
        *,
        eps: float = COSINE_EPS,
    ) -> None:
        super().__init__(num_tasks)
        K = self.num_tasks
        self.lambda_ = check_real(lambda_, "lambda_", low=0.0)
        self.preference = check_preference(1.0 / K if preference is None else preference, K)
        self.eps = check_real(eps, "eps", low=0.0, low_open=True)

    def set_preference(self, preference: object) -> None:
        """Use ``preference`` (K values >= 0, not all 0, or a scalar) from the next update."""
        self.preference = check_preference(preference, self.num_tasks)

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        r, lam, eps = self.preference, self.lambda_, self.eps
        if lam == 0.0:
            return r.copy()
        r_hat, mr, qr = unit_and_norm(r)
        with np.errstate(over="ignore"):
            u = r_hat if mr * qr > eps else r / eps  # r / max(|r|, eps)
        L_hat, mL, qL = unit_and_norm(losses)
        with np.errstate(over="ignore"):
            norm = mL * qL  # inf where |L| overflows: then it is > eps
        if norm > eps:
            v = u - (u @ L_hat) * L_hat
            m, q = mL, qL  # n = |L| = m q
        else:
            v = u - (u @ L_hat) * (norm / eps) * L_hat
            m, q = eps, 1.0  # n = eps
        # lambda v / n as (lm / (nm q)) v 2^(a - b): no intermediate over- or underflow.
        lm, a = math.frexp(lam)
        nm, b = math.frexp(m)
        with np.errstate(over="ignore", under="ignore"):
            w = r - np.ldexp(v * (lm / (nm * q)), a - b)
        if not np.isfinite(w).all():
            i = int(np.flatnonzero(~np.isfinite(w))[0])
            raise ValueError(
                f"losses[{i}] (task {i}) is {float(losses[i])!r}; its COSMOS weight "
                f"r - lambda d cos / dL overflows float64 (lambda_ = {lam!r}, "
                f"|L| = {norm!r}, eps = {eps!r})"
            )
        return w

    def check_state(self, values: dict) -> None:
        p = values["preference"]
        if not (p > 0.0).any():
            raise ValueError(
                f"state['hyperparameters']['preference'] must have an entry > 0; got {p}"
            )
