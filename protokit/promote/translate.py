"""Typed functions that write Python literals for generated code (in the spirit of papermill's translators).

Templates give the overall shape of a file; every value that lands in it is
written by one of these, so the output is valid and stable for the same input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "translate",
    "translate_bool",
    "translate_comment",
    "translate_dict",
    "translate_doc",
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
