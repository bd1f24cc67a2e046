"""Start ``protokit sandbox`` in its own process for benchmarks (its CPU and memory are then not the client's)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class SandboxProcess:
    """A running sandbox subprocess: its base URL and process."""

    url: str
    proc: subprocess.Popen[str]

    def stats(self) -> dict[str, Any]:
        """The sandbox's counters (``GET /_sandbox/stats``)."""
        with urllib.request.urlopen(f"{self.url}/_sandbox/stats", timeout=30) as r:
            found: dict[str, Any] = json.loads(r.read())
        return found

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the sandbox process has used so far (Linux)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """The sandbox process's peak resident memory so far (``VmHWM``, Linux), in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def sandbox_process(latency: float = 0.05, faults: str | None = None, seed: int = 0,
                    batch_delay: float = 0.0) -> Iterator[SandboxProcess]:
    """Yield a sandbox subprocess; stop it afterwards."""
    exe = Path(sys.executable).with_name("protokit")
    cmd = [str(exe), "sandbox", "--port", "0", "--latency", str(latency), "--seed", str(seed),
           "--batch-delay", str(batch_delay)]
    if faults:
        cmd += ["--faults", faults]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"sandbox did not start: {line!r}")
        yield SandboxProcess(line.removeprefix("listening on "), proc)
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def running_sandbox(latency: float = 0.05, faults: str | None = None, seed: int = 0) -> Iterator[str]:
    """Yield the base URL of a sandbox subprocess; stop it afterwards."""
    with sandbox_process(latency, faults, seed) as sb:
        yield sb.url
