"""Provider-neutral requests and the sandbox's deterministic replies.

Both wire formats are parsed into a :class:`Chat` so that echo, hashing, script
rules, ``max_tokens`` and stop sequences behave the same for OpenAI and Anthropic.

Tools, for the ``echo`` model (:func:`echo_tool_calls`): a request that offers tools and whose
last message is the user's ``tool:NAME {json arguments}`` (one line per call) is answered with
those calls of offered tools; one that forces a tool (``tool_choice`` naming it, or ``required``
/ ``any``: the last tool offered) is answered with a call of it whose arguments are the user's
text when that is a JSON object, else ``{"text": <the text>}``; one whose last message is a tool's
result is answered with that result's text.

Refusals, for ``echo``: a last user message ``refuse: WHY`` is refused with WHY as the model's
explanation (OpenAI's ``refusal`` field, Anthropic's ``refusal`` stop reason).

Images (OpenAI ``image_url`` parts, Anthropic ``image`` blocks) read as ``image sha256:<first 12 hex>
(<bytes> bytes)`` for inline data and ``image url:<url>`` for a URL (:func:`block_text`), so ``echo``
says what it was sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "BadRequest",
    "Chat",
    "Dialect",
    "Reply",
    "block_text",
    "count_tokens",
    "default_text",
    "echo_refusal",
    "echo_tool_calls",
    "finish",
    "split_pieces",
    "tool_reply",
]

# A fixed vocabulary: replies are picked from it, so they look like prose but are stable.
WORDS: tuple[str, ...] = (
    "the", "model", "answer", "is", "likely", "clear", "because", "data", "shows", "a",
    "simple", "pattern", "we", "can", "see", "that", "each", "request", "returns", "one",
    "stable", "reply", "from", "sandbox", "with", "no", "network", "at", "all", "so",
    "tests", "stay", "fast", "and", "repeatable", "every", "time", "they", "run", "here",
    "result", "value", "signal", "noise", "prompt", "token", "output", "input", "check",
    "under", "over", "again", "quick", "brown", "fox", "jumps", "lazy", "dog", "ok",
    "maybe", "yes", "sure", "indeed", "therefore",
)  # fmt: skip

_WORD = re.compile(r"\S+")
# Split after whitespace that precedes a word: pieces joined give back the text exactly.
_PIECE_SPLIT = re.compile(r"(?<=\s)(?=\S)")


@dataclass(slots=True)
class Chat:
    """One model request with the fields the sandbox acts on, in neutral form."""

    model: str
    system: str
    messages: list[tuple[str, str]]
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    n: int = 1
    tools: list[str] = field(default_factory=list)  # names of the tools offered
    forced: str | None = None  # a tool the request forces; "" for any of them
    _digest: str = field(default="", repr=False)

    def last_user_text(self) -> str:
        """Text of the last ``user`` message, or "" when there is none."""
        for role, text in reversed(self.messages):
            if role == "user":
                return text
        return ""

    def digest(self) -> str:
        """Hex sha256 of the model, system prompt and messages (canonical JSON)."""
        if not self._digest:
            payload = json.dumps([self.model, self.system, self.messages], separators=(",", ":"))
            self._digest = hashlib.sha256(payload.encode()).hexdigest()
        return self._digest

    def prompt_tokens(self) -> int:
        """Whitespace-word count of the prompt, plus one per message for its role."""
        total = count_tokens(self.system)
        for _, text in self.messages:
            total += 1 + count_tokens(text)
        return max(total, 1)


@dataclass(slots=True)
class Reply:
    """The text the sandbox answers with and why it ended."""

    text: str
    finish: str  # "stop", "length", "stop_sequence", "tool_use" or "refusal"
    stop_sequence: str | None
    completion_tokens: int
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, arguments)


class BadRequest(Exception):
    """The request body is not something the provider would accept (answered with 400)."""


class Dialect(Protocol):
    """One provider's wire format: parse a request, render replies, errors and broken bodies."""

    name: str

    def parse(self, body: Any) -> Chat:
        """Turn a decoded request body into a :class:`Chat`; raise BadRequest if it is invalid."""
        ...

    def render(self, chat: Chat, reply: Reply) -> bytes:
        """The JSON body of a non-streaming reply."""
        ...

    def render_stream(self, chat: Chat, reply: Reply) -> bytes:
        """The whole SSE body of a streaming reply."""
        ...

    def error(self, status: int, message: str) -> bytes:
        """A provider-shaped JSON error body for ``status``."""
        ...

    def malformed(self, stream: bool) -> bytes:
        """A body the SDK cannot decode, for the ``malformed`` fault."""
        ...

    def stream_error(self, status: int, message: str) -> bytes:
        """An error event inside a stream that has started, for the ``midstream`` fault."""
        ...


def block_text(content: Any) -> str:
    """Text of a message ``content``: a string, or its text and image blocks joined by newlines.

    An image block (OpenAI ``image_url``, Anthropic ``image``) reads as ``image sha256:<first 12 hex>
    (<n> bytes)`` for inline base64 data and ``image url:<url>`` for a URL, so ``echo`` says what
    it was sent; data that is not base64, or of a media type the APIs refuse, is a BadRequest.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block.get("type") in ("image_url", "image"):
                parts.append(_image_text(block))
        return "\n".join(parts)
    return ""


_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:([^;,]+);base64,(.*)$", re.S)


def _image_text(block: dict[str, Any]) -> str:
    """What an image block reads as (see :func:`block_text`); BadRequest for one the APIs would refuse."""
    if block["type"] == "image_url":  # OpenAI: {"image_url": {"url": "data:...;base64,..." | "https://..."}}
        url = block.get("image_url", {}).get("url") if isinstance(block.get("image_url"), dict) else None
        if not isinstance(url, str):
            raise BadRequest("image_url.url: Field required")
        data = _DATA_URL.match(url)
        if data is None:
            if not url.startswith(("http://", "https://")):
                raise BadRequest("image_url.url must be an http(s) URL or a base64 data URL")
            return f"image url:{url}"
        media, payload = data.group(1), data.group(2)
    else:  # Anthropic: {"source": {"type": "base64", "media_type", "data"} | {"type": "url", "url"}}
        source = block.get("source")
        if not isinstance(source, dict) or source.get("type") not in ("base64", "url"):
            raise BadRequest("image.source: must be a base64 or url source")
        if source["type"] == "url":
            if not isinstance(source.get("url"), str):
                raise BadRequest("image.source.url: Field required")
            return f"image url:{source['url']}"
        media, payload = source.get("media_type"), source.get("data")
        if not isinstance(payload, str):
            raise BadRequest("image.source.data: Field required")
    if media not in _IMAGE_TYPES:
        raise BadRequest(f"image media type {media!r} is not one of {', '.join(sorted(_IMAGE_TYPES))}")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("image data is not valid base64") from None
    return f"image sha256:{hashlib.sha256(raw).hexdigest()[:12]} ({len(raw)} bytes)"


def count_tokens(text: str) -> int:
    """The sandbox's token count: whitespace-separated words."""
    return len(_WORD.findall(text))


def default_text(chat: Chat) -> str:
    """The reply for a model with no script rule: echo, or words seeded by the request hash."""
    if chat.model == "echo":
        if chat.messages and chat.messages[-1][0] == "tool":
            return chat.messages[-1][1]  # after a tool's result: say it
        return chat.last_user_text()
    digest = chat.digest()
    rng = random.Random(int(digest[:16], 16))
    words = [rng.choice(WORDS) for _ in range(rng.randint(5, 16))]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def echo_refusal(chat: Chat) -> Reply | None:
    """The refusal ``echo`` answers a last user message ``refuse: WHY`` with, else None."""
    if chat.model != "echo" or not chat.messages or chat.messages[-1][0] != "user":
        return None
    text = chat.messages[-1][1].strip()
    if not text.startswith("refuse:"):
        return None
    why = text.removeprefix("refuse:").strip() or "I can't help with that."
    return Reply(why, "refusal", None, count_tokens(why))


_TOOL_LINE = re.compile(r"^tool:([A-Za-z0-9_-]{1,64})(?:\s+(.*))?$", re.S)


def echo_tool_calls(chat: Chat) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls ``echo`` answers ``chat`` with (see the module's docstring); [] for a text answer."""
    if not chat.tools or not chat.messages or chat.messages[-1][0] != "user":
        return []
    text = chat.messages[-1][1].strip()
    calls: list[tuple[str, dict[str, Any]]] = []
    for line in text.splitlines():
        m = _TOOL_LINE.match(line.strip())
        if m is None or m.group(1) not in chat.tools:
            calls = []
            break
        try:
            args = json.loads(m.group(2) or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict):
            calls = []
            break
        calls.append((m.group(1), args))
    if calls or chat.forced is None:
        return calls
    name = chat.forced or chat.tools[-1]
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return [(name, value if isinstance(value, dict) else {"text": text})]


def tool_reply(calls: list[tuple[str, dict[str, Any]]]) -> Reply:
    """A reply made of tool calls only, its tokens counted on the arguments' JSON."""
    tokens = sum(1 + count_tokens(json.dumps(args)) for _, args in calls)
    return Reply("", "tool_use", None, tokens, calls)


def finish(text: str, chat: Chat) -> Reply:
    """Apply stop sequences, then ``max_tokens`` (in words), as a model would while generating."""
    reason, matched = "stop", None
    cut = len(text)
    for seq in chat.stop:
        if seq:
            at = text.find(seq)
            if 0 <= at < cut:
                cut, matched = at, seq
    if matched is not None:
        text, reason = text[:cut], "stop_sequence"
    spans = [m.end() for m in _WORD.finditer(text)]
    if chat.max_tokens is not None and len(spans) > chat.max_tokens:
        limit = max(chat.max_tokens, 0)
        text = text[: spans[limit - 1]] if limit else ""
        return Reply(text, "length", None, limit)
    return Reply(text, reason, matched, len(spans))


def split_pieces(text: str) -> list[str]:
    """Stream pieces (one word plus its trailing whitespace each) that join back to ``text``."""
    return [piece for piece in _PIECE_SPLIT.split(text) if piece]
