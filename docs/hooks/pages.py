"""MkDocs hook: the parts of the site that are generated from the repository.

Loaded by mkdocs.yml (``hooks:``). A page asks for a generated part with an HTML
comment on a line of its own; the hook replaces the comment before the page is
rendered:

``<!-- methods-table: gradient -->`` / ``<!-- methods-table: weighting -->``
    The table of every registered gradient method (or loss weighting): name, paper,
    Gram space or K x M, stateful, time at K = 10 against TorchJD (parsed from
    ``benchmarks/results/methods_cpu.txt``) and when it helps (``docs/_data/
    when_it_helps.yml``). From the registries, so a new method appears by itself.
``<!-- readme: HEADING -->`` / ``<!-- readme-intro: HEADING -->``
    The README's section whose heading starts with HEADING, with its subsections
    (``readme``) or up to its first subsection (``readme-intro``).
``<!-- include: PATH -->``
    A Markdown file of the repository (CHANGELOG.md, CONTRIBUTING.md).
``<!-- result: NAME -->`` / ``<!-- results-not-listed -->``
    ``benchmarks/results/NAME`` in a text block; every results file that no
    ``result`` marker of the page names.
``<!-- example: NAME -->``
    How to run ``examples/NAME.py``, its captured output and figure where
    ``docs/assets/gallery`` has them (``bash scripts/docs.sh --figures``), its source.
``<!-- api-modules: PACKAGE [except NAME ...] -->``
    One mkdocstrings block per public module of PACKAGE's folder.

Links in included Markdown are rewritten: to a page of the site where the target is
in docs/, to the file on GitHub otherwise.

Checks (warnings, which ``mkdocs build --strict`` turns into errors): a registered
method without a sentence in when_it_helps.yml (or a sentence for no method), an
example without its gallery page, a marker that finds nothing.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
REPO_URL = "https://github.com/paretomtl/paretomtl/blob/main/"
LOG = logging.getLogger("mkdocs.hooks.paretomtl")

_MARKER = re.compile(r"^<!-- (?P<kind>[a-z-]+)(?::\s*(?P<arg>.*?))? -->[ \t]*$", re.MULTILINE)
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*$")


def _warn(page: object, message: str) -> None:
    LOG.warning("%s: %s", getattr(getattr(page, "file", None), "src_uri", page), message)


# --- links -------------------------------------------------------------------------


def _rewrite_links(markdown: str, page_uri: str) -> str:
    """Relative links of a repository-root file, made valid from the page ``page_uri``."""

    def fix(match: re.Match[str]) -> str:
        target = match["target"]
        if re.match(r"^[a-z]+:|^#|^/", target):
            return match[0]
        path, _, anchor = target.partition("#")
        path = posixpath.normpath(path)
        if path.startswith("docs/") and path.endswith(".md"):
            rel = posixpath.relpath(path[len("docs/") :], posixpath.dirname(page_uri) or ".")
            new = rel + (f"#{anchor}" if anchor else "")
        else:
            new = REPO_URL + path + (f"#{anchor}" if anchor else "")
        return f"[{match['text']}]({new})"

    return _LINK.sub(fix, markdown)


# --- README sections ----------------------------------------------------------------


def readme_section(heading: str, *, intro_only: bool) -> str | None:
    """The README's section under the heading starting with ``heading``, or None.

    Its headings are shifted so that its subsections are level 2 on the page.
    """
    lines = (ROOT / "README.md").read_text(encoding="utf-8").split("\n")
    start = level = None
    fenced = False
    body: list[str] = []
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if start is None:
            if match and match["title"].startswith(heading):
                start, level = True, len(match["hashes"])
            continue
        if match and (intro_only or len(match["hashes"]) <= level):
            break
        if match:
            line = "#" * (len(match["hashes"]) - level + 1) + " " + match["title"]
        body.append(line)
    if start is None:
        return None
    return "\n".join(body).strip("\n")


# --- the methods tables --------------------------------------------------------------


def _columns(dashes: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]


def parse_methods_results(text: str) -> dict[str, dict[str, str]]:
    """Per method of ``methods_cpu.txt``: its K = 10 time, TorchJD's, and the input."""
    lines = text.split("\n")
    header = next((i for i, line in enumerate(lines) if line.startswith("method")), None)
    if header is None or not lines[header + 1].startswith("---"):
        return {}
    names = lines[header].split()
    spans = _columns(lines[header + 1])
    try:
        col = names.index("K=10")
    except ValueError:
        return {}
    lo = spans[col - 1][1]  # cells are right-aligned: from the previous column's end
    hi = spans[col][1]
    out: dict[str, dict[str, str]] = {}
    current = None
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        first = line[: spans[0][1]]
        cell = line[lo:hi].strip()
        if not line.startswith(" "):
            match = re.match(r"(?P<name>\S+) \((?P<input>[GJ])\)", first.strip())
            if match is None:
                continue
            current = match["name"]
            out[current] = {"ours": cell, "input": match["input"]}
        elif current and first.strip() == "torchjd":
            out[current]["torchjd"] = cell
        elif current and first.strip() == "speed-up":
            out[current]["ratio"] = cell
    return out


def check_against_readme_table(text: str, times: dict[str, dict[str, str]]) -> list[str]:
    """Where the parsed K = 10 times disagree with the file's own Markdown table.

    ``methods_cpu.txt`` ends with the README's table (``| `name` | paper | ... | K = 10:
    ours | TorchJD | ratio |``), written by the benchmark from the same numbers: an
    independent route to the column this hook cuts out of the wide table.
    """
    problems = []
    for row in re.finditer(r"^\| `(?P<name>[^`]+)` \|(?P<cells>.*)\|\s*$", text, re.MULTILINE):
        cells = [c.strip() for c in row["cells"].split("|")]
        if len(cells) < 5:
            continue
        ours, peer = cells[-3], cells[-2]
        parsed = times.get(row["name"], {})
        if _number(parsed.get("ours")) != _number(ours):
            problems.append(f"{row['name']}: K=10 {parsed.get('ours')!r} != table's {ours!r}")
        if peer != "-" and _number(parsed.get("torchjd")) != _number(peer):
            problems.append(f"{row['name']}: TorchJD {parsed.get('torchjd')!r} != {peer!r}")
    return problems


def _number(cell: str | None) -> float | None:
    """A time cell (``"13.0 us"``, ``"463.0 ms"``) in microseconds, or None."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s)\s*", cell or "")
    if match is None:
        return None
    return float(match[1]) * {"us": 1.0, "ms": 1e3, "s": 1e6}[match[2]]


def _when_it_helps(page: object, family: str, names: tuple[str, ...]) -> dict[str, str]:
    data = yaml.safe_load((ROOT / "docs/_data/when_it_helps.yml").read_text(encoding="utf-8"))
    sentences = {k: " ".join(str(v).split()) for k, v in (data.get(family) or {}).items()}
    for name in names:
        if name not in sentences:
            _warn(page, f"docs/_data/when_it_helps.yml has no sentence for {family} {name!r}")
    for name in sentences:
        if name not in names:
            _warn(page, f"docs/_data/when_it_helps.yml: {name!r} is not a registered {family}")
    return sentences


def _short_paper(paper: str) -> str:
    return paper.replace("|", "/")


def methods_table(page: object, family: str) -> str:
    if family == "gradient":
        from paretomtl import solvers as registry
    elif family == "weighting":
        from paretomtl import weighting as registry
    else:
        _warn(page, f"methods-table: unknown family {family!r} (gradient or weighting)")
        return ""
    names = tuple(registry.available())
    helps = _when_it_helps(page, family, names)
    rows = []
    if family == "gradient":
        results_file = ROOT / "benchmarks/results/methods_cpu.txt"
        text = results_file.read_text(encoding="utf-8")
        times = parse_methods_results(text)
        if not times:
            _warn(page, f"{results_file.name}: no table with a K=10 column found")
        for problem in check_against_readme_table(text, times):
            _warn(page, f"{results_file.name}: parsed {problem}")
        rows.append(
            "| method | paper | works on | state | K = 10: ours | TorchJD | when it helps |"
        )
        rows.append("|---|---|---|---|---|---|---|")
        for name in names:
            entry = registry.info(name)
            space = "K x M" if getattr(entry.obj, "needs_grads", False) else "Gram"
            state = "stateful" if entry.kind == "stateful-gradient" else "-"
            t = times.get(name)
            if t is None:
                _warn(page, f"{results_file.name} has no row for {name!r}")
                t = {}
            ours = t.get("ours", "-") + (" (J)" if t.get("input") == "J" else "")
            peer = t.get("torchjd", "-")
            if t.get("ratio"):
                peer += f" ({t['ratio']})"
            rows.append(
                f"| `{name}` | {_short_paper(entry.paper)} | {space} | {state} | {ours} "
                f"| {peer} | {helps.get(name, '')} |"
            )
    else:
        rows.append("| weighting | paper | reads | state | weights | when it helps |")
        rows.append("|---|---|---|---|---|---|")
        for name in names:
            entry = registry.info(name)
            inputs = getattr(entry.obj, "inputs", ("losses",))
            reads = "losses, gradient norms at a layer" if "grad_norms" in inputs else "losses"
            memory = set(getattr(entry.obj, "fields", {})) - {"_weights"}
            state = "stateful" if memory else "-"
            domain = getattr(entry.obj, "weight_domain", ">= 0")
            weights = "may be negative" if domain == "finite" else domain
            rows.append(
                f"| `{name}` | {_short_paper(entry.paper)} | {reads} | {state} | {weights} "
                f"| {helps.get(name, '')} |"
            )
    return "\n".join(rows)


# --- benchmarks, examples, API ------------------------------------------------------


def result_block(page: object, name: str) -> str:
    path = ROOT / "benchmarks/results" / name
    if not path.is_file():
        _warn(page, f"result: benchmarks/results/{name} does not exist")
        return ""
    return (
        f"[`benchmarks/results/{name}`]({REPO_URL}benchmarks/results/{name})\n\n"
        f'```text\n--8<-- "benchmarks/results/{name}"\n```'
    )


def results_not_listed(markdown: str) -> str:
    listed = set(re.findall(r"<!-- result: (\S+) -->", markdown))
    extra = sorted(
        p.name for p in (ROOT / "benchmarks/results").glob("*.txt") if p.name not in listed
    )
    if not extra:
        return ""
    parts = ["## Other results files", ""]
    for name in extra:
        path = ROOT / "benchmarks/results" / name
        first = path.read_text(encoding="utf-8").split("\n", 1)[0].strip("# ")
        parts += [f"### {name}", "", first, "", result_block(None, name), ""]
    return "\n".join(parts)


def example_block(page: object, name: str) -> str:
    source = ROOT / "examples" / f"{name}.py"
    if not source.is_file():
        _warn(page, f"example: examples/{name}.py does not exist")
        return ""
    gallery = ROOT / "docs/assets/gallery"
    page_dir = posixpath.dirname(page.file.src_uri)
    parts = []
    for figure in sorted(gallery.glob(f"{name}*.png")):
        rel = posixpath.relpath(f"assets/gallery/{figure.name}", page_dir)
        parts += [f"![{name}: {figure.stem}]({rel})", ""]
    output = gallery / f"{name}.txt"
    if output.is_file():
        command, _, text = output.read_text(encoding="utf-8").partition("\n")
        parts += [
            f'??? note "Its output ({command.strip()})"',
            "",
            "    ```text",
            *("    " + line if line else "" for line in text.rstrip("\n").split("\n")),
            "    ```",
            "",
        ]
    parts += [
        f"## Source: [`examples/{name}.py`]({REPO_URL}examples/{name}.py)",
        "",
        f'```python title="examples/{name}.py"',
        f'--8<-- "examples/{name}.py"',
        "```",
    ]
    return "\n".join(parts)


def api_modules(page: object, arg: str) -> str:
    package, _, rest = arg.partition(" except ")
    package = package.strip()
    skip = set(rest.split())
    folder = ROOT / package.replace(".", "/")
    if not folder.is_dir():
        _warn(page, f"api-modules: {package} is not a package folder")
        return ""
    blocks = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_") or path.stem in skip:
            continue
        blocks.append(f"::: {package}.{path.stem}\n    options:\n      heading_level: 3\n")
    return "\n".join(blocks)


# --- mkdocs events ------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    def expand(match: re.Match[str]) -> str:
        kind, arg = match["kind"], (match["arg"] or "").strip()
        if kind == "methods-table":
            return methods_table(page, arg)
        if kind in ("readme", "readme-intro"):
            text = readme_section(arg, intro_only=kind == "readme-intro")
            if text is None:
                _warn(page, f"README.md has no heading starting with {arg!r}")
                return ""
            return _rewrite_links(text, page.file.src_uri)
        if kind == "include":
            path = ROOT / arg
            if not path.is_file():
                _warn(page, f"include: {arg} does not exist")
                return ""
            return _rewrite_links(path.read_text(encoding="utf-8"), page.file.src_uri)
        if kind == "result":
            return result_block(page, arg)
        if kind == "results-not-listed":
            return results_not_listed(markdown)
        if kind == "example":
            return example_block(page, arg)
        if kind == "api-modules":
            return api_modules(page, arg)
        return match[0]  # an ordinary HTML comment

    return _MARKER.sub(expand, markdown)


_REST_LEFT = re.compile(r":(?:math|func|class|meth|mod|attr|data|exc|obj):`|\.\. math::")


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """No reST markup left in an API page (docs/hooks/griffe_rest.py converts it)."""
    if not page.file.src_uri.startswith("api/"):
        return html
    for match in _REST_LEFT.finditer(html):
        context = html[max(0, match.start() - 60) : match.end() + 60].replace("\n", " ")
        _warn(page, f"reST markup left after conversion: ...{context}...")
        break
    return html


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Every example has its gallery page (docs/examples/NAME.md); modules whose name
    starts with an underscore are the examples' shared code, not examples."""
    for source in sorted((ROOT / "examples").glob("[!_]*.py")):
        if files.get_file_from_path(f"examples/{source.stem}.md") is None:
            LOG.warning(
                "examples/%s has no gallery page docs/examples/%s.md", source.name, source.stem
            )
    return files
