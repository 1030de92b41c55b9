#!/usr/bin/env bash
# Packaging check (issue 15): build the sdist and the wheel (the wheel from the sdist,
# so a file missing from the sdist breaks the build), check what they hold, then
#   1. install the wheel with its core dependencies only into a fresh venv and run
#      the command line and one MGDA solve there (no torch);
#   2. install the wheel with [torch] (through constraints.txt) into another fresh
#      venv and run the examples' smoke tests there.
# Every command runs outside the repository, so `import paretomtl` finds the
# installed wheel, never the source tree. pip's cache is used as usual.
# Usage: bash .ci/package.sh   (needs .venv with the dev extra: `build`)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
# The two venvs hold 1.1 GB (torch most of it): in memory (/dev/shm) where it has
# room, since unpacking and deleting them on this machine's disk took longer than
# the checks themselves (50 s to delete 1.8 GB under load).
base="${TMPDIR:-/tmp}"
if [ -w /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 {print $4}')" -gt 4000000 ]; then
    base=/dev/shm
fi
work="$(mktemp -d -p "$base")"
trap 'rm -rf "$work"' EXIT
unset PYTHONPATH
# The venvs are made without pip; .venv's pip installs into them (pip --python).
# Its warnings about this machine's local package folders are left out.
pip_install() {
    .venv/bin/python -m pip --python "$1" install -q -c constraints.txt "${@:2}" \
        2> "$work/pip.err" || { cat "$work/pip.err"; return 1; }
    grep -v "is ignored: it is neither a file nor a directory" "$work/pip.err" >&2 || true
}
elapsed() { echo "  $2: $(( SECONDS - $1 )) s"; }  # elapsed START LABEL
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' paretomtl/__init__.py)"

echo "== build the sdist and the wheel (paretomtl $version)"
t=$SECONDS
.venv/bin/python -m build -q --outdir "$work/dist" . > "$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
sdist="$work/dist/paretomtl-$version.tar.gz"
wheel="$work/dist/paretomtl-$version-py3-none-any.whl"
ls -l "$sdist" "$wheel" | awk '{print "  " $5 " bytes  " $NF}'
elapsed $t build

echo "== what they hold"
t=$SECONDS
tar -tzf "$sdist" | sed "s|^paretomtl-$version/||" | sort > "$work/sdist.txt"
.venv/bin/python -m zipfile -l "$wheel" | awk 'NR > 1 {print $1}' | sort > "$work/wheel.txt"
missing=0
need() {  # need LISTING FILE...: each FILE is in the listing
    local list="$1"; shift
    for f in "$@"; do
        grep -qx -- "$f" "$work/$list.txt" || { echo "  $list lacks $f"; missing=1; }
    done
}
need sdist LICENSE README.md pyproject.toml paretomtl/py.typed
need wheel paretomtl/py.typed "paretomtl-$version.dist-info/licenses/LICENSE" \
    "paretomtl-$version.dist-info/entry_points.txt"
# Every module of the package, in both (the sdist as the source tree has it).
find paretomtl -name '*.py' -not -path '*/__pycache__/*' | sort > "$work/modules.txt"
while read -r f; do need sdist "$f"; need wheel "$f"; done < "$work/modules.txt"
if grep -qE '^(tests|benchmarks|examples|scripts)/' "$work/wheel.txt"; then
    echo "  the wheel holds more than the package:"
    grep -E '^(tests|benchmarks|examples|scripts)/' "$work/wheel.txt" | head
    missing=1
fi
meta="$(.venv/bin/python -c 'import sys, zipfile
w = zipfile.ZipFile(sys.argv[1])
print(w.read(sys.argv[2]).decode())' "$wheel" "paretomtl-$version.dist-info/METADATA")"
for field in "Version: $version" "License-Expression: MIT" "License-File: LICENSE" \
    "Requires-Python: >=3.10" "Provides-Extra: torch"; do
    grep -qx -- "$field" <<< "$meta" || { echo "  METADATA lacks '$field'"; missing=1; }
done
[ "$missing" = 0 ] || exit 1
elapsed $t checks
echo "  sdist: $(wc -l < "$work/sdist.txt") files; wheel: $(wc -l < "$work/wheel.txt") files;" \
    "$(wc -l < "$work/modules.txt") modules in both"

echo "== fresh venv, core dependencies only"
t=$SECONDS
"$PY" -m venv --without-pip "$work/core"
pip_install "$work/core/bin/python" "$wheel"
elapsed $t install
t=$SECONDS
cd "$work"
out="$("$work/core/bin/paretomtl" --version)"
[ "$out" = "paretomtl $version" ] || { echo "  paretomtl --version printed '$out'"; exit 1; }
out="$("$work/core/bin/python" -m paretomtl --version)"
[ "$out" = "paretomtl $version" ] || { echo "  python -m paretomtl --version: '$out'"; exit 1; }
"$work/core/bin/paretomtl" methods > "$work/methods.txt"
grep -q "mgda" "$work/methods.txt"
"$work/core/bin/python" - <<'PYEOF'
import importlib.util
import sys
import time

import numpy as np

import paretomtl
from paretomtl import solvers

assert paretomtl.__file__.startswith(sys.prefix), paretomtl.__file__  # the wheel's copy
assert importlib.util.find_spec("torch") is None, "torch came with the core install"
tic = time.perf_counter()
res = solvers.mgda(np.array([[1.0, 0.0], [-0.5, 1.0]]))
# K = 2 closed form: w1 = <g2 - g1, g2> / ||g1 - g2||^2 = 1.75 / 3.25 = 7/13.
assert np.allclose(res.weights, [7 / 13, 6 / 13], atol=1e-12), res.weights
print(f"  mgda on the wheel: weights {res.weights.round(4)}, "
      f"first call {time.perf_counter() - tic:.1f} s")
try:
    import paretomtl.adapters.torch  # noqa: F401
except ImportError as exc:
    assert "paretomtl[torch]" in str(exc), exc
else:
    raise AssertionError("paretomtl.adapters.torch imported without torch")
PYEOF
cd "$ROOT"
elapsed $t "command line and solve"

echo "== fresh venv, with [torch] (constraints.txt: $(grep '^torch==' constraints.txt))"
t=$SECONDS
"$PY" -m venv --without-pip "$work/torch"
pip_install "$work/torch/bin/python" "$wheel[torch]"
elapsed $t install
t=$SECONDS
cd "$work"
"$work/torch/bin/python" -c '
import sys, torch, paretomtl.adapters.torch as pt
assert pt.__file__.startswith(sys.prefix), pt.__file__
print(f"  torch {torch.__version__}")'
"$work/torch/bin/python" "$ROOT/examples/raw_arrays.py" > /dev/null
"$work/torch/bin/python" "$ROOT/examples/torch_training.py" --steps 10 --out "$work/tt" \
    > "$work/torch_training.txt"
grep -q "pcgrad" "$work/torch_training.txt"
cd "$ROOT"
elapsed $t examples
echo "packaging: ok"
