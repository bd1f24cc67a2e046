"""The sandbox's settings as one validated, keyword-only value object."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from protokit.errors import SandboxError
from protokit.sandbox.faults import parse_faults

__all__ = ["DEFAULT_PORT", "SandboxConfig", "check_batch_delay", "parse_latency"]

DEFAULT_PORT = 8765
HOST = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """How the sandbox behaves: latency range, fault spec and seed, script, timeout hold, batch delay."""

    latency: tuple[float, float] = (0.0, 0.0)
    faults: str | None = None
    seed: int = 0
    script: Path | None = None
    timeout_hold: float = 30.0
    retry_after_ms: int = 20
    batch_delay: float = 0.0

    @classmethod
    def build(
        cls,
        *,
        latency: float | str | tuple[float, float] | None = 0.0,
        faults: str | None = None,
        seed: int = 0,
        script: str | Path | None = None,
        timeout_hold: float = 30.0,
        retry_after_ms: int = 20,
        batch_delay: float = 0.0,
    ) -> SandboxConfig:
        """Validate user-facing values (latency ``S``/``MIN:MAX``, fault spec) into a config."""
        parse_faults(faults or "")  # fail now, with the list of known names, not on first request
        if not (isinstance(timeout_hold, (int, float)) and 0 <= timeout_hold < math.inf):
            raise SandboxError(f"bad timeout hold {timeout_hold!r}: use a number of seconds >= 0")
        if not (isinstance(retry_after_ms, int) and retry_after_ms >= 0):
            raise SandboxError(f"bad retry-after-ms {retry_after_ms!r}: use a whole number >= 0")
        check_batch_delay(batch_delay)
        return cls(
            latency=parse_latency(latency),
            faults=faults or None,
            seed=int(seed),
            script=Path(script) if script is not None else None,
            timeout_hold=float(timeout_hold),
            retry_after_ms=retry_after_ms,
            batch_delay=float(batch_delay),
        )


def check_batch_delay(value: object) -> float:
    """A batch delay in seconds (a number >= 0), or a one-line SandboxError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise SandboxError(f"bad batch delay {value!r}: use a number of seconds >= 0")
    return float(value)


def parse_latency(value: float | str | tuple[float, float] | None) -> tuple[float, float]:
    """Parse a latency ``S`` or ``MIN:MAX`` (seconds) into a (low, high) range."""
    if value is None:
        return (0.0, 0.0)
    try:
        if isinstance(value, tuple):
            low, high = float(value[0]), float(value[1])
        elif isinstance(value, str) and ":" in value:
            a, b = value.split(":", 1)
            low, high = float(a), float(b)
        else:
            low = high = float(value)
    except (TypeError, ValueError, IndexError):
        raise SandboxError(f"bad latency {value!r}: use seconds like 0.2 or a range like 0.1:0.5") from None
    if not (0.0 <= low <= high < math.inf):
        raise SandboxError(f"bad latency {value!r}: need 0 <= MIN <= MAX seconds")
    return (low, high)
