"""Typed functions that write Python literals for generated code (in the spirit of papermill's translators).

Templates give the overall shape of a file; every value that lands in it is
written by one of these, so the output is valid and stable for the same input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "translate",
    "translate_bool",
    "translate_comment",
    "translate_dict",
    "translate_doc",
    "translate_fitted",
    "translate_float",
    "translate_int",
    "translate_list",
    "translate_none",
    "translate_str",
    "translate_tuple",
]


def translate_none(value: None = None) -> str:
    """``None``."""
    return "None"


def translate_bool(value: bool) -> str:
    """``True`` or ``False``."""
    return "True" if value else "False"


def translate_int(value: int) -> str:
    """An int literal."""
    return str(int(value))


def translate_float(value: float) -> str:
    """A float literal that reads back to the same float (``float("nan")`` for the non-finite)."""
    if math.isnan(value):
        return 'float("nan")'
    if math.isinf(value):
        return 'float("inf")' if value > 0 else '-float("inf")'
    return repr(float(value))


def translate_str(value: str) -> str:
    """A double-quoted string literal (newlines and quotes escaped)."""
    text = repr(str(value))
    if text.startswith("'") and '"' not in value:
        text = '"' + text[1:-1].replace("\\'", "'") + '"'
    return text


def translate_list(value: Sequence[Any]) -> str:
    """A list literal of translated items."""
    return "[" + ", ".join(translate(v) for v in value) + "]"


def translate_tuple(value: Sequence[Any]) -> str:
    """A tuple literal of translated items (a trailing comma for one item)."""
    items = [translate(v) for v in value]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def translate_dict(value: Mapping[Any, Any]) -> str:
    """A dict literal with translated keys and values, in the mapping's order."""
    return "{" + ", ".join(f"{translate(k)}: {translate(v)}" for k, v in value.items()) + "}"


def _inert(ch: str, after: str, keep_newlines: bool) -> str:
    """One character as it may stand inside generated source: itself, or an escape that reads as it."""
    if ch == "\\":
        return "\\\\"
    if ch == '"':
        # Only a quote followed by another is escaped: no two unescaped quotes ever touch, so the
        # text cannot close its docstring, and "quoted words" stay readable.
        return '\\"' if after == '"' else ch
    if ch == "\n" and keep_newlines:
        return ch
    if ch.isprintable() or ch == " ":
        return ch
    # NUL, CR, line separators, lone surrogates, other controls: an escape, never the raw character
    # (a NUL or a surrogate is not even valid source; a CR or U+2028 would move the text).
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _translate_text(text: str, keep_newlines: bool) -> str:
    return "".join(_inert(ch, text[i + 1:i + 2], keep_newlines) for i, ch in enumerate(text))


def translate_doc(text: str) -> str:
    """Text made inert inside a ``\"\"\"`` docstring: it can neither end the string nor change what it says.

    Read back by Python (``module.__doc__``), the docstring holds ``text`` exactly. The
    templates never put a slot right before the closing quotes (a newline comes first).
    """
    return _translate_text(text, keep_newlines=True)


def translate_comment(text: str) -> str:
    """Text made inert on one ``#`` comment line: newlines and controls escaped, so it stays one line."""
    return _translate_text(text, keep_newlines=False)


def translate(value: Any) -> str:
    """The literal for any supported value; TypeError for values with no literal form."""
    if value is None:
        return translate_none()
    if isinstance(value, bool):
        return translate_bool(value)
    if isinstance(value, int):
        return translate_int(value)
    if isinstance(value, float):
        return translate_float(value)
    if isinstance(value, str):
        return translate_str(value)
    if isinstance(value, tuple):
        return translate_tuple(value)
    if isinstance(value, list):
        return translate_list(value)
    if isinstance(value, Mapping):
        return translate_dict(value)
    raise TypeError(f"no literal for a {type(value).__name__}")


def _split_words(text: str, room: int) -> list[str]:
    """``text`` cut after spaces into pieces whose literals fit ``room`` where they can (never inside a word)."""
    pieces: list[str] = []
    current = ""
    for word in re.findall(r"\S*\s*", text):
        if current and len(translate_str(current + word)) > room:
            pieces.append(current)
            current = ""
        current += word
    if current or not pieces:
        pieces.append(current)
    return pieces


def translate_fitted(value: Any, indent: int, used: int, width: int = 120) -> str:
    """The literal for ``value``, laid out in several lines when one would pass ``width`` columns.

    ``indent`` is the column the statement starts at and ``used`` the characters on the first line
    besides the literal. A long string becomes implicitly joined pieces in parentheses, cut after
    spaces; a long list, tuple or dict one item per line with a trailing comma, as ruff format does.
    The literal reads back to the same value either way.
    """
    one = translate(value)
    if indent + used + len(one) <= width:
        return one
    inner = " " * (indent + 4)
    if isinstance(value, str) and not isinstance(value, bool):
        pieces = _split_words(value, width - len(inner) - 1)  # room for a trailing comma
        if len(pieces) == 1:
            return one  # one unbreakable word: a long line is the only honest literal
        return "(\n" + "".join(f"{inner}{translate_str(p)}\n" for p in pieces) + " " * indent + ")"
    if isinstance(value, (list, tuple)) and value:
        items = [translate_fitted(v, indent + 4, 1, width) for v in value]
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
        return open_ + "\n" + "".join(f"{inner}{item},\n" for item in items) + " " * indent + close
    if isinstance(value, Mapping) and value:
        lines = []
        for k, v in value.items():
            key = translate(k)
            lines.append(f"{inner}{key}: {translate_fitted(v, indent + 4, len(key) + 3, width)},\n")
        return "{\n" + "".join(lines) + " " * indent + "}"
    return one
