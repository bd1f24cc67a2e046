"""What pk.compare adds on top of the bare Runner, and the peak memory of a 20,000-row comparison.

Run: ``.venv/bin/python bench/bench_compare.py [--cases 1000] [--concurrency 32] [--latency 0.05]
[--repeat 3] [--rows 20000] [--json out.json]``

Overhead: the same 2,000 calls (``--cases`` x 2 models, OpenAI and Anthropic
dialects) through the sandbox (its own process, ``--latency`` seconds per reply),
once through ``Runner.run`` (requests built, calls made) and once through
``pk.compare`` (the same, plus case loading, rows, exact and contains scoring,
the run store, the DataFrame and the summary with its bootstrap intervals).
Both sides run alternately in this process, with the cache off and then on
(a fresh file per round, so every call is a miss and is recorded); the figure
is the median over ``--repeat`` rounds.

Memory: a subprocess compares ``--rows`` rows against an async Python model
(no network, so the figure is compare's own memory) with the cache on (rows
stored), builds the summary, and reports its peak RSS (``VmHWM``, Linux).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _sandbox import running_sandbox  # noqa: E402

MEMORY_SCRIPT = """
import json, sys, tempfile, time
def hwm_mb():
    # VmHWM is this process's own peak RSS; ru_maxrss would carry the parent's over from fork.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
import pandas, protokit as pk, protokit.comparisons
base = hwm_mb()
rows = int(sys.argv[1])
pk.cache.configure(path=tempfile.mkdtemp() + "/mem.db", mode="auto")
async def answer(prompt):
    return prompt.upper()
cases = [{"ticket": f"ticket number {i} about a refund for order {i * 7}", "expected": f"ORDER {i * 7}"}
         for i in range(rows // 2)]
models = [pk.model(answer, name="upper"), pk.model(answer, name="upper2")]
t = time.perf_counter()
cmp = pk.compare(models, "{ticket}", cases, [pk.scorers.exact("expected"), pk.scorers.contains("expected")],
                 concurrency=64)
summary = cmp.summary
seconds = time.perf_counter() - t
print(json.dumps({"rows": len(cmp.results), "peak_rss_mb": hwm_mb(), "after_import_mb": base,
                  "seconds": seconds}))
"""


def _cases(n: int) -> list[dict[str, str]]:
    return [{"ticket": f"customer {i} asks about invoice {i * 13}", "expected": f"invoice {i * 13}"}
            for i in range(n)]


def _models(base: str) -> list[Any]:
    import protokit as pk

    return [pk.model("openai:sim-a", base_url=base + "/v1", api_key="sandbox"),
            pk.model("anthropic:sim-b", base_url=base, api_key="sandbox")]


def _bare(models: list[Any], cases: list[dict[str, str]], concurrency: int) -> float:
    from protokit.runner import Call, Runner

    t = time.perf_counter()
    calls = [Call(m, m.request(c["ticket"]), tag=i) for i, c in enumerate(cases) for m in models]
    outcomes = Runner(concurrency=concurrency).run_sync(calls)
    elapsed = time.perf_counter() - t
    assert all(o.ok for o in outcomes), "bare runner: some calls failed"
    return elapsed


def _compare(models: list[Any], cases: list[dict[str, str]], concurrency: int) -> float:
    import protokit as pk

    t = time.perf_counter()
    cmp = pk.compare(models, "{ticket}", cases, [pk.scorers.exact("expected"), pk.scorers.contains("expected")],
                     concurrency=concurrency)
    _ = cmp.summary
    elapsed = time.perf_counter() - t
    assert cmp.results["error"].isna().all(), "compare: some calls failed"
    return elapsed


def overhead(args: argparse.Namespace, base: str) -> dict[str, Any]:
    """Median wall time of bare Runner vs compare over the same calls, cache off and on."""
    import warnings

    import protokit as pk

    warnings.filterwarnings("ignore", message="no price known")  # sim models have no price: fine here
    cases = _cases(args.cases)
    models = _models(base)
    out: dict[str, Any] = {}
    for mode in ("off", "on"):
        bare, comp = [], []
        _bare(models, cases[:50], args.concurrency)  # warm the clients and the background loop
        for _ in range(args.repeat):
            for side, times in (("bare", bare), ("compare", comp)):
                if mode == "off":
                    pk.cache.configure(path=Path(tempfile.mkdtemp()) / "off.db", mode="off")
                else:
                    pk.cache.configure(path=Path(tempfile.mkdtemp()) / "on.db", mode="auto")
                fn = _bare if side == "bare" else _compare
                times.append(fn(models, cases, args.concurrency))
        b, c = statistics.median(bare), statistics.median(comp)
        out[f"cache_{mode}"] = {"calls": len(cases) * len(models), "bare_runner_s": b, "compare_s": c,
                                "overhead_pct": 100 * (c - b) / b, "bare_all": bare, "compare_all": comp}
    return out


def memory(rows: int) -> dict[str, Any]:
    """Peak RSS of a subprocess that builds a ``rows``-row comparison and its summary."""
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(rows)], capture_output=True, text=True,
                          check=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases (x 2 models = calls)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the memory run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    with running_sandbox(latency=args.latency) as base:
        figures = overhead(args, base)
    figures["memory"] = memory(args.rows)
    for mode in ("cache_off", "cache_on"):
        f = figures[mode]
        print(f"{mode}: {f['calls']} calls at concurrency {args.concurrency}, latency {args.latency}s: "
              f"bare Runner {f['bare_runner_s']:.2f}s, compare {f['compare_s']:.2f}s, "
              f"overhead {f['overhead_pct']:+.1f}% (median of {args.repeat})")
    m = figures["memory"]
    print(f"memory: {m['rows']} rows, peak RSS {m['peak_rss_mb']:.0f} MB "
          f"({m['after_import_mb']:.0f} MB after imports), {m['seconds']:.1f}s")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
