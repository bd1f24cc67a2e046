"""What a provider's batch API looks like to protokit: one :class:`Backend` per provider (found
from a model in :mod:`protokit.batch.registry`), and what it reads back (an :class:`Answer` or an
error per request, a :class:`Status` per batch). A batched call is billed at the batch price
(:func:`batch_cost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from protokit.errors import ConfigError, ProtokitError
from protokit.models import Model, Request, Usage, prices

__all__ = ["Answer", "Backend", "Result", "Status", "batch_cost", "batch_reserve", "check_batch"]


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
    """What a batched call reserves from a budget before it is sent: the model's own estimate at the batch price.

    The list-price estimate scaled by the smaller of the two discounts (input, output), so it stays an upper bound.
    """
    full = model.estimate_cost(request, output_tokens)
    normal, batch = model.price_entry(), prices.batch_price(model.spec, price=model.price)
    if not full or normal is None or batch is None:
        return full
    ratio = max(batch[side] / normal[side] if normal[side] else 1.0 for side in ("input", "output"))
    return full * ratio
