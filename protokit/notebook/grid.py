"""``protokit run NB --grid grid.yaml -j N``: one notebook over a parameter grid, N kernels at once.

A grid file is a YAML (or JSON) mapping of parameter to list of values, run as every
combination, or a list of parameter mappings, run as given. Each run is an ordinary
``protokit run`` (papermill, typed parameters, the cache, recorded for promote), written to
``OUT/NAME--<parameters>.ipynb``; a failing run keeps its ``.failed.ipynb`` beside it and the
others go on. The result is one row per run: its parameters, status and ``pk.output`` values.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit.errors import ConfigError, ProtokitError

__all__ = ["GridRun", "format_grid", "grid_output_name", "read_grid", "run_grid"]


@dataclass
class GridRun:
    """One run of the grid: its parameters, ``ok`` or ``failed``, where it was written, what it declared."""

    parameters: dict[str, Any]
    status: str = "pending"
    output: Path | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def read_grid(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The parameter sets of a grid file, in order; ConfigError (one line) for a file that is not a grid."""
    import yaml

    where = Path(path)
    try:
        data = yaml.safe_load(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the grid file {where}: {(exc.strerror or str(exc)).lower()}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"the grid file {where} is not valid YAML{at}; give a mapping of parameter to a list "
                          "of values, or a list of parameter mappings") from None
    hint = "give a mapping of parameter to a list of values (n_cases: [10, 40]) or a list of parameter mappings"
    if isinstance(data, Mapping) and data:
        names = [str(k) for k in data]
        for name, values in data.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"the grid file {where}: {name!r} needs a non-empty list of values; {hint}")
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*data.values())]
    if isinstance(data, list) and data and all(isinstance(d, Mapping) for d in data):
        return [{str(k): v for k, v in d.items()} for d in data]
    raise ConfigError(f"the grid file {where} holds no parameter sets; {hint}")


def grid_output_name(stem: str, parameters: Mapping[str, Any]) -> str:
    """``NAME--n_cases=10,model=openai_x.ipynb``: the run's parameters in its file name, safe on any disk.

    A name that had to be cut, or whose characters were replaced, gets a short hash of the exact
    parameters, so two runs never share a file.
    """
    text = ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v, sort_keys=True)}"
                    for k, v in parameters.items()) or "defaults"
    safe = re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", text)
    if safe != text or len(safe) > 80:
        digest = hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode()).hexdigest()[:8]
        safe = f"{safe[:80]}-{digest}"
    return f"{stem}--{safe}.ipynb"


def run_grid(notebook: str | os.PathLike[str], grid: Sequence[Mapping[str, Any]], *,
             fixed: Mapping[str, Any] | None = None, jobs: int = 1, out_dir: str | os.PathLike[str] | None = None,
             cache_mode: str | None = None) -> list[GridRun]:
    """Run ``notebook`` once per parameter set in ``grid`` (each merged over ``fixed``), ``jobs`` at a time."""
    from protokit.notebook.execute import notebook_parameters, refuse_secret_parameters, run_notebook
    from protokit.notebook.nbfile import read_notebook
    from protokit.notebook.outputs import outputs_in
    from protokit.notebook.params import bind_parameters

    nb_path = Path(notebook)
    if jobs < 1:
        raise ConfigError(f"-j must be 1 or more, got {jobs}")
    clash = sorted(set(fixed or {}) & {k for g in grid for k in g})
    if clash:
        raise ConfigError(f"{clash[0]!r} is given both on the command line and in the grid; give it in one place")
    runs = [GridRun(parameters={**(fixed or {}), **g}) for g in grid]
    _, declared = notebook_parameters(read_notebook(nb_path))
    for run in runs:  # every set is checked before the first kernel starts: a typo fails fast
        refuse_secret_parameters(run.parameters)
        bind_parameters(declared, run.parameters)
    folder = Path(out_dir) if out_dir is not None else nb_path.absolute().parent / f"{nb_path.stem}-grid"
    folder.mkdir(parents=True, exist_ok=True)

    def one(run: GridRun) -> GridRun:
        start = time.perf_counter()
        target = folder / grid_output_name(nb_path.stem, run.parameters)
        try:
            run.output = run_notebook(nb_path, run.parameters, output_path=target, cache_mode=cache_mode)
            run.outputs = outputs_in(read_notebook(run.output).cells)
            run.status = "ok"
        except ProtokitError as exc:  # a failing run is a row of the table; the others go on
            run.status, run.error = "failed", str(exc)
            kept = target.with_name(f"{target.stem}.failed{target.suffix}")
            run.output = kept if kept.exists() else None
        run.seconds = time.perf_counter() - start
        return run

    # Threads, not processes: each run already has its own kernel process; these only wait on it.
    with ThreadPoolExecutor(max_workers=min(jobs, len(runs)) or 1, thread_name_prefix="protokit-grid") as pool:
        return list(pool.map(one, runs))


def _cell(value: Any, width: int = 28) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


def format_grid(runs: Sequence[GridRun]) -> str:
    """The runs as a text table: parameters, status, then each pk.output value, one row per run."""
    params = list(dict.fromkeys(k for r in runs for k in r.parameters))
    outputs = list(dict.fromkeys(k for r in runs for k in r.outputs))
    header = [*params, "status", *outputs]
    rows = [[_cell(r.parameters.get(k, "")) for k in params] + [r.status]
            + [_cell(r.outputs[k]) if k in r.outputs else "" for k in outputs] for r in runs]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    for r in runs:
        if r.error:
            lines.append(f"failed {_cell(r.parameters, 60)}: {r.error}")
    return "\n".join(lines)
