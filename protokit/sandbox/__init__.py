"""A local server that speaks the OpenAI and Anthropic APIs, for tests and offline demos.

It stands in for the providers' network only: the official SDKs talk to it
unchanged. Replies are deterministic (``echo`` returns the last user message;
other models pick words seeded by a hash of the request, or follow a script),
and latency and faults (429, 500, timeouts, resets, malformed bodies, error events
mid-stream) can be injected from a seed. Imports nothing of protokit but :mod:`protokit.errors`.
"""

from __future__ import annotations

from protokit.sandbox.background import Sandbox
from protokit.sandbox.config import DEFAULT_PORT, SandboxConfig
from protokit.sandbox.faults import KNOWN_FAULTS

__all__ = ["DEFAULT_PORT", "KNOWN_FAULTS", "Sandbox", "SandboxConfig"]
