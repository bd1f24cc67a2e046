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
- **SDK, batch**: a ``TracerProvider`` with a ``BatchSpanProcessor`` (the production set-up) whose
  exporter drops the batches, and a ``MeterProvider`` aggregating both histograms in memory.
- **SDK, simple + in-memory**: a ``SimpleSpanProcessor`` into an ``InMemorySpanExporter`` (every span
  kept), and the same metrics.

Ratios are against "no opentelemetry" measured in the same run. A second part times protokit's
observer alone on one call record, in this process, per call: with nothing configured and with
the SDK as in "SDK, batch".
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
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

class Dropped(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

exporter = {exporter}()
provider = TracerProvider()
provider.add_span_processor({processor}(exporter))
trace.set_tracer_provider(provider)
_reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[_reader]))
"""
# Counted in the client's CPU: the batch processor's last export, and a check that every call made a span.
EPILOGUE_SDK = """
provider.force_flush()
if isinstance(exporter, InMemorySpanExporter):
    assert len([s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]) == len(WORK)
"""

SETUPS: dict[str, str] = {
    "no opentelemetry": BLOCK + RUNNER,
    "API, no SDK": API_ONLY + RUNNER,
    "SDK, batch (spans dropped) + metrics": SDK.format(processor="BatchSpanProcessor", exporter="Dropped")
    + RUNNER + EPILOGUE_SDK,
    "SDK, simple + in-memory + metrics": SDK.format(processor="SimpleSpanProcessor", exporter="InMemorySpanExporter")
    + RUNNER + EPILOGUE_SDK,
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
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    on = statistics.median(per_call() for _ in range(3))
    provider.shutdown()
    return {"off_us": off, "on_us": on}


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
    base_cpu = statistics.median(r["cpu_s"] for r in rows["no opentelemetry"])
    base_wall = statistics.median(r["wall_s"] for r in rows["no opentelemetry"])
    print(f"{args.calls} calls, concurrency {args.concurrency}, latency {args.latency}s, {args.repeat} rounds")
    print(f"{'set-up':40} {'wall s':>16} {'x':>6} {'cpu s':>16} {'x':>6} {'cpu/call':>9}")
    table = []
    for name, runs in rows.items():
        walls, cpus = [r["wall_s"] for r in runs], [r["cpu_s"] for r in runs]
        w, c = statistics.median(walls), statistics.median(cpus)
        table.append({"setup": name, "wall_s": w, "wall_min": min(walls), "wall_max": max(walls), "cpu_s": c,
                      "cpu_min": min(cpus), "cpu_max": max(cpus), "cpu_ratio": c / base_cpu,
                      "wall_ratio": w / base_wall, "ok": min(r["ok"] for r in runs)})
        print(f"{name:40} {w:6.2f} ({min(walls):.2f}-{max(walls):.2f}) {w / base_wall:5.3f} "
              f"{c:6.2f} ({min(cpus):.2f}-{max(cpus):.2f}) {c / base_cpu:5.3f} {c / args.calls * 1e3:6.3f} ms")
    cost = observer_cost(20_000)
    print(f"observer alone, per call: {cost['off_us']:.2f} µs with nothing configured, "
          f"{cost['on_us']:.1f} µs with the SDK (batch processor, metrics)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "telemetry", "args": vars(args) | {"json": str(args.json)},
                                         "rows": table, "observer": cost}, indent=1))


if __name__ == "__main__":
    main()
