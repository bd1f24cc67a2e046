"""A large sweep in replay mode: 100,000 cases x 3 models (300,000 rows), its peak memory and summary time.

Run: ``.venv/bin/python bench/bench_sweep.py [--cases 100000] [--models 3] [--json out.json]``

Setup (not measured): a cache holding one recorded answer per case x model, written
straight into SQLite with the keys compare computes (recording 300,000 answers through a
server would take most of an hour on two cores and measure nothing new). Then, in a fresh
interpreter: ``pk.compare`` over every case in replay mode with an exact-match scorer and the
run stored (rows stream to the run store in batches), its wall time and the process's peak
RSS; ``cmp.summary`` over the 300,000 rows; and ``pk.load_run`` of the stored run.
Goals (issue #14): peak memory <= 1.5 GB, summary < 5 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LABELS = ["billing", "technical", "account", "shipping", "other"]

SETUP = """
import sys, time
import protokit as pk
from protokit.models.base import Response
cases, n_models, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
LABELS = {labels!r}
cache = pk.cache.Cache(path, "record")
models = [pk.model(f"openai:sim-{{j}}", base_url="http://127.0.0.1:9/v1", api_key="unused") for j in range(n_models)]
batch = []
for j, m in enumerate(models):
    for i in range(cases):
        req = m.request(f"Ticket {{i}}: my order {{i}} has a problem, please help")
        # Model j answers case i right unless i % (j + 3) == 0: the models differ in quality.
        text = LABELS[i % 5] if i % (j + 3) else "other"
        resp = Response(text=text, model=m.id, latency_s=0.2 + 0.1 * j, input_tokens=20, output_tokens=2,
                        cost_usd=1e-6 * (j + 1), provider_model=m.name)
        key_dict = req.key_dict()
        batch.append((pk.cache.request_key(key_dict), key_dict, resp.entry()))
        if len(batch) >= 20000:
            cache.put_many(batch); batch = []
cache.put_many(batch)
cache.close()
"""

MEASURE = """
import json, resource, sys, time
import pandas as pd
import protokit as pk
cases, n_models, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
LABELS = {labels!r}
pk.cache.configure(path=path, mode="replay")
models = [pk.model(f"openai:sim-{{j}}", base_url="http://127.0.0.1:9/v1", api_key="unused") for j in range(n_models)]
df = pd.DataFrame({{"i": range(cases)}})
df["ticket"] = [f"my order {{i}} has a problem, please help" for i in range(cases)]
df["label"] = [LABELS[i % 5] for i in range(cases)]
t0 = time.perf_counter()
cmp = pk.compare(models=models, prompt="Ticket {{i}}: {{ticket}}", cases=df,
                 scorers=[pk.scorers.exact("label")])
compare_s = time.perf_counter() - t0
compare_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t1 = time.perf_counter()
summary = cmp.summary
summary_s = time.perf_counter() - t1
summary_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"rows": len(cmp.results), "errors": int(cmp.results["error"].notna().sum()),
                  "compare_s": compare_s, "summary_s": summary_s, "run_id": cmp.run_id,
                  "compare_peak_mb": compare_peak_mb, "summary_peak_mb": summary_peak_mb,
                  "frame_mb": cmp.results.memory_usage(deep=True).sum() / 2**20,
                  "accuracy": summary.set_index("model")["score_exact"].round(4).to_dict()}}))
"""

LOAD = """
import json, resource, sys, time
import protokit as pk
t = time.perf_counter()
again = pk.load_run(sys.argv[1], path=sys.argv[2])
print(json.dumps({{"load_run_s": time.perf_counter() - t, "reloaded_rows": len(again.results),
                  "load_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    """Set up the cache, measure in a fresh interpreter, print (and optionally save) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="protokit-sweep-") as tmp:
        path = str(Path(tmp) / "sweep.db")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", SETUP.format(labels=LABELS), str(args.cases), str(args.models), path],
                       check=True)
        setup_s = time.perf_counter() - t
        done = subprocess.run([sys.executable, "-c", MEASURE.format(labels=LABELS), str(args.cases),
                               str(args.models), path], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        loaded = subprocess.run([sys.executable, "-c", LOAD.format(), result["run_id"], path], capture_output=True,
                                text=True, check=True)
        result.update(json.loads(loaded.stdout.strip().splitlines()[-1]))
        result["setup_s"] = setup_s
        result["db_mb"] = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
    print(f"{args.cases:,} cases x {args.models} models = {result['rows']:,} rows (errors {result['errors']}) "
          f"in replay mode")
    print(f"  compare {result['compare_s']:.1f} s, peak RSS {result['compare_peak_mb']:.0f} MB through compare, "
          f"{result['summary_peak_mb']:.0f} MB with the summary (goal <= 1536 MB); the results frame itself "
          f"{result['frame_mb']:.0f} MB")
    print(f"  summary {result['summary_s']:.2f} s (goal < 5 s); load_run in a fresh process "
          f"{result['load_run_s']:.1f} s "
          f"({result['reloaded_rows']:,} rows), peak RSS {result['load_peak_mb']:.0f} MB")
    print(f"  setup {result['setup_s']:.1f} s, cache + run store {result['db_mb']:.0f} MB; "
          f"accuracy {result['accuracy']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "sweep", "args": vars(args) | {"json": str(args.json)},
                                         **result}, indent=1))


if __name__ == "__main__":
    main()
