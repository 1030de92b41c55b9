"""The two passes over a K x M Jacobian, blocked by columns: its Gram matrix and w @ J.

Every Gram-space method reads J twice, once for ``G = J J^T`` and once for the
direction ``d = w @ J``; for large M those two reads decide the step's time. Both
kernels walk J in blocks of ``WIDTH`` columns that stay in the core's cache, and both
are split into up to ``PARTS`` contiguous column ranges that the calling thread and a
small pool of threads claim one by one (the kernels release the GIL; plain threads
rather than numba's ``parallel=True``, whose compilation costs seconds). The split
depends on J's shape and dtype only and the partial results are added in a fixed
order, so a result does not depend on how many threads ran it.

Gram matrix. A block is copied into a zero-padded buffer of ``Kp = 4 ceil(K / 4)``
rows; each 4 x 4 tile of the upper triangle is one pass over the block with 16
accumulators in J's dtype (10 on the diagonal; K <= 2 has one 2 x 2 tile), and each
tile's block sums are added into a float64 accumulator. So float32 input is multiplied
in float32 (as BLAS does), its sums run over at most ``WIDTH`` products before they
move to float64, where BLAS keeps a float32 sum over all M columns: the error of an
entry is at most about ``WIDTH * 2**-24 * sum_c |J_ic J_jc|``, and typically far less
(vector lanes sum ``WIDTH / 16`` products each). Products of float32 numbers in
float64 would be exact, but cost twice the arithmetic, and at K >= 10 that work, not
the memory traffic, would set the time.

Combination. ``d = w @ J`` accumulates each column in float64 (float64 weights times
J's entries) and rounds once to J's dtype: weights far outside float32's range (1 / |g|
for tiny gradients) neither overflow nor lose bits.

Private: ``paretomtl.solvers._input`` validates J (2-D, C-contiguous, aligned, native
float32 or float64; non-finite entries propagate to the result) and calls
:func:`gram` and :func:`combine`. Nothing is compiled at import; each kernel is
compiled on its first call, once per dtype (J is passed read-only whatever its
flags), and cached on disk.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import config

from paretomtl._kernels._jit import jit
from paretomtl._kernels.linalg import FAST

# Columns per block: a float32 block of 32 rows is 64 KB, inside a core's L2 cache;
# each vector lane of a tile's accumulators sums WIDTH / 16 float32 products.
WIDTH = 512
# Column ranges (fixed by J's shape and dtype: the rounding does not depend on the
# thread count) and the fewest bytes of J per range worth handing to a thread.
PARTS = 8
_PART_BYTES = 1 << 19
# Columns per block of the combination (its float64 accumulator: 8 KB).
COMBINE_WIDTH = 1024


@jit(nogil=True, fastmath=FAST)
def gram_columns(J, start, stop, acc):  # pragma: no cover - compiled
    """Add the Gram matrix of ``J[:, start:stop]`` to the upper 4 x 4 tiles of ``acc``.

    ``acc`` is a zero-initialised ``(Kp, Kp)`` float64 array, ``Kp = 4 ceil(K / 4)``
    (or ``Kp = 2`` for K <= 2: one 2 x 2 tile, read from J directly); tiles with
    ``jb >= ib`` are written (diagonal tiles: their upper triangle). Each tile's sum
    over a block of ``WIDTH`` columns is formed in J's dtype, then added in float64.
    """
    K = J.shape[0]
    Kp = acc.shape[0]
    buf = np.zeros((Kp, WIDTH), dtype=J.dtype)  # rows K..Kp-1 stay zero
    zero = buf[0, 0]
    if Kp == 2:
        for c0 in range(start, stop, WIDTH):
            n = min(WIDTH, stop - c0)
            x = J[0, c0 : c0 + n]
            y = J[K - 1, c0 : c0 + n]  # K = 1: the same row, its entries dropped below
            s00 = s01 = s11 = zero
            for c in range(n):
                s00 += x[c] * x[c]
                s01 += x[c] * y[c]
                s11 += y[c] * y[c]
            acc[0, 0] += s00
            if K == 2:
                acc[0, 1] += s01
                acc[1, 1] += s11
        return
    for c0 in range(start, stop, WIDTH):
        n = min(WIDTH, stop - c0)
        for i in range(K):
            src = J[i, c0 : c0 + n]
            dst = buf[i]
            for c in range(n):
                dst[c] = src[c]
            for c in range(n, WIDTH):  # the last block: zeros add nothing
                dst[c] = zero
        for ib in range(0, Kp, 4):
            a0, a1, a2, a3 = buf[ib], buf[ib + 1], buf[ib + 2], buf[ib + 3]
            # The diagonal tile: its upper triangle only (10 of 16 products).
            s00 = s01 = s02 = s03 = s11 = s12 = s13 = s22 = s23 = s33 = zero
            for c in range(WIDTH):
                x0, x1, x2, x3 = a0[c], a1[c], a2[c], a3[c]
                s00 += x0 * x0
                s01 += x0 * x1
                s02 += x0 * x2
                s03 += x0 * x3
                s11 += x1 * x1
                s12 += x1 * x2
                s13 += x1 * x3
                s22 += x2 * x2
                s23 += x2 * x3
                s33 += x3 * x3
            r = acc[ib]
            r[ib] += s00
            r[ib + 1] += s01
            r[ib + 2] += s02
            r[ib + 3] += s03
            r = acc[ib + 1]
            r[ib + 1] += s11
            r[ib + 2] += s12
            r[ib + 3] += s13
            r = acc[ib + 2]
            r[ib + 2] += s22
            r[ib + 3] += s23
            acc[ib + 3, ib + 3] += s33
            for jb in range(ib + 4, Kp, 4):
                b0, b1, b2, b3 = buf[jb], buf[jb + 1], buf[jb + 2], buf[jb + 3]
                s00 = s01 = s02 = s03 = zero
                s10 = s11 = s12 = s13 = zero
                s20 = s21 = s22 = s23 = zero
                s30 = s31 = s32 = s33 = zero
                for c in range(WIDTH):
                    x0, x1, x2, x3 = a0[c], a1[c], a2[c], a3[c]
                    y0, y1, y2, y3 = b0[c], b1[c], b2[c], b3[c]
                    s00 += x0 * y0
                    s01 += x0 * y1
                    s02 += x0 * y2
                    s03 += x0 * y3
                    s10 += x1 * y0
                    s11 += x1 * y1
                    s12 += x1 * y2
                    s13 += x1 * y3
                    s20 += x2 * y0
                    s21 += x2 * y1
                    s22 += x2 * y2
                    s23 += x2 * y3
                    s30 += x3 * y0
                    s31 += x3 * y1
                    s32 += x3 * y2
                    s33 += x3 * y3
                r = acc[ib]
                r[jb] += s00
                r[jb + 1] += s01
                r[jb + 2] += s02
                r[jb + 3] += s03
                r = acc[ib + 1]
                r[jb] += s10
                r[jb + 1] += s11
                r[jb + 2] += s12
                r[jb + 3] += s13
                r = acc[ib + 2]
                r[jb] += s20
                r[jb + 1] += s21
                r[jb + 2] += s22
                r[jb + 3] += s23
                r = acc[ib + 3]
                r[jb] += s30
                r[jb + 1] += s31
                r[jb + 2] += s32
                r[jb + 3] += s33


@jit(nogil=True, fastmath=FAST)
def combine_columns(w, J, out, start, stop):  # pragma: no cover - compiled
    """``out[start:stop] = w @ J[:, start:stop]``, summed in float64 (w is float64),
    rounded once to out's dtype; up to four rows of J per pass over a block."""
    K = J.shape[0]
    acc = np.empty(COMBINE_WIDTH)
    for c0 in range(start, stop, COMBINE_WIDTH):
        n = min(COMBINE_WIDTH, stop - c0)
        for c in range(n):
            acc[c] = 0.0
        i = 0
        while i + 4 <= K:
            w0, w1, w2, w3 = w[i], w[i + 1], w[i + 2], w[i + 3]
            r0, r1 = J[i, c0 : c0 + n], J[i + 1, c0 : c0 + n]
            r2, r3 = J[i + 2, c0 : c0 + n], J[i + 3, c0 : c0 + n]
            for c in range(n):
                acc[c] += w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c]
            i += 4
        while i < K:
            w0 = w[i]
            r0 = J[i, c0 : c0 + n]
            for c in range(n):
                acc[c] += w0 * r0[c]
            i += 1
        o = out[c0 : c0 + n]
        for c in range(n):
            o[c] = acc[c]


# --------------------------------------------------------------------------- driver

_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_lock = threading.Lock()


def threads() -> int:
    """Threads the two passes use: the CPUs this process may run on, at most numba's
    ``NUMBA_NUM_THREADS`` and at most ``PARTS``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, int(config.NUMBA_NUM_THREADS), PARTS))


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked child needs its own
            workers = max(1, PARTS - 1)  # the calling thread is one of the workers
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paretomtl")
            _pool_pid = os.getpid()
        return _pool


def column_ranges(K: int, M: int, itemsize: int) -> list[tuple[int, int]]:
    """The fixed split of the M columns of a K x M array: up to PARTS ranges of whole
    blocks, each at least ``_PART_BYTES`` of J (one range for small J)."""
    parts = max(1, min(PARTS, K * M * itemsize // _PART_BYTES))
    blocks = -(-M // WIDTH)
    span = -(-blocks // parts) * WIDTH
    return [(a, min(M, a + span)) for a in range(0, M, span)]


def _run(task, ranges: list[tuple[int, int]]) -> None:
    """``task(p, start, stop)`` for every range, each exactly once: the calling thread
    and up to ``threads() - 1`` pool threads claim the next range until none is left.
    The caller then waits only for ranges other threads have claimed, never for a pool
    thread that has not started (on a busy machine it may start late, or find nothing
    left to do)."""
    n = min(threads(), len(ranges))
    if n == 1:
        for p, (a, b) in enumerate(ranges):
            task(p, a, b)
        return
    cond = threading.Condition()
    state = {"next": 0, "running": 0}
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            with cond:
                p = state["next"]
                if p == len(ranges) or errors:
                    return
                state["next"] = p + 1
                state["running"] += 1
            try:
                task(p, *ranges[p])
            except BaseException as exc:  # handed to the caller
                errors.append(exc)
            finally:
                with cond:
                    state["running"] -= 1
                    cond.notify_all()

    pool = _executor()
    for _ in range(n - 1):
        pool.submit(work)
    work()
    with cond:
        cond.wait_for(lambda: state["running"] == 0)
    if errors:
        raise errors[0]


def _frozen(J: np.ndarray) -> np.ndarray:
    """A read-only view of J: the kernels see one array type per dtype, whether the
    caller's J is writeable or not (numba compiles each type separately)."""
    view = np.asarray(J).view()
    view.flags.writeable = False
    return view


def gram(J: np.ndarray) -> np.ndarray:
    """Gram matrix ``J @ J.T`` (K x K float64) of a C-contiguous float32/float64 J.

    Example:
        >>> import numpy as np
        >>> from paretomtl._kernels.jacobian import gram
        >>> gram(np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], dtype=np.float32))
        array([[ 5.,  2.],
               [ 2., 10.]])
    """
    J = _frozen(J)
    K, M = J.shape
    Kp = 2 if K <= 2 else -(-K // 4) * 4
    ranges = column_ranges(K, M, J.itemsize)
    partial = np.zeros((len(ranges), Kp, Kp))

    def task(p: int, a: int, b: int) -> None:
        gram_columns(J, a, b, partial[p])

    _run(task, ranges)
    U = partial[0]
    for p in range(1, len(ranges)):  # a fixed order: the same rounding on any thread count
        U += partial[p]
    U = np.triu(U[:K, :K])
    return U + np.triu(U, 1).T


def combine(w: np.ndarray, J: np.ndarray) -> np.ndarray:
    """``w @ J`` in J's dtype (w: K float64 weights; J: C-contiguous float32/float64),
    each column summed in float64 and rounded once.

    Example:
        >>> import numpy as np
        >>> from paretomtl._kernels.jacobian import combine
        >>> combine(np.array([0.5, 2.0]), np.array([[2.0, 4.0], [1.0, -1.0]], dtype=np.float32))
        array([3., 0.], dtype=float32)
    """
    J = _frozen(J)
    K, M = J.shape
    out = np.empty(M, dtype=J.dtype)
    w = np.array(w, dtype=np.float64)  # a fresh, writeable, contiguous copy

    def task(p: int, a: int, b: int) -> None:
        combine_columns(w, J, out, a, b)

    _run(task, column_ranges(K, M, J.itemsize))
    return out
