"""Pareto MTL and EPO on their two-objective toy: one Pareto point per preference ray.

Run: .venv/bin/python examples/preference_toy.py [--quick] [--out results/preference_toy]
(or ``bash scripts/example.sh preference_toy`` from a fresh clone). Writes points.csv
(one row per run) and preference_toy.png (two panels) under ``--out``; about 4 s of CPU.

The problem (``paretomtl.problems.ParetoMTLToy``, d = 20 as in both papers' code):
f_1 = 1 - exp(-||x - a||^2), f_2 = 1 - exp(-||x + a||^2), a = (1, ..., 1) / sqrt(d),
whose front is concave and known in closed form: sqrt(-ln(1 - f_1)) +
sqrt(-ln(1 - f_2)) = 2. Starts are drawn as the authors' code draws them,
x ~ U(-0.5, 0.5)^d, one per run (seed 0).

(1) Pareto MTL (Lin, Zhen, Li, Zhang & Kwong, NeurIPS 2019, section 5 and Figure 2).
    Ten unit preference vectors u_k = (cos a_k, sin a_k), a_k evenly spaced in
    [0, pi/2] (the paper's "10 runs"; ``circle_points`` in its code). They cut the
    objective space into sub-regions, the cones of the points closer in angle to u_k
    than to any other u_j, bounded by the bisectors of neighbouring vectors (shaded
    in the figure); run k must end on the front inside cone k. ``trace`` takes EPO
    style rays r (the point where r_i f_i is equal), and for two objectives the ray
    with direction u is r proportional to (u_2, u_1). Against it, linear
    scalarisation with random weights w ~ U(0, 1), (w, 1 - w): the paper's Figure
    2(a) (100 runs).
(2) EPO (Mahapatra & Rajan, ICML 2020): four preference vectors r = (cos t, sin t),
    t evenly spaced in [pi/20, 9 pi/20] (``toy_experiments/compare_solvers.py`` of
    the authors' code, which draws the paper's toy comparison). The exact point of r
    is the front point where r_1 f_1 = r_2 f_2, on the ray through 1/r (dashed).
    Against it, Pareto MTL given the same four rays (its cones are centred on the
    1/r rays) and linear scalarisation with r as the weights.

Checks, per run (table below, points.csv): the front gap sqrt(-ln(1 - f_1)) +
sqrt(-ln(1 - f_2)) - 2 (0 on the front, > 0 above it); for EPO the distance to the
exact point (found here by a root search on the closed-form front, not by the
package) and the non-uniformity mu_r (0 when r_i f_i are equal; EPO's Eq. 3); for
Pareto MTL whether the point lies in its sub-region (its cosine with u_k is the
largest), and its angle against the cone's bounds.

What the papers report. Pareto MTL, Figure 2 and section 5: linear scalarisation
"can only generate extreme solutions" of the concave front, even with 100 runs;
MOO-MTL (MGDA) gives "solutions with similar trade-offs in the middle of the
Pareto front"; Pareto MTL "can successfully find a set of well-distributed Pareto
solutions with different trade-offs" (10 runs; no numbers, a scatter plot).
Without its initialisation step, it "fails to find solutions near the endpoints"
(Figure 6). EPO: the paper's claim is that EPO search finds the exact Pareto
optimal solution of a preference, "a solution on the Pareto front (PF) that
intersects the ray defined by the inverse of the weights" (Mahapatra & Rajan's
journal version, arXiv:2108.00597, abstract), a point Pareto MTL, which targets a
sub-region, is not designed to reach; its toy figure plots the runs, with no
numbers. (The ICML paper's text was not available to us; the rays and the setup
are taken from the authors' script.)

What we measured (full run, seed 0). Pareto MTL: all 10 points on the front (|gap|
below 1e-15) and each in its own sub-region, the two end vectors included (their
points at f_2 = 0.028 and f_1 = 0.009). Linear scalarisation: all 100 random-weight
runs end on the front's two convex end pieces (min(f_1, f_2) < 0.082, beyond its
inflection points; most of them within 0.01 of an end), none on the concave middle
where Pareto MTL's points are. EPO: the 4 points within 1.1e-15 of the exact points
(mu_r below 1e-29). Pareto MTL given the same rays lands in the right cones but 0.08
to 0.16 away from the exact points; linear scalarisation with r as weights again ends
on the end pieces. So both papers' pictures are reproduced. The difference is one of
precision: the papers take fixed steps for a fixed number of iterations (Pareto MTL
100 steps of 1, EPO 100 steps of 0.1, in their code), so their points sit near the
front and near the rays; paretomtl's front methods run to convergence with line
searches (``paretomtl.front.pareto_mtl`` and ``paretomtl.front.epo_search`` say
where and why they depart from the papers), so the points sit on them to rounding.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from paretomtl.front import directions_from_rays, trace
from paretomtl.problems import ParetoMTLToy
from paretomtl.solvers import non_uniformity

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gallery

N_VAR = 20
SEED = 0
# The front's curvature changes sign at t = (1 - 1/sqrt 2) / 2 (measured on the closed
# form): it is convex for min(f_1, f_2) below END and concave in between, so the local
# minima of a weighted sum lie on these two end pieces.
END = float(-np.expm1(-4.0 * ((1.0 - 1.0 / np.sqrt(2.0)) / 2) ** 2))  # 0.0822


# -- preference vectors ------------------------------------------------------------
def pareto_mtl_directions(count: int) -> np.ndarray:
    """The paper's unit preference vectors (cos a, sin a), a evenly spaced in [0, pi/2]."""
    angles = np.linspace(0.0, np.pi / 2, count)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def rays_toward(directions: np.ndarray) -> np.ndarray:
    """EPO-style rays r (on the simplex) whose 1/r points along each unit direction u.

    For two objectives 1/r is proportional to u exactly when r is proportional to
    (u_2, u_1)."""
    r = directions[:, ::-1]
    return r / r.sum(axis=1, keepdims=True)


def epo_rays(count: int) -> np.ndarray:
    """The EPO authors' toy rays (cos t, sin t), t evenly spaced in [pi/20, 9 pi/20]."""
    t = np.linspace(np.pi / 20, 9 * np.pi / 20, count)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


# -- the exact front, independent of the package -------------------------------------
def front_at(t: np.ndarray) -> np.ndarray:
    """Front points for x = (1 - 2t) a, t in [0, 1] (closed form)."""
    t = np.asarray(t, dtype=float)
    return np.stack([-np.expm1(-4.0 * t**2), -np.expm1(-4.0 * (1.0 - t) ** 2)], axis=-1)


def front_gap(values: np.ndarray) -> np.ndarray:
    """sqrt(-ln(1 - f_1)) + sqrt(-ln(1 - f_2)) - 2: 0 on the front, > 0 above it."""
    return np.sqrt(-np.log1p(-values[..., 0])) + np.sqrt(-np.log1p(-values[..., 1])) - 2.0


def exact_point(ray: np.ndarray) -> np.ndarray:
    """The front point where r_1 f_1 = r_2 f_2 (f_1 rises and f_2 falls along t)."""

    def balance(t: float) -> float:
        f = front_at(t)
        return float(ray[0] * f[0] - ray[1] * f[1])

    return front_at(brentq(balance, 0.0, 1.0, xtol=1e-15))


# -- Pareto MTL's sub-regions ------------------------------------------------------
def region_bounds(directions: np.ndarray) -> np.ndarray:
    """(count, 2) angles in degrees of each cone: the bisectors of neighbouring vectors."""
    angles = np.degrees(np.arctan2(directions[:, 1], directions[:, 0]))
    order = np.argsort(angles)
    mids = (angles[order][1:] + angles[order][:-1]) / 2
    bounds = np.empty((len(angles), 2))
    bounds[order] = np.stack([np.r_[0.0, mids], np.r_[mids, 90.0]], axis=1)
    return bounds


def in_region(values: np.ndarray, directions: np.ndarray, k: int) -> bool:
    """Whether the point's cosine with u_k is the largest of its cosines with the u_j."""
    cosines = directions @ (values / np.linalg.norm(values))
    return bool(cosines[k] >= cosines.max() - 1e-12)


# -- runs ----------------------------------------------------------------------------
def experiments(quick: bool) -> list[dict]:
    """What to run: each a panel, a label, a front method and its rays."""
    n_pmtl, n_epo, n_linear = (5, 2, 10) if quick else (10, 4, 100)
    U = pareto_mtl_directions(n_pmtl)
    R = epo_rays(n_epo)
    w = np.random.default_rng(SEED).uniform(0.0, 1.0, n_linear)
    return [
        dict(panel="pareto-mtl", label="Pareto MTL", method="pareto-mtl", rays=rays_toward(U)),
        dict(
            panel="pareto-mtl",
            label="linear (random weights)",
            method="linear",
            rays=np.stack([w, 1 - w], axis=1),
        ),
        dict(panel="epo", label="EPO", method="epo", rays=R),
        dict(panel="epo", label="Pareto MTL (same rays)", method="pareto-mtl", rays=R),
        dict(panel="epo", label="linear (weights r)", method="linear", rays=R),
    ]


def run(problem, experiment: dict) -> dict:
    """Trace one experiment from the authors' starts, x ~ U(-0.5, 0.5)^d, seed 0."""
    rays = experiment["rays"]
    starts = np.random.default_rng(SEED).uniform(-0.5, 0.5, (len(rays), problem.n_var))
    tic = time.perf_counter()
    result = trace(problem, experiment["method"], rays, x0=starts)
    return {**experiment, "result": result, "seconds": time.perf_counter() - tic}


def rows_of(experiment: dict) -> list[dict]:
    """One CSV row per run: the point, its front gap and its preference checks."""
    result, rays = experiment["result"], experiment["rays"]
    directions = directions_from_rays(rays)
    bounds = region_bounds(directions)
    rows = []
    for k, (r, F) in enumerate(zip(rays, result.points, strict=True)):
        exact = exact_point(r) if experiment["panel"] == "epo" else np.full(2, np.nan)
        pmtl = experiment["method"] == "pareto-mtl"
        rows.append(
            {
                "panel": experiment["panel"],
                "method": experiment["label"],
                "ray": k,
                "r1": float(r[0]),
                "r2": float(r[1]),
                "f1": float(F[0]),
                "f2": float(F[1]),
                "front_gap": float(front_gap(F)),
                "exact_f1": float(exact[0]),
                "exact_f2": float(exact[1]),
                "distance_to_exact": float(np.linalg.norm(F - exact)),
                "non_uniformity": float(non_uniformity(F, r)),
                "angle_deg": float(np.degrees(np.arctan2(F[1], F[0]))),
                "region_lo_deg": float(bounds[k, 0]) if pmtl else np.nan,
                "region_hi_deg": float(bounds[k, 1]) if pmtl else np.nan,
                "in_sub_region": in_region(F, directions, k) if pmtl else "",
                "converged": bool(result.converged[k]),
                "iterations": int(result.iterations[k]),
            }
        )
    return rows


# -- output --------------------------------------------------------------------------
def print_table(rows: list[dict]) -> None:
    print(
        f"{'method':<24}{'ray':>4}{'r1':>8}{'r2':>8}{'f1':>9}{'f2':>9}{'front gap':>11}"
        f"{'to exact':>10}{'mu_r':>10}  sub-region (deg)"
    )
    for row in rows:
        if row["method"].startswith("linear"):
            continue  # summarised below
        cone = (
            f"{row['angle_deg']:5.1f} in [{row['region_lo_deg']:4.1f}, "
            f"{row['region_hi_deg']:4.1f}]: {'yes' if row['in_sub_region'] else 'NO'}"
            if row["in_sub_region"] != ""
            else ""
        )
        dist = "" if np.isnan(row["distance_to_exact"]) else f"{row['distance_to_exact']:.1e}"
        print(
            f"{row['method']:<24}{row['ray']:>4}{row['r1']:>8.3f}{row['r2']:>8.3f}"
            f"{row['f1']:>9.4f}{row['f2']:>9.4f}{row['front_gap']:>11.1e}{dist:>10}"
            f"{row['non_uniformity']:>10.1e}  {cone}"
        )


def summary(runs: list[dict], rows: list[dict]) -> None:
    print()
    for exp in runs:
        mine = [r for r in rows if r["panel"] == exp["panel"] and r["method"] == exp["label"]]
        gap = max(abs(r["front_gap"]) for r in mine)
        line = f"{exp['label']} ({exp['panel']} panel, {len(mine)} runs, {exp['seconds']:.1f} s):"
        line += f" largest |front gap| {gap:.1e}"
        if exp["method"] == "pareto-mtl":
            inside = sum(bool(r["in_sub_region"]) for r in mine)
            line += f"; {inside}/{len(mine)} in their sub-regions"
        if exp["panel"] == "epo":
            dist = [r["distance_to_exact"] for r in mine]
            line += f"; distance to the exact points {min(dist):.1e} to {max(dist):.1e}"
        if exp["method"] == "linear":
            ends = sum(min(r["f1"], r["f2"]) < END for r in mine)
            line += f"; {ends}/{len(mine)} on the convex end pieces (min(f1, f2) < {END:.3f})"
        print(line)


def draw_cones(ax, directions: np.ndarray, alpha: float) -> None:
    """Shade every other sub-region (cone between bisectors) and draw each u_k."""
    for k, (lo, hi) in enumerate(region_bounds(directions)):
        a = np.radians(np.linspace(lo, hi, 30))
        wedge = np.r_[[[0.0, 0.0]], 1.2 * np.stack([np.cos(a), np.sin(a)], axis=1)]
        ax.fill(*wedge.T, color="tab:orange" if k % 2 else "tab:olive", alpha=alpha, lw=0)
    for u in directions:
        ax.plot([0, 1.2 * u[0]], [0, 1.2 * u[1]], color="0.35", lw=0.7, ls=":")


def plot(runs: list[dict], path: Path) -> None:
    plt = _gallery.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    curve = front_at(np.linspace(0.0, 1.0, 400))
    style = {
        "Pareto MTL": dict(marker="o", s=45, color="tab:red", zorder=4),
        "EPO": dict(marker="o", s=45, color="tab:blue", zorder=5),
        "Pareto MTL (same rays)": dict(marker="^", s=40, color="tab:red", zorder=4),
    }
    linear = dict(marker="x", s=30, color="0.3", zorder=3, lw=1)
    for ax, panel in zip(axes, ("pareto-mtl", "epo"), strict=True):
        mine = [e for e in runs if e["panel"] == panel]
        draw_cones(ax, directions_from_rays(mine[0]["rays"]), 0.18 if panel == "epo" else 0.25)
        ax.plot(*curve.T, color="k", lw=1.5, label="exact front", zorder=2)
        if panel == "epo":
            for r in mine[0]["rays"]:
                inv = (1 / r) / np.linalg.norm(1 / r)
                ax.plot([0, 1.2 * inv[0]], [0, 1.2 * inv[1]], color="tab:blue", lw=0.9, ls="--")
            exact = np.array([exact_point(r) for r in mine[0]["rays"]])
            ax.scatter(
                *exact.T,
                s=150,
                facecolors="none",
                edgecolors="k",
                lw=1.2,
                zorder=6,
                label="exact point of r",
            )
        for exp in mine:
            label = f"{exp['label']}: {len(exp['rays'])} runs"
            ax.scatter(*exp["result"].points.T, label=label, **style.get(exp["label"], linear))
        ax.set(xlim=(-0.02, 1.05), ylim=(-0.02, 1.05), xlabel="$f_1$", ylabel="$f_2$")
        ax.set_aspect("equal")
        ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    n_pmtl, n_epo = len(runs[0]["rays"]), len(runs[2]["rays"])
    axes[0].set_title(
        f"Pareto MTL: {n_pmtl} preference vectors and their sub-regions\n(Lin et al. 2019, Fig. 2)",
        fontsize=10,
    )
    axes[1].set_title(
        f"EPO: {n_epo} rays through 1/r (dashed), exact points (rings)\n"
        "(Mahapatra & Rajan 2020, toy comparison)",
        fontsize=10,
    )
    _gallery.save(fig, path)


def main(argv=None) -> None:
    args = _gallery.parser("preference_toy", __doc__).parse_args(argv)
    out = _gallery.out_dir(args.out)
    problem = ParetoMTLToy(n_var=N_VAR)
    todo = experiments(args.quick)
    print(f"Pareto MTL toy, d = {N_VAR}; starts x ~ U(-0.5, 0.5)^d, seed {SEED}")
    runs = [run(problem, exp) for exp in _gallery.progress(todo, desc="front methods")]
    rows = [row for exp in runs for row in rows_of(exp)]
    print_table(rows)
    summary(runs, rows)
    print(f"table: {_gallery.write_csv(out / 'points.csv', rows)}")
    plot(runs, out / "preference_toy.png")


if __name__ == "__main__":
    main()
