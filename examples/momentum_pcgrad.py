"""Does memory of past conflicts help? PCGrad against momentum PCGrad and GradVac, 5 seeds.

Run: .venv/bin/python examples/momentum_pcgrad.py [--quick] [--out results/momentum_pcgrad]
(or ``bash scripts/example.sh momentum_pcgrad`` from a fresh clone). It writes
``runs.csv`` (one row per problem, method, seed and task), ``summary.csv`` (per problem,
method and task: mean and std over the seeds, the paired comparison with PCGrad) and
``final_metrics.png`` (each task's final metric per method: seeds as dots, mean and std
as bars). The full run took 7 minutes (281 s of CPU) on a shared 2-core CPU (load
2 to 4.7); ``--quick`` 25 s there (11 s of CPU).

The question. PCGrad (Yu et al., NeurIPS 2020) decides from this step's gradients
alone: it projects g_i off g_j when their cosine is negative now. Two methods remember
the past. Momentum PCGrad (``solvers.MomentumPCGrad``, experimental, ours, no paper)
projects off the conflict that the bias-corrected moving average of each pair's cosine
expects. GradVac (Wang, Tsvetkov, Firat & Cao, ICLR 2021; ``solvers.GradVac``, beta
0.01) lifts each pair's cosine to a target, the moving average of its past cosines,
instead of to 0. Each seed gives every method the same data, initialisation,
minibatches and gradient noise, so the methods are compared seed by seed: per seed
the improvement over PCGrad in % of PCGrad's value (sign turned so that > 0 is
better), averaged over the tasks, then a two-sided paired t-test over the 5 seeds,
and the comparison with PCGrad's own seed-to-seed spread (its standard deviation over
the seeds, in % of its mean). The plain sum of the losses (``equal``) is the reference.

The problems:

(a) Noisy quadratics: two tasks in R^20, 1/2 (theta - a_i)^T H_i (theta - a_i), a_1 =
    -a_2, H_i diagonal of condition number 10, stiff in different coordinates; each step
    sees the true gradients plus Gaussian noise of norm 2 (the cosine is negative on 99 %
    of the steps) or 8 (on 61 %), as a minibatch would; SGD. Metric: the true losses
    averaged over the last quarter of the 1000 steps.
(b) The GradNorm paper's synthetic regression (Chen et al., ICML 2018, section 4; the
    data and model of examples/torch_training.py, Adam lr 1e-2 as there): two tasks with
    sigma = (1, 100), 1000 steps, and ten with sigma geometric in 1..100, 500 steps.
    Metric: each task's loss on 1000 held-out points over its value at the start.
(c) MultiDigits (examples/multidigits.py, its network and full training): accuracy of
    each digit and the MAE of their sum, on the test pairs.

What the papers report. GradVac's abstract claims "significant model performance gains"
over the monolithic baseline and the gradient-surgery methods it generalises, on
multilingual translation (a 375M-parameter Transformer-Big trained on 64 TPUv3 chips)
and on the XTREME benchmark; its argument is that related tasks have positive gradient
similarities that evolve during training, which PCGrad (target 0, acting only on
negative cosines) ignores. We could not retrieve its result tables with the tools at
hand, so we quote no BLEU numbers of the paper; an independent reimplementation
(github.com/chenllliang/Gradient-Vaccine, README, WMT10 En->Fr/Ro, average BLEU)
reports baseline 33.03, PCGrad 32.93, GradVac with EMA targets (beta 0.01, all layers)
32.74 and GradVac with a fixed target 0.5 33.67. Momentum PCGrad has no paper: whether
it improves on PCGrad is exactly the open question of this example.

What we measured (full run, 5 seeds, improvement over PCGrad in %, mean over tasks):

- Noisy quadratics, noise 2: momentum PCGrad -0.04 (worse on every seed, but by far
  less than the spread of 0.75), GradVac +0.95 (better on 5/5 seeds, p < 1e-4, above the
  spread), the plain sum +1.06. Noise 8: momentum PCGrad +0.99, GradVac +0.71 (both
  better on 5/5 seeds, p <= 0.002, both below the spread of 2.1), the sum +2.39.
- Regression, 2 tasks: momentum PCGrad -2.59 (wins 1/5, p 0.17), GradVac +0.34 (2/5,
  p 0.78): both within the seed noise (spread 4.0); the sum -3.89. 10 tasks: momentum
  PCGrad -0.43 (1/5, p 0.12, within the noise), GradVac +0.61 (5/5, p 0.046, below the
  spread of 0.94; mostly the small-sigma tasks: sigma 1 ends at 1.023 against 1.046);
  the sum -1.38.
- MultiDigits: momentum PCGrad -0.05 (3/5, p 0.96), GradVac -0.75 (2/5, p 0.23): within
  the seed noise (spread 2.4); the sum +1.14 (p 0.26).

The answer: memory of past conflicts does not help in any way that matters here. Of
the ten comparisons, five are within the seed noise, one goes against the memory
(momentum PCGrad on the noise-2 quadratics, by 0.04 %) and four favour it (p < 0.05;
about 0.5 such verdicts are expected by chance among ten). Only one of those four
exceeds PCGrad's own seed-to-seed spread: GradVac on the quadratics with noise 2,
where its targets follow the pair's (negative) average cosine, so it adjusts only
when this step's cosine is below that average and only up to it (1.26 adjustments
per step against PCGrad's 1.99 projections): its step lands closer to the plain sum,
which beats every surgery there. On the two problems with real minibatch noise in a network
(the regressions, MultiDigits) momentum PCGrad is never better than PCGrad and GradVac
is better only on the ten-task regression, by 0.6 %, less than the seed spread. What
the quadratics do show: with noisy conflicts, projecting on the expected conflict
(momentum PCGrad) or towards the remembered cosine (GradVac) consistently beats
projecting on this step's noisy one, by about 1 %.

Where and why this differs from the GradVac paper: its gains are on many related
tasks (tens of language pairs, whose positive similarities GradVac raises) in a model
thousands of times larger trained far longer, with targets per layer; ours are two to
ten tasks, a small network, a few hundred steps, and one target per pair for the whole
shared trunk (``GradVac`` works on the block it is given). The independent
reimplementation above did not find the EMA variant better than PCGrad either.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from paretomtl import solvers
from paretomtl.adapters.torch import Aggregator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gallery
import multidigits
from torch_training import Model, make_data

NAME = "momentum_pcgrad"
METHODS = ("equal", "pcgrad", "momentum-pcgrad", "gradvac")
BASELINE = "pcgrad"
CONTENDERS = ("momentum-pcgrad", "gradvac")
COLORS = {
    "equal": "tab:gray",
    "pcgrad": "tab:blue",
    "momentum-pcgrad": "tab:orange",
    "gradvac": "tab:green",
}
SIGNIFICANCE = 0.05  # two-sided, of the paired t-test over the seeds


@dataclass(frozen=True)
class Size:
    """The sizes of a run (``--quick``: CI's smoke size, the same code path)."""

    seeds: int
    quadratic_steps: int
    regression_steps: tuple[int, int]  # two tasks, ten tasks
    quick: bool  # MultiDigits' own quick size (examples/multidigits.py)


FULL = Size(seeds=5, quadratic_steps=1000, regression_steps=(1000, 500), quick=False)
QUICK = Size(seeds=3, quadratic_steps=100, regression_steps=(20, 10), quick=True)


@dataclass(frozen=True)
class Run:
    """One training run: the final metric per task and what the method did."""

    values: np.ndarray
    projections: float | None  # per step: PCGrad's projections, GradVac's adjustments
    conflicts: float | None  # fraction of the task pairs with a negative cosine, per step
    seconds: float


@dataclass(frozen=True)
class Problem:
    """A multi-task problem: its tasks, the metric of each, how to train on it."""

    key: str
    title: str
    tasks: tuple[str, ...]
    legend: str  # what the numbers are
    metrics: tuple[str, ...]  # per task: what its number is
    higher_is_better: tuple[bool, ...]
    train: Callable[[str, int], Run]
    panels: tuple[tuple[int, ...], ...] = ()  # the figure's task groups (default: by metric)

    def panel_tasks(self) -> list[list[int]]:
        if self.panels:
            return [list(p) for p in self.panels]
        return [
            [t for t, m in enumerate(self.metrics) if m == metric]
            for metric in dict.fromkeys(self.metrics)
        ]


def count(result: solvers.SolverResult) -> int:
    """The step's projections (PCGrad, momentum PCGrad) or adjustments (GradVac)."""
    extras = result.extras
    return extras["projections"] if "projections" in extras else extras["adjustments"]


def negative_pairs(cosines: np.ndarray) -> float:
    """The fraction of task pairs i < j whose gradients have a negative cosine."""
    upper = cosines[np.triu_indices(cosines.shape[0], k=1)]
    return float(np.mean(upper < 0))


def mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


# -- (a) noisy quadratics ----------------------------------------------------------------
QUADRATIC_DIM, QUADRATIC_LR = 20, 0.02


def quadratic_problem(d: int = QUADRATIC_DIM) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two tasks 1/2 (theta - a_i)^T diag(h_i) (theta - a_i): opposite minimisers,
    each stiff (condition number 10) where the other is soft."""
    a = np.ones(d) / np.sqrt(d)
    h1 = np.geomspace(1.0, 10.0, d)
    return [(a, h1), (-a, h1[::-1].copy())]


def quadratic_losses(theta: np.ndarray, problem) -> np.ndarray:
    return np.array([0.5 * np.sum(h * (theta - a) ** 2) for a, h in problem])


def numpy_method(method: str, num_tasks: int, seed: int) -> Callable | None:
    """The method as an object seeded for the run; None for the plain sum."""
    if method == "equal":
        return None
    if solvers.info(method).kind == "stateful-gradient":
        return solvers.method(method, num_tasks=num_tasks, seed=seed)
    return solvers.method(method, seed=seed)


def train_quadratic(method: str, seed: int, *, steps: int, noise: float) -> Run:
    """SGD on the two quadratics with minibatch-like noise of norm about ``noise`` on
    each task gradient (the same noise for every method of a seed). The metric: the
    true (noise-free) losses averaged over the last quarter of the steps."""
    problem = quadratic_problem()
    d = QUADRATIC_DIM
    rng = np.random.default_rng(seed)
    theta = np.tile([2.0, -2.0], d // 2) / np.sqrt(d)
    combine = numpy_method(method, len(problem), seed)
    tail, counts, conflicts = [], [], []
    tic = time.perf_counter()
    for t in range(steps):
        true = np.stack([h * (theta - a) for a, h in problem])
        J = true + noise / np.sqrt(d) * rng.standard_normal(true.shape)
        conflicts.append(float(J[0] @ J[1] < 0))
        if combine is None:
            direction = J.sum(axis=0)
        else:
            result = combine(J)
            direction = result.direction
            counts.append(count(result))
        theta = theta - QUADRATIC_LR * direction
        if t >= steps - steps // 4:
            tail.append(quadratic_losses(theta, problem))
    seconds = time.perf_counter() - tic
    return Run(np.mean(tail, axis=0), mean_or_none(counts), float(np.mean(conflicts)), seconds)


# -- (b) the GradNorm paper's synthetic regression ------------------------------------------
REGRESSION_TRAIN, REGRESSION_TEST, REGRESSION_LR, REGRESSION_BATCH = 4000, 1000, 1e-2, 100
TEN_SIGMAS = tuple(float(s) for s in np.geomspace(1.0, 100.0, 10))


def mse_per_task(model: Model, x: torch.Tensor, ys: Sequence[torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        preds = model(x)
    return np.array([float(torch.mean((p - y) ** 2)) for p, y in zip(preds, ys, strict=True)])


@functools.lru_cache(maxsize=1)
def regression_data(sigmas: tuple[float, ...], seed: int) -> tuple[torch.Tensor, list]:
    """examples/torch_training.py's data of ``seed``, 4000 training and 1000 held-out
    points (the same for every method of a seed; the runs never modify it)."""
    return make_data(list(sigmas), n=REGRESSION_TRAIN + REGRESSION_TEST, seed=seed)


def train_regression(method: str, seed: int, *, sigmas: tuple[float, ...], steps: int) -> Run:
    """examples/torch_training.py's data and model, trained with Adam through the torch
    adapter; the metric: each task's held-out loss at the end over its loss at the
    initialisation (the scale sigma_i^2 cancels)."""
    x, ys = regression_data(sigmas, seed)
    x_test, ys_test = x[REGRESSION_TRAIN:], [y[REGRESSION_TRAIN:] for y in ys]
    model = Model(len(sigmas), seed=seed)
    initial = mse_per_task(model, x_test, ys_test)
    opt = torch.optim.Adam(model.parameters(), lr=REGRESSION_LR)
    shared = list(model.trunk.parameters())
    agg = None if method == "equal" else Aggregator(method, seed=seed, num_tasks=len(sigmas))
    g = torch.Generator().manual_seed(seed)
    counts, conflicts = [], []
    tic = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, REGRESSION_TRAIN, (REGRESSION_BATCH,), generator=g)
        losses = [torch.mean((p - y[idx]) ** 2) for p, y in zip(model(x[idx]), ys, strict=True)]
        opt.zero_grad()
        if agg is None:
            sum(losses).backward()  # one backward: no task gradients, no cosines
        else:
            info = agg.backward(losses, shared)
            counts.append(count(info.result))
            conflicts.append(negative_pairs(info.cosines))
        opt.step()
    seconds = time.perf_counter() - tic
    final = mse_per_task(model, x_test, ys_test)
    return Run(final / initial, mean_or_none(counts), mean_or_none(conflicts), seconds)


# -- (c) MultiDigits (examples/multidigits.py) --------------------------------------------
@functools.lru_cache(maxsize=1)
def digits_data(seed: int, quick: bool) -> multidigits.Data:
    return multidigits.make_data(seed, quick=quick)


def train_digits(method: str, seed: int, *, quick: bool) -> Run:
    """examples/multidigits.py's network and training, its test metrics. Its rows'
    names are the registry's: ``equal`` is one backward of the summed losses."""
    result = multidigits.train(method, seed, digits_data(seed, quick), quick=quick)
    values = np.array([result[multidigits.METRIC_OF_TASK[t]] for t in multidigits.TASKS])
    seconds = result["seconds_per_step"] * result["steps"]
    return Run(values, result["projections"], None, seconds)


def problems(size: Size) -> list[Problem]:
    reg2, reg10 = size.regression_steps
    digits = multidigits.QUICK if size.quick else multidigits.FULL
    quadratic = "true loss, mean of the last quarter of the steps"
    ratio = "held-out loss / its initial value"
    regression = f"Adam lr {REGRESSION_LR:g}, batch {REGRESSION_BATCH}"
    quadratics = [
        Problem(
            key=f"quadratics-noise-{noise:g}",
            title=f"(a) noisy quadratics, 2 tasks, d = {QUADRATIC_DIM}, gradient noise of norm "
            f"{noise:g} (true gradients near the optimum: 2.6), SGD lr {QUADRATIC_LR:g}, "
            f"{size.quadratic_steps} steps",
            legend=f"{quadratic} (lower is better)",
            tasks=("L1", "L2"),
            metrics=(quadratic,) * 2,
            higher_is_better=(False, False),
            train=functools.partial(train_quadratic, steps=size.quadratic_steps, noise=noise),
        )
        for noise in (2.0, 8.0)
    ]
    return [
        *quadratics,
        Problem(
            key="regression-2-tasks",
            title=f"(b) GradNorm synthetic regression, 2 tasks, sigma = (1, 100), {regression}, "
            f"{reg2} steps",
            legend=f"{ratio} (lower is better)",
            tasks=("sigma 1", "sigma 100"),
            metrics=(ratio,) * 2,
            higher_is_better=(False, False),
            train=functools.partial(train_regression, sigmas=(1.0, 100.0), steps=reg2),
            panels=((0,), (1,)),  # their ratios differ too much for one axis
        ),
        Problem(
            key="regression-10-tasks",
            title=f"(b) GradNorm synthetic regression, 10 tasks, sigma = 1..100 (geometric), "
            f"{regression}, {reg10} steps",
            legend=f"{ratio} (lower is better), tasks by sigma",
            tasks=tuple(f"{s:.3g}" for s in TEN_SIGMAS),
            metrics=(ratio,) * 10,
            higher_is_better=(False,) * 10,
            train=functools.partial(train_regression, sigmas=TEN_SIGMAS, steps=reg10),
        ),
        Problem(
            key="multidigits",
            title=f"(c) MultiDigits (examples/multidigits.py), {digits.train_pairs} training "
            f"pairs, Adam lr {digits.lr:g}, batch {digits.batch}, {digits.steps} steps",
            legend="test accuracy of each digit (higher is better), test MAE of their sum "
            "in digits (lower is better)",
            tasks=multidigits.TASKS,
            metrics=("test accuracy", "test accuracy", "test MAE of the sum (digits)"),
            higher_is_better=tuple(
                multidigits.HIGHER_IS_BETTER[multidigits.METRIC_OF_TASK[t]]
                for t in multidigits.TASKS
            ),
            train=functools.partial(train_digits, quick=size.quick),
        ),
    ]


# -- statistics ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paired:
    """A method against PCGrad on the same seeds: per seed, its improvement in % of
    PCGrad's value (positive: better; the mean over the tasks for a problem's overall
    figure), the paired t-test of those, and PCGrad's own seed-to-seed spread (its
    standard deviation over the seeds in % of its mean, likewise averaged)."""

    per_seed: np.ndarray
    p_value: float
    spread: float

    @property
    def wins(self) -> int:
        return int(np.sum(self.per_seed > 0))

    @property
    def verdict(self) -> str:
        mean = self.per_seed.mean()
        if not self.p_value < SIGNIFICANCE:  # nan (identical runs) is no evidence either
            return "within the seed noise"
        word = "better" if mean > 0 else "worse"
        if abs(mean) < self.spread:
            return f"{word} (paired), by less than the seed spread"
        return word


def improvement(problem: Problem, mine: np.ndarray, base: np.ndarray) -> np.ndarray:
    """seeds x tasks: (mine - base) / |base| in %, the sign turned so that > 0 is better."""
    sign = np.where(problem.higher_is_better, 1.0, -1.0)
    return 100.0 * sign * (mine - base) / np.abs(base)


def values_of(runs: dict, method: str) -> np.ndarray:
    """seeds x tasks."""
    return np.array([r.values for r in runs[method]])


def against_pcgrad(problem: Problem, runs: dict, method: str, task: int | None) -> Paired:
    """``method`` against PCGrad on ``task`` (None: the mean over the tasks)."""
    base = values_of(runs, BASELINE)
    gain = improvement(problem, values_of(runs, method), base)
    spread = 100.0 * base.std(axis=0) / np.abs(base.mean(axis=0))
    columns = slice(None) if task is None else [task]
    per_seed = gain[:, columns].mean(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance: p is nan
        p = float(stats.ttest_1samp(per_seed, 0.0).pvalue) if len(per_seed) > 1 else np.nan
    return Paired(per_seed, p, float(spread[columns].mean()))


def summary_rows(problem: Problem, runs: dict) -> list[dict]:
    """Per method and task (and 'all': the mean over the tasks of the improvement
    over PCGrad): mean and std over the seeds, and the paired comparison with PCGrad."""
    rows = []
    for method in METHODS:
        values = values_of(runs, method)
        for t, task in [*enumerate(problem.tasks), (None, "all")]:
            paired = against_pcgrad(problem, runs, method, t)
            own = paired.per_seed if t is None else values[:, t]
            compared = method != BASELINE
            rows.append(
                {
                    "problem": problem.key,
                    "method": method,
                    "task": task,
                    "metric": "improvement over pcgrad, %" if t is None else problem.metrics[t],
                    "mean": float(own.mean()),
                    "std": float(own.std()),
                    "vs_pcgrad_percent": float(paired.per_seed.mean()),
                    "vs_pcgrad_percent_std": float(paired.per_seed.std()),
                    "pcgrad_spread_percent": paired.spread,
                    "wins": paired.wins if compared else "",
                    "p_value": paired.p_value if compared else "",
                    "verdict": paired.verdict if compared else "",
                }
            )
    return rows


# -- output ------------------------------------------------------------------------------
def format_problem(problem: Problem, runs: dict, seeds: int) -> list[str]:
    wide = len(problem.tasks) > 3  # means only; the std is in summary.csv
    width = 7 if wide else 18
    lines = [
        problem.title,
        f"  {problem.legend}; mean {'(std in summary.csv)' if wide else '+- std'} over "
        f"{seeds} seeds",
        f"  {'method':>15} "
        + "".join(f"{t:>{width}}" for t in problem.tasks)
        + f"  {'proj/step':>9}  {'cos<0':>5}  {'seconds':>7}",
    ]
    for method in METHODS:
        values = values_of(runs, method)
        if wide:
            cells = "".join(f"{m:{width}.3f}" for m in values.mean(axis=0))
        else:
            cells = "".join(
                f"{f'{m:.4g} +- {s:.2g}':>{width}}"
                for m, s in zip(values.mean(axis=0), values.std(axis=0), strict=True)
            )
        proj, conf = ([getattr(r, k) for r in runs[method]] for k in ("projections", "conflicts"))
        proj_cell = "-" if proj[0] is None else f"{np.mean(proj):.2f}"
        conf_cell = "-" if conf[0] is None else f"{np.mean(conf):.2f}"
        secs = np.mean([r.seconds for r in runs[method]])
        lines.append(f"  {method:>15} {cells}  {proj_cell:>9}  {conf_cell:>5}  {secs:7.1f}")
    lines.append(
        "  against PCGrad, paired by seed: improvement in % of PCGrad's value, mean over the "
        "tasks (> 0: better)"
    )
    for method in (m for m in METHODS if m != BASELINE):
        paired = against_pcgrad(problem, runs, method, None)
        seeds_cell = " ".join(f"{v:+.2f}" for v in paired.per_seed)
        lines.append(
            f"  {method:>15}  seeds {seeds_cell}  mean {paired.per_seed.mean():+.2f}"
            f" (spread {paired.spread:.2f})  wins {paired.wins}/{seeds}  "
            f"p {paired.p_value:.3f}  {paired.verdict}"
        )
    return lines


def mosaic(widths: Sequence[int], cols: int) -> list[list[str]]:
    """subplot_mosaic's layout: panel i (named str(i)) spans widths[i] columns, in rows
    of ``cols``, a panel that does not fit starting a new row."""
    rows, row = [], []
    for i, width in enumerate(widths):
        if len(row) + width > cols:
            rows.append(row + ["."] * (cols - len(row)))
            row = []
        row += [str(i)] * width
    return [*rows, row + ["."] * (cols - len(row))]


def plot(problem_runs: Sequence[tuple[Problem, dict]], path: Path) -> Path:
    """One panel per problem and group of tasks: each task's final metric per method,
    the seeds as dots, the mean as a bar with the standard deviation."""
    plt = _gallery.pyplot()
    panels = [
        (problem, runs, tasks) for problem, runs in problem_runs for tasks in problem.panel_tasks()
    ]
    layout = mosaic([2 if len(tasks) > 4 else 1 for _, _, tasks in panels], cols=4)
    fig, axes = plt.subplot_mosaic(layout, figsize=(16, 4.2 * len(layout)))
    offsets = np.linspace(-0.3, 0.3, len(METHODS))
    for i, (problem, runs, tasks) in enumerate(panels):
        ax = axes[str(i)]
        for offset, method in zip(offsets, METHODS, strict=True):
            values = values_of(runs, method)[:, tasks]
            x = np.arange(len(tasks)) + offset
            color = COLORS[method]
            for column, xi in zip(values.T, x, strict=True):
                ax.scatter(np.full(len(column), xi), column, s=9, color=color, alpha=0.45, lw=0)
            ax.errorbar(
                x,
                values.mean(axis=0),
                yerr=values.std(axis=0),
                fmt="_",
                ms=12,
                color=color,
                lw=1.2,
                capsize=2,
                label=method,
            )
        ax.set_xticks(range(len(tasks)), [problem.tasks[t] for t in tasks], fontsize=8)
        better = "higher" if problem.higher_is_better[tasks[0]] else "lower"
        ax.set_ylabel(f"{problem.metrics[tasks[0]]}\n({better} is better)", fontsize=8)
        ax.set_title(problem.key + (" (tasks by sigma)" if len(tasks) > 4 else ""), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes["0"].legend(fontsize=8)
    fig.suptitle("Final metric per task: seeds as dots, mean and std as bars", fontsize=10)
    fig.tight_layout()
    return _gallery.save(fig, path)


def run_problem(problem: Problem, seeds: int) -> dict:
    """method -> [Run per seed]."""
    runs: dict = {m: [] for m in METHODS}
    jobs = [(seed, method) for seed in range(seeds) for method in METHODS]
    for seed, method in _gallery.progress(jobs, total=len(jobs), desc=problem.key):
        runs[method].append(problem.train(method, seed))
    return runs


def run_rows(problem: Problem, runs: dict) -> list[dict]:
    """The runs CSV's rows: one per problem, method, seed and task."""
    return [
        {
            "problem": problem.key,
            "method": method,
            "seed": seed,
            "task": task,
            "metric": problem.metrics[t],
            "value": float(run.values[t]),
            "projections_per_step": "" if run.projections is None else run.projections,
            "negative_cosine_fraction": "" if run.conflicts is None else run.conflicts,
            "seconds": run.seconds,
        }
        for method in METHODS
        for seed, run in enumerate(runs[method])
        for t, task in enumerate(problem.tasks)
    ]


def verdict_lines(summary: Sequence[dict]) -> list[str]:
    lines = ["Against PCGrad, per problem (mean over the tasks of the improvement in %):"]
    for method in CONTENDERS:
        mine = [r for r in summary if r["method"] == method and r["task"] == "all"]
        lines.append(f"  {method}:")
        lines += [f"    {r['problem']:>20} {r['mean']:+6.2f}  {r['verdict']}" for r in mine]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = _gallery.parser(NAME, __doc__)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: threads do not pay, and one thread is reproducible
    size = QUICK if args.quick else FULL
    out = _gallery.out_dir(args.out)
    print(
        f"PCGrad against momentum PCGrad and GradVac (memory of past conflicts): seeds "
        f"0..{size.seeds - 1}, each seed the same data, initialisation, minibatches and "
        f"noise for every method"
    )
    print(
        "'equal' (the plain sum of the losses) is a reference, not a contender; proj/step: "
        "PCGrad's projections (GradVac's adjustments) per step; cos<0: fraction of the task "
        "pairs whose gradients conflict, per step (the torch runs of MultiDigits do not "
        "report it); seconds: per run"
    )
    tic = time.perf_counter()
    problem_runs, all_runs, summary = [], [], []
    for problem in problems(size):
        runs = run_problem(problem, size.seeds)
        problem_runs.append((problem, runs))
        all_runs += run_rows(problem, runs)
        summary += summary_rows(problem, runs)
        print()
        for line in format_problem(problem, runs, size.seeds):
            print(line, flush=True)
    print()
    for line in verdict_lines(summary):
        print(line)
    print(
        f"p: two-sided paired t-test over the seeds; 'better'/'worse' where p < {SIGNIFICANCE} "
        f"(with {len(CONTENDERS) * len(problem_runs)} tests, about "
        f"{SIGNIFICANCE * len(CONTENDERS) * len(problem_runs):.1f} such verdicts are expected "
        f"by chance alone); spread: PCGrad's own standard deviation over the seeds, in % of "
        f"its mean"
    )
    print()
    print(f"runs: {_gallery.write_csv(out / 'runs.csv', all_runs)}")
    print(f"summary: {_gallery.write_csv(out / 'summary.csv', summary)}")
    plot(problem_runs, out / "final_metrics.png")
    print(f"total {time.perf_counter() - tic:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
