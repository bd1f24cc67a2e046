"""Executing notebooks with papermill, model calls through the cache, and a record of each run.

Every execution gets a fresh ``PROTOKIT_RUN_ID`` in the kernel's environment;
the cache writes each key the kernel uses under that id, and the parent reads
them back with ``Cache.keys_for_run``. ``protokit run`` stores them (with the
parameters) in the output notebook's ``metadata.protokit`` and appends the run
to ``.protokit/runs.json`` beside the notebook, which promote reads to write one
golden test per recorded parameter set.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from protokit._files import atomic_write_text
from protokit.errors import CacheError, CellError, ConfigError, NotebookError
from protokit.models.env import KEY_VARS, PROVIDER_VARS
from protokit.notebook.nbfile import (
    INJECTED,
    cell_label,
    content_hash,
    is_exported,
    read_notebook,
    tags,
    write_notebook,
)
from protokit.notebook.outputs import outputs_in, printed_in
from protokit.notebook.params import bind_parameters, find_parameters_cell, injected_values, parse_parameters
from protokit.secrets import find_secrets, is_credential_name

__all__ = ["Execution", "cache_path_for", "execute", "load_runs", "notebook_parameters", "refuse_secret_parameters",
           "run_notebook"]

RUNS_DIR = ".protokit"
RUNS_FILE = "runs.json"


@dataclass
class Execution:
    """An executed notebook, the cache keys its kernel used, and where parameters were injected."""

    nb: NotebookNode
    run_id: str
    cache_keys: list[str]
    injected_index: int | None
    seconds: float
    inserted: bool = False
    exited_at: int | None = None  # the source cell that called sys.exit(0) (allowed by exit_ok), if any

    def original_index(self, index: int) -> int:
        """The source notebook's index of an executed cell (a newly injected cell shifts them)."""
        if self.inserted and self.injected_index is not None and index > self.injected_index:
            return index - 1
        return index

    def source_cells(self) -> list[Any]:
        """The executed cells aligned with the source notebook's (the cell papermill added removed)."""
        if not self.inserted:
            return list(self.nb.cells)
        return [c for i, c in enumerate(self.nb.cells) if i != self.injected_index]


def cache_path_for(nb_path: str | os.PathLike[str]) -> Path:
    """The cache a notebook's kernel uses: $PROTOKIT_CACHE, else protokit.db beside the notebook.

    The kernel runs in the notebook's directory, as in Jupyter, so a relative
    default resolves there; an explicit PROTOKIT_CACHE is made absolute here.
    """
    env = os.environ.get("PROTOKIT_CACHE")
    if env:
        return Path(env).expanduser().absolute()
    return Path(nb_path).absolute().parent / "protokit.db"


def _manager_class(env: Mapping[str, str], cwd: Path) -> type:
    """A kernel manager that starts kernels with exactly ``env`` in ``cwd``.

    Setting both at launch, rather than through os.environ and papermill's ``cwd=``
    (a process-wide chdir), keeps concurrent executions in one process apart.
    """
    from jupyter_client.manager import AsyncKernelManager

    class _EnvKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw["env"] = dict(env)
            kw["cwd"] = str(cwd)
            # The kernel's own stderr (transport warnings) is noise here; cell output arrives over ZMQ.
            kw.setdefault("stdout", subprocess.DEVNULL)
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super().start_kernel(**kw)

    return _EnvKernelManager


@contextlib.contextmanager
def _quiet_papermill() -> Iterator[None]:
    # papermill logs warnings (e.g. a missing parameters cell) through the root handler: keep them out.
    log = logging.getLogger("papermill")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def execute(path: str | os.PathLike[str], nb: NotebookNode, parameters: Mapping[str, Any] | None = None, *,
            cache_mode: str | None = None, offline: bool = False, timeout: float = 600.0,
            keep_failed: str | os.PathLike[str] | None = None, exit_ok: bool = False) -> Execution:
    """Run a notebook top to bottom in a fresh kernel (papermill); NotebookError names a failing cell.

    With ``keep_failed``, a run that fails leaves the executed notebook there (papermill's, with
    its error marker and the traceback in the failing cell), so the failure can be read in Jupyter.
    papermill lets ``sys.exit(0)``, ``sys.exit()`` and ``raise SystemExit`` pass and runs no cell
    after them: with ``exit_ok`` (``protokit run``) so does this; without (the gate) it is an error,
    since a promoted module must not exit the interpreter that imports it.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb_path = Path(path).absolute()
    run_id = uuid.uuid4().hex
    cache_path = cache_path_for(nb_path)
    env = dict(os.environ)
    env.update({"PROTOKIT_RUN_ID": run_id, "PROTOKIT_CACHE": str(cache_path)})
    if cache_mode:
        env["PROTOKIT_CACHE_MODE"] = cache_mode
    if offline:
        for var in PROVIDER_VARS:  # keys the promoted module's tests must never need
            env.pop(var, None)
    kernel = (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
    current: list[int | None] = [None]
    params = dict(parameters or {})
    found = find_parameters_cell(nb)
    # papermill replaces an injected-parameters cell the notebook already has, else inserts one.
    existing = next((i for i, c in enumerate(nb.cells) if INJECTED in tags(c)), None)
    inserted = bool(params) and existing is None
    injected = None if not params else (existing if existing is not None else (found[0] + 1 if found else 0))
    start = time.perf_counter()

    def fail(index: int | None, detail: str) -> CellError:
        if index is None:
            return CellError(detail, cell_index=None, label="the notebook", path=str(path))
        if injected is not None and index == injected:
            return CellError(detail, cell_index=found[0] if found else None, label="the injected parameters",
                             path=str(path))
        original = index - 1 if inserted and injected is not None and index > injected else index
        return CellError(detail, cell_index=original, label=cell_label(original, nb.cells[original]), path=str(path))

    try:
        with _quiet_papermill():
            executed = papermill.execute_notebook(
                copy.deepcopy(nb), os.fspath(keep_failed) if keep_failed is not None else None,
                parameters=params or None, kernel_name=kernel, progress_bar=False,
                log_output=False, request_save_on_cell_execute=False,
                execution_timeout=timeout, kernel_manager_class=_manager_class(env, nb_path.parent),
                on_cell_start=lambda cell, cell_index: current.__setitem__(0, cell_index))
    except PapermillExecutionError as exc:
        raise fail(exc.cell_index, _raised(exc.ename, exc.evalue) + _kept(keep_failed)) from None
    except Exception as exc:  # dead kernel, timeout, kernel that cannot start
        detail = _first(str(exc)) or "no message"
        raise fail(current[0], f"did not finish: {type(exc).__name__}: {detail}{_kept(keep_failed)}") from None
    # papermill raised for every other error output; what is left is a clean exit (sys.exit(0)).
    exited_at: int | None = None
    for i, cell in enumerate(executed.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            if out.get("ename") == "SystemExit" and str(out.get("evalue", "")) in _CLEAN_EXITS and exit_ok:
                exited_at = i
                break
            if out.get("ename") == "SystemExit":
                code = str(out.get("evalue", "")) or "with no code"
                raise fail(i, f"exits (SystemExit {code}): papermill and `protokit run` stop there without an "
                              "error, but a promoted module must not exit the interpreter that imports it; raise "
                              f"an exception instead{_kept(keep_failed)}")
            raise fail(i, _raised(str(out.get("ename")), out.get("evalue", "")) + _kept(keep_failed))
        if exited_at is not None:
            break
    run = Execution(executed, run_id, _keys_for_run(cache_path, run_id), injected,
                    time.perf_counter() - start, inserted)
    if exited_at is not None:
        run.exited_at = run.original_index(exited_at)
    return run


# papermill's rule (execute.raise_for_execution_errors): SystemExit with no code or code 0 is no error.
_CLEAN_EXITS = ("", "0")


def _raised(ename: str, evalue: Any) -> str:
    """``raised ValueError: message``; an exception raised with no message says so, not an empty colon."""
    message = _first(str(evalue or ""))
    return f"raised {ename}: {message}" if message else f"raised {ename} (with no message)"


def _kept(keep_failed: str | os.PathLike[str] | None) -> str:
    if keep_failed is None or not Path(keep_failed).exists():
        return ""
    return f"; the executed notebook, with the traceback, is {os.fspath(keep_failed)}"


def _first(text: str) -> str:
    from protokit.errors import safe_text

    text = safe_text(str(text))  # before it is shortened: half a key is no longer key-shaped
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 200 else line[:199] + "…"


def _keys_for_run(cache_path: Path, run_id: str) -> list[str]:
    if not cache_path.exists():
        return []
    from protokit.cache import Cache

    try:
        with Cache(cache_path, "replay", create=False) as cache:
            return cache.keys_for_run(run_id)
    except CacheError:
        return []


def notebook_parameters(nb: NotebookNode) -> tuple[int | None, list[Any]]:
    """(index of the parameters cell or None, its parsed parameters); NotebookError names the cell."""
    found = find_parameters_cell(nb)
    if found is None:
        return None, []
    index, cell = found
    try:
        return index, parse_parameters(str(cell.source))
    except NotebookError as exc:
        raise CellError(str(exc), cell_index=index, label=cell_label(index, cell)) from None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))


def refuse_secret_parameters(values: Mapping[str, Any]) -> None:
    """ConfigError for a parameter that is a credential by its name or its value; the value is never shown.

    papermill writes every parameter into the executed notebook (and protokit into the run
    record), so a key given as ``-p api_key ...`` would land on disk: refused up front, before
    any kernel starts. Call it on raw values too (``protokit run`` does, before typing them),
    since a type error's message would quote the value.
    """
    fix = ("papermill would write it into the executed notebook; pass secrets through environment variables "
           f"({', '.join(KEY_VARS)}) and read them with os.environ")
    for name, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        hits = find_secrets(text)
        if hits:  # masked: the first 4 characters say which key it was, not what it is
            raise ConfigError(f"parameter {name!r} holds {hits[0].kind} ({hits[0].masked}); {fix}")
        if is_credential_name(str(name)) and value not in (None, "", [], {}):
            raise ConfigError(f"parameter {name!r} is named like a credential; {fix}")


def run_notebook(path: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None,
                 output_path: str | os.PathLike[str] | None = None, cache_mode: str | None = None) -> Path:
    """Execute a notebook with papermill and typed parameters; returns the executed notebook's path.

    The output notebook's ``metadata.protokit`` records the parameters, the cache
    keys the run used and the notebook's hash; the run is also appended to
    ``.protokit/runs.json`` beside the notebook for promote.
    """
    nb_path = Path(path)
    nb = read_notebook(nb_path)
    _, params = notebook_parameters(nb)
    refuse_secret_parameters(parameters or {})  # before binding: a type error would quote the value
    bound = bind_parameters(params, parameters or {})
    if cache_mode is not None and cache_mode not in ("auto", "record", "replay", "off"):
        raise ConfigError(f"unknown cache mode {cache_mode!r}; use auto, record, replay or off")
    failed = _failed_path(nb_path, output_path)
    failed.unlink(missing_ok=True)  # a failure notebook from an earlier run must not be mistaken for this one's
    try:
        run = execute(nb_path, nb, bound, cache_mode=cache_mode, keep_failed=failed, exit_ok=True)
    except NotebookError:
        if output_path is None and failed.exists():
            os.chmod(failed, 0o600)  # under .protokit/: private like everything there
        raise
    failed.unlink(missing_ok=True)  # it ran: the output notebook below is the one to read
    digest = content_hash(nb)
    # With no parameters papermill leaves an injected cell from an earlier run in place: its values ran.
    values = _jsonable(bound if bound else injected_values(nb))
    run.nb.metadata["protokit"] = {
        "version": 1,
        "source": nb_path.name,
        "notebook_hash": digest,
        "run_id": run.run_id,
        "parameters": values,
        "cache_keys": run.cache_keys,
        "cache_mode": cache_mode or os.environ.get("PROTOKIT_CACHE_MODE") or "auto",
        "executed_at": _now(),
    }
    if run.exited_at is not None:  # sys.exit(0) there: the cells after it did not run, as under papermill
        run.nb.metadata["protokit"]["exited_at"] = run.exited_at
    private = output_path is None
    if output_path is None:  # under .protokit/: private like everything there (a -o path keeps the umask)
        tag = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
        output_path = nb_path.absolute().parent / RUNS_DIR / "runs" / f"{nb_path.stem}-{tag}.ipynb"
        _private_dir(Path(output_path).parent)
    out = write_notebook(run.nb, output_path, mode=0o600 if private else None)
    exported = [c for c, src in zip(run.source_cells(), nb.cells, strict=True) if is_exported(src)]
    record_run(nb_path, {
        "notebook": nb_path.name, "notebook_hash": digest, "run_id": run.run_id, "parameters": values,
        "cache_keys": run.cache_keys, "outputs": outputs_in(exported), "stdout": printed_in(exported),
        "output_path": os.path.relpath(out.absolute(), nb_path.absolute().parent), "created_at": _now(),
    })
    return out


def _failed_path(nb_path: Path, output_path: str | os.PathLike[str] | None) -> Path:
    """Where a failed run's executed notebook is kept: beside the -o path, else under .protokit/runs/."""
    if output_path is not None:
        out = Path(output_path)
        return out.with_name(f"{out.stem}.failed{out.suffix or '.ipynb'}")
    folder = nb_path.absolute().parent / RUNS_DIR / "runs"
    _private_dir(folder)
    return folder / f"{nb_path.stem}.failed.ipynb"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- the run record ----------------------------------------------------------------
def _runs_file(nb_path: Path) -> Path:
    return nb_path.absolute().parent / RUNS_DIR / RUNS_FILE


def _private_dir(path: Path) -> None:
    """Create ``path`` (and a missing ``.protokit`` above it) 0700: runs hold prompts, answers, parameters."""
    top = next((p for p in (path, *path.parents) if p.name == RUNS_DIR), path)
    for d in (top, path):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)


def _private_file(path: Path) -> int:
    """Open ``path`` for writing, created 0600 (an existing file is made 0600 too)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)
    return fd


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    _private_dir(path.parent)
    with os.fdopen(_private_file(path.with_suffix(".lock")), "a") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)  # two runs finishing together must not drop a record
        except ImportError:  # Windows: last writer wins
            pass
        yield


def _read_runs(file: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    runs = data.get("runs") if isinstance(data, dict) else None
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def record_run(nb_path: Path, record: dict[str, Any]) -> None:
    """Add a run to ``.protokit/runs.json``; a run with the same notebook and parameters replaces it."""
    file = _runs_file(nb_path)
    with _locked(file):
        same = json.dumps(record["parameters"], sort_keys=True)
        runs = [r for r in _read_runs(file) if not (r.get("notebook") == record["notebook"]
                                                     and json.dumps(r.get("parameters"), sort_keys=True) == same)]
        runs.append(record)
        atomic_write_text(file, json.dumps({"runs": runs}, indent=1, sort_keys=True) + "\n", mode=0o600)


def load_runs(nb_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The recorded runs of this notebook (any version of it), oldest first."""
    p = Path(nb_path)
    return [r for r in _read_runs(_runs_file(p)) if r.get("notebook") == p.name]
