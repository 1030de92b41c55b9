"""The command line: trace and demo outputs, the methods list, the descent demo, errors."""

import csv
import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from paretomtl import demo
from paretomtl.__main__ import main
from paretomtl.front import available_front_methods
from paretomtl.solvers import available

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
HAS_MOOCORE = importlib.util.find_spec("moocore") is not None


def _read_points(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _check_run(out, n_obj, rays):
    """The three files of a trace: CSV rows, finite indicators, the plot."""
    rows = _read_points(out / "points.csv")
    assert len(rows) == rays
    assert list(rows[0]) == [
        *(f"r{i + 1}" for i in range(n_obj)),
        *(f"f{i + 1}" for i in range(n_obj)),
        "stationarity",
        "converged",
        "iterations",
    ]
    R = np.array([[float(row[f"r{i + 1}"]) for i in range(n_obj)] for row in rows])
    F = np.array([[float(row[f"f{i + 1}"]) for i in range(n_obj)] for row in rows])
    np.testing.assert_allclose(R.sum(axis=1), 1.0)
    assert np.isfinite(F).all()
    assert {row["converged"] for row in rows} <= {"0", "1"}
    assert all(int(row["iterations"]) >= 0 for row in rows)
    assert all(math.isfinite(float(row["stationarity"])) for row in rows)
    info = json.loads((out / "indicators.json").read_text())
    assert info["rays"] == rays and info["n_obj"] == n_obj and info["seconds"] >= 0
    assert info["reference_point"] == [1.1] * n_obj
    if HAS_MOOCORE:
        for key in ("gd", "igd", "igd_plus", "hypervolume", "hypervolume_true_front"):
            assert math.isfinite(info[key]) and info[key] >= 0, key
        assert 0.0 < info["hypervolume_fraction"] <= 1.0
        assert "note" not in info
    if HAS_MATPLOTLIB:
        assert (out / "front.png").stat().st_size > 1000
    return info


def test_trace_writes_points_indicators_and_plot(tmp_path, capsys):
    out = tmp_path / "trace"
    args = ["trace", "--problem", "zdt1", "--method", "tchebycheff", "--rays", "5"]
    assert main([*args, "--n-var", "5", "--out", str(out), "--seed", "3"]) == 0
    info = _check_run(out, 2, 5)
    assert (info["problem"], info["method"], info["n_var"], info["seed"]) == (
        "zdt1",
        "tchebycheff",
        5,
        3,
    )
    assert info["true_front_points"] == 1000
    captured = capsys.readouterr()
    assert str(out / "points.csv") in captured.out
    assert str(out / "indicators.json") in captured.out
    assert "plot:" in captured.out and "IGD" in captured.out
    # Not a terminal: the progress bar prints at most four lines.
    assert 1 <= len(captured.err.strip().splitlines()) <= 4
    assert "5/5" in captured.err


def test_trace_is_reproducible_with_a_seed(tmp_path):
    for name in ("a", "b"):
        assert main(["trace", "--rays", "3", "--n-var", "4", "--out", str(tmp_path / name)]) == 0
    a, b = (_read_points(tmp_path / name / "points.csv") for name in ("a", "b"))
    assert a == b


def test_trace_three_objectives(tmp_path):
    out = tmp_path / "dtlz2"
    args = ["trace", "--problem", "dtlz2", "--rays", "15", "--n-var", "5"]
    assert main([*args, "--out", str(out)]) == 0
    assert _check_run(out, 3, 15)["true_front_points"] == 10_000


def test_demo_is_trace_with_the_module_defaults(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    info = _check_run(out, 2, demo.RAYS)
    assert (info["problem"], info["method"], info["seed"]) == (demo.PROBLEM, demo.METHOD, demo.SEED)
    text = capsys.readouterr().out
    if HAS_MATPLOTLIB:
        assert f"plot:       {out / 'front.png'}" in text
    assert demo.METHOD in available_front_methods()
    assert demo.OUT == "results/demo"


def test_without_moocore_the_indicators_are_null_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "moocore", None)  # import moocore -> ImportError
    out = tmp_path / "no-moocore"
    assert main(["trace", "--rays", "3", "--n-var", "4", "--out", str(out)]) == 0
    info = json.loads((out / "indicators.json").read_text())
    assert info["igd"] is None and info["hypervolume_fraction"] is None
    assert "pip install 'paretomtl[indicators]'" in info["note"]
    assert len(_read_points(out / "points.csv")) == 3
    assert "paretomtl[indicators]" in capsys.readouterr().out


def test_without_matplotlib_the_plot_is_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "no-plot"
    assert main(["trace", "--rays", "3", "--n-var", "4", "--out", str(out)]) == 0
    assert not (out / "front.png").exists()
    assert "skipped (matplotlib missing: pip install 'paretomtl[plot]')" in capsys.readouterr().out


def test_methods_lists_solvers_and_front_methods(capsys):
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    solvers_at = text.index("Gradient solvers")
    front_at = text.index("Front methods")
    assert solvers_at < front_at
    for name in available():
        assert name in text[solvers_at:front_at]
    for name in available_front_methods():
        assert name in text[front_at:]
    assert "mgda" in text[solvers_at:front_at] and "tchebycheff" in text[front_at:]
    assert "Bowman 1976" in text[front_at:]  # with their papers


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


def _blocked(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    return str(blocker / "x")


BAD = {
    "unknown problem": (["trace", "--problem", "nope"], "available: convex-quadratic"),
    "unknown method": (["trace", "--method", "nope"], "tchebycheff"),
    "no rays": (["trace", "--rays", "0"], "--rays must be at least 1"),
    "negative rays": (["demo", "--rays", "-3"], "--rays must be at least 1"),
    "no lattice size": (["trace", "--problem", "dtlz2", "--rays", "16"], "15 and 21"),
    "bad n_var": (["trace", "--problem", "dtlz2", "--n-var", "2"], "n_var"),
    "negative seed": (["trace", "--seed", "-1"], "--seed"),
    "unwritable out": (["trace", "--n-var", "4", "--out", None], "cannot write to --out"),
    "descent steps": (["descent", "--steps", "0"], "--steps"),
    "descent out": (["descent", "--out", None], "cannot write to --out"),
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
    assert expected in err
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
