"""The cost of watching: the runner benchmark's CPU with OpenTelemetry tracing on and off.

Run: ``.venv/bin/python bench/bench_telemetry.py [--calls 2000] [--concurrency 32] [--latency 0.05]
[--repeat 5] [--json out.json]``

The workload and the measurement are bench_runner.py's (its "protokit Runner (cache off)" client:
2,000 calls through the sandbox in its own process, each client in a fresh interpreter timing
the calls alone), run in four set-ups, interleaved over ``--repeat`` rounds:

- **no opentelemetry**: the package blocked at import, as if not installed; no observer is registered.
- **API, no SDK**: ``opentelemetry-api`` installed and imported but no provider configured (the
  default install: the anthropic SDK depends on the API); protokit's observer sees each call and
  finds nothing recording.
- **SDK: tracing**: a ``TracerProvider`` with a ``BatchSpanProcessor`` (the production set-up) whose
  exporter drops the batches (an OTLP exporter's encoding and sending are not counted).
- **SDK: tracing + metrics**: the same, and a ``MeterProvider`` aggregating both histograms in memory.

CPU ratios are against "no opentelemetry" in the same round (the median of the per-round ratios,
with the quartiles), so drift between rounds on a shared machine cancels out. A second part times
protokit's observer alone on one call record, in this process: with nothing configured, tracing,
and tracing with metrics.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sandbox import running_sandbox  # noqa: E402
from bench_runner import CLIENTS, run_client  # noqa: E402

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
SDK = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
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
_reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[_reader]))
"""
# Counted in the client's CPU: the batch processor's last export.
EPILOGUE_SDK = """
provider.force_flush()
"""

SETUPS: dict[str, str] = {
    "no opentelemetry": BLOCK + RUNNER,
    "API, no SDK": API_ONLY + RUNNER,
    "SDK: tracing (batch processor)": SDK + RUNNER + EPILOGUE_SDK,
    "SDK: tracing + metrics": SDK + METRICS + RUNNER + EPILOGUE_SDK,
}


def observer_cost(n: int) -> dict[str, float]:
    """Microseconds protokit's observer takes for one call record: nothing configured, then the SDK."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    import protokit as pk
    from protokit.runner.observe import CallRecord
    from protokit.runner.telemetry import observe_call

    model = pk.model("openai:gpt-4.1-mini", base_url="http://127.0.0.1:8000/v1", api_key="k", temperature=0)
    request = model.request("Classify support ticket #1: my order 1 never arrived")
    response = pk.Response(text="shipping", model=model.id, latency_s=0.05, input_tokens=20, output_tokens=2,
                           cost_usd=1e-5, provider_model="gpt-4.1-mini-2025-04-14", finish_reason="stop")
    now = time.time_ns()
    record = CallRecord(model, request, response, None, cached=False, attempts=1, start_ns=now, end_ns=now + 50_000_000)

    def per_call() -> float:
        start = time.process_time()
        for _ in range(n):
            observe_call(record)
        return (time.process_time() - start) / n * 1e6

    off = statistics.median(per_call() for _ in range(3))

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)
    traced = statistics.median(per_call() for _ in range(3))
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    on = statistics.median(per_call() for _ in range(3))
    provider.shutdown()
    return {"off_us": off, "trace_us": traced, "on_us": on}


def main() -> None:
    """Run every set-up ``--repeat`` times, interleaved, print the table and the observer's own cost."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    per_model = args.calls // 4
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SETUPS}
    with running_sandbox(latency=args.latency) as base, tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name, code in SETUPS.items():
                result = run_client(code, base, args.concurrency, per_model, tmp)
                if result is None:
                    raise SystemExit(f"{name}: opentelemetry-sdk is not installed (pip install -e '.[dev]')")
                rows[name].append(result)
    base_runs = rows["no opentelemetry"]
    base_wall = statistics.median(r["wall_s"] for r in rows["no opentelemetry"])
    print(f"{args.calls} calls, concurrency {args.concurrency}, latency {args.latency}s, {args.repeat} rounds")
    print(f"{'set-up':32} {'wall s':>16} {'cpu s':>16} {'cpu/call':>9} {'cpu x, paired by round':>24}")
    table = []
    for name, runs in rows.items():
        walls, cpus = [r["wall_s"] for r in runs], [r["cpu_s"] for r in runs]
        w, c = statistics.median(walls), statistics.median(cpus)
        # Each round's figure over the same round's baseline: drift between rounds cancels out.
        paired = sorted(r["cpu_s"] / b["cpu_s"] for r, b in zip(runs, base_runs, strict=True))
        ratio = statistics.median(paired)
        q1, q3 = paired[len(paired) // 4], paired[(3 * len(paired)) // 4]
        table.append({"setup": name, "wall_s": w, "wall_min": min(walls), "wall_max": max(walls), "cpu_s": c,
                      "cpu_min": min(cpus), "cpu_max": max(cpus), "cpu_ratio_paired": ratio,
                      "cpu_ratio_q1": q1, "cpu_ratio_q3": q3, "wall_ratio": w / base_wall,
                      "ok": min(r["ok"] for r in runs)})
        print(f"{name:32} {w:6.2f} ({min(walls):.2f}-{max(walls):.2f}) {c:6.2f} ({min(cpus):.2f}-{max(cpus):.2f}) "
              f"{c / args.calls * 1e3:6.3f} ms {ratio:8.3f} ({q1:.3f}-{q3:.3f})")
    cost = observer_cost(20_000)
    print(f"observer alone, per call: {cost['off_us']:.2f} µs with nothing configured, "
          f"{cost['trace_us']:.1f} µs tracing, {cost['on_us']:.1f} µs tracing + metrics")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "telemetry", "args": vars(args) | {"json": str(args.json)},
                                         "rows": table, "observer": cost}, indent=1))


if __name__ == "__main__":
    main()
