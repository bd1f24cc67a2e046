"""Text scorers against a case column: exact, contains, regex, numeric and similarity."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

from protokit.errors import ConfigError
from protokit.scorers._base import Score, Scorer, rebuildable

__all__ = ["contains", "exact", "numeric", "regex", "similarity"]

_PUNCT = str.maketrans("", "", string.punctuation)
_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")
_SHOW = 60


def _short(text: Any) -> str:
    text = str(text)
    return repr(text if len(text) <= _SHOW else text[:_SHOW] + "…")


def _cell(case: Mapping[str, Any], column: str) -> Any:
    return case[column]


class _Normaliser:
    def __init__(self, ignore_case: bool, ignore_whitespace: bool, ignore_punctuation: bool) -> None:
        self.ignore_case = ignore_case
        self.ignore_whitespace = ignore_whitespace
        self.ignore_punctuation = ignore_punctuation

    def __call__(self, text: Any) -> str:
        s = "" if text is None else str(text)
        if self.ignore_punctuation:
            s = s.translate(_PUNCT)
        if self.ignore_case:
            s = s.casefold()
        if self.ignore_whitespace:
            s = _SPACE.sub(" ", s).strip()
        return s


class Exact(Scorer):
    """1.0 when the output equals the case's expected value after normalisation."""

    def __init__(self, column: str, *, ignore_case: bool, ignore_whitespace: bool,
                 ignore_punctuation: bool, name: str) -> None:
        super().__init__(name, columns=(column,), reasons=True)
        self.column = column
        self.norm = _Normaliser(ignore_case, ignore_whitespace, ignore_punctuation)

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Compare normalised output and expected value."""
        expected = _cell(case, self.column)
        if self.norm(output) == self.norm(expected):
            return Score(1.0)
        return Score(0.0, f"expected {_short(expected)}, got {_short(output)}")


@rebuildable
def exact(column: str, *, ignore_case: bool = False, ignore_whitespace: bool = True,
          ignore_punctuation: bool = False, name: str = "exact") -> Scorer:
    """Output equals ``case[column]``; whitespace is collapsed and stripped unless told otherwise."""
    return Exact(column, ignore_case=ignore_case, ignore_whitespace=ignore_whitespace,
                 ignore_punctuation=ignore_punctuation, name=name)


class Contains(Scorer):
    """1.0 when the output contains the case's value (or a fixed text)."""

    def __init__(self, column: str | None, text: str | None, *, ignore_case: bool, name: str) -> None:
        if (column is None) == (text is None):
            raise ConfigError("pk.scorers.contains needs a case column or text=..., not both")
        super().__init__(name, columns=() if column is None else (column,), reasons=True)
        self.column = column
        self.text = text
        self.norm = _Normaliser(ignore_case, True, False)

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Look for the needle in the output."""
        needle = self.text if self.column is None else _cell(case, self.column)
        if self.norm(needle) in self.norm(output):
            return Score(1.0)
        return Score(0.0, f"{_short(needle)} not found")


@rebuildable
def contains(column: str | None = None, *, text: str | None = None, ignore_case: bool = True,
             name: str = "contains") -> Scorer:
    """Output contains ``case[column]`` (or the fixed ``text``), case-insensitive by default."""
    return Contains(column, text, ignore_case=ignore_case, name=name)


class Regex(Scorer):
    """1.0 when a regex (fixed, or taken from a case column) is found in the output."""

    def __init__(self, pattern: str | None, column: str | None, *, flags: int, name: str) -> None:
        if (pattern is None) == (column is None):
            raise ConfigError("pk.scorers.regex needs a pattern or column=..., not both")
        super().__init__(name, columns=() if column is None else (column,), reasons=True)
        self.column = column
        self.flags = flags
        self.pattern: re.Pattern[str] | None = None
        if pattern is not None:
            try:
                self.pattern = re.compile(pattern, flags)
            except re.error as exc:
                raise ConfigError(f"pk.scorers.regex: bad pattern {pattern!r}: {exc}") from None

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Search the output."""
        pattern = self.pattern or re.compile(str(_cell(case, str(self.column))), self.flags)
        if pattern.search(output):
            return Score(1.0)
        return Score(0.0, f"no match for /{pattern.pattern}/")


@rebuildable
def regex(pattern: str | None = None, *, column: str | None = None, flags: int = 0,
          name: str = "regex") -> Scorer:
    """The output matches ``pattern`` (``re.search``), or the pattern in ``case[column]``."""
    return Regex(pattern, column, flags=flags, name=name)


def _numbers(text: str) -> list[float]:
    found = []
    for m in _NUMBER.finditer(text):
        found.append(float(m.group(0).replace(",", "")))
    return found


class Numeric(Scorer):
    """1.0 when the number in the output is within tolerance of the case's number."""

    def __init__(self, column: str, *, tolerance: float, relative: bool, pick: str, name: str) -> None:
        if tolerance < 0:
            raise ConfigError(f"pk.scorers.numeric: tolerance must be >= 0, got {tolerance}")
        if pick not in ("first", "last"):
            raise ConfigError(f"pk.scorers.numeric: pick must be 'first' or 'last', got {pick!r}")
        super().__init__(name, columns=(column,), reasons=True)
        self.column = column
        self.tolerance = tolerance
        self.relative = relative
        self.pick = pick

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Extract the number and compare."""
        raw = _cell(case, self.column)
        expected = float(str(raw).replace(",", "")) if isinstance(raw, str) else float(raw)
        numbers = _numbers(output)
        if not numbers:
            return Score(0.0, f"no number in the output (expected {expected:g})")
        got = numbers[0] if self.pick == "first" else numbers[-1]
        allowed = self.tolerance * abs(expected) if self.relative else self.tolerance
        if math.isclose(got, expected, rel_tol=0.0, abs_tol=allowed + 1e-12):
            return Score(1.0)
        return Score(0.0, f"expected {expected:g}, got {got:g}")


@rebuildable
def numeric(column: str, *, tolerance: float = 0.0, relative: bool = False,
            pick: Literal["first", "last"] = "last", name: str = "numeric") -> Scorer:
    """The number in the output (the last one by default, as in worked answers) is within tolerance.

    ``tolerance`` is absolute, or a fraction of the expected value with ``relative=True``.
    """
    return Numeric(column, tolerance=tolerance, relative=relative, pick=pick, name=name)


def _tokens(text: Any) -> list[str]:
    return _TOKEN.findall(str(text).casefold())


def token_f1(output: str, reference: str) -> float:
    """Token-overlap F1 (words, case-folded, punctuation ignored); 1.0 when both are empty."""
    a, b = _tokens(output), _tokens(reference)
    if not a or not b:
        return float(a == b)
    common = sum((Counter(a) & Counter(b)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def rouge_l(output: str, reference: str) -> float:
    """ROUGE-L F-measure: the longest common token subsequence against both lengths."""
    a, b = _tokens(output), _tokens(reference)
    if not a or not b:
        return float(a == b)
    prev = [0] * (len(b) + 1)
    for x in a:  # one row of the LCS table at a time: memory linear in the reference
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


_METHODS = {"f1": token_f1, "rouge_l": rouge_l}


class Similarity(Scorer):
    """A 0-1 text similarity to the case's reference (token F1 or ROUGE-L)."""

    def __init__(self, column: str, *, method: str, name: str | None) -> None:
        if method not in _METHODS:
            raise ConfigError(f"pk.scorers.similarity: method must be one of {', '.join(_METHODS)}, "
                              f"got {method!r}")
        super().__init__(name or method, columns=(column,))
        self.column = column
        self.fn = _METHODS[method]

    def score(self, output: str, case: Mapping[str, Any]) -> float:
        """Similarity between output and reference."""
        return self.fn(output, str(_cell(case, self.column)))


@rebuildable
def similarity(column: str, *, method: Literal["f1", "rouge_l"] = "f1", name: str | None = None) -> Scorer:
    """Token-overlap F1 (``method="f1"``) or ROUGE-L against ``case[column]``; named after the method."""
    return Similarity(column, method=method, name=name)
