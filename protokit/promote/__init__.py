"""``protokit promote``: a validated notebook becomes a parameterized, tested module.

>>> from protokit.promote import promote
>>> result = promote("triage.ipynb", "triage", "src/")
>>> result.files   # src/triage.py, src/tests/test_triage.py, src/tests/cassettes/triage.json
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
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


def check_module_name(name: str) -> None:
    """PromoteError unless ``name`` can name the promoted module (an identifier that shadows nothing)."""
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


def _existing_parent(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _check_out(out: Path, targets: list[Path]) -> None:
    """Refuse an --out folder that cannot take the files, before the (slow) validation runs."""
    if out.exists() and not out.is_dir():
        raise PromoteError(f"--out {out} is a file; give a folder")
    for folder in dict.fromkeys(_existing_parent(t.parent) for t in targets):
        if not folder.is_dir():
            raise PromoteError(f"cannot create --out {out}: {folder} is a file, not a folder; pick another --out")
        try:  # os.access is no help as root or on a read-only disk: try it
            fd, probe = tempfile.mkstemp(prefix=".protokit-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise PromoteError(f"cannot write to {folder}: {(exc.strerror or str(exc)).lower()}; pick a writable "
                               "folder with --out") from None


def _check_cache_writable(path: str | os.PathLike[str]) -> None:
    """Promote learns which recorded calls the notebook makes from what its kernel writes to the cache."""
    from protokit.cache import Cache
    from protokit.notebook.execute import cache_path_for

    cache_path = cache_path_for(path)
    if not cache_path.is_file():
        return  # the gate reports a notebook whose calls were never recorded
    try:
        with Cache(cache_path, "replay", create=False) as cache:
            readonly = cache.readonly
    except CacheError:
        return  # the gate's fresh run reports an unusable cache, with its fix
    if readonly:
        raise PromoteError(f"cache {cache_path} is read-only, and promote records in it which calls the notebook "
                           "makes; copy it somewhere writable and point PROTOKIT_CACHE at the copy")


def _write_all(files: dict[Path, str]) -> list[Path]:
    """Write every file to a temp sibling first, then rename them all; unchanged files are left alone.

    A failure (a folder turned read-only, a full disk) is a PromoteError, and the temp files
    and the folders made for them are removed: nothing is half-written.
    """
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []
    path = Path()
    try:
        for path, text in files.items():
            if path.exists() and path.read_text(encoding="utf-8") == text:
                continue  # idempotent: same input, same bytes, and not even a new mtime
            missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            made.extend(reversed(missing))
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            staged.append((tmp, path))
            tmp.write_text(text, encoding="utf-8")
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise PromoteError(f"cannot write {path}: {(exc.strerror or str(exc)).lower()}; pick a writable folder "
                           "with --out") from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
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

    check_module_name(name)
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

    _check_out(out, [result.module_path, result.test_path, result.cassette_path])
    _check_cache_writable(path)
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
