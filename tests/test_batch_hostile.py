"""A batch status from a server that sends anything: counts that are numbers, or one clear ServerError, and
whatever text it sends shown escaped in the widget's batch line.

Any OpenAI-compatible base URL can be given a batch, so what its status says is untrusted input. The server
here is a real HTTP server answering the two providers' batch status paths with the body a test sets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protokit as pk
from protokit import _aio
from protokit.batch.anthropic import AnthropicBatches
from protokit.batch.base import Status
from protokit.batch.openai import OpenAIBatches
from protokit.batch.progress import batch_progress
from protokit.errors import ServerError
from protokit.widgets.static import batch_html


class _Server:
    """Answers GET /v1/batches/ID and /v1/messages/batches/ID with ``self.body``."""

    def __init__(self) -> None:
        self.body: Any = {}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        assert self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def answer(_: web.Request) -> web.Response:
            return web.json_response(self.body)

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/v1/batches/{id}", answer)
            app.router.add_get("/v1/messages/batches/{id}", answer)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()


@pytest.fixture(scope="module")
def hostile() -> Iterator[_Server]:
    yield _Server()


def _status(server: _Server, provider: str) -> Status:
    url = f"http://127.0.0.1:{server.port}" + ("/v1" if provider == "openai" else "")
    model = pk.model(f"{provider}:x", base_url=url, api_key="k")
    backend = OpenAIBatches() if provider == "openai" else AnthropicBatches()
    return _aio.run_sync(backend.status(model, {"id": "batch_1"}))


_ANY = st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12) \
    | st.lists(st.integers(), max_size=2)
_TEXT = st.text(max_size=30) | st.sampled_from(["<img src=x onerror=alert(1)>", "</div><script>x()</script>"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(counts=st.fixed_dictionaries({k: _ANY for k in ("total", "completed", "failed")}), status=_TEXT)
def test_any_openai_batch_status_is_numbers_or_a_server_error(hostile: _Server, counts: dict[str, Any],
                                                             status: str) -> None:
    hostile.body = {"id": "batch_1", "object": "batch", "endpoint": "/v1/chat/completions", "status": status,
                    "input_file_id": "f", "completion_window": "24h", "created_at": 1, "request_counts": counts}
    _check(hostile, "openai")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(counts=st.fixed_dictionaries({k: _ANY for k in ("processing", "succeeded", "errored", "canceled",
                                                        "expired")}), status=_TEXT)
def test_any_anthropic_batch_status_is_numbers_or_a_server_error(hostile: _Server, counts: dict[str, Any],
                                                                status: str) -> None:
    hostile.body = {"id": "batch_1", "type": "message_batch", "processing_status": status,
                    "request_counts": counts, "created_at": "2026-11-30T00:00:00Z", "expires_at": "x"}
    _check(hostile, "anthropic")


def _check(server: _Server, provider: str) -> None:
    try:
        found = _status(server, provider)
    except ServerError as exc:
        assert "malformed" in str(exc)
        return
    assert all(type(n) is int for n in (found.done, found.failed, found.total))
    line = batch_html(batch_progress([found], [provider], 3, 1.0), 3)
    assert "<img" not in line and "<script" not in line  # the provider's words are text, never markup
