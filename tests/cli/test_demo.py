"""The descent command: the founding solvers on the Pareto MTL toy problem."""

import importlib.util
import json

from paretomtl.cli import main

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def test_descent_writes_points_summary_and_plot(tmp_path, capsys):
    out = tmp_path / "descent"
    assert main(["descent", "--out", str(out), "--starts", "2", "--steps", "30"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"mgda", "pareto-step", "pcgrad", "sum"}
    lines = (out / "points.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 2 * 4  # header, 2 starts x 4 methods
    if HAS_MATPLOTLIB:
        assert (out / "front.png").stat().st_size > 1000
    assert "plot:" in capsys.readouterr().out
