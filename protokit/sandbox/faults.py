"""Fault injection: a spec like ``429=0.1,timeout=0.02`` drawn from a seeded RNG."""

from __future__ import annotations

import random

from protokit.errors import SandboxError

__all__ = ["FAULT_MESSAGES", "KNOWN_FAULTS", "STATUS_FAULTS", "FaultPlan", "parse_faults"]

# status faults answer with a provider-shaped error body; the others misbehave at the transport,
# but for leaky401: a 401 whose message quotes the key the client sent, as a careless proxy's does
# (to check that no credential gets through protokit's error texts).
STATUS_FAULTS: dict[str, int] = {"400": 400, "401": 401, "429": 429, "500": 500, "529": 529}
# midstream: a streamed answer starts, then the stream carries an error event (Anthropic's
# overloaded_error, OpenAI's {"error": ...} chunk) and ends; a request not streamed gets a 529.
KNOWN_FAULTS: tuple[str, ...] = (*STATUS_FAULTS, "timeout", "reset", "malformed", "leaky401", "midstream")
# The error message a status fault answers with (in a batch too).
FAULT_MESSAGES: dict[int, str] = {
    400: "sandbox fault: invalid request",
    401: "sandbox fault: invalid API key",
    429: "sandbox fault: rate limit reached, retry after a moment",
    500: "sandbox fault: internal server error",
    529: "sandbox fault: overloaded",
}


class FaultPlan:
    """Chosen faults with their probabilities; :meth:`draw` picks at most one per request."""

    def __init__(self, spec: str | None = None, seed: int = 0) -> None:
        self.spec = spec or ""
        self.seed = seed
        self.faults = parse_faults(self.spec)
        # A string seed keeps this stream apart from the latency RNG for the same seed.
        self._rng = random.Random(f"faults:{seed}")

    def draw(self) -> str | None:
        """The fault for the next request, or None; consumes one number only when faults are set."""
        if not self.faults:
            return None
        x = self._rng.random()
        for name, p in self.faults:
            if x < p:
                return name
            x -= p
        return None

    def __repr__(self) -> str:
        return f"FaultPlan({self.spec!r}, seed={self.seed})"


def parse_faults(spec: str) -> list[tuple[str, float]]:
    """Parse ``name=prob,...`` into pairs in spec order; raise SandboxError on anything odd."""
    known = ", ".join(KNOWN_FAULTS)
    pairs: list[tuple[str, float]] = []
    seen: set[str] = set()
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in KNOWN_FAULTS:
            raise SandboxError(f"bad fault {item!r} in {spec!r}: use NAME=PROBABILITY with NAME one of {known}")
        if name in seen:
            raise SandboxError(f"fault {name!r} given twice in {spec!r}")
        try:
            prob = float(value)
        except ValueError:
            prob = -1.0
        if not 0.0 <= prob <= 1.0:
            raise SandboxError(f"bad probability {value.strip()!r} for fault {name!r}: use a number from 0 to 1")
        seen.add(name)
        pairs.append((name, prob))
    total = sum(p for _, p in pairs)
    if total > 1.0 + 1e-9:
        raise SandboxError(f"fault probabilities in {spec!r} add up to {total:g}; they must add up to at most 1")
    return pairs
