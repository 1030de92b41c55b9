#!/usr/bin/env bash
# One gallery example from a fresh clone: creates .venv if needed with the `examples`
# extra (torch through constraints.txt, matplotlib, tqdm, scikit-learn), then runs
# examples/NAME.py with the remaining arguments. Figures and tables go to results/NAME/.
#
#   bash scripts/example.sh gradnorm_synthetic            the full run
#   bash scripts/example.sh multidigits --quick           the tiny run CI does
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$(dirname "$0")/../examples/$1.py" ]; then
    echo "usage: bash scripts/example.sh NAME [args]; NAME is one of:" >&2
    ls "$(dirname "$0")/../examples" | sed -n 's/^\([^_].*\)\.py$/  \1/p' >&2
    exit 2
fi
name="$1"
shift
EXTRAS=examples
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python "examples/${name}.py" "$@"
