# Sourced by the other scripts: create .venv on first use and install the package
# (editable) with the extras named in $EXTRAS. Every install goes through
# constraints.txt, which pins the exact releases the project is tested against
# (torch among them: the project never asks pip for an unpinned torch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q -c constraints.txt --upgrade pip
fi
# Reinstall when the metadata changes: pyproject.toml, the pins, or the version.
key="$( (cat pyproject.toml constraints.txt; grep '^__version__' paretomtl/__init__.py) | cksum | cut -d' ' -f1)"
stamp=".venv/.installed-${key}-${EXTRAS}"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[${EXTRAS}]"
    if [ "$EXTRAS" = "dev" ]; then
        # Test-only peer, without its declared dependencies (see the dev extra's comment).
        .venv/bin/python -m pip install -q -c constraints.txt --no-deps "LibMTL==1.1.5"
    fi
    touch "$stamp"
fi
