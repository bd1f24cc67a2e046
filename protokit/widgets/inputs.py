"""What the widget's controls turn into: checked cases, template, options and the run's arguments."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protokit.errors import ProtokitError
from protokit.models import Model

__all__ = ["RunPlan", "case_columns", "case_rows", "columns_html", "estimate_html", "opt_text",
           "parse_options", "template_problem"]

CaseRows = list[tuple[Any, dict[str, Any]]]


@dataclass
class RunPlan:
    """A validated run request: what acompare/estimate are called with."""

    models: list[Model]
    prompt: Any  # a template, or {name: template} with prompt variants
    samples: int
    options: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)


def opt_text(value: Any) -> str:
    """An option's value as the text box shows it ("" for unset)."""
    return "" if value is None else str(value)


def parse_options(base: Mapping[str, Any], *, temperature: str, max_tokens: str) -> dict[str, Any] | str:
    """The call options from the text boxes (empty = the model's default), or what is wrong with them."""
    options = dict(base)
    try:
        if temperature.strip():
            options["temperature"] = float(temperature)
        if max_tokens.strip():
            options["max_tokens"] = int(max_tokens)
    except ValueError:
        return "temperature must be a number and max tokens a whole number (or leave them empty)"
    return options


def case_rows(cases: Any) -> CaseRows:
    """(case id, columns) per case, with the ids compare assigns (the ``case``/``id`` column or position)."""
    from protokit.comparisons import load_cases

    _frame, records = load_cases(cases)
    return [(rec["case"], {k: v for k, v in rec.items() if k != "case"}) for rec in records]


def case_columns(rows: Sequence[tuple[Any, Mapping[str, Any]]]) -> list[str]:
    """The column names of the cases, in first-seen order."""
    seen: dict[str, None] = {}
    for _case, columns in rows:
        for name in columns:
            seen.setdefault(str(name), None)
    return list(seen)


def columns_html(columns: Sequence[str]) -> str:
    """The line under the prompt editor listing the fields a template can use."""
    return ('<span class="pk-muted pk-cols">case columns: '
            + "".join(f"<code>{{{html.escape(c)}}}</code>" for c in columns) + "</span>")


def template_problem(template: str, columns: Sequence[str]) -> str | None:
    """Why the template cannot be filled from the case columns, or None when it can."""
    from protokit.comparisons import template_fields

    try:
        fields = template_fields(template)
    except ProtokitError as exc:
        return str(exc)
    missing = [f for f in dict.fromkeys(fields) if f not in columns and f != "case"]
    if missing:
        names = ", ".join("{" + m + "}" for m in missing)
        return (f"the prompt uses {names} but the cases have no such column "
                f"(columns: {', '.join(columns) or 'none'}); add the column or fix the template")
    return None


def estimate_html(est: Any) -> str:
    """The estimate line; compare's Estimate reads as one sentence (calls, tokens, cost, time)."""
    return f'<span class="pk-muted">estimate: {html.escape(str(est))}</span>'
