"""Guardrail scorers: a PII/secret detector and a hook for the user's own classifier."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from protokit.errors import ConfigError
from protokit.scorers._base import Score, Scorer, rebuildable, to_score
from protokit.secrets import find_secrets

__all__ = ["PII_KINDS", "classifier", "find_pii", "luhn_ok", "pii"]

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# Digit runs with the separators people write in phone and card numbers.
_DIGITS = re.compile(r"(?<![\w.])\+?\(?\d[\d ().-]{7,}\d(?![\w])")
PII_KINDS = ("email", "phone", "card", "secret")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask(kind: str, value: str) -> str:
    # Never copy the found value into results: show its shape only.
    if kind == "email":
        user, _, domain = value.partition("@")
        return f"{user[:1]}***@{domain}"
    digits = re.sub(r"\D", "", value)
    return f"…{digits[-4:]}"


def find_pii(text: str, kinds: Iterable[str] = PII_KINDS) -> list[tuple[str, str]]:
    """``(kind, masked value)`` for each email, phone, card number (Luhn-valid) and secret found."""
    want = set(kinds)
    found: list[tuple[str, str]] = []
    if "email" in want:
        found += [("email", _mask("email", m.group(0))) for m in _EMAIL.finditer(text)]
    if "secret" in want:
        # The package's one secret detector: key shapes, tokens, JWTs, PEM keys, credential assignments.
        found += [("secret", hit.masked) for hit in find_secrets(text)]
    if want & {"phone", "card"}:
        for m in _DIGITS.finditer(text):
            raw = m.group(0)
            digits = re.sub(r"\D", "", raw)
            if "card" in want and 13 <= len(digits) <= 19 and luhn_ok(digits):
                found.append(("card", _mask("card", raw)))
            elif "phone" in want and 9 <= len(digits) <= 15 and (raw.startswith("+") or re.search(r"\D", raw)):
                # Bare digit runs are more often ids than phone numbers: require + or separators.
                found.append(("phone", _mask("phone", raw)))
    return found


class PII(Scorer):
    """1.0 when the output holds no email, phone, card number or key-shaped secret; else 0.0."""

    def __init__(self, kinds: Sequence[str], name: str) -> None:
        unknown = set(kinds) - set(PII_KINDS)
        if unknown:
            raise ConfigError(f"pk.scorers.pii: unknown kind {sorted(unknown)[0]!r}; "
                              f"known kinds: {', '.join(PII_KINDS)}")
        super().__init__(name, reasons=True)
        self.kinds = tuple(kinds)

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Scan the output."""
        found = find_pii(output, self.kinds)
        if not found:
            return Score(1.0)
        return Score(0.0, "found " + ", ".join(f"{k} {v}" for k, v in found))


@rebuildable
def pii(*, kinds: Sequence[str] = PII_KINDS, name: str = "no_pii") -> Scorer:
    """Guardrail: 1.0 when no PII or secret is in the output (emails, phones, Luhn-valid cards, API keys)."""
    return PII(kinds, name)


class Classifier(Scorer):
    """The user's own classifier (toxicity, topic, tone) applied to each output."""

    def __init__(self, fn: Callable[[str], Any], *, name: str, label: str | None,
                 threshold: float | None, invert: bool) -> None:
        if not callable(fn):
            raise ConfigError(f"pk.scorers.classifier needs a function text -> score, got {fn!r:.60}")
        super().__init__(name, reasons=True)
        self.fn = fn
        self.label = label
        self.threshold = threshold
        self.invert = invert

    def score(self, output: str, case: Mapping[str, Any]) -> Score:
        """Classify, pick the label's score, then threshold and invert as configured."""
        raw = self.fn(output)
        # Hugging Face pipelines return [{"label": ..., "score": ...}, ...].
        if isinstance(raw, list) and raw and isinstance(raw[0], list):
            raw = raw[0]
        if isinstance(raw, list):
            raw = _pick_label(raw, self.label)
        elif isinstance(raw, Mapping) and "label" in raw and "score" in raw:
            raw = _pick_label([raw], self.label)
        s = to_score(raw, self.name)
        value = s.value if s.value is not None else 0.0
        if self.threshold is not None:
            value = 1.0 if value >= self.threshold else 0.0
        if self.invert:
            value = 1.0 - value
        return Score(value, s.reason)


def _pick_label(items: list[Any], label: str | None) -> dict[str, Any]:
    scores = {str(it["label"]): float(it["score"]) for it in items}
    if label is None:
        top = max(scores, key=lambda k: scores[k])
        return {"score": scores[top], "reason": f"{top} ({scores[top]:.2f})"}
    if label in scores:
        return {"score": scores[label], "reason": f"{label} ({scores[label]:.2f})"}
    if len(scores) == 1:  # only the top label came back and it is another one
        other, p = next(iter(scores.items()))
        return {"score": 1.0 - p, "reason": f"{other} ({p:.2f})"}
    raise ValueError(f"the classifier gave no score for label {label!r} (labels: {', '.join(scores)})")


def classifier(fn: Callable[[str], Any], *, name: str, label: str | None = None,
               threshold: float | None = None, invert: bool = False) -> Scorer:
    """Your classifier ``fn(text)`` as a scorer (toxicity, say).

    ``fn`` returns a bool, a number, ``{"score", "reason"}`` or Hugging Face style
    ``[{"label", "score"}]`` (then ``label`` picks the class). ``threshold`` turns
    the value into 1/0, and ``invert=True`` makes a "bad content" probability
    higher-is-better, as the comparison's charts and ``best()`` assume.
    """
    return Classifier(fn, name=name, label=label, threshold=threshold, invert=invert)
