"""``import protokit`` time beside ``import pandas``, each in a fresh interpreter.

Run: ``.venv/bin/python bench/bench_import.py [--repeat 7] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

SNIPPET = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def measure(mod: str, repeat: int) -> list[float]:
    """Seconds to import ``mod`` in ``repeat`` fresh interpreters."""
    return [float(subprocess.run([sys.executable, "-c", SNIPPET.format(mod=mod)], capture_output=True,
                                 text=True, check=True).stdout) for _ in range(repeat)]


def main() -> None:
    """Print the median import times and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    base = None
    for mod in ("pandas", "protokit"):
        times = measure(mod, args.repeat)
        med = statistics.median(times)
        base = base or med
        rows.append({"module": mod, "median_s": med, "min_s": min(times), "max_s": max(times),
                     "ratio_to_pandas": med / base})
        print(f"import {mod:9} {med * 1000:7.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}) "
              f"{med / base:5.2f}x pandas")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "import", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
