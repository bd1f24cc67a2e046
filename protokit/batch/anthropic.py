"""Anthropic's Message Batches API through the official SDK: create with ``requests=[{custom_id,
params}]``, retrieve, stream the results (JSONL), cancel.

Each request's params are the ones the Messages adapter sends (``AnthropicModel._params``), and
each answer is read as the adapter reads a message, so a batched answer is the answer of the same call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import anthropic

from protokit.batch.base import Answer, BatchInput, RequestOf, Result, Status
from protokit.errors import (
    Cancelled,
    ProtokitError,
    ProviderError,
    ProviderTimeoutError,
    ServerError,
    safe_text,
)
from protokit.models import Model, Request, Usage
from protokit.models._errors import ERROR_TYPE_STATUS, by_status, refused
from protokit.models.anthropic_adapter import AnthropicModel, _forced, read_message

__all__ = ["AnthropicBatches"]

_DEFAULT_SERVER = "api.anthropic.com"


def _adapter(model: Model) -> AnthropicModel:
    assert isinstance(model, AnthropicModel)
    return model


class AnthropicBatches:
    """The Message Batches API of Anthropic."""

    provider = "anthropic"
    max_requests = 100_000
    max_bytes = 240 * 1024 * 1024  # the API takes batches up to 256 MB

    def line(self, model: Model, request: Request, custom_id: str) -> dict[str, Any]:
        """``{"custom_id", "params": <the Messages request, as the chat adapter posts it>}``."""
        return {"custom_id": custom_id, "params": _adapter(model)._params(request)}

    async def submit(self, model: Model, batch: BatchInput, *, run_id: str | None) -> dict[str, Any]:
        """Create the batch (the API takes its requests in the JSON body: one batch's lines are decoded for it)."""
        m = _adapter(model)
        lines = list(batch.lines())
        with m._sdk_errors(anthropic, _DEFAULT_SERVER):
            created = await m._client().messages.batches.create(requests=lines)  # type: ignore[arg-type]
        return {"id": created.id}

    async def status(self, model: Model, ids: Mapping[str, Any]) -> Status:
        """``in_progress``/``canceling`` run; ``ended`` has its results ready."""
        m = _adapter(model)
        with m._sdk_errors(anthropic, _DEFAULT_SERVER):
            batch = await m._client().messages.batches.retrieve(ids["id"])
        c = batch.request_counts
        with m._shape():  # the SDK does not check the types of what a server sends: a count must be a number
            failed = int(c.errored) + int(c.canceled) + int(c.expired)
            done = int(c.succeeded) + failed
            total = done + int(c.processing)
        return Status("ended" if batch.processing_status == "ended" else "running", done, failed, total,
                      provider_status=safe_text(str(batch.processing_status)))

    async def results(self, model: Model, ids: Mapping[str, Any],
                      request_of: RequestOf) -> AsyncIterator[tuple[str, Result]]:
        """Stream the results (JSONL) and read each one as it comes."""
        m = _adapter(model)
        with m._sdk_errors(anthropic, _DEFAULT_SERVER):
            decoder = await m._client().messages.batches.results(ids["id"])
            async for item in decoder:
                request = request_of(item.custom_id)
                if request is not None:
                    yield item.custom_id, _read_result(m, item.result, request)

    async def missing(self, model: Model, ids: Mapping[str, Any]) -> ProtokitError:
        """An ended batch has a result for every request: one without is the provider's fault."""
        m = _adapter(model)
        return ServerError(f"{m.id}: the batch ended without a result for this request", model=m.id)

    async def cancel(self, model: Model, ids: Mapping[str, Any]) -> None:
        """Cancel the batch (requests already done keep their answers)."""
        m = _adapter(model)
        with m._sdk_errors(anthropic, _DEFAULT_SERVER):
            await m._client().messages.batches.cancel(ids["id"])

    async def clean(self, model: Model, ids: Mapping[str, Any]) -> None:
        """Delete the ended batch, and with it its results.

        They would expire on their own after 29 days, but until then they hold the run's prompts
        and answers (the user's cases) for anyone with the workspace's key; once read into the cache
        nothing needs them (a resume replays them from the cache), so a careful user deletes them,
        as the OpenAI files are. The cost stays in the Console's usage and cost pages.
        """
        m = _adapter(model)
        try:
            with m._sdk_errors(anthropic, _DEFAULT_SERVER):
                await m._client().messages.batches.delete(ids["id"])
        except ProviderError as exc:
            if exc.status != 404:  # gone already: what was wanted
                raise ProviderError(f"{m.id}: could not delete batch {ids['id']} ({exc})", status=exc.status,
                                    model=m.id) from exc


def _read_result(model: AnthropicModel, result: Any, request: Request) -> Result:
    kind = getattr(result, "type", None)
    if kind == "succeeded":
        usage = Usage()
        try:
            with model._shape():
                text = read_message(result.message.to_dict(), usage, _forced(request))
        except ProtokitError as exc:
            return exc
        if usage.finish_reason == "refusal":
            return refused(model.id, text)
        return Answer(text, usage)
    if kind == "errored":  # the error object the Messages API would have answered with: its type gives the status
        error = getattr(getattr(result, "error", None), "error", None)
        etype = str(getattr(error, "type", "") or "api_error")
        message = safe_text(str(getattr(error, "message", "") or etype))
        return by_status(ERROR_TYPE_STATUS.get(etype, 500), message, model.id, None, model.key_env_var or "")
    if kind == "canceled":
        return Cancelled(f"{model.id}: not run, the batch was cancelled")
    if kind == "expired":
        return ProviderTimeoutError(f"{model.id}: not run within the batch's 24 h window; run it again",
                                    model=model.id)
    return ServerError(f"{model.id}: unknown batch result type {kind!r}", model=model.id)
