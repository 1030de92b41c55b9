"""The trace and demo commands: points, indicators and plot files; optional extras missing."""

import csv
import importlib.util
import json
import math
import sys

import numpy as np
import pytest

from paretomtl.cli import demo, main
from paretomtl.cli.trace import prepare
from paretomtl.front import available_front_methods

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


def test_without_moocore_the_hypervolume_is_null_with_a_note(tmp_path, monkeypatch, capsys):
    pytest.importorskip("moocore")
    args = ["trace", "--rays", "3", "--n-var", "4", "--out"]
    assert main([*args, str(tmp_path / "moocore")]) == 0
    with_moocore = json.loads((tmp_path / "moocore" / "indicators.json").read_text())
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "moocore", None)  # import moocore -> ImportError
    out = tmp_path / "no-moocore"
    assert main([*args, str(out)]) == 0
    info = json.loads((out / "indicators.json").read_text())
    assert info["hypervolume"] is None and info["hypervolume_fraction"] is None
    for key in ("gd", "igd", "igd_plus"):  # numpy's distances, moocore's values
        assert info[key] == pytest.approx(with_moocore[key], rel=1e-12, abs=1e-15)
    assert "pip install 'paretomtl[indicators]'" in info["note"]
    assert len(_read_points(out / "points.csv")) == 3
    assert "paretomtl[indicators]" in capsys.readouterr().out


def test_without_matplotlib_the_plot_is_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "no-plot"
    assert main(["trace", "--rays", "3", "--n-var", "4", "--out", str(out)]) == 0
    assert not (out / "front.png").exists()
    assert "skipped (matplotlib missing: pip install 'paretomtl[plot]')" in capsys.readouterr().out


@pytest.mark.parametrize(("problem", "rays"), [("zdt1", 0), ("zdt1", -3), ("dtlz2", 16)])
def test_prepare_reports_the_ray_check_of_simplex_rays(problem, rays):
    """The ray count is checked by simplex_rays alone; prepare names the option."""
    with pytest.raises(ValueError, match=rf"^--rays {rays}: ") as exc:
        prepare(problem, "epo", rays, n_var=5)
    if rays == 16:  # the nearest lattice sizes for three objectives
        assert "15" in str(exc.value) and "21" in str(exc.value)
