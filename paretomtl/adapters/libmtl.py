"""LibMTL: a weighting class for LibMTL's Trainer that runs a paretomtl method.

LibMTL (https://github.com/median-research-group/LibMTL) builds its model as
``class MTLmodel(architecture, weighting)``: the weighting class is a mixin whose
``init_param()`` runs once the architecture is built and whose ``backward(losses,
**weight_args)`` writes the gradients and returns the K weights. :func:`weighting`
makes such a class for any paretomtl method (a gradient method, a loss weighting, a
stateful object), backed by :class:`paretomtl.adapters.torch.Aggregator`::

    from paretomtl.adapters.libmtl import weighting
    trainer = Trainer(task_dict, weighting=weighting("mgda"), architecture=HPS, ...)

For LibMTL releases whose ``Trainer`` takes the weighting by name (the GitHub
version), :func:`register` puts the class into ``LibMTL.weighting`` first:
``Trainer(..., weighting=register(weighting("mgda")))``.

- ``rep_grad=False``: the per-task gradients of the shared parameters
  (``get_share_params()``), their Gram matrix, the method's weights, the combined
  gradient into ``.grad``; the decoders get their own task's gradient, as in every
  LibMTL weighting.
- ``rep_grad=True``: the method combines the per-task gradients at the shared
  representation (Sener & Koltun's MGDA-UB; paretomtl's ``mode="representation"``)
  over every sample: the Gram matrix of the K x (batch x features) gradients, where
  LibMTL's own methods first sum each task's gradient over the batch.

The class is a subclass of LibMTL's ``AbsWeighting`` when LibMTL can be imported, and
a plain ``torch.nn.Module`` with the same protocol otherwise (LibMTL's Trainer only
mixes it in). The aggregator's state (stateful methods, the generator, the conflict
tracker) rides in the model's ``state_dict()`` as the module's extra state.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from paretomtl.adapters.torch import Aggregator, StepInfo

__all__ = ["ParetoWeighting", "register", "weighting"]

_NEEDED = ("task_num", "rep_grad", "get_share_params")


class ParetoWeighting(torch.nn.Module):
    """LibMTL's weighting protocol run by a :class:`paretomtl.adapters.torch.Aggregator`.

    Not used directly: :func:`weighting` makes a subclass with the method set. Mixed
    with a LibMTL architecture (``class MTLmodel(architecture, weighting)``), it
    reads ``task_num``, ``rep_grad``, ``get_share_params()`` and, with
    ``rep_grad=True``, ``rep``, ``rep_tasks`` and ``task_name`` from it.

    Attributes:
        paretomtl: the Aggregator (built by ``init_param``), for its ``state_dict``,
            ``method_state`` (e.g. ``end_epoch()`` of DWA) and ``traffic``.
        paretomtl_info: the :class:`~paretomtl.adapters.torch.StepInfo` of the last
            ``backward`` (for :func:`paretomtl.adapters.logging.flatten`).
    """

    method: object = "mgda"
    aggregator_kwargs: dict = {}

    def init_param(self) -> None:
        """Build the Aggregator for this model's K tasks (LibMTL calls this once,
        after the architecture's ``__init__``)."""
        arch: Any = self  # mixed with a LibMTL architecture, which provides the rest
        missing = [a for a in _NEEDED if not hasattr(self, a)]
        if missing:
            raise TypeError(
                f"{type(self).__name__} is a LibMTL weighting: mix it with a LibMTL "
                f"architecture (class MTLmodel(architecture, weighting)), which provides "
                f"{', '.join(_NEEDED)}; missing {missing}"
            )
        super_init = getattr(super(), "init_param", None)
        if callable(super_init):
            super_init()
        method = self.method
        if not isinstance(method, str):
            method = copy.deepcopy(method)  # each model its own state
        kwargs = dict(self.aggregator_kwargs)
        if arch.rep_grad:
            kwargs["mode"] = "representation"
        self.paretomtl = Aggregator(method, num_tasks=int(arch.task_num), **kwargs)
        self.paretomtl_info: StepInfo | None = None

    def backward(
        self, losses: torch.Tensor | Sequence[torch.Tensor], **kwargs: object
    ) -> np.ndarray | None:
        """The aggregated backward of LibMTL's training step.

        Args:
            losses: the K task losses (LibMTL's 1-D tensor, or a list of scalars).
            **kwargs: LibMTL's ``weight_args``; the paretomtl method's options are
                set in :func:`weighting`, so none is accepted here.

        Returns:
            The K weights (numpy; what LibMTL records per batch), or None where the
            method has none (GradDrop, ...) or the step was skipped.
        """
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}.backward got weight_args {sorted(kwargs)}; a paretomtl "
                f"method's options are given to paretomtl.adapters.libmtl.weighting(method, "
                f"options=...): pass weight_args={{}}"
            )
        if not hasattr(self, "paretomtl"):
            raise RuntimeError(
                f"{type(self).__name__}.init_param() was not called (LibMTL's Trainer "
                f"calls it when it builds the model)"
            )
        arch: Any = self
        values = list(losses)
        shared = list(arch.get_share_params())
        if arch.rep_grad:
            info = self._representation_step(values, shared)
        else:
            info = self.paretomtl.backward(values, shared, layer=shared)
        self.paretomtl_info = info
        if info.skipped or info.weights is None:
            return None
        return np.asarray(info.weights, dtype=np.float64)

    def _representation_step(self, losses: list, shared: list) -> StepInfo:
        """rep_grad=True: LibMTL gives each decoder a detached copy of the shared
        representation (``rep_tasks``), so no loss reaches the encoder. Each task's
        gradient g_i at its copy is taken first; the aggregator then runs on
        ``L_i + <rep - rep.detach(), g_i>``: the value L_i, the gradient g_i at the
        attached representation (the method combines these; the encoder gets the
        combination), and L_i's own gradient at the decoders (which get theirs as
        in the plain step: their own, or weighted by a loss weighting)."""
        arch: Any = self
        rep = _single_representation(arch.rep)
        moved = rep - rep.detach()  # zero, with rep's graph
        surrogates = []
        for name, loss in zip(arch.task_name, losses, strict=True):
            copy_ = arch.rep_tasks[name]
            (g,) = torch.autograd.grad(loss, copy_, retain_graph=True, allow_unused=True)
            g = torch.zeros_like(rep) if g is None else g.detach()
            surrogates.append(loss.reshape(()) + (moved * g).sum())
        return self.paretomtl.backward(surrogates, shared, features=rep, layer=shared)

    def get_extra_state(self) -> dict:
        """The aggregator's state, saved with the model's ``state_dict()``."""
        agg = getattr(self, "paretomtl", None)
        return {"paretomtl": None if agg is None else agg.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        """Restore the aggregator's state (checked by ``Aggregator.load_state_dict``)."""
        saved = state.get("paretomtl") if isinstance(state, dict) else None
        if saved is None:
            return
        agg = getattr(self, "paretomtl", None)
        if agg is None:
            raise RuntimeError("load the state after init_param() has built the aggregator")
        agg.load_state_dict(saved)


def _single_representation(rep: Any) -> torch.Tensor:
    """The one shared representation (LibMTL 1.1.5 stores it once per task)."""
    if isinstance(rep, torch.Tensor):
        return rep
    values = list(rep.values()) if isinstance(rep, dict) else list(rep or [])
    if values and all(v is values[0] for v in values) and isinstance(values[0], torch.Tensor):
        return values[0]
    raise ValueError(
        "rep_grad=True needs one representation shared by every task; this model has one "
        "per task (multi_input, or an encoder that returns a list): use rep_grad=False"
    )


def _abs_weighting() -> type | None:
    """LibMTL's AbsWeighting, or None where LibMTL cannot be imported."""
    try:
        module = importlib.import_module("LibMTL.weighting.abstract_weighting")
    except ImportError:
        return None
    return getattr(module, "AbsWeighting", None)


def _class_name(method: object) -> str:
    if isinstance(method, str):
        base = method
    else:
        base = getattr(method, "__name__", type(method).__name__)
    return "Paretomtl_" + re.sub(r"\W", "_", base)


def weighting(
    method: object = "mgda", *, name: str | None = None, **aggregator_kwargs: Any
) -> type:
    """A LibMTL weighting class that runs ``method`` through paretomtl.

    Args:
        method: a registry name (``paretomtl.solvers.available()``,
            ``paretomtl.weighting.available()``), a method object (copied for each
            model) or a function ``f(gram) -> weights``.
        name: the class's name (default ``"Paretomtl_<method>"``).
        **aggregator_kwargs: arguments of :class:`paretomtl.adapters.torch.Aggregator`
            (``options``, ``seed``, ``track_conflicts``, ``gram_precision``,
            ``on_nonfinite``, ``mode`` for ``rep_grad=False``); checked now.

    Returns:
        The class, for ``Trainer(weighting=...)`` (a subclass of LibMTL's
        ``AbsWeighting`` where LibMTL imports).

    Example:
        >>> import torch
        >>> from paretomtl.adapters.libmtl import weighting
        >>> class HPS(torch.nn.Module):  # stands in for LibMTL.architecture.HPS
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.task_name, self.task_num, self.rep_grad = ["a", "b"], 2, False
        ...         self.encoder = torch.nn.Linear(3, 4)
        ...         self.decoders = torch.nn.ModuleDict({t: torch.nn.Linear(4, 1) for t in "ab"})
        ...     def get_share_params(self):
        ...         return self.encoder.parameters()
        ...     def forward(self, x):
        ...         return {t: d(self.encoder(x)) for t, d in self.decoders.items()}
        >>> MGDA = weighting("mgda")
        >>> class MTLmodel(HPS, MGDA):  # what LibMTL's Trainer builds
        ...     pass
        >>> model = MTLmodel()
        >>> model.init_param()
        >>> preds = model(torch.randn(8, 3))
        >>> w = model.backward(torch.stack([preds[t].pow(2).mean() for t in "ab"]))
        >>> w.shape, model.encoder.weight.grad is not None
        ((2,), True)
    """
    if not isinstance(method, str) and not callable(method):
        raise TypeError(
            f"method must be a registry name or a method object; got {type(method).__name__}"
        )
    mode = aggregator_kwargs.get("mode", "autograd")
    if mode == "representation":
        raise ValueError(
            "mode='representation' is chosen by LibMTL's rep_grad=True (the Trainer's "
            "argument); pass mode='autograd' or 'batched' here"
        )
    probe_method = method if isinstance(method, str) else copy.deepcopy(method)
    Aggregator(probe_method, **aggregator_kwargs)  # refuses bad methods and options now
    if name is None:
        name = _class_name(method)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier; got {name!r}")
    base = _abs_weighting()
    bases = (ParetoWeighting,) if base is None else (ParetoWeighting, base)
    namespace = {
        "method": method,
        "aggregator_kwargs": dict(aggregator_kwargs),
        "__module__": __name__,
        "__doc__": f"LibMTL weighting: paretomtl's {method!r} (paretomtl.adapters.libmtl).",
    }
    return type(name, bases, namespace)


def register(cls: type, name: str | None = None) -> str:
    """Put a class from :func:`weighting` into ``LibMTL.weighting``; return its name.

    LibMTL's GitHub ``Trainer`` looks the weighting up by name in that module
    (``Trainer(weighting="Paretomtl_mgda", ...)``); the PyPI release takes the class.

    Raises:
        ImportError: LibMTL cannot be imported.
    """
    if not (isinstance(cls, type) and issubclass(cls, ParetoWeighting)):
        raise TypeError(
            f"cls must be a class from paretomtl.adapters.libmtl.weighting; got {cls!r}"
        )
    module = importlib.import_module("LibMTL.weighting")
    key = cls.__name__ if name is None else name
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"name must be a Python identifier; got {key!r}")
    setattr(module, key, cls)
    return key
