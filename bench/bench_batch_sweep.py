"""A large sweep in batch mode against the sandbox: ``pk.compare(..., batch=True)``, its wall time and peak memory.

Run: ``.venv/bin/python bench/bench_batch_sweep.py [--cases 100000] [--delay 1.0] [--json out.json]``

Three OpenAI-protocol models (the sandbox's echo logic) over ``--cases`` cases go through the
sandbox's Batch API (upload, create, poll, results) with a ``--delay`` completion time; the
answers land in the cache and the rows stream to the run store (the same SQLite file). The
sandbox runs in its own process (``protokit sandbox``), so the client's peak RSS is the
client's alone; the sandbox's peak (it holds every batch's input and output files) is reported
beside it. Goal (issue #14): 100,000 cases x 3 models with the client's peak <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sandbox import sandbox_process  # noqa: E402


def _mb(n: float) -> float:
    return round(n / 2**20, 1)


def main() -> None:
    """One batch-mode comparison; prints rows, errors, seconds, both peaks and the file sizes as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--delay", type=float, default=1.0, help="seconds each batch takes at the sandbox")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    with sandbox_process(latency=0.0, batch_delay=args.delay) as sb, tempfile.TemporaryDirectory() as tmp:
        import pandas as pd

        import protokit as pk

        os.environ.update(OPENAI_BASE_URL=f"{sb.url}/v1", OPENAI_API_KEY="sandbox")
        db = Path(tmp) / "batch.db"
        pk.cache.configure(path=db, mode="auto")
        models = ["openai:echo-a", "openai:echo-b", "openai:echo-c"]
        for m in models:
            pk.set_price(m, input=0.1, output=0.4)
        cases = pd.DataFrame({"ticket": [f"order {i} is late" for i in range(args.cases)]})
        after_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu0, sandbox_cpu0 = time.process_time(), sb.cpu_s()
        start = time.perf_counter()
        cmp = pk.compare(models=models, prompt="{ticket}", cases=cases, batch=True)
        seconds = time.perf_counter() - start
        client_cpu, sandbox_cpu = time.process_time() - cpu0, sb.cpu_s() - sandbox_cpu0
        client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sandbox_peak = sb.peak_rss_mb()
        pk.cache.get_cache().close()
        with sqlite3.connect(db) as conn:
            stored_rows = conn.execute("SELECT COUNT(*) FROM compare_rows").fetchone()[0]
            entries = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            # Each table with its indexes: entries is the cache, compare_* the run store, batch_* the ledger.
            tables = dict(conn.execute("SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d JOIN sqlite_master m "
                                       "ON m.name = d.name GROUP BY m.tbl_name ORDER BY 2 DESC").fetchall())
        size = sum(p.stat().st_size for p in Path(tmp).glob("batch.db*"))
        figures = {"cases": args.cases, "rows": len(cmp.results),
                   "errors": int(cmp.results["error"].notna().sum()), "status": cmp.status,
                   "seconds": round(seconds, 1), "client_cpu_s": round(client_cpu, 1),
                   "sandbox_cpu_s": round(sandbox_cpu, 1), "batches": sb.stats().get("batches"),
                   "client_after_import_mb": round(after_import), "client_peak_rss_mb": round(client_peak),
                   "sandbox_peak_rss_mb": round(sandbox_peak), "stored_rows": stored_rows,
                   "cache_entries": entries, "cache_file_mb": _mb(size),
                   "table_mb": {k: _mb(v or 0) for k, v in tables.items() if v and v >= 2**20}}
    print(json.dumps(figures))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
