"""Front-end traffic and Python time of the Compare widget per result, without a browser.

Run: ``.venv/bin/python bench/bench_widget.py [--cases 50,100,200] [--models 4] [--json out.json]``

Every widget message goes through ``comm.create_comm``; here it is a counting comm
that serialises each message to JSON as the kernel would (signing and the socket
are left out) and records its type and size. The models are instant Python
functions with the cache off, so the run is all widget work. Three phases are
reported apart: building the grid when Run starts (one widget per cell), the
results as they stream in (``on_result``), and the end (summary, chart, verdict).
The time per result is the time spent inside the widget's ``on_result``,
including the JSON serialisation of what it sends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import comm
import pandas as pd
from comm.base_comm import BaseComm

import protokit as pk
from protokit.widgets import Compare

# (phase, message type) -> messages, and phase -> bytes, for the run being measured.
COUNTS: Counter[tuple[str, str]] = Counter()
SIZES: Counter[str] = Counter()
PHASE = ["setup"]


class CountingComm(BaseComm):
    """A comm that serialises and counts messages instead of sending them."""

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        body = json.dumps({"data": data, "metadata": metadata, **keys}, default=str)
        COUNTS[(PHASE[0], msg_type)] += 1
        SIZES[PHASE[0]] += len(body) + sum(len(b) for b in buffers or ())


def _reset() -> None:
    COUNTS.clear()
    SIZES.clear()


def _answer(prompt: str) -> str:
    return f"category for {prompt[-24:]}"


def run_once(n_cases: int, n_models: int) -> dict[str, Any]:
    """One widget run over n_cases x n_models; message counts, bytes and times per phase."""
    models = [pk.model(_answer, name=f"model-{i}") for i in range(n_models)]
    cases = pd.DataFrame({"ticket": [f"ticket {i}: something about an order" for i in range(n_cases)],
                          "expected": ["category"] * n_cases})
    _reset()
    PHASE[0] = "construct"
    w = Compare(models=models, prompt="Classify: {ticket}", cases=cases,
                scorers=[pk.scorers.contains("expected")], concurrency=64)
    on_result = w._on_result
    start_build: list[float] = []

    def counted(row: Any, progress: Any) -> None:
        PHASE[0] = "results"
        on_result(row, progress)
        if progress.done == progress.total:
            PHASE[0] = "finish"

    w._on_result = counted
    original_start = w._start

    def start(plan: Any) -> None:
        PHASE[0] = "grid"
        start_build.append(time.perf_counter())
        original_start(plan)
        start_build.append(time.perf_counter())

    w._start = start
    t0 = time.perf_counter()
    asyncio.run(w.arun())
    wall = time.perf_counter() - t0
    results = len(w.comparison.results) if w.comparison is not None else 0
    assert results == n_cases * n_models, w.status
    phases = {}
    for phase in ("construct", "grid", "results", "finish"):
        msgs = sum(n for (p, _t), n in COUNTS.items() if p == phase)
        phases[phase] = {"messages": msgs, "bytes": SIZES[phase]}
    per = phases["results"]
    return {
        "cases": n_cases, "models": n_models, "results": results,
        "msgs_per_result": per["messages"] / results, "bytes_per_result": per["bytes"] / results,
        "ui_ms_per_result": w._ui_seconds / results * 1000,
        "grid_build_ms": (start_build[1] - start_build[0]) * 1000,
        "grid_bytes_per_cell": phases["grid"]["bytes"] / (n_cases * n_models),
        "finish_bytes": phases["finish"]["bytes"], "wall_s": wall, "phases": phases,
        "results_by_type": {t: n for (p, t), n in COUNTS.items() if p == "results"},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="50,100,200", help="comma-separated case counts")
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    comm.create_comm = CountingComm  # every widget made from here on counts its traffic
    pk.cache.configure(mode="off")
    rows = [run_once(int(n), args.models) for n in args.cases.split(",")]
    print(f"{'results':>8} {'msgs/result':>12} {'bytes/result':>13} {'ui ms/result':>13} "
          f"{'grid build':>11} {'grid B/cell':>12} {'end bytes':>10} {'results bytes':>14}")
    for r in rows:
        print(f"{r['results']:>8} {r['msgs_per_result']:>12.2f} {r['bytes_per_result']:>13.0f} "
              f"{r['ui_ms_per_result']:>13.3f} {r['grid_build_ms']:>9.0f}ms {r['grid_bytes_per_cell']:>12.0f} "
              f"{r['finish_bytes']:>10} {r['phases']['results']['bytes']:>14}")
    print("messages per type while results stream (largest run):", rows[-1]["results_by_type"])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
