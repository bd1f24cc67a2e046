"""Stored comparison runs: every run's prompt, models, options and rows, in the cache's SQLite file.

Two tables are added to the cache file through its migrations: ``compare_runs`` (one row
per comparison) and ``compare_rows`` (one JSON row per case x model x sample,
exactly the row of ``Comparison.results``). Rows are written in batches as they
arrive, so an interrupted run keeps what it finished. With the cache ``off``
nothing is written (that mode promises not to touch the file).
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protokit import cache as cache_mod
from protokit.errors import ConfigError

if TYPE_CHECKING:
    import sqlite3

    from protokit.comparison import Comparison

__all__ = ["BATCH", "RunStore", "list_runs", "load_run", "resolve_run_id"]

BATCH = 500


def _m_runs(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE compare_runs (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, finished_at TEXT,"
                 " status TEXT NOT NULL, prompt TEXT, models TEXT NOT NULL, options TEXT NOT NULL,"
                 " scorers TEXT NOT NULL, score_names TEXT NOT NULL, columns TEXT NOT NULL,"
                 " cases TEXT NOT NULL, total INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0, cost_usd REAL)")
    conn.execute("CREATE INDEX compare_runs_created ON compare_runs (created_at)")
    conn.execute("CREATE TABLE compare_rows (run_id TEXT NOT NULL, idx INTEGER NOT NULL, row TEXT NOT NULL,"
                 " PRIMARY KEY (run_id, idx))")


def _register() -> None:
    # Registered on first use rather than at import, so importing protokit never changes
    # the schema list other code (and its tests) sees; registering again is a no-op.
    cache_mod.register_migration("compare_runs_0001", _m_runs)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _default(value: Any) -> Any:
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
        """Record a new run (status ``running``); None when the cache is off."""
        cache = cache or cache_mod.get_cache()
        if cache.mode == "off":
            return None
        _register()
        store = cls(cache, new_run_id())
        with cache.transaction() as conn:
            conn.execute(
                "INSERT INTO compare_runs (id, created_at, status, prompt, models, options, scorers, score_names,"
                " columns, cases, total) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
                (store.run_id, _now(), meta["prompt"], dumps(meta["models"]), dumps(meta["options"]),
                 dumps(meta["scorers"]), dumps(meta["score_names"]), dumps(meta["columns"]),
                 dumps(meta["cases"]), meta["total"]))
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
    # create=False: looking for runs must never leave an empty database behind.
    return cache_mod.Cache(Path(path), mode="auto", create=False)


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
    sql = ("SELECT id, created_at, status, models, json_array_length(cases), n, total, cost_usd "
           "FROM compare_runs ORDER BY created_at DESC, id DESC")
    with cache.lock:
        rows = cache.connection().execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    return [{"id": r[0], "created_at": r[1], "status": r[2], "models": json.loads(r[3]), "cases": r[4],
             "n": r[5], "total": r[6], "cost_usd": r[7]} for r in rows]


def load_run(run_id: str, *, path: str | os.PathLike[str] | None = None) -> Comparison:
    """Reload a stored run as a Comparison with the same results and summary.

    Parameters
    ----------
    run_id
        The id shown by ``protokit runs`` (or a unique prefix), or ``Comparison.run_id``.
    path
        The cache file; by default the current one (``PROTOKIT_CACHE`` or protokit.db).
    """
    import pandas as pd

    from protokit.comparison import Comparison

    cache = _open(path)
    with cache.lock:
        conn = cache.connection()
        full = resolve_run_id(conn, run_id)
        meta = conn.execute("SELECT prompt, models, options, score_names, columns, cases, status, scorers "
                            "FROM compare_runs WHERE id = ?", (full,)).fetchone()
        stored = conn.execute("SELECT idx, row FROM compare_rows WHERE run_id = ? ORDER BY idx", (full,)).fetchall()
    prompt, models, options, score_names, columns, cases, status, scorers = meta
    columns = json.loads(columns)
    rows = [json.loads(r) for _, r in stored]
    results = pd.DataFrame.from_records(rows, columns=columns, index=[i for i, _ in stored]) if rows \
        else pd.DataFrame(columns=columns)
    opts = json.loads(options)
    return Comparison(
        results=results, models=json.loads(models), cases=pd.DataFrame(json.loads(cases)), prompt=prompt,
        scorers=[], score_names=json.loads(score_names), run_id=full, options=opts,
        store=RunStore(cache, full), status=status, scorer_info=json.loads(scorers),
    )

