"""Where the batches a run waits for are (:class:`BatchProgress`, what ``compare(on_batch=...)`` is handed
after each look at them), and the one-line text bar that shows it by default (stderr; redrawn in place
on a terminal or in Jupyter)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from protokit.batch.base import Status

__all__ = ["BatchProgress", "TextBar", "batch_progress"]

_WIDTH = 24
_LOG_EVERY_S = 30.0  # without a terminal (a CI log), a line when the counts change, at most this often


@dataclass(frozen=True)
class BatchProgress:
    """The batches a run waits for, after one look at each: requests submitted, done and failed, and
    each batch's provider and status in the provider's words (``openai in_progress``)."""

    batches: int  # batches waited for (sent by this run, or pending ones picked up)
    running: int  # of them, not ended yet
    submitted: int  # requests in them
    done: int  # of those, finished (answered or failed)
    failed: int  # of those, failed
    statuses: tuple[str, ...]  # one "provider status" per batch; "provider submitted" before its first look
    elapsed_s: float


def batch_progress(statuses: Sequence[Status | None], providers: Sequence[str], submitted: int,
                   elapsed_s: float) -> BatchProgress:
    """The progress of batches from their last statuses (None: not looked at yet) and providers."""
    return BatchProgress(
        batches=len(statuses), running=sum(1 for s in statuses if s is None or s.state == "running"),
        submitted=submitted, done=sum(s.done for s in statuses if s is not None),
        failed=sum(s.failed for s in statuses if s is not None),
        statuses=tuple(f"{p} {(s.provider_status or s.state) if s is not None else 'submitted'}"
                       for p, s in zip(providers, statuses, strict=True)),
        elapsed_s=elapsed_s)


class TextBar:
    """``batch [#######.........] 12/40 done, 1 failed · 2 batches running · 14 s``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._last = ""
        self._logged = 0.0
        self._drawn = False
        isatty = getattr(self.stream, "isatty", None)
        # ipykernel's OutStream honours "\r" as a terminal does.
        self.inplace = bool(isatty and isatty()) or type(self.stream).__name__ == "OutStream"

    def line(self, p: BatchProgress) -> str:
        """The bar for the batches' progress."""
        total = p.submitted
        filled = int(_WIDTH * p.done / total) if total else _WIDTH
        text = f"batch [{'#' * filled}{'.' * (_WIDTH - filled)}] {p.done}/{total} done"
        if p.failed:
            text += f", {p.failed} failed"
        text += f" · {p.running} batch{'es' if p.running != 1 else ''} running" if p.running else " · ended"
        return text + f" · {p.elapsed_s:.0f} s"

    def show(self, p: BatchProgress) -> None:
        """Draw the bar (in place when possible, else as a new line when something changed)."""
        text = self.line(p)
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
