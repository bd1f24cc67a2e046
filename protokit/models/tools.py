"""Tools a model may call: definitions from JSON schema or from typed Python functions, and the calls it makes.

``tools=[...]`` takes, in any mix:

- a JSON-schema function definition ``{"name", "description", "parameters"}`` (the OpenAI
  ``{"type": "function", "function": {...}}`` and Anthropic ``{"name", "description",
  "input_schema"}`` shapes are read too);
- a typed Python function: the name is the function's, the description its docstring's text
  before any section, and ``parameters`` is built from the signature's type hints, each
  parameter described by its entry in the docstring (Google ``Args:``, numpy ``Parameters``
  or Sphinx ``:param x:``).

Every definition becomes ``{"name", "description", "parameters"}`` (JSON, provider-neutral);
the adapters send it through their provider's native tool API. A call the model makes is
``{"name": str, "arguments": dict}``. :func:`run_tools` executes Python tools and feeds
their results back, a bounded number of steps.

Docstrings and names are user text: they only ever become JSON *strings* (descriptions) or
are refused (a name outside ``[A-Za-z0-9_-]{1,64}``, which both providers require).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from protokit.errors import ConfigError, safe_text

if TYPE_CHECKING:
    from protokit.models.base import Model, Request, Response

__all__ = [
    "ToolCall",
    "arguments_from_json",
    "check_tools",
    "function_tool",
    "parse_docstring",
    "run_tool",
    "run_tools",
    "tool_calls_from",
]

ToolCall = dict[str, Any]  # {"name": str, "arguments": dict}

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DEF_KEYS = frozenset({"name", "description", "parameters"})
_SECTIONS = {
    "args": "params", "arguments": "params", "parameters": "params", "params": "params",
    "keyword args": "params", "keyword arguments": "params", "other parameters": "params",
    "returns": "other", "return": "other", "yields": "other", "raises": "other", "examples": "other",
    "example": "other", "notes": "other", "note": "other", "see also": "other", "attributes": "other",
    "references": "other", "warnings": "other", "warning": "other", "todo": "other",
}  # fmt: skip
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?([A-Za-z_]\w*)\s*:\s*(.*)$")
_PARAM_LINE = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*(\([^)]*\))?\s*(:)\s*(.*)$")
_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                               type(None): "null"}


def _text(value: str) -> str:
    """User text fit for JSON that is sent as UTF-8: lone surrogates replaced."""
    return value.encode("utf-8", "replace").decode("utf-8")


# -- docstrings ---------------------------------------------------------------------------------------------------

def _section(line: str, following: str) -> str | None:
    """The kind of docstring section ``line`` opens (Google ``Args:`` or numpy ``Parameters`` + dashes), else None."""
    stripped = line.strip()
    numpy = bool(following.strip()) and set(following.strip()) == {"-"}
    head = stripped[:-1] if stripped.endswith(":") else stripped if numpy else None
    return _SECTIONS.get(head.strip().lower()) if head is not None else None


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google, numpy or Sphinx docstring; ("", {}) for none."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    intro: list[str] = []
    params: dict[str, list[str]] = {}
    section: str | None = None
    current: str | None = None
    indent = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        following = lines[i + 1] if i + 1 < len(lines) else ""
        sphinx = _SPHINX_PARAM.match(stripped)
        if sphinx:
            section, current, indent = "sphinx", sphinx.group(1), len(line) - len(line.lstrip())
            params[current] = [sphinx.group(2)]
            continue
        if stripped.startswith(":") and re.match(r"^:\w[^:]*:", stripped):  # :returns:, :raises X:, :type x:
            section, current = "other", None
            continue
        if stripped and set(stripped) == {"-"} and section is not None:
            continue  # a numpy section's underline
        kind = _section(line, following)
        if kind is not None:
            section, current = kind, None
            continue
        if section is None:
            intro.append(stripped)
            continue
        if section == "other" or not stripped:
            if not stripped and current is not None:
                params[current].append("")
            continue
        depth = len(line) - len(line.lstrip())
        entry = _PARAM_LINE.match(stripped) if section == "params" else None
        if entry and (current is None or depth <= indent):
            current, indent = entry.group(1), depth
            rest = entry.group(4)
            # numpy "name : type" (a space before the colon): the text after it is a type, not a description
            numpy = stripped[entry.start(3) - 1: entry.start(3)] == " " and entry.group(2) is None
            params[current] = [] if numpy else [rest]
        elif current is not None and (depth > indent or section == "sphinx"):
            params[current].append(stripped)
    return _paragraphs(intro), {k: _paragraphs(v) for k, v in params.items() if _paragraphs(v)}


def _paragraphs(lines: Sequence[str]) -> str:
    paras: list[list[str]] = [[]]
    for line in lines:
        if line:
            paras[-1].append(line)
        elif paras[-1]:
            paras.append([])
    return _text("\n\n".join(" ".join(p) for p in paras if p))


# -- type hints -> JSON schema ------------------------------------------------------------------------------------

def _typed(tp: Any, where: str, defs: dict[str, Any], seen: frozenset[Any]) -> dict[str, Any]:
    """The JSON schema of one type hint; ConfigError naming ``where`` for one that has none."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return {}
    if tp in _PRIMITIVES:
        return {"type": _PRIMITIVES[tp]}
    if origin is typing.Annotated:
        schema = _typed(args[0], where, defs, seen)
        note = next((m for m in args[1:] if isinstance(m, str)), None)
        return {**schema, "description": _text(note)} if note else schema
    if origin is typing.Literal:
        values = list(args)
        if not all(isinstance(v, (str, int, float, bool)) or v is None for v in values):
            raise ConfigError(f"{where}: Literal values must be strings, numbers, booleans or None")
        kinds = {_PRIMITIVES[type(v)] for v in values}
        return {"type": kinds.pop(), "enum": values} if len(kinds) == 1 else {"enum": values}
    if origin is typing.Union or (hasattr(types, "UnionType") and isinstance(tp, types.UnionType)):
        return {"anyOf": [_typed(a, where, defs, seen) for a in args]}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        if not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise ConfigError(f"{where}: the values of enum {tp.__name__} must be strings, numbers or booleans")
        kinds = {_PRIMITIVES[type(v)] for v in values}
        return {"type": kinds.pop(), "enum": values} if len(kinds) == 1 else {"enum": values}
    if tp in (list, set, frozenset, tuple) or origin in (list, set, frozenset, Sequence, AbstractSet):
        if origin is None or not args:
            return {"type": "array"}
        return {"type": "array", "items": _typed(args[0], where, defs, seen)}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _typed(args[0], where, defs, seen)}
        items = [_typed(a, where, defs, seen) for a in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if tp in (dict, Mapping) or origin in (dict, Mapping):
        if args and args[0] is not str:
            raise ConfigError(f"{where}: a dict's keys must be str in JSON, got {args[0]!r}")
        return {"type": "object", "additionalProperties": _typed(args[1], where, defs, seen)} if args \
            else {"type": "object"}
    if isinstance(tp, type) and callable(getattr(tp, "model_json_schema", None)):  # a pydantic model
        schema = dict(tp.model_json_schema())  # type: ignore[attr-defined]
        defs.update(schema.pop("$defs", {}))
        return schema
    if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or typing.is_typeddict(tp)):
        if tp in seen:
            raise ConfigError(f"{where}: {tp.__name__} refers to itself; tools take JSON values, not cycles")
        hints = _hints(tp, where)
        if dataclasses.is_dataclass(tp):
            names = [f.name for f in dataclasses.fields(tp)]
            required = [f.name for f in dataclasses.fields(tp)
                        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        else:
            names = list(hints)
            required = [n for n in names if n in getattr(tp, "__required_keys__", names)]
        props = {n: _typed(hints[n], f"{where}.{n}", defs, seen | {tp}) for n in names if n in hints}
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    raise ConfigError(f"{where}: type {getattr(tp, '__name__', repr(tp))} has no JSON form; use str, int, float, "
                      "bool, Literal, an Enum, list, dict, a dataclass, a TypedDict or a pydantic model")


def _hints(obj: Any, where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception as exc:  # a forward reference that cannot be resolved
        raise ConfigError(f"{where}: its type hints cannot be resolved ({type(exc).__name__}: {exc}); "
                          "import the types they name at module level") from None


@functools.lru_cache(maxsize=512)
def _function_tool(fn: Callable[..., Any]) -> str:
    """The definition of a function as JSON text (cached per function; callers parse their own copy)."""
    name = getattr(fn, "__name__", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"tool {name!r:.80} needs a name of 1-64 letters, digits, '_' or '-' (the providers "
                          "require it); rename the function or give a JSON definition")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ConfigError(f"tool {name}: cannot read its signature; give a JSON definition instead") from None
    where = f"tool {name}"
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}  # unresolvable string hints: refused below for the parameter that has one
    summary, described = parse_docstring(inspect.getdoc(fn))
    props: dict[str, Any] = {}
    required: list[str] = []
    defs: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise ConfigError(f"{where}: parameter {p.name} is {p.kind.description}; a tool is called with "
                              "named arguments only")
        tp = hints.get(p.name, p.annotation)
        if tp is inspect.Parameter.empty or isinstance(tp, str):
            raise ConfigError(f"{where}: parameter {p.name} has no usable type hint; add one (str, int, float, "
                              "bool, Literal[...], list[str], ...) so the model knows what to pass")
        schema = _typed(tp, f"{where}: parameter {p.name}", defs, frozenset())
        if p.name in described:
            schema = {**schema, "description": described[p.name]}
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
        elif p.default is None or isinstance(p.default, (str, int, float, bool)):
            schema = {**schema, "default": p.default}
        props[p.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                                  "additionalProperties": False}
    if defs:
        parameters["$defs"] = defs
    return json.dumps({"name": name, "description": summary, "parameters": parameters}, ensure_ascii=False)


def function_tool(fn: Callable[..., Any]) -> dict[str, Any]:
    """The definition ``{"name", "description", "parameters"}`` of a typed Python function."""
    try:
        text = _function_tool(fn)
    except TypeError:  # an unhashable callable object: not cached
        text = _function_tool.__wrapped__(fn)
    result: dict[str, Any] = json.loads(text)
    return result


def _check_definition(d: Mapping[str, Any], i: int) -> dict[str, Any]:
    if d.get("type") == "function" and isinstance(d.get("function"), Mapping):  # the OpenAI shape
        d = d["function"]
    d = dict(d)
    if "input_schema" in d and "parameters" not in d:  # the Anthropic shape
        d["parameters"] = d.pop("input_schema")
    unknown = sorted(set(d) - _DEF_KEYS - {"strict"})
    if unknown:
        raise ConfigError(f"tool {i} has unknown key {unknown[0]!r}; a definition is "
                          '{"name": ..., "description": ..., "parameters": {JSON schema}}')
    name = d.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"tool {i} needs a 'name' of 1-64 letters, digits, '_' or '-', got {name!r:.80}")
    description = d.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"tool {name}: 'description' must be a string")
    parameters = d.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
        raise ConfigError(f"tool {name}: 'parameters' must be a JSON schema of type 'object'")
    try:
        parameters = json.loads(json.dumps(parameters))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tool {name}: 'parameters' is not JSON ({exc})") from None
    from protokit.models.structured import check_json_schema

    check_json_schema(parameters, f"tool {name}")
    return {"name": name, "description": _text(description), "parameters": parameters}


def check_tools(value: Any) -> tuple[list[dict[str, Any]], dict[str, Callable[..., Any]]]:
    """(definitions, {name: function}) from ``tools=``; ConfigError for anything else or a repeated name."""
    if callable(value) or isinstance(value, Mapping):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"tools must be a list of functions or JSON definitions, got {type(value).__name__}")
    definitions: list[dict[str, Any]] = []
    functions: dict[str, Callable[..., Any]] = {}
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            d = _check_definition(item, i)
        elif callable(item):
            d = function_tool(item)
            functions[d["name"]] = item
        else:
            raise ConfigError(f"tool {i} must be a function or a JSON definition dict, got {type(item).__name__}")
        if any(x["name"] == d["name"] for x in definitions):
            raise ConfigError(f"two tools are named {d['name']!r}; tool names must differ")
        definitions.append(d)
    return definitions, functions


def tool_calls_from(raw: Any, where: str) -> list[ToolCall]:
    """``[{"name", "arguments"}]`` from what a callable model returned; ConfigError for another shape."""
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise ConfigError(f"{where}: tool_calls must be a list of {{'name', 'arguments'}} dicts")
    calls = []
    for c in raw:
        if not (isinstance(c, Mapping) and isinstance(c.get("name"), str)
                and isinstance(c.get("arguments", {}), Mapping)):
            raise ConfigError(f"{where}: each tool call must be {{'name': str, 'arguments': dict}}, got {c!r:.80}")
        calls.append({"name": c["name"], "arguments": dict(c.get("arguments") or {})})
    return calls


def arguments_from_json(text: str | None) -> dict[str, Any]:
    """A tool call's arguments from the JSON text a provider sent; text that is no JSON object is kept whole."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_invalid_json": text}
    return value if isinstance(value, dict) else {"_invalid_json": text}


async def run_tool(functions: Mapping[str, Callable[..., Any]], call: ToolCall) -> str:
    """Run one tool call and return what the model is told: the result as text, or the error it raised."""
    fn = functions.get(call["name"])
    if fn is None:
        return f"error: there is no tool named {call['name']!r}"
    args = call.get("arguments") or {}
    try:
        if inspect.iscoroutinefunction(fn):
            result = await fn(**args)
        else:
            result = await asyncio.to_thread(fn, **args)
            if inspect.isawaitable(result):
                result = await typing.cast("Awaitable[Any]", result)
    except Exception as exc:  # the model is told, as a tool's answer; the loop goes on
        return safe_text(f"error: {type(exc).__name__}: {exc}")
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(result)


async def run_tools(model: Model, request: Request, step: Callable[[Request], Awaitable[Response]]) -> Response:
    """Ask, run the Python tools the model calls, tell it their results, ask again: at most ``max_steps`` calls.

    Each step is one call through ``step`` (so each is cached, retried and budgeted on its own);
    the tool calls' ids are made here (``call_<step>_<n>``), so a step's request, and its cache
    key, is the same in every run. The last answer is returned with the tool calls of every
    step, and the tokens, cost and latency of all of them added up.
    """
    messages = list(request.messages)
    made: list[ToolCall] = []
    answers: list[Response] = []
    for n in range(request.max_steps):
        response = await step(dataclasses.replace(request, messages=tuple(messages), max_steps=1))
        answers.append(response)
        made.extend(response.tool_calls)
        if not response.tool_calls or n == request.max_steps - 1:
            break
        ids = [f"call_{n}_{i}" for i in range(len(response.tool_calls))]
        messages.append({"role": "assistant", "content": response.text,
                         "tool_calls": [{"id": i, **c} for i, c in zip(ids, response.tool_calls, strict=True)]})
        for i, c in zip(ids, response.tool_calls, strict=True):
            result = await run_tool(request.functions, c)
            messages.append({"role": "tool", "tool_call_id": i, "name": c["name"], "content": result})
    last = answers[-1]
    last.tool_calls = made
    if len(answers) > 1:
        last.latency_s = sum(a.latency_s for a in answers)
        last.ttft_s = answers[0].ttft_s
        last.cached = all(a.cached for a in answers)
        for name in ("input_tokens", "output_tokens", "cost_usd"):
            values = [getattr(a, name) for a in answers]
            setattr(last, name, None if any(v is None for v in values) else sum(values))
    return last
