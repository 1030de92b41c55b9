"""Private numba kernels on small dense K x K float64 arrays (the bottom layer of docs/design.md).

Importing this package compiles nothing: every kernel is ``@njit(cache=True)`` and is
compiled on its first call, then loaded from the on-disk cache in later processes.
"""
