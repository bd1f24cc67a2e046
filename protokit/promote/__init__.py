"""``protokit promote``: a validated notebook becomes a parameterized, tested module.

>>> from protokit.promote import promote
>>> result = promote("triage.ipynb", "triage", "src/")
>>> result.files   # src/triage.py, src/tests/test_triage.py, src/tests/cassettes/triage.json
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit.errors import CacheError, PromoteError

__all__ = ["GateError", "PromoteResult", "promote"]

_HASH_LINE = re.compile(r"^# protokit-hash: (sha256:[0-9a-f]{64})$", re.MULTILINE)
_EMPTY_CASSETTE = json.dumps({"protokit_cassette": 1, "entries": []}, indent=1, sort_keys=True) + "\n"


class GateError(PromoteError):
    """The notebook did not pass validation; ``report`` holds every finding."""

    def __init__(self, report: Any) -> None:
        first = report.errors[0]
        where = "the notebook" if first.cell_index is None else f"cell {first.cell_index}"
        n = len(report.errors)
        super().__init__(f"{report.path} did not pass the promotion gate: {n} error{'s' * (n != 1)}, the first "
                         f"in {where}: {first.message}")
        self.report = report


@dataclass
class PromoteResult:
    """What promote wrote (or, with check, found): paths, the test cases and their outputs, notes."""

    name: str
    module_path: Path
    test_path: Path
    cassette_path: Path
    notebook_hash: str
    files: list[Path] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    cases: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def _check_name(name: str) -> None:
    import keyword

    if not name.isidentifier() or keyword.iskeyword(name):
        raise PromoteError(f"--name {name!r} must be a Python identifier (letters, digits, _), e.g. triage")
    if name in sys.stdlib_module_names or name in ("protokit", "pytest", "test", "tests", "conftest"):
        raise PromoteError(f"--name {name!r} would shadow the module of the same name; pick another")


def _stored_hash(module_path: Path) -> str | None:
    try:
        head = module_path.read_text(encoding="utf-8")[:2000]
    except OSError:
        return None
    found = _HASH_LINE.search(head)
    return found.group(1) if found else None


def _case_id(params: dict[str, Any], taken: set[str]) -> str:
    text = ",".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in params.items()) or "defaults"
    text = re.sub(r"[^A-Za-z0-9_=.,+-]+", "_", text)[:48]
    candidate, n = text, 2
    while candidate in taken:
        candidate, n = f"{text}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _title(nb: Any) -> tuple[str, str]:
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown" and str(cell.source).strip():
            lines = str(cell.source).strip().splitlines()
            title = lines[0].lstrip("#").strip()
            rest = "\n".join(lines[1:]).strip()
            return title, rest
    return "", ""


def _write_all(files: dict[Path, str]) -> list[Path]:
    """Write every file to a temp sibling first, then rename them all; unchanged files are left alone."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            if path.exists() and path.read_text(encoding="utf-8") == text:
                continue  # idempotent: same input, same bytes, and not even a new mtime
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [path for _, path in staged]


def promote(path: str | os.PathLike[str], name: str, out_dir: str | os.PathLike[str] = ".",
            check: bool = False) -> PromoteResult:
    """Promote a notebook to ``OUT/NAME.py`` with golden tests, after the validation gate.

    Parameters
    ----------
    path
        The notebook (.ipynb), executed and saved.
    name
        The module name: ``OUT/NAME.py``, ``OUT/tests/test_NAME.py``, ``OUT/tests/cassettes/NAME.json``.
    out_dir
        Where to write; created if needed.
    check
        Write nothing; raise PromoteError when the notebook changed since the module was generated.

    Returns
    -------
    PromoteResult
        The files written (only those whose content changed), the test cases and the default outputs.

    Raises
    ------
    GateError
        The notebook failed validation (``.report`` has every finding); nothing is written.
    PromoteError
        Code generation or the differential check failed; nothing is written.
    """
    from protokit.notebook.nbfile import content_hash, is_exported, read_notebook

    _check_name(name)
    out = Path(out_dir)
    result = PromoteResult(name, out / f"{name}.py", out / "tests" / f"test_{name}.py",
                           out / "tests" / "cassettes" / f"{name}.json", "")
    if check:
        nb = read_notebook(path)
        result.notebook_hash = content_hash(nb)
        stored = _stored_hash(result.module_path)
        if stored is None:
            raise PromoteError(f"no generated module at {result.module_path}; run promote without --check first")
        if stored != result.notebook_hash:
            raise PromoteError(f"{path} changed since {result.module_path} was generated (hash {stored[7:19]} "
                               f"is now {result.notebook_hash[7:19]}); run `protokit promote` again")
        return result

    from protokit.notebook.gate import validate

    start = time.perf_counter()
    report = validate(path)
    result.seconds["validate"] = time.perf_counter() - start
    if not report.ok or report.execution is None or report.nb is None:
        raise GateError(report)
    result.notebook_hash = report.notebook_hash
    result.notes = [f.message for f in report.findings if f.severity == "note" and f.check == "parameters"]
    nb, run = report.nb, report.execution
    cases = _cases(path, report, [c for c, src in zip(run.source_cells(), nb.cells, strict=True)
                                  if is_exported(src)], result.notes)
    files = _generate(path, name, out, report, cases, result)
    result.files = _write_all(files)
    result.changed = bool(result.files)
    result.seconds["total"] = time.perf_counter() - start
    return result


def _cases(path: str | os.PathLike[str], report: Any, exported: list[Any], notes: list[str]) -> list[Any]:
    from protokit.notebook.execute import load_runs
    from protokit.notebook.outputs import outputs_in, printed_in
    from protokit.notebook.params import injected_values
    from protokit.promote.codegen import Case

    taken: set[str] = set()
    defaults = {p.name: p.default for p in report.parameters}
    # A notebook saved from `protokit run -o NB.ipynb` ran with papermill's injected values, not the defaults.
    stored = {k: v for k, v in injected_values(report.nb).items() if k in defaults and v != defaults[k]}
    cases = [Case(_case_id(stored, taken), stored, outputs_in(exported), printed_in(exported),
                  list(report.execution.cache_keys))]
    seen = {json.dumps({**defaults, **stored}, sort_keys=True, default=list)}
    stale = 0
    for record in load_runs(path):
        if record.get("notebook_hash") != report.notebook_hash:
            stale += 1
            continue
        params = record.get("parameters") or {}
        full = json.dumps({**defaults, **params}, sort_keys=True, default=list)
        if full in seen or not set(params) <= set(defaults):
            continue
        seen.add(full)
        cases.append(Case(_case_id(params, taken), params, record.get("outputs") or {},
                          record.get("stdout", ""), list(record.get("cache_keys", []))))
    if stale:
        notes.append(f"{stale} recorded run{'s' * (stale != 1)} of an earlier version of the notebook "
                     "left out; repeat them with `protokit run` to test those parameters too")
    return cases


def _cassette(path: str | os.PathLike[str], keys: list[str]) -> str:
    import io

    from protokit.cache import Cache
    from protokit.notebook.execute import cache_path_for

    wanted = sorted(set(keys))
    if not wanted:
        return _EMPTY_CASSETTE
    cache_path = cache_path_for(path)
    try:
        with Cache(cache_path, "replay", create=False) as cache:
            buffer = io.StringIO()
            n = cache.export(buffer, wanted)
    except CacheError as exc:
        raise PromoteError(f"cannot export the recorded model calls: {exc}") from None
    if n != len(wanted):
        raise PromoteError(f"{len(wanted) - n} of the {len(wanted)} model calls the notebook made are missing "
                           f"from {cache_path}; run the notebook again (`protokit run`) to record them")
    return buffer.getvalue()


def _generate(path: str | os.PathLike[str], name: str, out: Path, report: Any, cases: list[Any],
              result: PromoteResult) -> dict[Path, str]:
    from protokit.promote.codegen import format_source, render_module, render_tests, split_cells
    from protokit.promote.differential import check_module

    layout = split_cells(report.sources, report.parameters)
    if any(c.outputs for c in cases):
        layout.has_outputs = True
    for case in cases:
        case.outputs = (case.outputs or {}) if layout.has_outputs else None
    source = Path(os.path.relpath(Path(path).absolute(), out.absolute())).as_posix()
    title, description = _title(report.nb)
    module_src = format_source(render_module(
        name=name, source=source, notebook_hash=report.notebook_hash, title=title, description=description,
        parameters=report.parameters, layout=layout), f"{name}.py")
    try:
        compile(module_src, f"{name}.py", "exec")
    except SyntaxError as exc:
        raise PromoteError(f"the generated module does not compile (line {exc.lineno}: {exc.msg}); "
                           "please report this with the notebook") from None
    keys = [k for case in cases for k in case.cache_keys]
    cassette_text = _cassette(path, keys)
    _, seconds = check_module(module_src, name, cassette_text, cases, Path(path).absolute().parent)
    result.seconds["differential"] = seconds
    tests_src = format_source(render_tests(name=name, source=source, cases=cases), f"test_{name}.py")
    result.cases = cases
    result.outputs = cases[0].outputs
    return {result.module_path: module_src, result.test_path: tests_src, result.cassette_path: cassette_text}
