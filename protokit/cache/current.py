"""The process-wide cache: ``pk.cache.configure``, ``get_cache`` and ``reset``, from the environment by default."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from protokit.cache.store import Cache, check_mode

DEFAULT_PATH = "protokit.db"

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
            if check_mode(new_mode) != "off":
                cur.connection()  # a cache that was off opens now, so a bad file fails here
            cur.mode = new_mode
            return cur
        new = Cache(target, new_mode)  # may raise: then the current cache stays
        if cur is not None:
            cur.close()
        _current = new
        return new


def is_configured() -> bool:
    """True once a process-wide cache exists (configured, or created by a first call)."""
    return _current is not None


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
