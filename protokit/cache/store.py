"""The record/replay store: the key contract and the :class:`Cache` over one SQLite file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from protokit.cache import files
from protokit.cache.cassettes import write_cassette
from protokit.cache.records import check_record, entry_row, now, prompt_of
from protokit.cache.schema import MIGRATIONS, OWN_MIGRATIONS, migrate, tx
from protokit.errors import CacheError, CacheMiss

MODES = ("auto", "record", "replay", "off")


def request_key(request: Mapping[str, Any]) -> str:
    """sha256 hex of the request dict as canonical JSON: the cache key contract."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise CacheError(f"unknown cache mode {mode!r}; use one of {', '.join(MODES)} "
                         "(argument or PROTOKIT_CACHE_MODE)")
    return mode


class Cache:
    """A record/replay store of model answers in one SQLite file, safe across threads and processes."""

    _GET = "SELECT entry FROM entries WHERE key = ?"
    _PUT = "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    _USE = "INSERT OR IGNORE INTO uses VALUES (?, ?, ?)"

    def __init__(self, path: str | os.PathLike[str], mode: str = "auto", *, create: bool = True) -> None:
        self._shown = os.fspath(path)
        self.path: Path = Path(path).expanduser().absolute()
        self._mode = check_mode(mode)
        self._create = create
        self.run_id: str | None = os.environ.get("PROTOKIT_RUN_ID") or None
        # One connection, shared by callers and the background event-loop thread.
        self.lock: threading.RLock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._migrated = 0
        self._readonly: str | None = None  # why the file cannot be written, once opened read-only
        self._used: dict[str, None] = {}
        if mode != "off":
            self._db()  # open now so a bad path or file fails at configure time, not mid-run

    def __repr__(self) -> str:
        return f"Cache({self._shown!r}, mode={self._mode!r})"

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def mode(self) -> str:
        """auto | record | replay | off."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if self._readonly and check_mode(mode) in ("auto", "record"):
            raise self._readonly_error()
        self._mode = check_mode(mode)

    @property
    def readonly(self) -> bool:
        """True when the file was opened read-only (it cannot be written): replay only."""
        return self._readonly is not None

    def _readonly_error(self) -> CacheError:
        return CacheError(f"cache {self._shown} is read-only ({self._readonly}); use --cache-mode replay / "
                          "PROTOKIT_CACHE_MODE=replay or point PROTOKIT_CACHE at a writable path")

    def _write_error(self) -> CacheError:
        return CacheError(f"cannot write to cache {self._shown}: it is read-only ({self._readonly}); "
                          "point PROTOKIT_CACHE (or --path) at a writable path")

    # -- opening -----------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        # A forked child must not share the parent's SQLite handle: reopen there.
        if self._conn is None or self._pid != os.getpid():
            self._conn = self._open()
            self._pid = os.getpid()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        path, shown = self.path, self._shown
        created = files.create_file(path, shown, create=self._create)
        self._readonly = None
        if not created:
            files.inspect_file(path, shown)
            why = files.not_writable(path)
            if why is not None:
                return self._open_readonly(why)
        opened = files.connect(path, shown, created=created)
        if opened is None:  # e.g. a read-only mount os.access did not see
            return self._open_readonly("SQLite cannot write it")
        conn, self._migrated = opened
        return conn

    def _open_readonly(self, why: str) -> sqlite3.Connection:
        """Open a file that cannot be written: no WAL switch, no migrations, no writes; replay only."""
        conn, ours = files.connect_readonly(self.path, self._shown, why)
        self._readonly = why
        if not ours:
            conn.close()
            raise CacheError(f"cache {self._shown} is read-only ({why}) and holds no recorded calls yet; "
                             "point PROTOKIT_CACHE at a writable path")
        if self._mode in ("auto", "record"):
            conn.close()
            raise self._readonly_error()
        self._migrated = len(MIGRATIONS)  # a read-only file is used as it is
        return conn

    def connection(self) -> sqlite3.Connection:
        """The open connection, with any newly registered migrations applied; hold ``lock`` to use it."""
        with self.lock:
            conn = self._db()
            if self._migrated != len(MIGRATIONS) and not self._readonly:
                self._migrated = migrate(conn, self._shown)
            return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a ``BEGIN IMMEDIATE`` transaction; commit on success, roll back on error."""
        with self.lock:
            conn = self.connection()
            if self._readonly:
                raise self._write_error()
            with tx(conn):
                yield conn

    # -- the hot path ------------------------------------------------------------
    def _mark(self, key: str) -> bool:
        """Note a key as used; True when this is its first use and a run is tracked."""
        first = key not in self._used
        self._used[key] = None
        return first and self.run_id is not None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry for a key, or None (always None in record and off modes); marks it used."""
        if self._mode in ("off", "record"):
            return None
        with self.lock:
            conn = self._db()
            try:
                row = conn.execute(self._GET, (key,)).fetchone()
                if row is None:
                    return None
                if self._mark(key) and not self._readonly:
                    with tx(conn):
                        conn.execute(self._USE, (self.run_id, key, now()))
            except sqlite3.Error as exc:
                raise CacheError(f"cannot read cache {self._shown}: {exc}") from exc
        entry: dict[str, Any] = json.loads(row[0])
        return entry

    def put(self, key: str, request: Mapping[str, Any], entry: Mapping[str, Any]) -> None:
        """Store (insert or replace) the entry for a request, secrets stripped; marks the key used."""
        self.put_many([(key, request, entry)])

    def put_many(self, items: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> None:
        """Store several entries in one transaction (one commit instead of one per entry)."""
        if self._mode == "off":
            return
        rows = [entry_row(key, request, entry) for key, request, entry in items]
        if not rows:
            return
        with self.lock:
            conn = self._db()
            if self._readonly:
                raise self._write_error()
            try:
                with tx(conn):
                    conn.executemany(self._PUT, rows)
                    uses = [(self.run_id, row[0], row[-1]) for row in rows if self._mark(row[0])]
                    if uses:
                        conn.executemany(self._USE, uses)
            except sqlite3.Error as exc:
                raise CacheError(f"cannot write to cache {self._shown}: {exc}") from exc

    def lookup(self, key: str, request: Mapping[str, Any]) -> dict[str, Any] | None:
        """``get`` with the mode applied: in replay mode a miss raises CacheMiss instead of returning None."""
        entry = self.get(key)
        if entry is None and self._mode == "replay":
            raise self.miss(key, request)
        return entry

    def miss(self, key: str, request: Mapping[str, Any]) -> CacheMiss:
        """The one-line CacheMiss for a request that has no recorded answer."""
        model = f"{request.get('provider')}:{request.get('model')}"
        return CacheMiss(
            f"no recorded response for {model} (sample {request.get('sample', 0)}), prompt "
            f"'{prompt_of(request)}' in {self._shown} ({self._mode} mode); "
            "run once with PROTOKIT_CACHE_MODE=auto to record it", key=key)

    def used_keys(self) -> list[str]:
        """Keys read or written by this Cache object in this process, in first-use order."""
        with self.lock:
            return list(self._used)

    def keys_for_run(self, run_id: str) -> list[str]:
        """Keys used by a run (recorded when PROTOKIT_RUN_ID was set), in first-use order."""
        with self.lock:
            return [r[0] for r in self.connection().execute(
                "SELECT key FROM uses WHERE run_id = ? ORDER BY rowid", (run_id,))]

    # -- management --------------------------------------------------------------
    def entries(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """``[{"key", "request", "entry"}]`` sorted by key, for all keys or the given ones."""
        sql = "SELECT key, request, entry FROM entries"
        with self.lock:
            conn = self.connection()
            if keys is None:
                rows = conn.execute(sql + " ORDER BY key").fetchall()
            else:
                rows = [r for k in sorted(set(keys)) for r in conn.execute(sql + " WHERE key = ?", (k,))]
        return [{"key": k, "request": json.loads(q), "entry": json.loads(e)} for k, q, e in rows]

    def load(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Import records in the export format (e.g. a cassette); returns how many were stored."""
        checked = (check_record(rec, f"records for {self._shown}") for rec in records)
        rows = [entry_row(r["key"], r["request"], r["entry"]) for r in checked]
        with self.transaction() as conn:
            conn.executemany(self._PUT, rows)
        return len(rows)

    def export(self, path_or_file: str | os.PathLike[str] | IO[str],
               keys: Iterable[str] | None = None) -> int:
        """Write entries as a cassette: deterministic JSON sorted by key; returns the number written.

        The detector checks every prompt, option and answer first: a secret found is a
        CacheError naming the case (masked), and nothing is written. A file is created 0600.
        """
        entries = self.entries(keys)
        write_cassette(path_or_file, entries)
        return len(entries)

    def stats(self) -> dict[str, Any]:
        """Path, size, entry count, entries per model, recorded cost, schema version and date range."""
        with self.lock:
            conn = self.connection()
            n, cost, oldest, newest = conn.execute(
                "SELECT COUNT(*), SUM(cost_usd), MIN(created_at), MAX(created_at) FROM entries").fetchone()
            by_model = {f"{p}:{m}": c for p, m, c in conn.execute(
                "SELECT provider, model, COUNT(*) FROM entries GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2")}
            migrations = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
        size = sum(os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return {"path": str(self.path), "size_bytes": size, "entries": n, "by_model": by_model,
                "total_cost_usd": round(cost or 0.0, 10),
                "schema_version": sum(m in OWN_MIGRATIONS for m in migrations), "migrations": migrations,
                "oldest": oldest, "newest": newest}

    def clear(self, model: str | None = None) -> int:
        """Remove all entries, or those of one model (``provider:name`` or ``name``); returns how many."""
        with self.transaction() as conn:
            if model is None:
                cur = conn.execute("DELETE FROM entries")
            else:
                cur = conn.execute("DELETE FROM entries WHERE provider || ':' || model = ? OR model = ?",
                                   (model, model))
            return cur.rowcount

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
