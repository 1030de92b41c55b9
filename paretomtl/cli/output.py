"""Output folders that are written all at once or not at all.

A command writes its files into a staging folder beside the output folder and moves
them into place only when every file was written: a run that fails, or is
interrupted, leaves the output folder as it was (absent, or holding the previous
run's files), never a partial ``points.csv``. Files of the previous run that this
run did not write again (a plot, when matplotlib is missing now) are removed, so
the folder never mixes two runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def output_folder(text: str) -> Path:
    """The ``--out`` argument as a folder; an empty or blank one is refused.

    Example:
        >>> output_folder("results/demo")
        PosixPath('results/demo')
        >>> output_folder("")
        Traceback (most recent call last):
        ...
        ValueError: --out must name a folder; got ''
    """
    if not text.strip():
        raise ValueError(f"--out must name a folder; got {text!r}")
    return Path(text)


def _existing_ancestor(out: Path) -> Path:
    path = out.absolute()
    while not path.exists():
        path = path.parent
    return path


def check_writable(out: Path) -> None:
    """A ValueError unless ``out`` can be created (or written, if it exists); creates
    nothing."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"cannot write to --out {out}: it is a file, not a folder")
    base = _existing_ancestor(out)
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to --out {out}: {base} is not a writable folder")


@contextmanager
def staged(out: Path, names: tuple[str, ...]) -> Iterator[Path]:
    """Yield a staging folder; on success move the files ``names`` from it into ``out``.

    Files of ``names`` that the run did not write are removed from ``out``. On any
    exception the staging folder is deleted and ``out`` is left untouched.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = Path(tmp) / "run"
        ...     with staged(out, ("a.txt",)) as stage:
        ...         _ = (stage / "a.txt").write_text("done")
        ...     sorted(p.name for p in out.iterdir()), (out / "a.txt").read_text()
        (['a.txt'], 'done')
    """
    check_writable(out)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name or 'out'}-", dir=_existing_ancestor(out)))
    except OSError as exc:
        raise ValueError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc
    try:
        yield stage
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            if (stage / name).exists():
                os.replace(stage / name, out / name)
            elif (out / name).exists():
                (out / name).unlink()  # the previous run's, not this one's
    finally:
        shutil.rmtree(stage, ignore_errors=True)
