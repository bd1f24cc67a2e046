"""What an entry row holds: the request scrubbed, the answer verbatim, a key-shaped answer flagged.

The lowest layer of :mod:`protokit.cache`: canonical JSON, timestamps, the one-line prompt
shown in messages, and the :class:`SecretShapedAnswerWarning` issued once per process.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from protokit.errors import CacheError, safe_text
from protokit.secrets import looks_like_key, scrub

_PROMPT_CHARS = 33


class SecretShapedAnswerWarning(UserWarning):
    """An answer that looks like a live key was recorded (unchanged, marked ``secret_shaped``); once per process."""


_secret_warned = False


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(obj: Any, **kw: Any) -> str:
    """Canonical JSON; with lone surrogates (an answer may hold one) \\u-escaped, so UTF-8 takes it unchanged."""
    kw.setdefault("separators", (",", ":"))
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, **kw)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(obj, sort_keys=True, ensure_ascii=True, **kw)
    return text


def prompt_of(request: Mapping[str, Any]) -> str:
    messages = request.get("messages") or []
    users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"] or list(messages)
    content: Any = users[-1].get("content", "") if users and isinstance(users[-1], Mapping) else ""
    if isinstance(content, list):  # content parts: keep the text ones
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    text = " ".join(safe_text(str(content)).split())  # redacted before shortened: half a key is no key
    return text if len(text) <= _PROMPT_CHARS else text[:_PROMPT_CHARS] + "…"


def _stored_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as stored: messages verbatim, everything else (options, headers) scrubbed."""
    req: dict[str, Any] = scrub({k: v for k, v in request.items() if k != "messages"})
    if "messages" in request:
        req["messages"] = request["messages"]
    return req


def _warn_secret_shaped(request: Mapping[str, Any]) -> None:
    global _secret_warned
    if _secret_warned:
        return
    _secret_warned = True
    model = f"{request.get('provider')}:{request.get('model')}"
    warnings.warn(
        f"the answer of {model} to '{prompt_of(request)}' looks like a live key; it is recorded unchanged "
        "and marked secret_shaped (a cassette holding it is refused). Warned once per process",
        SecretShapedAnswerWarning, stacklevel=2)


def entry_row(key: str, request: Mapping[str, Any], entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """The entries row for a put: options scrubbed, the answer verbatim (flagged if key-shaped)."""
    req, ent = _stored_request(request), dict(entry)
    text, flag = ent.get("text"), ent.pop("secret_shaped", None)
    if not isinstance(flag, bool):  # a Response's entry says; a record from elsewhere is checked here
        flag = isinstance(text, str) and looks_like_key(text)
    if flag:
        ent["secret_shaped"] = True
        _warn_secret_shaped(req)
    ent.setdefault("created_at", now())
    try:
        return (key, req.get("provider"), req.get("model"), req.get("sample", 0), dumps(req), dumps(ent),
                ent.get("cost_usd"), ent["created_at"])
    except (TypeError, ValueError) as exc:
        raise CacheError(f"cannot store the answer for key {key[:12]}: {exc}") from exc


def check_record(rec: Any, where: str) -> dict[str, Any]:
    """A record in the export format (``key``, ``request``, ``entry`` with ``text``), copied; else CacheError."""
    if not (isinstance(rec, Mapping) and isinstance(rec.get("key"), str)
            and isinstance(rec.get("request"), Mapping) and isinstance(rec.get("entry"), Mapping)
            and isinstance(rec["entry"].get("text"), str)):
        raise CacheError(f"{where}: each record needs 'key' (str), 'request' (dict) and 'entry' (dict with "
                         f"'text'), got {str(rec)[:80]!r}")
    return {"key": rec["key"], "request": dict(rec["request"]), "entry": dict(rec["entry"])}
