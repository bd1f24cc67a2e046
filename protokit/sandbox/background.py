"""Run the sandbox in a daemon thread with its own event loop, for tests and notebooks."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from protokit.errors import SandboxError
from protokit.sandbox.config import HOST, SandboxConfig, check_batch_delay
from protokit.sandbox.server import SandboxServer, bind_socket

__all__ = ["Sandbox"]


class Sandbox:
    """A local OpenAI/Anthropic-compatible server in a background thread.

    Parameters
    ----------
    port
        Port on 127.0.0.1; 0 picks a free one (read it back from :attr:`port`).
    latency
        Seconds added to each reply: a number, or ``"MIN:MAX"`` drawn uniformly (seeded).
    faults
        Fault spec such as ``"429=0.1,500=0.05,timeout=0.02,reset=0.01,malformed=0.01"``.
    seed
        Seeds the fault and latency draws, so a run repeats exactly.
    script
        Path of a YAML/JSON script of per-model reply rules.
    timeout_hold
        Seconds a ``timeout`` fault holds the request before answering.
    retry_after_ms
        Value of the ``retry-after-ms`` header on 429 replies.
    batch_delay
        Seconds a batch (OpenAI Batch API, Anthropic Message Batches) takes to finish; its
        requests finish one by one over that time. :meth:`set_batch_delay` changes it.

    Use as ``with Sandbox() as sb:`` or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        port: int = 0,
        latency: float | str | tuple[float, float] | None = 0.0,
        faults: str | None = None,
        seed: int = 0,
        script: str | Path | None = None,
        *,
        timeout_hold: float = 30.0,
        retry_after_ms: int = 20,
        batch_delay: float = 0.0,
    ) -> None:
        self.config = SandboxConfig.build(latency=latency, faults=faults, seed=seed, script=script,
                                          timeout_hold=timeout_hold, retry_after_ms=retry_after_ms,
                                          batch_delay=batch_delay)
        self.port = port
        self._server = SandboxServer(self.config)  # loads the script now: errors surface here
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI``: the URL plus ``/v1``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.Anthropic``: the URL itself."""
        return self.url

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Sandbox:
        """Bind the port and start serving in a daemon thread; returns self."""
        if self.running:
            return self
        sock = bind_socket(self.port)
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._run,
            args=(loop, sock, ready, failure),
            name=f"protokit-sandbox-{self.port}",
            daemon=True,
        )
        thread.start()
        if not ready.wait(timeout=30):
            raise SandboxError(f"sandbox on port {self.port} did not start within 30 s")
        if failure:
            thread.join()
            raise SandboxError(f"sandbox could not start on {self.url}: {failure[0]}")
        self._loop, self._thread = loop, thread
        return self

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: Any,
        ready: threading.Event,
        failure: list[BaseException],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._server.start(sock))
        except BaseException as exc:  # reported to start() in the caller's thread
            sock.close()
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._server.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def stats(self) -> dict[str, Any]:
        """Counters: ``requests``, ``by_status``, ``by_model``, ``by_api``, ``batches`` (created, by api)."""
        return self._server.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters."""
        self._server.stats.reset()

    def set_faults(self, spec: str | None, seed: int | None = None) -> None:
        """Replace the fault spec (None or "" for none); the draw restarts from ``seed``."""
        self._server.set_faults(spec, seed)

    def set_batch_delay(self, seconds: float) -> None:
        """Seconds a batch takes to finish, for new batches and those still pending."""
        self._server.batches.delay = check_batch_delay(seconds)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sandbox {self.url} {state}>"
