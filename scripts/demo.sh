#!/usr/bin/env bash
# The README's demo: creates .venv if needed, then runs the built-in demo.
# Extra arguments go to `python -m paretomtl demo` (e.g. --out DIR).
EXTRAS=plot
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python -m paretomtl demo "$@"
