"""The package's import graph: layered, without cycles, without private reach-ins.

Every import statement of every module in ``paretomtl/`` (function-level ones
included) is read from the source. The rules:

- no cycle among the modules;
- no name starting with ``_`` imported from another module (dunders aside);
- a private module (``paretomtl.solvers._input``) is imported only from inside the
  package that holds it (``paretomtl.solvers.*``); top-level private modules
  (``paretomtl._registry``, ``paretomtl._kernels``) serve the whole package;
- torch only below ``paretomtl.adapters``; nothing in the library imports the CLI;
- no reach for ``__wrapped__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "paretomtl"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module of a ``from ... import`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not MODULES[importer].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) for each import in module ``name``."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((resolve(name, node), [a.name for a in node.names], node.lineno))
    return found


def edges(name: str) -> set[str]:
    """The paretomtl modules that ``name`` imports (a package means its __init__)."""
    out = set()
    for module, names, _ in imports(name):
        if not module.startswith("paretomtl"):
            continue
        submodules = {f"{module}.{n}" for n in names} & set(MODULES)
        out |= submodules
        if not submodules or set(names) - {s.rsplit(".", 1)[1] for s in submodules}:
            out.add(module)
    out.discard(name)
    return out


def test_the_walk_sees_the_whole_package():
    assert {"paretomtl.solvers.mgda", "paretomtl.front", "paretomtl._registry"} <= set(MODULES)
    assert "paretomtl.solvers._input" in edges("paretomtl.solvers.mgda")


def test_no_import_cycle():
    graph = {name: edges(name) for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_reach_in(name):
    problems = []
    for module, names, line in imports(name):
        if not module.startswith("paretomtl"):
            continue
        submodules = [n for n in names if f"{module}.{n}" in MODULES]
        private = [
            n for n in names if n.startswith("_") and not n.startswith("__") and n not in submodules
        ]
        if private:
            problems.append(f"line {line}: imports private {private} from {module}")
        for full in [module] + [f"{module}.{n}" for n in submodules]:
            problems += private_module_use(name, full, line)
    source = MODULES[name].read_text()
    if ".__wrapped__" in source:
        problems.append("reaches for __wrapped__")
    assert not problems, f"{name}: " + "; ".join(problems)


def private_module_use(importer: str, module: str, line: int) -> list[str]:
    """A problem for each private part of ``module`` that ``importer`` lives outside."""
    problems = []
    parts = module.split(".")
    for i, part in enumerate(parts):
        owner = ".".join(parts[:i])
        if part.startswith("_") and i > 1 and not (importer + ".").startswith(owner + "."):
            problems.append(f"line {line}: imports {module}, private to {owner}")
    return problems


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layers(name):
    imported = {module for module, _, _ in imports(name)}
    if not name.startswith("paretomtl.adapters"):
        assert not {m for m in imported if m.split(".")[0] == "torch"}, f"{name} imports torch"
    if not name.startswith(("paretomtl.cli", "paretomtl.__main__", "paretomtl.tracing")):
        if name != "paretomtl.demo":
            assert not {m for m in imported if m.startswith("paretomtl.cli")}, name
