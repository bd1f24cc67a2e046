"""The cassette: the recorded model calls the notebook made, exported from its cache for the golden tests."""

from __future__ import annotations

import io
import json
import os

from protokit.errors import CacheError, PromoteError

__all__ = ["EMPTY_CASSETTE", "check_cache_writable", "export_cassette"]

EMPTY_CASSETTE = json.dumps({"protokit_cassette": 1, "entries": []}, indent=1, sort_keys=True) + "\n"


def check_cache_writable(path: str | os.PathLike[str]) -> None:
    """PromoteError for a read-only cache: promote learns which recorded calls the notebook makes
    from what its kernel writes to the cache."""
    from protokit.cache import Cache
    from protokit.notebook.execute import cache_path_for

    cache_path = cache_path_for(path)
    if not cache_path.is_file():
        return  # the gate reports a notebook whose calls were never recorded
    try:
        with Cache(cache_path, "replay", create=False) as cache:
            readonly = cache.readonly
    except CacheError:
        return  # the gate's fresh run reports an unusable cache, with its fix
    if readonly:
        raise PromoteError(f"cache {cache_path} is read-only, and promote records in it which calls the notebook "
                           "makes; copy it somewhere writable and point PROTOKIT_CACHE at the copy")


def export_cassette(path: str | os.PathLike[str], keys: list[str]) -> str:
    """The cassette's text for these cache keys of the notebook at ``path``; PromoteError when any is missing."""
    from protokit.cache import Cache
    from protokit.notebook.execute import cache_path_for

    wanted = sorted(set(keys))
    if not wanted:
        return EMPTY_CASSETTE
    cache_path = cache_path_for(path)
    try:
        with Cache(cache_path, "replay", create=False) as cache:
            buffer = io.StringIO()
            n = cache.export(buffer, wanted)
    except CacheError as exc:
        raise PromoteError(f"cannot export the recorded model calls: {exc}") from None
    if n != len(wanted):
        raise PromoteError(f"{len(wanted) - n} of the {len(wanted)} model calls the notebook made are missing "
                           f"from {cache_path}; run the notebook again (`protokit run`) to record them")
    return buffer.getvalue()
