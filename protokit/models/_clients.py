"""One SDK client per (provider, base_url, key, timeout) and event loop, reused across calls.

Creating a client per call costs a new connection pool each time (the main
reason some tools are many times slower); an async client is tied to the loop
it was first used on, hence one set per loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, Any]] = (
    weakref.WeakKeyDictionary()
)


def client_for(key: Hashable, make: Callable[[], T]) -> T:
    """The client for ``key`` on the running loop, made on first use."""
    loop = asyncio.get_running_loop()
    clients = _by_loop.get(loop)
    if clients is None:
        clients = _by_loop[loop] = {}
    client: T | None = clients.get(key)
    if client is None:
        client = clients[key] = make()
    return client
