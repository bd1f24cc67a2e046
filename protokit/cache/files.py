"""Opening the cache file: created 0600, a corrupt or foreign file refused, WAL, read-only when it cannot be written."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from protokit.cache.schema import bootstrap, migrate
from protokit.errors import CacheError

BUSY_MS = 30_000


def create_file(path: Path, shown: str, *, create: bool) -> bool:
    """Check where the file goes and create it 0600 if it is missing (and ``create``); True when created here."""
    if not path.parent.is_dir():
        raise CacheError(f"cannot open cache {shown}: directory {path.parent} does not exist; "
                         "create it or point PROTOKIT_CACHE at another path")
    if path.is_dir():
        raise CacheError(f"cannot open cache {shown}: it is a directory; give a file path")
    if path.exists():
        return False
    if not create:
        raise CacheError(f"no cache at {shown}: nothing has been recorded there yet "
                         "(give --path or set PROTOKIT_CACHE)")
    try:  # created 0600 before SQLite sees it: answers and prompts are private
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    except OSError as exc:
        raise CacheError(f"cannot create cache {shown}: {(exc.strerror or str(exc)).lower()} in "
                         f"{path.parent}; point PROTOKIT_CACHE at a writable path") from exc
    return True


def inspect_file(path: Path, shown: str) -> None:
    """Refuse a corrupt or foreign file, reading it only (read-only connection).

    The file is read through SQLite alone, never opened by hand: closing any descriptor of a file
    drops every POSIX lock the process holds on it, so reading its header while this process has
    it open as a cache would let another process take it for unused and delete its WAL.
    """
    try:
        if path.stat().st_size == 0:
            return  # an empty file is a cache another process is just creating
    except OSError as exc:
        raise CacheError(f"cannot read cache {shown}: {(exc.strerror or str(exc)).lower()}; fix its permissions "
                         "(chmod u+rw) or point PROTOKIT_CACHE at another path") from exc
    fix = "move it away or point PROTOKIT_CACHE at another path"
    try:
        ro = connect_ro(path)
        try:
            check = ro.execute("PRAGMA quick_check").fetchone()
            tables = {r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            app = "meta" in tables and ro.execute("SELECT value FROM meta WHERE key='app'").fetchone()
        finally:
            ro.close()
    except sqlite3.DatabaseError as exc:
        if is_readonly(exc):  # not corrupt: SQLite could not even open it for reading
            raise CacheError(f"cannot read cache {shown}: {exc}; check the permissions of the file and its "
                             "folder, or point PROTOKIT_CACHE at another path") from exc
        if "not a database" in str(exc):
            raise CacheError(f"{shown} is not a protokit cache (not a SQLite file, or a corrupt one); {fix}") from exc
        raise CacheError(f"{shown} is a corrupt SQLite file ({exc}); {fix}") from exc
    if not check or check[0] != "ok":
        raise CacheError(f"{shown} is a corrupt SQLite file (quick_check: {check and check[0]}); {fix}")
    if tables and (not app or app[0] != "protokit"):
        raise CacheError(f"{shown} is not a protokit cache (it is a SQLite file of another program); "
                         "point PROTOKIT_CACHE at another path")


def is_readonly(exc: BaseException) -> bool:
    """True for SQLite's "read-only" and "cannot open" errors (permissions, not damage)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.Error) and ("readonly" in text or "read-only" in text
                                               or "unable to open database file" in text)


def connect_ro(path: Path, **kwargs: Any) -> sqlite3.Connection:
    """A read-only connection. A WAL file needs its -shm beside it; when the folder cannot hold
    one (read-only folder or disk), the file is opened ``immutable``: nobody can write it there."""
    uri = path.absolute().as_uri()
    error: sqlite3.Error | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(uri + query, uri=True, timeout=BUSY_MS / 1000, **kwargs)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error as exc:
            conn.close()
            if not is_readonly(exc):
                raise
            error = exc
    assert error is not None
    raise error


def not_writable(path: Path) -> str | None:
    """Why protokit cannot write the cache file at ``path`` (an existing file), or None."""
    if not os.access(path, os.W_OK):
        return "the file is not writable"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is not writable"
    return None


def _set_wal(conn: sqlite3.Connection, shown: str) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite reports "locked" at
    # once instead of waiting, when another process opens the same new file: retry.
    deadline = time.monotonic() + BUSY_MS / 1000
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise CacheError(f"cannot open cache {shown}: {exc}") from exc
            time.sleep(0.005)
    if mode != "wal":
        raise CacheError(f"cannot use WAL mode for {shown} (got {mode!r}); put the cache on a local disk")


def connect(path: Path, shown: str, *, created: bool) -> tuple[sqlite3.Connection, int] | None:
    """The read-write connection (WAL, schema migrated) and how many migrations it has; None when
    SQLite finds it cannot write a file that was there already (open it read-only then)."""
    # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), never implicit.
    conn = sqlite3.connect(str(path), timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        _set_wal(conn, shown)
        conn.execute("PRAGMA synchronous = NORMAL")
        bootstrap(conn, shown)
        migrated = migrate(conn, shown)
    except BaseException as exc:
        conn.close()
        cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
        if not created and is_readonly(cause or exc):  # e.g. a read-only mount os.access did not see
            return None
        if isinstance(exc, sqlite3.Error):
            raise CacheError(f"cannot open cache {shown}: {exc}") from exc
        raise
    for suffix in ("-wal", "-shm"):  # SQLite copies the db's mode; make sure where we own them
        with contextlib.suppress(OSError):
            os.chmod(f"{path}{suffix}", 0o600)
    return conn, migrated


def connect_readonly(path: Path, shown: str, why: str) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection to a file that cannot be written (``why``), and whether it holds a
    protokit schema: no WAL switch, no migrations, no writes."""
    try:
        conn = connect_ro(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise CacheError(f"cannot open cache {shown} read-only ({why}): {exc}; check the permissions of the "
                         "file and its folder, or point PROTOKIT_CACHE at another path") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        ours = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise CacheError(f"cannot read cache {shown}: {exc}") from exc
    return conn, ours is not None
