"""``protokit drift``: re-run a promoted module's golden cases against the live models.

The generated tests replay the cassette forever, so they cannot see a provider change a
model under the same name. Drift runs every golden case (or a sample) twice: once replayed
from the cassette, which gives what the recording measured (latency, cost, calls), and once
live with the cache off. It reports, case by case, the outputs that changed beyond the
notebook's tolerances (with a text diff), the ``pk.expect`` gates on the live outputs,
numeric outputs live against recorded with a paired interval, and latency and cost against
the recording. ``--model OLD=NEW`` tries a replacement model without editing the module.
"""

from __future__ import annotations

import contextlib
import difflib
import html
import importlib.util
import io
import json
import math
import os
import random
import statistics
import tempfile
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from protokit import cache as cache_mod
from protokit.comparisons import paired_difference
from protokit.errors import ConfigError, safe_text
from protokit.models.registry import substituted
from protokit.notebook.expect import check_expectations
from protokit.notebook.outputs import encode_value
from protokit.runner import CallRecord, observing
from protokit.testing import Golden, read_golden

__all__ = ["CaseDrift", "DriftReport", "Figures", "drift", "parse_replacements"]


@dataclass
class Figures:
    """What one run of a case took: model calls, their median latency, and their cost (None when unpriced)."""

    calls: int = 0
    latency_s: float | None = None
    cost_usd: float | None = 0.0

    @classmethod
    def of(cls, records: Sequence[CallRecord]) -> Figures:
        answered = [r.response for r in records if r.response is not None]
        costs = [r.cost_usd for r in answered]
        return cls(calls=len(records),
                   latency_s=statistics.median(r.latency_s for r in answered) if answered else None,
                   cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None))


@dataclass
class CaseDrift:
    """One golden case, recorded against live."""

    id: str
    params: dict[str, Any]
    changed: list[str] = field(default_factory=list)  # outputs that moved beyond their tolerance
    diffs: dict[str, list[str]] = field(default_factory=dict)  # output name -> diff lines
    gates: list[str] = field(default_factory=list)  # pk.expect gates the live outputs fail
    numbers: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (recorded, live)
    error: str | None = None  # run() raised, live
    recorded: Figures = field(default_factory=Figures)
    live: Figures = field(default_factory=Figures)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.gates or self.error)


@dataclass
class DriftReport:
    """Every case's drift, the paired intervals of the numeric outputs, and the verdict."""

    module: str
    threshold: float
    replacements: dict[str, str]
    cases: list[CaseDrift]
    total_cases: int
    intervals: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def changed_share(self) -> float:
        """The share of the cases run whose outputs changed (or that failed live)."""
        return sum(bool(c.changed or c.error) for c in self.cases) / max(len(self.cases), 1)

    @property
    def failed_gates(self) -> list[str]:
        return [f"[{c.id}] {g}" for c in self.cases for g in c.gates]

    @property
    def ok(self) -> bool:
        """No gate fails, and no more cases changed than the threshold allows."""
        return not self.failed_gates and self.changed_share <= self.threshold

    def verdict(self) -> str:
        """One plain sentence: what changed and whether that passes."""
        changed = sum(bool(c.changed or c.error) for c in self.cases)
        what = (f"{changed} of {len(self.cases)} case{'s' * (len(self.cases) != 1)} changed "
                f"({self.changed_share:.0%}; threshold {self.threshold:.0%})")
        gates = len(self.failed_gates)
        gate_text = f"; {gates} pk.expect gate{'s' * (gates != 1)} failed" if gates else ""
        return f"{'OK' if self.ok else 'DRIFT'}: {what}{gate_text}."

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``protokit drift --json``)."""
        return {"module": self.module, "ok": self.ok, "verdict": self.verdict(), "threshold": self.threshold,
                "changed_share": self.changed_share, "replacements": self.replacements,
                "cases_run": len(self.cases), "cases_total": self.total_cases, "intervals": self.intervals,
                "failed_gates": self.failed_gates,
                "cases": [{**asdict(c), "ok": c.ok, "numbers": {k: list(v) for k, v in c.numbers.items()}}
                          for c in self.cases]}

    def html(self) -> str:
        """The report as one self-contained HTML page; every text from a model or notebook is escaped."""
        e = html.escape
        rows = []
        for c in self.cases:
            detail = [e(p) for p in c.changed] + [f"gate failed: {e(g)}" for g in c.gates]
            if c.error:
                detail.insert(0, f"run() failed live: {e(c.error)}")
            for name, diff in c.diffs.items():
                detail.append(f"diff of {e(name)}:<pre>{e(chr(10).join(diff))}</pre>")
            rows.append(f"<tr class='{'ok' if c.ok else 'changed'}'><td>{e(c.id)}</td>"
                        f"<td>{'unchanged' if c.ok else 'CHANGED'}</td>"
                        f"<td>{e(_fig(c.recorded.latency_s, 's'))} &rarr; {e(_fig(c.live.latency_s, 's'))}</td>"
                        f"<td>{e(_fig(c.recorded.cost_usd, '$'))} &rarr; {e(_fig(c.live.cost_usd, '$'))}</td>"
                        f"<td>{'<br>'.join(detail)}</td></tr>")
        intervals = "".join(
            f"<tr><td>{e(name)}</td><td>{iv['recorded']:.4g}</td><td>{iv['live']:.4g}</td>"
            f"<td>{iv['diff']:+.4g} ({iv['low']:+.4g} to {iv['high']:+.4g})</td><td>{int(iv['n'])}</td></tr>"
            for name, iv in self.intervals.items())
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>drift of {e(self.module)}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
            "tr.changed td{background:#fff3f0}pre{margin:0;white-space:pre-wrap}</style></head><body>"
            f"<h1>drift of {e(self.module)}</h1><p><strong>{e(self.verdict())}</strong></p>"
            "<table><tr><th>case</th><th>outputs</th><th>p50 latency per call</th><th>cost</th>"
            "<th>what changed</th></tr>"
            f"{''.join(rows)}</table>"
            + ("<h2>Numbers, live against recorded</h2><table><tr><th>output</th><th>recorded</th><th>live</th>"
               f"<th>change (95% interval)</th><th>cases</th></tr>{intervals}</table>" if intervals else "")
            + "</body></html>\n")

    def text(self) -> str:
        """The report for a terminal."""
        lines = [f"drift of {self.module}: {len(self.cases)} of {self.total_cases} golden cases re-run live"
                 + (f", models replaced: {_pairs(self.replacements)}" if self.replacements else "")]
        for c in self.cases:
            lines.append(f"  [{c.id}] {'unchanged' if c.ok else 'CHANGED'}  "
                         f"p50 latency {_fig(c.recorded.latency_s, 's')} -> {_fig(c.live.latency_s, 's')}  "
                         f"cost {_fig(c.recorded.cost_usd, '$')} -> {_fig(c.live.cost_usd, '$')}  "
                         f"calls {c.recorded.calls} -> {c.live.calls}")
            if c.error:
                lines.append(f"      run() failed live: {c.error}")
            lines += [f"      {p}" for p in c.changed]
            for name, diff in c.diffs.items():
                lines.append(f"      diff of {name}:")
                lines += [f"        {d}" for d in diff]
            lines += [f"      gate failed: {g}" for g in c.gates]
        for name, iv in self.intervals.items():
            lines.append(f"  {name}: recorded {iv['recorded']:.4g}, live {iv['live']:.4g}, change "
                         f"{iv['diff']:+.4g} ({iv['low']:+.4g} to {iv['high']:+.4g}, n={int(iv['n'])})")
        lines.append(self.verdict())
        return "\n".join(lines)


def _pairs(mapping: Mapping[str, str]) -> str:
    return ", ".join(f"{k} -> {v}" for k, v in mapping.items())


def _fig(value: float | None, unit: str) -> str:
    if value is None:
        return "unpriced" if unit == "$" else "?"
    return f"${value:.4f}" if unit == "$" else f"{value:.2f}s"


def parse_replacements(values: Sequence[str]) -> dict[str, str]:
    """``--model`` values: ``NEW`` (every model becomes NEW) or ``OLD=NEW``; ConfigError for anything else."""
    found: dict[str, str] = {}
    for value in values:
        old, sep, new = value.rpartition("=") if "=" in value else ("*", "", value)
        if (sep and ":" not in old) or ":" not in new:
            raise ConfigError(f"--model {value!r} should be provider:name, or OLD=NEW with both provider:name "
                              "(e.g. openai:gpt-4.1-mini=anthropic:claude-haiku-4-5)")
        found[old] = new
    return found


def _load_module(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"_protokit_drift_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise ConfigError(f"{path} has no run() function; give a module written by `protokit promote`")
    return module


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _restoring(cache: tuple[Path, str] | None) -> Iterator[None]:
    try:
        yield
    finally:
        cache_mod.reset()
        if cache is not None:
            cache_mod.configure(path=cache[0], mode=cache[1])


def _run(module: types.ModuleType, params: Mapping[str, Any], workdir: Path, cache_path: Path, mode: str,
         entries: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any] | None, str | None, list[CallRecord]]:
    """run(**params) in ``workdir`` through a cache of its own (``entries`` loaded into it when given):
    (encoded outputs, the error if it raised, the calls it made)."""
    records: list[CallRecord] = []
    cache = cache_mod.configure(path=cache_path, mode=mode)
    try:
        if entries is not None:
            cache.load(entries)
        with _in(workdir), observing(records.append), contextlib.redirect_stdout(io.StringIO()):
            result = module.run(**params)
        encoded = None if result is None else {k: encode_value(v, k) for k, v in result.items()}
        return encoded, None, records
    except Exception as exc:  # a live failure is a finding, reported with the case
        return None, f"{type(exc).__name__}: {safe_text(str(exc))}", records
    finally:
        cache_mod.reset()


def _numbers(value: Any, name: str) -> Iterator[tuple[str, float]]:
    """The numeric leaves of an encoded output: ``accuracy``, ``per_model[openai:x]``, ``scores[2]``."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            yield name, float(value)
    elif isinstance(value, dict) and "$pk" not in value:
        for k, v in value.items():
            yield from _numbers(v, f"{name}[{k}]")
    elif isinstance(value, list) and len(value) <= 50:
        for i, v in enumerate(value):
            yield from _numbers(v, f"{name}[{i}]")


def _diff(name: str, recorded: Any, live: Any) -> list[str]:
    """A short unified diff of one output, recorded against live (text as it is, anything else as JSON)."""
    def lines(v: Any) -> list[str]:
        text = v if isinstance(v, str) else json.dumps(v, indent=1, sort_keys=True, default=str)
        return text.splitlines() or [""]

    diff = list(difflib.unified_diff(lines(recorded), lines(live), "recorded", "live", n=1, lineterm=""))
    return [safe_text(d)[:200] for d in diff[:40]]


def _compare(golden: Golden, case: Mapping[str, Any], live: dict[str, Any], result: CaseDrift) -> None:
    expected = case.get("outputs") or {}
    for problem in golden.problems(case, live, ""):
        if problem.startswith("pk.expect("):
            continue  # gates are judged on their own below
        result.changed.append(problem)
    for name in expected:
        if isinstance(expected[name], (int, float)) or name not in live:
            continue  # a number's change is already one line: expected, got
        if any(p.startswith((f"{name}:", f"{name}[")) for p in result.changed):
            result.diffs[name] = _diff(name, expected[name], live[name])
    result.gates = check_expectations(golden.expectations, live)
    recorded_numbers = dict(n for k, v in expected.items() for n in _numbers(v, k))
    for name, value in (n for k, v in live.items() for n in _numbers(v, k)):
        if name in recorded_numbers:
            result.numbers[name] = (recorded_numbers[name], value)


def drift(module_path: str | os.PathLike[str], *, replacements: Mapping[str, str] | None = None,
          cases: int | None = None, threshold: float = 0.0, seed: int = 0) -> DriftReport:
    """Re-run a promoted module's golden cases live and compare them with the recording.

    Parameters
    ----------
    module_path
        ``DIR/NAME.py`` written by ``protokit promote`` (its golden data and cassette are read
        from ``DIR/tests/cassettes/``).
    replacements
        ``{"*": "provider:name"}`` or ``{OLD: NEW}``: models to swap in for the live run.
    cases
        Run a random sample of this many cases (``seed`` picks it), not all.
    threshold
        The share of cases (0-1) that may change before the report is not ``ok``.
    """
    path = Path(module_path)
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError(f"{path} is not a promoted module; give DIR/NAME.py written by `protokit promote`")
    if not 0 <= threshold <= 1:
        raise ConfigError(f"--threshold is a share of cases between 0 and 1, got {threshold}")
    folder = path.resolve().parent
    golden_path = folder / "tests" / "cassettes" / f"{path.stem}.golden.json"
    cassette_path = folder / "tests" / "cassettes" / f"{path.stem}.json"
    for needed in (golden_path, cassette_path):
        if not needed.is_file():
            raise ConfigError(f"{needed} is missing: drift needs the golden data and cassette that "
                              f"`protokit promote` writes; promote {path.name} again")
    try:
        golden = read_golden(golden_path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if golden.compare != "outputs":
        raise ConfigError(f"{path.name} declares no pk.output values: drift compares outputs; declare them "
                          "in the notebook with pk.output(name, value) and promote again")
    chosen = list(golden.cases)
    if cases is not None:
        if cases < 1:
            raise ConfigError(f"--cases must be 1 or more, got {cases}")
        if cases < len(chosen):
            keep = set(random.Random(seed).sample(range(len(chosen)), cases))
            chosen = [c for i, c in enumerate(chosen) if i in keep]
    workdir = (folder / golden.workdir).resolve()
    module = _load_module(path)
    entries = cache_mod.read_cassette(cassette_path)
    report = DriftReport(module=path.name, threshold=threshold, replacements=dict(replacements or {}),
                         cases=[], total_cases=len(golden.cases))
    # Each run gets a cache of its own; the caller's (a notebook's) is put back afterwards.
    previous = cache_mod.get_cache() if cache_mod.is_configured() else None
    restore = (previous.path, previous.mode) if previous is not None else None
    with tempfile.TemporaryDirectory(prefix="protokit-drift-") as tmp, _restoring(restore):
        for case in chosen:
            result = CaseDrift(id=str(case.get("id")), params=dict(case.get("params") or {}))
            # The recording's own figures: the case replayed from the cassette, with the models it recorded.
            _, _, recorded = _run(module, result.params, workdir, Path(tmp) / "replay.db", "replay", entries)
            result.recorded = Figures.of(recorded)
            with substituted(replacements or {}):
                live, result.error, calls = _run(module, result.params, workdir, Path(tmp) / "live.db", "off")
            result.live = Figures.of(calls)
            failed = [r.error for r in calls if r.error is not None]
            if failed and result.error:  # say why: run()'s own error is often only the consequence
                result.error += (f" ({len(failed)} of {len(calls)} calls failed, the first with "
                                 f"{type(failed[0]).__name__}: {safe_text(str(failed[0]))})")
            if live is not None:
                _compare(golden, case, live, result)
            report.cases.append(result)
    _intervals(report, seed)
    return report


def _intervals(report: DriftReport, seed: int) -> None:
    """Live against recorded for every numeric output all cases share: mean change and its interval."""
    names = set.intersection(*(set(c.numbers) for c in report.cases)) if report.cases else set()
    for name in sorted(names):
        recorded = [c.numbers[name][0] for c in report.cases]
        live = [c.numbers[name][1] for c in report.cases]
        r = paired_difference(live, recorded, seed=seed)
        report.intervals[name] = {"n": r.n, "recorded": r.mean_b, "live": r.mean_a, "diff": r.diff,
                                  "low": r.low, "high": r.high, "p_value": r.p_value}

