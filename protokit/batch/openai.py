"""OpenAI's Batch API through the official SDK: upload a JSONL file (purpose ``batch``), create a
batch on ``/v1/chat/completions`` with a 24 h window, poll it, read its output and error files.

Each request's body is the one the chat adapter sends (``OpenAIModel._params``), and each answer
is read as the adapter reads a completion, so a batched answer is the answer of the same call.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import openai

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
from protokit.models._errors import body_message, by_status
from protokit.models.openai_adapter import OpenAIModel, read_completion

__all__ = ["OpenAIBatches"]

ENDPOINT: Final = "/v1/chat/completions"
_DEFAULT_SERVER = "api.openai.com"
_UPLOAD_TIMEOUT_S = 600.0  # a 200 MB input file takes a while; the model's own timeout is for one answer


def _adapter(model: Model) -> OpenAIModel:
    assert isinstance(model, OpenAIModel)
    return model


class OpenAIBatches:
    """The Batch API of OpenAI (and of servers that offer it under the same paths)."""

    provider = "openai"
    max_requests = 50_000
    max_bytes = 190 * 1024 * 1024  # the API takes input files up to 200 MB

    def line(self, model: Model, request: Request, custom_id: str) -> dict[str, Any]:
        """``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": <the chat request>}``."""
        return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": _adapter(model)._params(request)}

    async def submit(self, model: Model, batch: BatchInput, *, run_id: str | None) -> dict[str, Any]:
        """Upload the requests' JSONL file (streamed from disk) and create the batch over it."""
        m = _adapter(model)
        client = m._client()
        extra: dict[str, Any] = {"metadata": {"protokit_run": run_id}} if run_id else {}
        with m._sdk_errors(openai, _DEFAULT_SERVER):
            upload = await client.files.create(file=("protokit-batch.jsonl", batch.file(), "application/jsonl"),
                                               purpose="batch", timeout=_UPLOAD_TIMEOUT_S)
        try:
            with m._sdk_errors(openai, _DEFAULT_SERVER):
                created = await client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT,
                                                      completion_window="24h", **extra)
        except ProviderError:
            # No batch holds the file, and nothing will ever read it: it would only keep the prompts there.
            with contextlib.suppress(Exception):
                await _delete(m, upload.id)
            raise
        return {"id": created.id, "input_file_id": upload.id}

    async def status(self, model: Model, ids: Mapping[str, Any]) -> Status:
        """``validating``/``in_progress``/``finalizing``/``cancelling`` run; ``completed``, ``expired``
        and ``cancelled`` have ended (their files hold what was done); ``failed`` never ran."""
        m = _adapter(model)
        with m._sdk_errors(openai, _DEFAULT_SERVER):
            batch = await m._client().batches.retrieve(ids["id"])
        counts = batch.request_counts
        with m._shape():  # the SDK does not check the types of what a server sends: a count must be a number
            done, failed, total = ((int(counts.completed) + int(counts.failed), int(counts.failed), int(counts.total))
                                   if counts else (0, 0, 0))
        shown = safe_text(str(batch.status))
        if batch.status == "failed":
            found = [str(e.message or e.code or "") for e in (batch.errors.data or [])] if batch.errors else []
            reason = "; ".join(x for x in found[:3] if x) or "the provider gave no reason"
            return Status("failed", done, failed, total, safe_text(reason), provider_status=shown)
        state = "ended" if batch.status in ("completed", "expired", "cancelled") else "running"
        return Status(state, done, failed, total, provider_status=shown)

    async def results(self, model: Model, ids: Mapping[str, Any],
                      request_of: RequestOf) -> AsyncIterator[tuple[str, Result]]:
        """Stream the output file (answers), then the error file (failed, expired or cancelled requests), a line
        at a time: a 190 MB output file is never held whole."""
        m = _adapter(model)
        client = m._client()
        with m._sdk_errors(openai, _DEFAULT_SERVER):
            batch = await client.batches.retrieve(ids["id"])
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            with m._sdk_errors(openai, _DEFAULT_SERVER):
                async with client.files.with_streaming_response.content(file_id,
                                                                         timeout=_UPLOAD_TIMEOUT_S) as content:
                    async for raw in content.iter_lines():
                        if not raw.strip():
                            continue
                        try:
                            line = json.loads(raw)
                        except ValueError:
                            continue  # one unreadable line: its request ends as missing
                        cid = line.get("custom_id") if isinstance(line, dict) else None
                        if isinstance(cid, str) and request_of(cid) is not None:
                            yield cid, _read_line(m, line)

    async def missing(self, model: Model, ids: Mapping[str, Any]) -> ProtokitError:
        """Not run (a cancelled or expired batch), else a result the batch should have had."""
        m = _adapter(model)
        with m._sdk_errors(openai, _DEFAULT_SERVER):
            batch = await m._client().batches.retrieve(ids["id"])
        return _missing(m, batch.status)

    async def cancel(self, model: Model, ids: Mapping[str, Any]) -> None:
        """Cancel the batch (requests already done keep their answers)."""
        m = _adapter(model)
        with m._sdk_errors(openai, _DEFAULT_SERVER):
            await m._client().batches.cancel(ids["id"])

    async def clean(self, model: Model, ids: Mapping[str, Any]) -> None:
        """Delete the batch's input file (the prompts) and its output and error files (the answers)."""
        m = _adapter(model)
        failed: list[str] = []
        files = [ids.get("input_file_id")]
        try:
            with m._sdk_errors(openai, _DEFAULT_SERVER):
                batch = await m._client().batches.retrieve(ids["id"])
            files += [batch.input_file_id, batch.output_file_id, batch.error_file_id]
        except ProviderError as exc:
            failed.append(f"its output and error files (reading batch {ids['id']}: {exc})")
        for file_id in dict.fromkeys(f for f in files if f):
            try:
                await _delete(m, file_id)
            except ProviderError as exc:
                failed.append(f"file {file_id} ({exc})")
        if failed:
            raise ProviderError(f"{m.id}: could not delete {'; '.join(failed)}", model=m.id)


async def _delete(model: OpenAIModel, file_id: str) -> None:
    """Delete one file; one that is gone already (404) is what was wanted."""
    try:
        with model._sdk_errors(openai, _DEFAULT_SERVER):
            await model._client().files.delete(file_id)
    except ProviderError as exc:
        if exc.status != 404:
            raise


def _read_line(model: OpenAIModel, line: Mapping[str, Any]) -> Result:
    """One line of an output or error file: the answer, or its error classified as a call's would be."""
    response, error = line.get("response"), line.get("error")
    if isinstance(response, Mapping) and response.get("status_code") == 200:
        try:
            with model._shape():
                return _answer(model, response["body"])
        except ProtokitError as exc:
            return exc
    if isinstance(response, Mapping) and isinstance(response.get("status_code"), int):
        status = response["status_code"]
        return by_status(status, body_message(response.get("body"), f"HTTP {status}"), model.id, None,
                         model.key_env_var or "")
    code = str(error.get("code") or "") if isinstance(error, Mapping) else ""
    message = str(error.get("message") or "") if isinstance(error, Mapping) else ""
    if code == "batch_cancelled":
        return Cancelled(f"{model.id}: not run, the batch was cancelled")
    if code == "batch_expired":
        return ProviderTimeoutError(f"{model.id}: not run within the batch's 24 h window; run it again",
                                    model=model.id)
    return ServerError(f"{model.id}: the batch failed this request ({code or 'no code'}: {message[:200]})",
                       model=model.id)


def _missing(model: OpenAIModel, status: str) -> ProviderError | Cancelled:
    if status == "cancelled":
        return Cancelled(f"{model.id}: not run, the batch was cancelled")
    if status == "expired":
        return ProviderTimeoutError(f"{model.id}: not run within the batch's 24 h window; run it again",
                                    model=model.id)
    return ServerError(f"{model.id}: the batch ended without a result for this request", model=model.id)


def _answer(model: OpenAIModel, completion: Mapping[str, Any]) -> Answer:
    """The answer in a completion's JSON, read as the chat adapter reads a non-streamed one."""
    usage = Usage()
    return Answer(read_completion(model.id, completion, usage), usage)
