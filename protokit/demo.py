"""``protokit demo``: the whole path on the quickstart notebook, offline by default.

Steps: start the sandbox with three *simulated* models, execute the quickstart
notebook with papermill (every call recorded in the cache), validate it (a fresh
kernel replays the calls and must reproduce the outputs), promote it to a module
with golden tests, and run those tests with no network and no keys.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit._env import environ
from protokit.errors import ConfigError, NotebookError, ProtokitError
from protokit.models.env import KEY_VARS, PROVIDER_ENV, PROVIDER_VARS, pointed_at

__all__ = ["DemoResult", "examples_dir", "run_demo"]

SIMULATED = ["openai:simulated-large", "openai:simulated-medium", "openai:simulated-small"]
LIVE_OPENAI = ["openai:gpt-4.1-mini", "openai:gpt-4.1-nano"]
LIVE_ANTHROPIC = ["anthropic:claude-haiku-4-5"]


def examples_dir() -> Path:
    """The example notebooks: packaged in a wheel as protokit/notebooks, else the source tree's notebooks/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "notebooks", here.parent / "notebooks"):
        if (candidate / "quickstart.ipynb").is_file():
            return candidate
    raise ConfigError("the example notebooks are missing from this installation; reinstall protokit")


@dataclass
class DemoResult:
    """What the demo did, for its closing summary."""

    out_dir: Path
    models: list[str]
    simulated: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: Any = None
    report: str = ""
    files: list[Path] = field(default_factory=list)
    tests_passed: int = 0
    tests_failed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _live_models() -> tuple[list[str], str]:
    if os.environ.get(PROVIDER_ENV["openai"].key):
        return LIVE_OPENAI, LIVE_OPENAI[0]
    if os.environ.get(PROVIDER_ENV["anthropic"].key):
        return LIVE_ANTHROPIC, LIVE_ANTHROPIC[0]
    raise ConfigError(f"--live needs {' or '.join(KEY_VARS)} in the environment; "
                      "without keys run `protokit demo` (simulated models, offline)")


def _prepare(out: Path) -> Path:
    """Copy the quickstart notebook and its data into ``out``; returns the notebook's path there."""
    src = examples_dir()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "quickstart.ipynb", out / "quickstart.ipynb")
    shutil.copytree(src / "data", out / "data", dirs_exist_ok=True)
    # A demo starts from a clean record: no cache, no earlier runs or generated files.
    for stale in ("protokit.db", "protokit.db-wal", "protokit.db-shm"):
        (out / stale).unlink(missing_ok=True)
    shutil.rmtree(out / ".protokit", ignore_errors=True)
    return out / "quickstart.ipynb"


def _pytest(tests: Path, env: dict[str, str]) -> tuple[int, int, str]:
    """Run the generated tests in a clean subprocess; (passed, failed, output)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True, text=True, env=env, cwd=tests.parent.parent,
    )
    import re

    text = proc.stdout + proc.stderr
    passed = sum(int(n) for n in re.findall(r"(\d+) passed", text))
    failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|error)", text))
    if proc.returncode != 0 and failed == 0:
        failed = 1
    return passed, failed, text


def run_demo(out_dir: str | os.PathLike[str] = "protokit-demo", *, live: bool = False,
             name: str = "triage", say: Callable[[str], None] = print) -> DemoResult:
    """Run the whole path and return what happened; ``say`` receives progress lines."""
    from protokit.notebook import validate
    from protokit.notebook.execute import run_notebook
    from protokit.promote import check_module_name, promote

    out = Path(out_dir).absolute()
    params: dict[str, Any] = {}
    check_module_name(name)  # checked before anything is written, like the keys
    if live:
        models, judge = _live_models()
        params = {"models": models, "judge_model": judge}
    try:
        nb_path = _prepare(out)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ConfigError(f"cannot write the demo into {out}: {(exc.strerror or str(exc)).lower()}{where}; "
                          "pick a writable folder with --out") from None
    data = out / "data"
    env: dict[str, str] = {"PROTOKIT_CACHE": str(out / "protokit.db"), "PROTOKIT_CACHE_MODE": "auto"}
    sandbox = None
    if not live:
        from protokit.sandbox import Sandbox

        models = SIMULATED
        sandbox = Sandbox(port=0, script=data / "simulated_models.yaml").start()
        env.update(pointed_at({"openai": sandbox.openai_base_url}, key="sandbox"),
                   PROTOKIT_PRICES=str(data / "simulated_prices.json"))
        say(f"sandbox: {sandbox.url} serving SIMULATED models {', '.join(m.split(':')[1] for m in models)}")
    result = DemoResult(out_dir=out, models=models, simulated=not live)
    try:
        with environ(env):
            t = _step(say, "1/4 run      quickstart.ipynb with papermill (40 tickets x 3 models + judge), "
                           "then with 2 more parameter sets")
            run_notebook(nb_path, params, output_path=nb_path)
            # Every successful run becomes a golden case of the promoted module; these replay from the cache.
            # One that fails (a live model below the notebook's pk.expect gate) is only left out.
            for extra in ({"n_cases": 20}, {"model": models[-1]}):
                try:
                    run_notebook(nb_path, {**params, **extra})
                except NotebookError as exc:
                    say(f"    left out of the golden cases: {extra}: {exc}")
            result.seconds["run"] = _done(say, t)
            result.outputs = _declared_outputs(nb_path)

            t = _step(say, "2/4 validate re-execute in a fresh kernel, replaying calls from the cache")
            report = validate(nb_path)
            result.seconds["validate"] = _done(say, t)
            if not report.ok:
                for finding in report.findings:
                    say(f"    {finding}")
                raise ProtokitError("the quickstart notebook did not pass validation (findings above)")

            t = _step(say, f"3/4 promote  to {out.name}/{name}.py with golden tests and a cassette")
            promoted = promote(nb_path, name, out)
            result.files = list(promoted.files)
            result.seconds["promote"] = _done(say, t)
    finally:
        if sandbox is not None:
            sandbox.stop()
    t = _step(say, "4/4 test     the generated module: replayed offline, no keys")
    # The generated tests must pass with no network and no keys: strip both.
    clean = {k: v for k, v in os.environ.items()
             if k not in (*PROVIDER_VARS, "PROTOKIT_CACHE", "PROTOKIT_CACHE_MODE", "PROTOKIT_PRICES")}
    result.tests_passed, result.tests_failed, text = _pytest(promoted.test_path, clean)
    result.seconds["test"] = _done(say, t)
    if result.tests_failed:
        say(text[-3000:])
        raise ProtokitError(f"the generated tests failed; see {promoted.test_path}")
    _read_comparison(result)
    return result


def _read_comparison(result: DemoResult) -> None:
    """The latest stored comparison run in the demo's cache, for the summary table."""
    from protokit.comparisons import list_runs, load_run

    runs = list_runs(result.out_dir / "protokit.db", limit=1)
    if runs:
        cmp = load_run(runs[0]["id"], path=result.out_dir / "protokit.db")
        result.summary = cmp.summary
        result.report = cmp.report("accuracy")


def _declared_outputs(nb_path: Path) -> dict[str, Any]:
    """The ``pk.output`` values stored in an executed notebook."""
    import nbformat

    from protokit.notebook.outputs import decode_value, outputs_in

    nb = nbformat.read(nb_path, as_version=4)
    return {k: decode_value(v) for k, v in outputs_in(nb.cells).items()}


def _step(say: Callable[[str], None], text: str) -> float:
    say(f"→ {text} ...")
    return time.perf_counter()


def _done(say: Callable[[str], None], started: float) -> float:
    seconds = time.perf_counter() - started
    say(f"  done in {seconds:.1f} s")
    return seconds


def format_summary(result: DemoResult) -> str:
    """The demo's closing summary: models, scores, cost, chosen model, files, tests."""
    lines = ["", "== protokit demo: summary =="]
    label = " (SIMULATED by the local sandbox)" if result.simulated else ""
    lines.append(f"models compared{label}:")
    if result.summary is not None:
        s = result.summary
        for _, row in s.iterrows():
            acc = row.get("score_accuracy")
            judge = row.get("score_judge")
            lines.append(
                f"  {row['model']:28} accuracy {acc:5.3f}  judge {judge:5.3f}  "
                f"p50 {row['latency_p50']:.2f}s  ${row['cost_per_case'] * 1000:.4f} per 1k cases"
                if acc is not None else f"  {row['model']}")
    if result.report:
        lines.append("verdict: " + result.report.strip().replace("\n", "\n         "))
    chosen = result.outputs.get("chosen_model")
    if chosen:
        lines.append(f"chosen model: {chosen} (accuracy {result.outputs.get('accuracy')})")
    lines.append("files written:")
    lines.extend(f"  {p.relative_to(result.out_dir.parent) if p.is_relative_to(result.out_dir.parent) else p}"
                 for p in result.files)
    lines.append(f"generated tests: {result.tests_passed} passed, {result.tests_failed} failed "
                 "(replayed from the cassette, offline, no keys)")
    total = sum(result.seconds.values())
    lines.append(f"took {total:.1f} s (" + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()) + ")")
    return "\n".join(lines)
