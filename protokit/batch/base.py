"""What a provider's batch API looks like to protokit: one :class:`Backend` per provider, found
from a model by :func:`backend_for`, and what it reads back (an :class:`Answer` or an error per
request, a :class:`Status` per batch). A batched call is billed at the batch price (:func:`batch_cost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from protokit.errors import ConfigError, ProtokitError
from protokit.models import Model, Request, Usage, prices

__all__ = ["Answer", "Backend", "Result", "Status", "backend_for", "backend_named", "batch_cost", "batch_reserve",
           "batchable", "check_batch"]


@dataclass
class Answer:
    """One request's answer, read from a batch's results: its text and usage."""

    text: str
    usage: Usage


Result = Answer | ProtokitError


@dataclass
class Status:
    """Where a batch is: ``running``, ``ended`` (results ready) or ``failed`` (``message`` says why)."""

    state: str
    done: int
    failed: int
    total: int
    message: str = ""


class Backend(Protocol):
    """One provider's batch API, driven through its official SDK with the model's own client."""

    provider: str
    max_requests: int
    max_bytes: int

    def line(self, model: Model, request: Request, custom_id: str) -> dict[str, Any]:
        """One request in the provider's batch format (JSON-able)."""
        ...

    async def submit(self, model: Model, lines: list[dict[str, Any]], *, run_id: str | None) -> dict[str, Any]:
        """Create a batch of ``lines``; the provider's ids to keep (``id`` is the batch's)."""
        ...

    async def status(self, model: Model, ids: Mapping[str, Any]) -> Status:
        """Where the batch is now."""
        ...

    async def results(self, model: Model, ids: Mapping[str, Any], requests: Mapping[str, Request]) -> dict[str, Result]:
        """Each request's answer or classified error, by custom id (an ended batch)."""
        ...

    async def cancel(self, model: Model, ids: Mapping[str, Any]) -> None:
        """Ask the provider to cancel the batch."""
        ...


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


def check_batch(value: Any) -> bool:
    """``batch=`` as given to compare or estimate: True or False."""
    if not isinstance(value, bool):
        raise ConfigError(f"batch must be True or False, got {value!r}")
    return value


def batch_cost(model: Model, usage: Usage) -> tuple[float | None, str | None]:
    """(cost in USD at the batch price, where the price came from) of one batched answer."""
    price = prices.batch_price(model.spec, price=model.price)
    usd = prices.cost(model.spec, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
                      usage.reasoning_tokens, price=price)
    if usd is None:
        return None, None
    source = "model" if model.price is not None else prices.price_date(model.spec)
    return usd, f"{source} batch"


def batch_reserve(model: Model, request: Request, output_tokens: int = prices.DEFAULT_OUTPUT_TOKENS) -> float:
    """What a batched call reserves from a budget before it is sent: its estimated cost at the batch price."""
    price = prices.batch_price(model.spec, price=model.price)
    if price is None:
        return 0.0
    tin = prices.estimate_input_tokens(sum(len(m["content"]) for m in request.messages))
    tout = int(request.options.get("max_tokens") or output_tokens)
    return (tin * price["input"] + tout * price["output"]) / 1_000_000
