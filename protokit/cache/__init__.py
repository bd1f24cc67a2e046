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

from protokit.cache.cassettes import CASSETTE_VERSION as CASSETTE_VERSION
from protokit.cache.cassettes import read_cassette
from protokit.cache.current import DEFAULT_PATH, configure, default_path, get_cache, is_configured, reset
from protokit.cache.records import SecretShapedAnswerWarning
from protokit.cache.schema import MIGRATIONS, register_migration
from protokit.cache.schema import Migration as Migration
from protokit.cache.store import MODES, Cache, request_key
from protokit.errors import CacheError as CacheError
from protokit.errors import CacheMiss as CacheMiss

__all__ = ["DEFAULT_PATH", "MIGRATIONS", "MODES", "Cache", "SecretShapedAnswerWarning", "configure", "default_path",
           "get_cache", "is_configured", "read_cassette", "register_migration", "request_key", "reset"]
