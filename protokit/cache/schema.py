"""The file's schema: the ``meta`` table, the named migrations and the ``BEGIN IMMEDIATE`` transaction."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator

from protokit.cache.records import now
from protokit.errors import CacheError

Migration = Callable[[sqlite3.Connection], None]

def _m_entries(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, provider TEXT, model TEXT, sample INTEGER,"
                 " request TEXT NOT NULL, entry TEXT NOT NULL, cost_usd REAL, created_at TEXT NOT NULL)")
    conn.execute("CREATE INDEX entries_model ON entries (provider, model)")
    conn.execute("CREATE INDEX entries_created ON entries (created_at)")


def _m_uses(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE uses (run_id TEXT NOT NULL, key TEXT NOT NULL, first_used TEXT NOT NULL,"
                 " PRIMARY KEY (run_id, key))")


# Applied in order, once each per file, each in its own IMMEDIATE transaction. A
# migration must only use conn.execute: executescript would commit half-way.
MIGRATIONS: list[tuple[str, Migration]] = [("0001_entries", _m_entries), ("0002_uses", _m_uses)]
OWN_MIGRATIONS = frozenset(name for name, _ in MIGRATIONS)


def register_migration(name: str, fn: Migration) -> None:
    """Add a named schema migration (for sibling stores); a known name is replaced in place."""
    for i, (known, _) in enumerate(MIGRATIONS):
        if known == name:
            MIGRATIONS[i] = (name, fn)
            return
    MIGRATIONS.append((name, fn))


@contextlib.contextmanager
def tx(conn: sqlite3.Connection) -> Iterator[None]:
    """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def bootstrap(conn: sqlite3.Connection, shown: str) -> None:
    """Make a new file a protokit cache (meta and migrations tables); refuse another program's SQLite file."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone():
        return
    # meta, its app row and the migrations table appear in one transaction, so another
    # process opening the file now sees either an empty file or a protokit cache.
    with tx(conn):
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise CacheError(f"{shown} is not a protokit cache (it is a SQLite file of another "
                             "program); point PROTOKIT_CACHE at another path")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('app', 'protokit')")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('key_contract', 'sha256-canonical-json-1')")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, "
                     "applied_at TEXT NOT NULL)")


def migrate(conn: sqlite3.Connection, shown: str) -> int:
    """Apply the migrations the file lacks; returns how many are known (all applied now)."""
    pending = list(MIGRATIONS)
    applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    for name, fn in pending:
        if name in applied:
            continue
        try:
            with tx(conn):
                # Re-checked under the write lock: another process may have applied it meanwhile.
                if not conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                    fn(conn)
                    conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now()))
        except sqlite3.Error as exc:
            raise CacheError(f"migration {name} failed on {shown}: {exc}") from exc
    return len(pending)
