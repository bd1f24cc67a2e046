"""The batches a run sent, kept in the cache file beside its run store, so a pending batch outlives its process.

Two tables are added through the cache's migrations: ``batch_jobs`` (one row per provider
batch: its id, the run that sent it, status, and in ``state`` what is needed to finish it
without the notebook: the model's spec, name, base URL and price, the provider's ids and how
many requests it holds) and ``batch_requests`` (one row per request in a batch: its cache key,
its request dict, the run's tags of the calls it answers and, once read, the error it ended in).
A batch's requests are streamed into their rows when it is sent and read back a page at a time,
so the ledger never holds a second copy of a run's requests in memory.

A job is ``submitted`` until its results are read into the cache (``collected``), or it was
``cancelled`` or ``failed`` at the provider. A request's custom id is its cache key, so an
answer read from any batch lands under the key the same call without a batch would use.
Nothing is written with the cache ``off`` or read-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from protokit import cache as cache_mod

if TYPE_CHECKING:
    import sqlite3

__all__ = ["OPEN", "Held", "Job", "Ledger"]

OPEN = ("submitted", "cancelled")  # not read yet: a resume finishes these
_PAGE = 2000  # requests read back per query


def _dumps(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (an answer may hold one): \u-escaped, as the cache does
            text = json.dumps(value, separators=(",", ":"))
    return text


def _m_batches(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE batch_jobs (id TEXT PRIMARY KEY, run_id TEXT, provider TEXT NOT NULL,"
                 " model TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL)")
    conn.execute("CREATE INDEX batch_jobs_run ON batch_jobs (run_id)")
    conn.execute("CREATE TABLE batch_keys (key TEXT NOT NULL, job_id TEXT NOT NULL, PRIMARY KEY (key, job_id))")


def _m_requests(conn: sqlite3.Connection) -> None:
    """A row per request instead of every request inside its job's ``state`` (and ``batch_keys``)."""
    conn.execute("CREATE TABLE batch_requests (job_id TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL,"
                 " tags TEXT NOT NULL, error TEXT, PRIMARY KEY (job_id, key))")
    conn.execute("CREATE INDEX batch_requests_key ON batch_requests (key)")
    for job_id, text in conn.execute("SELECT id, state FROM batch_jobs").fetchall():
        state = json.loads(text)
        requests: dict[str, Any] = state.pop("requests", None) or {}
        errors: dict[str, Any] = state.pop("errors", None) or {}
        state["size"] = len(requests)
        conn.executemany("INSERT OR REPLACE INTO batch_requests VALUES (?, ?, ?, ?, ?)",
                         ((job_id, key, _dumps(info["request"]), _dumps(info.get("tags") or []),
                           _dumps(errors[key]) if key in errors else None) for key, info in requests.items()))
        conn.execute("UPDATE batch_jobs SET state = ? WHERE id = ?", (_dumps(state), job_id))
    conn.execute("DROP TABLE batch_keys")


def _register() -> None:
    # On first use, as the run store does: importing protokit changes no schema list.
    cache_mod.register_migration("batch_jobs_0001", _m_batches)
    cache_mod.register_migration("batch_jobs_0002_requests", _m_requests)


@dataclass
class Job:
    """One provider batch as the ledger keeps it (its requests are rows of their own: :meth:`Ledger.requests`)."""

    id: str
    run_id: str | None
    provider: str
    model: str  # provider:name
    status: str = "submitted"
    # model_id, base_url, price, ids (the provider's), submitted (epoch s), size (how many requests)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """How many requests the batch holds."""
        return int(self.state.get("size") or 0)


class Held(NamedTuple):
    """One request a batch holds: its cache key (and custom id), request dict, the run's tags of the calls
    it answers, and the error it ended in (once its batch was read; None for an answer)."""

    key: str
    request: dict[str, Any]
    tags: list[Any]
    error: dict[str, Any] | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Ledger:
    """Reads and writes batch jobs in one cache file."""

    def __init__(self, cache: cache_mod.Cache) -> None:
        self.cache = cache
        _register()

    @property
    def writable(self) -> bool:
        """False when the cache is off or read-only: jobs are then kept in memory only."""
        return self.cache.mode != "off" and not self.cache.readonly

    def _has_tables(self, conn: sqlite3.Connection) -> bool:
        # A read-only cache is used as it is: one from before batches (or before batch_requests) has none.
        return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'batch_requests'").fetchone() is not None

    def save(self, job: Job, requests: Iterable[tuple[str, Mapping[str, Any], Sequence[Any]]]) -> None:
        """Record a job and the requests it holds, ``(key, request dict, the run's tags)``, in one transaction.

        ``requests`` is consumed as it is written (a generator keeps one request's row in memory at a
        time); ``job.state["size"]`` says how many there are.
        """
        if not self.writable:
            return
        with self.cache.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (job.id, job.run_id, job.provider, job.model, _now(), job.status, _dumps(job.state)))
            conn.executemany("INSERT OR REPLACE INTO batch_requests VALUES (?, ?, ?, ?, NULL)",
                             ((job.id, key, _dumps(request), _dumps(list(tags)))
                              for key, request, tags in requests))

    def set_status(self, job: Job, status: str) -> None:
        """Move a job on (``collected``, ``cancelled``, ``failed``)."""
        job.status = status
        if not self.writable:
            return
        with self.cache.transaction() as conn:
            conn.execute("UPDATE batch_jobs SET status = ? WHERE id = ?", (status, job.id))

    def status(self, job: Job) -> str | None:
        """The job's status as the ledger holds it now (another process may have moved it on); None if unknown."""
        if not self.writable:
            return None
        with self.cache.lock:
            conn = self.cache.connection()
            if not self._has_tables(conn):
                return None
            row = conn.execute("SELECT status FROM batch_jobs WHERE id = ?", (job.id,)).fetchone()
        return str(row[0]) if row else None

    def add_errors(self, job: Job, errors: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Record the errors some of a job's requests ended in, ``(key, {kind, status, message})``."""
        if not self.writable:
            return
        with self.cache.transaction() as conn:
            conn.executemany("UPDATE batch_requests SET error = ? WHERE job_id = ? AND key = ?",
                             ((_dumps(dict(info)), job.id, key) for key, info in errors))

    def add_missing(self, job: Job, error: Mapping[str, Any]) -> None:
        """Record ``error`` for each of a job's requests its results held nothing for: no error, no cache entry."""
        if not self.writable:
            return
        with self.cache.transaction() as conn:
            conn.execute("UPDATE batch_requests SET error = ? WHERE job_id = ? AND error IS NULL AND key NOT IN "
                         "(SELECT key FROM entries)", (_dumps(dict(error)), job.id))

    def requests(self, job: Job) -> Iterator[Held]:
        """The requests a job holds, read a page at a time."""
        for key, request, tags, error in self._paged(job, "key, request, tags, error"):
            yield Held(key, json.loads(request), json.loads(tags), json.loads(error) if error else None)

    def keys(self, job: Job) -> Iterator[str]:
        """The cache keys (and custom ids) of a job's requests, read a page at a time."""
        for (key,) in self._paged(job, "key"):
            yield key

    def _paged(self, job: Job, columns: str) -> Iterator[tuple[Any, ...]]:
        """Rows of a job's requests in key order, ``_PAGE`` at a time (``columns`` starts with ``key``)."""
        after = ""
        while True:
            with self.cache.lock:
                conn = self.cache.connection()
                if not self._has_tables(conn):
                    return
                rows = conn.execute(f"SELECT {columns} FROM batch_requests WHERE job_id = ? AND key > ? "
                                    "ORDER BY key LIMIT ?", (job.id, after, _PAGE)).fetchall()
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def request(self, job: Job, key: str) -> dict[str, Any] | None:
        """The request dict a job holds under ``key``, or None."""
        with self.cache.lock:
            conn = self.cache.connection()
            if not self._has_tables(conn):
                return None
            row = conn.execute("SELECT request FROM batch_requests WHERE job_id = ? AND key = ?",
                               (job.id, key)).fetchone()
        found: dict[str, Any] | None = json.loads(row[0]) if row else None
        return found

    def _jobs(self, where: str, args: Iterable[Any]) -> list[Job]:
        with self.cache.lock:
            conn = self.cache.connection()
            if not self._has_tables(conn):
                return []
            rows = conn.execute("SELECT id, run_id, provider, model, status, state FROM batch_jobs WHERE "
                                f"{where} ORDER BY created_at, id", list(args)).fetchall()
        return [Job(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def for_run(self, run_id: str) -> list[Job]:
        """The jobs a run sent, oldest first."""
        return self._jobs("run_id = ?", [run_id])

    def pending_for(self, keys: Iterable[str]) -> list[Job]:
        """Submitted jobs holding any of ``keys``: a run sent them and ended before reading them."""
        if self.cache.mode == "off":
            return []
        keys = list(dict.fromkeys(keys))
        ids: set[str] = set()
        with self.cache.lock:
            conn = self.cache.connection()
            if not self._has_tables(conn):
                return []
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                ids.update(r[0] for r in conn.execute(
                    f"SELECT DISTINCT r.job_id FROM batch_requests r JOIN batch_jobs j ON j.id = r.job_id WHERE "
                    f"j.status = 'submitted' AND r.key IN ({','.join('?' * len(chunk))})", chunk))
        if not ids:
            return []
        found = sorted(ids)
        return self._jobs(f"id IN ({','.join('?' * len(found))})", found)
