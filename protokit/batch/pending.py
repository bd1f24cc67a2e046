"""What a batch run holds and how its results become rows: the requests it sends or waits for
(:class:`Pending`), the batches it waits on (:class:`Live`), and a batched answer as a Response, an
error as the ledger keeps it and gives it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protokit.batch.base import Answer, Backend, Status, batch_cost
from protokit.batch.ledger import Job
from protokit.errors import ProtokitError, ProviderError, safe_text
from protokit.models import Model, Request, Response
from protokit.runner import Outcome, Progress
from protokit.secrets import looks_like_key

__all__ = ["Live", "Pending", "batch_group", "batch_response", "error_info", "json_tag", "request_of", "server_of",
           "stored_error", "tally"]


@dataclass(slots=True)
class Pending:
    """One request to send (or being waited for), and the calls (positions) it answers; dropped once answered."""

    key: str
    model: Model
    request: Request
    positions: list[int]
    reserved: float | None = None  # held in the run's budget until it is answered


@dataclass
class Live:
    """A batch this run waits for."""

    job: Job
    backend: Backend
    model: Model  # whose client talks to the provider
    pending: dict[str, Pending]
    status: Status | None = None
    failures: int = 0
    done: bool = False


def server_of(model: Model) -> str | None:
    """The model's server URL (secrets masked), None for the provider's own."""
    server = getattr(model, "_server", None)
    found = server() if callable(server) else None
    return safe_text(found) if isinstance(found, str) else None


def batch_group(model: Model, request: Request) -> tuple[Any, ...]:
    """Calls that can share a batch: one provider, server, key and model name."""
    key = getattr(model, "_key", None)
    secret = key() if callable(key) else None
    return (model.provider, server_of(model), hash(secret), request.model)


def json_tag(value: Any) -> Any:
    """A call's tag as the ledger can keep it: itself when it is JSON, else its text."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def tally(progress: Progress, outcome: Outcome) -> None:
    """Count one ended call in ``progress``."""
    progress.done += 1
    if outcome.error is not None:
        progress.errors += 1
    elif outcome.response is not None:
        progress.cached += bool(outcome.response.cached)
        progress.cost_usd += outcome.response.cost_usd or 0.0


def batch_response(model: Model, request: Request, answer: Answer, key: str, latency: float) -> Response:
    """A batched answer as a Response: priced at the batch price, its latency the batch's turnaround."""
    u = answer.usage
    cost, price_date = batch_cost(model, u)
    return Response(text=answer.text, model=model.id, latency_s=latency, input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens, cached_input_tokens=u.cached_input_tokens,
                    reasoning_tokens=u.reasoning_tokens, cost_usd=cost, finish_reason=u.finish_reason,
                    provider_model=u.provider_model, sample=request.sample, key=key,
                    secret_shaped=looks_like_key(answer.text), served_by=model.id, price_date=price_date,
                    tool_calls=u.tool_calls, raw=u.raw)


def request_of(d: Mapping[str, Any]) -> Request:
    """A request rebuilt from its cache request dict (the ledger's copy)."""
    return Request(d["provider"], d["model"], tuple(dict(m) for m in d["messages"]), dict(d["options"]),
                   int(d.get("sample", 0)))


def stored_error(info: Mapping[str, Any]) -> ProtokitError:
    """An error a collected batch recorded for a request (:func:`error_info`), as it was classified then."""
    error = ProviderError(str(info.get("message") or "failed in its batch"), status=info.get("status"))
    error.kind = str(info.get("kind") or "provider")
    return error


def error_info(error: ProtokitError) -> dict[str, Any]:
    """What the ledger keeps of the error a request ended in."""
    return {"kind": getattr(error, "kind", None) or type(error).__name__.lower(),
            "status": getattr(error, "status", None), "message": str(error)}
