"""Time the cache's hot path: record 10,000 answers, then replay them all.

Run: ``.venv/bin/python bench/bench_cache.py [N]``. Replaying includes computing each
request's key, as the runner does on every call.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from protokit.cache import Cache, request_key


def _request(i: int) -> dict[str, Any]:
    prompt = f"Classify this support ticket: billing, bug or other. Ticket #{i}: my card was charged twice."
    return {"provider": "openai", "model": "gpt-4.1-mini", "messages": [{"role": "user", "content": prompt}],
            "options": {"temperature": 0, "max_tokens": 50}, "sample": 0}


def _entry(i: int) -> dict[str, Any]:
    return {"text": f"billing {i}", "model": "gpt-4.1-mini-2025-04-14", "input_tokens": 31,
            "output_tokens": 2, "cached_input_tokens": None, "reasoning_tokens": None,
            "cost_usd": 0.0000156, "latency_s": 0.73, "ttft_s": None, "finish_reason": "stop"}


def main(n: int = 10_000) -> None:
    """Record n entries, replay them, and print both timings."""
    requests = [_request(i) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        with Cache(path, mode="record") as cache:
            start = time.perf_counter()
            for i, req in enumerate(requests):
                cache.put(request_key(req), req, _entry(i))
            record_s = time.perf_counter() - start
        with Cache(path, mode="replay") as cache:
            start = time.perf_counter()
            for req in requests:
                key = request_key(req)
                if cache.get(key) is None:
                    raise cache.miss(key, req)
            replay_s = time.perf_counter() - start
    print(f"record {n} entries: {record_s:.3f} s ({record_s / n * 1e6:.0f} us/put)")
    print(f"replay {n} entries: {replay_s:.3f} s ({replay_s / n * 1e6:.0f} us/get)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
