"""Writing promote's set of files: checked before the slow work, then all of them or none.

The texts are staged beside their targets through :mod:`protokit._files` (the one atomic
writer) and renamed only when every one of them is on disk.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from protokit._files import discard, stage_text
from protokit.errors import PromoteError

__all__ = ["check_out", "write_all"]


def _existing_parent(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_out(out: Path, targets: list[Path]) -> None:
    """Refuse an --out folder that cannot take the files, before the (slow) validation runs."""
    if out.exists() and not out.is_dir():
        raise PromoteError(f"--out {out} is a file; give a folder")
    for folder in dict.fromkeys(_existing_parent(t.parent) for t in targets):
        if not folder.is_dir():
            raise PromoteError(f"cannot create --out {out}: {folder} is a file, not a folder; pick another --out")
        try:  # os.access is no help as root or on a read-only disk: try it
            fd, probe = tempfile.mkstemp(prefix=".protokit-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise PromoteError(f"cannot write to {folder}: {(exc.strerror or str(exc)).lower()}; pick a writable "
                               "folder with --out") from None


def write_all(files: dict[Path, str]) -> list[Path]:
    """Stage every file beside its target first, then rename them all; unchanged files are left alone.

    A failure (a folder turned read-only, a full disk) is a PromoteError, and the temp files
    and the folders made for them are removed: nothing is half-written.
    """
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []
    path = Path()
    try:
        for path, text in files.items():
            if path.exists() and path.read_text(encoding="utf-8") == text:
                continue  # idempotent: same input, same bytes, and not even a new mtime
            missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            made.extend(reversed(missing))
            staged.append((stage_text(path, text), path))
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in staged:
            discard(tmp)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise PromoteError(f"cannot write {path}: {(exc.strerror or str(exc)).lower()}; pick a writable folder "
                           "with --out") from None
    finally:
        for tmp, _ in staged:
            discard(tmp)  # a no-op for the renamed ones; anything else (Ctrl-C) leaves no temp file either
    return [path for _, path in staged]
