"""The one secret detector: key-shaped strings and credential assignments, found, masked, redacted.

Every place that must keep credentials off disk or off the screen uses this package: the
notebook gate, ``protokit run -p``, the cache (request options, headers, error texts),
exports, the run store, logs and the CLI. It imports nothing of protokit outside itself, so
any layer may use it.

Model *answers* and prompt *messages* are never rewritten with it (a replay must be exact);
an answer that looks like a live key is only flagged (:func:`looks_like_secret`).

Two kinds of evidence are used:

- **Key shapes**: provider prefixes (``sk-``, ``sk-proj-``, ``sk-ant-``, ``AKIA``, ``ghp_``,
  ``github_pat_``, ``xoxb-``, ``AIza``...), JWTs, PEM private keys, bearer and
  ``Authorization`` values, passwords in connection URLs. Each pattern starts and ends on a
  "word boundary" that also counts ``-`` and ``_`` as word characters, so nothing fires in
  the middle of a URL slug (``task-management``) or an identifier, and each checks that
  its body looks generated (mixed character classes) rather than like hyphenated words.
- **Assignments** of a literal to a credential-like *name* (``password = "..."``,
  ``"api_key": "..."``, ``TOKEN=...``, ``f(secret="...")``, ``?token=...``). Names are
  judged on their parts (split on ``_ - .`` and camelCase): ``api_key``, ``db_password``,
  ``clientSecret`` are credentials; ``max_tokens``, ``tokenizer``, ``token_count``,
  ``digest``, ``checksum`` are not. Placeholders (``""``, ``"changeme"``,
  ``"<your-api-key>"``, ``"${TOKEN}"``, env var names, paths, URLs, prose) are not secrets.

Every regex is linear: patterns begin with a look-behind that rejects the body's own
characters, so a run of key characters is scanned from its start only, bodies are single
character classes, and PEM blocks are paired by position rather than by a lazy regex. A
megabyte of text, hostile or not, takes well under a second; typical texts take microseconds.

Inside, arrows point one way: this module (the public functions) uses :mod:`.scan` (finding,
without overlaps), which uses :mod:`.names` (credential-name tiers), :mod:`.placeholders`
(what is not a credential) and :mod:`.shapes` (key-shape patterns and their checks).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from protokit.secrets.names import name_tier
from protokit.secrets.placeholders import literal_is_secret
from protokit.secrets.scan import scan

__all__ = ["REDACTED", "SecretHit", "find_secrets", "is_credential_name", "looks_like_key", "looks_like_secret",
           "mask", "redact", "scrub"]

REDACTED = "[redacted]"


@dataclass(frozen=True)
class SecretHit:
    """A secret found in some text: what it looks like, where (1-based line, [start, end) offsets), masked."""

    kind: str
    masked: str
    line: int
    start: int
    end: int


def mask(secret: str) -> str:
    """The first 4 characters and an ellipsis: enough to recognise a key, not to use it."""
    return secret[:4] + "…"


def is_credential_name(name: str) -> bool:
    """True for a name that says it holds a credential (``api_key``, ``Authorization``, ``token``, ``dbPassword``).

    Judged on the name's parts, so ``max_tokens``, ``tokenizer``, ``token_count``, ``secret_name``,
    ``password_hint``, ``digest``, ``checksum`` and a plain ``key`` are not credential names.
    """
    return name_tier(name) >= 2


def _lines(text: str, hits: list[tuple[int, int, str]]) -> Iterator[int]:
    line, pos = 1, 0
    for start, _, _ in hits:  # in order, so the text is counted through once
        line += text.count("\n", pos, start)
        pos = start
        yield line


def find_secrets(text: str) -> list[SecretHit]:
    """Every key-shaped value, and every credential-named assignment of a literal, in ``text``, in order.

    Spans cover the secret value only (not the name, the quotes or ``Bearer``), never overlap,
    and ``masked`` is :func:`mask` of the value.
    """
    if not text:
        return []
    hits = scan(text)
    return [SecretHit(kind, mask(text[start:end]), line, start, end)
            for (start, end, kind), line in zip(hits, _lines(text, hits), strict=True)]


def redact(text: str) -> str:
    """``text`` with every secret :func:`find_secrets` sees replaced by its masked form (names kept)."""
    hits = find_secrets(text)
    if not hits:
        return text
    parts: list[str] = []
    pos = 0
    for hit in hits:
        parts += [text[pos:hit.start], hit.masked]
        pos = hit.end
    parts.append(text[pos:])
    return "".join(parts)


def looks_like_key(text: str) -> bool:
    """True when ``text`` holds a live credential's shape (provider keys, JWTs, PEM keys, bearer values).

    The cheap check run on every model answer: literal prefixes gate each regex, and
    credential *assignments* (which need the whole assignment grammar) are not looked for.
    """
    return bool(text) and bool(scan(text, keys_only=True))


def looks_like_secret(value: str) -> bool:
    """True when a bare value (a parameter, an answer) holds a secret :func:`find_secrets` would report."""
    return bool(value) and bool(scan(value))


def _drop(key: Any, value: Any) -> bool:
    if not isinstance(key, str):
        return False
    tier = name_tier(key)
    if tier >= 3:
        return True
    # A bare "token" key is as often a piece of text (logprobs) as a credential: judge its value.
    return tier == 2 and isinstance(value, str) and literal_is_secret(value, 2, quoted=True)


def scrub(value: Any) -> Any:
    """A copy with credential-named keys dropped and secrets in strings redacted, at any depth.

    Mappings become dicts and tuples become lists (the result is JSON-ready); other values
    are returned as they are.
    """
    if isinstance(value, Mapping):
        return {k: scrub(v) for k, v in value.items() if not _drop(k, v)}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
