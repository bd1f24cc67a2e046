"""Turning a validated notebook into module and test source, from the Jinja2 templates in templates/.

The exported cells are split statement by statement: imports, and definitions
and UPPER_CASE literal constants that need nothing from the run, are hoisted to
module level; display-only statements are dropped; everything else becomes the
body of ``run()``, in notebook order, with its comments.
"""

from __future__ import annotations

import ast
import io
import posixpath
import textwrap
import tokenize
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit.errors import PromoteError
from protokit.models.env import PROVIDER_VARS
from protokit.notebook.names import BUILTINS, statement_names
from protokit.notebook.params import Parameter
from protokit.notebook.rewrite_magics import parse_cell
from protokit.promote.imports import LINE_LENGTH, import_block
from protokit.promote.translate import translate, translate_comment, translate_doc, translate_fitted, translate_str

__all__ = ["DROP_ENV", "Case", "Layout", "render_module", "render_tests", "split_cells",
           "templates_dir"]

# Methods whose result, as a cell's last line, is only there to be looked at.
_SHOW_METHODS = frozenset({"head", "tail", "describe", "info", "plot", "hist", "show", "to_html", "style"})
_RESERVED = frozenset({"run", "main", "_rt", "_outputs", "_argparse", "_sys"})
# What the golden tests (and the differential run before them) take away from the environment:
# they replay the cassette, so they see no provider key or server, and no run of the parent's.
DROP_ENV = (*PROVIDER_VARS, "PROTOKIT_RUN_ID")


@dataclass
class Case:
    """One validated parameter set: the arguments, and what the notebook returned and printed."""

    id: str
    params: dict[str, Any]
    outputs: dict[str, Any] | None
    stdout: str
    cache_keys: list[str] = field(default_factory=list)


@dataclass
class _Item:
    kind: str  # import | def | const | body | drop
    cell: int
    stmt: ast.stmt
    text: str
    binds: set[str]
    needs: set[str]


@dataclass
class Layout:
    """The notebook's code sorted into module-level imports, hoisted definitions and run()'s body."""

    imports: list[str] = field(default_factory=list)
    hoisted: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    dropped: int = 0
    has_outputs: bool = False


def templates_dir() -> Path:
    """templates/ inside the installed package (wheel), else beside it (source checkout, editable)."""
    import protokit

    here = Path(protokit.__file__).resolve().parent
    inside = here / "templates"
    return inside if inside.is_dir() else here.parent / "templates"


def _segments(lines: list[str], tree: ast.Module) -> Iterator[tuple[ast.stmt, int, list[str]]]:
    """Each statement with the comment lines above it: (stmt, first line number, lines)."""
    prev_end = 0
    for stmt in tree.body:
        end = stmt.end_lineno or stmt.lineno
        chunk = lines[prev_end:end]
        start = prev_end + 1
        while chunk and not chunk[0].strip():
            chunk, start = chunk[1:], start + 1
        prev_end = end
        yield stmt, start, chunk


def _is_display_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name) and node.value.func.id == "display")


def _display_only(stmt: ast.stmt, last: bool) -> bool:
    if not isinstance(stmt, ast.Expr):
        return False
    value = stmt.value
    if isinstance(value, ast.Call):
        func = value.func
        return _is_display_call(stmt) or (last and isinstance(func, ast.Attribute) and func.attr in _SHOW_METHODS)
    return not isinstance(value, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr))


def _strip_nested_display(stmt: ast.stmt, start: int, chunk: list[str]) -> list[str]:
    """Replace display(...) statements nested in blocks by ``pass`` (the block keeps a body)."""
    hits = [n for n in ast.walk(stmt) if n is not stmt and _is_display_call(n)]
    out = list(chunk)
    for node in sorted(hits, key=lambda n: -n.lineno):  # type: ignore[attr-defined]
        first, last = node.lineno - start, (node.end_lineno or node.lineno) - start  # type: ignore[attr-defined]
        out[first:last + 1] = [" " * node.col_offset + "pass"]  # type: ignore[attr-defined]
    return out


def _drop_trailing_semicolons(code: str) -> str:
    """The code without a ``;`` that ends a line: in a notebook it hides the cell's value, in a module it
    means nothing (and ruff flags it, E703)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code
    lines = code.split("\n")
    for i, tok in enumerate(tokens):
        following = next((t for t in tokens[i + 1:] if t.type != tokenize.COMMENT), None)
        if tok.type == tokenize.OP and tok.string == ";" and (
                following is None or following.type in (tokenize.NEWLINE, tokenize.ENDMARKER)):
            row, col = tok.start
            line = lines[row - 1]
            lines[row - 1] = line[:col].rstrip() + (" " * 2 + line[col + 1:].lstrip() if line[col + 1:].strip()
                                                    else "")
    return "\n".join(lines)


def _is_constant(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Assign):
        targets, value = stmt.targets, stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets, value = [stmt.target], stmt.value
    else:
        return False
    if not all(isinstance(t, ast.Name) and t.id.isupper() for t in targets):
        return False
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _calls_output(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr == "output") or \
                    (isinstance(func, ast.Name) and func.id == "output"):
                return True
    return False


def split_cells(sources: Mapping[int, str], parameters: Sequence[Parameter]) -> Layout:
    """Sort the exported cells' statements into imports, hoisted definitions and run()'s body."""
    items: list[_Item] = []
    layout = Layout()
    for cell, src in sorted(sources.items()):
        tree = parse_cell(src)
        layout.has_outputs = layout.has_outputs or _calls_output(tree)
        lines = src.splitlines()
        for stmt, start, chunk in _segments(lines, tree):
            names = statement_names(stmt)
            needs = {n for n, _ in names.now} | {n for n, _ in names.later}
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                kind = "drop"
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                kind = "import"
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind = "def"
            elif _is_constant(stmt):
                kind = "const"
            elif _display_only(stmt, last=stmt is tree.body[-1]):
                kind = "drop"
            else:
                kind = "body"
            text = _drop_trailing_semicolons("\n".join(_strip_nested_display(stmt, start, chunk)).rstrip())
            items.append(_Item(kind, cell, stmt, text, names.binds, needs - names.binds))
    _settle(items, {p.name for p in parameters})
    for item in items:
        clash = item.binds & (_RESERVED if item.kind != "body" else {"_rt", "_outputs"})
        if clash:
            raise PromoteError(f"cell {item.cell} defines `{sorted(clash)[0]}`, a name the generated module "
                               "needs; rename it in the notebook")
        if item.kind == "body" and isinstance(item.stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                isinstance(n, ast.Global) for n in ast.walk(item.stmt)):
            raise PromoteError(f"cell {item.cell}: function `{item.stmt.name}` uses `global`, which cannot "
                               "work inside run(); pass the value as an argument and return the result")
    seen_imports: set[str] = set()
    current = -1
    for item in items:
        if item.kind == "import":
            text = ast.unparse(item.stmt)
            if text not in seen_imports:
                seen_imports.add(text)
                layout.imports.append(text)
        elif item.kind in ("def", "const"):
            layout.hoisted.append(item.text)
        elif item.kind == "drop":
            layout.dropped += 1
        else:
            if item.cell != current:
                current = item.cell
                layout.body.append(f"# cell {item.cell}")
            layout.body[-1] += "\n" + item.text
    return layout


def _settle(items: list[_Item], params: set[str]) -> None:
    """Demote hoisting candidates to the body until every hoisted item needs only module-level names."""
    while True:
        body_binds = set().union(*(i.binds for i in items if i.kind == "body")) | params
        hoisted = [i for i in items if i.kind in ("import", "def", "const")]
        counts: dict[str, int] = {}
        for i in hoisted:
            for n in i.binds:
                counts[n] = counts.get(n, 0) + 1
        module_names = set(BUILTINS).union(*(i.binds for i in hoisted))
        demote = [i for i in hoisted
                  if i.binds & body_binds or any(counts[n] > 1 for n in i.binds)
                  or (i.kind != "import" and not i.needs <= module_names)]
        if not demote:
            return
        for i in demote:
            i.kind = "body"


def indent(code: str, prefix: str) -> str:
    """Indent code, leaving the continuation lines of multi-line strings untouched."""
    inside: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    lines = code.split("\n")
    return "\n".join(line if (n in inside or not line.strip()) else prefix + line
                     for n, line in enumerate(lines, start=1))


def _doc(text: str, indent: int = 0, used: int = 0) -> str:
    """Notebook text for a docstring: inert (translate_doc), no trailing spaces, and a line that would pass
    the line length wrapped at spaces (a line with no space to break at stays whole). ``indent`` is the
    docstring's indentation, ``used`` what stands before the text on its first line (the quotes)."""
    lines: list[str] = []
    for line in translate_doc(text.strip()).split("\n"):
        line = line.rstrip()
        room = LINE_LENGTH - indent - (used if not lines else 0)
        if len(line) <= room:
            lines.append(line)
            continue
        lead = " " * (len(line) - len(line.lstrip()))
        lines += textwrap.wrap(line, width=room, subsequent_indent=lead, break_long_words=False,
                               break_on_hyphens=False, replace_whitespace=False)
    return ("\n" + " " * indent).join(lines)


def _shown(value: Any, room: int) -> str:
    """A default as the docstring shows it: its literal, cut with an ellipsis past ``room`` characters
    (before it is made inert, so no escape is ever cut in half)."""
    text = translate(value)
    return translate_doc(text if len(text) <= room else text[:max(room - 1, 8)] + "…")


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), autoescape=False,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


def _element_type(values: Any) -> str:
    """``str``/``int``/``float``/``bool`` when every value is of that one type, else ``Any``."""
    kinds = {type(v) for v in values}
    kind = kinds.pop() if len(kinds) == 1 else None
    return kind.__name__ if kind in (str, int, float, bool) else "Any"


def _signature_type(p: Parameter) -> str:
    """The annotation run() declares: a bare ``list``/``dict`` gets its element types from the default."""
    if p.type == "list" and isinstance(p.default, list):
        return f"list[{_element_type(p.default)}]"
    if p.type == "dict" and isinstance(p.default, dict):
        return f"dict[{_element_type(p.default.keys())}, {_element_type(p.default.values())}]"
    return p.type


def _param_view(p: Parameter) -> dict[str, str]:
    # Every notebook-derived text goes through a translator: a literal in code, translate_doc in the
    # docstring (the annotation and the default are shown there too), never pasted as it is.
    # A list or dict default would be one object shared by every call (B006): run() takes None and
    # builds a fresh one from the literal, which behaves the same for the caller.
    # Literals are laid out to the line length where they stand (the numbers are their columns).
    mutable = isinstance(p.default, (list, dict))
    sig_type = _signature_type(p) + (" | None" if mutable else "")
    type_doc = translate_doc(p.type)
    doc_head = f"    {p.name} : {type_doc}, default "
    return {"name": p.name, "name_lit": translate_str(p.name), "type": p.type, "type_lit": translate_str(p.type),
            "sig_type": sig_type,
            "sig_default": "None" if mutable else translate_fitted(p.default, 4, len(f"{p.name}: {sig_type} = ,")),
            "mutable": "yes" if mutable else "",
            "fill_lit": translate_fitted(p.default, 8, len(f"{p.name} = ")),
            "arg_default": translate_fitted(p.default, 8, len("default=,")),
            "type_doc": type_doc, "default_doc": _shown(p.default, LINE_LENGTH - len(doc_head)),
            "flag": translate_str("--" + p.name.replace("_", "-")),
            "help_lit": translate_fitted(p.help or p.name.replace("_", " "), 8, len("help=,")),
            "help_doc": _doc(p.help, 8) or "(no help in the parameters cell)"}


def _hoisted(blocks: Sequence[str]) -> str:
    """The module-level definitions after the imports, spaced as ruff's isort and pycodestyle want:
    one blank line after the imports before a constant, two before a def or class, two between blocks."""
    text = ""
    for i, block in enumerate(blocks):
        first = ast.parse(block).body[0] if block.strip() else None
        is_def = isinstance(first, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        text += "\n" * (2 if i or is_def else 1) + block + "\n"
    return text


_MODULE_IMPORTS = ("from __future__ import annotations", "import argparse as _argparse", "import sys as _sys",
                   "from typing import Any", "import protokit.promote.runtime as _rt")
_TEST_IMPORTS = ("from __future__ import annotations", "import importlib.util", "from collections.abc import Iterator",
                 "from pathlib import Path", "from typing import Any", "import pytest", "import protokit as pk",
                 "from protokit.testing import read_golden")


def render_module(*, name: str, source: str, notebook_hash: str, title: str, description: str,
                  parameters: Sequence[Parameter], layout: Layout,
                  first_party: Callable[[str], bool] = lambda _: False) -> str:
    """The source of NAME.py, already in the shape ``ruff check`` wants (it is never run on it).

    ``first_party(module)`` says whether an imported top-level module is the project's own,
    which decides its section in the import block.
    """
    body = "\n\n".join(layout.body) if layout.body else "pass"
    workdir = posixpath.dirname(source) or "."
    about = (f"Promoted from the notebook {source}. Run ``python {name}.py --help`` for the command line. "
             "Relative paths in run() resolve against the working directory, as in the notebook, which ran "
             f"in its own folder ({workdir} from here).")
    template = _environment().get_template("module.py.j2")
    return template.render(
        name=name, source_comment=translate_comment(source), notebook_hash=translate_comment(notebook_hash),
        title=_doc(title, used=3), description=_doc(description), about=_doc(about),
        params=[_param_view(p) for p in parameters],
        imports=import_block([*_MODULE_IMPORTS, *layout.imports], first_party), hoisted=_hoisted(layout.hoisted),
        has_outputs=layout.has_outputs, body=indent(body, " " * 8),
        prog=translate_str(name), cli_description=translate_fitted(title or name, 8, len("description=,")))


def render_tests(*, name: str, source: str, first_party: Callable[[str], bool] = lambda _: False) -> str:
    """The source of tests/test_NAME.py; its cases are in the golden data file beside the cassette."""
    workdir = posixpath.dirname(source) or "."
    template = _environment().get_template("test_module.py.j2")
    return template.render(name=name, name_lit=translate_str(name), source_comment=translate_comment(source),
                           imports=import_block(_TEST_IMPORTS, first_party), workdir=translate_str(workdir),
                           drop_env=translate_fitted(DROP_ENV, 0, len("DROP_ENV = ")))
