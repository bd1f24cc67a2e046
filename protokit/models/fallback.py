"""A model that falls back to the next one when a provider fails.

``pk.fallback("openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5")`` asks the
first model; when its call ends in a provider error (after the runner's own
retries) it asks the next. Each inner call goes through the cache under its own
model id, so a replay takes the same path as the recording: a model with no
recorded answer counts as failed and the next is tried.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from protokit.errors import CacheMiss, ConfigError, MissingKeyError, ProviderError
from protokit.models import base
from protokit.models.base import Model, Request, Response

__all__ = ["FallbackModel", "fallback"]

_log = logging.getLogger(__name__)


class FallbackModel(Model):
    """Tries each model in order; the Response's ``served_by`` names the model that answered.

    Each member is asked once through the current pipeline, so it gets the run's retry
    policy, per-attempt timeout and budget; the chain as a whole is never retried.
    """

    provider = "fallback"
    cacheable = False  # the inner models' calls are cached, each under its own id
    composite = True

    def __init__(self, models: list[Model], *, name: str | None = None) -> None:
        if len(models) < 2:
            raise ConfigError("pk.fallback() needs at least two models, e.g. pk.fallback('openai:a', 'anthropic:b')")
        self.models = models
        # Options are the inner models' business; accept the union so callers can pass any of them.
        self.options = frozenset().union(*(m.options for m in models))  # type: ignore[misc]
        super().__init__(name or "|".join(m.id for m in models))

    def __repr__(self) -> str:
        return "pk.fallback(" + ", ".join(repr(m.id) for m in self.models) + ")"

    def unpriced(self) -> list[str]:
        """Members whose price is unknown."""
        return [spec for m in self.models for spec in m.unpriced()]

    def estimate_cost(self, request: Request, output_tokens: int) -> float:
        """The dearest member's estimate: any one of them may end up answering."""
        return max(m.estimate_cost(request, output_tokens) for m in self.models)

    async def call(self, request: Request, on_chunk: Callable[[str], None] | None = None) -> Response:
        """Ask each model in turn until one answers; raise the last error when none does."""
        # Errors stay local to this call: concurrent calls of one FallbackModel share nothing.
        failures: list[str] = []
        last: Exception | None = None
        for position, model in enumerate(self.models, start=1):
            options = {k: v for k, v in request.options.items() if k in model.options}
            inner = model.request(list(request.messages), sample=request.sample, stream=request.stream, **options)
            if request.schema_class is not None:  # schema= as a pydantic class rides outside the options
                inner = dataclasses.replace(inner, schema_class=request.schema_class)
            try:
                return await base.run_pipeline(model, inner, on_chunk)
            except (ProviderError, CacheMiss, MissingKeyError) as exc:
                # A missing key or an unrecorded answer means this provider cannot answer here: try the next.
                kind = getattr(exc, "kind", type(exc).__name__)
                failures.append(f"{model.id}: {kind}")
                last = exc
                if position < len(self.models):
                    _log.warning("fallback: %s failed with %s; trying %s next (%s)", model.id, kind,
                                 self.models[position].id, self.id)
                else:
                    _log.warning("fallback: %s failed with %s; every member of %s failed", model.id, kind, self.id)
        assert last is not None
        summary = f"every model of {self.id} failed ({'; '.join(failures)}); last: {last}"
        if isinstance(last, ProviderError):
            err = type(last)(summary, status=last.status, model=self.id)
            err.retryable = False  # each member already had the run's retries
            raise err from last
        raise last


def fallback(*specs: Any, name: str | None = None, **options: Any) -> FallbackModel:
    """A model that asks ``specs[0]`` and, when its provider fails, the next, and so on.

    Each spec is anything ``pk.model`` accepts; ``options`` are given to each one it is
    built from a string.
    """
    from protokit.models import model

    return FallbackModel([model(s, **options) if not isinstance(s, Model) else s for s in specs], name=name)
