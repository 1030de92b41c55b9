# Sourced by the other scripts: create .venv on first use and install the package
# with the extras named in $EXTRAS. pip's constraint file pins torch where it applies;
# the project never asks for an unpinned torch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=".venv/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)-${EXTRAS}"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
    touch "$stamp"
fi
