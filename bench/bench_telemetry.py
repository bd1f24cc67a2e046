"""The cost of watching: the runner benchmark's CPU with OpenTelemetry tracing on and off.

Run: ``.venv/bin/python bench/bench_telemetry.py [--calls 2000] [--concurrency 32] [--latency 0.05]
[--repeat 7] [--json out.json]``

The workload is bench_runner.py's "protokit Runner (cache off)" client: 2,000 calls through the
sandbox in its own process, each client in a fresh interpreter timing the calls alone. It runs in
five set-ups, interleaved over ``--repeat`` rounds:

- **no opentelemetry**: the package blocked at import, as if not installed; no observer is registered.
- **API, no SDK**: ``opentelemetry-api`` installed and imported but no provider configured (the
  default install: the anthropic SDK depends on the API); protokit's observer sees each call and
  finds nothing recording.
- **SDK, protokit not watching**: the two providers below configured, protokit's observer removed:
  the cost of having the SDK in the process at all (its import footprint), which is not protokit's.
- **SDK: tracing**: a ``TracerProvider`` with a ``BatchSpanProcessor`` (the production set-up) whose
  exporter drops the batches (an OTLP exporter's encoding and sending are not counted).
- **SDK: tracing + metrics**: the same, and a ``MeterProvider`` aggregating both histograms in memory.

Two readings of the same runs. The end-to-end one: each set-up's process CPU over the baseline's in
the same round (median of the per-round ratios, with the quartiles), so drift between rounds
cancels out; on a shared machine it still moves by several percent. The accounted one, steadier:
the main thread's CPU spent inside protokit's call observer (timed around it), and the CPU of the
other threads (the batch processor's worker) beyond the baseline's, each as a share of the
baseline's CPU per call. Last, ``import protokit`` with opentelemetry found and not found.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sandbox import running_sandbox  # noqa: E402
from bench_runner import CLIENTS, PRELUDE  # noqa: E402

RUNNER = CLIENTS["protokit Runner (cache off)"]

BLOCK = """
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(name, name=name)
sys.meta_path.insert(0, _Blocked())
"""
API_ONLY = """
import opentelemetry.trace, opentelemetry.metrics
"""
TRACING = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

class Dropped(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Dropped()))
trace.set_tracer_provider(provider)
"""
METRICS = """
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
"""
# Time spent inside protokit's observers (main thread) and the main thread's CPU from the clock's start.
TIMING = """
import protokit
from protokit.runner import observe as _observe
_in_observer = [0.0, 0]
for _o in list(_observe._process):
    def _timed(record, _o=_o):
        _t = time.thread_time()
        _o(record)
        _in_observer[0] += time.thread_time() - _t
        _in_observer[1] += 1
    _observe.remove_observer(_o)
    _observe.add_observer(_timed)
_clock = clock
def clock():
    global _thread0
    _thread0 = time.thread_time()
    return _clock()
"""
EPILOGUE = """
if "provider" in globals():
    provider.force_flush()  # the batch processor's last export, counted
wall = time.perf_counter() - _wall0
cpu = time.process_time() - _cpu0
main_thread = time.thread_time() - _thread0
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "ok": ok, "observer_s": _in_observer[0],
                  "observed": _in_observer[1], "other_threads_s": cpu - main_thread}))
"""

# The SDK configured but protokit's observer taken away: what having the SDK in the process costs by itself.
UNWATCHED = """
import protokit
from protokit.runner import observe as _observe, telemetry as _telemetry
_observe.remove_observer(_telemetry.observe_call)
"""

SETUPS: dict[str, str] = {
    "no opentelemetry": BLOCK,
    "API, no SDK": API_ONLY,
    "SDK, protokit not watching": TRACING + METRICS + UNWATCHED,
    "SDK: tracing (batch processor)": TRACING,
    "SDK: tracing + metrics": TRACING + METRICS,
}


def run_setup(head: str, base: str, conc: int, per_model: int, tmp: str) -> dict[str, Any]:
    """The runner client after ``head``, in a fresh interpreter; its figures."""
    script = (PRELUDE.format(base=base, conc=conc, tmp=tmp, models=["sim-a", "sim-b", "sim-c", "sim-d"],
                             per_model=per_model) + head + TIMING + RUNNER + EPILOGUE)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        if "ModuleNotFoundError: No module named 'opentelemetry.sdk" in proc.stderr:
            raise SystemExit("opentelemetry-sdk is not installed: pip install -e '.[dev]'")
        raise RuntimeError(proc.stderr[-2000:])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


IMPORT = "import importlib.util, time; {block}t = time.perf_counter(); import protokit; print(time.perf_counter() - t)"
# As if opentelemetry were not installed: find_spec answers None, so protokit registers no observer.
NOT_FOUND = ("f = importlib.util.find_spec; "
             "importlib.util.find_spec = lambda n, *a: None if n == 'opentelemetry' else f(n, *a); ")


def import_times(repeat: int) -> dict[str, float]:
    """Median ``import protokit`` seconds in fresh interpreters, with opentelemetry found and not found."""
    times: dict[str, list[float]] = {"found": [], "not found": []}
    for _ in range(repeat):
        for name, block in (("found", ""), ("not found", NOT_FOUND)):
            done = subprocess.run([sys.executable, "-c", IMPORT.format(block=block)], capture_output=True,
                                  text=True, check=True)
            times[name].append(float(done.stdout))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Run every set-up ``--repeat`` times, interleaved, and print both readings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--import-repeat", type=int, default=15)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    per_model = args.calls // 4
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SETUPS}
    with running_sandbox(latency=args.latency) as base, tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name, head in SETUPS.items():  # interleaved: drift hits every set-up alike
                rows[name].append(run_setup(head, base, args.concurrency, per_model, tmp))
    base_runs, sdk_runs = rows["no opentelemetry"], rows["SDK, protokit not watching"]
    base_cpu_call = statistics.median(r["cpu_s"] for r in base_runs) / args.calls
    base_other = statistics.median(r["other_threads_s"] for r in base_runs)
    print(f"{args.calls} calls, concurrency {args.concurrency}, latency {args.latency}s, {args.repeat} rounds; "
          f"baseline CPU {base_cpu_call * 1e6:.0f} µs per call")
    print(f"{'set-up':34} {'wall s':>6} {'cpu s':>6} {'cpu x (paired, quartiles)':>26} "
          f"{'x SDK unwatched':>15} {'observer µs/call':>16} {'share':>6} {'other threads':>13}")
    table = []
    for name, runs in rows.items():
        paired = sorted(r["cpu_s"] / b["cpu_s"] for r, b in zip(runs, base_runs, strict=True))
        ratio, q1, q3 = statistics.median(paired), paired[len(paired) // 4], paired[(3 * len(paired)) // 4]
        over_sdk = statistics.median(r["cpu_s"] / b["cpu_s"] for r, b in zip(runs, sdk_runs, strict=True))
        observer_us = statistics.median(r["observer_s"] / args.calls for r in runs) * 1e6
        other = statistics.median(r["other_threads_s"] for r in runs) - base_other
        row = {"setup": name, "wall_s": statistics.median(r["wall_s"] for r in runs),
               "cpu_s": statistics.median(r["cpu_s"] for r in runs), "cpu_ratio_paired": ratio,
               "cpu_ratio_q1": q1, "cpu_ratio_q3": q3, "cpu_ratio_over_sdk": over_sdk,
               "observer_us_per_call": observer_us,
               "observer_share": observer_us / 1e6 / base_cpu_call,
               "other_threads_share": other / args.calls / base_cpu_call,
               "observed": min(r["observed"] for r in runs), "ok": min(r["ok"] for r in runs)}
        table.append(row)
        print(f"{name:34} {row['wall_s']:6.2f} {row['cpu_s']:6.2f} {ratio:10.3f} ({q1:.3f}-{q3:.3f})"
              f"{over_sdk:16.3f}{observer_us:17.1f} {row['observer_share']:6.1%} {row['other_threads_share']:+13.1%}")
    imports = import_times(args.import_repeat)
    print(f"import protokit: {imports['found'] * 1e3:.1f} ms with opentelemetry found (observer registered), "
          f"{imports['not found'] * 1e3:.1f} ms without (medians of {args.import_repeat})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "telemetry", "args": vars(args) | {"json": str(args.json)},
                                         "rows": table, "import_s": imports}, indent=1))


if __name__ == "__main__":
    main()
