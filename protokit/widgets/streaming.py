"""Answers streaming into the grid's cells, each cell redrawn at most ``1 / interval`` times a second.

A model streams a word or a few characters at a time, hundreds a second for a fast one; a widget
message per piece would flood the front end. :class:`Throttle` keeps each cell's text and shows
it at once when the cell has not been shown for ``interval`` seconds, else at the end of that
interval (one timer per cell), so the text on screen is never more than ``interval`` behind and
a cell costs at most one update per interval. The clock and the timer are injectable: tests drive
them by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol

__all__ = ["STREAM_INTERVAL_S", "Throttle"]

# At most 10 updates a second per cell.
STREAM_INTERVAL_S = 0.1


class _Timer(Protocol):
    def cancel(self) -> Any: ...


def _loop_call_later(delay: float, callback: Callable[[], None]) -> _Timer | None:
    """``loop.call_later`` on the running loop (where the chunks arrive), or None outside one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later(delay, callback)


class Throttle:
    """Per-key text that grows by pieces; ``show(key, text)`` at most once per ``interval`` per key.

    Parameters
    ----------
    show
        Draws a key's whole text so far.
    interval
        Seconds between two draws of one key (0.1: at most 10 a second).
    clock
        Seconds, monotonic (``time.monotonic``).
    call_later
        ``call_later(delay, fn)`` runs ``fn`` after ``delay`` seconds and returns something with
        ``cancel()``; by default the running event loop's (no trailing draw outside a loop).
    """

    def __init__(self, show: Callable[[Hashable, str], None], *, interval: float = STREAM_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic,
                 call_later: Callable[[float, Callable[[], None]], _Timer | None] = _loop_call_later) -> None:
        self.show = show
        self.interval = interval
        self.clock = clock
        self.call_later = call_later
        self.updates = 0  # draws made (read by tests and the benchmark)
        self._text: dict[Hashable, str] = {}
        self._shown: dict[Hashable, tuple[float, int]] = {}  # key -> (when drawn, length drawn)
        self._timers: dict[Hashable, _Timer] = {}

    def add(self, key: Hashable, piece: str) -> None:
        """A new piece of ``key``'s text: drawn now, or at the end of the current interval."""
        if not piece:
            return
        self._text[key] = self._text.get(key, "") + piece
        now = self.clock()
        shown = self._shown.get(key)
        if shown is None or now - shown[0] >= self.interval:
            self._draw(key, now)
        elif key not in self._timers:
            timer = self.call_later(self.interval - (now - shown[0]), lambda: self._due(key))
            if timer is not None:
                self._timers[key] = timer

    def text(self, key: Hashable) -> str:
        """``key``'s text so far."""
        return self._text.get(key, "")

    def done(self, key: Hashable) -> str:
        """Forget ``key`` (its answer is complete and shown another way); returns its text."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._shown.pop(key, None)
        return self._text.pop(key, "")

    def close(self) -> None:
        """Forget every key and cancel every timer."""
        for key in list(self._text):
            self.done(key)

    def _due(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        shown = self._shown.get(key)
        if key in self._text and (shown is None or shown[1] != len(self._text[key])):
            self._draw(key, self.clock())

    def _draw(self, key: Hashable, now: float) -> None:
        text = self._text[key]
        self._shown[key] = (now, len(text))
        self.updates += 1
        self.show(key, text)
