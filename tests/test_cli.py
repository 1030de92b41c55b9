"""The command line: the demo's outputs, the methods list, one-line errors."""

import json
import subprocess
import sys

from paretomtl.__main__ import main
from paretomtl.solvers import available


def test_demo_writes_points_summary_and_plot(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--starts", "2", "--steps", "30"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"mgda", "pareto-step", "pcgrad", "sum"}
    lines = (out / "points.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 2 * 4  # header, 2 starts x 4 methods
    assert (out / "front.png").stat().st_size > 1000
    assert "plot:" in capsys.readouterr().out


def test_methods_lists_every_registered_method(capsys):
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    for name in available():
        assert name in text


def test_bad_arguments_exit_2_with_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for args in (["demo", "--steps", "0"], ["demo", "--out", str(blocker / "x")]):
        proc = subprocess.run(
            [sys.executable, "-m", "paretomtl", *args], capture_output=True, text=True
        )
        assert proc.returncode == 2
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
