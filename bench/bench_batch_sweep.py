"""A large sweep in batch mode against the sandbox: ``pk.compare(..., batch=True)``, its wall time and peak memory.

Run: ``.venv/bin/python bench/bench_batch_sweep.py [--cases 30000] [--delay 1.0]``

Three OpenAI-protocol models (the sandbox's echo logic) over ``--cases`` cases go through the
sandbox's Batch API (upload, create, poll, results) with a ``--delay`` completion time; the
answers land in the cache. The sandbox runs in this process (its batch files count in the peak).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time


def main() -> None:
    """One batch-mode comparison; prints rows, errors, seconds and peak RSS as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=30_000)
    ap.add_argument("--delay", type=float, default=1.0)
    args = ap.parse_args()
    import pandas as pd

    import protokit as pk
    from protokit.sandbox import Sandbox

    models = ["openai:echo-a", "openai:echo-b", "openai:echo-c"]
    with tempfile.TemporaryDirectory() as tmp, Sandbox(port=0, batch_delay=args.delay) as sb:
        os.environ.update(OPENAI_BASE_URL=sb.openai_base_url, OPENAI_API_KEY="sandbox")
        pk.cache.configure(path=f"{tmp}/batch.db", mode="auto")
        for m in models:
            pk.set_price(m, input=0.1, output=0.4)
        cases = pd.DataFrame({"ticket": [f"order {i} is late" for i in range(args.cases)]})
        start = time.perf_counter()
        cmp = pk.compare(models=models, prompt="{ticket}", cases=cases, batch=True)
        seconds = time.perf_counter() - start
        print(json.dumps({"rows": len(cmp.results), "errors": int(cmp.results["error"].notna().sum()),
                          "seconds": round(seconds, 1), "batches": sb.stats().get("batches"),
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
