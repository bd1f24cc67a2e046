"""Stored comparison runs: every run's prompt, models, options and rows, in the cache's SQLite file.

Two tables are added to the cache file through its migrations: ``compare_runs`` (one row
per comparison) and ``compare_rows`` (one JSON row per case x model x sample,
exactly the row of ``Comparison.results``). Rows are written in batches as they
arrive, so an interrupted run keeps what it finished. With the cache ``off``
nothing is written (that mode promises not to touch the file), nor with a read-only one.

A run is ``running`` until it ends as ``finished``, ``cancelled`` (Ctrl-C, ``cancel()``)
or ``failed``. Its writer's host, pid and process start time are stored with it, so a
run whose process was killed (SIGKILL, a crashed kernel, a power cut) is listed as
``interrupted`` rather than ``running`` forever.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protokit import cache as cache_mod
from protokit.errors import ConfigError

if TYPE_CHECKING:
    import sqlite3

    import pandas as pd

__all__ = ["BATCH", "RunStore", "StoredRun", "list_runs", "owner", "read_run", "resolve_run_id", "writer_gone"]

BATCH = 500


def _m_runs(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE compare_runs (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, finished_at TEXT,"
                 " status TEXT NOT NULL, prompt TEXT, models TEXT NOT NULL, options TEXT NOT NULL,"
                 " scorers TEXT NOT NULL, score_names TEXT NOT NULL, columns TEXT NOT NULL,"
                 " cases TEXT NOT NULL, total INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0, cost_usd REAL)")
    conn.execute("CREATE INDEX compare_runs_created ON compare_runs (created_at)")
    conn.execute("CREATE TABLE compare_rows (run_id TEXT NOT NULL, idx INTEGER NOT NULL, row TEXT NOT NULL,"
                 " PRIMARY KEY (run_id, idx))")


def _m_owner(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE compare_runs ADD COLUMN owner TEXT")


def _register() -> None:
    # Registered on first use rather than at import, so importing protokit never changes
    # the schema list other code (and its tests) sees; registering again is a no-op.
    cache_mod.register_migration("compare_runs_0001", _m_runs)
    cache_mod.register_migration("compare_runs_0002_owner", _m_owner)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _proc_start(pid: int) -> str | None:
    """A live process's start time in clock ticks since boot (Linux /proc), else None."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat or ")" not in stat:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name (field 2) may hold spaces and ')'
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has ended already
        return None
    return fields[19]  # field 22: starttime


def _pid_ns() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def owner() -> str:
    """This process as a run's writer: host, pid namespace, boot, pid and start time (JSON)."""
    pid = os.getpid()
    return json.dumps({"host": socket.gethostname(), "ns": _pid_ns(), "boot": _read("/proc/sys/kernel/random/boot_id"),
                       "pid": pid, "start": _proc_start(pid)}, sort_keys=True)


def writer_gone(owner_json: str | None) -> bool:
    """True when the process that wrote a run is known to have ended; False when alive or unknown."""
    try:
        o = json.loads(owner_json) if owner_json else None
    except ValueError:
        return False
    if not isinstance(o, dict) or not isinstance(o.get("pid"), int):
        return False  # a run from before writers were recorded: cannot tell
    if o.get("host") != socket.gethostname() or o.get("ns") != _pid_ns():
        return False  # another machine or container: its processes are not visible from here
    boot = _read("/proc/sys/kernel/random/boot_id")
    if o.get("boot") and boot and o["boot"] != boot:
        return True  # the machine restarted since
    if o.get("start") is not None:  # Linux: the pid is gone, or now belongs to another process
        return _proc_start(o["pid"]) != o["start"]
    if os.name != "posix":
        return False  # Windows: os.kill(pid, 0) would terminate the process
    try:
        os.kill(o["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, owned by another user
    return False


def _status(status: str, owner_json: str | None) -> str:
    return "interrupted" if status == "running" and writer_gone(owner_json) else status


def _has_runs(conn: sqlite3.Connection) -> tuple[bool, bool]:
    """(compare_runs exists, it has the owner column): a read-only cache is not migrated."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(compare_runs)")}
    return bool(columns), "owner" in columns


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # a pydantic instance (a parsed answer)
    if callable(dump):
        return dump(mode="json")
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    isoformat = getattr(value, "isoformat", None)  # datetimes and pandas Timestamps
    if callable(isoformat):
        return isoformat()
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Strict JSON for a row or a record: NaN becomes null, numpy values become Python ones."""
    try:
        return json.dumps(value, ensure_ascii=False, default=_default, allow_nan=False)
    except ValueError:  # a NaN somewhere (missing scores): rare enough to clean only then
        return json.dumps(_finite(value), ensure_ascii=False, default=_default, allow_nan=False)


def new_run_id() -> str:
    """A sortable, short run id: ``YYYYMMDD-HHMMSS-xxxx``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class RunStore:
    """Writes one run's rows to the cache file in batches (one transaction per batch)."""

    def __init__(self, cache: cache_mod.Cache, run_id: str, *, batch: int = BATCH) -> None:
        self.cache = cache
        self.run_id = run_id
        self.batch = batch
        self._pending: list[tuple[str, int, str]] = []

    @classmethod
    def start(cls, meta: Mapping[str, Any], *, cache: cache_mod.Cache | None = None) -> RunStore | None:
        """Record a new run (status ``running``); None when the cache is off or read-only."""
        cache = cache or cache_mod.get_cache()
        if cache.mode == "off" or cache.readonly:
            return None
        _register()
        store = cls(cache, new_run_id())
        with cache.transaction() as conn:
            conn.execute(
                "INSERT INTO compare_runs (id, created_at, status, prompt, models, options, scorers, score_names,"
                " columns, cases, total, owner) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (store.run_id, _now(), meta["prompt"], dumps(meta["models"]), dumps(meta["options"]),
                 dumps(meta["scorers"]), dumps(meta["score_names"]), dumps(meta["columns"]),
                 dumps(meta["cases"]), meta["total"], owner()))
        return store

    def add(self, idx: int, row: Mapping[str, Any]) -> None:
        """Queue a finished row; written when a batch is full."""
        self._pending.append((self.run_id, idx, dumps(row)))
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Write queued rows in one transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self.cache.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO compare_rows VALUES (?, ?, ?)", pending)

    def finish(self, status: str, cost_usd: float | None) -> None:
        """Write what is left and mark the run finished or cancelled."""
        self.flush()
        with self.cache.transaction() as conn:
            n = conn.execute("SELECT COUNT(*) FROM compare_rows WHERE run_id = ?", (self.run_id,)).fetchone()[0]
            conn.execute("UPDATE compare_runs SET status = ?, finished_at = ?, n = ?, cost_usd = ? WHERE id = ?",
                         (status, _now(), n, cost_usd, self.run_id))

    def reopen(self) -> None:
        """Mark a stored run ``running`` again, written by this process (``protokit runs resume``)."""
        with self.cache.transaction() as conn:
            conn.execute("UPDATE compare_runs SET status = 'running', finished_at = NULL, owner = ? WHERE id = ?",
                         (owner(), self.run_id))

    def update_row(self, idx: int, row: Mapping[str, Any]) -> None:
        """Replace one stored row (a human rating was added)."""
        with self.cache.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO compare_rows VALUES (?, ?, ?)", (self.run_id, idx, dumps(row)))


def _open(path: str | os.PathLike[str] | None) -> cache_mod.Cache:
    _register()
    if path is None:
        cache = cache_mod.get_cache()
        if cache.mode != "off":
            return cache
        path = cache.path
    # create=False: looking for runs must never leave an empty database behind; replay mode
    # (nothing here records calls) so a read-only cache can be read too.
    return cache_mod.Cache(Path(path), mode="replay", create=False)


def resolve_run_id(conn: sqlite3.Connection, run_id: str) -> str:
    """The full id for an id or a unique prefix of one; ConfigError otherwise."""
    ids = [r[0] for r in conn.execute("SELECT id FROM compare_runs WHERE id LIKE ? ORDER BY id",
                                      (run_id.replace("%", "") + "%",))]
    if run_id in ids:
        return run_id
    if len(ids) == 1:
        return str(ids[0])
    if not ids:
        raise ConfigError(f"no stored run {run_id!r}; list them with 'protokit runs'")
    raise ConfigError(f"run id {run_id!r} is ambiguous ({len(ids)} runs start with it); give more characters")


def list_runs(path: str | os.PathLike[str] | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Stored runs, newest first: id, created_at, status, models, cases, n (rows stored), total, cost_usd."""
    cache = _open(path)
    with cache.lock:
        conn = cache.connection()
        exists, owned = _has_runs(conn)
        if not exists:  # a read-only cache written before runs were stored
            return []
        sql = ("SELECT id, created_at, status, models, json_array_length(cases), n, total, cost_usd, "
               f"{'owner' if owned else 'NULL'} FROM compare_runs ORDER BY created_at DESC, id DESC")
        rows = conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    return [{"id": r[0], "created_at": r[1], "status": _status(r[2], r[8]), "models": json.loads(r[3]),
             "cases": r[4], "n": r[5], "total": r[6], "cost_usd": r[7]} for r in rows]


@dataclass(frozen=True)
class StoredRun:
    """A stored run as read back: its results and what it was run with."""

    run_id: str
    results: pd.DataFrame
    models: list[str]
    cases: pd.DataFrame
    prompt: Any
    score_names: list[str]
    options: dict[str, Any]
    status: str
    scorer_info: list[dict[str, Any]]
    store: RunStore


def read_run(run_id: str, *, path: str | os.PathLike[str] | None = None) -> StoredRun:
    """Read a stored run (by id or a unique prefix) from the cache file; ConfigError when there is none."""
    import pandas as pd

    cache = _open(path)
    with cache.lock:
        conn = cache.connection()
        exists, owned = _has_runs(conn)
        if not exists:
            raise ConfigError(f"no stored run {run_id!r}; list them with 'protokit runs'")
        full = resolve_run_id(conn, run_id)
        meta = conn.execute("SELECT prompt, models, options, score_names, columns, cases, status, scorers, "
                            f"{'owner' if owned else 'NULL'} FROM compare_runs WHERE id = ?", (full,)).fetchone()
        stored = conn.execute("SELECT idx, row FROM compare_rows WHERE run_id = ? ORDER BY idx", (full,)).fetchall()
    prompt, models, options, score_names, columns, cases, status, scorers, writer = meta
    columns = json.loads(columns)
    rows = [json.loads(r) for _, r in stored]
    results = pd.DataFrame.from_records(rows, columns=columns, index=[i for i, _ in stored]) if rows \
        else pd.DataFrame(columns=columns)
    options = json.loads(options)
    if options.get("prompts") and prompt:  # prompt variants were stored as {name: text form}
        with contextlib.suppress(ValueError):
            prompt = json.loads(prompt)
    return StoredRun(run_id=full, results=results, models=json.loads(models), cases=pd.DataFrame(json.loads(cases)),
                     prompt=prompt, score_names=json.loads(score_names), options=options,
                     status=_status(status, writer), scorer_info=json.loads(scorers), store=RunStore(cache, full))
