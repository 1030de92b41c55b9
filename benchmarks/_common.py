"""What the benchmark scripts share: a report that prints and keeps its lines, and the
machine's description (imported as ``_common`` by scripts run from this folder)."""

from __future__ import annotations

import os


class Report:
    """Prints lines as they come and keeps them for --out."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        """Print ``text`` and keep it."""
        for line in text.split("\n"):
            print(line, flush=True)
            self.lines.append(line)

    def heading(self, title: str) -> None:
        """A title underlined with '='."""
        self(title)
        self("=" * len(title))

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        """An aligned table: the first column left-aligned, the others right; an empty
        row prints as a blank line between groups."""
        full = [headers, *(r for r in rows if r)]
        widths = [max(len(r[i]) for r in full) for i in range(len(headers))]

        def fmt(row: list[str]) -> str:
            cells = [row[0].ljust(widths[0])]
            cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            return "  ".join(cells).rstrip()

        self(fmt(headers))
        self("  ".join("-" * w for w in widths))
        for row in rows:
            self(fmt(row) if row else "")
        self()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or "unknown"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or "unknown"."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"
