"""The ``parameters`` cell: literal assignments parsed with ast, typed, and checked at call time.

A parameter's type comes from its annotation (``threshold: float = 0.5``), else
from its literal default. Supported types: ``int``, ``float``, ``str``,
``bool``, ``list``/``list[T]``, ``dict``/``dict[K, V]``, ``tuple``, ``Any`` and
``T | None`` (or ``Optional[T]``). A ``# comment`` on the line (or just above
it) is the parameter's help.
"""

from __future__ import annotations

import ast
import copy
import io
import os
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protokit.errors import CellError, ConfigError, NotebookError, ParameterTypeError

# ParameterTypeError lives in protokit.errors with every other error; still importable from here.
__all__ = [
    "Parameter",
    "ParameterTypeError",
    "bind_parameters",
    "check_value",
    "cli_parameters",
    "find_parameters_cell",
    "injected_values",
    "papermill_value",
    "parse_parameters",
    "parse_text",
]

_SIMPLE = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "tuple": tuple}
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


@dataclass(frozen=True)
class Parameter:
    """One notebook parameter: name, type (annotation text), literal default, help and line."""

    name: str
    type: str
    default: Any
    help: str = ""
    line: int = 0

    def check(self, value: Any) -> Any:
        """The value coerced to this parameter's type; ParameterTypeError when it does not fit."""
        return check_value(self.name, value, self.type)

    def parse(self, text: str) -> Any:
        """A command-line string turned into this parameter's type."""
        return parse_text(self.name, text, self.type)


# -- types ------------------------------------------------------------------------
Spec = tuple[Any, ...]


def _spec(node: ast.expr, text: str) -> Spec:
    if isinstance(node, ast.Constant) and node.value is None:
        return ("none",)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        return _spec(ast.parse(node.value, mode="eval").body, text)
    if isinstance(node, ast.Name):
        if node.id in _SIMPLE:
            return (node.id,)
        if node.id == "Any":
            return ("any",)
    if isinstance(node, ast.Attribute) and node.attr == "Any":
        return ("any",)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _spec(node.left, text), _spec(node.right, text)
        if right == ("none",):
            return ("optional", left)
        if left == ("none",):
            return ("optional", right)
    if isinstance(node, ast.Subscript):
        base = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", "")
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base in ("list", "List") and len(args) == 1:
            return ("list", _spec(args[0], text))
        if base in ("dict", "Dict") and len(args) == 2:
            return ("dict", _spec(args[0], text), _spec(args[1], text))
        if base == "Optional" and len(args) == 1:
            return ("optional", _spec(args[0], text))
        if base in ("tuple", "Tuple"):
            return ("tuple",)
    raise ConfigError(f"unsupported parameter type {text!r}; use int, float, str, bool, list[...], "
                      "dict[...], Any or T | None")


def _parse_type(type_text: str) -> Spec:
    try:
        node = ast.parse(type_text, mode="eval").body
    except SyntaxError as exc:
        raise ConfigError(f"unsupported parameter type {type_text!r}: it does not parse") from exc
    return _spec(node, type_text)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:39] + '…'}"


def _coerce(spec: Spec, value: Any, path: str) -> Any:
    kind = spec[0]
    if kind == "any":
        return value
    if kind == "none":
        if value is None:
            return None
        raise TypeError(path)
    if kind == "optional":
        return None if value is None else _coerce(spec[1], value, path)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise TypeError(path)
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(path)
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError(path)
    if kind == "str":
        if isinstance(value, str):
            return value
        raise TypeError(path)
    if kind == "tuple":
        if isinstance(value, (list, tuple)):
            return tuple(value)
        raise TypeError(path)
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            raise TypeError(path)
        inner = spec[1] if len(spec) > 1 else ("any",)
        return [_coerce(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "dict":
        if not isinstance(value, Mapping):
            raise TypeError(path)
        key, val = (spec[1], spec[2]) if len(spec) > 2 else (("any",), ("any",))
        return {_coerce(key, k, f"{path} key"): _coerce(val, v, f"{path}[{k!r}]") for k, v in value.items()}
    raise TypeError(path)


def check_value(name: str, value: Any, type_text: str) -> Any:
    """``value`` coerced to ``type_text`` (ints become floats for float); a deep copy for containers."""
    spec = _parse_type(type_text)
    try:
        # A copy, so a run that mutates a list argument cannot change the caller's (or the default).
        return copy.deepcopy(_coerce(spec, value, name))
    except TypeError as exc:
        where = str(exc) or name
        detail = f" ({where})" if where != name else ""
        raise ParameterTypeError(f"parameter {name!r} expects {type_text}, got {_describe(value)}{detail}") \
            from None


def papermill_value(text: str) -> Any:
    """A ``-p`` value read as papermill's command line reads it: True, False, None, int, float, else str.

    Not YAML: ``0123`` is 123 (YAML: 83, octal), ``yes`` stays "yes" (YAML: True) and a date
    stays a string, so ``protokit run -p`` injects what ``papermill -p`` would.
    """
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_text(name: str, text: str, type_text: str) -> Any:
    """A command-line string for a parameter, turned into its type (YAML/JSON for containers)."""
    spec = _parse_type(type_text)
    kind = spec[0]
    if kind == "optional":
        if text.strip().lower() in ("none", "null", "~"):
            return None
        kind = spec[1][0]
    value: Any
    try:
        if kind == "str":
            value = text
        elif kind == "int":
            value = int(text.strip())
        elif kind == "float":
            value = float(text.strip())
        elif kind == "bool":
            low = text.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(text)
            value = low in _TRUE
        elif kind == "any":
            value = papermill_value(text)
        else:
            import yaml

            value = yaml.safe_load(text)
    except Exception as exc:
        raise ParameterTypeError(f"parameter {name!r} expects {type_text}, got {text!r} which is not one") \
            from exc
    return check_value(name, value, type_text)


# -- the parameters cell -------------------------------------------------------------
def _type_of_default(value: Any) -> str:
    if value is None:
        return "Any"
    for name in ("bool", "int", "float", "str", "list", "dict", "tuple"):
        if type(value) is _SIMPLE[name]:
            return name
    raise ConfigError(f"a {type(value).__name__} default cannot be a parameter; use a list, dict or scalar")


def _comments(source: str) -> dict[int, str]:
    found: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # the ast parse reports the real problem
    return found


def _help(comments: dict[int, str], lines: list[str], start: int, end: int) -> str:
    if end in comments:
        return comments[end]
    above: list[str] = []
    row = start - 1
    while row >= 1 and row in comments and lines[row - 1].lstrip().startswith("#"):
        above.insert(0, comments[row])
        row -= 1
    return " ".join(a for a in above if a)


def parse_parameters(source: str) -> list[Parameter]:
    """The parameters a ``parameters`` cell assigns; NotebookError naming any line that is not a literal."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise NotebookError(f"parameters cell line {exc.lineno} does not parse: {exc.msg}") from None
    lines = source.splitlines()
    comments = _comments(source)
    found: dict[str, Parameter] = {}
    for stmt in tree.body:
        text = lines[stmt.lineno - 1].strip() if stmt.lineno <= len(lines) else ""
        where = f"parameters cell line {stmt.lineno} `{text}`"
        fix = "keep only `name = literal` lines here and compute derived values in a later cell"
        annotation: str | None = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target, value_node = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            target, value_node = stmt.target.id, stmt.value
            annotation = ast.get_source_segment(source, stmt.annotation) or ast.unparse(stmt.annotation)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                and isinstance(stmt.value.value, str):
            continue  # a docstring-like note is harmless
        else:
            raise NotebookError(f"{where} is not a literal assignment; {fix}")
        try:
            default = ast.literal_eval(value_node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise NotebookError(f"{where}: the value is not a literal; {fix}") from None
        if isinstance(default, (set, frozenset, bytes, complex)):
            raise NotebookError(f"{where}: a {type(default).__name__} cannot be a parameter; use a list, "
                                "dict, string or number")
        if target in found:
            raise NotebookError(f"{where}: {target!r} is assigned twice; keep one assignment")
        try:
            type_text = annotation or _type_of_default(default)
            check_value(target, default, type_text)
        except ConfigError as exc:
            raise NotebookError(f"{where}: {exc}") from None
        end = stmt.end_lineno or stmt.lineno
        found[target] = Parameter(target, type_text, default, _help(comments, lines, stmt.lineno, end),
                                  stmt.lineno)
    return list(found.values())


def find_parameters_cell(nb: Any) -> tuple[int, Any] | None:
    """(index, cell) of the cell tagged ``parameters``; NotebookError when there are several."""
    from protokit.notebook.nbfile import PARAMETERS, cell_label, tags

    hits = [(i, c) for i, c in enumerate(nb.cells) if PARAMETERS in tags(c)]
    if len(hits) > 1:
        i, c = hits[1]
        raise CellError(f"a second `parameters` cell (the first is cell {hits[0][0]}); merge them into one",
                        cell_index=i, label=cell_label(i, c))
    if hits and hits[0][1].get("cell_type") != "code":
        i, c = hits[0]
        raise CellError("tagged `parameters` but not a code cell", cell_index=i, label=cell_label(i, c))
    return hits[0] if hits else None


def injected_values(nb: Any) -> dict[str, Any]:
    """The values in papermill's injected-parameters cell, if the notebook has one (saved from a run)."""
    from protokit.notebook.nbfile import INJECTED, cell_label, tags

    values: dict[str, Any] = {}
    for index, cell in enumerate(nb.cells):
        if INJECTED in tags(cell):
            try:
                values.update({p.name: p.default for p in parse_parameters(str(cell.source))})
            except NotebookError as exc:
                raise CellError(f"papermill's injected parameters are not literal assignments: {exc}",
                                cell_index=index, label=cell_label(index, cell)) from None
    return values


def bind_parameters(parameters: list[Parameter], given: Mapping[str, Any]) -> dict[str, Any]:
    """The given values checked against the notebook's parameters; unknown names are an error."""
    known = {p.name: p for p in parameters}
    unknown = [n for n in given if n not in known]
    if unknown:
        listed = ", ".join(f"{p.name} ({p.type})" for p in parameters) or "none (no parameters cell)"
        raise ConfigError(f"unknown parameter {unknown[0]!r}; the notebook's parameters are: {listed}")
    return {name: known[name].check(value) for name, value in given.items()}


def cli_parameters(parameters: list[Parameter], pairs: Iterable[tuple[str, str]],
                   file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Values from a YAML/JSON file and ``-p NAME VALUE`` pairs (which win), typed by the parameters cell."""
    known = {p.name: p for p in parameters}
    values: dict[str, Any] = {}
    if file is not None:
        import yaml

        try:
            loaded = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read parameters file {os.fspath(file)}: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"parameters file {os.fspath(file)} must hold a mapping of name: value")
        values.update(loaded or {})
    for name, text in pairs:
        if name not in known:
            bind_parameters(parameters, {name: None})  # raises the error that lists the known names
        values[name] = known[name].parse(text)
    return bind_parameters(parameters, values)
