"""Volatile content removed from outputs before they are compared (in the spirit of nbval).

The patterns are ``(regex, replacement)`` pairs applied in order; the nbval plugin
feeds the same list to ``pytest --nbval``, and :func:`sanitize_text` applies it
to text protokit compares itself.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PATTERNS", "normalize_stream", "sanitize_text", "strip_timing_lines"]

PATTERNS: list[tuple[str, str]] = [
    # tqdm and similar progress bars: "42%|████      | 21/50 [00:01<00:02, 12.3it/s]"
    (r"[^\n]*\d+%\|[^\n|]*\|[^\n]*", "<PROGRESS>"),
    # %time / %%time output
    (r"CPU times: [^\n]*", "CPU times: <TIME>"),
    (r"Wall time: [^\n]*", "Wall time: <TIME>"),
    # ISO and common log timestamps
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "<TIMESTAMP>"),
    # memory addresses in reprs: <object at 0x7f3a2c1d0e50>
    (r"0x[0-9a-fA-F]{6,16}", "0xADDR"),
    # UUIDs: widget model ids, run ids
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<UUID>"),
    (r"(\"model_id\":\s*\")[0-9a-fA-F]{32}(\")", r"\1<MODEL_ID>\2"),
    # durations: "1.23 s", "850 ms", "12.5µs", "took 3.2 seconds"
    (r"\b\d+\.\d+\s?(?:ns|µs|μs|us|ms|s|sec|secs|seconds)\b", "<DURATION>"),
    (r"\b\d+(?:e[+-]?\d+)?\s?(?:ns|µs|μs|us|ms)\b", "<DURATION>"),
]
_COMPILED = [(re.compile(p), r) for p, r in PATTERNS]
_TIMING_LINE = re.compile(r"^(?:CPU times: |Wall time: )[^\n]*\n?", re.MULTILINE)
_CR = re.compile(r"^[^\n]*\r(?=[^\n])", re.MULTILINE)


def sanitize_text(text: Any) -> Any:
    """Text with volatile parts replaced by placeholders; non-strings pass through."""
    if not isinstance(text, str):
        return text
    for regex, repl in _COMPILED:
        text = regex.sub(repl, text)
    return text


def normalize_stream(text: str) -> str:
    """Stream text as a terminal shows it: a carriage return overwrites the line (progress bars)."""
    return _CR.sub("", text.replace("\r\n", "\n"))


def strip_timing_lines(text: str) -> str:
    """Drop the lines ``%time``/``%%time`` print, which a promoted module does not print."""
    return _TIMING_LINE.sub("", text)
