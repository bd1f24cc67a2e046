"""The one secret detector: key-shaped strings and credential assignments, found, masked, redacted.

Every place that must keep credentials off disk or off the screen uses this module: the
notebook gate, ``protokit run -p``, the cache (request options, headers, error texts),
exports, the run store, logs and the CLI. It imports nothing of protokit, so any layer may
use it.

Model *answers* and prompt *messages* are never rewritten with it (a replay must be exact);
an answer that looks like a live key is only flagged (:func:`looks_like_secret`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["REDACTED", "SecretHit", "find_secrets", "is_credential_name", "looks_like_secret", "mask",
           "redact", "scrub"]

REDACTED = "[redacted]"

# (kind, pattern) for values whose shape alone says "credential".
_KEY_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    ("an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("an OpenAI project key", re.compile(r"\bsk-proj-[A-Za-z0-9_\-]{20,}")),
    ("an OpenAI API key", re.compile(r"\bsk-(?!ant-|proj-)[A-Za-z0-9_\-]{20,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
]
_CREDENTIAL_NAME = re.compile(r"api[_-]?key|authori[sz]ation|(auth|access|refresh)[_-]?token|secret|password|"
                              r"bearer|cookie", re.I)
_ASSIGNED = re.compile(
    r"""["']?\b([A-Za-z_][A-Za-z0-9_\-]*?(?:key|secret|token|passwd|password|pwd)[A-Za-z0-9_\-]*)\b["']?"""
    r"""\s*[:=]\s*[rbuf]?["']([^"'\s]{16,})["']""", re.IGNORECASE)


@dataclass(frozen=True)
class SecretHit:
    """A secret found in some text: what it looks like, where, and its masked form."""

    kind: str
    masked: str
    line: int
    start: int
    end: int


def mask(secret: str) -> str:
    """The first 4 characters and an ellipsis: enough to recognise a key, not to use it."""
    return secret[:4] + "…"


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _looks_random(value: str) -> bool:
    return (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
            and _entropy(value) >= 3.3)


def find_secrets(text: str) -> list[SecretHit]:
    """Every key-shaped value, and every credential-named assignment of a literal, in ``text``."""
    hits: list[SecretHit] = []
    spans: list[tuple[int, int]] = []
    for kind, regex in _KEY_SHAPES:
        for m in regex.finditer(text):
            if any(s <= m.start() < e for s, e in spans):
                continue
            spans.append(m.span())
            hits.append(SecretHit(kind, mask(m.group(0)), text.count("\n", 0, m.start()) + 1, *m.span()))
    for m in _ASSIGNED.finditer(text):
        start, end = m.span(2)
        if any(s < end and start < e for s, e in spans) or not _looks_random(m.group(2)):
            continue
        spans.append((start, end))
        hits.append(SecretHit(f"a value assigned to {m.group(1)!r}", mask(m.group(2)),
                              text.count("\n", 0, start) + 1, start, end))
    return sorted(hits, key=lambda h: h.start)


def redact(text: str) -> str:
    """``text`` with every secret :func:`find_secrets` sees replaced by its masked form."""
    for hit in reversed(find_secrets(text)):
        text = text[:hit.start] + hit.masked + text[hit.end:]
    return text


def is_credential_name(name: str) -> bool:
    """True for a name that says it holds a credential (``api_key``, ``Authorization``, ``token``...)."""
    return bool(_CREDENTIAL_NAME.search(name))


def looks_like_secret(value: str) -> bool:
    """True when a bare value (a parameter, an answer) holds something key-shaped."""
    return any(regex.search(value) for _, regex in _KEY_SHAPES)


def scrub(value: Any) -> Any:
    """A copy with credential-named keys dropped and secrets in strings redacted, at any depth."""
    if isinstance(value, Mapping):
        return {k: scrub(v) for k, v in value.items() if not (isinstance(k, str) and is_credential_name(k))}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
