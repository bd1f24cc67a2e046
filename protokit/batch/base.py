"""What a provider's batch API looks like to protokit: one :class:`Backend` per provider (found
from a model in :mod:`protokit.batch.registry`), and what it reads back (an :class:`Answer` or an
error per request, a :class:`Status` per batch). A batched call is billed at the batch price
(:func:`batch_cost`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Protocol

from protokit.errors import ConfigError, ProtokitError
from protokit.models import Model, Request, Usage, prices

__all__ = ["Answer", "Backend", "BatchInput", "RequestOf", "Result", "Status", "batch_cost", "batch_reserve",
           "check_batch"]


@dataclass
class Answer:
    """One request's answer, read from a batch's results: its text and usage."""

    text: str
    usage: Usage


Result = Answer | ProtokitError
RequestOf = Callable[[str], Request | None]  # the request a batch holds under a custom id, None for one it does not


class BatchInput:
    """A batch's requests as JSONL, one line each, written to a temporary file as they are made.

    Each line is encoded once, when it is added, and the whole file is never held in memory: an
    OpenAI input file of 190 MB is uploaded from disk. What :meth:`Backend.submit` sends.
    """

    def __init__(self, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.count = 0
        self.size = 0
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(), or the with block)

    def add(self, line: Mapping[str, Any]) -> bool:
        """Append one request's line; False, appending nothing, when it would pass the batch's limits.

        A batch always takes its first line, so a line too big for any batch is sent (and refused) alone.
        """
        # ASCII-escaped: a prompt's U+2028, U+0085 or form feed then cannot look like a line break to the
        # provider's JSONL reader (str.splitlines() takes all of them for one).
        data = json.dumps(line, separators=(",", ":")).encode() + b"\n"
        if self.count and (self.count >= self.max_requests or self.size + len(data) > self.max_bytes):
            return False
        self._file.write(data)
        self.count += 1
        self.size += len(data)
        return True

    def file(self) -> IO[bytes]:
        """The JSONL file, from its start (to upload it as it is)."""
        self._file.flush()
        self._file.seek(0)
        return self._file

    def lines(self) -> Iterator[dict[str, Any]]:
        """The lines, decoded again one at a time (for an API that takes the requests in its JSON body)."""
        for raw in self.file():
            yield json.loads(raw)

    def close(self) -> None:
        """Delete the file."""
        self._file.close()

    def __enter__(self) -> BatchInput:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass
class Status:
    """Where a batch is: ``running``, ``ended`` (results ready) or ``failed`` (``message`` says why).

    ``provider_status`` is the provider's own word for it (``validating``, ``in_progress``,
    ``finalizing``, ``canceling``, ...), shown to the user while waiting.
    """

    state: str
    done: int
    failed: int
    total: int
    message: str = ""
    provider_status: str = ""


class Backend(Protocol):
    """One provider's batch API, driven through its official SDK with the model's own client."""

    provider: str
    max_requests: int
    max_bytes: int

    def line(self, model: Model, request: Request, custom_id: str) -> dict[str, Any]:
        """One request in the provider's batch format (JSON-able)."""
        ...

    async def submit(self, model: Model, batch: BatchInput, *, run_id: str | None) -> dict[str, Any]:
        """Create a batch of the lines in ``batch``; the provider's ids to keep (``id`` is the batch's)."""
        ...

    async def status(self, model: Model, ids: Mapping[str, Any]) -> Status:
        """Where the batch is now."""
        ...

    def results(self, model: Model, ids: Mapping[str, Any], request_of: RequestOf) -> AsyncIterator[tuple[str, Result]]:
        """``(custom id, answer or classified error)`` of an ended batch's requests, one at a time as they are
        read (never the whole results in memory); a result whose custom id ``request_of`` does not know is
        skipped. A request the batch holds no result for is not yielded: see :meth:`missing`."""
        ...

    async def missing(self, model: Model, ids: Mapping[str, Any]) -> ProtokitError:
        """The error of a request an ended batch's results hold nothing for (the batch was cancelled, expired...)."""
        ...

    async def cancel(self, model: Model, ids: Mapping[str, Any]) -> None:
        """Ask the provider to cancel the batch."""
        ...

    async def clean(self, model: Model, ids: Mapping[str, Any]) -> None:
        """Delete what the batch left at the provider, once its results are stored (or it failed).

        Something already gone counts as deleted; anything else that could not be deleted is
        raised as one ProviderError naming it, after trying the rest.
        """
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
