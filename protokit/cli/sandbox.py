"""``protokit sandbox``: run the local OpenAI/Anthropic-compatible server in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from typing import Any

import click

# The variable names come from the models' table; the sandbox itself knows none of them.
from protokit.models.env import pointed_at
from protokit.sandbox.config import DEFAULT_PORT, SandboxConfig
from protokit.sandbox.faults import KNOWN_FAULTS
from protokit.sandbox.server import SandboxServer, bind_socket

__all__ = ["command"]


@click.command("sandbox")
@click.option(
    "--port",
    type=int,
    default=DEFAULT_PORT,
    show_default=True,
    help="Port on 127.0.0.1 to listen on; 0 picks a free one (printed on the first line).",
)
@click.option(
    "--latency",
    default="0",
    show_default=True,
    metavar="S|MIN:MAX",
    help="Seconds added to every reply, or a range drawn uniformly from the seed.",
)
@click.option(
    "--faults",
    default=None,
    metavar="SPEC",
    help=f"Inject faults, e.g. '429=0.1,500=0.05,timeout=0.02'. Names: {', '.join(KNOWN_FAULTS)}.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for fault and latency draws.")
@click.option(
    "--script",
    default=None,
    metavar="FILE",
    help="YAML or JSON file of per-model reply rules (models: NAME: rules: [{match, reply}]).",
)
@click.option(
    "--timeout-hold",
    type=float,
    default=30.0,
    show_default=True,
    metavar="S",
    help="Seconds a 'timeout' fault holds a request before answering.",
)
@click.option(
    "--retry-after-ms",
    type=int,
    default=20,
    show_default=True,
    help="Value of the retry-after-ms header sent with 429 faults.",
)
@click.option(
    "--batch-delay",
    type=float,
    default=0.0,
    show_default=True,
    metavar="S",
    help="Seconds a batch (OpenAI Batch API, Anthropic Message Batches) takes to finish.",
)
def command(port: int, **settings: Any) -> None:
    """Run a local server that speaks the OpenAI and Anthropic APIs.

    The official SDKs work against it unchanged. Model 'echo' replies with the
    last user message; any other model name replies with words chosen from a
    hash of the request, so the same request always gets the same reply.
    The batch APIs (OpenAI files and batches, Anthropic message batches) answer
    the same way, each batch finishing over --batch-delay seconds.
    Stats: GET /_sandbox/stats, reset: POST /_sandbox/reset. Stop with Ctrl-C.
    """
    config = SandboxConfig.build(**settings)  # the options are named after SandboxConfig.build's arguments
    server = SandboxServer(config)
    sock = bind_socket(port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server, sock))


async def _serve(server: SandboxServer, sock: socket.socket) -> None:
    await server.start(sock)
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    # The first line is a contract: scripts and tests read the URL from it.
    click.echo(f"listening on {url}")
    for label, provider, base_url in (("OpenAI", "openai", f"{url}/v1"), ("Anthropic", "anthropic", url)):
        names = " ".join(f"{k}={v}" for k, v in pointed_at({provider: base_url}, key="sandbox").items())
        click.echo(f"  {label + ':':<10} {names}")
    click.echo("  stats: GET /_sandbox/stats   stop: Ctrl-C")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
