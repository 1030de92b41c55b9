"""The entry points: errors and exit codes, the console script, the deprecated modules."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paretomtl.cli import main


def _blocked(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    return str(blocker / "x")


BAD = {
    "unknown problem": (["trace", "--problem", "nope"], ["available: convex-quadratic"]),
    "unknown method": (["trace", "--method", "nope"], ["tchebycheff"]),
    "no rays": (["trace", "--rays", "0"], ["--rays 0"]),
    "negative rays": (["demo", "--rays", "-3"], ["--rays -3"]),
    "no lattice size": (["trace", "--problem", "dtlz2", "--rays", "16"], ["--rays 16", "15", "21"]),
    "bad n_var": (["trace", "--problem", "dtlz2", "--n-var", "2"], ["n_var"]),
    "negative seed": (["trace", "--seed", "-1"], ["--seed"]),
    "unwritable out": (["trace", "--n-var", "4", "--out", None], ["cannot write to --out"]),
    "descent steps": (["descent", "--steps", "0"], ["--steps"]),
    "descent out": (["descent", "--out", None], ["cannot write to --out"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_exit_2_with_one_line(case, tmp_path, capsys):
    args, expected = BAD[case]
    args = [_blocked(tmp_path) if a is None else a for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    for text in expected:
        assert text in err
    assert captured.out == ""
    if case != "unwritable out":  # nothing ran, nothing written
        assert not (tmp_path / "out").exists()


def test_bad_arguments_from_a_shell(tmp_path):
    for args in (["trace", "--problem", "nope"], ["trace", "--out", _blocked(tmp_path)]):
        proc = subprocess.run(
            [sys.executable, "-m", "paretomtl", *args], capture_output=True, text=True
        )
        assert proc.returncode == 2
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["trace", "--rays", "many"])
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_console_script_prints_what_python_m_prints():
    script = shutil.which("paretomtl", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("no paretomtl script next to python: pip install -e . to create it")
    by_script, by_module = (
        subprocess.run([*cmd, "methods"], capture_output=True, text=True, check=True)
        for cmd in ([script], [sys.executable, "-m", "paretomtl"])
    )
    assert "Gradient solvers" in by_module.stdout
    assert by_script.stdout == by_module.stdout
    usage = subprocess.run([script, "nope"], capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: paretomtl ")


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("paretomtl.tracing", "paretomtl.cli.trace", ["trace_to_folder", "ProgressBar"]),
        ("paretomtl.demo", "paretomtl.cli.demo", ["descent", "run", "RAYS", "PROBLEM"]),
    ],
)
def test_moved_modules_warn_and_reexport(old, new, names, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new}"):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    for name in [*names, *module.__all__]:
        assert getattr(module, name) is getattr(target, name), name
