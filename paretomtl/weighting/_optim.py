"""The plain-numpy optimiser steps that stateful methods take on their own parameters."""

from __future__ import annotations

import numpy as np

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def descent_step(
    optimizer: str, grad: np.ndarray, lr: float, m: np.ndarray, v: np.ndarray, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The update to subtract, and Adam's new moments, for step number ``step`` (>= 1).

    ``"sgd"``: ``lr * grad`` (moments unchanged). ``"adam"``: Adam (Kingma & Ba, ICLR
    2015) with beta = (0.9, 0.999), eps = 1e-8 and bias correction,
    ``lr * m_hat / (sqrt(v_hat) + eps)``.

    Example:
        >>> import numpy as np
        >>> zeros = np.zeros(2)
        >>> delta, m, v = descent_step("adam", np.array([-1.0, 3.0]), 0.1, zeros, zeros, 1)
        >>> delta.round(6)
        array([-0.1,  0.1])
    """
    if optimizer == "sgd":
        return lr * grad, m, v
    b1, b2 = ADAM_BETAS
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad * grad
    m_hat = m / (1 - b1**step)
    v_hat = v / (1 - b2**step)
    return lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS), m, v
