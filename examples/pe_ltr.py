"""PE-LTR's Pareto step with lower bounds on the weights, on a synthetic click/purchase ranker.

Run: .venv/bin/python examples/pe_ltr.py [--quick] [--out results/pe_ltr]
(or ``bash scripts/example.sh pe_ltr`` from a fresh clone). Writes weights.csv,
tradeoff.csv and pe_ltr.png (two panels) under ``--out``; about 15 s of CPU.

PE-LTR (Lin, Chen, Pei, Sun, Ou, Zhang & Jiang, "A Pareto-Efficient Algorithm for
Multiple Objective Optimization in E-Commerce Recommendation", RecSys 2019) trains one
ranking model on several objectives (GMV and CTR on Taobao) with the weights of each
step from MGDA's min-norm problem under lower bounds,
min ||sum_i w_i g_i||^2 s.t. w_i >= c_i, sum_i w_i = 1: c says how much each objective
must at least count. ``paretomtl.solvers.pareto_step`` solves it exactly
(``method="pe-ltr"`` is the paper's two-stage route: the equality-constrained optimum,
then a projection).

The problem (numpy, seed 0): impressions with 20 Gaussian features and one shared
logistic model, score s = x.theta + b. Clicks follow P(click) = sigmoid(x.a - 1.8)
(features 0-9); a purchase needs a click, then P(buy | click) = sigmoid(x.p - 1.5),
where p reverses a on features 5-9 (what draws clicks there deters purchases) and
adds features 10-14: 24 % clicks and 4.3 % purchases. The two objectives are the
mean logistic losses of the same score on the click labels and on the purchase
labels, so they conflict. Training: full-batch gradient descent, 300 steps of 4.0
from theta = 0, on 10000 impressions (AUCs on 10000 others).

(a) Bounds that bind: c = (0.2, 0.6) (click, purchase). At every step the script
    checks (and stops if not) that the applied weights satisfy w_i >= c_i and sum to
    1, and records the weights MGDA (c = 0) would take at the same iterate, and the
    weights of MGDA's own run.
(b) The trade-off curve: the final losses as the bound sweeps 0..1 on the click
    weight, c = (c, 0), and on the purchase weight, c = (0, c); beside them linear
    scalarisation with the fixed weights (c, 1 - c), and the exact front (the
    minimisers of the weighted sums by L-BFGS: both losses are convex in theta, so
    every Pareto point is one of them).

What the paper reports. Its abstract: a condition that ensures Pareto efficiency and
"a two-step Pareto efficient optimization algorithm", which "can be easily adapted for
Pareto Frontier generation", validated by offline and online experiments on Taobao's
recommender (GMV and CTR). The paper's text beyond its abstract, and so its tables and
figures, were not available to us (the authors' demo, github.com/jackielinxiao/PE-LTR,
has no results): no number of the paper is quoted here, and ours, on synthetic data,
are not comparable to GMV or CTR.

What we measured (full run). (a) min over all steps of w_i - c_i is 0 and
|sum w - 1| <= 1e-16: the bounds hold at every step. MGDA's weights at the same
iterates give purchases less than 0.6 at every step (0 at step 0; strictly, by more
than 1e-12, at the first 142 steps; after that the run has converged, to 1e-12, onto
the point of linear scalarisation with (0.4, 0.6), whose supporting weights are c
itself, so MGDA's weights there equal c). The final losses (0.4673, 0.2067) are
L-BFGS's for (0.4, 0.6) to 5 digits; MGDA's own run ends at (0.3790, 0.3687) with a
purchase weight of 0.094. The paper's two-stage route gives the same weights at
every step (to 6e-16): with two objectives its projection is a clip of a
one-dimensional problem, which is exact. (b) All 63 runs end on the exact front
(within 1.2e-6). A click bound changes nothing until it exceeds the 0.906 that MGDA
gives clicks anyway; from c = 0.95 the point is linear scalarisation's for (c, 1 - c).
A purchase bound acts from the smallest c, and from c = 0.4 on its point is linear
scalarisation's for (1 - c, c). Together the two sweeps trace the front from the
click-only model (test AUCs 0.860 click, 0.655 purchase) to the purchase-only one
(0.630, 0.828).

Why the small purchase bounds act at all, and where MGDA ends: with one score for
both losses, L_click - L_purchase = -(1/n) sum_i (click_i - purchase_i) s_i is linear
in theta, so g_click - g_purchase is the same at every step, and MGDA's min-norm
direction is orthogonal to it whenever both weights are positive: such steps leave
L_click - L_purchase unchanged. MGDA's first step takes the click gradient alone
(purchase weight 0) and sets the difference to 0.0103; the rest of its run keeps it,
so MGDA ends where the front has L_click - L_purchase = 0.0103, a balance no one asked
for. A purchase bound c > 0 changes that first step, hence the end point; the bounds
are how PE-LTR states the balance wanted.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.stats import rankdata

from paretomtl import solvers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gallery

SEED = 0
N_FEATURES = 20
LEARNING_RATE = 4.0
BOUNDS = (0.2, 0.6)  # (click, purchase): part (a)
OBJECTIVES = ("click", "purchase")


# -- the synthetic data ----------------------------------------------------------------
@dataclass(frozen=True)
class Impressions:
    """Feature rows (last column 1, the intercept) and the two label vectors, as 0/1."""

    features: np.ndarray  # (n, N_FEATURES + 1)
    labels: np.ndarray  # (2, n): clicks, purchases


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def make_data(n_train: int, n_test: int, seed: int = SEED) -> tuple[Impressions, Impressions]:
    """Train and test impressions from one generator: clicks, then purchases among them."""
    rng = np.random.default_rng(seed)
    click_w = np.zeros(N_FEATURES)
    click_w[:10] = rng.normal(0.0, 0.8, 10)
    buy_w = np.zeros(N_FEATURES)
    buy_w[5:10] = -click_w[5:10]  # what draws clicks there deters purchases
    buy_w[10:15] = rng.normal(0.0, 0.8, 5)

    def draw(n: int) -> Impressions:
        x = rng.standard_normal((n, N_FEATURES))
        click = rng.random(n) < sigmoid(x @ click_w - 1.8)
        purchase = click & (rng.random(n) < sigmoid(x @ buy_w - 1.5))
        return Impressions(np.c_[x, np.ones(n)], np.stack([click, purchase]).astype(float))

    return draw(n_train), draw(n_test)


# -- the two objectives -------------------------------------------------------------
def losses(theta: np.ndarray, data: Impressions) -> np.ndarray:
    """(2,) mean logistic losses of the score x.theta on the click and purchase labels."""
    s = data.features @ theta
    return np.mean(np.logaddexp(0.0, s)[None, :] - data.labels * s, axis=1)


def gradients(theta: np.ndarray, data: Impressions) -> np.ndarray:
    """(2, d + 1) their gradients: X^T (sigmoid(s) - y) / n, one row per objective."""
    s = data.features @ theta
    return (sigmoid(s)[None, :] - data.labels) @ data.features / len(s)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties given their mean rank."""
    positive = labels > 0
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def exact_point(weights: np.ndarray, data: Impressions) -> np.ndarray:
    """The losses at the minimiser of weights . L (convex): a point of the exact front."""
    result = minimize(
        lambda th: (float(weights @ losses(th, data)), weights @ gradients(th, data)),
        np.zeros(data.features.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-11, "ftol": 1e-15, "maxiter": 5000},
    )
    return losses(result.x, data)


# -- training --------------------------------------------------------------------------
@dataclass
class Run:
    """One training run: the final model and, per step, the weights and losses."""

    bounds: tuple[float, float] | None  # None: linear scalarisation with fixed weights
    theta: np.ndarray
    applied: np.ndarray  # (steps, 2) the weights of each step
    mgda: np.ndarray  # (steps, 2) MGDA's weights at the same iterate (nan for linear)
    losses: np.ndarray  # (steps, 2) the losses before each step
    two_stage_gap: float  # largest weight difference to the paper's two-stage route

    @property
    def binding(self) -> np.ndarray:
        """Per step: whether MGDA's weights violate the bounds (the bounds change the step)."""
        if self.bounds is None:
            return np.zeros(len(self.applied), dtype=bool)
        return (self.mgda < np.array(self.bounds) - 1e-12).any(axis=1)


def check_weights(w: np.ndarray, bounds: tuple[float, float], step: int) -> None:
    """The Pareto step's promise, checked at every step: w >= c and sum w = 1."""
    if not ((w >= np.array(bounds) - 1e-12).all() and abs(w.sum() - 1.0) <= 1e-12):
        raise AssertionError(f"step {step}: weights {w} break the bounds {bounds} or sum != 1")


def train(
    data: Impressions,
    steps: int,
    bounds: tuple[float, float] | None = None,
    fixed: np.ndarray | None = None,
    compare_two_stage: bool = False,
) -> Run:
    """Gradient descent from theta = 0 with the Pareto step under ``bounds``, or with
    the ``fixed`` weights (linear scalarisation)."""
    theta = np.zeros(data.features.shape[1])
    step_rule = None if bounds is None else solvers.method("pareto-step", lower_bounds=bounds)
    applied, mgda, history = np.empty((steps, 2)), np.full((steps, 2), np.nan), []
    two_stage_gap = 0.0
    for t in range(steps):
        history.append(losses(theta, data))
        J = gradients(theta, data)
        if step_rule is None:
            w = fixed
        else:
            w = step_rule(J).weights
            check_weights(w, bounds, t)
            mgda[t] = solvers.mgda(J).weights
            if compare_two_stage:
                paper = solvers.pareto_step(J, lower_bounds=bounds, method="pe-ltr").weights
                two_stage_gap = max(two_stage_gap, float(np.abs(paper - w).max()))
        applied[t] = w
        theta = theta - LEARNING_RATE * (w @ J)
    return Run(bounds, theta, applied, mgda, np.array(history), two_stage_gap)


# -- the two parts ---------------------------------------------------------------------
def part_a(train_set: Impressions, steps: int) -> tuple[Run, Run, list[dict]]:
    """The Pareto step under BOUNDS, and MGDA's own run (c = 0) beside it."""
    run = train(train_set, steps, bounds=BOUNDS, compare_two_stage=True)
    alone = train(train_set, steps, bounds=(0.0, 0.0))
    rows = [
        {
            "step": t,
            "w_click": float(run.applied[t, 0]),
            "w_purchase": float(run.applied[t, 1]),
            "mgda_click_here": float(run.mgda[t, 0]),
            "mgda_purchase_here": float(run.mgda[t, 1]),
            "bound_binds": bool(run.binding[t]),
            "click_loss": float(run.losses[t, 0]),
            "purchase_loss": float(run.losses[t, 1]),
            "mgda_run_w_click": float(alone.applied[t, 0]),
            "mgda_run_click_loss": float(alone.losses[t, 0]),
            "mgda_run_purchase_loss": float(alone.losses[t, 1]),
        }
        for t in range(steps)
    ]
    return run, alone, rows


def sweep_runs(train_set: Impressions, steps: int, values: np.ndarray):
    """For each bound value c: the click bound (c, 0), the purchase bound (0, c) and
    linear scalarisation with (c, 1 - c)."""
    for c in values:
        c = float(c)
        yield "click bound", c, train(train_set, steps, bounds=(c, 0.0))
        yield "purchase bound", c, train(train_set, steps, bounds=(0.0, c))
        yield "linear", c, train(train_set, steps, fixed=np.array([c, 1.0 - c]))


def tradeoff_row(series: str, c: float, run: Run, train_set, test_set) -> dict:
    final = losses(run.theta, train_set)
    w = run.applied[-1]
    scores = test_set.features @ run.theta
    return {
        "series": series,
        "c": c,
        "w_click": float(w[0]),
        "w_purchase": float(w[1]),
        "click_loss": float(final[0]),
        "purchase_loss": float(final[1]),
        "gap_to_front": float(np.abs(final - exact_point(w, train_set)).max()),
        "click_auc": auc(scores, test_set.labels[0]),
        "purchase_auc": auc(scores, test_set.labels[1]),
        "binding_steps": int(run.binding.sum()),
        "mgda_click_end": float(run.mgda[-1, 0]),
    }


# -- output --------------------------------------------------------------------------
def report_a(run: Run, alone: Run, train_set: Impressions) -> None:
    c = np.array(BOUNDS)
    strict = int(run.binding.sum())
    never_above = bool((run.mgda[:, 1] <= c[1] + 1e-12).all())
    print(f"(a) Pareto step with c = {BOUNDS} (click, purchase), {len(run.applied)} steps")
    print(
        f"    min over steps of min_i (w_i - c_i) = {(run.applied - c).min():.2e}; "
        f"max |sum w - 1| = {np.abs(run.applied.sum(axis=1) - 1.0).max():.1e}"
    )
    print(
        f"    MGDA's weights at the same iterates: purchase weight {run.mgda[0, 1]:.3f} at "
        f"step 0, below c = {c[1]} by more than 1e-12 at {strict} of {len(run.applied)} steps"
        f"{', never above it' if never_above else ''}"
    )
    print(
        "    (once the run has converged, onto the point whose supporting weights are c, "
        "MGDA's weights there equal c)"
    )
    final, exact = losses(run.theta, train_set), exact_point(run.applied[-1], train_set)
    print(
        f"    final weights {np.round(run.applied[-1], 4)}, losses {np.round(final, 5)}; "
        f"L-BFGS on those weights {np.round(exact, 5)}"
    )
    print(
        f"    MGDA alone (c = 0): final weights {np.round(alone.applied[-1], 4)}, losses "
        f"{np.round(losses(alone.theta, train_set), 5)}"
    )
    print(
        "    the paper's two-stage route (method='pe-ltr') differs by at most "
        f"{run.two_stage_gap:.1e} in any weight"
    )


def report_b(rows: list[dict]) -> None:
    print("\n(b) final train losses (test AUCs for linear) as the bound c sweeps 0..1")
    print(
        f"{'':>5} | {'click bound (c, 0)':^25} | {'purchase bound (0, c)':^25} | "
        f"{'linear, weights (c, 1 - c)':^36}".rstrip()
    )
    print(
        f"{'c':>5} | {'w_click':>7} {'L_click':>8} {'L_purch':>8} | {'w_click':>7} {'L_click':>8} "
        f"{'L_purch':>8} | {'L_click':>8} {'L_purch':>8} {'AUC_clk':>8} {'AUC_pur':>8}"
    )
    by = {(r["series"], r["c"]): r for r in rows}
    for c in sorted({r["c"] for r in rows}):
        cells = []
        for series in ("click bound", "purchase bound"):
            r = by[series, c]
            cells.append(f"{r['w_click']:>7.3f} {r['click_loss']:>8.4f} {r['purchase_loss']:>8.4f}")
        r = by["linear", c]
        cells.append(
            f"{r['click_loss']:>8.4f} {r['purchase_loss']:>8.4f} {r['click_auc']:>8.4f} "
            f"{r['purchase_auc']:>8.4f}"
        )
        print(f"{c:>5.2f} | " + " | ".join(cells))
    worst = max(rows, key=lambda r: r["gap_to_front"])
    print(
        f"largest gap to the exact front (L-BFGS at the run's final weights), over all "
        f"{len(rows)} runs: {worst['gap_to_front']:.1e} ({worst['series']}, c = {worst['c']:.2f})"
    )


def plot(run: Run, alone: Run, rows: list[dict], front: np.ndarray, path: Path) -> None:
    plt = _gallery.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    steps = np.arange(1, len(run.applied) + 1)  # step t applies its weights t-th
    for i, (name, color) in enumerate(zip(OBJECTIVES, ("tab:blue", "tab:red"), strict=True)):
        left.plot(steps, run.applied[:, i], color=color, lw=2, label=f"applied $w_{{{name}}}$")
        left.plot(steps, run.mgda[:, i], color=color, ls="--", lw=1.2, label=f"MGDA $w_{{{name}}}$")
        left.axhline(BOUNDS[i], color=color, ls=":", lw=1.2, label=f"bound $c_{{{name}}}$")
    left.plot(steps, alone.applied[:, 1], color="0.5", lw=1, label="$w_{purchase}$ of MGDA's run")
    left.set(
        xscale="log",
        xlabel="step (log scale)",
        ylabel="weight",
        ylim=(0, 1),
        title=f"(a) weights with c = {BOUNDS}",
    )
    left.legend(fontsize=7.5, loc="upper right", ncol=2)

    right.plot(*front.T, color="k", lw=1.2, label="exact front (L-BFGS)")
    markers = {
        "linear": ("x", "0.3"),
        "click bound": ("o", "tab:blue"),
        "purchase bound": ("s", "tab:red"),
    }
    for series, (marker, color) in markers.items():
        pts = np.array(
            [(r["click_loss"], r["purchase_loss"]) for r in rows if r["series"] == series]
        )
        filled = {"facecolors": "none", "edgecolors": color} if marker != "x" else {"c": color}
        right.scatter(*pts.T, marker=marker, s=45, label=series, **filled)
    right.scatter(*alone.losses[-1], marker="D", s=60, color="0.5", zorder=5, label="MGDA (c = 0)")
    final = run.losses[-1]
    right.scatter(
        *final,
        marker="*",
        s=160,
        color="gold",
        edgecolors="k",
        zorder=5,
        label=f"(a): c = {BOUNDS}",
    )
    right.set(
        xlabel="click loss (train)",
        ylabel="purchase loss (train)",
        title="(b) final losses as the bound c sweeps 0..1",
    )
    right.legend(fontsize=8)
    _gallery.save(fig, path)


def main(argv=None) -> None:
    args = _gallery.parser("pe_ltr", __doc__).parse_args(argv)
    out = _gallery.out_dir(args.out)
    n, steps, n_values = (2000, 100, 5) if args.quick else (10000, 300, 21)
    train_set, test_set = make_data(n, n)
    rates = train_set.labels.mean(axis=1)
    print(
        f"synthetic impressions: {n} train, {n} test, {N_FEATURES} features; "
        f"clicks {rates[0]:.1%}, purchases {rates[1]:.1%} (train)"
    )
    print(f"full-batch gradient descent, {steps} steps of {LEARNING_RATE}, from theta = 0\n")
    tic = time.perf_counter()
    run, alone, weight_rows = part_a(train_set, steps)
    report_a(run, alone, train_set)
    values = np.linspace(0.0, 1.0, n_values)
    rows = [
        tradeoff_row(series, c, r, train_set, test_set)
        for series, c, r in _gallery.progress(
            sweep_runs(train_set, steps, values), total=3 * n_values, desc="sweep"
        )
    ]
    report_b(rows)
    front = np.array([exact_point(np.array([w, 1 - w]), train_set) for w in np.linspace(0, 1, 41)])
    print(f"\ntotal {time.perf_counter() - tic:.1f} s")
    print(f"table: {_gallery.write_csv(out / 'weights.csv', weight_rows)}")
    print(f"table: {_gallery.write_csv(out / 'tradeoff.csv', rows)}")
    plot(run, alone, rows, front, out / "pe_ltr.png")


if __name__ == "__main__":
    main()
