"""Thumbnails of the images a case shows the models (its ``{"type": "image", "source": "{photo}"}`` column).

A local file (or a ``data:image/...`` URL) becomes a small PNG inlined as a data URL, scaled down
with Pillow (which matplotlib brings) so a notebook stays small however big the photos are; an
``http(s)`` URL is shown by the browser from where it is. Everything from the case (its path, its
URL) reaches the HTML escaped, as an attribute value or text; what cannot be shown as an image
(Pillow missing, not a picture, no such file) is shown as its escaped name.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import io
import os
import re
from typing import Any

__all__ = ["THUMB_PX", "thumbnail_html"]

THUMB_PX = 96  # the longest side of a thumbnail, in CSS pixels
_URL = re.compile(r"^https?://[^\s\"'<>`]+$")
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,(.*)$", re.S)


@functools.lru_cache(maxsize=256)
def _png(raw: bytes) -> bytes | None:
    """The picture in ``raw`` as a PNG of at most 2 x THUMB_PX pixels a side (sharp on HiDPI), or None."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.thumbnail((THUMB_PX * 2, THUMB_PX * 2))
            out = io.BytesIO()
            img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB").save(out, format="PNG")
    except Exception:  # not a picture Pillow reads: shown by its name instead
        return None
    return out.getvalue()


@functools.lru_cache(maxsize=256)
def _file_png(path: str, mtime_ns: int, size: int) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return _png(raw)


def _thumb(source: str) -> bytes | None:
    data = _DATA_URL.match(source)
    if data is not None:
        try:
            return _png(base64.b64decode(data.group(1), validate=True))
        except (binascii.Error, ValueError):
            return None
    try:
        stat = os.stat(source)
    except (OSError, ValueError):
        return None
    return _file_png(os.path.abspath(source), stat.st_mtime_ns, stat.st_size)


def thumbnail_html(source: Any, *, label: str | None = None) -> str:
    """An ``<img>`` of an image source (a path, a data URL or an http(s) URL), or its escaped name."""
    text = "" if source is None else os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    name = label if label is not None else (text if not text.startswith("data:") else "inline image")
    alt = html.escape(name[:200], quote=True)
    style = f'style="max-width:{THUMB_PX}px;max-height:{THUMB_PX}px;display:block"'
    if _URL.match(text):
        return f'<img class="pk-thumb" alt="{alt}" src="{html.escape(text, quote=True)}" loading="lazy" {style}>'
    png = _thumb(text) if text else None
    if png is None:
        return f'<span class="pk-muted">image: {html.escape(name[:200])}</span>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="pk-thumb" alt="{alt}" src="data:image/png;base64,{data}" {style}>'
