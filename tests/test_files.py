"""The one atomic writer (protokit._files): a file is replaced whole or not at all.

Hostile cases: the target is a folder, its folder is missing or read-only (conftest's
``freeze``: ``chattr +i``, since tests run as root and root ignores permission bits), the write fails halfway or is
interrupted. Each leaves the old file whole and no temp file behind, and raises OSError
(or the interruption) for the caller to turn into its one-line error.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protokit import _files
from protokit._files import atomic_write_bytes, atomic_write_text, discard, stage_text


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    assert atomic_write_text(target, "one\n") == target
    atomic_write_text(target, "two ü\r\n")
    assert target.read_bytes() == "two ü\r\n".encode()  # UTF-8, line ends as given on every platform
    atomic_write_bytes(target, b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff"
    assert _leftovers(tmp_path) == []


def test_mode_0600_is_honoured_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    private = atomic_write_text(tmp_path / "private.json", "secret-ish\n", mode=0o600)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    # Replacing a world-readable file with a private one leaves it private.
    shared = tmp_path / "shared.json"
    shared.write_text("old\n")
    shared.chmod(0o644)
    atomic_write_text(shared, "new\n", mode=0o600)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o600


def test_private_temp_file_is_never_readable_by_others(tmp_path: Path, umask_022: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real_write = os.write

    def spy(fd: int, data: bytes | memoryview) -> int:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))  # the temp file's mode while its bytes go in
        return real_write(fd, data)

    monkeypatch.setattr(_files.os, "write", spy)
    atomic_write_text(tmp_path / "k.json", "x" * 10, mode=0o600)
    assert seen and set(seen) == {0o600}


def test_default_mode_is_the_umasks(tmp_path: Path, umask_022: None) -> None:
    path = atomic_write_text(tmp_path / "nb.ipynb", "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_target_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "out", "x")
    assert (tmp_path / "out").is_dir() and _leftovers(tmp_path) == []


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "nope" / "a.json", "x")
    assert not (tmp_path / "nope").exists()


def test_read_only_folder(tmp_path: Path, freeze: Callable[[Path], Path]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "a.json").write_text("old\n")
    freeze(folder)
    with pytest.raises(PermissionError):
        atomic_write_text(folder / "a.json", "new\n")
    assert (folder / "a.json").read_text() == "old\n" and _leftovers(folder) == []


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failure_mid_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       failure: BaseException) -> None:
    target = tmp_path / "runs.json"
    target.write_text("the old, complete file\n")
    real_write = os.write

    def half_then_fail(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))  # half the bytes reach the temp file, then the disk is full
        raise failure

    monkeypatch.setattr(_files.os, "write", half_then_fail)
    with pytest.raises(type(failure)):
        atomic_write_text(target, "the new text " * 100, mode=0o600)
    assert target.read_text() == "the old, complete file\n"
    assert _leftovers(tmp_path) == []


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m.py"
    target.write_text("old\n")

    def no_rename(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(_files.os, "replace", no_rename)
    with pytest.raises(OSError, match="cross-device"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []


def test_staged_files_appear_only_when_renamed(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    tmp = stage_text(target, "x = 1\n", mode=0o600)
    assert tmp.parent == tmp_path and tmp.read_text() == "x = 1\n" and not target.exists()
    # Two stagings of one target never share a temp file.
    other = stage_text(target, "x = 2\n")
    assert other != tmp
    os.replace(tmp, target)
    discard(other)
    discard(other)  # discarding twice is quiet
    assert target.read_text() == "x = 1\n" and _leftovers(tmp_path) == []


def test_a_stale_temp_name_is_never_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """O_EXCL: a file already at the temp name (a link planted there, say) is an error, not a target."""
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    monkeypatch.setattr(_files.secrets, "token_hex", lambda n: "fixed")
    (tmp_path / ".a.json.fixed.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        atomic_write_text(tmp_path / "a.json", "x")
    assert victim.read_text() == "untouched\n"
