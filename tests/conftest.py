"""Shared fixtures: every test gets its own cache file and no real keys; one sandbox per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import protokit as pk

_PROVIDER_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")
# Read before any test runs: live tests use the real keys, every other test runs without them.
_LIVE_KEYS = {k: os.environ[k] for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY") if os.environ.get(k)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``live`` tests unless a provider key is present."""
    if _LIVE_KEYS:
        return
    skip = pytest.mark.skip(reason="live test: set OPENAI_API_KEY or ANTHROPIC_API_KEY to run it")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[None]:
    """A fresh cache per test and no provider keys or endpoints from the outer environment."""
    for var in (*_PROVIDER_ENV, "PROTOKIT_RUN_ID", "PROTOKIT_PRICES"):
        monkeypatch.delenv(var, raising=False)
    if "live" in request.keywords:
        for k, v in _LIVE_KEYS.items():
            monkeypatch.setenv(k, v)
    path = tmp_path / "protokit.db"
    monkeypatch.setenv("PROTOKIT_CACHE", str(path))
    monkeypatch.setenv("PROTOKIT_CACHE_MODE", "auto")
    pk.cache.configure(path=path, mode="auto")
    yield
    pk.cache.get_cache().close()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One `protokit demo` run for the session: the promoted quickstart module, its tests and golden data."""
    from protokit.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "d"
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for var in (*_PROVIDER_ENV, "PROTOKIT_CACHE", "PROTOKIT_CACHE_MODE", "PROTOKIT_PRICES", "PROTOKIT_RUN_ID"):
            mp.delenv(var, raising=False)
        try:
            result = run_demo(out, say=lines.append)
        except Exception:
            print("\n".join(lines))  # what the demo said before it failed (its findings), for the report
            raise
    return SimpleNamespace(out=out, result=result, said="\n".join(lines), module=out / "triage.py",
                           tests=out / "tests" / "test_triage.py",
                           golden=out / "tests" / "cassettes" / "triage.golden.json")


@pytest.fixture(scope="session")
def _sandbox_server():
    from protokit.sandbox import Sandbox

    with Sandbox(port=0) as sb:
        yield sb


@pytest.fixture
def sandbox(_sandbox_server):
    """The session's sandbox with zeroed stats and no faults."""
    _sandbox_server.set_faults(None, seed=0)
    _sandbox_server.reset_stats()
    yield _sandbox_server
    _sandbox_server.set_faults(None, seed=0)


@pytest.fixture
def sb(sandbox):
    """The session's sandbox, its batches taking 0.3 s (their requests finishing one by one)."""
    sandbox.set_batch_delay(0.3)
    yield sandbox
    sandbox.set_batch_delay(0.0)


def _chattr(flag: str, path: Path) -> bool:
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    return subprocess.run([chattr, flag, str(path)], capture_output=True).returncode == 0


@pytest.fixture
def freeze() -> Iterator[Callable[[Path], Path]]:
    """``freeze(path)``: make a file or folder immutable (read-only even for root); undone afterwards."""
    frozen: list[Path] = []

    def _freeze(path: Path) -> Path:
        if not _chattr("+i", path):
            pytest.skip("needs chattr +i (root on ext2/3/4) to make a path read-only for root")
        frozen.append(path)
        return path

    yield _freeze
    for path in reversed(frozen):
        _chattr("-i", path)
