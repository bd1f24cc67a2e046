"""Sending calls through the providers' batch APIs and waiting for them.

:func:`run_calls` is ``compare(batch=True)``: calls the cache answers, and calls no batch can carry
(a callable, a fallback, a tool loop), go through the runner as usual; the others are grouped by
server and model, deduplicated by cache key (the key is each request's custom id), and sent as
batches, unless a batch that holds them is still pending in the ledger (a run killed while
waiting): that one is picked up instead of sending them again. Every batch is recorded in the
ledger as soon as the provider accepts it, then polled until it ends (after each look, its
:class:`~protokit.batch.progress.BatchProgress` goes to ``on_batch``, else to a text progress bar);
its answers are written to the cache under the keys the same calls would use without a batch,
and each call ends as an Outcome, as the runner's do. Only then is what the batch left at the
provider deleted (its files; a failed delete is logged, never fatal), so a process killed before
can still read it. Cancelling (``runner.cancel()``, Ctrl-C) cancels the batches at the provider.

What the run holds stays small at 300,000 calls: each batch's JSONL goes to a temporary file as its
lines are made (and is uploaded from there), its requests stream into the ledger's rows, its results
are read a line at a time and stored a few thousand at a time, a request's :class:`Pending` is dropped
once answered, and ``compare`` keeps no outcome (``keep=False``): each becomes its row in ``on_outcome``.

A run whose process ended is finished from the ledger by :mod:`protokit.batch.resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from protokit import cache as cache_mod
from protokit.batch.base import Answer, Backend, BatchInput, Result, batch_reserve
from protokit.batch.ledger import Job, Ledger
from protokit.batch.pending import (
    Live,
    Pending,
    batch_group,
    batch_response,
    error_info,
    json_tag,
    request_of,
    server_of,
    stored_error,
    tally,
)
from protokit.batch.progress import BatchProgress, TextBar, batch_progress
from protokit.batch.registry import backend_for, backend_named, batchable
from protokit.errors import BadRequestError, Cancelled, ProtokitError, ProviderError, ServerError, safe_text
from protokit.models import Model, Request, Response, base
from protokit.runner import Call, Outcome, Progress, Runner

__all__ = ["POLL_FIRST_S", "POLL_MAX_S", "BatchRun", "OnBatch", "run_calls"]

POLL_FIRST_S = 0.2  # the first look; each next one waits 1.5x longer, up to POLL_MAX_S
POLL_MAX_S = 30.0
_POLL_GROWTH = 1.5
_CANCEL_WAIT_S = 3.0  # Ctrl-C: how long to wait for the provider to accept the cancel
_MAX_POLL_FAILURES = 8  # retryable errors in a row while polling before the run stops waiting
_STORE_EVERY = 2000  # results read from a batch before they are written (cache, ledger) and their calls ended

OnOutcome = Callable[[Outcome, Progress], None]
OnBatch = Callable[[BatchProgress], None]

_log = logging.getLogger(__name__)


class BatchRun:
    """Calls sent as batches (or picked up from pending ones), waited for and ended as Outcomes."""

    def __init__(self, calls: Sequence[Call], *, cache: cache_mod.Cache, runner: Runner | None = None,
                 run_id: str | None = None, on_outcome: OnOutcome | None = None,
                 cancel_on_interrupt: bool = True, bar: TextBar | None = None,
                 on_batch: OnBatch | None = None, keep: bool = True) -> None:
        self.calls = list(calls)
        self.cache = cache
        self.runner = runner
        self.run_id = run_id
        self.on_outcome = on_outcome
        self.cancel_on_interrupt = cancel_on_interrupt
        self.ledger = Ledger(cache)
        self.progress = Progress(total=len(self.calls))
        # keep=False: an outcome is only handed to on_outcome (compare makes its row there), never held.
        self.keep = keep
        self.outcomes: list[Outcome | None] = [None] * len(self.calls) if keep else []
        self._ended = bytearray(len(self.calls))
        self.jobs: list[Live] = []
        self.bar = bar if bar is not None else TextBar()
        self.on_batch = on_batch  # shows the batches' progress instead of the bar
        self.started = time.monotonic()

    # -- ending calls -------------------------------------------------------------------------
    def end(self, pos: int, outcome: Outcome) -> None:
        """End one call (once): count it and hand it on."""
        if self._ended[pos]:
            return
        self._ended[pos] = 1
        if self.keep:
            self.outcomes[pos] = outcome
        tally(self.progress, outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome, self.progress)

    def _settle(self, p: Pending, response: Response | None) -> None:
        budget = self.runner.budget if self.runner is not None else None
        if budget is not None and p.reserved is not None:
            budget.settle(p.reserved, p.model, response)
            p.reserved = None

    def _end_pending(self, p: Pending, result: Result, latency: float = 0.0) -> None:
        """End every call a request answers: the answer (its first call's is the one sent), or the error."""
        first: Response | None = None
        for n, pos in enumerate(p.positions):
            call = self.calls[pos]
            if not isinstance(result, Answer):
                self.end(pos, Outcome(call, error=result, attempts=1))
                continue
            response = batch_response(call.model, call.request, result, p.key, latency)
            response.cached = n > 0  # the same request as the first call: answered once
            first = first or response
            try:
                self.end(pos, Outcome(call, response=call.model.finish(call.request, response), attempts=1))
            except ProtokitError as exc:  # a schema error keeps the answer (exc.response) for the row
                self.end(pos, Outcome(call, error=exc, attempts=1))
        self._settle(p, first)

    def end_collected(self, positions: Sequence[int], model: Model, key: str, error: Mapping[str, Any] | None,
                      job_id: str) -> Response | None:
        """End calls whose batch was read already (by an earlier run, or by another process now): the answer
        from the cache, else the error the ledger recorded for it. Returns the first call's response."""
        entry = self.cache.get(key) if error is None else None
        first: Response | None = None
        for pos in positions:
            call = self.calls[pos]
            if entry is None:
                self.end(pos, Outcome(call, error=stored_error(error or {
                    "message": f"{model.id}: the answer read from batch {job_id} is no longer in the cache"})))
                continue
            response = Response.from_entry(model.id, entry, sample=call.request.sample, key=key)
            first = first or response
            try:
                self.end(pos, Outcome(call, response=model.finish(call.request, response)))
            except ProtokitError as exc:  # a schema error keeps the answer (exc.response) for the row
                self.end(pos, Outcome(call, error=exc))
        return first

    def _collected_elsewhere(self, j: Live) -> bool:
        """Whether another process has read this batch (the ledger says so). It then deleted what the batch
        left at the provider, so this run reads nothing there: its calls are ended from the cache and ledger."""
        if self.ledger.status(j.job) != "collected":
            return False
        for held in self.ledger.requests(j.job):
            p = j.pending.pop(held.key, None)
            if p is not None:
                self._settle(p, self.end_collected(p.positions, p.model, held.key, held.error, j.job.id))
        self._fail(j, ServerError(f"{j.model.id}: batch {j.job.id} was read by another process, which kept no "
                                  "result for this request", model=j.model.id))  # none expected: ends the rest
        return True

    def _fail(self, live: Live, error: ProtokitError) -> None:
        live.done = True
        for p in live.pending.values():
            self._end_pending(p, error)
        live.pending.clear()

    # -- compare(batch=True) ------------------------------------------------------------------
    def _partition(self) -> tuple[dict[tuple[Any, ...], dict[str, Pending]], list[int]]:
        """Calls to batch (by group, by key) and calls for the runner (cache hits, calls no batch can carry).

        Keys are looked up in the cache 500 calls at a time, so no second list of every call's key is made.
        """
        mode = self.cache.mode
        groups: dict[tuple[Any, ...], dict[str, Pending]] = {}
        direct: list[int] = []
        group_of: dict[tuple[int, str], dict[str, Pending]] = {}  # by (model, model name): _group reads the env

        def place(lot: list[tuple[int, str]]) -> None:
            hits = self._hits([key for _, key in lot]) if mode == "auto" else set()
            for pos, key in lot:
                if key in hits:
                    direct.append(pos)  # replayed by the runner, as any recorded answer
                    continue
                call = self.calls[pos]
                at = (id(call.model), call.request.model)
                if at not in group_of:
                    group_of[at] = groups.setdefault(batch_group(call.model, call.request), {})
                group = group_of[at]
                if key in group:
                    group[key].positions.append(pos)
                else:
                    group[key] = Pending(key, call.model, call.request, [pos])

        lot: list[tuple[int, str]] = []
        for pos, call in enumerate(self.calls):
            # A chained call (a conversation's turns) needs the answer before it: never in a batch.
            chained = getattr(call, "then", None) is not None or getattr(call, "skip", None) is not None
            if mode == "replay" or chained or not batchable(call.model, call.request):
                direct.append(pos)
                continue
            lot.append((pos, cache_mod.request_key(call.request.key_dict())))
            if len(lot) >= 500:
                place(lot)
                lot = []
        place(lot)
        return groups, sorted(direct)

    def _hits(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        with self.cache.lock:
            conn = self.cache.connection()
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                found.update(r[0] for r in conn.execute(
                    f"SELECT key FROM entries WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def _reserve(self, groups: dict[tuple[Any, ...], dict[str, Pending]]) -> None:
        """Hold each request's batch-priced estimate in the budget; one that does not fit is not sent."""
        budget = self.runner.budget if self.runner is not None else None
        if budget is None:
            return
        for pending in groups.values():
            for key, p in list(pending.items()):
                usd = batch_reserve(p.model, p.request)
                if budget.reserve(usd):
                    p.reserved = usd
                else:
                    del pending[key]
                    self._end_pending(p, budget.refusal(p.model, p.request, usd))

    def _adopt(self, groups: dict[tuple[Any, ...], dict[str, Pending]]) -> None:
        """Take over pending batches (sent by a run that ended before reading them) that hold these requests."""
        where = {key: pending for pending in groups.values() for key in pending}
        if not where:
            return
        for job in self.ledger.pending_for(list(where)):
            held = [k for k in self.ledger.keys(job) if k in where and k in where[k]]
            if not held:
                continue
            model = where[held[0]][held[0]].model
            if job.model != model.spec or job.state.get("base_url") != server_of(model):
                continue  # the same request to another server: that batch is not ours to read
            self.jobs.append(Live(job, backend_named(job.provider), model, {k: where[k].pop(k) for k in held}))

    async def _submit(self, groups: dict[tuple[Any, ...], dict[str, Pending]]) -> None:
        """Send each group's requests as batches, each line written to its batch's file as it is made."""
        for pending in groups.values():
            if not pending:
                continue
            model = next(iter(pending.values())).model
            backend = backend_for(model)
            assert backend is not None
            chunk: list[Pending] = []
            batch = BatchInput(backend.max_requests, backend.max_bytes)
            try:
                for p in pending.values():
                    try:
                        line = backend.line(model, p.request, p.key)
                    except ProtokitError as exc:  # this request cannot be asked (an empty message): its rows say why
                        self._end_pending(p, exc)
                        continue
                    if not batch.add(line):  # full: send it, start the next one with this line
                        await self._send(backend, model, batch, chunk)
                        batch.close()
                        batch, chunk = BatchInput(backend.max_requests, backend.max_bytes), []
                        batch.add(line)
                    chunk.append(p)
                if chunk:
                    await self._send(backend, model, batch, chunk)
            finally:
                batch.close()

    async def _send(self, backend: Backend, model: Model, batch: BatchInput, chunk: list[Pending]) -> None:
        """Send one batch and record it in the ledger at once: a process killed from then on leaves it to resume."""
        try:
            ids = await backend.submit(model, batch, run_id=self.run_id)
        except ProviderError as exc:
            for p in chunk:
                self._end_pending(p, _submit_error(exc, model))
            return
        job = Job(str(ids["id"]), self.run_id, backend.provider, model.spec, "submitted",
                  {"model_id": model.id, "base_url": server_of(model), "price": model.price, "ids": ids,
                   "submitted": time.time(), "size": len(chunk)})
        self.ledger.save(job, ((p.key, p.request.key_dict(), [json_tag(self.calls[i].tag) for i in p.positions])
                               for p in chunk))
        self.jobs.append(Live(job, backend, model, {p.key: p for p in chunk}))

    async def _direct(self, positions: list[int]) -> None:
        """The calls no batch carries, through the runner; their outcomes counted with the batches'."""
        if not positions or self.runner is None:
            return
        runner = self.runner
        index = {id(self.calls[pos]): pos for pos in positions}
        saved = runner.on_result

        def relay(outcome: Outcome, _progress: Progress) -> None:
            pos = index.get(id(outcome.call))
            if pos is not None:
                self.end(pos, outcome)
            elif self.on_outcome is not None:  # a call chained after one of ours: handed on, not counted
                self.on_outcome(outcome, self.progress)

        runner.on_result = relay
        try:
            outcomes = await runner.run([self.calls[pos] for pos in positions], keep=self.keep)
        finally:
            runner.on_result = saved
        for outcome in outcomes:  # the runner ends every call through on_result; a safety net
            if id(outcome.call) in index:
                self.end(index[id(outcome.call)], outcome)

    async def run(self, checkpoint: Callable[[], None] | None = None) -> list[Outcome]:
        """Send, run the rest, wait; every call ends as an Outcome, in the order of the calls."""
        groups, direct = self._partition()
        cancelled = self.runner is not None and self.runner.cancelled
        if cancelled:
            for pending in groups.values():
                for p in pending.values():
                    self._end_pending(p, Cancelled("the run was cancelled before this call was made"))
            groups = {}
        self._reserve(groups)
        self._adopt(groups)
        await self._submit(groups)
        groups.clear()  # each request's Pending is now its batch's alone, and dropped once answered
        if checkpoint is not None:
            checkpoint()
        await self._direct(direct)
        if checkpoint is not None:
            checkpoint()
        await self.wait()
        return self.finished()

    def finished(self) -> list[Outcome]:
        """Every call's outcome in order (a call left without one, which should not happen, is an error);
        with ``keep=False`` none is kept: each was handed to ``on_outcome``."""
        for pos, ended in enumerate(self._ended):
            if not ended:
                self.end(pos, Outcome(self.calls[pos], error=ProviderError("no outcome from its batch")))
        return [o for o in self.outcomes if o is not None]

    # -- waiting ------------------------------------------------------------------------------
    @property
    def _cancelled(self) -> bool:
        return self.runner is not None and self.runner.cancelled

    async def wait(self) -> None:
        """Poll every batch until it ends, reading each as it does; cancel them when the run is cancelled."""
        interval = POLL_FIRST_S
        total = sum(j.job.size for j in self.jobs)
        try:
            while True:
                live = [j for j in self.jobs if not j.done]
                if not live:
                    break
                if self._cancelled:
                    await self._cancel(live)
                    break
                for j in live:
                    await self._poll(j)
                self._show(total)  # once a round: polls are POLL_FIRST_S or more apart, so a few a second at most
                if all(j.done for j in self.jobs):
                    break
                await self._sleep(interval)
                interval = min(interval * _POLL_GROWTH, POLL_MAX_S)
        except asyncio.CancelledError:
            live = [j for j in self.jobs if not j.done]
            if self.cancel_on_interrupt and live:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.cancel_at_provider(live), _CANCEL_WAIT_S)
            raise
        finally:
            self.bar.close()

    def _show(self, total: int) -> None:
        progress = batch_progress([j.status for j in self.jobs], [j.job.provider for j in self.jobs], total,
                                  time.monotonic() - self.started)
        if self.on_batch is None:
            self.bar.show(progress)
            return
        try:
            self.on_batch(progress)
        except Exception as exc:  # a display must not lose the run
            _log.warning("batch progress: on_batch raised %s: %s; the run goes on", type(exc).__name__,
                         safe_text(str(exc)))

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._cancelled and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(0.1, left))

    async def _poll(self, j: Live) -> None:
        if self._collected_elsewhere(j):  # a resume from the shell and a re-run cell can wait on one batch
            return
        try:
            status = await j.backend.status(j.model, j.job.state["ids"])
            j.status = status
            if status.state == "ended":
                await self._collect(j)
        except ProviderError as exc:
            if self._collected_elsewhere(j):  # read and deleted by another process while this one looked
                return
            j.failures += 1
            if exc.retryable and j.failures < _MAX_POLL_FAILURES:
                return
            # Left "submitted" in the ledger: the batch may well finish, and a resume can read it.
            hint = f"; `protokit runs resume {self.run_id}` reads it later" if self.run_id else ""
            self._fail(j, _with_message(exc, f"{exc} (polling batch {j.job.id}){hint}"))
            return
        j.failures = 0
        if status.state == "failed":
            self.ledger.set_status(j.job, "failed")
            self._fail(j, BadRequestError(f"{j.model.id}: the provider failed batch {j.job.id}: {status.message}",
                                          model=j.model.id))
            await self._clean(j)  # it never ran: its input file is all it left

    async def _collect(self, j: Live) -> None:
        """Read an ended batch as its results stream in: answers into the cache (all of them, even those this
        run does not wait for) and errors into the ledger, a few thousand at a time, each lot's calls ended
        once it is stored; then the requests it held no result for."""
        latency = max(0.0, time.time() - float(j.job.state.get("submitted") or time.time()))
        others: dict[str, Request] = {}  # read for requests this run does not wait for (a batch picked up)

        def request(key: str) -> Request | None:
            p = j.pending.get(key)
            if p is not None:
                return p.request
            found = self.ledger.request(j.job, key)
            if found is None:
                return None
            others[key] = made = request_of(found)
            return made

        read = 0
        lot: list[tuple[str, Result]] = []
        async for key, result in j.backend.results(j.model, j.job.state["ids"], request):
            lot.append((key, result))
            read += 1
            if len(lot) >= _STORE_EVERY:
                self._store(j, lot, others, latency)
                lot = []
        self._store(j, lot, others, latency)
        missing: ProtokitError | None = None
        if j.pending or read < j.job.size:
            missing = await j.backend.missing(j.model, j.job.state["ids"])
            self.ledger.add_missing(j.job, error_info(missing))
        self.ledger.set_status(j.job, "collected")
        j.done = True
        if missing is not None:
            for p in j.pending.values():
                self._end_pending(p, missing, latency)
        j.pending.clear()
        # Only now, with every answer in the cache and the job collected: a crash before this line
        # leaves the batch to be read again. A cache that keeps nothing keeps the files instead.
        if self.ledger.writable:
            await self._clean(j)

    def _store(self, j: Live, lot: list[tuple[str, Result]], others: dict[str, Request], latency: float) -> None:
        """Write a lot of a batch's results (answers to the cache, errors to the ledger), then end their calls."""
        entries = []
        errors = []
        answered: list[tuple[Pending, Result]] = []
        for key, result in lot:
            p = j.pending.pop(key, None)
            request = p.request if p is not None else others.pop(key, None)
            if request is None:
                continue  # read twice: stored the first time
            if isinstance(result, Answer):
                model = p.model if p is not None else j.model
                entries.append((key, request.key_dict(), batch_response(model, request, result, key, latency).entry()))
            else:
                errors.append((key, error_info(result)))
            if p is not None:
                answered.append((p, result))
        if entries:
            self.cache.put_many(entries)
        if errors:
            self.ledger.add_errors(j.job, errors)
        for p, result in answered:
            self._end_pending(p, result, latency)

    async def _clean(self, j: Live) -> None:
        """Delete what a batch left at the provider; a failure is logged, never the run's."""
        try:
            await j.backend.clean(j.model, j.job.state["ids"])
        except Exception as exc:
            _log.warning("batch cleanup: %s batch %s: %s; its answers are in the cache, delete it at the provider "
                         "or let it expire", j.job.provider, j.job.id, safe_text(str(exc)))

    async def cancel_at_provider(self, live: list[Live]) -> None:
        for j in live:
            with contextlib.suppress(ProviderError):
                await j.backend.cancel(j.model, j.job.state["ids"])
            self.ledger.set_status(j.job, "cancelled")

    async def _cancel(self, live: list[Live]) -> None:
        """Cancel at the provider; a batch that has ended by then is read (its finished answers are kept)."""
        await self.cancel_at_provider(live)
        for j in live:
            try:
                status = await j.backend.status(j.model, j.job.state["ids"])
                if status.state == "ended":
                    j.status = status
                    await self._collect(j)
                    continue
            except ProviderError:
                pass
            self._fail(j, Cancelled("cancelled: its batch was cancelled at the provider"))


def _with_message(exc: ProviderError, message: str) -> ProviderError:
    """The same error (its kind and status), saying more."""
    error = ProviderError(message, status=exc.status, model=exc.model)
    error.kind = exc.kind
    return error


def _submit_error(exc: ProviderError, model: Model) -> ProviderError:
    """A batch the provider would not take; a 404 means the server has no batch API (a local server)."""
    if exc.status == 404:
        return BadRequestError(f"{model.id}: {server_of(model) or model.provider} has no batch API (404 when "
                               f"sending the batch); run with batch=False", status=404, model=model.id)
    return exc


async def run_calls(calls: Sequence[Call], runner: Runner, *, run_id: str | None, on_outcome: OnOutcome,
                    checkpoint: Callable[[], None] | None = None, on_batch: OnBatch | None = None) -> list[Outcome]:
    """``compare(batch=True)``: every call ends through ``on_outcome``, which is the only one to see its outcome
    (none is kept, so a 300,000-call run holds no outcome once its row is made): returns [].

    Calls made while scoring (a judge's) get the run's context, as inside ``runner.run``. ``on_batch``
    is handed the batches' progress after each look at them (instead of the text bar).
    """
    batch = BatchRun(calls, cache=cache_mod.get_cache(), runner=runner, run_id=run_id, on_outcome=on_outcome,
                     on_batch=on_batch, keep=False)
    try:
        with base.use_pipeline(runner.context.pipeline()):
            return await batch.run(checkpoint)
    finally:
        runner.progress = batch.progress  # what a progress display shows at the end: the whole run
