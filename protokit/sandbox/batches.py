"""The providers' batch protocols: OpenAI files and batches, Anthropic message batches.

Each request in a batch is answered as the same request sent on its own would be (the
server's one reply logic, faults drawn from the same fault plan), at creation; the answers
are revealed over ``delay`` seconds (request *i* of *n* is done ``delay * (i + 1) / n``
after creation), so progress can be watched and a cancel lands half-way. A cancelled batch
ends at once: requests done by then keep their answers, the rest are cancelled.

OpenAI: ``POST /v1/files`` (multipart, ``purpose=batch``), ``GET /v1/files[/{id}[/content]]``,
``DELETE /v1/files/{id}``, ``POST /v1/batches`` (endpoint ``/v1/chat/completions``, window ``24h``),
``GET /v1/batches[/{id}]``, ``POST /v1/batches/{id}/cancel``. A finished batch has an output file (the
answered requests) and, when some failed, an error file (their errors, ``batch_expired``/``batch_cancelled``
among them).

Anthropic: ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}``,
``GET /v1/messages/batches/{id}/results`` (JSONL, once ended), ``POST /v1/messages/batches/{id}/cancel``,
``DELETE /v1/messages/batches/{id}`` (once ended, as the API allows).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from protokit.sandbox.anthropic_api import AnthropicDialect
from protokit.sandbox.faults import FAULT_MESSAGES, STATUS_FAULTS, FaultPlan
from protokit.sandbox.openai_api import OpenAIDialect
from protokit.sandbox.replies import BadRequest, Chat, Dialect, Reply

if TYPE_CHECKING:
    from protokit.sandbox.server import Stats

__all__ = ["BatchService"]

_ENDPOINT = "/v1/chat/completions"
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_WINDOW_S = 24 * 3600
# What a fault that misbehaves at the transport becomes inside a batch: the provider ran the
# request and it failed (there is no connection of its own to reset or to garble).
_TRANSPORT_FAULTS = {"reset": 500, "malformed": 500, "midstream": 529}


@dataclass
class _Item:
    """One request of a batch and how it ended: an answer body, or an error (status 0: expired)."""

    custom_id: str
    status: int = 200
    body: Any = None  # the answer (status 200), else the provider-shaped error body
    message: str = ""


@dataclass
class _Batch:
    id: str
    api: str  # "openai" | "anthropic"
    created: float
    items: list[_Item]
    input_file_id: str | None = None
    metadata: dict[str, str] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)  # OpenAI validation errors: the batch failed
    cancelled: float | None = None
    done_at_cancel: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    ended: float | None = None


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created: int


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, separators=(",", ":")))


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BatchService:
    """Files and batches in memory, answered with ``reply``, drawing faults from ``faults()``, counted in ``stats``.

    ``delay`` (seconds for a batch to finish) may be changed at any time; it applies to batches
    already pending too.
    """

    def __init__(self, reply: Callable[[Chat], Reply], faults: Callable[[], FaultPlan], stats: Stats,
                 delay: float = 0.0) -> None:
        self.reply = reply
        self.faults = faults
        self.stats = stats
        self.delay = delay
        self._files: dict[str, _File] = {}
        self._batches: dict[str, _Batch] = {}
        self._openai = OpenAIDialect()
        self._anthropic = AnthropicDialect()

    def add_routes(self, app: web.Application) -> None:
        """Register the files and batches routes of both providers."""
        r = app.router
        r.add_post("/v1/files", self._upload)
        r.add_get("/v1/files", self._list_files)
        r.add_get("/v1/files/{file_id}", self._file)
        r.add_get("/v1/files/{file_id}/content", self._file_content)
        r.add_delete("/v1/files/{file_id}", self._delete_file)
        r.add_post("/v1/batches", self._openai_create)
        r.add_get("/v1/batches", self._openai_list)
        r.add_get("/v1/batches/{batch_id}", self._openai_retrieve)
        r.add_post("/v1/batches/{batch_id}/cancel", self._openai_cancel)
        r.add_post("/v1/messages/batches", self._anthropic_create)
        r.add_get("/v1/messages/batches/{batch_id}", self._anthropic_retrieve)
        r.add_get("/v1/messages/batches/{batch_id}/results", self._anthropic_results)
        r.add_post("/v1/messages/batches/{batch_id}/cancel", self._anthropic_cancel)
        r.add_delete("/v1/messages/batches/{batch_id}", self._anthropic_delete)

    # -- answering ------------------------------------------------------------------------

    def _answer(self, dialect: Dialect, custom_id: str, body: Any) -> _Item:
        """One request of a batch, answered as the same request alone would be (faults included)."""
        fault = self.faults().draw()
        try:
            if not isinstance(body, dict):
                raise BadRequest("the request's body must be a JSON object")
            if body.get("stream"):
                raise BadRequest("stream: a batch request cannot stream")
            chat = dialect.parse(body)
        except BadRequest as exc:
            self.stats.record(f"{dialect.name}_batch", None, "400")
            return _Item(custom_id, 400, json.loads(dialect.error(400, str(exc))), str(exc))
        status = STATUS_FAULTS.get(fault or "") or _TRANSPORT_FAULTS.get(fault or "")
        if fault == "leaky401":
            status = 401
        if fault == "timeout":
            self.stats.record(f"{dialect.name}_batch", chat.model, "expired")
            return _Item(custom_id, 0, None, "the request was not run within the batch's window")
        if status:
            message = FAULT_MESSAGES[status]
            self.stats.record(f"{dialect.name}_batch", chat.model, str(status))
            return _Item(custom_id, status, json.loads(dialect.error(status, message)), message)
        self.stats.record(f"{dialect.name}_batch", chat.model, "200")
        return _Item(custom_id, 200, json.loads(dialect.render(chat, self.reply(chat))))

    def _done(self, batch: _Batch, now: float | None = None) -> int:
        """How many of the batch's requests are done (they finish in order over ``delay`` seconds)."""
        n = len(batch.items)
        if batch.errors:
            return 0
        if batch.cancelled is not None:
            return batch.done_at_cancel
        elapsed = (time.time() if now is None else now) - batch.created
        if self.delay <= 0:
            return n
        return min(n, int(elapsed * n / self.delay + 1e-9))

    def _cancel(self, batch: _Batch) -> None:
        if batch.cancelled is None and batch.ended is None and not batch.errors:
            now = time.time()
            batch.done_at_cancel = self._done(batch, now)
            batch.cancelled = now

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{secrets.token_hex(12)}"

    # -- OpenAI files -----------------------------------------------------------------------

    def _file_object(self, f: _File) -> dict[str, Any]:
        return {"id": f.id, "object": "file", "bytes": len(f.data), "created_at": f.created,
                "filename": f.filename, "purpose": f.purpose, "status": "processed", "expires_at": None,
                "status_details": None}

    def _add_file(self, filename: str, purpose: str, data: bytes) -> _File:
        f = _File(self._new_id("file-"), filename, purpose, data, int(time.time()))
        self._files[f.id] = f
        return f

    async def _upload(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
        except ValueError:
            return self._openai_error(400, "the upload must be multipart/form-data with 'file' and 'purpose'")
        purpose, upload = form.get("purpose"), form.get("file")
        if not isinstance(purpose, str) or not purpose:
            return self._openai_error(400, "'purpose' is required")
        if not isinstance(upload, web.FileField):
            return self._openai_error(400, "'file' is required and must be a file")
        f = self._add_file(upload.filename or "upload", purpose, upload.file.read())
        return _json(self._file_object(f))

    def _get_file(self, request: web.Request) -> _File | None:
        return self._files.get(request.match_info["file_id"])

    async def _file(self, request: web.Request) -> web.Response:
        f = self._get_file(request)
        return _json(self._file_object(f)) if f else self._openai_error(404, "No such File object")

    async def _file_content(self, request: web.Request) -> web.Response:
        f = self._get_file(request)
        if f is None:
            return self._openai_error(404, "No such File object")
        return web.Response(body=f.data, content_type="application/octet-stream")

    async def _list_files(self, request: web.Request) -> web.Response:
        data = [self._file_object(f) for f in reversed(list(self._files.values()))]
        return _json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                      "last_id": data[-1]["id"] if data else None, "has_more": False})

    async def _delete_file(self, request: web.Request) -> web.Response:
        f = self._files.pop(request.match_info["file_id"], None)
        if f is None:
            return self._openai_error(404, "No such File object")
        return _json({"id": f.id, "object": "file", "deleted": True})

    def _openai_error(self, status: int, message: str) -> web.Response:
        return web.Response(body=self._openai.error(status, message), status=status, content_type="application/json")

    # -- OpenAI batches ---------------------------------------------------------------------

    async def _openai_create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self._openai_error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return self._openai_error(400, "request body must be a JSON object")
        if body.get("endpoint") != _ENDPOINT:
            return self._openai_error(400, f"endpoint: the sandbox batches {_ENDPOINT} only")
        if body.get("completion_window") != "24h":
            return self._openai_error(400, "completion_window: must be '24h'")
        f = self._files.get(str(body.get("input_file_id")))
        if f is None:
            return self._openai_error(404, f"No such File object: {body.get('input_file_id')}")
        batch = _Batch(self._new_id("batch_"), "openai", time.time(), [], input_file_id=f.id,
                       metadata=body.get("metadata"))
        if f.purpose != "batch":
            batch.errors.append({"code": "invalid_file", "message": "the input file's purpose must be 'batch'",
                                 "line": None, "param": "input_file_id"})
        else:
            batch.items, batch.errors = self._openai_items(f.data)
        self._batches[batch.id] = batch
        self.stats.record_batch("openai")
        return _json(self._openai_batch(batch))

    def _openai_items(self, data: bytes) -> tuple[list[_Item], list[dict[str, Any]]]:
        """The requests of an input file, answered; or the validation errors that fail the batch."""
        lines: list[tuple[int, dict[str, Any]]] = []
        errors: list[dict[str, Any]] = []

        def bad(line: int, code: str, message: str) -> None:
            errors.append({"code": code, "message": message, "line": line, "param": None})

        seen: set[str] = set()
        models: set[str] = set()
        # JSONL: lines end at "\n" only (splitlines() would also break a line at U+2028 inside a string).
        for n, raw in enumerate(data.decode("utf-8", "replace").split("\n"), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                bad(n, "invalid_json_line", "this line is not valid JSON")
                continue
            cid = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(cid, str) or not cid:
                bad(n, "missing_required_parameter", "custom_id is required")
            elif cid in seen:
                bad(n, "duplicate_custom_id", f"custom_id {cid!r} appears twice")
            elif line.get("method") != "POST" or line.get("url") != _ENDPOINT:
                bad(n, "invalid_url", f"each line must be method POST to url {_ENDPOINT}")
            else:
                seen.add(cid)
                model = line.get("body", {}).get("model") if isinstance(line.get("body"), dict) else None
                models.add(str(model))
                lines.append((n, line))
        if not lines and not errors:
            bad(0, "empty_file", "the input file holds no requests")
        if len(models) > 1:
            bad(0, "mixed_models", f"a batch's requests must all ask one model, got {', '.join(sorted(models))}")
        if errors:
            return [], errors
        return [self._answer(self._openai, line["custom_id"], line["body"]) for _, line in lines], []

    def _openai_state(self, batch: _Batch) -> str:
        if batch.errors:
            return "failed"
        if batch.cancelled is not None:
            return "cancelled"
        return "completed" if self._done(batch) >= len(batch.items) else "in_progress"

    def _openai_finish(self, batch: _Batch) -> None:
        """Write the output and error files of a batch that has just ended."""
        if batch.ended is not None or self._openai_state(batch) not in ("completed", "cancelled"):
            return
        batch.ended = time.time()
        done = self._done(batch)
        out: list[str] = []
        err: list[str] = []
        for i, item in enumerate(batch.items):
            line: dict[str, Any] = {"id": f"batch_req_{secrets.token_hex(8)}", "custom_id": item.custom_id,
                                    "response": None, "error": None}
            if i >= done:
                line["error"] = {"code": "batch_cancelled",
                                 "message": "This request was not run: the batch was cancelled."}
            elif item.status == 0:
                line["error"] = {"code": "batch_expired", "message": "This request could not be executed before "
                                 "the completion window expired."}
            else:
                line["response"] = {"status_code": item.status, "request_id": f"req_{secrets.token_hex(8)}",
                                    "body": item.body}
            (out if item.status == 200 and i < done else err).append(json.dumps(line, separators=(",", ":")))
        if out:
            batch.output_file_id = self._add_file("batch_output.jsonl", "batch_output",
                                                  ("\n".join(out) + "\n").encode()).id
        if err:
            batch.error_file_id = self._add_file("batch_errors.jsonl", "batch_output",
                                                 ("\n".join(err) + "\n").encode()).id

    def _openai_batch(self, batch: _Batch) -> dict[str, Any]:
        self._openai_finish(batch)
        state = self._openai_state(batch)
        done = self._done(batch)
        failed = sum(1 for item in batch.items[:done] if item.status != 200)
        ended = int(batch.ended) if batch.ended is not None else None
        created = int(batch.created)
        return {
            "id": batch.id, "object": "batch", "endpoint": _ENDPOINT, "input_file_id": batch.input_file_id,
            "completion_window": "24h", "status": state, "created_at": created,
            "in_progress_at": None if batch.errors else created, "expires_at": created + _WINDOW_S,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "finalizing_at": ended if state == "completed" else None,
            "completed_at": ended if state == "completed" else None,
            "failed_at": created if batch.errors else None, "expired_at": None,
            "cancelling_at": int(batch.cancelled) if batch.cancelled is not None else None,
            "cancelled_at": ended if state == "cancelled" else None,
            "request_counts": {"total": len(batch.items), "completed": done - failed, "failed": failed},
            "metadata": batch.metadata,
        }

    def _openai_get(self, request: web.Request) -> _Batch | None:
        batch = self._batches.get(request.match_info["batch_id"])
        return batch if batch is not None and batch.api == "openai" else None

    async def _openai_retrieve(self, request: web.Request) -> web.Response:
        batch = self._openai_get(request)
        return _json(self._openai_batch(batch)) if batch else self._openai_error(404, "No such Batch object")

    async def _openai_cancel(self, request: web.Request) -> web.Response:
        batch = self._openai_get(request)
        if batch is None:
            return self._openai_error(404, "No such Batch object")
        self._cancel(batch)
        return _json(self._openai_batch(batch))

    async def _openai_list(self, request: web.Request) -> web.Response:
        data = [self._openai_batch(b) for b in reversed(list(self._batches.values())) if b.api == "openai"]
        return _json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                      "last_id": data[-1]["id"] if data else None, "has_more": False})

    # -- Anthropic message batches ----------------------------------------------------------

    def _anthropic_error(self, status: int, message: str) -> web.Response:
        return web.Response(body=self._anthropic.error(status, message), status=status,
                            content_type="application/json")

    async def _anthropic_create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self._anthropic_error(400, "request body is not valid JSON")
        reqs = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(reqs, list) or not reqs:
            return self._anthropic_error(400, "requests: must be a non-empty list")
        seen: set[str] = set()
        for i, r in enumerate(reqs):
            cid = r.get("custom_id") if isinstance(r, dict) else None
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                return self._anthropic_error(400, f"requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
            if cid in seen:
                return self._anthropic_error(400, f"requests.{i}.custom_id: {cid!r} is not unique in the batch")
            if not isinstance(r.get("params"), dict):
                return self._anthropic_error(400, f"requests.{i}.params: Field required")
            seen.add(cid)
        items = [self._answer(self._anthropic, r["custom_id"], r["params"]) for r in reqs]
        batch = _Batch(self._new_id("msgbatch_"), "anthropic", time.time(), items)
        self._batches[batch.id] = batch
        self.stats.record_batch("anthropic")
        return _json(self._anthropic_batch(batch, request))

    def _anthropic_batch(self, batch: _Batch, request: web.Request) -> dict[str, Any]:
        done = self._done(batch)
        ended = batch.cancelled is not None or done >= len(batch.items)
        if ended and batch.ended is None:
            batch.ended = time.time()
        counts = {"processing": 0 if ended else len(batch.items) - done, "succeeded": 0, "errored": 0,
                  "canceled": 0, "expired": 0}
        for i, item in enumerate(batch.items):
            if i < done:
                counts["succeeded" if item.status == 200 else "expired" if item.status == 0 else "errored"] += 1
            elif ended:
                counts["canceled"] += 1
        results = f"{request.scheme}://{request.host}/v1/messages/batches/{batch.id}/results" if ended else None
        return {
            "id": batch.id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts, "ended_at": _iso(batch.ended), "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + _WINDOW_S), "archived_at": None,
            "cancel_initiated_at": _iso(batch.cancelled), "results_url": results,
        }

    def _anthropic_get(self, request: web.Request) -> _Batch | None:
        batch = self._batches.get(request.match_info["batch_id"])
        return batch if batch is not None and batch.api == "anthropic" else None

    async def _anthropic_retrieve(self, request: web.Request) -> web.Response:
        batch = self._anthropic_get(request)
        if batch is None:
            return self._anthropic_error(404, "message batch not found")
        return _json(self._anthropic_batch(batch, request))

    async def _anthropic_cancel(self, request: web.Request) -> web.Response:
        batch = self._anthropic_get(request)
        if batch is None:
            return self._anthropic_error(404, "message batch not found")
        self._cancel(batch)
        return _json(self._anthropic_batch(batch, request))

    async def _anthropic_delete(self, request: web.Request) -> web.Response:
        batch = self._anthropic_get(request)
        if batch is None:
            return self._anthropic_error(404, "message batch not found")
        if self._anthropic_batch(batch, request)["processing_status"] != "ended":
            return self._anthropic_error(400, f"message batch {batch.id} is still in progress; cancel it "
                                              "before deleting it")
        del self._batches[batch.id]
        return _json({"id": batch.id, "type": "message_batch_deleted"})

    async def _anthropic_results(self, request: web.Request) -> web.Response:
        batch = self._anthropic_get(request)
        if batch is None:
            return self._anthropic_error(404, "message batch not found")
        if self._anthropic_batch(batch, request)["processing_status"] != "ended":
            return self._anthropic_error(400, "the batch is still processing; its results are not ready")
        done = self._done(batch)
        lines = []
        for i, item in enumerate(batch.items):
            if i >= done:
                result: dict[str, Any] = {"type": "canceled"}
            elif item.status == 200:
                result = {"type": "succeeded", "message": item.body}
            elif item.status == 0:
                result = {"type": "expired"}
            else:
                result = {"type": "errored", "error": item.body}
            lines.append(json.dumps({"custom_id": item.custom_id, "result": result}, separators=(",", ":")))
        return web.Response(body=("\n".join(lines) + "\n").encode(), content_type="application/binary")
