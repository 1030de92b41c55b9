"""What the gallery's examples share: their command line, progress bars, CSV and PNG.

Each gallery example reproduces one paper's demonstration and writes its figure (PNG)
and table (CSV) under ``results/<name>/``. They all take ``--quick`` (the tiny size CI
runs) and ``--out`` (another folder), show a progress bar on a terminal (tqdm, from the
``examples`` extra; none when output is redirected) and draw with matplotlib's
non-interactive backend. Run one from a fresh clone with
``bash scripts/example.sh NAME [--quick]``.

Not an example itself (the leading underscore keeps it off the docs' gallery).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with ``--quick`` and ``--out`` (default ``results/<name>``);
    the description is the first line of ``doc`` (the example's docstring)."""
    first = (doc or name).strip().splitlines()[0]
    p = argparse.ArgumentParser(
        description=first, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes: the smoke run CI does (seconds)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results") / name,
        help=f"folder for the figures and tables (default results/{name})",
    )
    return p


def out_dir(path: Path) -> Path:
    """``path`` created if missing, returned."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def progress(
    iterable: Iterable[T], *, total: int | None = None, desc: str | None = None
) -> Iterator[T]:
    """``iterable`` with a tqdm progress bar on stderr when stderr is a terminal
    (tqdm's ``disable=None``); the plain iterable without tqdm installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield from iterable
        return
    yield from tqdm(iterable, total=total, desc=desc, disable=None, leave=False, dynamic_ncols=True)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``rows`` (dicts with the same keys, in the order of the first) as CSV;
    floats keep 6 significant digits. Returns ``path``."""
    if not rows:
        raise ValueError(f"write_csv({str(path)!r}): rows is empty; there is nothing to write")
    fields = list(rows[0])
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            if list(row) != fields:
                raise ValueError(
                    f"write_csv({str(path)!r}): a row has keys {list(row)}, not {fields}"
                )
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "matplotlib is missing: pip install 'paretomtl[examples]' "
            "(or run bash scripts/example.sh NAME, which installs it)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> Path:
    """Save ``fig`` as a PNG at 110 dpi, reduced to a 256-colour palette (a third of
    the size, no visible change: the gallery keeps its figures in the repository),
    close it, print and return ``path``."""
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    try:
        from PIL import Image  # matplotlib's own dependency
    except ImportError:
        pass
    else:
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(256)
        small.save(path, optimize=True)
    print(f"figure: {path}")
    return path
