"""PCGrad against momentum PCGrad (experimental) on noisy conflicting tasks.

Run: .venv/bin/python examples/momentum_pcgrad.py [--seeds 5] [--toy-steps 1000]
     [--reg-steps 1000] [--out benchmarks/results/momentum_pcgrad.txt]

Momentum PCGrad (``paretomtl.solvers.MomentumPCGrad``) projects on the conflict that
the history of the pairwise cosines expects (their bias-corrected moving average),
where PCGrad projects on this step's. Two comparisons, each over several seeds, with
the plain sum of the gradients as a reference:

(a) Noisy quadratics. Two tasks in R^d, L_i(theta) = 1/2 (theta - a_i)^T H_i
    (theta - a_i), with diagonal H_i of condition number 10 (stiff in different
    coordinates) and minimisers a_1 = -a_2 = (1, ..., 1) / sqrt(d). Near the Pareto
    set the true gradients conflict (at the minimiser of the sum they are opposite,
    of norm 2.6); each step sees them plus isotropic Gaussian noise of norm about
    ``noise``, as a minibatch would: with noise 2 this step's cosine is negative on
    almost every step, with noise 8 on only about 60 % of them. Plain SGD (lr 0.02)
    from theta = (2, -2, 2, ...) / sqrt(d). Reported: the true (noise-free) losses at
    the last step, and their mean over the last quarter of the steps.
(b) The GradNorm paper's synthetic regression (``examples/torch_training.py``:
    make_data, Model; two tasks with sigma = (1, 100)), trained with Adam through
    ``paretomtl.adapters.torch.Aggregator("pcgrad")`` and
    ``Aggregator("momentum-pcgrad")``. Reported: each task's final full-data loss
    divided by its loss at initialisation.

For each method: per-task mean and standard deviation over the seeds, and the
average number of projections per step. It runs on a 2-core CPU in about three
minutes, almost all of it in (b), whose 1000 steps are fewer than the 1500 of
``examples/torch_training.py`` to keep it so (the output says so).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from paretomtl import solvers
from paretomtl.adapters.torch import Aggregator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_training import Model, make_data

METHODS = ("sum", "pcgrad", "momentum-pcgrad")


# -- (a) noisy quadratics ----------------------------------------------------------
def quadratic_problem(d: int = 20):
    a = np.ones(d) / np.sqrt(d)
    h1 = np.geomspace(1.0, 10.0, d)  # stiff in the last coordinates
    h2 = h1[::-1].copy()  # stiff in the first
    return [(a, h1), (-a, h2)]


def quadratic_losses(theta, problem):
    return np.array([0.5 * np.sum(h * (theta - a) ** 2) for a, h in problem])


def run_quadratics(method: str, seed: int, steps: int, noise: float, lr: float = 0.02):
    problem = quadratic_problem()
    d = problem[0][0].shape[0]
    rng = np.random.default_rng(seed)
    theta = np.tile([2.0, -2.0], d // 2) / np.sqrt(d)
    mp = solvers.MomentumPCGrad(2, seed=seed) if method == "momentum-pcgrad" else None
    pc_rng = np.random.default_rng(seed)
    tail, projections, negative_cos = [], 0, 0
    for t in range(steps):
        true = np.stack([h * (theta - a) for a, h in problem])
        # Minibatch-like noise: per task, isotropic, of norm about ``noise``.
        J = true + noise / np.sqrt(d) * rng.standard_normal(true.shape)
        negative_cos += float(J[0] @ J[1]) < 0
        if method == "sum":
            direction = J.sum(axis=0)
        elif method == "pcgrad":
            res = solvers.pcgrad(J, seed=pc_rng)
            direction, projections = res.direction, projections + res.extras["projections"]
        else:
            res = mp.update(J)
            direction, projections = res.direction, projections + res.extras["projections"]
        theta = theta - lr * direction
        if t >= steps - steps // 4:
            tail.append(quadratic_losses(theta, problem))
    return (
        quadratic_losses(theta, problem),
        np.mean(tail, axis=0),
        projections / steps,
        negative_cos / steps,
    )


# -- (b) GradNorm's synthetic regression -----------------------------------------------
def full_losses(model, x, ys) -> np.ndarray:
    preds = model(x)
    return np.array([float(torch.mean((p - y) ** 2)) for p, y in zip(preds, ys, strict=True)])


def run_regression(method: str, seed: int, steps: int, sigmas=(1.0, 100.0), batch: int = 100):
    x, ys = make_data(list(sigmas), seed=seed)
    model = Model(len(sigmas), seed=seed)
    with torch.no_grad():
        initial = full_losses(model, x, ys)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    shared = list(model.trunk.parameters())
    agg = None if method == "sum" else Aggregator(method, seed=seed)
    g = torch.Generator().manual_seed(seed)
    projections, negative_cos = 0, 0
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g)
        preds = model(x[idx])
        losses = [torch.mean((p - y[idx]) ** 2) for p, y in zip(preds, ys, strict=True)]
        opt.zero_grad()
        if agg is None:
            sum(losses).backward()
        else:
            info = agg.backward(losses, shared)
            projections += info.result.extras["projections"]
            negative_cos += float(info.cosines[0, 1]) < 0
        opt.step()
    with torch.no_grad():
        final = full_losses(model, x, ys)
    # The plain sum never forms the per-task gradients: no cosines to count.
    return final / initial, projections / steps, None if agg is None else negative_cos / steps


def summary_rows(results: dict, label: str) -> list[str]:
    lines = []
    for method, runs in results.items():
        values = np.array([r[0] for r in runs])  # seeds x tasks
        cells = "  ".join(
            f"{m:10.4g} +- {s:<9.3g}"
            for m, s in zip(values.mean(axis=0), values.std(axis=0), strict=True)
        )
        proj = np.mean([r[-2] for r in runs])
        neg = "  -  " if runs[0][-1] is None else f"{np.mean([r[-1] for r in runs]):5.2f}"
        lines.append(f"{method:>16}  {label}: {cells}  proj/step {proj:4.2f}  cos<0 {neg}")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--toy-steps", type=int, default=1000)
    parser.add_argument("--reg-steps", type=int, default=1000)
    parser.add_argument("--out", default="benchmarks/results/momentum_pcgrad.txt")
    args = parser.parse_args(argv)
    out_lines: list[str] = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        out_lines.append(line)

    seeds = range(args.seeds)
    tic_all = time.perf_counter()
    emit("PCGrad vs momentum PCGrad (experimental): examples/momentum_pcgrad.py")
    emit(
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"CPU, {torch.get_num_threads()} torch threads; seeds 0..{args.seeds - 1}"
    )
    emit(
        "mean +- std over seeds, per task; proj/step: projections per step (both tasks); "
        "cos<0: fraction of steps whose task gradients had a negative cosine"
    )
    emit("'sum' (plain sum of the task gradients) is a reference, not a contender.")

    for noise in (2.0, 8.0):
        emit()
        emit(
            f"(a) noisy quadratics, d = 20, 2 tasks, SGD lr 0.02, {args.toy_steps} steps, "
            f"gradient noise of norm {noise:g} (true gradients near the optimum: 2.6)"
        )
        final, tailed = {}, {}
        tic = time.perf_counter()
        for method in METHODS:
            runs = [run_quadratics(method, s, args.toy_steps, noise) for s in seeds]
            final[method] = [(r[0], r[2], r[3]) for r in runs]
            tailed[method] = [(r[1], r[2], r[3]) for r in runs]
        emit(f"true losses L_1, L_2 at the last step ({time.perf_counter() - tic:.1f} s):")
        for line in summary_rows(final, "final"):
            emit(line)
        emit("true losses averaged over the last quarter of the steps:")
        for line in summary_rows(tailed, "tail "):
            emit(line)

    emit()
    fewer = (
        " (examples/torch_training.py uses 1500; fewer here to keep the run short on a 2-core CPU)"
        if args.reg_steps < 1500
        else ""
    )
    emit(
        f"(b) GradNorm synthetic regression, sigma = (1, 100), Adam lr 1e-3, batch 100, "
        f"{args.reg_steps} steps{fewer}"
    )
    reg = {}
    tic = time.perf_counter()
    for method in METHODS:
        reg[method] = [run_regression(method, s, args.reg_steps) for s in seeds]
    emit(f"final loss / initial loss, tasks 1, 2 ({time.perf_counter() - tic:.1f} s):")
    for line in summary_rows(reg, "ratio"):
        emit(line)
    emit()
    emit(f"total {time.perf_counter() - tic_all:.0f} s")
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(out_lines) + "\n")
        print(f"written: {path}")


if __name__ == "__main__":
    main()
