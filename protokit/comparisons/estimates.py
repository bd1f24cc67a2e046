"""``pk.estimate``: what a compare would cost (calls, cached calls, tokens, money, time) before it runs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from protokit import batch as batch_mod
from protokit import cache as cache_mod
from protokit.comparisons.plan import CompareArgs, Plan, build_plan, same_arguments
from protokit.comparisons.tables import candidate_name
from protokit.comparisons.turns import expand, reply_text
from protokit.models import Model
from protokit.models.images import content_chars
from protokit.models.prices import DEFAULT_OUTPUT_TOKENS, batch_price, estimate_input_tokens
from protokit.runner import Call
from protokit.scorers._judge import Judge

__all__ = ["DEFAULT_OUTPUT_TOKENS", "TYPICAL_LATENCY_S", "Estimate", "estimate"]

# Seconds per call when the cache has no recorded latency for a model (a guess, on
# purpose modest); output tokens per call without max_tokens: prices.DEFAULT_OUTPUT_TOKENS.
TYPICAL_LATENCY_S = 2.0
_JUDGE_OUTPUT_TOKENS = 60


@dataclass
class Estimate:
    """What a compare would do, before it runs: calls, cached calls, tokens, cost and time."""

    calls: int
    cached: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    seconds: float
    concurrency: int
    unknown_price: list[str]
    judge_calls: int = 0
    judge_cost_usd: float | None = None
    budget_usd: float | None = None
    # One entry per model (per candidate with prompt variants: with ``candidate`` and ``prompt``).
    by_model: list[dict[str, Any]] = field(default_factory=list)
    batched: int = 0  # calls to run that go through a provider batch API (batch=True), priced at its price

    @property
    def to_run(self) -> int:
        """Calls the cache cannot answer."""
        return self.calls - self.cached

    @property
    def over_budget(self) -> bool:
        """True when the estimated cost exceeds ``budget_usd``."""
        return self.budget_usd is not None and self.cost_usd is not None and self.cost_usd > self.budget_usd

    def __str__(self) -> str:
        cost = "unknown cost" if self.cost_usd is None else f"~${self.cost_usd:.4g}"
        text = (f"{self.calls} calls ({self.cached} cached, {self.to_run} to run), ~{self.input_tokens:,} input "
                f"+ ~{self.output_tokens:,} output tokens, {cost}, ")
        if self.batched:
            rest = f" and ~{self.seconds:.0f} s at concurrency {self.concurrency} for the other calls" \
                if self.batched < self.to_run else ""
            text += f"{self.batched} calls in provider batches (batch price; results within 24 h){rest}"
        else:
            text += f"~{self.seconds:.0f} s at concurrency {self.concurrency}"
        if self.unknown_price:
            text += f"; no price for {', '.join(self.unknown_price)} (pk.set_price)"
        if self.judge_calls:
            jc = "unknown cost" if self.judge_cost_usd is None else f"~${self.judge_cost_usd:.4g}"
            text += f"; plus up to {self.judge_calls} judge calls, {jc}"
        if self.over_budget:
            text += f"; over the ${self.budget_usd:g} budget: the run would stop early"
        return text

    __repr__ = __str__


def _chars(request: Any) -> int:
    return sum(content_chars(m["content"]) for m in request.messages)


def _every_call(plan: Plan, cache: cache_mod.Cache | None) -> list[Call]:
    """Every call of the plan; with turns, each conversation's later turns too, built from its recorded
    answers while there are some, else from a stand-in answer of the expected size."""
    if not plan.turns:
        return plan.calls

    def recorded(call: Call) -> str | None:
        if cache is None or not call.model.cacheable:
            return None
        with cache.lock:
            row = cache.connection().execute(
                "SELECT json_extract(entry, '$.text'), json_extract(entry, '$.tool_calls') FROM entries WHERE key = ?",
                (cache_mod.request_key(call.request.key_dict()),)).fetchone()
        if row is None:
            return None
        return reply_text(str(row[0] or ""), json.loads(row[1]) if row[1] else [])  # as the turn goes back

    def stand_in(call: Call) -> str:
        return "x" * 4 * int(call.request.options.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)

    return expand(plan.calls, recorded, stand_in)


def _cost(model: Model, tin: int, tout: int, batched: bool = False) -> float | None:
    price = batch_price(model.spec, price=model.price) if batched else model.price_entry()
    if price is None:
        return None
    return (tin * price["input"] + tout * price["output"]) / 1_000_000


def _cached_keys(cache: cache_mod.Cache, keys: list[str]) -> set[str]:
    found: set[str] = set()
    with cache.lock:
        conn = cache.connection()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            sql = f"SELECT key FROM entries WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(r[0] for r in conn.execute(sql, chunk))
    return found


def _typical_latency(cache: cache_mod.Cache | None, model: Model) -> float:
    if cache is None:
        return TYPICAL_LATENCY_S
    with cache.lock:
        rows = cache.connection().execute(
            "SELECT json_extract(entry, '$.latency_s') FROM entries WHERE provider = ? AND model = ? "
            "ORDER BY created_at DESC LIMIT 200", (model.provider, model.name)).fetchall()
    values = sorted(float(r[0]) for r in rows if r[0] is not None)
    return values[len(values) // 2] if values else TYPICAL_LATENCY_S


@same_arguments(CompareArgs)
def estimate(*args: Any, **kwargs: Any) -> Estimate:
    """What :func:`compare` with the same arguments would cost, without making any call.

    Input tokens are estimated as characters / 4; output tokens as ``max_tokens`` when
    set (an upper bound), else ``DEFAULT_OUTPUT_TOKENS`` (200) per call. Calls already
    in the cache cost nothing. The cost is None when a model has no known price
    (listed in ``unknown_price``). Time is the calls to run / concurrency x the model's
    median recorded latency (``TYPICAL_LATENCY_S`` = 2 s when none is recorded).
    Judge calls are counted separately, as if none were cached. ``on_result``,
    ``on_start``, ``on_batch``, ``retries`` and ``timeout`` are accepted so the same arguments
    fit both calls; they change nothing here. With ``batch=True`` the calls a provider batch
    API carries are priced at the table's batch price (``batch_input``/``batch_output``)
    and take no time here: a batch ends within 24 h (``batched`` counts them).
    """
    a = CompareArgs(*args, **kwargs)
    batch_mod.check_batch(a.batch)
    plan = build_plan(a)
    concurrency, budget_usd = a.concurrency, a.budget_usd
    cache = cache_mod.get_cache()
    usable = cache if cache.mode in ("auto", "replay") else None
    calls = _every_call(plan, usable)
    keys = {c.tag: cache_mod.request_key(c.request.key_dict()) for c in calls if c.model.cacheable}
    hits = _cached_keys(usable, list(keys.values())) if usable is not None and keys else set()
    by_model: dict[str, dict[str, Any]] = {
        name: {**({"candidate": name, "model": m.id, "prompt": p} if plan.prompts else {"model": m.id}),
               "calls": 0, "cached": 0, "input_tokens": 0, "output_tokens": 0}
        for name, (m, p) in zip(plan.candidate_names, plan.candidates, strict=True)}
    batched: dict[str, int] = dict.fromkeys(by_model, 0)
    for call in calls:
        m, p = plan.candidate_of(call.tag)
        entry = by_model[candidate_name(m.id, p)]
        entry["calls"] += 1
        if keys.get(call.tag) in hits:
            entry["cached"] += 1
            continue
        if a.batch and batch_mod.batchable(call.model, call.request):
            batched[candidate_name(m.id, p)] += 1
        entry["input_tokens"] += estimate_input_tokens(_chars(call.request))
        entry["output_tokens"] += int(call.request.options.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)
    busy = 0.0
    unknown: list[str] = []
    total_cost: float | None = 0.0
    for name, (m, _p) in zip(plan.candidate_names, plan.candidates, strict=True):
        entry = by_model[name]
        # A candidate's calls are alike (one model, one kind of request): batched all or none.
        entry["cost_usd"] = _cost(m, entry["input_tokens"], entry["output_tokens"], batched=batched[name] > 0)
        if a.batch:
            entry["batched"] = batched[name]
        if entry["cost_usd"] is None:
            if m.id not in unknown:
                unknown.append(m.id)
            total_cost = None
        elif total_cost is not None:
            total_cost += entry["cost_usd"]
        busy += (entry["calls"] - entry["cached"] - batched[name]) * _typical_latency(usable or None, m)
    to_run = sum(e["calls"] - e["cached"] - batched[n] for n, e in by_model.items())
    judge_calls, judge_cost = _judge_estimate(plan)
    return Estimate(
        calls=len(calls), cached=sum(e["cached"] for e in by_model.values()),
        input_tokens=sum(e["input_tokens"] for e in by_model.values()),
        output_tokens=sum(e["output_tokens"] for e in by_model.values()), cost_usd=total_cost,
        seconds=busy / max(1, min(concurrency, to_run)), concurrency=concurrency, unknown_price=unknown,
        judge_calls=judge_calls, judge_cost_usd=judge_cost, budget_usd=budget_usd,
        by_model=list(by_model.values()), batched=sum(batched.values()))


def _judge_estimate(plan: Plan) -> tuple[int, float | None]:
    judges = [s for s in plan.scorers if isinstance(s, Judge)]
    if not judges:
        return 0, None
    calls, cost = 0, 0.0
    case_chars = sum(len(json.dumps(r, default=str)) for r in plan.records) / len(plan.records)
    for j in judges:
        n = plan.total
        calls += n
        tin = math.ceil((len(j.template) + len(j.rubric) + case_chars) / 4 + DEFAULT_OUTPUT_TOKENS)
        c = _cost(j.model, tin * n, _JUDGE_OUTPUT_TOKENS * n)
        if c is None:
            return calls, None
        cost += c
    return calls, cost
