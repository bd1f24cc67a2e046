"""What the HTTP adapters share: where their server and key come from, which transport their SDK
clients use, and one SDK client per (provider, base_url, key, timeout) and event loop, reused
across calls and closed when that loop ends.

Creating a client per call costs a new connection pool each time (the main
reason some tools are many times slower); an async client is tied to the loop
it was first used on, hence one set per loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterator, Mapping
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from protokit.errors import (
    ProtokitError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ServerError,
    safe_text,
)
from protokit.models._errors import body_message, by_status, status_of_body
from protokit.models.base import Model

__all__ = ["ServerModel", "client_for", "post_json", "transport_kwargs"]

T = TypeVar("T")

# Seconds the interpreter's exit waits for the clients of a loop still running in another thread
# (protokit's background loop) to close.
_EXIT_WAIT_S = 2.0

# SDKs (by module name) found on first try to have no usable aiohttp transport.
_no_aiohttp: set[str] = set()


def transport_kwargs(sdk: ModuleType, base_url: str | None = None) -> dict[str, Any]:
    """The extra keyword arguments for an SDK client's constructor: its aiohttp transport if it has one.

    ``{"http_client": sdk.DefaultAioHttpClient()}`` keeps the SDK's request building, retries and
    exception types but spends about a quarter less CPU per call than its default httpx transport,
    which is what bounds a fan-out on a small machine (bench/RESULTS.md, section 11). ``{}``, the
    SDK's default transport, when the SDK has none or cannot load it (installed without its
    ``aiohttp`` extra): the SDK says so by raising RuntimeError, remembered here so it is tried once.
    A ``base_url`` with a user and password in it (``http://user:pw@host/v1``) keeps httpx too: aiohttp
    refuses credentials in a URL beside the SDK's own Authorization header.
    """
    factory = getattr(sdk, "DefaultAioHttpClient", None)
    if factory is None or sdk.__name__ in _no_aiohttp or (base_url and urlsplit(base_url).username is not None):
        return {}
    try:
        return {"http_client": factory()}
    except RuntimeError:  # "To use the aiohttp client you must have installed the package with the `aiohttp` extra"
        _no_aiohttp.add(sdk.__name__)
        return {}


class _LoopClients(dict[Hashable, Any]):
    """One loop's clients, with the async generator that closes them when the loop shuts down."""

    closer: AsyncGenerator[None, None] | None = None


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = weakref.WeakKeyDictionary()
_lock = threading.RLock()  # guards _by_loop's entries coming and going (loops may run in several threads)
_exit_hook = False


def client_for(key: Hashable, make: Callable[[], T]) -> T:
    """The client for ``key`` on the running loop, made on first use."""
    loop = asyncio.get_running_loop()
    clients = _by_loop.get(loop)
    if clients is None:
        clients = _open(loop)
    client: T | None = clients.get(key)
    if client is None:
        client = clients[key] = make()
    return client


def _open(loop: asyncio.AbstractEventLoop) -> _LoopClients:
    """Start the running loop's set of clients, closed when the loop shuts down or the interpreter exits.

    An aiohttp session must be closed on its own loop, or it warns "Unclosed client session" when
    collected. ``asyncio.run`` (``loop.shutdown_asyncgens``) closes every async generator the loop
    has started before it closes the loop: the set's closer is one, started here on the loop. A loop
    that runs on (protokit's background loop) has its clients closed at interpreter exit instead.
    """
    global _exit_hook
    with _lock:
        _forget_closed_loops()
        clients = _by_loop[loop] = _LoopClients()
        clients.closer = _closer(loop, clients)
        _step(clients.closer.__anext__())  # to its first yield: the loop's hooks now know it
        if not _exit_hook:
            atexit.register(_close_at_exit)
            _exit_hook = True
    return clients


async def _closer(loop: asyncio.AbstractEventLoop, clients: _LoopClients) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        with _lock:
            if _by_loop.get(loop) is clients:
                del _by_loop[loop]
        if not loop.is_closed():
            await _close_all(list(clients.values()))
        clients.clear()


async def _close_all(clients: list[Any]) -> None:
    for client in clients:
        with contextlib.suppress(Exception):
            await client.close()


def _forget_closed_loops() -> None:
    """Drop the clients of loops closed without shutting their async generators down (nothing can close them now)."""
    with _lock:
        entries = list(_by_loop.items())
    for loop, clients in entries:
        if loop.is_closed() and clients.closer is not None:
            _step(clients.closer.aclose())  # runs the closer's finally, which awaits nothing on a closed loop


def _close_at_exit() -> None:
    """Close the clients of loops still running in other threads (protokit's background loop) or left idle."""
    with _lock:
        entries = list(_by_loop.items())
    for loop, clients in entries:
        if loop.is_closed() or clients.closer is None:
            continue
        with contextlib.suppress(Exception):
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(_close_soon(clients.closer), loop).result(_EXIT_WAIT_S)
            else:  # a notebook kernel's loop, stopped but not closed
                loop.run_until_complete(_close_soon(clients.closer))


async def _close_soon(closer: AsyncGenerator[None, None]) -> None:
    await asyncio.wait_for(closer.aclose(), _EXIT_WAIT_S)


def _step(awaitable: Awaitable[None]) -> None:
    """Run an async generator's step that awaits nothing, synchronously."""
    with contextlib.suppress(StopIteration, RuntimeError):
        awaitable.send(None)  # type: ignore[attr-defined]


class ServerModel(Model):
    """A model behind a provider's HTTP API: ``base_url=`` and ``api_key=``, else its environment variables."""

    def __init__(self, name: str, *, base_url: str | None = None, api_key: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.base_url = base_url
        self._api_key = api_key  # kept in memory only: never in repr, cache or logs

    def _server(self) -> str | None:
        """The base URL given, else the provider's base-URL variable; None for the SDK's default."""
        return self.base_url or _env(self.base_url_env_var)

    def _key(self) -> str | None:
        """The key given, else the provider's key variable; None when neither is set."""
        return self._api_key or _env(self.key_env_var)

    @contextlib.contextmanager
    def _sdk_errors(self, sdk: ModuleType, default_server: str) -> Iterator[None]:
        """Raise an SDK's exceptions inside the block as protokit's classified errors; others pass unchanged."""
        try:
            yield
        except ProviderError:
            raise
        except Exception as exc:
            error = self._sdk_error(exc, sdk, default_server)
            if error is None:
                raise
            raise error from exc

    @contextlib.contextmanager
    def _shape(self) -> Iterator[None]:
        """A response body of an unexpected shape, read as JSON, as a ServerError that says so."""
        try:
            yield
        except ProtokitError:  # a refusal or content filter found while reading: already classified
            raise
        except (KeyError, TypeError, AttributeError, IndexError, ValueError, OverflowError) as exc:
            raise ServerError(f"{self.id}: the provider sent a malformed response "
                              f"({type(exc).__name__}: {safe_text(str(exc)):.80})", model=self.id) from exc

    def _sdk_error(self, exc: Exception, sdk: ModuleType, default_server: str) -> ProviderError | None:
        """The classified error for an exception of the provider's SDK; None for an exception of another kind.

        The openai and anthropic SDKs are generated by the same tool and share their exception
        classes' names and shapes, so one reading serves both.
        """
        failed = _connection_failure(exc) if isinstance(exc, sdk.APITimeoutError) else None
        if isinstance(exc, sdk.APITimeoutError) and failed is None:  # an APIConnectionError too: first
            return ProviderTimeoutError(f"{self.id}: no answer within {self.timeout}s; raise timeout= or retry",
                                        model=self.id)
        if isinstance(exc, sdk.APIConnectionError):
            return ProviderConnectionError(f"{self.id}: could not reach {self._server() or default_server} "
                                           f"({failed or exc}); check the server and {self.base_url_env_var}",
                                           model=self.id)
        if isinstance(exc, sdk.APIStatusError) and exc.status_code >= 400:
            return by_status(exc.status_code, body_message(exc.body, exc.message), self.id, exc.response.headers,
                             self.key_env_var or "")
        if isinstance(exc, sdk.APIError) and not isinstance(exc, sdk.APIResponseValidationError):
            # An error event in a stream that began with 200 (openai raises it without a status,
            # anthropic with the stream's 200): classified by the error's type, a server error if none.
            return by_status(status_of_body(exc.body), body_message(exc.body, exc.message), self.id, None,
                             self.key_env_var or "")
        if isinstance(exc, (sdk.APIResponseValidationError, json.JSONDecodeError, ValueError)):
            return ServerError(f"{self.id}: the provider sent a malformed response ({safe_text(str(exc)):.80})",
                               model=self.id)
        return None


async def post_json(client: Any, sdk: ModuleType, path: str, body: Mapping[str, Any], *, stream: bool = False) -> Any:
    """POST ``body`` to ``path`` through an SDK client and return the answer as decoded JSON.

    The SDK still builds the request (auth, headers, base URL, timeout) and raises its own status,
    connection and mid-stream error types, but the answer is left as the dicts its JSON decodes to
    rather than built into the SDK's pydantic objects: that building is about 40% of the SDK's CPU per
    call, and when streaming it is done for every server-sent event (bench/RESULTS.md section 11).
    Streaming, the result is the SDK's stream of event dicts (its own SSE decoder).
    """
    if stream:
        return await client.post(path, cast_to=object, body=body, stream=True, stream_cls=sdk.AsyncStream[object])
    return await client.post(path, cast_to=object, body=body)


def _connection_failure(exc: BaseException) -> BaseException | None:
    """The aiohttp error behind an SDK's "timeout" when the connection failed without timing out, else None.

    The aiohttp adapter in some SDK releases (openai's copy of httpx-aiohttp 0.2.0) maps every
    aiohttp.ClientConnectionError to httpx's ConnectTimeout, so a refused or reset connection
    reaches protokit as APITimeoutError; its cause chain still holds aiohttp's own exception.
    """
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None:  # not loaded, so not the transport: the SDK's timeouts are timeouts
        return None
    cause: BaseException | None = exc
    for _ in range(8):  # SDK error <- httpx error <- aiohttp error <- OSError: a short chain
        cause = (cause.__cause__ or cause.__context__) if cause is not None else None
        if cause is None or isinstance(cause, (TimeoutError, aiohttp.ServerTimeoutError)):
            return None
        if isinstance(cause, aiohttp.ClientConnectionError):
            return cause
    return None


def _env(name: str | None) -> str | None:
    return (os.environ.get(name) or None) if name else None
