"""A griffe extension: the docstrings' reStructuredText markup, read as Markdown.

paretomtl's docstrings are Google style (``Args:``, ``Returns:``, ``Example:``) with
reStructuredText inside: Sphinx roles (``:func:`mgda```, ``:class:`~x.Solver```), inline
math (``:math:`w^\\top G w```), ``.. math::`` blocks and ``::`` literal blocks.
mkdocstrings renders docstrings as Markdown, where that markup would show as text. This
extension rewrites each docstring once it is loaded (the package's files are not
touched), before mkdocstrings parses its sections:

- ``:math:`x``` becomes ``\\(x\\)``, and a ``.. math::`` block a ``$$ ... $$`` block,
  both typeset by MathJax through ``pymdownx.arithmatex`` (generic mode);
- a role on a Python name (``:func:``, ``:class:``, ``:meth:``, ``:mod:``, ``:attr:``,
  ``:data:``, ``:exc:``, ``:obj:``) becomes the name in code, linked to its entry in
  the API reference where that entry exists: an *optional* cross-reference of
  mkdocs-autorefs, so a name the reference does not render (a private helper, numpy)
  stays plain code and never fails the strict build;
- a paragraph ending in ``::`` followed by an indented block becomes the paragraph
  and a fenced code block;
- the sections that napoleon (Sphinx's reader of Google style) accepts and griffe
  spells otherwise: ``Example:`` is read as ``Examples:`` (griffe would render it as
  an admonition of Markdown text, its doctest lines as quotes), and ``a, b: text`` in
  ``Args:`` as one entry per parameter, each with the text.

Loaded by mkdocs.yml (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(class|func|meth|mod|attr|data|exc|obj|const):`"
    r"(?P<tilde>~?)(?P<body>[^`]+?)`"
)
_MATH_ROLE = re.compile(r":math:`(?P<tex>[^`]+)`")
_MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")
_LITERAL_END = re.compile(r"^(?P<indent>[ \t]*)(?P<text>.*?)(?P<space>[ \t]*)::[ \t]*$")
# Names that are not this package's: left as code, never linked.
_FOREIGN = ("numpy.", "np.", "torch.", "scipy.", "moocore.", "cvxpy.", "torchjd.", "LibMTL.")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The indented block after ``start`` (blank lines inside kept), and where it ends."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    body: list[str] = []
    while i < len(lines) and (not lines[i].strip() or _indent_of(lines[i]) > indent):
        body.append(lines[i])
        i += 1
    while body and not body[-1].strip():
        body.pop()
        i -= 1
    return body, i


def _blocks_to_markdown(text: str) -> str:
    """``.. math::`` and ``::`` literal blocks as Markdown blocks at the same indentation."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        math = _MATH_DIRECTIVE.match(line)
        literal = None if math or line.lstrip().startswith("..") else _LITERAL_END.match(line)
        if math:
            pad = math["indent"]
            body, end = _block(lines, i + 1, len(pad))
            tex = [math["rest"]] if math["rest"].strip() else []
            tex += textwrap.dedent("\n".join(body)).split("\n") if body else []
            if out and out[-1].strip():
                out.append("")
            out += [pad + "$$", *(pad + t if t.strip() else "" for t in tex), pad + "$$"]
            i = end
            if i < len(lines) and lines[i].strip():
                out.append("")
            continue
        if literal and i + 1 < len(lines):
            pad = literal["indent"]
            body, end = _block(lines, i + 1, len(pad))
            if body:
                # reST: "text::" keeps one colon; "text ::" and a bare "::" keep none.
                text_part = literal["text"]
                if text_part and not literal["space"]:
                    out.append(f"{pad}{text_part}:")
                elif text_part:
                    out.append(f"{pad}{text_part}")
                code = textwrap.dedent("\n".join(body)).split("\n")
                out += ["", pad + "```python", *(pad + c if c.strip() else "" for c in code)]
                out.append(pad + "```")
                i = end
                if i < len(lines) and lines[i].strip():
                    out.append("")
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


_SECTION = re.compile(r"^(?P<title>[A-Z][A-Za-z ]*):[ \t]*$")
_GROUPED = re.compile(
    r"^(?P<indent>[ \t]+)(?P<names>\*{0,2}\w+(?:[ \t]*,[ \t]*\*{0,2}\w+)+)"
    r"(?P<type>[ \t]*\([^)]*\))?:(?P<rest>[ \t].*|)$"
)


def _sections_as_griffe_reads_them(text: str) -> str:
    """``Example:`` as ``Examples:``; grouped ``a, b: text`` parameters one per line."""
    lines = text.split("\n")
    out: list[str] = []
    section = None
    i = 0
    while i < len(lines):
        line = lines[i]
        head = _SECTION.match(line)
        if head:
            section = head["title"]
            out.append("Examples:" if section == "Example" else line)
            i += 1
            continue
        if line.strip() and not line[0].isspace():
            section = None
        grouped = _GROUPED.match(line) if section in ("Args", "Arguments", "Parameters") else None
        if grouped:
            body, end = _block(lines, i + 1, len(grouped["indent"]))
            for name in re.split(r"[ \t]*,[ \t]*", grouped["names"]):
                out.append(f"{grouped['indent']}{name}{grouped['type'] or ''}:{grouped['rest']}")
                out += body
            i = end
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _resolve(obj: griffe.Object, name: str) -> str | None:
    """The full path ``name`` refers to, seen from ``obj``'s docstring, or None."""
    name = name.lstrip(".")
    if name.startswith("paretomtl"):
        return _canonical(obj, name)
    if name.startswith(_FOREIGN):
        return None
    first = name.split(".", 1)[0]
    scope: Any = obj
    while scope is not None:
        members = getattr(scope, "members", {})
        if first in members:
            return _canonical(obj, f"{scope.path}.{name}")
        scope = scope.parent
    return None


def _canonical(obj: griffe.Object, path: str) -> str:
    """Where an imported name is defined: the path its reference entry registers."""
    try:
        found = obj.modules_collection[path]
        return found.final_target.path if found.is_alias else found.path
    except Exception:  # an unresolvable alias, or a path griffe does not know
        return path


def _role_to_markdown(obj: griffe.Object, match: re.Match[str]) -> str:
    body = match["body"].strip()
    titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body, flags=re.DOTALL)
    target = titled["target"] if titled else body
    title = titled["title"] if titled else target
    if match["tilde"] and not titled:
        title = target.rsplit(".", 1)[-1]
    if match.group(1) in ("func", "meth") and not titled and not title.endswith(")"):
        title = f"{title}()"
    code = f"<code>{html.escape(title)}</code>"
    path = _resolve(obj, target)
    if path is None:
        return code
    return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


def to_markdown(obj: griffe.Object, text: str) -> str:
    """The docstring ``text`` of ``obj`` with its reST markup rewritten as Markdown."""
    text = _sections_as_griffe_reads_them(text)
    text = _blocks_to_markdown(text)
    text = _MATH_ROLE.sub(lambda m: r"\(" + " ".join(m["tex"].split()) + r"\)", text)
    return _ROLE.sub(lambda m: _role_to_markdown(obj, m), text)


class RestToMarkdown(griffe.Extension):
    """Rewrite every docstring of the loaded package once its tree is complete."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = to_markdown(obj, obj.docstring.value)
            stack += [m for m in obj.members.values() if not m.is_alias]
