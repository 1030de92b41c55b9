"""The methods command: gradient solvers, loss weightings and front methods, with papers."""

from paretomtl import solvers, weighting
from paretomtl.cli import main
from paretomtl.front import available_front_methods


def test_methods_lists_solvers_weightings_and_front_methods(capsys):
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    solvers_at = text.index("Gradient solvers")
    weightings_at = text.index("Loss weightings")
    front_at = text.index("Front methods")
    assert solvers_at < weightings_at < front_at
    for name in solvers.available():
        assert f"  {name} " in text[solvers_at:weightings_at]
    for name in weighting.available():
        assert f"  {name} " in text[weightings_at:front_at]
    for name in available_front_methods():
        assert f"  {name} " in text[front_at:]
    assert "  mgda " in text[solvers_at:weightings_at]
    assert "  dwa " in text[weightings_at:front_at]
    assert "  gradnorm " in text[weightings_at:front_at]  # stateful: losses and norms
    assert "  tchebycheff " in text[front_at:]
    assert "Bowman 1976" in text[front_at:]  # with their papers
