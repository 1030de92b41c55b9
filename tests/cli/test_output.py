"""Output folders are written all at once or not at all (issue 12, class 7).

Every way a run can fail (in the trace, writing the points, the indicators, the plot)
is combined with every state the output folder can be in before (absent, empty,
holding the previous run's files): after the failure the folder is exactly as it was,
and no staging folder is left anywhere.
"""

import itertools

import pytest

from paretomtl.cli import main
from paretomtl.cli import trace as cli_trace

STAGES = ("trace", "write_points", "indicators", "plot_front")
BEFORE = ("absent", "empty", "previous-run")


def snapshot(root):
    """Every file and folder below ``root`` with its content."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def prepare_out(tmp_path, state):
    out = tmp_path / "nested" / "out"
    if state != "absent":
        out.mkdir(parents=True)
    if state == "previous-run":
        for name in cli_trace.OUTPUTS:
            (out / name).write_text(f"previous {name}")
    return out


def failing(original):
    def fail(*args, **kwargs):
        if original.__name__ in ("write_points", "plot_front"):
            args[0].write_text("half written")  # a partial file, then the failure
        raise RuntimeError("injected failure")

    return fail


@pytest.mark.parametrize(("stage", "before"), list(itertools.product(STAGES, BEFORE)))
def test_a_failed_trace_leaves_the_folder_as_it_was(tmp_path, monkeypatch, stage, before):
    out = prepare_out(tmp_path, before)
    was = snapshot(tmp_path)
    monkeypatch.setattr(cli_trace, stage, failing(getattr(cli_trace, stage)))
    with pytest.raises(RuntimeError, match="injected failure"):
        cli_trace.trace_to_folder("zdt1", "linear", 3, out, n_var=3)
    assert snapshot(tmp_path) == was


@pytest.mark.parametrize("before", BEFORE)
def test_a_run_replaces_the_previous_one_entirely(tmp_path, monkeypatch, before):
    out = prepare_out(tmp_path, before)
    monkeypatch.setattr(cli_trace, "plot_front", lambda *args, **kwargs: None)  # no plot
    res = cli_trace.trace_to_folder("zdt1", "linear", 3, out, n_var=3)
    assert sorted(p.name for p in out.iterdir()) == ["indicators.json", "points.csv"]
    assert res["plot"] is None and res["points"] == str(out / "points.csv")
    assert (out / "points.csv").read_text().startswith("r1,r2,f1,f2")
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no staging folder left


@pytest.mark.parametrize("blank", ["", " ", "\t"])
@pytest.mark.parametrize("command", ["trace", "demo", "descent"])
def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys, command, blank):
    monkeypatch.chdir(tmp_path)
    assert main([command, "--out", blank]) == 2
    assert "--out must name a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_descent_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    from paretomtl.cli import demo

    out = prepare_out(tmp_path, "previous-run")
    was = snapshot(tmp_path)
    monkeypatch.setattr(demo, "_plot", failing(cli_trace.plot_front))
    with pytest.raises(RuntimeError, match="injected failure"):
        demo.descent(out, starts=1, steps=2)
    assert snapshot(tmp_path) == was
