"""Helpers shared by the reliability drills: child processes and looks at a cache file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

_PROVIDER_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")


def child_env(cache: Path, **extra: str) -> dict[str, str]:
    """The environment for a child process: this one's, minus provider settings, with its own cache."""
    env = {k: v for k, v in os.environ.items() if k not in _PROVIDER_ENV}
    env.update(PROTOKIT_CACHE=str(cache), PROTOKIT_CACHE_MODE="auto", PYTHONUNBUFFERED="1", **extra)
    return env


def spawn(code: str, args: list[str], env: Mapping[str, str], *, cwd: Path) -> subprocess.Popen[str]:
    """Start ``python -c code args...`` with pipes for its output."""
    return subprocess.Popen([sys.executable, "-c", code, *args], env=dict(env), cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def protokit_cli() -> Path:
    """The ``protokit`` console script installed beside this interpreter."""
    return Path(sys.executable).with_name("protokit")


def cache_entries(path: Path) -> int:
    """Rows in the cache's entries table, read through a fresh connection."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
    finally:
        conn.close()


def integrity(path: Path) -> str:
    """The result of ``PRAGMA integrity_check`` on the file ("ok" when sound)."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        return "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def answered(sb: Any) -> int:
    """How many requests the sandbox has answered with a 200."""
    return int(sb.stats()["by_status"].get("200", 0))


def wait_for_answers(proc: subprocess.Popen[str], sb: Any, goal: int, timeout: float, point: str) -> None:
    """Wait until the sandbox has answered ``goal`` requests; fail (and kill) if the child ends or stalls."""
    deadline = time.monotonic() + timeout
    while answered(sb) < goal:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the child ended (exit {proc.returncode}) before {point}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no progress to {point} within {timeout}s")
        time.sleep(0.002)
