"""Key-shaped strings in notebook sources, outputs and parameters; reported masked, never whole."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SecretHit", "find_secrets", "mask", "redact", "secrets_in_cell", "secrets_in_metadata"]

_KEY_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    ("an Anthropic API key", re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}")),
    ("an OpenAI project key", re.compile(r"sk-proj-[A-Za-z0-9_\-]{20,}")),
    ("an OpenAI API key", re.compile(r"sk-(?!ant-|proj-)[A-Za-z0-9_\-]{20,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
]
# name = "value" (Python) or "name": "value" (JSON/YAML), where the name says it holds a credential.
_ASSIGNED = re.compile(
    r"""["']?\b([A-Za-z_][A-Za-z0-9_\-]*?(?:key|secret|token|passwd|password|pwd)[A-Za-z0-9_\-]*)\b["']?"""
    r"""\s*[:=]\s*[rbuf]?["']([^"'\s]{16,})["']""", re.IGNORECASE)


@dataclass(frozen=True)
class SecretHit:
    """A secret found in some text: what it looks like, where, and its masked form."""

    kind: str
    masked: str
    line: int


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
    """Every key-shaped or credential-named high-entropy string in ``text``."""
    hits: list[SecretHit] = []
    seen: set[str] = set()
    for kind, regex in _KEY_SHAPES:
        for m in regex.finditer(text):
            if m.group(0) not in seen:
                seen.add(m.group(0))
                hits.append(SecretHit(kind, mask(m.group(0)), text.count("\n", 0, m.start()) + 1))
    for m in _ASSIGNED.finditer(text):
        value = m.group(2)
        if value in seen or any(value in s or s in value for s in seen) or not _looks_random(value):
            continue
        seen.add(value)
        hits.append(SecretHit(f"a high-entropy value assigned to {m.group(1)!r}", mask(value),
                              text.count("\n", 0, m.start()) + 1))
    return hits


def redact(text: str) -> str:
    """The text with every secret find_secrets sees replaced by its masked form."""
    for _, regex in _KEY_SHAPES:
        text = regex.sub(lambda m: mask(m.group(0)), text)
    return _ASSIGNED.sub(lambda m: m.group(0).replace(m.group(2), mask(m.group(2)))
                         if _looks_random(m.group(2)) else m.group(0), text)


def _output_texts(cell: Any) -> Iterator[str]:
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            yield str(out.get("text", ""))
        elif kind == "error":
            yield f"{out.get('ename', '')}: {out.get('evalue', '')}\n" + "\n".join(out.get("traceback", []))
        else:
            for mime, data in out.get("data", {}).items():
                if mime.startswith("image/"):
                    continue  # base64 pixels look random and hold no text
                yield data if isinstance(data, str) else json.dumps(data)


def secrets_in_cell(cell: Any) -> list[tuple[str, SecretHit]]:
    """(where, hit) for secrets in a cell's source and outputs; ``where`` is "source" or "output"."""
    found = [("source", h) for h in find_secrets(str(cell.get("source", "")))]
    for text in _output_texts(cell):
        found += [("output", h) for h in find_secrets(text)]
    return found


def secrets_in_metadata(metadata: Any) -> list[SecretHit]:
    """Secrets in notebook metadata (papermill's and protokit's recorded parameters)."""
    parts = [metadata.get("papermill", {}).get("parameters"), metadata.get("protokit", {}).get("parameters")]
    text = json.dumps([p for p in parts if p], default=str, indent=0)
    return find_secrets(text)
