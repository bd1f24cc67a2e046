"""One call through the pipeline: the cache, then the provider with retries, each attempt timed out,
the budget reserved before and settled after, and the answer recorded.

A run hands every call made inside it one :class:`CallContext` (its cache, retry policy,
per-attempt timeout and budget), so fallback members and judge calls get the run's settings;
:func:`call_context` does the same for single calls in a ``with`` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from protokit import cache as cache_mod
from protokit.errors import ConfigError, ProtokitError, ProviderError, ProviderTimeoutError
from protokit.models import base
from protokit.models import tools as tool_defs
from protokit.models.base import Model, Request, Response
from protokit.runner.budget import Budget
from protokit.runner.observe import CallRecord, notify, observed
from protokit.runner.policy import DEFAULT_POLICY, RetryPolicy, retry_policy

__all__ = ["DEFAULT_CONTEXT", "CallContext", "call_context", "execute", "write_behind"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallContext:
    """What a run hands down to every call made inside it: cache, retries, timeout, budget.

    ``cache=None`` means the process-wide cache (``pk.cache.configure``). ``timeout``
    bounds one attempt; a timed-out attempt is retried like a 5xx. ``on_retry`` is told
    of each retried error (the runner halves a provider's limit on a 429).
    """

    cache: cache_mod.Cache | None = None
    policy: RetryPolicy = DEFAULT_POLICY
    timeout: float | None = None
    budget: Budget | None = None
    on_retry: Callable[[Model, ProviderError], None] | None = None
    attempts: list[int] | None = None

    def pipeline(self) -> base.Pipeline:
        """This context as the function models call through (see ``base.use_pipeline``)."""
        async def call(model: Model, request: Request, on_chunk: Callable[[str], None] | None) -> Response:
            return await execute(model, request, on_chunk, ctx=self)
        return call


DEFAULT_CONTEXT = CallContext()


@contextlib.contextmanager
def call_context(*, retries: int | RetryPolicy | None = None, timeout: float | None = None,
                 budget_usd: float | None = None) -> Iterator[CallContext]:
    """Settings for the model calls made inside a ``with`` block (``complete``, ``stream``, fallback).

    ``with pk.call_context(retries=1, timeout=5): m.complete(...)`` retries once and bounds each
    attempt to 5 s; ``budget_usd`` caps what the calls in the block may spend, as in compare.
    """
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout <= 0):
        raise ConfigError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if budget_usd is not None and (isinstance(budget_usd, bool) or not isinstance(budget_usd, (int, float))
                                   or budget_usd < 0):
        raise ConfigError(f"budget_usd must be a non-negative number or None, got {budget_usd!r}")
    ctx = CallContext(policy=retry_policy(retries), timeout=timeout,
                      budget=Budget(budget_usd) if budget_usd is not None else None)
    with base.use_pipeline(ctx.pipeline()):
        yield ctx


async def execute(
    model: Model,
    request: Request,
    on_chunk: Callable[[str], None] | None = None,
    *,
    ctx: CallContext = DEFAULT_CONTEXT,
) -> Response:
    """One call through the cache and the provider, with the context's retries, timeout and budget.

    When anyone observes calls (:mod:`protokit.runner.observe`), the call ends in one
    CallRecord: answered, replayed or failed. With ``run_tools``, each step of the tool loop
    is one such call (:func:`protokit.models.tools.run_tools`).
    """
    if request.max_steps > 1:
        return await tool_defs.run_tools(model, request, lambda step: execute(model, step, on_chunk, ctx=ctx))
    if model.composite or not observed():
        return await _execute(model, request, on_chunk, ctx, None)
    tally = [0]
    start = time.time_ns()
    response: Response | None = None
    error: BaseException | None = None
    try:
        response = await _execute(model, request, on_chunk, ctx, tally)
        return response
    except BaseException as exc:
        error = exc
        raise
    finally:
        notify(CallRecord(model, request, response, error, cached=response is not None and response.cached,
                          attempts=tally[0], start_ns=start, end_ns=time.time_ns()))


async def _execute(model: Model, request: Request, on_chunk: Callable[[str], None] | None, ctx: CallContext,
                   tally: list[int] | None) -> Response:
    if model.composite:
        # It calls its members through this same context; retrying or timing it as a whole
        # would multiply every member's retries.
        with base.use_pipeline(ctx.pipeline()):
            return await model.call(request, on_chunk)
    cache = (ctx.cache or cache_mod.get_cache()) if model.cacheable else None
    mode = cache.mode if cache is not None else "off"
    key = None
    key_dict: dict[str, Any] = {}
    if cache is not None and mode != "off":
        key_dict = request.key_dict()
        key = cache_mod.request_key(key_dict)
        if mode in ("auto", "replay"):
            entry = cache.get(key)
            if entry is not None:
                return model.finish(request, _replayed(model, entry, request, key))
            # Named by model, sample and key, never by the prompt: a log is no place for it.
            if mode == "replay":
                _log.warning("cache miss: no recorded answer for %s:%s (sample %d, key %.12s) in replay mode",
                             request.provider, request.model, request.sample, key)
                raise cache.miss(key, key_dict)
            _log.debug("cache miss: %s:%s (sample %d, key %.12s) is asked and recorded",
                       request.provider, request.model, request.sample, key)
    reserved = await ctx.budget.acquire(model, request) if ctx.budget is not None else 0.0
    response: Response | None = None
    try:
        response = await _attempts(model, request, on_chunk, ctx, tally)
    finally:
        if ctx.budget is not None:
            ctx.budget.settle(reserved, model, response)
    if cache is not None and key is not None:
        response.key = key
        batch = _batch.get()
        if batch is not None:
            batch.add(cache, key, key_dict, response.entry())
        else:
            cache.put(key, key_dict, response.entry())
    # Checked against schema= after recording: a replay gives the same parsed value, or the same SchemaError.
    return model.finish(request, response)


def _replayed(model: Model, entry: Mapping[str, Any], request: Request, key: str) -> Response:
    response = Response.from_entry(model.id, entry, sample=request.sample, key=key)
    if response.cost_usd is None and response.input_tokens is not None:
        # Recorded before a price was known: price its recorded tokens with today's table.
        response.cost_usd, response.price_date = model.cost(
            response.input_tokens, response.output_tokens, response.cached_input_tokens, response.reasoning_tokens)
    return response


async def _attempts(model: Model, request: Request, on_chunk: Callable[[str], None] | None,
                    ctx: CallContext, tally: list[int] | None = None) -> Response:
    """The provider call, retried by the context's policy; each attempt bounded by its timeout."""
    streamed = False

    def chunk(text: str) -> None:
        nonlocal streamed
        streamed = True
        if on_chunk is not None:
            on_chunk(text)

    policy = ctx.policy
    attempt = 0
    while True:
        if ctx.attempts is not None:
            ctx.attempts[0] += 1
        if tally is not None:
            tally[0] += 1
        try:
            call = model.call(request, chunk if on_chunk is not None else None)
            if ctx.timeout is None:
                return await call
            try:
                return await asyncio.wait_for(call, ctx.timeout)
            except asyncio.TimeoutError:
                raise ProviderTimeoutError(f"{model.id}: no answer within {ctx.timeout:g}s (one attempt); "
                                           "retried, raise timeout= if the model is slow", model=model.id) from None
        except ProviderError as exc:
            # A half-streamed answer cannot be retried without showing text twice.
            if not exc.retryable or attempt >= policy.retries or streamed:
                raise
            if ctx.on_retry is not None:
                ctx.on_retry(model, exc)
            delay = policy.delay(attempt, exc)
            _log.info("retry: %s failed with %s%s on attempt %d of %d; trying again in %.2fs", model.id, exc.kind,
                      f" ({exc.status})" if exc.status else "", attempt + 1, policy.retries + 1, delay)
            await asyncio.sleep(delay)
            attempt += 1


class _WriteBehind:
    """Recordings made during one loop iteration, committed together at its end.

    A commit per answer costs more CPU than the rest of protokit's work on a call;
    answers that arrive in the same iteration share one transaction instead. The
    window is one loop tick, so a killed process loses at most the answers of that tick.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[cache_mod.Cache, str, dict[str, Any], dict[str, Any]]] = []
        self.scheduled = False

    def add(self, cache: cache_mod.Cache, key: str, request: dict[str, Any], entry: dict[str, Any]) -> None:
        self.pending.append((cache, key, request, entry))
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Commit what is pending, one transaction per cache file."""
        self.scheduled = False
        pending, self.pending = self.pending, []
        by_cache: dict[int, tuple[cache_mod.Cache, list[tuple[str, dict[str, Any], dict[str, Any]]]]] = {}
        for cache, key, request, entry in pending:
            by_cache.setdefault(id(cache), (cache, []))[1].append((key, request, entry))
        for cache, items in by_cache.values():
            try:
                cache.put_many(items)
            except ProtokitError as exc:  # the answers are still returned; only their recording failed
                warnings.warn(f"{len(items)} answers were not recorded: {exc}", stacklevel=1)


_batch: contextvars.ContextVar[_WriteBehind | None] = contextvars.ContextVar("protokit_batch", default=None)


@contextlib.contextmanager
def write_behind() -> Iterator[None]:
    """Recordings made inside the block share one commit per loop tick; what is left is flushed at the end."""
    batch = _WriteBehind()
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
        batch.flush()
