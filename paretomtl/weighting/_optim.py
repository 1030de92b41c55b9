"""The plain-numpy optimiser steps that stateful methods take on their own parameters."""

from __future__ import annotations

import numpy as np

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
# Adam's gradients are clipped to +-2**500 before they enter its moments: the square
# of a larger one would overflow the second moment to inf (and freeze the step at 0).
# The moments then stay within these bounds (one ulp of rounding to spare), which a
# loaded state must respect too.
ADAM_GRAD_BOUND = 2.0**500
ADAM_MOMENT_BOUNDS = (2.0**501, 2.0**1001)


def check_moments(values: dict) -> None:
    """A loaded state's Adam moments must be 0 before the first update (there Adam's
    bias correction, 1 / (1 - beta^t), would amplify them) and with optimizer 'sgd';
    ``values`` holds ``_step``, ``_adam_m``, ``_adam_v`` and ``optimizer``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.weighting._optim import check_moments
        >>> ok = {"_step": 3, "_adam_m": np.ones(2), "_adam_v": np.ones(2), "optimizer": "adam"}
        >>> check_moments(ok)
        >>> check_moments({**ok, "_step": 0})
        Traceback (most recent call last):
        ...
        ValueError: state['adam_m'] and state['adam_v'] must be 0 before the first update and with optimizer 'sgd'; got [1. 1.] and [1. 1.]
    """  # noqa: E501
    m, v = values["_adam_m"], values["_adam_v"]
    if (values["_step"] == 0 or values["optimizer"] == "sgd") and (m.any() or v.any()):
        raise ValueError(
            "state['adam_m'] and state['adam_v'] must be 0 before the first update and "
            f"with optimizer 'sgd'; got {m} and {v}"
        )


def descent_step(
    optimizer: str, grad: np.ndarray, lr: float, m: np.ndarray, v: np.ndarray, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The update to subtract, and Adam's new moments, for step number ``step`` (>= 1).

    ``"sgd"``: ``lr * grad`` (moments unchanged; it may overflow to +-inf, which the
    caller handles). ``"adam"``: Adam (Kingma & Ba, ICLR 2015) with beta = (0.9,
    0.999), eps = 1e-8 and bias correction, ``lr * m_hat / (sqrt(v_hat) + eps)``, on
    the gradient clipped to ``+-2**500`` (about 3e150; +-inf included). Adam's step
    does not depend on the scale of the gradients (but for eps), so the clip only
    matters when gradients beyond 3e150 meet much smaller ones in the moments' memory;
    without it their squares overflow. The Adam update is finite unless ``lr`` times
    the step's ratio overflows (then +-inf).

    Example:
        >>> import numpy as np
        >>> zeros = np.zeros(2)
        >>> delta, m, v = descent_step("adam", np.array([-1.0, 3.0]), 0.1, zeros, zeros, 1)
        >>> delta.round(6)
        array([-0.1,  0.1])
    """
    if optimizer == "sgd":
        with np.errstate(over="ignore"):
            return lr * grad, m, v
    b1, b2 = ADAM_BETAS
    grad = np.clip(grad, -ADAM_GRAD_BOUND, ADAM_GRAD_BOUND)
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad * grad
    m_hat = m / (1 - b1**step)
    v_hat = v / (1 - b2**step)
    denominator = np.sqrt(v_hat) + ADAM_EPS
    with np.errstate(over="ignore"):
        delta = lr * m_hat / denominator
        if not np.isfinite(delta).all():  # lr * m_hat overflowed: divide first
            delta = np.where(np.isfinite(delta), delta, lr * (m_hat / denominator))
    return delta, m, v
