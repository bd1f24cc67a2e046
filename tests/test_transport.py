"""The SDK clients' transport: aiohttp when the SDK can load it, httpx otherwise; closed with their loop.

protokit builds each SDK client with the SDK's own aiohttp transport (``DefaultAioHttpClient``),
which keeps the SDK's request building and exception types; the choice is made in one place,
``protokit.models._clients.transport_kwargs``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import protokit as pk
from protokit.models import _clients
from protokit.sandbox import Sandbox

PRICE = {"input": 1.0, "output": 1.0}

# The aiohttp adapters the SDKs can load: their own copies of httpx-aiohttp, and the
# httpx_aiohttp package older SDK releases import. A None in sys.modules makes an import fail.
ADAPTERS = ("httpx_aiohttp", "openai._vendor.httpx_aiohttp", "anthropic._vendor.httpx_aiohttp")


def _models(sb: Sandbox, **kw: Any) -> list[pk.models.Model]:
    return [pk.model("openai:echo", base_url=sb.openai_base_url, api_key="k", price=PRICE, **kw),
            pk.model("anthropic:echo", base_url=sb.anthropic_base_url, api_key="k", price=PRICE, **kw)]


def _transports(models: list[pk.models.Model]) -> list[tuple[str, str, bool]]:
    """Per model, on a fresh loop: (http client class, transport class, an aiohttp session after one call)."""

    async def go() -> list[tuple[str, str, bool]]:
        out = []
        for m in models:
            await m.acomplete("which transport?")
            http = m._client()._client  # type: ignore[attr-defined]  # the SDK's httpx-style client
            session = getattr(http._transport, "client", None)
            out.append((type(http).__name__, type(http._transport).__name__,
                        isinstance(session, aiohttp.ClientSession)))
        return out

    return asyncio.run(go())


def test_both_sdks_call_through_their_aiohttp_transport(sandbox: Sandbox) -> None:
    pk.cache.configure(mode="off")
    got = _transports(_models(sandbox))
    for http, transport, session in got:
        assert "AioHttp" in http or "Aiohttp" in http, got
        assert transport == "AiohttpTransport" and session, got


def test_the_clients_of_a_loop_are_closed_when_asyncio_run_ends(sandbox: Sandbox) -> None:
    pk.cache.configure(mode="off")
    models = _models(sandbox)
    sessions: list[aiohttp.ClientSession] = []

    async def go() -> None:
        for m in models:
            await m.acomplete("close me")
            sessions.append(m._client()._client._transport.client)  # type: ignore[attr-defined]
        assert asyncio.get_running_loop() in _clients._by_loop

    for _ in range(2):  # a second loop gets clients of its own
        asyncio.run(go())
    assert len(sessions) == 4 and len({id(s) for s in sessions}) == 4
    assert all(s.closed for s in sessions)
    assert not [loop for loop in _clients._by_loop if loop.is_closed()]


def test_a_refused_connection_is_a_connection_error_not_a_timeout() -> None:
    # openai's copy of the adapter reports a refused connection as ConnectTimeout; protokit reads the cause.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    models = [pk.model("openai:x", base_url=f"http://127.0.0.1:{port}/v1", api_key="k", price=PRICE),
              pk.model("anthropic:x", base_url=f"http://127.0.0.1:{port}", api_key="k", price=PRICE)]
    for m in models:
        with pk.call_context(retries=0), \
                pytest.raises(pk.ProviderConnectionError, match=f"could not reach .*{port}") as info:
            m.complete("anyone there?")
        assert not isinstance(info.value, pk.ProviderTimeoutError)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("fault", "error"), [("reset", pk.ProviderConnectionError),
                                              ("timeout", pk.ProviderTimeoutError),
                                              ("malformed", pk.ServerError)])
def test_resets_hangs_and_garbage_keep_their_kinds(fault: str, error: type[Exception], stream: bool) -> None:
    pk.cache.configure(mode="off")
    with Sandbox(port=0, faults=f"{fault}=1", timeout_hold=3.0) as sb:
        for m in _models(sb, timeout=0.5):  # the SDK's own timeout, so its exception is classified
            with pk.call_context(retries=0), pytest.raises(error) as info:
                list(m.stream("fault, please")) if stream else m.complete("fault, please")
            if error is pk.ProviderConnectionError:
                assert not isinstance(info.value, pk.ProviderTimeoutError)


def _child(code: str, tmp_path: Path, block_adapters: bool) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, warnings shown; with the aiohttp adapters unimportable if asked."""
    env = {**os.environ, "PYTHONWARNINGS": "default", "PROTOKIT_CACHE_MODE": "off",
           "PROTOKIT_CACHE": str(tmp_path / "cache.db")}
    if block_adapters:
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in ADAPTERS))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)


CHILD = """
    import asyncio, json, sys
    import protokit as pk

    price = {{"input": 1.0, "output": 1.0}}
    models = [pk.model("openai:echo", base_url={openai!r}, api_key="k", price=price),
              pk.model("anthropic:echo", base_url={anthropic!r}, api_key="k", price=price)]

    async def transports():
        return [type(m._client()._client._transport).__name__ for m in models]

    texts = [m.complete("sync call").text for m in models]          # the background loop
    async def both():
        return [(await m.acomplete("async call")).text for m in models]
    texts += asyncio.run(both())                                    # a loop of its own, closed after
    print(json.dumps({{"texts": texts, "transports": asyncio.run(transports()),
                      "blocked": [n for n in {adapters!r} if n in sys.modules and sys.modules[n] is None]}}))
"""


@pytest.mark.parametrize("blocked", [False, True], ids=["aiohttp", "httpx-fallback"])
def test_calls_work_and_nothing_is_left_unclosed_at_exit(sandbox: Sandbox, tmp_path: Path, blocked: bool) -> None:
    code = CHILD.format(openai=sandbox.openai_base_url, anthropic=sandbox.anthropic_base_url, adapters=ADAPTERS)
    proc = _child(code, tmp_path, block_adapters=blocked)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["texts"] == ["sync call", "sync call", "async call", "async call"]
    if blocked:  # the SDKs could not load their aiohttp adapters: protokit fell back to httpx
        assert sorted(out["blocked"]) == sorted(ADAPTERS)
        assert out["transports"] == ["AsyncHTTPTransport", "AsyncHTTPTransport"], out
    else:
        assert out["transports"] == ["AiohttpTransport", "AiohttpTransport"], out
    for text in ("Unclosed", "unclosed", "ResourceWarning", "Traceback", "Exception ignored"):
        assert text not in proc.stderr, proc.stderr
