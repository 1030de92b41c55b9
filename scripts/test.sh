#!/usr/bin/env bash
# The README's test command: creates .venv if needed, lints, runs the test suite
# (with doctests) and a smoke run of the solver benchmark.
EXTRAS=dev
source "$(dirname "$0")/_venv.sh"
.venv/bin/ruff check paretomtl tests benchmarks examples docs/hooks
.venv/bin/ruff format --check paretomtl tests benchmarks examples docs/hooks
.venv/bin/python -m pytest --doctest-modules paretomtl tests -q "$@"
