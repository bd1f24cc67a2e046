"""The record/replay cache: every model call's answer, kept in one SQLite file.

Key contract
------------
A call is identified by its *request dict*, exactly::

    {"provider": "openai", "model": "gpt-4.1-mini",
     "messages": [{"role": "user", "content": "..."}],
     "options": {"temperature": 0, ...}, "sample": 0}

and its key is the sha256 hex digest of that dict as canonical JSON
(``sort_keys=True, separators=(",", ":"), ensure_ascii=False``), see
:func:`request_key`. ``base_url``, API keys and headers are NOT part of it: the
same request to a proxy or with another key replays the same answer. Changing
this contract orphans every recorded entry, so it is versioned with the file.

Modes: ``auto`` (a hit replays, a miss calls and records), ``record`` (always
call and overwrite), ``replay`` (a miss raises :class:`~protokit.errors.CacheMiss`,
never the network), ``off`` (no cache at all; the file is not touched).

The file is shared safely by several processes (two Jupyter kernels): WAL mode,
``busy_timeout`` of 30 s, and every write in a ``BEGIN IMMEDIATE`` transaction.

A file that cannot be written (its permissions, its folder's, or a read-only disk) is
opened read-only: it replays in ``replay`` mode (nothing is written, not even which
run used which entry), and ``auto``/``record`` mode refuse it with one line saying so.

What is stored
--------------
Replay is exact: messages and answers are stored verbatim and come back byte for byte.
Only where credentials travel is anything removed: the request's options (and any field
but ``messages``) go through :func:`protokit.secrets.scrub` (credential-named keys dropped
at any depth, key-shaped values masked). An answer that itself looks like a live key is
stored unchanged, marked ``"secret_shaped": true`` in its entry (``Response.secret_shaped``
and the ``secret_shaped`` results column), and a :class:`SecretShapedAnswerWarning` is
issued once per process. The file, its -wal and -shm and exported cassettes are 0600; a
cassette is refused (:class:`~protokit.errors.CacheError`, nothing written) when the
detector finds a secret in what it would hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from protokit._files import atomic_write_text
from protokit.errors import CacheError, CacheMiss, safe_text
from protokit.secrets import SecretHit, find_secrets, looks_like_key, scrub

__all__ = ["DEFAULT_PATH", "MIGRATIONS", "MODES", "Cache", "SecretShapedAnswerWarning", "configure", "default_path",
           "get_cache", "read_cassette", "register_migration", "request_key", "reset"]

MODES = ("auto", "record", "replay", "off")
DEFAULT_PATH = "protokit.db"
CASSETTE_VERSION = 1
_BUSY_MS = 30_000
_PROMPT_CHARS = 33
_SQLITE_MAGIC = b"SQLite format 3\x00"


class SecretShapedAnswerWarning(UserWarning):
    """An answer that looks like a live key was recorded (unchanged, marked ``secret_shaped``); once per process."""


_secret_warned = False

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
_OWN_MIGRATIONS = frozenset(name for name, _ in MIGRATIONS)


def register_migration(name: str, fn: Migration) -> None:
    """Add a named schema migration (for sibling stores); a known name is replaced in place."""
    for i, (known, _) in enumerate(MIGRATIONS):
        if known == name:
            MIGRATIONS[i] = (name, fn)
            return
    MIGRATIONS.append((name, fn))


def request_key(request: Mapping[str, Any]) -> str:
    """sha256 hex of the request dict as canonical JSON: the cache key contract."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dumps(obj: Any, **kw: Any) -> str:
    """Canonical JSON; with lone surrogates (an answer may hold one) \\u-escaped, so UTF-8 takes it unchanged."""
    kw.setdefault("separators", (",", ":"))
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, **kw)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(obj, sort_keys=True, ensure_ascii=True, **kw)
    return text


def _stored_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as stored: messages verbatim, everything else (options, headers) scrubbed."""
    req: dict[str, Any] = scrub({k: v for k, v in request.items() if k != "messages"})
    if "messages" in request:
        req["messages"] = request["messages"]
    return req


def _warn_secret_shaped(request: Mapping[str, Any]) -> None:
    global _secret_warned
    if _secret_warned:
        return
    _secret_warned = True
    model = f"{request.get('provider')}:{request.get('model')}"
    warnings.warn(
        f"the answer of {model} to '{_prompt_of(request)}' looks like a live key; it is recorded unchanged "
        "and marked secret_shaped (a cassette holding it is refused). Warned once per process",
        SecretShapedAnswerWarning, stacklevel=2)


def _row(key: str, request: Mapping[str, Any], entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """The entries row for a put: options scrubbed, the answer verbatim (flagged if key-shaped)."""
    req, ent = _stored_request(request), dict(entry)
    text, flag = ent.get("text"), ent.pop("secret_shaped", None)
    if not isinstance(flag, bool):  # a Response's entry says; a record from elsewhere is checked here
        flag = isinstance(text, str) and looks_like_key(text)
    if flag:
        ent["secret_shaped"] = True
        _warn_secret_shaped(req)
    ent.setdefault("created_at", _now())
    try:
        return (key, req.get("provider"), req.get("model"), req.get("sample", 0), _dumps(req), _dumps(ent),
                ent.get("cost_usd"), ent["created_at"])
    except (TypeError, ValueError) as exc:
        raise CacheError(f"cannot store the answer for key {key[:12]}: {exc}") from exc


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise CacheError(f"unknown cache mode {mode!r}; use one of {', '.join(MODES)} "
                         "(argument or PROTOKIT_CACHE_MODE)")
    return mode


def _prompt_of(request: Mapping[str, Any]) -> str:
    messages = request.get("messages") or []
    users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"] or list(messages)
    content: Any = users[-1].get("content", "") if users and isinstance(users[-1], Mapping) else ""
    if isinstance(content, list):  # content parts: keep the text ones
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    text = " ".join(safe_text(str(content)).split())  # redacted before shortened: half a key is no key
    return text if len(text) <= _PROMPT_CHARS else text[:_PROMPT_CHARS] + "…"


def _inspect(path: Path, shown: str) -> None:
    """Refuse a corrupt or foreign file, reading it only (read-only connection)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise CacheError(f"cannot read cache {shown}: {(exc.strerror or str(exc)).lower()}; fix its permissions "
                         "(chmod u+rw) or point PROTOKIT_CACHE at another path") from exc
    if not head:
        return  # an empty file is a cache another process is just creating
    fix = "move it away or point PROTOKIT_CACHE at another path"
    if head != _SQLITE_MAGIC:
        raise CacheError(f"{shown} is not a protokit cache (not a SQLite file, or a corrupt one); {fix}")
    try:
        ro = _connect_ro(path)
        try:
            check = ro.execute("PRAGMA quick_check").fetchone()
            tables = {r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            app = "meta" in tables and ro.execute("SELECT value FROM meta WHERE key='app'").fetchone()
        finally:
            ro.close()
    except sqlite3.DatabaseError as exc:
        if _is_readonly(exc):  # not corrupt: SQLite could not even open it for reading
            raise CacheError(f"cannot read cache {shown}: {exc}; check the permissions of the file and its "
                             "folder, or point PROTOKIT_CACHE at another path") from exc
        raise CacheError(f"{shown} is a corrupt SQLite file ({exc}); {fix}") from exc
    if not check or check[0] != "ok":
        raise CacheError(f"{shown} is a corrupt SQLite file (quick_check: {check and check[0]}); {fix}")
    if tables and (not app or app[0] != "protokit"):
        raise CacheError(f"{shown} is not a protokit cache (it is a SQLite file of another program); "
                         "point PROTOKIT_CACHE at another path")


def _is_readonly(exc: BaseException) -> bool:
    """True for SQLite's "read-only" and "cannot open" errors (permissions, not damage)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.Error) and ("readonly" in text or "read-only" in text
                                               or "unable to open database file" in text)


def _connect_ro(path: Path, **kwargs: Any) -> sqlite3.Connection:
    """A read-only connection. A WAL file needs its -shm beside it; when the folder cannot hold
    one (read-only folder or disk), the file is opened ``immutable``: nobody can write it there."""
    uri = path.absolute().as_uri()
    error: sqlite3.Error | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(uri + query, uri=True, timeout=_BUSY_MS / 1000, **kwargs)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error as exc:
            conn.close()
            if not _is_readonly(exc):
                raise
            error = exc
    assert error is not None
    raise error


def _not_writable(path: Path) -> str | None:
    """Why protokit cannot write the cache file at ``path`` (an existing file), or None."""
    if not os.access(path, os.W_OK):
        return "the file is not writable"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is not writable"
    return None


def _set_wal(conn: sqlite3.Connection, shown: str) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite reports "locked" at
    # once instead of waiting, when another process opens the same new file: retry.
    deadline = time.monotonic() + _BUSY_MS / 1000
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


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _secret_in(record: Mapping[str, Any]) -> tuple[str, SecretHit] | None:
    """(where, hit) for the first secret the detector finds in what a cassette would hold of a record."""
    request, entry = record["request"], record["entry"]
    rest = {k: v for k, v in request.items() if k != "messages"}
    # Each string alone (key shapes), and the JSON of the dicts ("token": "..." assignments).
    parts = [("the prompt", [*_strings(request.get("messages"))]),
             ("the request options", [_dumps(rest), *_strings(rest)]),
             ("the answer", [_dumps(entry), *_strings(entry)])]
    for where, texts in parts:
        for text in texts:
            hits = find_secrets(text)
            if hits:
                return where, hits[0]
    return None


def _check_cassette(entries: Iterable[Mapping[str, Any]], shown: object) -> None:
    """Refuse (CacheError naming the case) a cassette that would hold a secret; it is meant to be committed."""
    for rec in entries:
        found = _secret_in(rec)
        if found is None:
            continue
        where, hit = found
        req = rec["request"]
        model, name = f"{req.get('provider')}:{req.get('model')}", f" {shown}" if shown else ""
        raise CacheError(
            f"cassette{name} not written: {where} of {model} (sample {req.get('sample', 0)}), prompt "
            f"'{_prompt_of(req)}', holds {hit.kind} ({hit.masked}); a cassette is meant to be committed: "
            f"record that call again without it, or clear it (protokit cache clear --model {model})")


def _check_record(rec: Any, where: str) -> dict[str, Any]:
    if not (isinstance(rec, Mapping) and isinstance(rec.get("key"), str)
            and isinstance(rec.get("request"), Mapping) and isinstance(rec.get("entry"), Mapping)
            and isinstance(rec["entry"].get("text"), str)):
        raise CacheError(f"{where}: each record needs 'key' (str), 'request' (dict) and 'entry' (dict with "
                         f"'text'), got {str(rec)[:80]!r}")
    return {"key": rec["key"], "request": dict(rec["request"]), "entry": dict(rec["entry"])}


class Cache:
    """A record/replay store of model answers in one SQLite file, safe across threads and processes."""

    _GET = "SELECT entry FROM entries WHERE key = ?"
    _PUT = "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    _USE = "INSERT OR IGNORE INTO uses VALUES (?, ?, ?)"

    def __init__(self, path: str | os.PathLike[str], mode: str = "auto", *, create: bool = True) -> None:
        self._shown = os.fspath(path)
        self.path: Path = Path(path).expanduser().absolute()
        self._mode = _check_mode(mode)
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
        if self._readonly and _check_mode(mode) in ("auto", "record"):
            raise self._readonly_error()
        self._mode = _check_mode(mode)

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
        if not path.parent.is_dir():
            raise CacheError(f"cannot open cache {shown}: directory {path.parent} does not exist; "
                             "create it or point PROTOKIT_CACHE at another path")
        if path.is_dir():
            raise CacheError(f"cannot open cache {shown}: it is a directory; give a file path")
        created = False
        if not path.exists():
            if not self._create:
                raise CacheError(f"no cache at {shown}: nothing has been recorded there yet "
                                 "(give --path or set PROTOKIT_CACHE)")
            try:  # created 0600 before SQLite sees it: answers and prompts are private
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                created = True
            except FileExistsError:
                pass
            except OSError as exc:
                raise CacheError(f"cannot create cache {shown}: {(exc.strerror or str(exc)).lower()} in "
                                 f"{path.parent}; point PROTOKIT_CACHE at a writable path") from exc
        self._readonly = None
        if not created:
            _inspect(path, shown)
            why = _not_writable(path)
            if why is not None:
                return self._open_readonly(why)
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), never implicit.
        conn = sqlite3.connect(str(path), timeout=_BUSY_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            _set_wal(conn, shown)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._bootstrap(conn)
            self._migrate(conn)
        except BaseException as exc:
            conn.close()
            cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
            if not created and _is_readonly(cause or exc):  # e.g. a read-only mount os.access did not see
                return self._open_readonly("SQLite cannot write it")
            if isinstance(exc, sqlite3.Error):
                raise CacheError(f"cannot open cache {shown}: {exc}") from exc
            raise
        for suffix in ("-wal", "-shm"):  # SQLite copies the db's mode; make sure where we own them
            with contextlib.suppress(OSError):
                os.chmod(f"{path}{suffix}", 0o600)
        return conn

    def _open_readonly(self, why: str) -> sqlite3.Connection:
        """Open a file that cannot be written: no WAL switch, no migrations, no writes; replay only."""
        shown = self._shown
        try:
            conn = _connect_ro(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise CacheError(f"cannot open cache {shown} read-only ({why}): {exc}; check the permissions of the "
                             "file and its folder, or point PROTOKIT_CACHE at another path") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            ours = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise CacheError(f"cannot read cache {shown}: {exc}") from exc
        self._readonly = why
        if not ours:
            conn.close()
            raise CacheError(f"cache {shown} is read-only ({why}) and holds no recorded calls yet; "
                             "point PROTOKIT_CACHE at a writable path")
        if self._mode in ("auto", "record"):
            conn.close()
            raise self._readonly_error()
        self._migrated = len(MIGRATIONS)  # a read-only file is used as it is
        return conn

    def _bootstrap(self, conn: sqlite3.Connection) -> None:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone():
            return
        # meta, its app row and the migrations table appear in one transaction, so another
        # process opening the file now sees either an empty file or a protokit cache.
        with self._tx(conn):
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "meta" not in tables:
                raise CacheError(f"{self._shown} is not a protokit cache (it is a SQLite file of another "
                                 "program); point PROTOKIT_CACHE at another path")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('app', 'protokit')")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('key_contract', 'sha256-canonical-json-1')")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, "
                         "applied_at TEXT NOT NULL)")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        pending = list(MIGRATIONS)
        applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
        for name, fn in pending:
            if name in applied:
                continue
            try:
                with self._tx(conn):
                    # Re-checked under the write lock: another process may have applied it meanwhile.
                    if not conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                        fn(conn)
                        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, _now()))
            except sqlite3.Error as exc:
                raise CacheError(f"migration {name} failed on {self._shown}: {exc}") from exc
        self._migrated = len(pending)

    @staticmethod
    @contextlib.contextmanager
    def _tx(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def connection(self) -> sqlite3.Connection:
        """The open connection, with any newly registered migrations applied; hold ``lock`` to use it."""
        with self.lock:
            conn = self._db()
            if self._migrated != len(MIGRATIONS) and not self._readonly:
                self._migrate(conn)
            return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a ``BEGIN IMMEDIATE`` transaction; commit on success, roll back on error."""
        with self.lock:
            conn = self.connection()
            if self._readonly:
                raise self._write_error()
            with self._tx(conn):
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
                    with self._tx(conn):
                        conn.execute(self._USE, (self.run_id, key, _now()))
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
        rows = [_row(key, request, entry) for key, request, entry in items]
        if not rows:
            return
        with self.lock:
            conn = self._db()
            if self._readonly:
                raise self._write_error()
            try:
                with self._tx(conn):
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
            f"'{_prompt_of(request)}' in {self._shown} ({self._mode} mode); "
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
        checked = (_check_record(rec, f"records for {self._shown}") for rec in records)
        rows = [_row(r["key"], r["request"], r["entry"]) for r in checked]
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
        _check_cassette(entries, os.fspath(path_or_file) if isinstance(path_or_file, (str, os.PathLike))
                        else getattr(path_or_file, "name", None))
        text = _dumps({"protokit_cassette": CASSETTE_VERSION, "entries": entries}, indent=1, separators=None) + "\n"
        if not isinstance(path_or_file, (str, os.PathLike)):
            path_or_file.write(text)
        else:
            out = Path(path_or_file)
            if not out.parent.is_dir():
                what = "is a file, not a folder" if out.parent.exists() else "does not exist"
                raise CacheError(f"cannot write {os.fspath(path_or_file)}: folder {out.parent} {what}; "
                                 "create it or pick another path")
            try:
                atomic_write_text(out, text, mode=0o600)  # readers never see half a cassette
            except OSError as exc:
                raise CacheError(f"cannot write {os.fspath(path_or_file)}: {(exc.strerror or str(exc)).lower()}; "
                                 "pick a writable path") from exc
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
                "schema_version": sum(m in _OWN_MIGRATIONS for m in migrations), "migrations": migrations,
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


def read_cassette(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read an exported cassette file and return its records; CacheError if its shape is wrong."""
    shown = os.fspath(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CacheError(f"cannot read cassette {shown}: {exc}") from exc
    if not isinstance(data, dict) or data.get("protokit_cassette") != CASSETTE_VERSION \
            or not isinstance(data.get("entries"), list):
        raise CacheError(f"{shown} is not a protokit cassette (expected {{\"protokit_cassette\": 1, "
                         "\"entries\": [...]}); export one with 'protokit cache export'")
    return [_check_record(rec, shown) for rec in data["entries"]]


# -- the process-wide cache ---------------------------------------------------------
_current: Cache | None = None
_global_lock = threading.Lock()


def default_path() -> Path:
    """The cache path from PROTOKIT_CACHE, else protokit.db in the working directory."""
    return Path(os.environ.get("PROTOKIT_CACHE") or DEFAULT_PATH)


def configure(path: str | os.PathLike[str] | None = None, mode: str | None = None) -> Cache:
    """Set the process-wide cache; None keeps the current value (or the environment's)."""
    global _current
    with _global_lock:
        cur = _current
        target = Path(path) if path is not None else (cur.path if cur else default_path())
        new_mode = mode or (cur.mode if cur else os.environ.get("PROTOKIT_CACHE_MODE") or "auto")
        if cur is not None and target.expanduser().absolute() == cur.path:
            if _check_mode(new_mode) != "off":
                cur.connection()  # a cache that was off opens now, so a bad file fails here
            cur.mode = new_mode
            return cur
        new = Cache(target, new_mode)  # may raise: then the current cache stays
        if cur is not None:
            cur.close()
        _current = new
        return new


def get_cache() -> Cache:
    """The process-wide cache, created on first use from PROTOKIT_CACHE and PROTOKIT_CACHE_MODE."""
    return _current or configure()


def reset() -> None:
    """Close and forget the process-wide cache; the next get_cache() reads the environment again."""
    global _current
    with _global_lock:
        if _current is not None:
            _current.close()
        _current = None
