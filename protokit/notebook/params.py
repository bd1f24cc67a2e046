"""The ``parameters`` cell: literal assignments parsed with ast, typed, and checked at call time.

A parameter's type comes from its annotation (``threshold: float = 0.5``), else
from its literal default. Supported types: ``int``, ``float``, ``str``,
``bool``, ``list``/``list[T]``, ``dict``/``dict[K, V]``, ``tuple``, ``Any`` and
``T | None`` (or ``Optional[T]``). A ``# comment`` on the line (or just above
it) is the parameter's help; papermill's ``x = 1  # type: int  the help`` gives
the type and the help, as ``papermill --help-notebook`` reads them. A heading
comment such as ``# Parameters`` (which papermill writes atop its injected cell)
is never help.
"""

from __future__ import annotations

import ast
import copy
import functools
import io
import os
import re
import tokenize
from collections.abc import Callable, Iterable, Mapping
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
    "split_type_comment",
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
    if isinstance(node, ast.Name) and node.id == "NoneType":  # papermill's test notebooks write c: "NoneType"
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


# A section heading above the parameters (``# Parameters``, as papermill writes atop its injected
# cell, ``## Parameters:``, ``-- Parameters --``): never a parameter's help.
_HEADING = re.compile(r"(?i)(injected|default|notebook)?\s*(parameters?|params)")


def _is_heading(comment: str) -> bool:
    return _HEADING.fullmatch(re.sub(r"^\W+|\W+$", "", comment)) is not None


def _open_brackets(text: str) -> int:
    return sum(text.count(c) for c in "[(") - sum(text.count(c) for c in "])")


def split_type_comment(comment: str) -> tuple[str | None, str]:
    """(type, help) of papermill's ``type: T the help`` comment; (None, comment) for any other comment.

    papermill reads the word after ``type:`` as the type and the rest as help; a type with spaces
    inside brackets or around ``|`` (``dict[str, int]``, ``int | None``) stays whole here.
    ``type: ignore`` is mypy's, not a type.
    """
    if not comment.startswith("type:"):
        return None, comment
    rest = comment[len("type:"):]
    words = list(re.finditer(r"\S+", rest))
    if not words:
        return None, ""
    taken = 1
    while taken < len(words):
        kind = rest[words[0].start():words[taken - 1].end()]
        if _open_brackets(kind) <= 0 and not kind.endswith(("|", ",")) and not words[taken].group().startswith("|"):
            break
        taken += 1
    kind = rest[words[0].start():words[taken - 1].end()]
    text = rest[words[taken - 1].end():].strip()
    if kind == "ignore" or kind.startswith("ignore["):
        return None, text
    return kind, text


def _help(comments: dict[int, str], lines: list[str], start: int, end: int) -> tuple[str | None, str]:
    """(type from a ``# type:`` comment or None, help) of the assignment on lines start..end."""
    if end in comments:
        return split_type_comment(comments[end])
    above: list[str] = []
    row = start - 1
    while row >= 1 and row in comments and lines[row - 1].lstrip().startswith("#"):
        above.insert(0, comments[row])
        row -= 1
    return None, " ".join(a for a in above if a and not _is_heading(a) and not a.startswith("type:"))


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
        # An annotation wins over a `# type:` comment, as in papermill.
        type_comment, help_text = _help(comments, lines, stmt.lineno, stmt.end_lineno or stmt.lineno)
        try:
            type_text = annotation or type_comment or _type_of_default(default)
            check_value(target, default, type_text)
        except ConfigError as exc:
            raise NotebookError(f"{where}: {exc}") from None
        found[target] = Parameter(target, type_text, default, help_text, stmt.lineno)
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


@functools.cache
def _no_dates_loader() -> type:
    import yaml

    resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                 for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return type("NoDatesSafeLoader", (yaml.SafeLoader,), {"yaml_implicit_resolvers": resolvers})


def _load_yaml(text: str) -> Any:
    """YAML as papermill's ``-f``/``-y`` read it: safe, and a date stays a string (its NoDatesSafeLoader)."""
    import yaml

    return yaml.load(text, Loader=_no_dates_loader())


def _yaml_mapping(text: str, where: str) -> dict[Any, Any]:
    import yaml

    try:
        loaded = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"cannot read {where}: not YAML{line} ({getattr(exc, 'problem', None) or exc})") \
            from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{where} must hold a mapping of name: value, e.g. `n_cases: 40`")
    return loaded or {}


def _example(p: Parameter, yaml_form: bool) -> str:
    """A value of ``p``'s type as one would type it: its default, else a sample of its type."""
    import json
    import shlex

    value = p.default
    if value is None:
        spec = _parse_type(p.type)
        kind = spec[1][0] if spec[0] == "optional" else spec[0]
        value = {"int": 40, "float": 0.5, "bool": True, "str": "text", "list": ["a", "b"],
                 "dict": {"a": 1}, "tuple": [1, 2]}.get(kind)
    if yaml_form or isinstance(value, (list, tuple, dict)) or value is None:
        text = json.dumps(value, default=list)
    else:
        text = str(value)
    return f"{p.name}: {text}" if yaml_form else f"-p {p.name} {shlex.quote(text)}"


def _how_to_fix(p: Parameter, source: str) -> str:
    if source == "-p":
        return f"pass one like `{_example(p, False)}`"
    if source == "-r":
        return f"-r passes the text as a string; pass a {p.type} with `{_example(p, False)}`"
    return f"give one like `{_example(p, True)}` in {source}"


def cli_parameters(parameters: list[Parameter], pairs: Iterable[tuple[str, str]],
                   file: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None, *,
                   raw: Iterable[tuple[str, str]] = (), yaml_texts: Iterable[str] = (),
                   before_typing: Callable[[Mapping[str, Any]], None] | None = None) -> dict[str, Any]:
    """Command-line values merged in papermill's order and typed by the parameters cell.

    Later wins, as in ``papermill``'s command line: each ``-f`` file (YAML/JSON), each ``-y``
    YAML text, the ``-p NAME VALUE`` pairs (read by the parameter's type; an untyped one as papermill
    reads it), then the ``-r NAME VALUE`` raw strings. ``before_typing`` sees the merged values
    first (a type error's message would quote a value). A value that does not fit its parameter is a
    ParameterTypeError that names the parameter, its type and how to give one.
    """
    known = {p.name: p for p in parameters}
    files = [] if file is None else [file] if isinstance(file, (str, os.PathLike)) else list(file)
    given: dict[str, tuple[str, Any]] = {}
    for path in files:
        where = f"parameters file {os.fspath(path)}"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {where}: {exc}") from None
        given.update({k: ("-f", v) for k, v in _yaml_mapping(text, where).items()})
    for text in yaml_texts:
        given.update({k: ("-y", v) for k, v in _yaml_mapping(text, f"-y {text!r}").items()})
    given.update({name: ("-p", value) for name, value in pairs})
    given.update({name: ("-r", value) for name, value in raw})
    if before_typing is not None:
        before_typing({name: value for name, (_, value) in given.items()})
    unknown = [n for n in given if n not in known]
    if unknown:
        bind_parameters(parameters, {unknown[0]: None})  # raises the error that lists the known names
    values: dict[str, Any] = {}
    for name, (source, value) in given.items():
        param = known[name]
        try:
            values[name] = param.parse(value) if source == "-p" else param.check(value)
        except ParameterTypeError as exc:
            raise ParameterTypeError(f"{exc}; {_how_to_fix(param, source)}") from None
    return values
