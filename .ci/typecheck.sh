#!/usr/bin/env bash
# Type check (issue 15): mypy on the package with the configuration in pyproject.toml
# ([tool.mypy]), then `mypy --strict` on a short user script that calls the public
# API the way the README does: it fails if a public function it calls is unannotated
# (no-untyped-call) or a documented attribute is unknown to a type checker.
# Usage: bash .ci/typecheck.sh [PYTHON]   (default .venv/bin/python; from the repository
# root, where mypy finds the package of an editable install).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
user="$(mktemp -d)"
trap 'rm -rf "$user"' EXIT
if ! "$PY" -m mypy > "$user/package.txt"; then
    cat "$user/package.txt"
    echo "mypy errors per module and code: fix them, or add the module to pyproject.toml's"
    echo "[[tool.mypy.overrides]] (no-untyped-def: the list with disallow_untyped_defs off;"
    echo "other codes: disable_error_code) with the counts, as these lines give them:"
    sed -n 's/^\([^:]*\)\.py:[0-9]*: error: .*\[\([a-z-]*\)\]$/\1 \2/p' "$user/package.txt" |
        sed 's|/__init__ | |; s|/|.|g' | sort | uniq -c |
        awk '{c[$2] = c[$2] (c[$2] ? ", " : "") $3 " " $1} END {
            for (m in c) print "    \"" m "\",  # " c[m] }' | sort
    exit 1
fi
cat "$user/package.txt"
cat > "$user/user_code.py" <<'PYEOF'
"""A strictly typed user of paretomtl's public API (checked, not run)."""

import numpy as np
import numpy.typing as npt
import torch

import paretomtl
from paretomtl import solvers, weighting
from paretomtl.adapters.torch import Aggregator, StepInfo
from paretomtl.front import TraceResult, simplex_rays, trace
from paretomtl.problems import Problem, get_problem
from paretomtl.solvers import SolverResult

version: str = paretomtl.__version__
grads: npt.NDArray[np.float64] = np.eye(3)
results: list[SolverResult] = [
    solvers.mgda(grads),
    solvers.mgda(gram=grads @ grads.T),
    solvers.pcgrad(grads, seed=0),
    solvers.pareto_step(grads, lower_bounds=np.zeros(3)),
    solvers.get("mgda")(grads),
]
weights: npt.NDArray[np.float64] | None = results[0].weights
names: tuple[str, ...] = solvers.available() + weighting.available()

problem: Problem = get_problem("zdt1", n_var=4)
front: TraceResult = trace(problem, "epo", simplex_rays(2, 4))
points: npt.NDArray[np.float64] = front.points

net = torch.nn.Linear(4, 2)
out = net(torch.randn(8, 4))
agg = Aggregator("mgda")
info: StepInfo = agg.backward([out[:, 0].mean(), out[:, 1].mean()], net.parameters())
step_weights: npt.NDArray[np.float64] = info.weights
PYEOF
# The package was checked above with its own options: here its errors are silenced
# (--follow-imports=silent) and the project's configuration is left out.
printf '[mypy]\n' > "$user/mypy.ini"
"$PY" -m mypy --config-file "$user/mypy.ini" --strict --follow-imports=silent \
    --python-version 3.10 "$user/user_code.py"
