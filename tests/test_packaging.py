"""The package's metadata: one version, the license, the typing marker, the torch range.

The checks read pyproject.toml, constraints.txt, LICENSE and the scripts as files and
compare them with what is installed (``importlib.metadata``, the package's folder),
so a version typed twice, a lost ``py.typed`` or an exact torch pin in the published
extras fails here. ``.ci/package.sh`` builds the wheel and sdist and checks their
contents and fresh installs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
import sys
from pathlib import Path

import pytest

import paretomtl

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

requirements = pytest.importorskip("packaging.requirements")
specifiers = pytest.importorskip("packaging.specifiers")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _requirements(extra: str) -> list:
    return [requirements.Requirement(r) for r in PROJECT["optional-dependencies"][extra]]


def _pinned_torch() -> str:
    pins = [
        line.split("==", 1)[1].strip()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if re.match(r"torch\s*==", line)
    ]
    assert len(pins) == 1, f"constraints.txt should pin torch once, found {pins}"
    return pins[0]


def test_version_is_written_once():
    assert importlib.metadata.version("paretomtl") == paretomtl.__version__, (
        "installed metadata and paretomtl.__version__ differ: reinstall (bash scripts/test.sh)"
    )
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "paretomtl.__version__"
    }
    assigned = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "paretomtl").rglob("*.py"))
        if re.search(r"^__version__\s*=", path.read_text(), flags=re.M)
    ]
    assert assigned == ["paretomtl/__init__.py"]


def test_py_typed_ships_with_the_package():
    assert (importlib.resources.files("paretomtl") / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["paretomtl"]
    files = importlib.metadata.files("paretomtl") or []
    if any(str(f).endswith("__init__.py") for f in files):  # a regular, not editable, install
        assert "paretomtl/py.typed" in {str(f) for f in files}


def test_license_is_mit():
    text = " ".join((ROOT / "LICENSE").read_text().split())
    assert text.startswith("MIT License Copyright (c) 2026 The paretomtl developers ")
    # The two sentences that make the MIT license (opensource.org/license/mit).
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
    assert not re.search(r"GNU|Apache|Mozilla|BSD", text)
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert importlib.metadata.metadata("paretomtl")["License-Expression"] == "MIT"


def test_torch_extra_is_a_range_that_holds_the_pinned_release():
    (torch,) = [r for r in _requirements("torch") if r.name == "torch"]
    operators = {spec.operator for spec in torch.specifier}
    assert ">=" in operators, f"the torch extra should state its oldest release: {torch}"
    assert not operators & {"==", "==="}, f"the torch extra pins torch exactly: {torch}"
    assert torch.specifier.contains(_pinned_torch()), "constraints.txt pins a torch outside it"


def test_dev_extra_gets_torch_through_the_range():
    dev = _requirements("dev")
    direct = [r for r in dev if r.name == "torch"]
    assert all(not {s.operator for s in r.specifier} & {"==", "==="} for r in direct), direct
    via_extra = [r for r in dev if r.name == "paretomtl" and "torch" in r.extras]
    assert direct or via_extra, "the dev extra should bring torch"


def test_constraints_pin_the_installed_torch():
    pinned = _pinned_torch()
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), pinned
    torch = pytest.importorskip("torch")
    assert torch.__version__.split("+")[0] == pinned, (
        f"torch {torch.__version__} installed, constraints.txt pins {pinned}"
    )


def test_every_pip_install_of_the_scripts_goes_through_the_constraints():
    scripts = [*ROOT.glob("scripts/*.sh"), ROOT / ".ci" / "run", *ROOT.glob(".ci/*.sh")]
    installs = []
    for path in scripts:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\bpip\b.*\binstall\b", code):
                installs.append((f"{path.relative_to(ROOT)}:{number}", code))
    assert installs, "no pip install found in the scripts"
    unconstrained = [where for where, code in installs if "-c constraints.txt" not in code]
    assert not unconstrained, f"pip install without -c constraints.txt at {unconstrained}"


def test_classifiers_name_the_supported_pythons():
    supported = specifiers.SpecifierSet(PROJECT["requires-python"])
    minors = sorted(
        int(m[1])
        for c in PROJECT["classifiers"]
        if (m := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))
    )
    assert minors == list(range(minors[0], minors[-1] + 1)), minors
    assert all(f"3.{m}" in supported for m in minors)
    assert f"3.{minors[0] - 1}" not in supported, "requires-python allows an unlisted Python"
    assert "License :: OSI Approved :: MIT License" not in PROJECT["classifiers"]  # PEP 639


def test_metadata_names_authors_and_urls():
    meta = importlib.metadata.metadata("paretomtl")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert urls["Repository"] == "https://github.com/paretomtl/paretomtl"
    assert urls["Documentation"] == "https://paretomtl.github.io/paretomtl"
    assert meta["Author"] == "The paretomtl developers"
