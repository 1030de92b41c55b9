"""Command line: ``python -m paretomtl {demo,trace,methods,descent}``.

- ``demo``: the README's demo, ``trace`` with the defaults of :mod:`paretomtl.demo`
  (ZDT1 traced from 16 preference vectors into ``results/demo``).
- ``trace``: trace a problem's Pareto front with a front method; writes
  ``points.csv``, ``indicators.json`` and ``front.png`` (:mod:`paretomtl.tracing`).
- ``methods``: the registered gradient solvers and front methods, with their papers.
- ``descent``: the founding gradient solvers descending the Pareto MTL toy problem.

Bad arguments and unwritable output paths end with a one-line ``error: ...`` on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paretomtl import demo


def _fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "n/a" if value is None else format(scale * value, spec)


def _report(res: dict) -> None:
    print(
        f"{res['problem']} (n_var={res['n_var']}, {res['n_obj']} objectives): {res['method']} "
        f"from {res['rays']} rays, seed {res['seed']}: {res['converged']}/{res['n_points']} "
        f"converged in {res['seconds']:.2f} s"
    )
    ref = ", ".join(f"{v:g}" for v in res["reference_point"])
    print(
        f"GD {_fmt(res['gd'], '.3g')}  IGD {_fmt(res['igd'], '.4f')}  "
        f"IGD+ {_fmt(res['igd_plus'], '.4f')}  HV {_fmt(res['hypervolume'], '.4f')} = "
        f"{_fmt(res['hypervolume_fraction'], '.1f', 100.0)} % of the true front's "
        f"(reference point ({ref}); true front: {res['true_front_points']} points)"
    )
    if "note" in res:
        print(f"note: {res['note']}")
    print(f"points:     {res['points']}")
    print(f"indicators: {res['indicators']}")
    if res["plot"]:
        print(f"plot:       {res['plot']}")
    else:
        from paretomtl.tracing import PLOT_NOTE

        print(f"plot:       skipped ({PLOT_NOTE})")


def _cmd_trace(args: argparse.Namespace) -> int:
    from paretomtl.tracing import ProgressBar, trace_to_folder

    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer; got {args.seed}")
    res = trace_to_folder(
        args.problem,
        args.method,
        args.rays,
        Path(args.out),
        seed=args.seed,
        n_var=args.n_var,
        progress=ProgressBar(f"{args.method} on {args.problem}"),
    )
    _report(res)
    return 0


def _cmd_descent(args: argparse.Namespace) -> int:
    from paretomtl.tracing import check_writable

    if args.starts < 1 or args.steps < 1:
        raise ValueError("--starts and --steps must be at least 1")
    out = Path(args.out)
    check_writable(out)
    summary = demo.descent(out, starts=args.starts, steps=args.steps)
    print(f"problem: {summary['problem']}, {summary['starts']} starts x {summary['steps']} steps")
    print(f"{'method':<12} {'median ||d*||^2':>16} {'worst ||d*||^2':>16} {'seconds':>8}")
    for name, m in summary["methods"].items():
        print(
            f"{name:<12} {m['median_min_norm_sq']:>16.3e} {m['max_min_norm_sq']:>16.3e} "
            f"{m['seconds']:>8.2f}"
        )
    print(f"points:  {out / 'points.csv'}")
    print(f"summary: {out / 'summary.json'}")
    if summary["plot"]:
        print(f"plot:    {summary['plot']}")
    else:
        print("plot:    skipped (matplotlib missing: pip install 'paretomtl[plot]')")
    return 0


def _table(rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    kinds = max(len(r[1]) for r in rows)
    for name, kind, summary, paper in rows:
        print(f"  {name:<{width}}  {kind:<{kinds}}  {summary}")
        print(f"  {'':<{width}}  {'':<{kinds}}  {paper}")


def _cmd_methods(args: argparse.Namespace) -> int:
    from paretomtl.front import available_front_methods, front_method_info
    from paretomtl.solvers import available, info

    print("Gradient solvers (paretomtl.solvers; combine K task gradients into one step):")
    _table([(n, info(n).kind, info(n).summary, info(n).paper) for n in available()])
    print()
    print("Front methods (paretomtl.front.trace; python -m paretomtl trace --method NAME):")
    fronts = [front_method_info(n) for n in available_front_methods()]
    _table([(m.name, m.kind, m.summary, m.paper) for m in fronts])
    return 0


def _trace_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    parser.add_argument(
        "--problem", default=demo.PROBLEM, help=f"test problem (default {demo.PROBLEM})"
    )
    parser.add_argument(
        "--method", default=demo.METHOD, help=f"front method (default {demo.METHOD})"
    )
    parser.add_argument(
        "--rays",
        type=int,
        default=demo.RAYS,
        help=f"preference vectors (default {demo.RAYS}; a lattice size such as 15 or 91 "
        "for 3 objectives)",
    )
    parser.add_argument("--out", default=out, help=f"output folder (default {out})")
    parser.add_argument(
        "--seed", type=int, default=demo.SEED, help=f"seed of the random starts ({demo.SEED})"
    )
    parser.add_argument(
        "--n-var", type=int, default=None, help="number of variables (default: the problem's)"
    )
    parser.set_defaults(func=_cmd_trace)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0, or 2 after a one-line error)."""
    parser = argparse.ArgumentParser(prog="python -m paretomtl")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser(
        "demo",
        help=f"the README's demo: trace {demo.PROBLEM}'s front from {demo.RAYS} rays "
        f"into {demo.OUT}",
    )
    _trace_arguments(p_demo, demo.OUT)
    p_trace = sub.add_parser(
        "trace", help="trace a problem's Pareto front; write points, indicators and a plot"
    )
    _trace_arguments(p_trace, "results/trace")
    p_methods = sub.add_parser("methods", help="list the gradient solvers and front methods")
    p_methods.set_defaults(func=_cmd_methods)
    p_descent = sub.add_parser(
        "descent", help="the founding solvers descending the Pareto MTL toy problem"
    )
    p_descent.add_argument("--out", default="results/descent", help="output folder")
    p_descent.add_argument("--starts", type=int, default=8, help="random starting points")
    p_descent.add_argument("--steps", type=int, default=150, help="descent steps per start")
    p_descent.set_defaults(func=_cmd_descent)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
