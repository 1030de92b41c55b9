"""``--version``: the installed distribution's version, from every entry point."""

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import paretomtl
from paretomtl.cli import main

# The installed metadata, written by the build backend from pyproject.toml: a route
# to the version that does not go through the CLI's own import of __version__.
INSTALLED = importlib.metadata.version("paretomtl")
# PEP 440 public versions (release, optional pre/post/dev parts), no local label.
PEP440 = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")


def test_version_is_a_pep440_release():
    assert PEP440.fullmatch(INSTALLED), INSTALLED


def test_main_prints_the_installed_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    captured = capsys.readouterr()
    assert captured.out == f"paretomtl {INSTALLED}\n"
    assert captured.err == ""


def test_version_wins_over_a_command(capsys):
    """``--version`` before a command prints the version and runs nothing."""
    with pytest.raises(SystemExit) as exc:
        main(["--version", "methods"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"paretomtl {INSTALLED}\n"


def test_help_lists_version(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--version" in capsys.readouterr().out


@pytest.mark.parametrize("entry", ["python -m", "console script"])
def test_version_from_a_shell(entry):
    if entry == "python -m":
        cmd = [sys.executable, "-m", "paretomtl"]
    else:
        script = shutil.which("paretomtl", path=str(Path(sys.executable).parent))
        if script is None:
            pytest.skip("no paretomtl script next to python: pip install -e . to create it")
        cmd = [script]
    proc = subprocess.run([*cmd, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"paretomtl {INSTALLED}\n"
    assert proc.stderr == ""
    assert INSTALLED == paretomtl.__version__
