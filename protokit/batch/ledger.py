"""The batches a run sent, kept in the cache file beside its run store, so a pending batch outlives its process.

Two tables are added through the cache's migrations: ``batch_jobs`` (one row per provider
batch: its id, the run that sent it, status, and in ``state`` everything needed to finish it
without the notebook: the model's spec, name, base URL and price, the provider's ids, and
each request with its cache key, its request dict and the run's tags of the calls it answers)
and ``batch_keys`` (which batch holds which cache key, to find a pending batch by its requests).

A job is ``submitted`` until its results are read into the cache (``collected``), or it was
``cancelled`` or ``failed`` at the provider. A request's custom id is its cache key, so an
answer read from any batch lands under the key the same call without a batch would use.
Nothing is written with the cache ``off`` or read-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from protokit import cache as cache_mod

if TYPE_CHECKING:
    import sqlite3

__all__ = ["OPEN", "Job", "Ledger"]

OPEN = ("submitted", "cancelled")  # not read yet: a resume finishes these


def _m_batches(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE batch_jobs (id TEXT PRIMARY KEY, run_id TEXT, provider TEXT NOT NULL,"
                 " model TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL)")
    conn.execute("CREATE INDEX batch_jobs_run ON batch_jobs (run_id)")
    conn.execute("CREATE TABLE batch_keys (key TEXT NOT NULL, job_id TEXT NOT NULL, PRIMARY KEY (key, job_id))")


def _register() -> None:
    # On first use, as the run store does: importing protokit changes no schema list.
    cache_mod.register_migration("batch_jobs_0001", _m_batches)


@dataclass
class Job:
    """One provider batch as the ledger keeps it."""

    id: str
    run_id: str | None
    provider: str
    model: str  # provider:name
    status: str = "submitted"
    # model_id, base_url, price, ids (the provider's), submitted (epoch s), requests {key: {request, tags}},
    # errors {key: {kind, status, message}} once collected
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """The cache keys (and custom ids) of the batch's requests."""
        return list(self.state.get("requests", {}))


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

    def save(self, job: Job) -> None:
        """Record a job (and which keys it holds), replacing an earlier record of it."""
        if not self.writable:
            return
        with self.cache.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (job.id, job.run_id, job.provider, job.model, _now(), job.status,
                          json.dumps(job.state, ensure_ascii=False)))
            conn.executemany("INSERT OR IGNORE INTO batch_keys VALUES (?, ?)", [(k, job.id) for k in job.keys])

    def set_status(self, job: Job, status: str, errors: Mapping[str, Any] | None = None) -> None:
        """Move a job on (``collected``, ``cancelled``, ``failed``), with the errors its requests ended in."""
        job.status = status
        if errors is not None:
            job.state["errors"] = dict(errors)
        if not self.writable:
            return
        with self.cache.transaction() as conn:
            conn.execute("UPDATE batch_jobs SET status = ?, state = ? WHERE id = ?",
                         (status, json.dumps(job.state, ensure_ascii=False), job.id))

    def _jobs(self, where: str, args: Iterable[Any]) -> list[Job]:
        with self.cache.lock:
            conn = self.cache.connection()
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'batch_jobs'").fetchone():
                return []  # a read-only cache from before batches
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
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'batch_keys'").fetchone():
                return []
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                ids.update(r[0] for r in conn.execute(
                    f"SELECT DISTINCT k.job_id FROM batch_keys k JOIN batch_jobs j ON j.id = k.job_id WHERE "
                    f"j.status = 'submitted' AND k.key IN ({','.join('?' * len(chunk))})", chunk))
        if not ids:
            return []
        found = sorted(ids)
        return self._jobs(f"id IN ({','.join('?' * len(found))})", found)
