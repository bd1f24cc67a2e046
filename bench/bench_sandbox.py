"""Throughput of the provider sandbox: requests/s from an aiohttp client at a fixed concurrency.

    .venv/bin/python bench/bench_sandbox.py                  # sandbox in a subprocess (default)
    .venv/bin/python bench/bench_sandbox.py --mode inproc    # Sandbox thread in this process
    .venv/bin/python bench/bench_sandbox.py --api anthropic --stream

The subprocess mode is the fair one: client and server do not share a GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp


@contextmanager
def sandbox_url(mode: str) -> Iterator[str]:
    """Start a sandbox and yield its URL."""
    if mode == "inproc":
        from protokit.sandbox import Sandbox

        with Sandbox(port=0) as sb:
            yield sb.url
        return
    exe = Path(sys.executable).with_name("protokit")
    proc = subprocess.Popen([str(exe), "sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        found = re.match(r"listening on (\S+)", proc.stdout.readline())
        if not found:
            raise SystemExit("sandbox did not start")
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def request_for(api: str, url: str, stream: bool, i: int) -> tuple[str, dict[str, str], bytes]:
    """URL, headers and body of the i-th request."""
    messages = [{"role": "user", "content": f"benchmark request number {i % 100} about throughput"}]
    if api == "openai":
        body = {"model": "bench", "messages": messages, "stream": stream}
        return f"{url}/v1/chat/completions", {"Authorization": "Bearer sandbox"}, json.dumps(body).encode()
    body = {"model": "bench", "messages": messages, "max_tokens": 64, "stream": stream}
    headers = {"x-api-key": "sandbox", "anthropic-version": "2023-06-01"}
    return f"{url}/v1/messages", headers, json.dumps(body).encode()


async def run(url: str, api: str, stream: bool, total: int, concurrency: int) -> float:
    """Send ``total`` requests from ``concurrency`` workers; return requests per second."""
    counter = iter(range(concurrency))  # warm-up: open every connection once
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"Content-Type": "application/json"}) as s:

        async def worker() -> None:
            for i in counter:
                target, headers, body = request_for(api, url, stream, i)
                async with s.post(target, data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise SystemExit(f"status {r.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        counter = iter(range(total))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - t0)


def main() -> None:
    """Parse options, run the benchmark, print the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["subprocess", "inproc"], default="subprocess")
    parser.add_argument("--api", choices=["openai", "anthropic"], default="openai")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with sandbox_url(args.mode) as url:
        rate = asyncio.run(run(url, args.api, args.stream, args.requests, args.concurrency))
    kind = f"{args.api}{' stream' if args.stream else ''}"
    print(f"{rate:,.0f} requests/s ({kind}, {args.mode}, concurrency {args.concurrency}, {args.requests} requests)")


if __name__ == "__main__":
    main()
