"""Every gradient method of the registry on one set of conflicting task gradients.

Run from the repository root:

    .venv/bin/python examples/every_method.py [--tasks K] [--dim M] [--seed S]

Three (or K) task gradients of different lengths, two of them conflicting, go through
every method registered in ``paretomtl.solvers`` by name, with its default options (a
stateful method is built for K tasks and called once; a random one is seeded). For
each, the table shows the direction's first-order effect on every task, ``<g_i, d>``
relative to ``||g_i|| ||d||`` (the cosine: negative means that task's loss rises to
first order along the step -d), the direction's length relative to the mean
gradient's, the weights (or "-" where the direction is no weighted sum of the
gradients), and the time of the call. Methods that promise a common descent
direction (MGDA, UPGrad, DualProj, ConFIG, ...) show no negative cosine.
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np

from paretomtl import solvers


def conflicting_gradients(K: int, M: int, seed: int) -> np.ndarray:
    """K gradients sharing a component, norms over two decades, task 1 against task 0."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(M)
    J = 0.6 * shared + rng.standard_normal((K, M))
    J[1] = -0.7 * J[0] + 0.5 * rng.standard_normal(M)
    J *= np.geomspace(0.3, 30.0, K)[:, None] / np.linalg.norm(J, axis=1, keepdims=True)
    return J


def build(name: str, K: int):
    entry = solvers.info(name)
    options = {"seed": 0} if "seed" in inspect.signature(entry.obj).parameters else {}
    if name == "trimmed-mean" and K <= 2:
        options["trim_number"] = 0
    if entry.kind == "stateful-gradient":
        return solvers.method(name, num_tasks=K, **options)
    return solvers.method(name, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    K = args.tasks
    J = conflicting_gradients(K, args.dim, args.seed)
    losses = np.linspace(1.0, 2.0, K)
    mean_norm = float(np.linalg.norm(J.mean(axis=0)))
    norms = np.linalg.norm(J, axis=1)
    print(
        f"K = {K} gradients of norms {np.array2string(norms, precision=2)}; cos(g0, g1) = "
        f"{J[0] @ J[1] / norms[0] / norms[1]:.2f}"
    )
    print(f"{'method':<24}{'cos(g_i, d)':>{8 * K + 2}}  {'|d|/|mean|':>10}  {'time':>8}  weights")
    for name in solvers.available():
        if name == "krum" and K < 3:
            continue
        method = build(name, K)
        reads_losses = "losses" in inspect.signature(method).parameters
        extra = {"losses": losses} if reads_losses else {}
        method(J, **extra)  # first call: compilation, not timed
        method = build(name, K)
        t0 = time.perf_counter()
        res = method(J, **extra)
        elapsed = time.perf_counter() - t0
        d = res.direction
        dn = float(np.linalg.norm(d))
        cos = (J @ d) / (norms * dn) if dn > 0 else np.zeros(K)
        cells = "".join(f"{c:8.2f}" for c in cos)
        weights = "-" if res.weights is None else np.array2string(res.weights, precision=3)
        flag = " <" if cos.min() < -1e-9 else "  "
        print(f"{name:<24}{cells}{flag}  {dn / mean_norm:10.3f}  {elapsed * 1e6:6.0f}us  {weights}")
    print("< : some task's loss rises to first order along -d")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
