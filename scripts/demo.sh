#!/usr/bin/env bash
# The README's demo: creates .venv if needed (with matplotlib for the plot and moocore
# for the indicators), then traces ZDT1's Pareto front from 16 preference vectors into
# results/demo (points.csv, indicators.json, front.png).
# Extra arguments go to `python -m paretomtl demo` (e.g. --out DIR, --method NAME).
EXTRAS=plot,indicators
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python -m paretomtl demo "$@"
