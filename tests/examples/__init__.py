"""Tests of the examples' own pieces (the --quick runs in .ci/run cover the scripts)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@contextmanager
def example_module(name: str) -> Iterator[ModuleType]:
    """``examples/<name>.py`` imported as a module under a private name (the examples
    put their own folder on ``sys.path`` for ``_gallery``), removed from
    ``sys.modules`` on exit."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]
