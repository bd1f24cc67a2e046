"""Two-writers drill: two processes record into one cache file at the same moment.

Each child runs ``pk.compare`` over its own prompts against the sandbox (no
latency, so writes come as fast as the cache takes them) with the same
``PROTOKIT_CACHE`` file, which neither has created yet: they open it, migrate it
and write to it together, released by one "go" file. Neither may fail with
"database is locked", no entry may be lost (the file holds every answer of both,
and replays them all), and the file must pass ``PRAGMA integrity_check``.
Default 300 calls per writer; 2,000 with ``--full-drills`` or ``PROTOKIT_FULL_DRILLS=1``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _drills import cache_entries, child_env, integrity, spawn

import protokit as pk
from protokit.sandbox import Sandbox

CHILD = """
import json, sys, time
from pathlib import Path
import pandas as pd
import protokit as pk
import openai  # imported before the barrier, so both writers start writing together

base_url, name, n, ready, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
m = pk.model("openai:echo", base_url=base_url, api_key="k")
cases = pd.DataFrame({"case": range(n), "text": [f"{name} writes {i}" for i in range(n)]})
ready.touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
start = time.time()
r = pk.compare([m], "{text}", cases, concurrency=16).results
end = time.time()
print(json.dumps({"start": start, "end": end, "rows": len(r), "errors": r["error"].dropna().tolist()[:5],
                  "mismatched": int((r["output"] != r["text"]).sum())}))
"""


@pytest.fixture
def fast_sandbox() -> Iterator[Sandbox]:
    """A sandbox of its own, answering at once."""
    with Sandbox(port=0) as sb:
        yield sb


def _wait_for(paths: list[Path], procs: list, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"a writer ended before the start line (exit {proc.returncode}):\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail("the writers did not reach the start line in time")
        time.sleep(0.005)


@pytest.mark.filterwarnings("ignore::protokit.models.prices.PriceWarning")
def test_two_processes_write_one_cache_without_locking_errors_or_lost_entries(
        fast_sandbox: Sandbox, tmp_path: Path, full_drills: bool) -> None:
    n = 2000 if full_drills else 300
    cache = tmp_path / "shared.db"
    env = child_env(cache)
    go = tmp_path / "go"
    names = ["alpha", "beta"]
    ready = [tmp_path / f"{name}.ready" for name in names]
    procs = [spawn(CHILD, [fast_sandbox.openai_base_url, name, str(n), str(flag), str(go)], env, cwd=tmp_path)
             for name, flag in zip(names, ready, strict=True)]
    try:
        _wait_for(ready, procs)
        go.touch()
        outputs = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    summaries = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert "database is locked" not in out + err
        assert proc.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    for s in summaries:
        assert (s["rows"], s["errors"], s["mismatched"]) == (n, [], 0)
    # The writers did write at the same time, else this drill proves nothing.
    assert max(s["start"] for s in summaries) < min(s["end"] for s in summaries), summaries

    assert fast_sandbox.stats()["by_status"] == {"200": 2 * n}
    assert integrity(cache) == "ok"
    assert cache_entries(cache) == 2 * n
    conn = sqlite3.connect(cache)
    try:
        prompts = {json.loads(req)["messages"][-1]["content"] for (req,) in conn.execute("SELECT request FROM entries")}
    finally:
        conn.close()
    assert prompts == {f"{name} writes {i}" for name in names for i in range(n)}

    # Every entry replays through the real read path: no call of either writer is missing.
    pk.cache.configure(path=cache, mode="replay")
    m = pk.model("openai:echo", base_url=fast_sandbox.openai_base_url, api_key="k")
    cases = pd.DataFrame({"text": sorted(prompts)})
    res = pk.compare([m], "{text}", cases).results
    assert res["error"].isna().all(), res["error_message"].dropna().head().tolist()
    assert res["cached"].all()
    assert (res["output"] == res["text"]).all()
    assert fast_sandbox.stats()["requests"] == 2 * n
