"""Rewriting a notebook's magics and shell lines to Python where exact, refusing them otherwise.

IPython's own transformer turns a cell into Python (``%time x = f()`` becomes
``get_ipython().run_line_magic('time', 'x = f()')``) without being fooled by
strings; the calls it produces are then rewritten or refused one by one.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["MagicIssue", "Rewritten", "parse_cell", "rewrite_cell"]

# Line magics that change only how things are shown or reloaded: dropping them is exact for a module.
_DROP_LINE = frozenset({"matplotlib", "load_ext", "reload_ext", "unload_ext", "autoreload", "aimport",
                        "config", "precision", "pinfo", "pinfo2", "pdoc", "pdef", "psource", "pfile",
                        "who", "whos", "who_ls", "lsmagic", "history", "notebook_name"})
# Cell magics whose whole cell is display: the cell is left out.
_DISPLAY_CELL = frozenset({"html", "HTML", "markdown", "latex", "javascript", "js", "svg"})
_FIXES = {
    "pip": "install packages in the environment (list them in your requirements), not from the notebook",
    "conda": "install packages in the environment (list them in your requirements), not from the notebook",
    "run": "import the code as a module instead of %run",
    "cd": "use paths relative to the notebook (or os.chdir in a function) instead of %cd",
    "env": "use os.environ['NAME'] = 'value' instead of %env",
    "timeit": "time code outside the module; %timeit runs the statement many times",
    "capture": "remove %%capture (a module cannot reproduce it exactly)",
    "writefile": "commit the file to the repository instead of writing it from a cell",
    "store": "pass values as parameters instead of %store",
    "load": "paste or import the code instead of %load",
}


@dataclass(frozen=True)
class MagicIssue:
    """A magic or shell line with no exact Python equivalent."""

    line: int
    text: str
    message: str
    fix: str


@dataclass
class Rewritten:
    """A cell as plain Python, what was rewritten, and what was refused."""

    source: str
    notes: list[str] = field(default_factory=list)
    refused: list[MagicIssue] = field(default_factory=list)
    dropped: bool = False


def parse_cell(source: str) -> ast.Module:
    """Parse cell source, allowing top-level await (IPython does); SyntaxError as usual."""
    tree = compile(source, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    assert isinstance(tree, ast.Module)
    return tree


def _ipython_call(node: ast.AST) -> tuple[str, list[str]] | None:
    """('run_line_magic', ['time', 'x = f()']) for a get_ipython().method('...') call."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    inner = node.func.value
    if not (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id == "get_ipython"):
        return None
    args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return node.func.attr, args


def _replace(lines: list[bytes], node: ast.AST, text: str) -> None:
    # ast offsets count UTF-8 bytes: slice bytes, not characters.
    row = node.lineno - 1  # type: ignore[attr-defined]
    line = lines[row]
    lines[row] = line[: node.col_offset] + text.encode() + line[node.end_col_offset :]  # type: ignore[attr-defined]


def rewrite_cell(source: str) -> Rewritten:
    """The cell as plain Python: exact rewrites applied, everything else listed in ``refused``."""
    if not any(ch in source for ch in "%!?"):
        return Rewritten(source)
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        transformed = TransformerManager().transform_cell(source)
    except Exception:  # IPython could not read it: the Python parse reports the problem
        return Rewritten(source)
    if transformed.strip() == source.strip():
        return Rewritten(source)
    try:
        tree = parse_cell(transformed)
    except SyntaxError:
        return Rewritten(source)
    original = source.splitlines()
    result = Rewritten(transformed)

    def text_of(lineno: int) -> str:
        return original[lineno - 1].strip() if 0 < lineno <= len(original) else ""

    # A cell magic wraps the whole cell: %%time is dropped, display cells left out, the rest refused.
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
        call = _ipython_call(tree.body[0].value)
        if call and call[0] == "run_cell_magic" and len(call[1]) == 3:
            name, _line, body = call[1]
            if name == "time":
                inner = rewrite_cell(body)
                inner.notes.insert(0, "`%%time` dropped")
                inner.refused = [MagicIssue(i.line + 1, i.text, i.message, i.fix) for i in inner.refused]
                return inner
            if name in _DISPLAY_CELL:
                return Rewritten("", [f"`%%{name}` cell is display-only: left out"], dropped=True)
            fix = _FIXES.get(name, "write the cell in Python")
            result.refused.append(MagicIssue(1, text_of(1), f"cell magic `%%{name}` has no exact Python "
                                                            "equivalent", fix))
            return result

    lines = [ln.encode() for ln in transformed.split("\n")]
    handled: set[int] = set()
    for stmt in ast.walk(tree):
        # Statement-level magics: the call is the statement, or the value assigned.
        target = None
        if isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            target = stmt.value
        call = _ipython_call(target) if target is not None else None
        if call is None or target is None:
            continue
        method, args = call
        if method == "run_line_magic" and len(args) == 2:
            name, arg = args
            if name == "time" and arg.strip():
                _replace(lines, target, arg.strip())
                result.notes.append(f"`{text_of(target.lineno)}` becomes `{arg.strip()}`")
                handled.add(id(target))
            elif name in _DROP_LINE and isinstance(stmt, ast.Expr):
                _replace(lines, target, "pass" if stmt.col_offset else "")
                result.notes.append(f"`{text_of(target.lineno)}` dropped (display only)")
                handled.add(id(target))
    for node in ast.walk(tree):
        call = _ipython_call(node)
        if call is None or id(node) in handled:
            continue
        method, args = call
        lineno = getattr(node, "lineno", 1)
        if method in ("system", "getoutput"):
            result.refused.append(MagicIssue(lineno, text_of(lineno), "shell command (`!`) in an exported cell",
                                             _shell_fix(args[0] if args else "")))
        elif method in ("run_line_magic", "run_cell_magic") and args:
            name = args[0]
            result.refused.append(MagicIssue(lineno, text_of(lineno),
                                             f"magic `%{name}` has no exact Python equivalent",
                                             _FIXES.get(name, "write it in Python")))
        else:
            result.refused.append(MagicIssue(lineno, text_of(lineno), "get_ipython() only exists in IPython",
                                             "write it in plain Python"))
    if not result.refused:
        result.source = "\n".join(ln.decode() for ln in lines)
    return result


def _shell_fix(command: str) -> str:
    if command.split()[:1] in (["pip"], ["conda"]) or command.startswith(("python -m pip", "uv pip")):
        return _FIXES["pip"]
    return "use Python (subprocess.run, pathlib, shutil) instead of a shell line"
