"""Which models' calls a batch API can carry, and the backend of each provider.

The built-in OpenAI and Anthropic adapters (and models derived from them: ``base_url=`` servers,
named settings, sweeps) have one; a callable, a fallback or a third-party provider has none, and
its calls run as usual in a batched comparison.
"""

from __future__ import annotations

import functools

from protokit.batch.base import Backend
from protokit.errors import ConfigError
from protokit.models import Model, Request

__all__ = ["backend_for", "backend_named", "batchable"]


@functools.cache
def _backends() -> dict[str, tuple[type[Model], Backend]]:
    # Imported here: each pulls in its SDK, which a run without batch=True never needs.
    from protokit.batch.anthropic import AnthropicBatches
    from protokit.batch.openai import OpenAIBatches
    from protokit.models.anthropic_adapter import AnthropicModel
    from protokit.models.openai_adapter import OpenAIModel

    return {"openai": (OpenAIModel, OpenAIBatches()), "anthropic": (AnthropicModel, AnthropicBatches())}


def backend_for(model: Model) -> Backend | None:
    """The batch API a model's calls can go through, or None (a callable, a fallback, another provider)."""
    for cls, backend in _backends().values():
        if isinstance(model, cls) and not model.composite:
            return backend
    return None


def backend_named(provider: str) -> Backend:
    """The batch API of a provider by name (for a batch read back from the run store)."""
    found = _backends().get(provider)
    if found is None:
        raise ConfigError(f"no batch API is known for provider {provider!r}")
    return found[1]


def batchable(model: Model, request: Request) -> bool:
    """Whether one call can go through a batch API: one plain answer (no stream, no tool loop) of a known provider."""
    return (model.cacheable and not request.stream and request.max_steps == 1
            and backend_for(model) is not None)
