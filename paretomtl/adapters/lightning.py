"""PyTorch Lightning: a paretomtl Aggregator in a ``LightningModule`` (manual optimisation).

Lightning's automatic optimisation calls ``backward`` on the one loss that
``training_step`` returns; combining K task gradients needs the K losses, so the
module optimises manually (``self.automatic_optimization = False``) and calls
:func:`manual_backward` where it would call ``self.manual_backward(loss)``::

    class MultiTask(LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.trunk, self.heads = ..., ...
            self.aggregator = Aggregator("mgda", track_conflicts=True)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            opt.zero_grad()
            losses = ...                                   # K scalar losses
            info = manual_backward(self, losses, self.trunk.parameters(), self.aggregator)
            opt.step()
            log_step(self, info, names=["depth", "seg"])   # weights, cosines, conflicts

Nothing here imports Lightning: both ``lightning.pytorch`` and ``pytorch_lightning``
modules work. ``examples/lightning_training.py`` trains one and logs to TensorBoard
or CSV.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from paretomtl.adapters.logging import flatten
from paretomtl.adapters.torch import Aggregator, StepInfo

__all__ = ["log_step", "manual_backward"]


def _trainer_of(module: object) -> Any:
    """The Trainer the module is attached to, or None (Lightning raises on
    ``module.trainer`` for a module outside a Trainer)."""
    try:
        return getattr(module, "trainer", None)
    except RuntimeError:
        return None


def manual_backward(
    module: Any,
    losses: Sequence[torch.Tensor],
    shared_params: Iterable[torch.Tensor],
    aggregator: Aggregator,
    **backward_kwargs: Any,
) -> StepInfo:
    """``self.manual_backward(loss)`` for K task losses, through a paretomtl Aggregator.

    Runs ``aggregator.backward(losses, shared_params, **backward_kwargs)`` between
    the hooks Lightning's own ``manual_backward`` calls: every callback's and the
    module's ``on_before_backward`` (given the sum of the detached losses) before,
    ``on_after_backward`` after (so gradient-logging and clipping callbacks see the
    combined gradient). Under a precision plugin with a GradScaler (``"16-mixed"``
    on a GPU) the scaler is passed as ``scaler=``: hand in the *unscaled* losses,
    and ``.grad`` is left scaled for the optimizer step, as Lightning expects.

    With several processes (``strategy="ddp"``), build the aggregator with the
    DDP module once the trainer has wrapped the model, e.g. in ``setup()``:
    ``Aggregator("mgda", ddp=self.trainer.strategy.model)``.

    Args:
        module: the ``LightningModule`` (``automatic_optimization`` must be False).
            A module outside a Trainer works too (no hooks are called).
        losses: K scalar loss tensors.
        shared_params: the parameters every task uses (the trunk).
        aggregator: a :class:`paretomtl.adapters.torch.Aggregator`, kept between
            steps (an attribute of the module).
        **backward_kwargs: more arguments of :meth:`Aggregator.backward`
            (``features=`` in representation mode, ``layer=`` for GradNorm, ...).

    Returns:
        The step's :class:`~paretomtl.adapters.torch.StepInfo`.

    Example:
        >>> import torch
        >>> from paretomtl.adapters.lightning import manual_backward
        >>> from paretomtl.adapters.torch import Aggregator
        >>> class Module(torch.nn.Module):  # a LightningModule outside a Trainer
        ...     automatic_optimization = False
        >>> m = Module()
        >>> m.trunk, m.heads = torch.nn.Linear(3, 4), torch.nn.ModuleList(
        ...     torch.nn.Linear(4, 1) for _ in range(2))
        >>> z = m.trunk(torch.randn(8, 3))
        >>> info = manual_backward(m, [h(z).pow(2).mean() for h in m.heads],
        ...                        m.trunk.parameters(), Aggregator("upgrad"))
        >>> info.weights.shape, m.trunk.weight.grad is not None
        ((2,), True)
    """
    if not isinstance(aggregator, Aggregator):
        raise TypeError(
            f"aggregator must be a paretomtl.adapters.torch.Aggregator, built once (e.g. in "
            f"__init__) and kept between steps; got {type(aggregator).__name__}"
        )
    if getattr(module, "automatic_optimization", False):
        raise ValueError(
            "module.automatic_optimization is True: Lightning would call backward on the "
            "loss training_step returns. Set self.automatic_optimization = False in "
            "__init__ and step the optimizer yourself (opt = self.optimizers(); "
            "opt.zero_grad(); manual_backward(...); opt.step())"
        )
    losses = list(losses)
    trainer = _trainer_of(module)
    callbacks = list(getattr(trainer, "callbacks", None) or []) if trainer is not None else []
    if trainer is not None and "scaler" not in backward_kwargs:
        plugin = getattr(trainer, "precision_plugin", None)
        scaler = getattr(plugin, "scaler", None)
        if scaler is not None:
            backward_kwargs["scaler"] = scaler
    if trainer is not None:
        with torch.no_grad():
            total = sum(loss.detach().reshape(()).float() for loss in losses)
        for callback in callbacks:
            callback.on_before_backward(trainer, module, total)
        module.on_before_backward(total)
    info = aggregator.backward(losses, shared_params, **backward_kwargs)
    if trainer is not None:
        for callback in callbacks:
            callback.on_after_backward(trainer, module)
        module.on_after_backward()
    return info


def log_step(
    module: Any,
    info: object,
    prefix: str = "mtl/",
    *,
    names: Sequence[str] | None = None,
    **log_kwargs: Any,
) -> dict[str, float]:
    """Log a step's weights, losses, cosines and conflicts with ``module.log_dict``.

    The scalars are :func:`paretomtl.adapters.logging.flatten` of ``info`` (a
    StepInfo, or a SolverResult); ``log_kwargs`` go to Lightning's ``log_dict``
    (``on_step``, ``on_epoch``, ``prog_bar``, ...).

    Returns:
        The logged dict.

    Example:
        >>> import numpy as np
        >>> from paretomtl import solvers
        >>> from paretomtl.adapters.lightning import log_step
        >>> class Module:  # stands in for a LightningModule
        ...     def log_dict(self, metrics, **kwargs):
        ...         print(sorted(metrics)[:3], kwargs)
        >>> _ = log_step(Module(), solvers.mgda(np.eye(2)), on_step=True)
        ['mtl/converged', 'mtl/cosine/0-1', 'mtl/grad_norm/0'] {'on_step': True}
    """
    scalars = flatten(info, prefix, names=names)
    log_dict = getattr(module, "log_dict", None)
    if not callable(log_dict):
        raise TypeError(
            f"module must be a LightningModule (something with log_dict); got "
            f"{type(module).__name__}"
        )
    log_dict(scalars, **log_kwargs)
    return scalars
