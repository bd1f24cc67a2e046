"""Async fan-out of model calls: limits, retries, cancellation, budget and progress.

Every call protokit makes goes through :func:`execute`: a cache lookup (by the
cache's mode), then the provider with retries (exponential backoff with full
jitter, honouring ``Retry-After``/``retry-after-ms``), then a recording. The
:class:`Runner` fans many calls out under a global limit and an adaptive
per-provider limit (halved on a 429, grown back by one per success), and ends
every call as an :class:`Outcome`: a response or an error value, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import random
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protokit import _aio
from protokit import cache as cache_mod
from protokit.errors import (
    BudgetExceeded,
    Cancelled,
    ConfigError,
    ProtokitError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from protokit.models import base, prices
from protokit.models.base import Model, Request, Response

__all__ = ["AdaptiveLimit", "Budget", "Call", "CallContext", "Outcome", "Progress", "RetryPolicy", "Runner",
           "call_context", "execute", "retry_policy"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How retryable errors (429, 5xx, timeouts, resets) are retried."""

    retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, error: ProviderError) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            # The server said when; add a little jitter so waiters do not return in lockstep.
            return min(self.max_delay, error.retry_after) * (1 + 0.1 * random.random())
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


DEFAULT_POLICY = RetryPolicy()
_BUDGET_POLL_S = 0.01  # how often a call waiting for budget looks again while others are in flight


class Budget:
    """A spending ceiling that holds at any concurrency: reserve before sending, settle on the answer.

    A call reserves its estimated cost (prompt tokens plus ``max_tokens``, or the most a
    call of that model has produced in this run, or ``DEFAULT_OUTPUT_TOKENS``) before it
    is sent; a call whose reservation would cross the limit is not sent. When it ends,
    the reservation is replaced by what it really cost. So calls in flight are counted,
    and spend stays within the limit plus the estimation error of one call.
    """

    def __init__(self, limit_usd: float) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.in_flight = 0  # reservations not settled yet (a count: float sums never quite return to 0)
        self._typical_output: dict[str, int] = {}
        self._lock = threading.Lock()  # judge calls may settle from another thread's loop

    def __repr__(self) -> str:
        return f"Budget(limit=${self.limit_usd:g}, spent=${self.spent_usd:.4f}, reserved=${self.reserved_usd:.4f})"

    @property
    def exhausted(self) -> bool:
        """True once what is spent and reserved reaches the limit."""
        return self.spent_usd + self.reserved_usd >= self.limit_usd

    def estimate(self, model: Model, request: Request) -> float:
        """The reservation for one call of ``model``."""
        typical = self._typical_output.get(model.id, prices.DEFAULT_OUTPUT_TOKENS)
        return model.estimate_cost(request, typical)

    def reserve(self, usd: float) -> bool:
        """Hold ``usd`` for a call about to be sent; False (nothing held) when it would cross the limit."""
        with self._lock:
            if self.spent_usd + self.reserved_usd + usd > self.limit_usd:
                return False
            self.reserved_usd += usd
            self.in_flight += 1
            return True

    async def acquire(self, model: Model, request: Request) -> float:
        """Reserve a call's estimate, waiting while calls in flight may settle below their estimates.

        Returns what was reserved; raises BudgetExceeded when the call cannot fit even with
        nothing in flight. Waiting (rather than refusing at once) lets the budget be spent
        to its end: reservations are upper bounds, and answers usually cost less.
        """
        while True:
            usd = self.estimate(model, request)  # re-estimated: settled answers teach the typical length
            if self.reserve(usd):
                return usd
            with self._lock:
                waiting_helps = self.in_flight > 0
            if not waiting_helps:
                raise self.refusal(model, request, usd)
            await asyncio.sleep(_BUDGET_POLL_S)

    def settle(self, reserved: float, model: Model | None, response: Response | None) -> None:
        """Release a reservation and count what the call really cost (nothing when it failed)."""
        with self._lock:
            self.in_flight -= 1
            self.reserved_usd = max(0.0, self.reserved_usd - reserved) if self.in_flight else 0.0
            if response is not None and not response.cached:
                self.spent_usd += response.cost_usd or 0.0
                if model is not None and response.output_tokens:
                    seen = self._typical_output.get(model.id, 0)
                    self._typical_output[model.id] = max(seen, response.output_tokens)

    def spend(self, usd: float | None) -> None:
        """Count money spent outside a reserved call."""
        if usd:
            with self._lock:
                self.spent_usd += usd

    def refusal(self, model: Model, request: Request, reserve: float) -> BudgetExceeded:
        """The error of a call that was not sent because of the budget."""
        left = self.limit_usd - self.spent_usd - self.reserved_usd
        if self.spent_usd == 0 and self.reserved_usd == 0 and not request.options.get("max_tokens"):
            # Nothing ran: the guess of the answer's length is what does not fit.
            return BudgetExceeded(
                f"not run: {model.id} would need ~${reserve:.4f} (assuming {prices.DEFAULT_OUTPUT_TOKENS} output "
                f"tokens) and the budget is ${self.limit_usd:.4f}; set max_tokens= to bound each answer "
                "or raise budget_usd=")
        return BudgetExceeded(
            f"not run: {model.id} would need ~${reserve:.4f} and ${left:.4f} "
            f"of the ${self.limit_usd:.4f} budget is left (${self.spent_usd:.4f} spent, "
            f"${self.reserved_usd:.4f} held by calls in flight); raise budget_usd= to run the rest")


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


def retry_policy(retries: int | RetryPolicy | None) -> RetryPolicy:
    """The retry policy for ``retries=``: a count keeps the default backoff; None the default policy."""
    if retries is None:
        return DEFAULT_POLICY
    if isinstance(retries, RetryPolicy):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be a whole number >= 0 or a RetryPolicy, got {retries!r}")
    return dataclasses.replace(DEFAULT_POLICY, retries=retries)


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
    """One call through the cache and the provider, with the context's retries, timeout and budget."""
    if model.composite:
        # It calls its members through this same context; retrying or timing it as a whole
        # would multiply every member's retries.
        with base.use_pipeline(ctx.pipeline()):
            return await model.call(request, on_chunk)
    cache = (ctx.cache or cache_mod.get_cache()) if model.cacheable else None
    mode = cache.mode if cache is not None else "off"
    key = None
    if cache is not None and mode != "off":
        key_dict = request.key_dict()
        key = cache_mod.request_key(key_dict)
        if mode in ("auto", "replay"):
            entry = cache.get(key)
            if entry is not None:
                return _replayed(model, entry, request, key)
            if mode == "replay":
                raise cache.miss(key, key_dict)
    reserved = await ctx.budget.acquire(model, request) if ctx.budget is not None else 0.0
    response: Response | None = None
    try:
        response = await _attempts(model, request, on_chunk, ctx)
    finally:
        if ctx.budget is not None:
            ctx.budget.settle(reserved, model, response)
    if cache is not None and key is not None:
        response.key = key
        batch = _batch.get()
        if batch is not None:
            batch.add(cache, key, request.key_dict(), response.entry())
        else:
            cache.put(key, request.key_dict(), response.entry())
    return response


def _replayed(model: Model, entry: Mapping[str, Any], request: Request, key: str) -> Response:
    response = Response.from_entry(model.id, entry, sample=request.sample, key=key)
    if response.cost_usd is None and response.input_tokens is not None:
        # Recorded before a price was known: price its recorded tokens with today's table.
        response.cost_usd, response.price_date = model.cost(
            response.input_tokens, response.output_tokens, response.cached_input_tokens, response.reasoning_tokens)
    return response


async def _attempts(model: Model, request: Request, on_chunk: Callable[[str], None] | None,
                    ctx: CallContext) -> Response:
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
            await asyncio.sleep(policy.delay(attempt, exc))
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




class AdaptiveLimit:
    """A concurrency limit that halves on rate limiting and grows back by one per success."""

    def __init__(self, limit: int) -> None:
        self.max = max(1, limit)
        self.limit = self.max
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Wait for a slot."""
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # we were handed a slot as we were cancelled: give it back
            else:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        """Give a slot back and wake waiters while there is room."""
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.active += 1
                fut.set_result(None)

    def rate_limited(self) -> None:
        """Halve the limit (not below 1)."""
        self.limit = max(1, self.limit // 2)

    def succeeded(self) -> None:
        """Grow the limit back by one, up to its maximum."""
        if self.limit < self.max:
            self.limit += 1
            self._wake()


@dataclass
class Call:
    """One call to make: a model, its request, and the caller's tag (a case id, say)."""

    model: Model
    request: Request
    tag: Any = None


@dataclass
class Outcome:
    """How a call ended: ``response`` or ``error`` (exactly one is set)."""

    call: Call
    response: Response | None = None
    error: ProtokitError | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        """True when the call produced a response."""
        return self.response is not None


@dataclass
class Progress:
    """Counts of a run so far, handed to progress callbacks."""

    total: int
    done: int = 0
    errors: int = 0
    cached: int = 0
    cost_usd: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started


class Runner:
    """Fans calls out concurrently; every call ends as an Outcome.

    Parameters
    ----------
    concurrency
        Calls in flight at once across all providers.
    per_provider
        Starting limit per provider (an int for all, or ``{"openai": 8}``); it adapts to 429s.
    policy
        Retry policy for retryable errors.
    timeout
        Seconds for one attempt, beyond the model's own timeout; None leaves it to the model.
        A timed-out attempt is retried like a 5xx.
    budget_usd
        A ceiling on money spent (non-cached calls, judge calls included): each call reserves
        its estimated cost before it is sent, and one that would cross the budget is not sent.
        Every model must have a known price (checked before any call).
    on_result
        ``fn(outcome, progress)`` called on the loop as each call ends.
    """

    def __init__(
        self,
        *,
        concurrency: int = 16,
        per_provider: int | Mapping[str, int] | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        timeout: float | None = None,
        budget_usd: float | None = None,
        on_result: Callable[[Outcome, Progress], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.per_provider = per_provider
        self.policy = policy
        self.timeout = timeout
        self.budget_usd = budget_usd
        self.on_result = on_result
        self.limits: dict[str, AdaptiveLimit] = {}
        self.progress = Progress(total=0)
        self._cancelled = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.budget = Budget(budget_usd) if budget_usd is not None else None
        self.context = CallContext(policy=policy, timeout=timeout, budget=self.budget, on_retry=self._on_retry)

    def _on_retry(self, model: Model, error: ProviderError) -> None:
        if isinstance(error, RateLimitError):
            self._limit(model.provider).rate_limited()

    def check_prices(self, models: Iterable[Model]) -> None:
        """Under a budget, refuse (ConfigError) before any call when a model's price is unknown."""
        if self.budget is None:
            return
        unknown = list(dict.fromkeys(spec for m in models for spec in m.unpriced()))
        if unknown:
            first = unknown[0]
            raise ConfigError(
                f"budget_usd is set but no price is known for {', '.join(unknown)}, so the budget could not "
                f"hold; set one with pk.set_price({first!r}, input=..., output=...) or "
                f"pk.model({first!r}, price={{'input': ..., 'output': ...}}) (USD per 1M tokens)")

    def _limit(self, provider: str) -> AdaptiveLimit:
        limit = self.limits.get(provider)
        if limit is None:
            if isinstance(self.per_provider, Mapping):
                n = self.per_provider.get(provider, self.concurrency)
            else:
                n = self.per_provider or self.concurrency
            limit = self.limits[provider] = AdaptiveLimit(n)
        return limit

    def cancel(self) -> None:
        """Stop issuing calls and cancel those in flight; safe from any thread."""
        self._cancelled.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._cancel_tasks)

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._cancelled.is_set()

    @property
    def over_budget(self) -> bool:
        """True once the money spent and held by calls in flight reached ``budget_usd``."""
        return self.budget is not None and self.budget.exhausted

    @property
    def spent_usd(self) -> float:
        """Money spent by this runner's calls so far (cached answers cost nothing)."""
        return self.budget.spent_usd if self.budget is not None else self.progress.cost_usd

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def run(self, calls: Iterable[Call]) -> list[Outcome]:
        """Make every call and return the outcomes in the order of ``calls``."""
        calls = list(calls)
        self.check_prices({id(c.model): c.model for c in calls}.values())
        self._loop = asyncio.get_running_loop()
        self.progress = Progress(total=len(calls))
        gate = asyncio.Semaphore(self.concurrency)
        batch = _WriteBehind()
        token = _batch.set(batch)  # the tasks gather creates copy this context
        try:
            # Every call made inside the run (fallback members, judge calls) goes through its context.
            with base.use_pipeline(self.context.pipeline()):
                outcomes = await asyncio.gather(*(self._one(call, gate) for call in calls))
        finally:
            _batch.reset(token)
            batch.flush()
        return list(outcomes)

    def run_sync(self, calls: Iterable[Call]) -> list[Outcome]:
        """:meth:`run` from synchronous code (works inside Jupyter's loop too)."""
        return _aio.run_sync(self.run(calls))

    async def _one(self, call: Call, gate: asyncio.Semaphore) -> Outcome:
        outcome = Outcome(call)
        async with gate:
            limit = self._limit(call.model.provider)
            await limit.acquire()
            try:
                outcome = await self._attempt(call, limit)
            finally:
                limit.release()
        self._record(outcome)
        return outcome

    async def _attempt(self, call: Call, limit: AdaptiveLimit) -> Outcome:
        if self._cancelled.is_set():
            return Outcome(call, error=Cancelled("the run was cancelled before this call was made"))
        counter = [0]
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            ctx = dataclasses.replace(self.context, attempts=counter)
            response = await execute(call.model, call.request, ctx=ctx)
        except asyncio.CancelledError:
            if not self._cancelled.is_set():
                raise
            return Outcome(call, error=Cancelled("cancelled while in flight"), attempts=counter[0])
        except ProtokitError as exc:
            if isinstance(exc, RateLimitError):
                limit.rate_limited()
            return Outcome(call, error=exc, attempts=counter[0])
        except Exception as exc:  # a bug or an unexpected SDK error must not lose the other calls
            err = ProviderError(f"{call.model.id}: unexpected {type(exc).__name__}: {exc}", model=call.model.id)
            return Outcome(call, error=err, attempts=counter[0])
        finally:
            if task is not None:
                self._tasks.discard(task)
        limit.succeeded()
        return Outcome(call, response=response, attempts=counter[0])

    def _record(self, outcome: Outcome) -> None:
        p = self.progress
        p.done += 1
        if outcome.error is not None:
            p.errors += 1
        elif outcome.response is not None:
            if outcome.response.cached:
                p.cached += 1
            p.cost_usd += outcome.response.cost_usd or 0.0
        if self.on_result is not None:
            self.on_result(outcome, p)


def requests_for(model: Model, prompts: Sequence[Any], samples: int = 1, **options: Any) -> list[Call]:
    """Calls for each prompt x sample against one model (a convenience for scripts and benchmarks)."""
    return [Call(model, model.request(p, sample=s, **options), tag=(i, s))
            for i, p in enumerate(prompts) for s in range(samples)]
