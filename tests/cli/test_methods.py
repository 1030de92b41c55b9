"""The methods command: gradient solvers, loss weightings and front methods, with papers."""

from paretomtl import solvers, weighting
from paretomtl.cli import main
from paretomtl.cli.methods import sections
from paretomtl.front import available_front_methods


def parse(text):
    """{heading: [(name, kind), ...]} from the printed listing: a heading ends with ':' at
    the start of a line; a method's row starts with two spaces and its name, and the row
    below (its paper) with spaces only up to the summary's column."""
    out, heading = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            assert line.endswith(":"), line
            heading = line[:-1].split(" (")[0]
            out[heading] = []
        elif line.startswith("  ") and not line.startswith("   "):
            name, kind = line.split()[:2]
            out[heading].append((name, kind))
    return out


def test_methods_lists_solvers_weightings_and_front_methods(capsys):
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    solvers_at = text.index("Gradient solvers")
    weightings_at = text.index("Loss weightings")
    front_at = text.index("Front methods")
    assert solvers_at < weightings_at < front_at
    assert "  mgda " in text[solvers_at:weightings_at]
    assert "  dwa " in text[weightings_at:front_at]
    assert "  gradnorm " in text[weightings_at:front_at]  # stateful: losses and norms
    assert "  tchebycheff " in text[front_at:]
    assert "Bowman 1976" in text[front_at:]  # with their papers


def test_each_family_under_its_own_heading_and_nowhere_else(capsys):
    # Parsed row by row: the gradient solvers' section holds exactly the solvers'
    # registry (no loss weighting among them), the weightings' section exactly the
    # weighting registry, each with its registry kind.
    assert main(["methods"]) == 0
    listed = parse(capsys.readouterr().out)
    assert list(listed) == ["Gradient solvers", "Loss weightings", "Front methods"]
    gradient = listed["Gradient solvers"]
    weightings = listed["Loss weightings"]
    assert [n for n, _ in gradient] == list(solvers.available())
    assert [n for n, _ in weightings] == list(weighting.available())
    assert [n for n, _ in listed["Front methods"]] == list(available_front_methods())
    assert not {n for n, _ in gradient} & set(weighting.available())
    assert {k for _, k in gradient} == {"gradient", "stateful-gradient"}
    assert {k for _, k in weightings} == {"loss", "gradient-norm"}
    assert dict(weightings)["gradnorm"] == "gradient-norm"
    assert dict(gradient)["gradvac"] == "stateful-gradient"


def test_sections_name_their_package():
    titles = [title for title, _ in sections()]
    assert "paretomtl.solvers" in titles[0] and "paretomtl.weighting" in titles[1]
