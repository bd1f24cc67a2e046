"""The differential check: the generated module, run in a fresh process with the cassette replayed,
must return and print what the notebook did for every parameter set.

The child process is this module run as ``python -m protokit.promote.differential``:
it loads the cassette into an empty replay cache (exactly as the golden tests
do), imports the module by path, calls ``run(**params)`` per case and writes
the encoded results as JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protokit.errors import PromoteError
from protokit.notebook.outputs import encode_value
from protokit.notebook.sanitize import sanitize_text
from protokit.promote.codegen import DROP_ENV, Case
from protokit.testing import Golden

__all__ = ["check_module"]


def check_module(module_source: str, name: str, cassette_text: str, cases: Sequence[Case], golden: Golden,
                 workdir: Path, timeout: float = 600.0) -> tuple[list[dict[str, Any]], float]:
    """Run the module on every case in a subprocess, in ``workdir`` (the notebook's folder, as its
    kernel was); PromoteError listing every difference. Returns the child's results and its seconds.

    The outputs are checked as the generated tests will check them (``golden``: tolerances and
    gates); what run() printed must also match what the notebook printed, the stricter proof.
    """
    with tempfile.TemporaryDirectory(prefix="protokit-promote-") as tmp:
        root = Path(tmp)
        (root / f"{name}.py").write_text(module_source, encoding="utf-8")
        (root / "cassette.json").write_text(cassette_text, encoding="utf-8")
        (root / "cases.json").write_text(json.dumps([c.params for c in cases]), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
        env.update({"PROTOKIT_CACHE": str(root / "cache.db"), "PROTOKIT_CACHE_MODE": "replay"})
        start = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "protokit.promote.differential", str(root / f"{name}.py"),
                 str(root / "cassette.json"), str(root / "cases.json"), str(root / "results.json")],
                cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PromoteError(f"the generated module did not finish within {timeout:.0f} s") from None
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise PromoteError(f"the generated module could not be imported or run:\n{tail}")
        results: list[dict[str, Any]] = json.loads((root / "results.json").read_text(encoding="utf-8"))
    problems: list[str] = []
    for case, data, got in zip(cases, golden.cases, results, strict=True):
        if "error" in got:
            problems.append(f"[{case.id}] run() raised {got['error']}")
            continue
        if case.outputs is None or got["outputs"] is None:
            if case.outputs != got["outputs"]:
                problems.append(f"[{case.id}] the notebook returned {case.outputs!r}, run() {got['outputs']!r}")
        else:
            problems += [f"[{case.id}] {d}" for d in golden.problems(data, got["outputs"], got["stdout"])]
        if sanitize_text(case.stdout) != sanitize_text(got["stdout"]):
            problems.append(f"[{case.id}] printed output differs: notebook {_short(case.stdout)!r}, "
                            f"run() {_short(got['stdout'])!r}")
    if problems:
        raise PromoteError("the generated module does not match the notebook (differential check):\n  "
                           + "\n  ".join(problems))
    return results, seconds


def _short(text: str) -> str:
    return text if len(text) <= 120 else text[:119] + "…"


def _child(module_path: str, cassette: str, cases_path: str, out_path: str) -> None:
    import importlib.util

    import protokit as pk

    pk.cache.configure(mode="replay").load(pk.cache.read_cassette(cassette))
    spec = importlib.util.spec_from_file_location(Path(module_path).stem, module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = []
    for params in json.loads(Path(cases_path).read_text(encoding="utf-8")):
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                value = module.run(**params)
            results.append({"outputs": None if value is None else encode_value(value, "outputs"),
                            "stdout": buffer.getvalue()})
        except Exception as exc:
            results.append({"error": f"{type(exc).__name__}: {exc}", "stdout": buffer.getvalue()})
    Path(out_path).write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    _child(*sys.argv[1:5])
