"""The aiohttp application: routes, the request pipeline (faults, latency, reply) and stats."""

from __future__ import annotations

import asyncio
import errno
import json
import random
import socket
import struct
import threading
from typing import Any

from aiohttp import web

from protokit.errors import SandboxError
from protokit.sandbox.anthropic_api import AnthropicDialect
from protokit.sandbox.batches import BatchService
from protokit.sandbox.config import HOST, SandboxConfig
from protokit.sandbox.faults import FAULT_MESSAGES, STATUS_FAULTS, FaultPlan
from protokit.sandbox.openai_api import OpenAIDialect
from protokit.sandbox.replies import (
    BadRequest,
    Chat,
    Dialect,
    Reply,
    default_text,
    echo_refusal,
    echo_tool_calls,
    finish,
    tool_reply,
)
from protokit.sandbox.script import Script, load_script

__all__ = ["SandboxServer", "Stats", "bind_socket"]

_JSON = "application/json"
_SSE = "text/event-stream"
_MIDSTREAM_EVENTS = 3  # events a midstream fault sends before its error: the start and some text


class Stats:
    """Request counters, shared between the server thread and callers (hence the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._requests = 0
            self._by_status: dict[str, int] = {}
            self._by_model: dict[str, int] = {}
            self._by_api: dict[str, int] = {}
            self._batches: dict[str, int] = {}

    def record(self, api: str, model: str | None, outcome: str) -> None:
        """Count one model request; ``outcome`` is a status code or reset/timeout/malformed."""
        with self._lock:
            self._requests += 1
            self._by_status[outcome] = self._by_status.get(outcome, 0) + 1
            self._by_api[api] = self._by_api.get(api, 0) + 1
            if model is not None:
                self._by_model[model] = self._by_model.get(model, 0) + 1

    def record_batch(self, api: str) -> None:
        """Count one batch created through ``api`` (``openai`` or ``anthropic``)."""
        with self._lock:
            self._batches[api] = self._batches.get(api, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """A copy: ``requests``, ``by_status``, ``by_model``, ``by_api``, ``batches`` (created, by api).

        A request inside a batch counts as a model request, its api ``openai_batch`` or ``anthropic_batch``.
        """
        with self._lock:
            return {
                "requests": self._requests,
                "by_status": dict(self._by_status),
                "by_model": dict(self._by_model),
                "by_api": dict(self._by_api),
                "batches": dict(self._batches),
            }


def bind_socket(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:``port`` (0 = any free port), or a one-line SandboxError."""
    if not 0 <= port <= 65535:
        raise SandboxError(f"bad port {port}: use 1-65535, or 0 for any free port")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Lets a restarted sandbox reuse a port still in TIME_WAIT; a live listener still blocks it.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SandboxError(f"port {port} is in use on {HOST}; pick another with --port or use --port 0") from None
        raise SandboxError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class SandboxServer:
    """The sandbox app and its runtime state; runs on whatever event loop calls :meth:`start`."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.script: Script | None = load_script(config.script) if config.script is not None else None
        self.faults = FaultPlan(config.faults, config.seed)
        self.stats = Stats()
        self._latency_rng = random.Random(f"latency:{config.seed}")
        self._runner: web.AppRunner | None = None
        self._openai = OpenAIDialect()
        self._anthropic = AnthropicDialect()
        # The batch protocols answer each request with the same reply logic and fault plan.
        self.batches = BatchService(self.reply, lambda: self.faults, self.stats, delay=config.batch_delay)
        self.app = self._make_app()

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_sandbox/stats", self._stats)
        app.router.add_post("/_sandbox/reset", self._reset_stats)
        app.router.add_post("/_sandbox/faults", self._set_faults)
        self.batches.add_routes(app)
        return app

    def set_faults(self, spec: str | None, seed: int | None = None) -> None:
        """Swap in a new fault plan (validated first); ``seed`` defaults to the configured one."""
        # One attribute assignment, so the server thread sees the old or the new plan, never half.
        self.faults = FaultPlan(spec, self.config.seed if seed is None else seed)

    async def start(self, sock: socket.socket) -> None:
        """Serve on an already-bound socket (see :func:`bind_socket`)."""
        # No access log: it costs more than the handler at 1,000+ requests/s.
        # handler_cancellation: a client that gives up (timeout fault) frees its handler.
        runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        await web.SockSite(runner, sock, backlog=1024).start()
        self._runner = runner

    async def close(self) -> None:
        """Stop listening and cancel requests still in flight."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- routes ---------------------------------------------------------------------------

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._model_request(request, self._openai)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._model_request(request, self._anthropic)

    async def _models(self, request: web.Request) -> web.Response:
        names = ["echo", *(self.script.models if self.script else ())]
        if "anthropic-version" in request.headers:
            data = [{"type": "model", "id": n, "display_name": n, "created_at": "2024-01-01T00:00:00Z"} for n in names]
            return web.json_response({"data": data, "has_more": False, "first_id": names[0], "last_id": names[-1]})
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "sandbox"} for n in names]
        return web.json_response({"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.snapshot())

    async def _reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.json_response(self.stats.snapshot())

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.set_faults(body.get("faults"), body.get("seed"))
        except (ValueError, AttributeError, SandboxError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"faults": self.faults.spec, "seed": self.faults.seed})

    # -- the model request pipeline ---------------------------------------------------------

    async def _model_request(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        # Draw before any await so the sequence of faults follows the order requests arrive in.
        fault = self.faults.draw()
        try:
            chat = dialect.parse(json.loads(await request.read()))
        except (ValueError, BadRequest) as exc:
            self.stats.record(dialect.name, None, "400")
            message = str(exc) if isinstance(exc, BadRequest) else "request body is not valid JSON"
            return web.Response(body=dialect.error(400, message), status=400, content_type=_JSON)

        if fault is None:
            await self._delay(chat.model)
        elif fault in STATUS_FAULTS:
            return self._fault_response(dialect, chat, STATUS_FAULTS[fault])
        elif fault == "leaky401":
            self.stats.record(dialect.name, chat.model, "401")
            sent = request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ")
            body = dialect.error(401, f"sandbox fault: invalid API key {sent!r} for {request.host}")
            return web.Response(body=body, status=401, content_type=_JSON)
        elif fault == "reset":
            self.stats.record(dialect.name, chat.model, "reset")
            return await self._reset_connection(request)
        elif fault == "midstream" and not chat.stream:
            return self._fault_response(dialect, chat, 529)
        else:
            await self._delay(chat.model)
            if fault == "timeout":
                self.stats.record(dialect.name, chat.model, "timeout")
                # Long enough that the client's own timeout fires; then answer as usual.
                await asyncio.sleep(self.config.timeout_hold)
            elif fault == "midstream":
                self.stats.record(dialect.name, chat.model, "midstream")
                # The answer's first events, then the error event: the status was already 200.
                events = dialect.render_stream(chat, self.reply(chat)).split(b"\n\n")
                body = b"".join(e + b"\n\n" for e in events[:_MIDSTREAM_EVENTS])
                body += dialect.stream_error(529, "sandbox fault: overloaded mid-stream")
                return web.Response(body=body, content_type=_SSE, headers={"Cache-Control": "no-cache"})
            else:
                self.stats.record(dialect.name, chat.model, "malformed")
                return web.Response(body=dialect.malformed(chat.stream), content_type=_SSE if chat.stream else _JSON)

        reply = self.reply(chat)
        if fault is None:
            self.stats.record(dialect.name, chat.model, "200")
        if chat.stream:
            body = dialect.render_stream(chat, reply)
            return web.Response(body=body, content_type=_SSE, headers={"Cache-Control": "no-cache"})
        return web.Response(body=dialect.render(chat, reply), content_type=_JSON)

    def reply(self, chat: Chat) -> Reply:
        """What the model answers ``chat`` with: a script rule's reply, echo's tool calls, or the default text."""
        text = self._scripted(chat)
        refusal = echo_refusal(chat) if text is None else None
        if refusal is not None:
            return refusal
        calls = echo_tool_calls(chat) if text is None and chat.model == "echo" else []
        return tool_reply(calls) if calls else finish(default_text(chat) if text is None else text, chat)

    def _scripted(self, chat: Chat) -> str | None:
        if self.script is None:
            return None
        model = self.script.models.get(chat.model)
        return model.reply(chat) if model is not None else None

    async def _delay(self, model: str) -> None:
        low, high = self.config.latency
        if self.script is not None and model in self.script.models:
            extra = self.script.models[model].latency
            low, high = low + extra[0], high + extra[1]
        if high > 0:
            await asyncio.sleep(low + (high - low) * self._latency_rng.random() if high > low else low)

    def _fault_response(self, dialect: Dialect, chat: Chat, status: int) -> web.Response:
        self.stats.record(dialect.name, chat.model, str(status))
        headers = {}
        if status == 429:
            # Both headers, as the real APIs send them; the SDKs prefer the precise -ms one.
            headers = {"Retry-After": "1", "retry-after-ms": str(self.config.retry_after_ms)}
        body = dialect.error(status, FAULT_MESSAGES[status])
        return web.Response(body=body, status=status, content_type=_JSON, headers=headers)

    async def _reset_connection(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0 makes close() send RST rather than FIN: the client sees a reset connection.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        # The connection is gone; aiohttp cancels this handler (handler_cancellation) as it notices.
        await asyncio.sleep(3600)
        raise AssertionError("unreachable: a reset connection cancels its handler")
