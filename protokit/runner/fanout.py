"""Fan many calls out concurrently under a global limit and adaptive per-provider limits; every
call ends as an :class:`Outcome`, a response or an error value, never lost."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protokit import _aio
from protokit.errors import Cancelled, ConfigError, ProtokitError, ProviderError, RateLimitError
from protokit.models import base
from protokit.models.base import Model, Request, Response
from protokit.runner.budget import Budget
from protokit.runner.calls import CallContext, execute, write_behind
from protokit.runner.policy import DEFAULT_POLICY, RetryPolicy

__all__ = ["AdaptiveLimit", "Call", "Outcome", "Progress", "Runner", "requests_for"]


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
    """One call to make: a model, its request, and the caller's tag (a case id, say).

    ``then`` makes a chain (a conversation's turns): told how this call ended, it gives the call
    to make next in the same slot, or None. ``skip`` ends a call with that error without making it
    (a turn after one that failed).
    """

    model: Model
    request: Request
    tag: Any = None
    then: Callable[[Outcome], Call | None] | None = field(default=None, repr=False)
    skip: ProtokitError | None = field(default=None, repr=False)


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
    on_chunk
        ``fn(call, text)`` called on the loop with each piece of an answer as it streams in (for
        requests made with ``stream=True``; a cached answer sends none).
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
        on_chunk: Callable[[Call, str], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.per_provider = per_provider
        self.policy = policy
        self.timeout = timeout
        self.budget_usd = budget_usd
        self.on_result = on_result
        self.on_chunk = on_chunk
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

    async def run(self, calls: Iterable[Call], *, total: int | None = None, keep: bool = True) -> list[Outcome]:
        """Make every call and return the outcomes in the order of ``calls`` (each chain's in its order).

        ``total`` is the number of calls counting those chained (``Call.then``), for the progress.
        ``keep=False`` returns nothing and holds no outcome once ``on_result`` has seen it: a caller
        that turns each outcome into a row there (compare) then holds 300,000 calls in far less memory.
        """
        calls = calls if isinstance(calls, list) else list(calls)
        self.check_prices({id(c.model): c.model for c in calls}.values())
        self._loop = asyncio.get_running_loop()
        self.progress = Progress(total=len(calls) if total is None else total)
        gate = asyncio.Semaphore(self.concurrency)
        chains: list[list[Outcome]] = [[] for _ in calls] if keep else []
        pending = iter(enumerate(calls))

        async def worker() -> None:
            for i, call in pending:  # one shared iterator: each worker takes the next call
                chain = await self._chain(call, gate)
                if keep:
                    chains[i] = chain

        # A pool of workers, not one task per call: a task per call costs memory for every call at
        # once. More workers than slots, so a provider held back by its adaptive limit does not
        # stall the others' calls behind it.
        workers = min(len(calls), max(4 * self.concurrency, 64))
        # Every call made inside the run (fallback members, judge calls) goes through its context;
        # the tasks gather creates copy both context variables.
        with write_behind(), base.use_pipeline(self.context.pipeline()):
            await asyncio.gather(*(worker() for _ in range(workers)))
        return [outcome for chain in chains for outcome in chain]

    def run_sync(self, calls: Iterable[Call]) -> list[Outcome]:
        """:meth:`run` from synchronous code (works inside Jupyter's loop too)."""
        return _aio.run_sync(self.run(calls))

    async def _chain(self, call: Call, gate: asyncio.Semaphore) -> list[Outcome]:
        """A call and those chained after it, one at a time (each takes a slot of its own)."""
        outcomes: list[Outcome] = []
        current: Call | None = call
        while current is not None:
            outcome = await self._one(current, gate)
            outcomes.append(outcome)
            current = current.then(outcome) if current.then is not None else None
        return outcomes

    async def _one(self, call: Call, gate: asyncio.Semaphore) -> Outcome:
        if call.skip is not None:
            outcome = Outcome(call, error=call.skip)
            self._record(outcome)
            return outcome
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
            on_chunk = self.on_chunk
            chunks = (lambda text: on_chunk(call, text)) if on_chunk is not None and call.request.stream else None
            response = await execute(call.model, call.request, chunks, ctx=ctx)
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
