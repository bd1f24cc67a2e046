"""Start ``protokit sandbox`` in its own process for benchmarks (its CPU is then not the client's)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def running_sandbox(latency: float = 0.05, faults: str | None = None, seed: int = 0) -> Iterator[str]:
    """Yield the base URL of a sandbox subprocess; stop it afterwards."""
    exe = Path(sys.executable).with_name("protokit")
    cmd = [str(exe), "sandbox", "--port", "0", "--latency", str(latency), "--seed", str(seed)]
    if faults:
        cmd += ["--faults", faults]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"sandbox did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(10)
