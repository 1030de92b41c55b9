"""Benchmark of paretomtl's gradient-space solvers against peer implementations.

Run from the repository root:

    .venv/bin/python benchmarks/solvers.py [--quick] [--full] [--out FILE]

Sections (plain-text tables on stdout, and in FILE with --out):

1. Latency per call from a K x K Gram matrix (median microseconds; the repeat count is
   scaled so that each cell takes a fraction of a second), paretomtl against cvxpy,
   scipy SLSQP, a 100-iteration numpy Frank-Wolfe, quadprog and torchjd.
2. Quality: objective relative to the best one found, ``(f - f*) / max(f*, 1e-12
   max_i G_ii)``, median and worst over random instances of two matrix families.
3. Cost from a K x M float32 matrix (M = 1e6) against the bare passes the solvers
   cannot avoid, ``G = J @ J.T; d = w @ J``.
4. First-call (compile) latency in fresh processes with an empty, then a warm, numba
   cache, and a check that ``import paretomtl`` compiles nothing.
5. The two passes over a K x M float32 matrix (K in {2, 10, 32}, M in {1e5, 1e6, 1e7}):
   ``solvers.mgda(J)`` and ``solvers.gram(J)`` against torchjd's MGDA on the same
   tensor, torch's and numpy's ``J @ J.T`` plus ``w @ J``, and the memory bound (two
   reads of J and one write of d at the bandwidth of a copy of J, measured in the same
   run); plus the first-call compile time of the blocked kernels.

The targets are evaluated on the numbers of the same run and printed PASS/FAIL.
``--quick`` is the CI smoke run (K in {2, 10}, M = 1e4, section 5 at M = 1e5, few
repeats, well under a minute); ``--full`` adds K = 128 to section 3 (a 512 MB
matrix). Peers that are not installed are skipped with a note. The exit status is 1
only if importing paretomtl compiled a numba kernel (a correctness check); missed
speed targets only print FAIL.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata

import numpy as np
from _common import Report, cpu_model, load_average

import paretomtl
from paretomtl import solvers
from paretomtl._kernels._jit import compile_now

Weights = Callable[[np.ndarray], np.ndarray]  # Gram matrix -> weights

EXACT = "paretomtl mgda exact"
FW3 = "paretomtl mgda frank-wolfe (tol 1e-3)"
FW_NUMPY = "numpy Frank-Wolfe, 100 it"
GRAM_M = 1000  # columns of J behind the Gram matrices of sections 1 and 2
MTL_FAMILY = f"MTL-like (M = {GRAM_M})"


@dataclass
class Config:
    quick: bool
    full: bool
    gram_ks: tuple[int, ...]  # section 1
    quality_ks: tuple[int, ...]  # section 2
    instances: int  # random matrices per (family, K) in section 2
    big_ks: tuple[int, ...]  # section 3
    big_m: int
    cell_budget_s: float = 0.4  # time spent per latency cell
    rounds: int = 5  # round-robin slices per latency cell
    km_ks: tuple[int, ...] = (2, 10, 32)  # section 5
    km_ms: tuple[int, ...] = (10**5, 10**6, 10**7)


def make_config(quick: bool, full: bool) -> Config:
    if quick:
        return Config(
            quick,
            full,
            (2, 10),
            (2, 10),
            3,
            (2, 10),
            10_000,
            0.02,
            rounds=2,
            km_ks=(2, 10),
            km_ms=(10**5,),
        )
    big_ks = (2, 5, 10, 32, 128) if full else (2, 5, 10, 32)
    return Config(quick, full, (2, 5, 10, 32, 128), (2, 5, 10, 32, 64, 128), 20, big_ks, 10**6)


# --------------------------------------------------------------------------- inputs


def mtl_jacobian(K: int, M: int, rng: np.random.Generator, dtype: type = np.float64) -> np.ndarray:
    """MTL-like task gradients: g_i = a_i * sign_i * (sqrt(rho) s + sqrt(1 - rho) n_i).

    s is a component shared by every task, n_i task noise, rho ~ U(0.3, 0.7); each row
    is negated with probability 0.2 (conflict), and the norms a_i are log-uniform over
    two decades [0.1, 10].
    """
    rho = rng.uniform(0.3, 0.7)
    J = rng.standard_normal((K, M), dtype=dtype)
    J *= np.sqrt(1.0 - rho)
    J += np.sqrt(rho) * rng.standard_normal(M, dtype=dtype)
    sign = np.where(rng.random(K) < 0.2, -1.0, 1.0)
    a = sign * 10.0 ** rng.uniform(-1.0, 1.0, K) / np.sqrt(M)
    J *= a.astype(dtype)[:, None]
    return J


def mtl_gram(K: int, M: int, seed: int) -> np.ndarray:
    J = mtl_jacobian(K, M, np.random.default_rng(seed))
    return J @ J.T


def hard_gram(K: int, seed: int) -> np.ndarray:
    """Rank-deficient (M = max(1, K // 2) < K), K // 4 near-duplicate rows (relative
    perturbation 1e-9), row norms log-uniform over [1e-6, 1e6]."""
    rng = np.random.default_rng(seed)
    M = max(1, K // 2)
    J = mtl_jacobian(K, M, rng)
    J /= np.linalg.norm(J, axis=1, keepdims=True)
    J *= 10.0 ** rng.uniform(-6.0, 6.0, K)[:, None]
    order = rng.permutation(K)
    for t in range(K // 4):
        i, j = order[t], order[K - 1 - t]
        J[i] = J[j] * (1.0 + 1e-9 * rng.standard_normal(M))
    return J @ J.T


# --------------------------------------------------------------------------- methods


def numpy_frank_wolfe(G: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Frank-Wolfe with exact line search on the simplex (Sener & Koltun), plain numpy."""
    K = G.shape[0]
    w = np.full(K, 1.0 / K)
    Gw = G @ w
    for _ in range(iterations):
        j = int(np.argmin(Gw))
        v = float(w @ Gw)
        gap = v - Gw[j]
        if gap <= 0.0:
            break
        den = v - 2.0 * Gw[j] + G[j, j]
        gamma = 1.0 if den <= 0.0 else min(1.0, gap / den)
        w *= 1.0 - gamma
        w[j] += gamma
        Gw *= 1.0 - gamma
        Gw += gamma * G[j]  # G is symmetric: column j is row j
    return w


def slsqp_weights(G: np.ndarray) -> np.ndarray:
    """scipy SLSQP on min w^T G w over the simplex (G scaled by its largest diagonal)."""
    from scipy.optimize import minimize

    K = G.shape[0]
    Gs = G / G.diagonal().max()
    res = minimize(
        lambda w: w @ Gs @ w,
        np.full(K, 1.0 / K),
        jac=lambda w: 2.0 * (Gs @ w),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * K,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(K)}],
    )
    return res.x


class CvxpyCached:
    """A Parameter-based cvxpy problem built once per K: set L (G = L^T L), solve."""

    def __init__(self, K: int, solver: str | None) -> None:
        import cvxpy as cp

        self.L = cp.Parameter((K, K))
        self.w = cp.Variable(K)
        objective = cp.Minimize(cp.sum_squares(self.L @ self.w))
        self.problem = cp.Problem(objective, [self.w >= 0, cp.sum(self.w) == 1])
        self.solver = solver

    def __call__(self, G: np.ndarray) -> np.ndarray:
        evals, evecs = np.linalg.eigh(G / G.diagonal().max())
        self.L.value = (evecs * np.sqrt(np.clip(evals, 0.0, None))).T
        self.problem.solve(solver=self.solver)
        if self.w.value is None:
            raise RuntimeError(f"cvxpy status {self.problem.status}")
        return np.asarray(self.w.value)


def cvxpy_default_solver() -> str:
    solver = CvxpyCached(3, None)
    solver(np.eye(3))
    return solver.problem.solver_stats.solver_name


def cvxpy_fresh(G: np.ndarray) -> np.ndarray:
    """What a first cvxpy version looks like: a new problem every call."""
    import cvxpy as cp

    K = G.shape[0]
    w = cp.Variable(K)
    Gs = cp.psd_wrap(G / G.diagonal().max())
    cp.Problem(cp.Minimize(cp.quad_form(w, Gs)), [w >= 0, cp.sum(w) == 1]).solve()
    if w.value is None:
        raise RuntimeError("cvxpy found no solution")
    return np.asarray(w.value)


class Quadprog:
    """quadprog (Goldfarb-Idnani) on G / max_i G_ii + 1e-10 I (it needs a PD matrix)."""

    def __init__(self, K: int) -> None:
        import quadprog

        self.solve_qp = quadprog.solve_qp
        self.C = np.hstack([np.ones((K, 1)), np.eye(K)])  # sum w = 1, then w >= 0
        self.b = np.concatenate([[1.0], np.zeros(K)])
        self.a = np.zeros(K)
        self.ridge = 1e-10 * np.eye(K)

    def __call__(self, G: np.ndarray) -> np.ndarray:
        Gs = G / G.diagonal().max() + self.ridge
        return self.solve_qp(Gs, self.a, self.C, self.b, meq=1)[0]


def torchjd_weighting(name: str) -> Weights:
    """A torchjd Weighting applied to the Gramian as a float64 tensor."""
    import torch
    from torchjd import aggregation

    weighting = getattr(aggregation, name)()

    def run(G: np.ndarray) -> np.ndarray:
        return weighting(torch.from_numpy(G)).numpy()

    return run


@dataclass
class Method:
    label: str
    make: Callable[[int], Weights]  # K -> weights function (built outside the timing)
    peer: str | None = None  # module that must import, for peers


def paretomtl_methods() -> list[Method]:
    return [
        Method(EXACT, lambda K: lambda G: solvers.mgda(gram=G).weights),
        Method(
            "paretomtl mgda frank-wolfe (tol 1e-6)",
            lambda K: lambda G: solvers.mgda(gram=G, method="frank-wolfe").weights,
        ),
        Method(
            "paretomtl pareto_step exact (c=0.5/K)",
            lambda K: lambda G: solvers.pareto_step(gram=G, lower_bounds=0.5 / K).weights,
        ),
        Method(
            "paretomtl pcgrad (seed=0)", lambda K: lambda G: solvers.pcgrad(gram=G, seed=0).weights
        ),
    ]


def peer_methods(latency: bool) -> list[Method]:
    methods = [
        Method(FW_NUMPY, lambda K: numpy_frank_wolfe),
        Method("scipy SLSQP", lambda K: slsqp_weights, peer="scipy"),
        Method(
            "cvxpy cached, default solver",
            lambda K: CvxpyCached(K, None),
            peer="cvxpy",
        ),
        Method(
            "cvxpy cached, CLARABEL",
            lambda K: CvxpyCached(K, "CLARABEL"),
            peer="cvxpy",
        ),
    ]
    if latency:
        methods.append(Method("cvxpy fresh problem", lambda K: cvxpy_fresh, peer="cvxpy"))
    methods += [
        Method("quadprog (+1e-10 I)", Quadprog, peer="quadprog"),
        Method(
            "torchjd MGDAWeighting(Gramian)",
            lambda K: torchjd_weighting("MGDAWeighting"),
            peer="torchjd",
        ),
    ]
    if latency:
        methods.append(
            Method(
                "torchjd PCGradWeighting(Gramian)",
                lambda K: torchjd_weighting("PCGradWeighting"),
                peer="torchjd",
            )
        )
    return methods


_PEER_STATUS: dict[str, str | None] = {}
_PEER_NOTED: set[str] = set()


def peer_missing(module: str | None) -> str | None:
    """None if ``module`` imports, else the reason (cached)."""
    if module is None:
        return None
    if module not in _PEER_STATUS:
        try:
            importlib.import_module(module)
            _PEER_STATUS[module] = None
        except Exception as exc:  # any failure means: skip this peer
            _PEER_STATUS[module] = f"{type(exc).__name__}: {exc}"
    return _PEER_STATUS[module]


def available(methods: list[Method], report: Report) -> list[Method]:
    kept = []
    for m in methods:
        why = peer_missing(m.peer)
        if why is None:
            kept.append(m)
        elif m.peer not in _PEER_NOTED:
            _PEER_NOTED.add(m.peer)
            report(f"note: {m.peer} is not available ({why}); its rows are skipped")
    return kept


# --------------------------------------------------------------------------- timing


@dataclass
class Timer:
    """Times one callable in batches of ``inner`` calls (a batch lasts >= 50 us)."""

    fn: Callable[[], object]
    inner: int = 1
    est: float = 0.0  # estimated seconds per call
    samples: list[float] = field(default_factory=list)  # seconds per call, one per batch

    def calibrate(self) -> None:
        self.fn()  # warm-up: compilation, caches, cvxpy's first canonicalisation
        compile_now()  # time the compiled kernels, not the first calls' Python route
        t0 = time.perf_counter()
        for _ in range(3):
            self.fn()
        self.est = max((time.perf_counter() - t0) / 3, 1e-7)
        self.inner = max(1, int(50e-6 / self.est))

    def run(self, seconds: float, min_batches: int) -> None:
        batches = max(min_batches, min(20_000, int(seconds / (self.est * self.inner))))
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for _ in range(batches):
                t0 = time.perf_counter()
                for _ in range(self.inner):
                    self.fn()
                self.samples.append((time.perf_counter() - t0) / self.inner)
        finally:
            if gc_was_enabled:
                gc.enable()

    @property
    def calls(self) -> int:
        return len(self.samples) * self.inner


def time_interleaved(
    fns: dict[str, Callable[[], object]], budget_s: float, rounds: int
) -> dict[str, Timer]:
    """Median-ready timers for several callables, timed in ``rounds`` round-robin slices.

    Interleaving makes the ratios between them robust to the machine's speed drifting
    during the run (shared virtual machines drift by 2x over seconds).
    """
    timers = {name: Timer(fn) for name, fn in fns.items()}
    for timer in timers.values():
        timer.calibrate()
    for _ in range(rounds):
        for timer in timers.values():
            timer.run(budget_s / rounds, min_batches=1)
    return timers


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    if us >= 1e5:
        return f"{us:.3g}"
    return f"{us:.1f}" if us < 1000 else f"{us:.0f}"


# --------------------------------------------------------------------------- sections


def machine(report: Report) -> None:
    report.heading("Machine")
    model = cpu_model()
    import numba

    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    versions.append(f"numba {numba.__version__}")
    versions.append(f"paretomtl {paretomtl.__version__}")
    for name in ("scipy", "cvxpy", "torch", "torchjd", "quadprog"):
        if peer_missing(name) is None:
            versions.append(f"{name} {metadata.version(name)}")
        else:
            versions.append(f"{name} (not installed)")
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas_name = f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:
        blas_name = "unknown"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    threads = f"os.cpu_count() {os.cpu_count()}, affinity {affinity}"
    threads += f", numba threads {numba.get_num_threads()}"
    if peer_missing("torch") is None:
        threads += f", torch threads {sys.modules['torch'].get_num_threads()}"
    report(f"CPU: {model} ({platform.machine()}, {platform.system()} {platform.release()})")
    report(f"threads: {threads}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        report(f"{var}={os.environ.get(var, '(unset)')}")
    report(f"BLAS: {blas_name}")
    report(f"load average at start: {load_average()} (other work on the machine skews timings)")
    report("versions: " + ", ".join(versions))
    report()


@dataclass
class Results:
    """Numbers the targets are evaluated on."""

    latency: dict[tuple[str, int], float] = field(default_factory=dict)
    quality: dict[tuple[str, str, int], list[float]] = field(default_factory=dict)
    kkt: dict[tuple[str, int], float] = field(default_factory=dict)  # worst exact residual
    big_ratio: dict[tuple[str, str, int], float] = field(default_factory=dict)
    compile_info: dict[str, dict] = field(default_factory=dict)
    km_ratio: dict[tuple[str, int, int], float] = field(default_factory=dict)  # / memory bound
    km_compile: dict[str, float] = field(default_factory=dict)


def section_latency(cfg: Config, report: Report, res: Results) -> None:
    report.heading("1. Latency per call from the K x K Gram matrix (median, microseconds)")
    report(
        f"G = J J^T, J a K x {GRAM_M} MTL-like matrix (shared component, noise, rows "
        "negated w.p. 0.2, norms over 2 decades), seed = K. Each cell: one warm-up call, "
        f"then batches of calls (each >= 50 us) for ~{cfg.cell_budget_s} s, in {cfg.rounds} "
        "round-robin slices over all methods of the same K (so that drift of the machine's "
        "speed hits every method alike); median over batches."
    )
    report(
        "cvxpy cached: Parameter L with G = L^T L (eigh of G / max G_ii, included in the "
        "time), problem built once per K outside the timing; fresh: a new quad_form "
        "problem each call. quadprog: G / max G_ii + 1e-10 I (it needs a PD matrix). "
        "SLSQP: G / max G_ii, uniform start, default ftol. torchjd: the Weighting called "
        "on torch.from_numpy(G) (float64). Absolute times on shared virtual machines "
        "drift (up to 2x between runs); the ratios within one K are the robust numbers."
    )
    if peer_missing("cvxpy") is None:
        report(f"cvxpy's default solver for this problem here: {cvxpy_default_solver()}.")
    methods = available(paretomtl_methods() + peer_methods(latency=True), report)
    grams = {K: mtl_gram(K, GRAM_M, seed=K) for K in cfg.gram_ks}
    calls: dict[tuple[str, int], int] = {}
    for K in cfg.gram_ks:
        fns = {}
        for m in methods:
            try:
                fn = partial(m.make(K), grams[K])
                fn()
            except Exception as exc:
                report(f"note: {m.label} failed at K={K}: {type(exc).__name__}: {exc}")
                continue
            fns[m.label] = fn
        for label, timer in time_interleaved(fns, cfg.cell_budget_s, cfg.rounds).items():
            res.latency[label, K] = statistics.median(timer.samples)
            calls[label, K] = timer.calls
    headers = ["method", *(f"K={K}" for K in cfg.gram_ks)]

    def cells(value: Callable[[str, int], str]) -> list[list[str]]:
        return [[m.label, *(value(m.label, K) for K in cfg.gram_ks)] for m in methods]

    report("latency (us):")
    report.table(
        headers,
        cells(lambda lab, K: fmt_us(res.latency[lab, K]) if (lab, K) in res.latency else "-"),
    )
    report("ratio to paretomtl mgda exact in this run (higher = slower than paretomtl):")

    def ratio(lab: str, K: int) -> str:
        base = res.latency.get((EXACT, K))
        if (lab, K) not in res.latency or base is None:
            return "-"
        return f"{res.latency[lab, K] / base:.3g}x"

    report.table(headers, cells(ratio))
    report("calls timed per cell:")
    report.table(headers, cells(lambda lab, K: str(calls.get((lab, K), "-"))))


def project_simplex_weights(w: np.ndarray) -> np.ndarray:
    """Clip to >= 0 and rescale to sum 1 (solvers may stop slightly outside the simplex)."""
    w = np.clip(np.asarray(w, dtype=np.float64), 0.0, None)
    total = w.sum()
    return w / total if total > 0 else np.full(w.shape, 1.0 / w.size)


def section_quality(cfg: Config, report: Report, res: Results) -> None:
    report.heading("2. Quality: objective relative to the optimum")
    report(
        "rel = (f - f*) / max(f*, 1e-12 max_i G_ii), f = w^T G w with w clipped to >= 0 and "
        "rescaled to sum 1 (peers stop slightly outside the simplex), f* the smallest f of "
        f"all methods on that matrix. Cells: median / worst over {cfg.instances} matrices "
        "(the first MTL-like one is section 1's); 'k fail' counts errors or missing answers "
        "(left out of the statistics). The last rows: paretomtl exact's own certificate, and "
        "the rounding level of f itself, eps |w|^T |G| |w| / denominator (differences "
        "below it are noise)."
    )
    methods = [
        *paretomtl_methods()[:2],
        Method(
            FW3, lambda K: lambda G: solvers.mgda(gram=G, method="frank-wolfe", tol=1e-3).weights
        ),
        *peer_methods(latency=False),
    ]
    methods = available(methods, report)
    families: dict[str, Callable[[int, int], np.ndarray]] = {
        MTL_FAMILY: lambda K, seed: mtl_gram(K, GRAM_M, seed),
        "hard (M = K // 2 < K, K // 4 near-duplicate rows, norms 1e-6..1e6)": hard_gram,
    }
    for family, make_gram in families.items():
        fails: dict[tuple[str, int], int] = {}
        kkt: dict[int, list[float]] = {}
        unconverged: dict[int, int] = {}
        rounding: dict[int, list[float]] = {}
        for K in cfg.quality_ks:
            fns = {m.label: m.make(K) for m in methods}
            seeds = [K] + [1000 * K + i for i in range(1, cfg.instances)]
            for seed in seeds:
                G = make_gram(K, seed)
                values: dict[str, float] = {}
                for label, fn in fns.items():
                    try:
                        w = project_simplex_weights(fn(G))
                        if not np.isfinite(w).all():
                            raise ValueError("non-finite weights")
                        values[label] = float(w @ G @ w)
                    except Exception:
                        fails[label, K] = fails.get((label, K), 0) + 1
                f_star = min(values.values())
                floor = max(f_star, 1e-12 * float(G.diagonal().max()))
                for label, f in values.items():
                    res.quality.setdefault((family, label, K), []).append((f - f_star) / floor)
                exact = solvers.mgda(gram=G)
                kkt.setdefault(K, []).append(exact.kkt_residual)
                unconverged[K] = unconverged.get(K, 0) + (not exact.converged)
                aw = np.abs(exact.weights)
                eps = np.finfo(np.float64).eps
                rounding.setdefault(K, []).append(eps * float(aw @ np.abs(G) @ aw) / floor)
            res.kkt[family, K] = max(kkt[K])
        report(f"{family}:")
        rows = []
        for m in methods:
            row = [m.label]
            for K in cfg.quality_ks:
                errs = res.quality.get((family, m.label, K), [])
                cell = f"{np.median(errs):.1e} / {max(errs):.1e}" if errs else "-"
                if fails.get((m.label, K)):
                    cell += f" ({fails[m.label, K]} fail)"
                row.append(cell)
            rows.append(row)
        row = ["paretomtl exact: kkt_residual"]
        for K in cfg.quality_ks:
            cell = f"{np.median(kkt[K]):.1e} / {max(kkt[K]):.1e}"
            if unconverged[K]:
                cell += f" ({unconverged[K]} not converged)"
            row.append(cell)
        rows.append(row)
        rows.append(
            ["rounding level of f"]
            + [f"{np.median(rounding[K]):.1e} / {max(rounding[K]):.1e}" for K in cfg.quality_ks]
        )
        report.table(["method", *(f"K={K}" for K in cfg.quality_ks)], rows)


def section_big(cfg: Config, report: Report, res: Results) -> None:
    M = cfg.big_m
    report.heading(f"3. From a K x M matrix, M = {M:,} (median milliseconds per call)")
    report(
        "baseline: `G = J @ J.T; d = w @ J` in J's dtype (the two passes over J every "
        "method needs). The four calls are interleaved in each repeat; ratio = method "
        "median / baseline median. pareto_step uses lower_bounds = 0.5 / K."
    )
    cases = [(K, np.float32) for K in cfg.big_ks] + [(10, np.float64)]
    rows = []
    for K, dtype in cases:
        J = mtl_jacobian(K, M, np.random.default_rng(K), dtype=dtype)
        w = np.full(K, 1.0 / K, dtype=dtype)

        def baseline(J: np.ndarray = J, w: np.ndarray = w) -> np.ndarray:
            G = J @ J.T
            return G, w @ J

        fns: dict[str, Callable[[], object]] = {
            "baseline": baseline,
            "mgda": lambda J=J: solvers.mgda(J),
            "pcgrad": lambda J=J: solvers.pcgrad(J, seed=0),
            "pareto_step": lambda J=J, K=K: solvers.pareto_step(J, lower_bounds=0.5 / K),
        }
        for fn in fns.values():  # warm-up
            fn()
        compile_now()
        t0 = time.perf_counter()
        baseline()
        est = time.perf_counter() - t0
        repeats = max(5 if not cfg.quick else 3, min(200, int(2.5 * cfg.cell_budget_s / est)))
        samples: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
        med = {name: statistics.median(s) for name, s in samples.items()}
        dname = np.dtype(dtype).name
        row = [f"K={K} {dname}", str(repeats), f"{med['baseline'] * 1e3:.2f}"]
        for name in ("mgda", "pcgrad", "pareto_step"):
            ratio = med[name] / med["baseline"]
            res.big_ratio[name, dname, K] = ratio
            row.append(f"{med[name] * 1e3:.2f} ({ratio:.2f}x)")
        rows.append(row)
        del J
    headers = ["J", "repeats", "baseline", "mgda(J)", "pcgrad(J, seed=0)", "pareto_step(J)"]
    report.table(headers, rows)


_CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
import paretomtl
t3 = time.perf_counter()
from numba.core.dispatcher import Dispatcher

def dispatchers():
    found = {}
    for name, mod in list(sys.modules.items()):
        if name.startswith("paretomtl._kernels") and mod is not None:
            for attr, obj in vars(mod).items():
                obj = getattr(obj, "dispatcher", obj)  # an entry point's compiled kernel
                if isinstance(obj, Dispatcher):
                    found[f"{name}.{attr}"] = obj
    return found

def n_signatures():
    return sum(len(d.signatures) for d in dispatchers().values())

def cache_files():
    return sum(len(files) for _, _, files in os.walk(os.environ["NUMBA_CACHE_DIR"]))

out = {
    "import numpy": t1 - t0, "import numba": t2 - t1, "import paretomtl": t3 - t2,
    "import total": t3 - t0, "dispatchers": len(dispatchers()),
    "signatures after import": n_signatures(), "cache files after import": cache_files(),
}
from paretomtl import solvers
rng = np.random.default_rng(0)
J = rng.standard_normal((10, 1000))
J[:2] *= -1.0
G = J @ J.T
calls = {
    "mgda(gram) exact": lambda: solvers.mgda(gram=G),
    "mgda(gram) frank-wolfe": lambda: solvers.mgda(gram=G, method="frank-wolfe"),
    "pareto_step(gram)": lambda: solvers.pareto_step(gram=G, lower_bounds=0.05),
    "pcgrad(gram)": lambda: solvers.pcgrad(gram=G, seed=0),
}
for name, fn in calls.items():
    t = time.perf_counter()
    fn()
    out["first " + name] = time.perf_counter() - t
    t = time.perf_counter()
    fn()
    out["second " + name] = time.perf_counter() - t
out["signatures after calls"] = n_signatures()
out["cache files after calls"] = cache_files()
print(json.dumps(out))
"""


def run_child(cache_dir: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child process failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def section_compile(cfg: Config, report: Report, res: Results) -> None:
    report.heading("4. First-call latency in fresh processes (numba compile, then cache)")
    report(
        "Each column is one fresh `python -c` process with NUMBA_CACHE_DIR set to the same "
        "new temporary directory: empty for the first (compiles), warm for the second "
        "(loads from the cache). Calls on a K = 10 Gram matrix, in this order (later calls "
        "reuse kernels the earlier ones compiled); 'second' is the call right after."
    )
    with tempfile.TemporaryDirectory(prefix="paretomtl-numba-") as cache_dir:
        cold = run_child(cache_dir)
        warm = run_child(cache_dir)
    res.compile_info = {"cold": cold, "warm": warm}
    rows = []
    for key in cold:
        if key.startswith(("dispatchers", "signatures", "cache files")):
            rows.append([key, str(cold[key]), str(warm[key])])
        elif key.startswith("second"):
            rows.append([key, f"{cold[key] * 1e6:.0f} us", f"{warm[key] * 1e6:.0f} us"])
        else:
            rows.append([key, f"{cold[key] * 1e3:.1f} ms", f"{warm[key] * 1e3:.1f} ms"])
    report.table(["", "empty cache", "warm cache"], rows)


KM_MGDA = "paretomtl mgda(J)"
KM_GRAM = "paretomtl gram(J)"
KM_TORCHJD = "torchjd MGDA()(T)"
KM_TORCH = "torch T@T.T, w@T"
KM_NUMPY = "numpy J@J.T, w@J"

_KM_CHILD = r"""
import json, time
import numpy as np
from numba import njit
from paretomtl._kernels import jacobian

@njit(cache=False)
def warm_up(x):  # numba's one-time start-up, which any first compilation pays
    return x + 1

warm_up(1.0)
J = np.random.default_rng(0).standard_normal((10, 1 << 15), dtype=np.float32)
w = np.full(10, 0.1)
out = {}
for name, fn in (("gram", lambda: jacobian.gram(J)), ("combine", lambda: jacobian.combine(w, J))):
    t, c = time.perf_counter(), time.process_time()
    fn()
    out[name] = time.perf_counter() - t
    out[name + " cpu"] = time.process_time() - c
print(json.dumps(out))
"""


def km_compile(cfg: Config, report: Report, res: Results) -> None:
    with tempfile.TemporaryDirectory(prefix="paretomtl-numba-") as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        out = []
        for _ in range(1 if cfg.quick else 2):  # empty cache, then warm
            proc = subprocess.run(
                [sys.executable, "-c", _KM_CHILD], env=env, capture_output=True, text=True
            )
            if proc.returncode != 0:
                report(f"note: compile child failed:\n{proc.stderr}")
                return
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    cold = out[0]["gram"] + out[0]["combine"]
    cold_cpu = out[0]["gram cpu"] + out[0]["combine cpu"]
    res.km_compile = {"cold": cold, "cold cpu": cold_cpu}
    text = (
        f"first call of the blocked kernels (float32, K = 10, M = 2**15, a fresh process "
        f"after numba's start-up), empty cache: gram {out[0]['gram'] * 1e3:.0f} ms + "
        f"combine {out[0]['combine'] * 1e3:.0f} ms = {cold * 1e3:.0f} ms "
        f"({cold_cpu * 1e3:.0f} ms CPU time)"
    )
    if len(out) > 1:
        text += f"; warm cache: {(out[1]['gram'] + out[1]['combine']) * 1e3:.0f} ms"
    report(text)
    report()


def section_km(cfg: Config, report: Report, res: Results) -> None:
    report.heading("5. The two passes over a K x M float32 matrix (median ms, ratio to the bound)")
    report(
        "bound: (2 bytes(J) + bytes(d)) / bandwidth, the bandwidth that of np.copyto of J "
        "(2 bytes(J) moved) timed in the same repeats. torchjd: aggregation.MGDA() on "
        "torch.from_numpy(J) (same memory); torch and numpy: G = J @ J.T and w @ J with "
        "uniform w. The calls run in round-robin slices (3 rounds, the order rotated, "
        "an untimed call first in each slice); median over all timed calls. J is the "
        "MTL-like family, seed = K."
    )
    torch = torchjd = None
    if peer_missing("torch") is None:
        import torch
    if peer_missing("torchjd") is None:
        from torchjd import aggregation as torchjd
    else:
        report("note: torchjd is not available; its column is skipped")
    rows = []
    for M in cfg.km_ms:
        for K in cfg.km_ks:
            J = mtl_jacobian(K, M, np.random.default_rng(K), dtype=np.float32)
            w = np.full(K, 1.0 / K, dtype=np.float32)
            scratch = np.empty_like(J)
            fns: dict[str, Callable[[], object]] = {
                "copy": lambda J=J, scratch=scratch: np.copyto(scratch, J),
                KM_MGDA: lambda J=J: solvers.mgda(J),
                KM_GRAM: lambda J=J: solvers.gram(J),
                KM_NUMPY: lambda J=J, w=w: (J @ J.T, w @ J),
            }
            if torch is not None:
                T, wt = torch.from_numpy(J), torch.from_numpy(w)
                fns[KM_TORCH] = lambda T=T, wt=wt: (T @ T.T, wt @ T)
                if torchjd is not None:
                    agg = torchjd.MGDA()
                    fns[KM_TORCHJD] = lambda T=T, agg=agg: agg(T)
            for fn in fns.values():  # warm-up (and compilation)
                fn()
            compile_now()
            t0 = time.perf_counter()
            for fn in fns.values():
                fn()
            per_repeat = time.perf_counter() - t0
            budget = 0.5 if cfg.quick else 4.0  # seconds per row
            repeats = max(3 if cfg.quick else 5, min(100, int(budget / per_repeat)))
            samples: dict[str, list[float]] = {name: [] for name in fns}
            names = list(fns)
            rounds = min(repeats, 3)
            for r in range(rounds):
                # Round-robin slices, the order rotated between rounds: torch's and BLAS's
                # threads keep spinning for a while after a call returns and slow down
                # whatever runs next on the same cores, so each slice starts with a
                # call that is not timed.
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    fns[name]()
                    for _ in range(-(-repeats // rounds)):
                        t0 = time.perf_counter()
                        fns[name]()
                        samples[name].append(time.perf_counter() - t0)
            med = {name: statistics.median(v) for name, v in samples.items()}
            moved = 2 * J.nbytes
            bound = med["copy"] * (moved + 4 * M) / moved
            row = [f"K={K} M={M:.0e}", str(repeats), f"{moved / med['copy'] / 1e9:.1f}"]
            row.append(f"{bound * 1e3:.3g}")
            for name in (KM_MGDA, KM_GRAM, KM_TORCHJD, KM_TORCH, KM_NUMPY):
                if name not in med:
                    row.append("-")
                    continue
                ratio = med[name] / bound
                res.km_ratio[name, K, M] = ratio
                row.append(f"{med[name] * 1e3:.3g} ({ratio:.2f}x)")
            rows.append(row)
            del J, scratch, fns
            gc.collect()
    headers = ["J (float32)", "repeats", "GB/s", "bound", KM_MGDA, KM_GRAM]
    headers += [KM_TORCHJD, KM_TORCH, KM_NUMPY]
    report.table(headers, rows)
    km_compile(cfg, report, res)


# --------------------------------------------------------------------------- targets


def targets(cfg: Config, report: Report, res: Results) -> bool:
    """Print PASS/FAIL per target; return False if importing paretomtl compiled anything."""
    report.heading("Targets (from the numbers of this run)")
    lines: list[tuple[str, bool | None, str]] = []
    lat = res.latency

    name = "mgda exact from a K=10 Gram < 20 us median"
    t10 = lat.get((EXACT, 10))
    if t10 is None:
        lines.append((name, None, "not measured"))
    else:
        lines.append((name, t10 < 20e-6, f"{t10 * 1e6:.1f} us"))
    name = "mgda exact K=10 >= 100x faster than cvxpy (its fastest cached variant)"
    cvx = [t for (label, K), t in lat.items() if K == 10 and label.startswith("cvxpy cached")]
    if t10 is None or not cvx:
        lines.append((name, None, "not measured (cvxpy missing?)"))
    else:
        speedup = min(cvx) / t10
        lines.append((name, speedup >= 100, f"{speedup:.0f}x (cvxpy {min(cvx) * 1e6:.0f} us)"))

    name = "mgda exact K=128 faster than the 100-it numpy Frank-Wolfe, at the exact optimum"
    t128, fw128 = lat.get((EXACT, 128)), lat.get((FW_NUMPY, 128))
    errs = res.quality.get((MTL_FAMILY, EXACT, 128), [])
    if t128 is None or fw128 is None or not errs:
        lines.append((name, None, "not measured (K=128 not in this run)"))
    else:
        kkt = res.kkt[MTL_FAMILY, 128]
        fw_errs = res.quality.get((MTL_FAMILY, FW_NUMPY, 128), [float("nan")])
        detail = (
            f"{t128 * 1e6:.0f} us vs {fw128 * 1e6:.0f} us (FW / exact = {fw128 / t128:.2f}); "
            f"exact worst rel {max(errs):.1e}, worst kkt {kkt:.1e}; "
            f"FW-100 median rel {np.median(fw_errs):.1e}"
        )
        lines.append((name, t128 < fw128 and max(errs) <= 1e-9 and kkt <= 1e-9, detail))

    name = "frank-wolfe tol 1e-3 stops several % above the optimum at K=64 (median rel >= 1%)"
    fw3 = res.quality.get((MTL_FAMILY, FW3, 64), [])
    if not fw3:
        lines.append((name, None, "not measured (K=64 not in this run)"))
    else:
        med = float(np.median(fw3))
        detail = f"median rel {med:.2g} (f = {1 + med:.3g} f*), worst {max(fw3):.2g}"
        lines.append((name, med >= 0.01, detail))

    for (method, dname, K), ratio in sorted(res.big_ratio.items(), key=lambda x: x[0][1:]):
        name = f"{method}(J) K={K} {dname} within 1.2x of the baseline"
        if cfg.big_m < 10**6:
            lines.append((name, None, f"{ratio:.2f}x, but M = {cfg.big_m:,}: target is at M = 1e6"))
        else:
            lines.append((name, ratio <= 1.2, f"{ratio:.2f}x"))

    for (label, K, M), ratio in sorted(res.km_ratio.items(), key=lambda x: (x[0][2], x[0][1])):
        if label != KM_MGDA:
            continue
        name = f"mgda(J) K={K} M={M:.0e} float32 within 1.5x of the memory bound"
        lines.append((name, ratio <= 1.5, f"{ratio:.2f}x"))
        tjd = res.km_ratio.get((KM_TORCHJD, K, M))
        name = f"mgda(J) K={K} M={M:.0e} float32 faster than torchjd's MGDA"
        if tjd is None:
            lines.append((name, None, "not measured (torchjd missing?)"))
        else:
            lines.append((name, ratio < tjd, f"{tjd / ratio:.2f}x faster"))
    if res.km_compile:
        name = "blocked kernels' first call with an empty cache < 1.5 s"
        cold, cpu = res.km_compile["cold"], res.km_compile["cold cpu"]
        lines.append((name, cold < 1.5, f"{cold * 1e3:.0f} ms ({cpu * 1e3:.0f} ms CPU time)"))

    cold = res.compile_info.get("cold", {})
    n_sig, n_disp = cold.get("signatures after import", -1), cold.get("dispatchers", 0)
    n_files = cold.get("cache files after import", -1)
    import_ok = n_sig == 0 and n_disp > 0 and n_files == 0
    detail = f"{n_sig} signatures in {n_disp} dispatchers, {n_files} cache files after import"
    lines.append(("import paretomtl compiles nothing", import_ok, detail))

    for name, ok, detail in lines:
        verdict = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        report(f"[{verdict}] {name}: {detail}")
    report()
    return import_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 60 s)")
    parser.add_argument("--full", action="store_true", help="add K = 128 to section 3 (512 MB)")
    parser.add_argument("--out", metavar="FILE", help="also write the report to FILE")
    args = parser.parse_args(argv)
    cfg = make_config(args.quick, args.full)
    report = Report()
    start = time.perf_counter()
    mode = "quick" if cfg.quick else ("full" if cfg.full else "default")
    report(f"paretomtl solver benchmark ({mode} run, {time.strftime('%Y-%m-%d %H:%M:%S')})")
    report()
    machine(report)
    res = Results()
    section_latency(cfg, report, res)
    section_quality(cfg, report, res)
    section_big(cfg, report, res)
    section_compile(cfg, report, res)
    section_km(cfg, report, res)
    import_ok = targets(cfg, report, res)
    report(f"total time {time.perf_counter() - start:.0f} s; load average at end: {load_average()}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write("\n".join(report.lines) + "\n")
    return 0 if import_ok else 1


if __name__ == "__main__":
    sys.exit(main())
