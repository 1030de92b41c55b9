"""Prior-loss normalisation: divide each loss by the loss of the best data-blind guess."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_reciprocal
from paretomtl.state import array, value
from paretomtl.weighting._base import SU_2022, LossWeighting
from paretomtl.weighting._registry import register


def prior_loss_classification(
    labels: object = None,
    *,
    class_frequencies: object = None,
    num_classes: int | None = None,
) -> float:
    r"""Cross-entropy of the prior guess: the entropy of the class frequencies (nats).

    A classifier that ignores its input does best by predicting the class
    frequencies :math:`p`; its cross-entropy is

    .. math::

        L^{(\mathrm{prior})} = -\textstyle\sum_c p_c \log p_c

    (natural log; :math:`0 \log 0 = 0`), which is :math:`\log C` for C balanced
    classes (Su, "Multi-task learning: loss normalisation", kexue.fm, 2022).

    Give exactly one of: ``labels`` (1-D integer class indices, or any 1-D labels
    :func:`numpy.unique` can count), ``class_frequencies`` (C non-negative counts or
    frequencies; normalised here), or ``num_classes`` alone (balanced classes, so
    :math:`\log C`). ``num_classes`` with ``labels`` checks that the labels are
    integers in ``[0, num_classes)``; with ``class_frequencies`` it checks their
    length. For one-hot or soft labels (N, C) pass ``class_frequencies=labels.mean(0)``.

    Example:
        >>> from paretomtl.weighting import prior_loss_classification
        >>> round(prior_loss_classification(num_classes=10), 6)  # log 10
        2.302585
        >>> round(prior_loss_classification([0, 0, 0, 1]), 6)  # -(3/4 log 3/4 + 1/4 log 1/4)
        0.562335
    """
    if num_classes is not None and (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    if labels is not None and class_frequencies is not None:
        raise ValueError("pass labels or class_frequencies, not both")
    if labels is not None:
        y = np.asarray(labels)
        if y.ndim != 1 or y.size == 0:
            raise ValueError(
                f"labels must be a non-empty 1-D array of class indices; got shape {y.shape} "
                "(for one-hot or soft labels pass class_frequencies=labels.mean(0))"
            )
        if num_classes is not None:
            if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_classes:
                raise ValueError(
                    f"labels must be integers in [0, {num_classes}) when num_classes is given"
                )
        _, counts = np.unique(y, return_counts=True)
        p = counts / y.size
    elif class_frequencies is not None:
        f = np.array(class_frequencies, dtype=np.float64)
        if f.ndim != 1 or f.size == 0:
            raise ValueError(f"class_frequencies must be a non-empty 1-D array; got {f.shape}")
        bad = ~np.isfinite(f) | (f < 0)
        if bad.any():
            c = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"class_frequencies[{c}] (class {c}) is {float(f[c])!r}; "
                "each must be finite and >= 0"
            )
        if f.sum() <= 0:
            raise ValueError("class_frequencies sum to 0; at least one class must occur")
        if num_classes is not None and f.size != num_classes:
            raise ValueError(
                f"class_frequencies has {f.size} entries but num_classes is {num_classes}"
            )
        p = f[f > 0] / f.sum()
    elif num_classes is not None:
        return float(np.log(num_classes))
    else:
        raise ValueError("pass labels, class_frequencies or num_classes")
    p = p[p > 0]
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0: a single class gives 0.0, not -0.0


def prior_loss_regression(labels: object, *, reduction: str = "mean") -> float:
    r"""Squared error of the prior guess: the variance of the labels.

    A regressor that ignores its input does best (in squared error) by predicting
    the label mean :math:`\mu`; its loss is the label variance (Su,
    "Multi-task learning: loss normalisation", kexue.fm, 2022):

    .. math::

        L^{(\mathrm{prior})} = \tfrac1N \textstyle\sum_n \|y_n - \mu\|^2 / D
        = \tfrac1D \textstyle\sum_d \operatorname{Var}(y_{\cdot d}).

    The variance is the population variance (divide by N, not N - 1): the loss the
    guess :math:`\mu` actually has on these labels. ``labels`` is (N,) or (N, D, ...):
    every trailing axis is an output with its own mean. ``reduction="mean"`` (default)
    averages the per-output variances, matching a mean-squared-error loss averaged
    over outputs (``torch.nn.functional.mse_loss``'s default); ``"sum"`` adds them,
    matching a loss summed over outputs, :math:`\|y - f(x)\|^2`, as in Su's note.

    Example:
        >>> from paretomtl.weighting import prior_loss_regression
        >>> prior_loss_regression([1.0, 2.0, 3.0, 4.0])  # variance 1.25
        1.25
        >>> prior_loss_regression([[0.0, 10.0], [2.0, 10.0]])  # variances (1, 0)
        0.5
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")
    y = np.asarray(labels, dtype=np.float64)
    if y.ndim == 0 or y.shape[0] == 0:
        raise ValueError(f"labels must be (N,) or (N, D, ...) with N >= 1; got shape {y.shape}")
    if not np.isfinite(y).all():
        bad_rows = (~np.isfinite(y.reshape(y.shape[0], -1))).any(axis=1)
        n = int(np.flatnonzero(bad_rows)[0])
        raise ValueError(f"labels[{n}] is not finite; every label must be finite")
    y = y.reshape(y.shape[0], -1)
    var = np.var(y, axis=0)
    return float(var.mean() if reduction == "mean" else var.sum())


def _check_priors(x: object, K: int, where: str) -> np.ndarray:
    """K losses > 0 whose reciprocals are finite."""
    arr = array("K", "> 0").check(x, K, where)
    check_reciprocal(arr, where)
    return arr


@register(
    "prior-loss",
    kind="loss",
    paper=SU_2022,
    summary="w_i = 1 / L_i(prior): the loss of the best input-blind guess (log C, label variance)",
)
class PriorLossNormalization(LossWeighting):
    r"""Prior-loss normalisation: :math:`w_i = 1 / L_i^{(\mathrm{prior})}`.

    Each loss is measured against the loss of the best prediction made without
    looking at the input (Su, "Multi-task learning: loss normalisation",
    kexue.fm, 2022):

    .. math::

        \textstyle\sum_i L_i / L_i^{(\mathrm{prior})},

    with :math:`L^{(\mathrm{prior})}` the entropy of the class frequencies for a
    cross-entropy task (:func:`prior_loss_classification`; :math:`\log C` for C
    balanced classes) and the label variance for a squared-error task
    (:func:`prior_loss_regression`). Unlike the initial loss it depends on the data
    only, not on the initialisation. A weighted loss :math:`w_i L_i < 1` means task i
    does better than guessing.

    Args:
        num_tasks: K >= 1.
        prior_losses: the K values :math:`L_i^{(\mathrm{prior})}`, finite and > 0 (and
            at least about 5.6e-309, so that the weights are finite).

    Example:
        >>> from paretomtl.weighting import (
        ...     PriorLossNormalization, prior_loss_classification, prior_loss_regression)
        >>> priors = [prior_loss_classification(num_classes=4), prior_loss_regression([0.0, 2.0])]
        >>> PriorLossNormalization(2, priors).update([1.0, 0.5]).round(4)  # 1/log 4, 1/1
        array([0.7213, 1.    ])
    """

    hyperparameters = {"prior_losses": value(_check_priors)}

    def __init__(self, num_tasks: int, prior_losses: object) -> None:
        super().__init__(num_tasks)
        priors = as_real_task_vector(prior_losses, "prior_losses", self.num_tasks, need="> 0")
        check_reciprocal(priors, "prior_losses", "the weights are 1 / prior_losses")
        self.prior_losses = priors
        self.reset()

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        return 1.0 / self.prior_losses

    def check_state(self, values: dict) -> None:
        w, expected = values["_weights"], 1.0 / values["prior_losses"]
        if w is not None and w.tobytes() != expected.tobytes():
            raise ValueError(
                f"state['weights'] must be 1 / prior_losses = {expected} (or None); got {w}"
            )
