"""Framework adapters: the only part of paretomtl that imports a deep-learning framework.

- ``paretomtl.adapters.torch``: :class:`~paretomtl.adapters.torch.Aggregator`, the
  per-task gradients of a PyTorch model combined by any paretomtl method (one process,
  DDP or FSDP);
- ``paretomtl.adapters.torchjd``: every gradient method as a TorchJD ``Weighting`` or
  ``Aggregator``;
- ``paretomtl.adapters.libmtl``: a LibMTL weighting class backed by paretomtl;
- ``paretomtl.adapters.lightning``: manual optimisation in PyTorch Lightning;
- ``paretomtl.adapters.logging``: a step's weights, losses and conflicts as named
  scalars for any logger (imports no framework).
"""
