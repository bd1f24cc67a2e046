"""The one atomic writer: a file is replaced whole or not at all, never seen half-written.

Every file protokit writes for someone else to read (a notebook, a cassette, the run
record, a promoted module and its tests) goes through here::

    atomic_write_text(path, text)              # the umask's mode, as open() would give
    atomic_write_text(path, text, mode=0o600)  # private from the first byte

Several files that must change together are staged first, then renamed::

    tmp = stage_text(path, text)   # a temp file beside ``path``, written and flushed
    os.replace(tmp, path)          # or discard(tmp) when anything failed

An OSError (missing folder, read-only folder, full disk, a folder where the file should
be) propagates unchanged and leaves no temp file behind: callers turn it into their own
one-line error with the fix.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "discard", "stage_bytes", "stage_text"]

# What open() asks for; the umask then takes away what the user does not want.
_DEFAULT_MODE = 0o666


def stage_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """A new temp file beside ``path`` holding ``data`` on disk; ``os.replace`` it onto ``path`` to publish.

    ``mode`` (e.g. 0o600) is the temp file's exact mode from the moment it exists; None means
    the umask's, as ``open()`` would give. On failure nothing is left behind and the OSError
    propagates.
    """
    target = Path(path)
    # Beside the target, so the rename stays on one file system (and so is atomic); a random
    # name, so two writers (or a stale file from a crash) never share a temp file.
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: a file (or link) already at that name is never reused, so its mode or owner
    # cannot leak into ours. The mode is given at creation, never fixed up afterwards, so a
    # private file is not world-readable for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 _DEFAULT_MODE if mode is None else mode)
    try:
        try:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # exactly the mode asked for, whatever the umask took away
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            # On disk before the rename: after a crash the target is the old file or the new one,
            # never an empty one (ext4 and others may otherwise commit the rename first).
            os.fsync(fd)
        finally:
            os.close(fd)  # a failed close (a network file system's deferred write error) fails too
    except BaseException:
        discard(tmp)
        raise
    return tmp


def stage_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    """:func:`stage_bytes` for text: UTF-8, line ends as given (no ``\\r\\n`` on Windows)."""
    return stage_bytes(path, text.encode("utf-8"), mode=mode)


def discard(tmp: str | os.PathLike[str]) -> None:
    """Remove a staged temp file; quiet when it is already gone or cannot be removed."""
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Replace ``path`` with ``data`` atomically; readers see the old file or the new one. Returns the path."""
    target = Path(path)
    tmp = stage_bytes(target, data, mode=mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        discard(tmp)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; readers see the old file or the new one."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)
