"""Structured output: ``schema=`` as a JSON schema or a pydantic model class, and an answer checked against it.

The schema travels in a request's options as JSON (so it is part of the cache key); a pydantic
class rides beside it, outside the key, to build ``Response.parsed``. Each adapter asks its
provider natively (OpenAI ``response_format`` json_schema, Anthropic a forced tool); the answer
is checked here, after the cache, so a replay gives the same ``parsed`` or the same
:class:`~protokit.errors.SchemaError`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from protokit.errors import ConfigError, SchemaError

__all__ = ["STRICT_UNSUPPORTED", "check_json_schema", "check_schema", "is_model_class", "parse_answer", "schema_name",
           "strict_schema"]

_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")


def is_model_class(value: Any) -> bool:
    """True for a pydantic model class (found by its methods: pydantic is never imported here)."""
    return isinstance(value, type) and callable(getattr(value, "model_json_schema", None)) \
        and callable(getattr(value, "model_validate", None))


@functools.lru_cache(maxsize=256)
def _model_schema(cls: type) -> str:
    return json.dumps(cls.model_json_schema(), ensure_ascii=False)  # type: ignore[attr-defined]


def check_json_schema(schema: Mapping[str, Any], where: str) -> None:
    """ConfigError when ``schema`` is not a valid JSON Schema (checked when jsonschema is installed)."""
    problem = _schema_problem(json.dumps(schema, sort_keys=True))
    if problem is not None:
        raise ConfigError(f"{where}: invalid JSON schema: {problem}")


@functools.lru_cache(maxsize=512)
def _schema_problem(schema_json: str) -> str | None:
    """Why a schema (as canonical JSON) is invalid, or None; cached, as compare checks one per call."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - a core dependency; the provider checks it then
        return None
    schema = json.loads(schema_json)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return str(exc.message)
    return None


def check_schema(value: Any) -> tuple[dict[str, Any], type | None]:
    """(the JSON schema, the pydantic class or None) of ``schema=``; ConfigError for anything else."""
    if is_model_class(value):
        schema: dict[str, Any] = json.loads(_model_schema(value))
        return schema, value
    if not isinstance(value, Mapping):
        raise ConfigError(f"schema= must be a JSON schema dict or a pydantic model class, got {type(value).__name__}")
    try:
        schema = json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"schema= is not JSON ({exc})") from None
    if schema.get("type") != "object":
        raise ConfigError('schema= must describe an object ({"type": "object", "properties": {...}}); '
                          "wrap a list or a value in one property")
    check_json_schema(schema, "schema=")
    return schema, None


def schema_name(schema: Mapping[str, Any]) -> str:
    """The name a provider is told (its ``title``, made of letters, digits, ``_`` and ``-``), else ``response``."""
    title = schema.get("title")
    name = _NOT_NAME.sub("_", title)[:64] if isinstance(title, str) else ""
    return name or "response"


# Maps of name -> schema: their keys are names (a property may be called "required"), never keywords.
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})
# Keywords whose value is data, not a schema.
_DATA = frozenset({"enum", "const", "default", "examples", "required", "description", "title", "pattern", "format"})
# Keywords OpenAI's strict mode refuses (the request fails with 400). They are left out of what is
# sent, and the answer is still checked against the schema as given, so a violation is a SchemaError.
STRICT_UNSUPPORTED = frozenset({
    "minLength", "maxLength", "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
    "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "uniqueItems", "not", "if",
    "then", "else", "dependentRequired", "dependentSchemas"})


def strict_schema(schema: Any) -> Any:
    """The form OpenAI's strict mode takes: every object closed, every property listed as required,
    keywords strict mode refuses left out (:data:`STRICT_UNSUPPORTED`).

    Closing objects narrows the schema; leaving keywords out widens it, which is why answers are checked
    against the schema as given (:func:`parse_answer`), not against this form.
    """
    if isinstance(schema, list):
        return [strict_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in STRICT_UNSUPPORTED:
            continue
        if key in _DATA:
            out[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: strict_schema(sub) for name, sub in value.items()}
        else:
            out[key] = strict_schema(value)
    if isinstance(out.get("properties"), dict):
        out.setdefault("additionalProperties", False)
        out["required"] = list(out["properties"])
    return out


def _first_error(exc: ValueError) -> str:
    """``where: what`` of a pydantic ValidationError's first error (its whole text for another ValueError)."""
    try:
        first = exc.errors()[0]  # type: ignore[attr-defined]
        where = "/".join(str(p) for p in first["loc"]) or "(root)"
        return f"{where}: {first['msg']}"[:200]
    except (AttributeError, IndexError, KeyError, TypeError):
        return " ".join(str(exc).split())[:200]


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def parse_answer(text: str, schema: Mapping[str, Any], model_class: type | None, model_id: str) -> Any:
    """The answer as a dict (or an instance of ``model_class``); SchemaError when it is not JSON or does not match."""
    name = schema_name(schema)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"{model_id}: the answer is not JSON ({exc}) but schema {name} was asked for: "
                          f"{text[:60]!r}", model=model_id) from None
    if model_class is not None:
        try:
            return model_class.model_validate(data)  # type: ignore[attr-defined]
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise SchemaError(f"{model_id}: the answer does not match {name}: {_first_error(exc)}",
                              model=model_id) from None
    try:
        from jsonschema.exceptions import best_match
    except ImportError:  # pragma: no cover - a core dependency
        return data
    error = best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise SchemaError(f"{model_id}: the answer does not match schema {name}: {where}: {error.message[:200]}",
                          model=model_id)
    return data
