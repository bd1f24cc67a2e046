"""A one-line text progress bar for batches being waited on (stderr; redrawn in place on a terminal or in Jupyter)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from protokit.batch.base import Status

__all__ = ["TextBar"]

_WIDTH = 24
_LOG_EVERY_S = 30.0  # without a terminal (a CI log), a line when the counts change, at most this often


class TextBar:
    """``batch [#######.........] 12/40 done, 1 failed · 2 batches running · 14 s``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self._last = ""
        self._logged = 0.0
        self._drawn = False
        isatty = getattr(self.stream, "isatty", None)
        # ipykernel's OutStream honours "\r" as a terminal does.
        self.inplace = bool(isatty and isatty()) or type(self.stream).__name__ == "OutStream"

    def line(self, statuses: Sequence[Status | None], total: int) -> str:
        """The bar for the batches' last statuses (None: not read yet) out of ``total`` requests."""
        done = sum(s.done for s in statuses if s is not None)
        failed = sum(s.failed for s in statuses if s is not None)
        running = sum(1 for s in statuses if s is None or s.state == "running")
        filled = int(_WIDTH * done / total) if total else _WIDTH
        text = f"batch [{'#' * filled}{'.' * (_WIDTH - filled)}] {done}/{total} done"
        if failed:
            text += f", {failed} failed"
        text += f" · {running} batch{'es' if running != 1 else ''} running" if running else " · ended"
        return text + f" · {time.monotonic() - self.started:.0f} s"

    def show(self, statuses: Sequence[Status | None], total: int) -> None:
        """Draw the bar (in place when possible, else as a new line when something changed)."""
        text = self.line(statuses, total)
        try:
            if self.inplace:
                self.stream.write("\r" + text.ljust(len(self._last)))
                self._drawn = True
            else:
                counts = text.rsplit(" · ", 1)[0]
                now = time.monotonic()
                if counts == self._last.rsplit(" · ", 1)[0]:
                    return
                if self._logged and now - self._logged < _LOG_EVERY_S and not counts.endswith("ended"):
                    return
                self._logged = now
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: progress is not worth failing for
            return
        self._last = text

    def close(self) -> None:
        """End the line the bar was drawn on."""
        if self._drawn:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._drawn = False
