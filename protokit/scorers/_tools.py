"""Tool-call scorers: did the model call the expected tool, with the expected arguments?"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from protokit.errors import ConfigError
from protokit.scorers._base import Score, Scorer, rebuildable

__all__ = ["ToolCallScorer", "tool_call"]

_MATCHES = ("subset", "exact")


def _subset(expected: Any, actual: Any) -> bool:
    """``expected`` is found in ``actual``: dicts key by key (recursively), anything else equal."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


class ToolCallScorer(Scorer):
    """1.0 when one of the answer's tool calls is ``name`` with the expected arguments, else 0.0 with a reason.

    It scores the ``tool_calls`` results column (``reads``), not the text.
    """

    reads = "tool_calls"

    def __init__(self, tool: str, args: Mapping[str, Any] | str | None, *, match: str, name: str) -> None:
        if not isinstance(tool, str) or not tool:
            raise ConfigError(f"pk.scorers.tool_call needs the tool's name, got {tool!r}")
        if match not in _MATCHES:
            raise ConfigError(f"pk.scorers.tool_call: match must be 'subset' or 'exact', got {match!r}")
        if args is not None and not isinstance(args, (Mapping, str)):
            raise ConfigError("pk.scorers.tool_call: args must be a dict, a case column's name or None, "
                              f"got {type(args).__name__}")
        super().__init__(name, columns=(args,) if isinstance(args, str) else (), reasons=True)
        self.tool = tool
        self.args = args
        self.match = match

    def _expected(self, case: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if not isinstance(self.args, str):
            return self.args
        value = case[self.args]
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, Mapping):
            raise ConfigError(f"column {self.args!r} must hold the arguments as a dict or JSON object text")
        return value

    def score(self, output: Any, case: Mapping[str, Any]) -> Score:
        """Look for a matching call among ``output`` (the tool calls, or a Response)."""
        calls = getattr(output, "tool_calls", output)
        if not isinstance(calls, Sequence) or isinstance(calls, str):
            calls = []
        expected = self._expected(case)
        named = [c for c in calls if isinstance(c, Mapping) and c.get("name") == self.tool]
        if not named:
            seen = ", ".join(str(c.get("name")) for c in calls if isinstance(c, Mapping)) or "none"
            return Score(0.0, f"no call of {self.tool} (calls: {seen})")
        if expected is None:
            return Score(1.0)
        for c in named:
            actual = c.get("arguments") or {}
            if (actual == expected) if self.match == "exact" else _subset(expected, actual):
                return Score(1.0)
        shown = json.dumps(named[0].get("arguments"), ensure_ascii=False, default=str)[:120]
        return Score(0.0, f"{self.tool} called with {shown}, expected {self.match} "
                          f"{json.dumps(expected, ensure_ascii=False, default=str)[:120]}")

    def describe(self) -> dict[str, Any]:
        """Name, kind, columns, and which call it looks for."""
        return {**super().describe(), "tool": self.tool, "match": self.match}


@rebuildable
def tool_call(name: str, args: Mapping[str, Any] | str | None = None, *, match: str = "subset",
              scorer_name: str = "tool_call") -> Scorer:
    """The answer calls tool ``name`` (with ``args``: a dict, or the name of a case column holding one).

    ``match="subset"``: the call's arguments hold every expected key with an equal value (dicts
    compared key by key); ``"exact"``: they are equal. Scores the ``tool_calls`` column;
    ``scorer_name`` names the score column (``score_<scorer_name>``).
    """
    return ToolCallScorer(name, args, match=match, name=scorer_name)
