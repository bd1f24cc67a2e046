"""Run coroutines from synchronous code, even inside a running event loop.

A Jupyter cell already runs inside an asyncio loop, so ``asyncio.run`` fails
there. Rather than patching the loop (nest_asyncio), protokit keeps one
background thread with its own loop and hands synchronous calls to it. One
long-lived loop also means one long-lived SDK client per provider, which keeps
connections warm between cells.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from protokit.errors import ConfigError

T = TypeVar("T")

_WIND_DOWN_S = 5.0
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The process-wide background loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="protokit-loop", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def in_background_thread() -> bool:
    """True when called from the background loop's own thread."""
    return _thread is not None and threading.current_thread() is _thread


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code and return its result."""
    if in_background_thread():
        coro.close()
        raise ConfigError(
            "a synchronous protokit call was made from inside async code; use the async form (await ...)"
        )
    ended = threading.Event()

    async def _run() -> T:
        try:
            return await coro
        finally:
            ended.set()

    future = asyncio.run_coroutine_threadsafe(_run(), background_loop())
    try:
        return future.result()
    except KeyboardInterrupt:
        # Ctrl-C in a notebook: stop the work on the background loop too, and give it a moment
        # to wind down (a comparison stores its finished rows and ends its run as cancelled)
        # before a script exits and takes the background thread with it.
        future.cancel()
        ended.wait(_WIND_DOWN_S)
        raise


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Drive an async iterator from synchronous code, one item at a time."""
    while True:
        try:
            item = run_sync(_anext(agen))
        except StopAsyncIteration:
            return
        yield item


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()
