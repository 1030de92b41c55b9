"""The four founding solvers on raw numpy gradient arrays.

Run: .venv/bin/python examples/raw_arrays.py

A two-task and a three-task problem with conflicting gradients: for each, the
pairwise cosines between the task gradients, then the weights and the combined
direction of MGDA, the constrained Pareto step (PE-LTR), PCGrad, and a few GradNorm
updates of loss weights.
"""

import numpy as np

from paretomtl import solvers


def cosines(grads: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(grads, axis=1)
    return (grads @ grads.T) / np.outer(norms, norms)


def show(title: str, grads: np.ndarray, lower_bounds: np.ndarray) -> None:
    np.set_printoptions(precision=4, suppress=True)
    print(f"== {title}: K = {grads.shape[0]} tasks, M = {grads.shape[1]} parameters")
    print("cosines between task gradients:\n", cosines(grads))
    results = {
        "mgda": solvers.mgda(grads),
        f"pareto_step c={lower_bounds}": solvers.pareto_step(grads, lower_bounds=lower_bounds),
        "pareto_step (PE-LTR 2-stage)": solvers.pareto_step(
            grads, lower_bounds=lower_bounds, method="pe-ltr"
        ),
        "pcgrad (seed 0)": solvers.pcgrad(grads, seed=0),
    }
    for name, res in results.items():
        print(f"{name:>30}: weights {res.weights}, direction {res.direction}")
        if np.isfinite(res.objective):
            print(
                f"{'':>30}  ||direction||^2 = {res.objective:.6f}, KKT residual "
                f"{res.kkt_residual:.1e}"
            )
    # A descent direction for every task has <g_i, d> > 0 for all i.
    d = results["mgda"].direction
    print(f"{'<g_i, mgda direction>':>30}: {grads @ d}\n")


def main() -> None:
    two = np.array([[1.0, 0.2, 0.0], [-0.6, 1.0, 0.3]])
    show("two tasks", two, lower_bounds=np.array([0.4, 0.2]))
    rng = np.random.default_rng(0)
    three = rng.standard_normal((3, 5))
    three[2] = -0.7 * three[0] + 0.3 * three[2]  # task 2 conflicts with task 0
    show("three tasks", three, lower_bounds=np.array([0.1, 0.1, 0.3]))

    print("== GradNorm (alpha = 1.5): loss weights over five steps")
    gradnorm = solvers.GradNorm(num_tasks=3, alpha=1.5, lr=0.05)
    losses = np.array([2.0, 1.0, 0.5])
    for step in range(5):
        grad_norms = np.linalg.norm(three, axis=1) * (1 + 0.1 * step)
        weights = gradnorm.update(losses, grad_norms)
        print(f"step {step}: losses {losses} -> weights {weights}")
        losses = losses * np.array([0.7, 0.9, 0.95])


if __name__ == "__main__":
    main()
