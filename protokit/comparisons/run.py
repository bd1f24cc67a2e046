"""``pk.compare``: run every case x model x sample through the runner, score it, keep it.

Everything that can be checked is checked before the first call (cases, template
columns, models, scorers' columns, options), so a run that would fail costs
nothing. Rows are built as plain dicts as calls finish, handed to ``on_result``,
written to the run store in batches, and turned into one DataFrame at the end.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from protokit import _aio
from protokit import batch as batch_mod
from protokit import cache as cache_mod
from protokit.comparisons.comparison import Comparison
from protokit.comparisons.plan import CompareArgs, OnChunk, OnResult, Plan, build_plan, same_arguments
from protokit.comparisons.store import RunStore
from protokit.comparisons.tables import candidate_name
from protokit.errors import BudgetExceeded, ConfigError, ProtokitError, ScorerTypeError, safe_text
from protokit.models import Response
from protokit.runner import Call, Outcome, Progress, Runner, retry_policy
from protokit.scorers import Scorer, to_score
from protokit.scorers._judge import Judge

__all__ = ["acompare", "compare", "score_rows"]


class _Run:
    """Turns outcomes into result rows (scored), hands them on and stores them."""

    def __init__(self, plan: Plan, store: RunStore | None, on_result: OnResult | None,
                 concurrency: int) -> None:
        self.plan = plan
        self.store = store
        self.on_result = on_result
        self.rows: list[dict[str, Any] | None] = [None] * plan.total
        self.template: dict[str, Any] = dict.fromkeys(plan.columns)
        self.sync_scorers = [s for s in plan.scorers if not s.is_async]
        self.async_scorers = [s for s in plan.scorers if s.is_async]
        self.judged = "judge_cost_usd" in self.template
        self.tasks: set[asyncio.Task[None]] = set()
        self.gate = asyncio.Semaphore(concurrency)  # judge calls share the run's concurrency
        self.runner: Runner | None = None
        self.chunks: OnChunk | None = None
        self._warned = False

    def cell(self, idx: int) -> dict[str, Any]:
        """What names row ``idx``: its case id, model (candidate, prompt variant), sample and turn."""
        slot = self.plan.slots[idx]
        model, variant = self.plan.candidates[slot.candidate]
        cell: dict[str, Any] = {"case": self.plan.records[slot.case]["case"], "model": model.id}
        if self.plan.prompts:
            cell["prompt"], cell["candidate"] = variant, candidate_name(model.id, variant)
        cell["sample"] = slot.sample
        if self.plan.turns:
            cell["turn"] = slot.turn
        return cell

    def base(self, idx: int) -> dict[str, Any]:
        row = self.template.copy()
        row.update(self.plan.records[self.plan.slots[idx].case])
        row.update(self.cell(idx))
        row["output"] = ""
        return row

    def case(self, idx: int) -> dict[str, Any]:
        """The case its scorers see: the case's columns (and, with turns, ``turn``)."""
        slot = self.plan.slots[idx]
        record = self.plan.records[slot.case]
        return {**record, "turn": slot.turn} if self.plan.turns else record

    def on_chunk(self, call: Call, text: str) -> None:
        """A piece of a streaming answer, handed to ``on_chunk`` with the cell it belongs to."""
        if self.chunks is None:
            return
        try:
            self.chunks(self.cell(call.tag), text)
        except Exception as exc:  # a display callback must not lose the call
            self._warn("on_chunk", exc)

    def on_outcome(self, outcome: Outcome, progress: Progress) -> None:
        idx: int = outcome.call.tag
        row = self.base(idx)
        row["attempts"] = outcome.attempts
        r = outcome.response
        if r is None:
            _fill_error(row, outcome.error)
            answered = getattr(outcome.error, "response", None)
            if answered is not None:  # a schema error: keep what the model said, and what it cost
                _fill_answer(row, answered)
            self.emit(idx, row, progress)
            return
        _fill_answer(row, r)
        case = self.case(idx)
        errors: list[str] = []
        for scorer in self.sync_scorers:
            try:
                result = scorer.score(_scored(scorer, row), case)
            except Exception as exc:  # a broken scorer marks its cell, never the run
                errors.append(f"{scorer.name}: {type(exc).__name__}: {exc}")
                continue
            self.apply(scorer, result, row, errors)
        if self.async_scorers:
            task = asyncio.ensure_future(self.score_async(idx, row, case, errors, progress))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        row["scorer_error"] = safe_text("; ".join(errors)) or None
        self.emit(idx, row, progress)

    def apply(self, scorer: Scorer, result: Any, row: dict[str, Any], errors: list[str]) -> None:
        _apply(scorer, result, row, errors, self.judged)

    async def score_async(self, idx: int, row: dict[str, Any], case: dict[str, Any], errors: list[str],
                          progress: Progress) -> None:
        try:
            for scorer in self.async_scorers:
                if self.runner is not None and self.runner.cancelled:
                    errors.append(f"{scorer.name}: cancelled")
                    continue
                try:
                    async with self.gate:
                        if self.runner is not None and self.runner.over_budget:
                            # A judge's calls cost money too: none is made once the budget is spent.
                            errors.append(f"{scorer.name}: not run (budget spent)")
                            continue
                        result = await scorer.ascore(_scored(scorer, row), case)
                except asyncio.CancelledError:
                    errors.append(f"{scorer.name}: cancelled")
                    raise
                except BudgetExceeded:  # its call would have crossed the budget: it was not sent
                    errors.append(f"{scorer.name}: not run (budget spent)")
                    continue
                except Exception as exc:
                    errors.append(f"{scorer.name}: {type(exc).__name__}: {exc}")
                    continue
                # The judge's own calls reserved and settled their cost in the run's budget.
                self.apply(scorer, result, row, errors)
        finally:
            row["scorer_error"] = safe_text("; ".join(errors)) or None
            self.emit(idx, row, progress)

    def emit(self, idx: int, row: dict[str, Any], progress: Progress) -> None:
        self.rows[idx] = row
        if self.store is not None:
            self.store.add(idx, row)
        if self.on_result is not None:
            try:
                self.on_result(row, progress)
            except Exception as exc:  # a display callback must not lose the run's results
                self._warn("on_result", exc)

    def _warn(self, name: str, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(safe_text(f"{name} raised {type(exc).__name__}: {exc}; the run goes on"),
                          RuntimeWarning, stacklevel=3)


def _apply(scorer: Scorer, result: Any, row: dict[str, Any], errors: list[str], judged: bool) -> None:
    """A scorer's result into its row (score, reason, a judge's cost), or what is wrong with it into ``errors``."""
    try:
        score = to_score(result, scorer.name)
    except ScorerTypeError as exc:
        errors.append(str(exc))
        return
    row[f"score_{scorer.name}"] = score.value
    if scorer.reasons:
        row[f"reason_{scorer.name}"] = score.reason
    if judged and score.cost_usd is not None:
        row["judge_cost_usd"] = (row["judge_cost_usd"] or 0.0) + score.cost_usd


async def score_rows(scorers: Sequence[Scorer], rows: Sequence[tuple[dict[str, Any], Mapping[str, Any]]], *,
                     judged: bool, concurrency: int) -> None:
    """Score answered rows in place, each against its case, as a run does (``scorer_error`` says what failed).

    For rows answered after their run ended (``protokit runs resume``); ``concurrency`` rows are scored
    at a time (a judge's calls go through the calling context).
    """
    todo = iter(rows)

    async def worker() -> None:
        for row, case in todo:  # one shared iterator: a pool, not a task per row
            errors: list[str] = []
            for scorer in scorers:
                try:
                    scored = _scored(scorer, row)
                    result = await scorer.ascore(scored, case) if scorer.is_async else scorer.score(scored, case)
                except Exception as exc:  # a broken scorer marks its cell, never the run
                    errors.append(f"{scorer.name}: {type(exc).__name__}: {exc}")
                    continue
                _apply(scorer, result, row, errors, judged)
            row["scorer_error"] = safe_text("; ".join(errors)) or None

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(rows))))))


def _fill_answer(row: dict[str, Any], r: Response) -> None:
    row.update(output=r.text, latency_s=r.latency_s, ttft_s=r.ttft_s, input_tokens=r.input_tokens,
               output_tokens=r.output_tokens, cost_usd=r.cost_usd, cached=r.cached,
               finish_reason=r.finish_reason, served_by=r.served_by, price_date=r.price_date)
    row["secret_shaped"] = r.secret_shaped
    if "tool_calls" in row:
        row["tool_calls"] = r.tool_calls
    if "parsed" in row:
        row["parsed"] = r.parsed


def _scored(scorer: Scorer, row: dict[str, Any]) -> Any:
    """What a scorer scores: the answer's text, or the column it reads (``tool_calls``, ``parsed``)."""
    reads = getattr(scorer, "reads", "output")
    return row.get(reads) if reads != "output" else row["output"]


def _fill_error(row: dict[str, Any], error: ProtokitError | None) -> None:
    row["error"] = getattr(error, "kind", None) or _kind(error)
    row["error_status"] = getattr(error, "status", None)
    row["error_message"] = str(error) if error is not None else "no answer"


def _kind(error: ProtokitError | None) -> str:
    if isinstance(error, cache_mod.CacheMiss):
        return "cache_miss"
    if isinstance(error, ConfigError):
        return "config"
    return type(error).__name__.lower() if error is not None else "unknown"


@same_arguments(CompareArgs)
async def acompare(*args: Any, **kwargs: Any) -> Comparison:
    """Async form of :func:`compare` (same arguments); await it inside a running loop.

    Its signature is the one parameter spec of a comparison: ``compare``, ``estimate`` and
    the ``Compare`` widget take exactly these arguments (see ``plan.same_arguments``).
    """
    a = CompareArgs(*args, **kwargs)
    if batch_mod.check_batch(a.batch) and (a.stream or a.on_chunk is not None):
        # A batch answers whole, hours later; streamed calls would silently skip the batch.
        raise ConfigError("batch=True cannot stream: a batch's answers arrive whole; drop stream=True and on_chunk")
    plan = build_plan(a)
    if a.batch:
        plan.meta["options"]["batch"] = True  # the stored run says so (its batches are in protokit.batch's ledger)
    store = RunStore.start(plan.meta)
    run = _Run(plan, store, a.on_result, a.concurrency)
    run.chunks = a.on_chunk
    runner = Runner(concurrency=a.concurrency, budget_usd=a.budget_usd, on_result=run.on_outcome,
                    policy=retry_policy(a.retries), timeout=a.timeout,
                    on_chunk=run.on_chunk if a.on_chunk is not None else None)
    run.runner = runner
    # A judge's calls spend from the same budget, so its price must be known too.
    runner.check_prices([*plan.models, *(s.model for s in plan.scorers if isinstance(s, Judge))])
    status = "failed"
    try:
        if a.on_start is not None:
            a.on_start(runner)
        if a.batch:  # the calls a provider batch API can carry go as batches (protokit.batch), the rest as usual
            outcomes = await batch_mod.run_calls(plan.calls, runner, run_id=store.run_id if store else None,
                                                 on_outcome=run.on_outcome, checkpoint=store.flush if store else None,
                                                 on_batch=a.on_batch)
        else:
            # keep=False: each outcome becomes its row in on_outcome and is not held (300,000-row sweeps).
            outcomes = await runner.run(plan.calls, total=plan.total, keep=False)
        if runner.cancelled:
            for task in list(run.tasks):
                task.cancel()
        if run.tasks:
            await asyncio.gather(*list(run.tasks), return_exceptions=True)
        for outcome in outcomes:  # the runner ends every call through on_result; this is a safety net
            if run.rows[outcome.call.tag] is None:
                run.on_outcome(outcome, runner.progress)
        status = "cancelled" if runner.cancelled else "finished"
    except BaseException:
        for task in list(run.tasks):
            task.cancel()
        status = "cancelled"
        raise
    finally:
        if store is not None:
            store.finish(status, _total_cost(run.rows))
    rows = [r for r in run.rows if r is not None]
    index = [i for i, r in enumerate(run.rows) if r is not None]
    results = pd.DataFrame.from_records(rows, columns=plan.columns, index=index)
    return Comparison(results=results, models=[m.id for m in plan.models], cases=plan.frame, prompt=a.prompt,
                      scorers=plan.scorers, score_names=plan.meta["score_names"],
                      run_id=store.run_id if store else None, options=plan.meta["options"], store=store,
                      status=status, prompts=plan.prompts)


@same_arguments(acompare)
def compare(*args: Any, **kwargs: Any) -> Comparison:
    """Run every case x model x sample and return a :class:`Comparison`.

    Works in plain Python and inside a running Jupyter loop (the work runs on
    protokit's background loop; callbacks are called there).

    Parameters
    ----------
    models
        pk models, ``"provider:name"`` specs or callables (passed to ``pk.model``); ids must differ.
        One model under two settings is two candidates: ``pk.model(spec, name=..., temperature=...)``
        each, or ``pk.sweep(spec, temperature=[0, 1])``.
    prompt
        A template with ``{column}`` placeholders, a list of chat messages whose contents are
        templates, or a function ``case -> prompt or messages``. A dict ``{name: prompt}`` of such
        prompts compares them as variants: each (model, variant) pair is a candidate, named
        ``"model · name"`` in the results' ``candidate`` column (``prompt`` holds the variant's name),
        the summary, the statistics and the report. With one prompt, results name the model only.
        A message's content may be a list of parts: ``{"type": "text", "text": ...}`` and
        ``{"type": "image", "source": "{photo}"}`` (a path or URL from the case; a file is sent inline,
        and keyed in the cache by its sha256). ``None``: each case is its own prompt, its ``messages``
        column (a multi-turn list of messages) and/or its ``turns`` column (user turns played one at
        a time, each answer fed back; one row per turn, a ``turn`` column; statistics take each
        case's mean over its turns). See ``protokit.comparisons.turns``.
    cases
        A DataFrame, a list of dicts, or a ``.csv``/``.jsonl`` path. A ``case`` (or unique ``id``)
        column gives the case ids, else the row position does.
    scorers
        ``pk.scorers.*`` objects or functions ``(output, case) -> bool | float | dict``.
    samples
        Calls per case x model (``sample=0..n-1``, each its own cache entry).
    concurrency
        Calls in flight at once.
    budget_usd
        A ceiling on money spent, judge calls included: each call reserves its estimated cost
        (prompt tokens plus ``max_tokens``, else a typical answer) before it is sent, and a call
        that would cross the budget is not sent (``error="not_run_budget"``). Every model needs
        a known price (``pk.set_price`` or ``price=``); an unknown one is refused before any call.
    system
        A system prompt for every call.
    options
        Call options for every model (``temperature``, ``max_tokens``, ...).
    on_result
        ``fn(row, progress)`` called on the event loop as each row is finished (scores included).
    on_start
        ``fn(runner)`` called before the first call; ``runner.cancel()`` stops the run, and the
        Comparison keeps the finished rows, the rest with ``error="cancelled"``.
    on_chunk
        ``fn(cell, text)`` called on the event loop with each piece of an answer as it streams in;
        ``cell`` names the row (``case``, ``model``, ``sample``; ``prompt``/``candidate`` with variants,
        ``turn`` with turns). Giving it streams every call, as ``stream=True`` does.
    stream
        Stream every call, which measures its time to first token: the results' ``ttft_s``, the
        summary's ``ttft_p50``/``ttft_p95`` and ``plot(x="ttft")``. A replayed answer keeps the
        ``ttft_s`` it was recorded with.
    retries
        Retries of a retryable error (429, 5xx, timeout, reset): a number (the default backoff
        otherwise) or a ``RetryPolicy``; None keeps the runner's default (4 retries).
    timeout
        Seconds for one attempt, beyond each model's own timeout; a timed-out attempt is retried
        like a 5xx (``retries=``). None: no limit but the model's.
    tools
        Tools every model may call: typed Python functions or JSON-schema definitions
        ``{"name", "description", "parameters"}``, sent through each provider's tool API. The
        results get a ``tool_calls`` column (``[{"name", "arguments"}]``); score it with
        ``pk.scorers.tool_call``.
    schema
        A JSON schema (an object) or a pydantic model class the answer must match (OpenAI
        structured outputs, Anthropic a forced tool). The results get a ``parsed`` column; an
        answer that does not match is that cell's error ``schema`` (its text kept in ``output``).
    run_tools, max_steps
        ``run_tools=True`` runs the Python tools a model calls and gives it their results, at most
        ``max_steps`` calls per case (default 5); each step is cached on its own.
    batch
        Send the calls through the providers' batch APIs (OpenAI Batch, Anthropic Message Batches):
        half the price, results within 24 h, a text progress bar while waiting. Answers land in the
        cache under the same keys as without a batch, and rows are priced at the price table's batch
        price. The batches are kept in the cache file: after a restart, the same call picks a pending
        batch up instead of sending it again, and ``protokit runs resume RUN_ID`` finishes the run.
        Cancelling (Ctrl-C, ``runner.cancel()``) cancels the batches at the provider. Calls the cache
        answers, and those no batch can carry (callables, fallbacks, ``run_tools``), run as usual.
        Once a batch's answers are in the cache, its files are deleted at the provider (an Anthropic
        batch is deleted); with the cache off or read-only they are left there.
    on_batch
        ``fn(progress)`` called on the event loop after each look at the pending batches (a few times a
        second at most), instead of the text progress bar: a ``BatchProgress`` with the batches, the
        requests ``submitted``, ``done`` and ``failed``, and each batch's status in the provider's words.
    """
    return _aio.run_sync(acompare(*args, **kwargs))


def _total_cost(rows: Sequence[dict[str, Any] | None]) -> float | None:
    costs = [r["cost_usd"] for r in rows if r is not None and r.get("cost_usd") is not None]
    return float(sum(costs)) if costs else None
