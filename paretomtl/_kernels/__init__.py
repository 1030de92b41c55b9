"""Private numba kernels on small dense K x K float64 arrays (the bottom layer of docs/design.md).

Importing this package compiles nothing. Every kernel is compiled on its first call
and cached on disk (:mod:`paretomtl._kernels._jit` says where, and what happens
where nothing can be written); the kernels that Python calls (``entry``) run as
Python on small input until they are compiled in the background, with the same
results bit for bit, so that a first call never waits for numba.
"""
