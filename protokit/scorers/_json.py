"""Structured-output scorers: the output parses as JSON, and it matches a JSON Schema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from protokit.errors import ConfigError
from protokit.scorers._base import Score, Scorer, rebuildable

__all__ = ["json_schema", "json_valid", "parse_json"]

# Models often wrap JSON in a Markdown fence even when asked not to.
_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n?\s*```\s*$", re.S)


def parse_json(output: str, *, strip_fences: bool = True) -> Any:
    """Parse the output as JSON, first removing a surrounding Markdown code fence if asked."""
    text = output
    if strip_fences:
        m = _FENCE.match(text)
        if m:
            text = m.group(1)
    return json.loads(text)


class JsonValid(Scorer):
    """1.0 when the output is valid JSON (optionally inside a code fence)."""

    def __init__(self, *, strip_fences: bool, name: str) -> None:
        super().__init__(name, reasons=True)
        self.strip_fences = strip_fences

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Try to parse."""
        try:
            parse_json(output, strip_fences=self.strip_fences)
        except ValueError as exc:
            return Score(0.0, f"not JSON: {exc}")
        return Score(1.0)


@rebuildable
def json_valid(*, strip_fences: bool = True, name: str = "json_valid") -> Scorer:
    """The output parses as JSON (a surrounding ```json fence is allowed unless strip_fences=False)."""
    return JsonValid(strip_fences=strip_fences, name=name)


class JsonSchema(Scorer):
    """1.0 when the output is JSON that validates against a schema (fixed or from a case column)."""

    def __init__(self, schema: Mapping[str, Any] | None, column: str | None, *, strip_fences: bool,
                 name: str) -> None:
        if (schema is None) == (column is None):
            raise ConfigError("pk.scorers.json_schema needs a schema dict or column=..., not both")
        super().__init__(name, columns=() if column is None else (column,), reasons=True)
        self.column = column
        self.strip_fences = strip_fences
        self._validator = None if schema is None else _validator(schema)

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Parse, then validate; the reason is the most relevant validation error."""
        validator = self._validator
        if validator is None:
            raw = case[str(self.column)]
            validator = _validator(json.loads(raw) if isinstance(raw, str) else raw)
        try:
            data = parse_json(output, strip_fences=self.strip_fences)
        except ValueError as exc:
            return Score(0.0, f"not JSON: {exc}")
        from jsonschema.exceptions import best_match

        error = best_match(validator.iter_errors(data))
        if error is None:
            return Score(1.0)
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Score(0.0, f"{where}: {error.message}")


def _validator(schema: Any) -> Any:
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - jsonschema comes with nbformat
        raise ConfigError("pk.scorers.json_schema needs jsonschema: pip install jsonschema") from exc
    if not isinstance(schema, Mapping):
        raise ConfigError(f"a JSON Schema must be a dict, got {type(schema).__name__}")
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"pk.scorers.json_schema: invalid schema: {exc.message}") from None
    return cls(schema)


@rebuildable
def json_schema(schema: Mapping[str, Any] | None = None, *, column: str | None = None,
                strip_fences: bool = True, name: str = "json_schema") -> Scorer:
    """The output is JSON matching ``schema`` (JSON Schema, checked up front) or ``case[column]``'s schema."""
    return JsonSchema(schema, column, strip_fences=strip_fences, name=name)
