"""Turning a validated notebook into module and test source, from the Jinja2 templates in templates/.

The exported cells are split statement by statement: imports, and definitions
and UPPER_CASE literal constants that need nothing from the run, are hoisted to
module level; display-only statements are dropped; everything else becomes the
body of ``run()``, in notebook order, with its comments.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import posixpath
import subprocess
import sys
import tokenize
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit.errors import PromoteError
from protokit.models.env import PROVIDER_VARS
from protokit.notebook.names import BUILTINS, statement_names
from protokit.notebook.params import Parameter
from protokit.notebook.rewrite_magics import parse_cell
from protokit.promote.translate import translate, translate_comment, translate_doc, translate_str

__all__ = ["DROP_ENV", "Case", "Layout", "format_source", "render_module", "render_tests", "split_cells",
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
            text = "\n".join(_strip_nested_display(stmt, start, chunk)).rstrip()
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


def _docstring_text(text: str) -> str:
    return translate_doc(text.strip())


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
    mutable = isinstance(p.default, (list, dict))
    sig_type = _signature_type(p)
    return {"name": p.name, "name_lit": translate_str(p.name), "type": p.type, "type_lit": translate_str(p.type),
            "sig_type": f"{sig_type} | None" if mutable else sig_type,
            "sig_default": "None" if mutable else translate(p.default), "mutable": "yes" if mutable else "",
            "type_doc": translate_doc(p.type), "default_lit": translate(p.default),
            "default_doc": translate_doc(translate(p.default)),
            "flag": translate_str("--" + p.name.replace("_", "-")),
            "help_lit": translate_str(p.help or p.name.replace("_", " ")),
            "help_doc": _docstring_text(p.help) or "(no help in the parameters cell)"}


def render_module(*, name: str, source: str, notebook_hash: str, title: str, description: str,
                  parameters: Sequence[Parameter], layout: Layout) -> str:
    """The source of NAME.py."""
    body = "\n\n".join(layout.body) if layout.body else "pass"
    template = _environment().get_template("module.py.j2")
    return template.render(
        name=name, source_comment=translate_comment(source), source_doc=translate_doc(source),
        notebook_hash=translate_comment(notebook_hash), title=_docstring_text(title),
        description=_docstring_text(description), params=[_param_view(p) for p in parameters],
        imports=layout.imports, hoisted=layout.hoisted, has_outputs=layout.has_outputs,
        body=indent(body, " " * (8 if layout.has_outputs else 4)), prog=translate_str(name),
        cli_description=translate_str(title or name), workdir=translate_doc(posixpath.dirname(source) or "."))


def render_tests(*, name: str, source: str, cases: Sequence[Case]) -> str:
    """The source of tests/test_NAME.py."""
    views = [{"id": translate_str(c.id), "params": translate(c.params), "outputs": translate(c.outputs),
              "stdout": translate_str(c.stdout)} for c in cases]
    workdir = posixpath.dirname(source) or "."
    template = _environment().get_template("test_module.py.j2")
    return template.render(name=name, name_lit=translate_str(name), source_comment=translate_comment(source),
                           cases=views,
                           workdir=translate_str(workdir), drop_env=translate(DROP_ENV))


def format_source(text: str, filename: str) -> str:
    """``ruff format`` the text when ruff is installed (the result is stable); unchanged otherwise."""
    if importlib.util.find_spec("ruff") is None:
        return text
    try:
        done = subprocess.run([sys.executable, "-m", "ruff", "format", "--isolated", "--line-length", "100",
                               "--stdin-filename", filename, "-"], input=text, capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return text
    return done.stdout if done.returncode == 0 and done.stdout else text
