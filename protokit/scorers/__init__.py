"""Scorers for ``pk.compare``: each scores one output against its case, higher is better.

A scorer has a ``name``; its scores land in the ``score_<name>`` column and, when
it explains itself, its reasons in ``reason_<name>``. Any function
``(output, case) -> bool | float | {"score": ..., "reason": ...}`` is a scorer
too (named after the function). A scorer that raises, or returns another type,
is recorded in that row's ``scorer_error`` column; the comparison goes on.

>>> pk.scorers.exact("expected", ignore_case=True)
>>> pk.scorers.judge("openai:gpt-4.1-mini", "Is the answer polite and correct?", scale=(1, 5))
>>> pk.scorers.tool_call("get_weather", {"city": "Paris"})   # scores the tool_calls column
"""

from __future__ import annotations

from protokit.scorers._base import (
    FunctionScorer,
    Score,
    Scorer,
    ScorerTypeError,
    as_scorer,
    custom,
    rebuild,
    to_score,
)
from protokit.scorers._guards import classifier, find_pii, luhn_ok, pii
from protokit.scorers._json import json_schema, json_valid, parse_json
from protokit.scorers._judge import judge, parse_verdict
from protokit.scorers._text import contains, exact, numeric, regex, rouge_l, similarity, token_f1
from protokit.scorers._tools import tool_call

__all__ = [
    "FunctionScorer",
    "Score",
    "Scorer",
    "ScorerTypeError",
    "as_scorer",
    "classifier",
    "contains",
    "custom",
    "exact",
    "find_pii",
    "json_schema",
    "json_valid",
    "judge",
    "luhn_ok",
    "numeric",
    "parse_json",
    "parse_verdict",
    "pii",
    "rebuild",
    "regex",
    "rouge_l",
    "similarity",
    "to_score",
    "token_f1",
    "tool_call",
]
