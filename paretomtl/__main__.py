"""Command line: ``python -m paretomtl {demo,methods}``.

Bad arguments and unwritable output paths end with a one-line error and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    from paretomtl import demo

    if args.starts < 1 or args.steps < 1:
        raise ValueError("--starts and --steps must be at least 1")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc
    summary = demo.run(out, starts=args.starts, steps=args.steps)
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


def _cmd_methods(args: argparse.Namespace) -> int:
    from paretomtl.solvers import available, info

    names = available()
    width = max(len(n) for n in names)
    kinds = max(len(info(n).kind) for n in names)
    for name in names:
        m = info(name)
        print(f"{name:<{width}}  {m.kind:<{kinds}}  {m.summary}")
        print(f"{'':<{width}}  {'':<{kinds}}  {m.paper}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paretomtl")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the founding solvers on a built-in toy problem")
    p_demo.add_argument("--out", default="results/demo", help="output folder")
    p_demo.add_argument("--starts", type=int, default=8, help="random starting points")
    p_demo.add_argument("--steps", type=int, default=150, help="descent steps per start")
    p_demo.set_defaults(func=_cmd_demo)
    p_methods = sub.add_parser("methods", help="list the registered methods with their papers")
    p_methods.set_defaults(func=_cmd_methods)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
