"""Watching model calls: one :class:`CallRecord` per call, handed to whoever observes.

Every call through :func:`protokit.runner.execute` ends in exactly one record, answered,
replayed from the cache or failed, so tracing (OpenTelemetry spans and metrics), logging
and ``protokit drift`` (what a run cost and how long it waited) read the same facts from
one place. Observers are process-wide (:func:`add_observer`, for exporters) or scoped to a
block (:func:`observing`, for one measurement). With none registered, a call pays one
tuple check.

An observer must be quick and must not raise; one that raises is warned about once and
the call goes on: watching never changes what a call returns.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protokit.models.base import Model, Request, Response

__all__ = ["CallRecord", "Observer", "add_observer", "notify", "observed", "observing", "remove_observer"]


@dataclass(frozen=True)
class CallRecord:
    """One finished model call.

    ``start_ns``/``end_ns`` are :func:`time.time_ns` wall-clock stamps (what span exporters
    want); ``attempts`` counts provider attempts (0 for a cache replay); ``error`` is the
    exception that ended the call, None when it answered.
    """

    model: Model
    request: Request
    response: Response | None
    error: BaseException | None
    cached: bool
    attempts: int
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        """Wall time of the whole call, retries and backoff included."""
        return (self.end_ns - self.start_ns) / 1e9


Observer = Callable[[CallRecord], None]
_process: tuple[Observer, ...] = ()
_scoped: contextvars.ContextVar[tuple[Observer, ...]] = contextvars.ContextVar("protokit_observers", default=())
_warned: set[int] = set()


def add_observer(observer: Observer) -> None:
    """Tell ``observer`` of every call in this process from now on (idempotent)."""
    global _process
    if observer not in _process:
        _process = (*_process, observer)


def remove_observer(observer: Observer) -> None:
    """Stop telling ``observer``; quiet when it was not registered."""
    global _process
    _process = tuple(o for o in _process if o is not observer)


@contextlib.contextmanager
def observing(observer: Observer) -> Iterator[None]:
    """Tell ``observer`` of the calls made inside the block (tasks started in it included)."""
    token = _scoped.set((*_scoped.get(), observer))
    try:
        yield
    finally:
        _scoped.reset(token)


def observed() -> bool:
    """True when anyone is watching: the runner builds no record otherwise."""
    return bool(_process) or bool(_scoped.get())


def notify(record: CallRecord) -> None:
    """Hand ``record`` to every observer; one that raises is warned about once and skipped."""
    for observer in (*_process, *_scoped.get()):
        try:
            observer(record)
        except Exception as exc:  # watching must never break a call
            if id(observer) not in _warned:
                _warned.add(id(observer))
                warnings.warn(f"a protokit call observer failed and was skipped: {type(exc).__name__}: {exc}",
                              RuntimeWarning, stacklevel=2)
