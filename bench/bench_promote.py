"""Time ``protokit promote`` against one papermill execution of the same notebook, and the generated tests.

Run: ``.venv/bin/python bench/bench_promote.py [REPEATS]``. A typical notebook
(parameters, pandas, 12 model calls through the sandbox, a helper, a %time line,
three pk.output values, an explore cell) is recorded once and run once more with
other parameters (``protokit run``); then, with the network gone and the cache in
replay mode, the script times: one plain papermill execution; ``promote`` (the
gate's fresh-kernel run, code generation, the differential check in a subprocess,
the writes); and ``pytest`` on the generated tests. Targets: promote at most 3x one
papermill execution, the generated tests under 2 s (pytest's own figure).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("n_cases: int = 12  # tickets to classify\nlabels: list[str] = ['bug', 'billing', 'other']  # allowed labels\n"
     "threshold: float = 0.5  # pass mark", ["parameters"]),
    ("import protokit as pk\nimport pandas as pd\n\nPROMPT = 'Classify as one of {labels}: ticket {i}'\n"
     "m = pk.model('openai:echo')", []),
    ("def label_of(text: str, labels: list[str]) -> str:\n    # the echo model repeats the prompt: pick by length\n"
     "    return labels[len(text) % len(labels)]", []),
    ("answers = [m.complete(PROMPT.format(labels=', '.join(labels), i=i)).text for i in range(n_cases)]\n"
     "rows = pd.DataFrame({'answer': answers, 'label': [label_of(a, labels) for a in answers]})\nrows.head()", []),
    ("%time accuracy = (rows['label'] == 'bug').mean()\nprint(f'accuracy {accuracy:.3f} on {len(rows)} tickets')", []),
    ("pk.output('accuracy', float(accuracy))\npk.output('passed', bool(accuracy >= threshold))\n"
     "pk.output('by_label', rows['label'].value_counts().sort_index());", []),
    ("rows.describe()", ["explore"]),
]


def _notebook(path: Path) -> None:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [new_markdown_cell("# Ticket triage\n\nClassify support tickets; the bench's typical notebook.")]
    nb.cells += [new_code_cell(src, metadata={"tags": tags} if tags else {}) for src, tags in CELLS]
    nbformat.write(nb, path)


def _papermill_once(nb: Path, out: Path) -> float:
    import papermill

    start = time.perf_counter()
    papermill.execute_notebook(str(nb), str(out), kernel_name="python3", progress_bar=False, cwd=str(nb.parent))
    return time.perf_counter() - start


def main(repeats: int = 3) -> None:
    """Record the notebook, then time papermill, promote and the generated tests; print the figures."""
    from protokit.notebook import run_notebook
    from protokit.promote import promote
    from protokit.sandbox import Sandbox

    with tempfile.TemporaryDirectory(prefix="bench-promote-") as tmp:
        root = Path(tmp)
        nb = root / "triage.ipynb"
        _notebook(nb)
        os.environ["PROTOKIT_CACHE"] = str(root / "cache.db")
        with Sandbox(port=0) as sb:
            os.environ.update({"OPENAI_BASE_URL": sb.openai_base_url, "OPENAI_API_KEY": "sandbox-key",
                               "PROTOKIT_CACHE_MODE": "auto"})
            run_notebook(nb, {}, output_path=nb)
            run_notebook(nb, {"n_cases": 6, "threshold": 0.9})
        for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
            os.environ.pop(var, None)
        os.environ["PROTOKIT_CACHE_MODE"] = "replay"

        papermill_s = [_papermill_once(nb, root / "pm.ipynb") for _ in range(repeats)]
        promote_s, parts = [], []
        for i in range(repeats):
            start = time.perf_counter()
            result = promote(nb, "triage", root / f"out{i}")
            promote_s.append(time.perf_counter() - start)
            parts.append(result.seconds)
        tests_wall, tests_pytest = [], []
        env = {k: v for k, v in os.environ.items() if k not in ("PROTOKIT_CACHE", "PROTOKIT_CACHE_MODE")}
        for i in range(repeats):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                                  cwd=root / f"out{i}", env=env, capture_output=True, text=True, check=True)
            tests_wall.append(time.perf_counter() - start)
            found = re.search(r"passed in ([0-9.]+)s", done.stdout)
            tests_pytest.append(float(found.group(1)) if found else float("nan"))

    pm, pr = statistics.median(papermill_s), statistics.median(promote_s)
    gate = statistics.median(p["validate"] for p in parts)
    diff = statistics.median(p["differential"] for p in parts)
    tests = statistics.median(tests_pytest)
    print(f"notebook: {len(CELLS)} code cells, 12 model calls (replayed), 2 golden cases; median of {repeats}")
    print(f"papermill execution     {pm:6.2f} s")
    print(f"promote                 {pr:6.2f} s  = {pr / pm:.2f}x papermill (target <= 3x)"
          f"  [gate {gate:.2f} s, differential subprocess {diff:.2f} s]")
    print(f"generated tests         {tests:6.2f} s  pytest's figure (target < 2 s); "
          f"{statistics.median(tests_wall):.2f} s wall with interpreter start")
    ok = pr <= 3 * pm and tests < 2
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
