"""Crash-and-resume drill: SIGKILL a comparison five times, then let it finish.

A child process runs ``pk.compare`` against an in-process sandbox (a little
latency, so calls overlap) with the cache in a temp file. The test kills it with
SIGKILL after a seeded random number of answered requests, five times, then runs
it to the end. The cache must make the work already done stick: each run asks the
sandbox only for calls not yet recorded, plus at most the calls in flight when it
died; the last run replays every recorded answer and asks for the rest exactly
once; the file passes ``PRAGMA integrity_check`` after every kill. Default size
200 calls; 1,000 with ``--full-drills`` or ``PROTOKIT_FULL_DRILLS=1``.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _drills import answered, cache_entries, child_env, integrity, spawn, wait_for_answers

from protokit.sandbox import Sandbox

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

KILLS = 5
CONCURRENCY = 8
SEED = 20240607
CHILD = """
import json, sys
import pandas as pd
import protokit as pk

base_url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = pk.model("openai:echo", base_url=base_url, api_key="k", timeout=30)
cases = pd.DataFrame({"case": [f"c{i:05d}" for i in range(n)], "text": [f"resume me {i}" for i in range(n)]})
r = pk.compare([m], "{text}", cases, concurrency=concurrency).results
print(json.dumps({"rows": len(r), "distinct": int(r["case"].nunique()), "errors": int(r["error"].notna().sum()),
                  "cached": int(r["cached"].fillna(False).astype(bool).sum()),
                  "mismatched": int((r["output"] != r["text"]).sum())}))
"""


@pytest.fixture
def slow_sandbox() -> Iterator[Sandbox]:
    """A sandbox whose answers take 5-30 ms, so several calls are in flight when the child dies."""
    with Sandbox(port=0, latency="0.005:0.03", seed=3) as sb:
        yield sb


def _kill_after(proc: subprocess.Popen[str], sb: Sandbox, answers: int, timeout: float = 120.0) -> None:
    """SIGKILL ``proc`` once the sandbox has answered ``answers`` more requests."""
    wait_for_answers(proc, sb, answered(sb) + answers, timeout, "the kill point")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _settle(sb)


def _settle(sb: Sandbox, quiet: float = 0.1) -> None:
    """Wait until the sandbox's count stops moving, so no answer to the dead child lands on the next run."""
    last, since = answered(sb), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.01)
        now = answered(sb)
        if now != last:
            last, since = now, time.monotonic()


def test_killed_comparison_resumes_without_repeating_finished_calls(
        slow_sandbox: Sandbox, tmp_path: Path, full_drills: bool) -> None:
    n = 1000 if full_drills else 200
    cache = tmp_path / "drill.db"
    env = child_env(cache)
    args = [slow_sandbox.openai_base_url, str(n), str(CONCURRENCY)]
    rng = random.Random(SEED)
    log: list[tuple[int, int, int]] = []  # (kill point, answers served, entries added) per run

    for _ in range(KILLS):
        point = rng.randint(1, n // (KILLS + 2))  # leaves at least a few calls for the final run
        before_answers = answered(slow_sandbox)
        before_entries = cache_entries(cache) if cache.exists() else 0
        _kill_after(spawn(CHILD, args, env, cwd=tmp_path), slow_sandbox, point)
        assert integrity(cache) == "ok"
        served = answered(slow_sandbox) - before_answers
        added = cache_entries(cache) - before_entries
        log.append((point, served, added))
        # Answers lost with the process are at most the calls that were in flight.
        assert 0 <= served - added <= CONCURRENCY, log

    recorded = cache_entries(cache)
    assert recorded == sum(added for _, _, added in log)
    assert 0 < recorded < n, log
    before_answers = answered(slow_sandbox)
    proc = spawn(CHILD, args, env, cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    final = answered(slow_sandbox) - before_answers

    assert summary == {"rows": n, "distinct": n, "errors": 0, "cached": recorded, "mismatched": 0}, err
    # The final run asked only for what no earlier run had recorded, each exactly once.
    assert final == n - recorded, log
    assert cache_entries(cache) == n
    assert integrity(cache) == "ok"
    total = answered(slow_sandbox)
    assert n <= total <= n + KILLS * CONCURRENCY, log
