"""Content parts of a message: text and images, checked, keyed by hash, and sent in each provider's form.

A user message's ``content`` may be a list of parts instead of a string::

    [{"type": "text", "text": "What is in this photo?"}, {"type": "image", "source": "photos/cat.png"}]

An image's ``source`` is a local path, an ``http(s)`` URL or a ``data:image/...;base64,`` URL. A
local file (or a data URL) is read and hashed when the request is built, so a missing file is a
ConfigError before any call; the part then carries its ``sha256``, ``bytes`` and ``media_type``.
The cache key holds those, never the image's bytes nor its path (:func:`key_content`): the cache
file and cassettes stay small, the same picture at another path replays, and a changed file is a
new recording. The bytes are read again when the call is sent (:func:`image_data`), and checked
against the hash. A URL is sent as a URL and keyed by it (the provider fetches it).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protokit.errors import ConfigError

__all__ = [
    "IMAGE_TOKENS",
    "MEDIA_TYPES",
    "check_content",
    "content_chars",
    "content_text",
    "describe_image",
    "image_data",
    "image_sources",
    "is_url",
    "key_content",
]

# The media types both providers take, by magic number (then by file suffix).
MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
             ".webp": "image/webp"}
# Input tokens an image is assumed to cost before a call (budget reservation, pk.estimate): about what
# a large image costs at either provider.
IMAGE_TOKENS = 1600
_DATA_URL = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,(.*)$", re.S)
_PART_KEYS = {"text": frozenset({"type", "text"}),
              "image": frozenset({"type", "source", "media_type", "sha256", "bytes"})}


def is_url(source: str) -> bool:
    """True for an ``http(s)://`` URL (sent as is), False for a path or a data URL."""
    return source.startswith(("http://", "https://"))


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


@functools.lru_cache(maxsize=1024)
def _file_digest(path: str, mtime_ns: int, size: int) -> tuple[str, str | None]:
    """(sha256, sniffed media type) of a file; cached by path, modification time and size."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        head = fh.read(16)
        digest.update(head)
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest(), _sniff(head)


def _media_type(sniffed: str | None, source: str, given: Any, where: str) -> str:
    if given is not None:
        if given not in MEDIA_TYPES:
            raise ConfigError(f"{where}: media_type {given!r} is not one of {', '.join(MEDIA_TYPES)}")
        return str(given)
    media = sniffed or _SUFFIXES.get(Path(source).suffix.lower())
    if media is None:
        raise ConfigError(f"{where}: image {source!r:.200} is not a PNG, JPEG, GIF or WebP file")
    return media


def _image(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = part.get("source")
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"{where}: an image part needs a 'source': a file path or an http(s) URL, "
                          f"got {source!r:.80}")
    if is_url(source):
        return {"type": "image", "source": source}
    data = _DATA_URL.match(source)
    if data is not None:
        try:
            raw = base64.b64decode(data.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where}: the image's data URL is not base64") from None
        media = _media_type(_sniff(raw[:16]), "", part.get("media_type") or data.group(1), where)
        return {"type": "image", "source": source, "media_type": media,
                "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    try:
        stat = os.stat(source)
    except OSError:
        raise ConfigError(f"{where}: image file {source!r:.200} does not exist; fix the path (relative to "
                          f"{os.getcwd()!r:.200}) or give an http(s) URL") from None
    if not os.path.isfile(source):
        raise ConfigError(f"{where}: image {source!r:.200} is not a file")
    try:
        sha, sniffed = _file_digest(os.path.abspath(source), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read image {source!r:.200} ({type(exc).__name__})") from None
    return {"type": "image", "source": source, "media_type": _media_type(sniffed, source, part.get("media_type"),
                                                                          where),
            "sha256": sha, "bytes": stat.st_size}


def check_content(content: Any, role: str, where: str) -> str | list[dict[str, Any]]:
    """A message's content checked: a string, or (in a user message) a list of text and image parts.

    Image parts are resolved (the file hashed: ConfigError when it is missing). In other roles a
    list of text parts is joined into one string; an image there is refused.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, (bytes, bytearray)) or not isinstance(content, Sequence):
        raise ConfigError(f"{where} content must be a string or a list of parts, got {type(content).__name__}")
    if not content:
        raise ConfigError(f"{where} content is an empty list; give a string or at least one part")
    parts: list[dict[str, Any]] = []
    for n, part in enumerate(content):
        at = f"{where} part {n}"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in _PART_KEYS:
            raise ConfigError(f'{at} must be {{"type": "text", "text": ...}} or {{"type": "image", "source": '
                              f'PATH_OR_URL}}, got {part!r:.80}')
        assert isinstance(part, Mapping)
        unknown = sorted(set(part) - _PART_KEYS[kind])
        if unknown:
            raise ConfigError(f"{at} has unknown key {unknown[0]!r}")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise ConfigError(f"{at}: a text part needs 'text', a string")
            parts.append({"type": "text", "text": part["text"]})
        elif role != "user":
            raise ConfigError(f"{at}: images go in user messages only, not in a {role} message")
        else:
            parts.append(_image(part, at))
    if role != "user":
        return "\n".join(p["text"] for p in parts)
    return parts


def key_content(content: Any) -> Any:
    """A content as the cache key holds it: images by hash, size and type (a URL by itself), no path, no bytes."""
    if not isinstance(content, list):
        return content
    return [{k: v for k, v in p.items() if k != "source"} if p.get("type") == "image" and "sha256" in p else p
            for p in content]


def content_text(content: Any) -> str:
    """The text of a content: the string, or its text parts joined by newlines (images left out)."""
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content or () if isinstance(p, Mapping) and p.get("type") == "text")


def content_chars(content: Any) -> int:
    """A content's size in characters for estimates: its text, plus ``IMAGE_TOKENS`` x 4 per image."""
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content)
    images = sum(1 for p in content if isinstance(p, Mapping) and p.get("type") == "image")
    return len(content_text(content)) + images * IMAGE_TOKENS * 4


def image_sources(content: Any) -> list[str]:
    """The sources (paths or URLs) of a content's image parts."""
    if not isinstance(content, list):
        return []
    return [str(p["source"]) for p in content if isinstance(p, Mapping) and p.get("type") == "image"]


def describe_image(part: Mapping[str, Any]) -> str:
    """A short text for an image part: ``image sha256:<12 hex> (<n> bytes)``, or ``image <url>``."""
    if "sha256" in part:
        return f"image sha256:{part['sha256'][:12]} ({part['bytes']} bytes)"
    return f"image {part.get('source')}"


def image_data(part: Mapping[str, Any]) -> tuple[str, str]:
    """(media type, base64 data) of a resolved local image, read now; ConfigError when it changed since.

    The request was keyed by the hash taken when it was built: bytes that no longer match would be
    recorded under another image's key.
    """
    source = str(part["source"])
    data = _DATA_URL.match(source)
    try:
        raw = base64.b64decode(data.group(2)) if data is not None else Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read image {source!r:.200} ({type(exc).__name__}); it was there when the "
                          "request was built") from None
    if hashlib.sha256(raw).hexdigest() != part["sha256"]:
        raise ConfigError(f"image {source!r:.200} changed after the request was built; run again")
    return str(part["media_type"]), base64.b64encode(raw).decode("ascii")
