"""Command line: ``paretomtl {demo,trace,methods,descent}`` (or ``python -m paretomtl``).

``paretomtl --version`` prints the installed version (``paretomtl.__version__``).

- ``demo``: the README's demo, ``trace`` with the defaults of :mod:`paretomtl.cli.demo`
  (ZDT1 traced from 16 preference vectors into ``results/demo``).
- ``trace``: trace a problem's Pareto front with a front method; writes
  ``points.csv``, ``indicators.json`` and ``front.png`` (:mod:`paretomtl.cli.trace`).
- ``methods``: the gradient solvers, loss weightings and front methods, with their
  papers (:mod:`paretomtl.cli.methods`).
- ``descent``: the founding gradient solvers descending the Pareto MTL toy problem.

Bad arguments and unwritable output paths end with a one-line ``error: ...`` on
stderr and exit code 2, never a traceback. Outputs are written all at once
(:mod:`paretomtl.cli.output`): a run that fails leaves its folder as it was. The
library never imports this package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paretomtl import __version__
from paretomtl.cli import demo, methods, output, trace


def _cmd_trace(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer; got {args.seed}")
    res = trace.trace_to_folder(
        args.problem,
        args.method,
        args.rays,
        output.output_folder(args.out),
        seed=args.seed,
        n_var=args.n_var,
        progress=trace.ProgressBar(f"{args.method} on {args.problem}"),
    )
    trace.report(res)
    return 0


def _cmd_descent(args: argparse.Namespace) -> int:
    if args.starts < 1 or args.steps < 1:
        raise ValueError("--starts and --steps must be at least 1")
    out = output.output_folder(args.out)
    demo.report_descent(demo.descent(out, starts=args.starts, steps=args.steps), out)
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    methods.print_methods()
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


def _prog() -> str:
    """``paretomtl`` when run as the console script, else ``python -m paretomtl``."""
    return "paretomtl" if Path(sys.argv[0]).stem == "paretomtl" else "python -m paretomtl"


def parser() -> argparse.ArgumentParser:
    """The argument parser of the command line, its commands and their options."""
    top = argparse.ArgumentParser(prog=_prog())
    top.add_argument(
        "--version", action="version", version=f"paretomtl {__version__}", help="print the version"
    )
    sub = top.add_subparsers(dest="command", required=True)
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
    p_methods = sub.add_parser(
        "methods", help="list the gradient solvers, loss weightings and front methods"
    )
    p_methods.set_defaults(func=_cmd_methods)
    p_descent = sub.add_parser(
        "descent", help="the founding solvers descending the Pareto MTL toy problem"
    )
    p_descent.add_argument("--out", default="results/descent", help="output folder")
    p_descent.add_argument("--starts", type=int, default=8, help="random starting points")
    p_descent.add_argument("--steps", type=int, default=150, help="descent steps per start")
    p_descent.set_defaults(func=_cmd_descent)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0, or 2 after a one-line error).

    ``argv`` defaults to ``sys.argv[1:]``. Usage errors (an unknown command, an
    option that is not a number) exit through argparse's SystemExit with code 2;
    ``--version`` prints ``paretomtl X.Y.Z`` and exits through SystemExit with code 0.

    Example:
        >>> main(["methods"])  # doctest: +ELLIPSIS
        Gradient solvers (...):
        ...
        0
    """
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
