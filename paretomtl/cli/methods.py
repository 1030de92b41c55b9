"""The ``methods`` command: the registered methods, one section per family, with papers.

Three sections: the gradient solvers (:mod:`paretomtl.solvers`), the loss
weightings (:mod:`paretomtl.weighting`) and the front methods
(:mod:`paretomtl.front`).
"""

from __future__ import annotations

from typing import Any

from paretomtl import solvers, weighting
from paretomtl.front import available_front_methods, front_method_info

Row = tuple[str, str, str, str]  # name, kind, summary, paper


def _row(entry: Any) -> Row:
    return (entry.name, entry.kind, entry.summary, entry.paper)


def sections() -> list[tuple[str, list[Row]]]:
    """The sections of the listing: a title and its rows ``(name, kind, summary, paper)``.

    Example:
        >>> [title.split(" (")[0] for title, _ in sections()]
        ['Gradient solvers', 'Loss weightings', 'Front methods']
    """
    gradient = [_row(solvers.info(n)) for n in solvers.available()]
    weightings = [_row(weighting.info(n)) for n in weighting.available()]
    fronts = [_row(front_method_info(n)) for n in available_front_methods()]
    return [
        ("Gradient solvers (paretomtl.solvers; combine K task gradients into one step)", gradient),
        ("Loss weightings (paretomtl.weighting; K task losses in, K weights out)", weightings),
        ("Front methods (paretomtl.front.trace; python -m paretomtl trace --method NAME)", fronts),
    ]


def print_methods() -> None:
    """Print :func:`sections`: each method's name, kind and summary, its paper below."""
    for i, (title, rows) in enumerate(sections()):
        if i:
            print()
        print(f"{title}:")
        width = max((len(r[0]) for r in rows), default=0)
        kinds = max((len(r[1]) for r in rows), default=0)
        for name, kind, summary, paper in rows:
            print(f"  {name:<{width}}  {kind:<{kinds}}  {summary}")
            print(f"  {'':<{width}}  {'':<{kinds}}  {paper}")
