"""Run every protokit benchmark, print each one's table and write all figures as JSON.

Run: ``.venv/bin/python bench/run_all.py [--quick] [--out bench/out/results.json]``

Each benchmark is a script in this folder that measures its own baseline in the
same run (ratios, medians over repetitions, with spread): see bench/RESULTS.md
for the figures, the machine and the date. ``--quick`` runs fewer repetitions.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (name, goal it checks, arguments; "{json}" is replaced by a per-benchmark JSON path)
SUITE: list[tuple[str, str, list[str], list[str]]] = [
    ("runner", "runner vs AsyncOpenAI+gather: wall <= 1.10x, CPU <= 1.5x; vs LiteLLM and a thread pool",
     ["bench_runner.py", "--json", "{json}"], ["--repeat", "1"]),
    ("cache", "replaying 10,000 cached responses < 2 s", ["bench_cache.py"], []),
    ("compare", "compare adds < 10% to 2,000 calls; 20,000 rows < 500 MB",
     ["bench_compare.py", "--json", "{json}"], ["--repeat", "1"]),
    ("promote", "promote <= 3x one papermill execution; generated tests < 2 s", ["bench_promote.py"], []),
    ("widget", "UI traffic linear in results; < 1 ms Python per result",
     ["bench_widget.py", "--json", "{json}"], ["--cases", "50,200"]),
    ("import", "import protokit beside import pandas", ["bench_import.py", "--json", "{json}"], ["--repeat", "3"]),
    ("sandbox", "sandbox serves >= 1,000 requests/s", ["bench_sandbox.py"], []),
    ("telemetry", "runner CPU with OpenTelemetry tracing on <= 1.05x off; off: nothing measurable",
     ["bench_telemetry.py", "--json", "{json}"], ["--repeat", "1"]),
    ("sweep", "300,000-row replay sweep <= 1.5 GB peak; summary < 5 s",
     ["bench_sweep.py", "--json", "{json}"], ["--cases", "5000"]),
]


def main() -> None:
    """Run the suite in order and write one JSON file with every benchmark's output."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (for a smoke run)")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "results.json")
    ap.add_argument("only", nargs="*", help="run only these benchmarks (names as in the table)")
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {platform.python_version()}, "
                          f"{subprocess.getoutput('nproc')} cores", "benchmarks": {}}
    for name, goal, argv, quick in SUITE:
        if args.only and name not in args.only:
            continue
        json_path = args.out.parent / f"{name}.json"
        cmd = [sys.executable, str(HERE / argv[0]), *[a.replace("{json}", str(json_path)) for a in argv[1:]]]
        if args.quick:
            cmd += quick
        print(f"\n=== {name}: {goal}\n$ {' '.join(Path(c).name if c == sys.executable else c for c in cmd)}",
              flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        print(proc.stdout.rstrip())
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
        entry = {"goal": goal, "command": " ".join(cmd[1:]), "seconds": time.perf_counter() - start,
                 "returncode": proc.returncode, "stdout": proc.stdout}
        if json_path.exists():
            entry["figures"] = json.loads(json_path.read_text())
        results["benchmarks"][name] = entry
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
