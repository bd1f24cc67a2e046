"""The runner and the call pipeline: cache modes, retries under faults, limits, cancellation, budget."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import protokit as pk
from protokit.runner import AdaptiveLimit, Call, RetryPolicy, Runner

FAST = RetryPolicy(retries=6, base_delay=0.01, max_delay=0.05)


def echo(sb, name="echo", **kw):
    return pk.model(f"openai:{name}", base_url=sb.openai_base_url, api_key="sandbox-key", **kw)


def calls(model, n, prefix="case"):
    return [Call(model, model.request(f"{prefix} {i}"), tag=i) for i in range(n)]


# -- cache modes at the model level ------------------------------------------------------------

def test_auto_mode_replays_with_original_latency(sandbox):
    m = echo(sandbox)
    first = m.complete("record me")
    before = sandbox.stats()["requests"]
    second = m.complete("record me")
    assert sandbox.stats()["requests"] == before
    assert second.cached and not first.cached
    assert second.text == first.text and second.latency_s == pytest.approx(first.latency_s)
    assert (second.input_tokens, second.output_tokens) == (first.input_tokens, first.output_tokens)


def test_samples_are_separate_entries(sandbox):
    m = echo(sandbox, "sampler")
    for s in range(3):
        m.complete("same prompt", sample=s)
    assert sandbox.stats()["requests"] == 3
    m.complete("same prompt", sample=1)
    m.complete("same prompt", sample=3)  # topped up: only the new sample is requested
    assert sandbox.stats()["requests"] == 4
    assert pk.cache.get_cache().stats()["entries"] == 4


def test_replay_mode_raises_cache_miss_describing_the_request(sandbox):
    m = echo(sandbox, "gpt-4.1-mini")
    m.complete("recorded")
    pk.cache.configure(mode="replay")
    assert m.complete("recorded").cached
    with pytest.raises(pk.CacheMiss, match=r"openai:gpt-4.1-mini.*never recorded") as info:
        m.complete("never recorded")
    assert "PROTOKIT_CACHE_MODE" in str(info.value)
    assert sandbox.stats()["requests"] == 1


def test_replay_needs_no_key_and_no_network(sandbox, monkeypatch):
    m = pk.model("openai:gpt-4.1-mini", base_url=sandbox.openai_base_url, api_key="sandbox-key")
    m.complete("offline later")
    pk.cache.configure(mode="replay")
    offline = pk.model("openai:gpt-4.1-mini", base_url="http://127.0.0.1:9/v1")  # nothing listens there
    assert offline.complete("offline later").cached


def test_record_mode_always_calls_and_overwrites(sandbox):
    m = echo(sandbox)
    m.complete("again")
    pk.cache.configure(mode="record")
    r = m.complete("again")
    assert not r.cached and sandbox.stats()["requests"] == 2
    assert pk.cache.get_cache().stats()["entries"] == 1


def test_off_mode_never_touches_the_cache(sandbox, tmp_path):
    pk.cache.configure(path=tmp_path / "off.db", mode="off")
    m = echo(sandbox)
    m.complete("x")
    m.complete("x")
    assert sandbox.stats()["requests"] == 2


def test_keys_never_reach_the_cache_file(sandbox, tmp_path):
    secret = "sk-proj-" + "A1b2C3d4" * 6
    pk.cache.configure(path=tmp_path / "s.db", mode="auto")
    pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key=secret).complete("secret-free")
    pk.cache.get_cache().close()
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
    assert b"secret-free" in blob and secret.encode() not in blob


# -- runner ------------------------------------------------------------------------------------

def test_runner_keeps_order_and_reports_progress(sandbox):
    m = echo(sandbox)
    seen = []
    runner = Runner(concurrency=8, on_result=lambda o, p: seen.append((p.done, o.ok)))
    outcomes = runner.run_sync(calls(m, 40))
    assert [o.response.text for o in outcomes] == [f"case {i}" for i in range(40)]
    assert [d for d, _ in seen] == list(range(1, 41))
    assert runner.progress.errors == 0 and runner.progress.done == 40


def test_global_and_per_provider_limits_bound_concurrency(sandbox):
    m = echo(sandbox, "limited")
    pk.cache.configure(mode="off")
    active = {"now": 0, "max": 0}
    orig = m.call

    async def counting(request, on_chunk=None):
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        try:
            await asyncio.sleep(0.02)
            return await orig(request, on_chunk)
        finally:
            active["now"] -= 1

    m.call = counting  # type: ignore[method-assign]
    Runner(concurrency=10, per_provider={"openai": 3}).run_sync(calls(m, 20))
    assert active["max"] == 3
    active["max"] = 0
    Runner(concurrency=4).run_sync(calls(m, 20, "again"))
    assert active["max"] == 4


def test_retries_under_injected_faults_end_every_call(sandbox):
    sandbox.set_faults("429=0.15,500=0.1,reset=0.05,malformed=0.05", seed=7)
    m = echo(sandbox)
    outcomes = Runner(concurrency=16, policy=FAST).run_sync(calls(m, 120))
    assert len(outcomes) == 120
    ok = [o for o in outcomes if o.ok]
    assert len(ok) >= 118
    assert all(o.response.text == f"case {o.call.tag}" for o in ok)
    assert any(o.attempts > 1 for o in ok)  # some calls really were retried
    by_status = sandbox.stats()["by_status"]
    assert by_status.get("429", 0) > 0 and by_status.get("500", 0) > 0


def test_non_retryable_errors_are_values_not_exceptions(sandbox):
    sandbox.set_faults("400=1.0", seed=1)
    m = echo(sandbox, "bad")
    outcomes = Runner(concurrency=4, policy=FAST).run_sync(calls(m, 5))
    assert all(isinstance(o.error, pk.BadRequestError) and o.attempts == 1 for o in outcomes)


def test_retry_after_is_honoured():
    err = pk.RateLimitError("slow down", retry_after=0.25)
    d = RetryPolicy(base_delay=10).delay(0, err)
    assert 0.25 <= d <= 0.25 * 1.1
    backoff = [RetryPolicy(base_delay=0.1, max_delay=1).delay(a, pk.ServerError("x")) for a in range(6)]
    assert all(0 <= d <= 1 for d in backoff)


def test_adaptive_limit_halves_on_429_and_grows_back():
    lim = AdaptiveLimit(16)
    lim.rate_limited()
    assert lim.limit == 8
    lim.rate_limited()
    lim.rate_limited()
    lim.rate_limited()
    lim.rate_limited()
    assert lim.limit == 1
    for _ in range(30):
        lim.succeeded()
    assert lim.limit == 16


def test_timeout_is_classified(sandbox):
    sandbox.set_faults("timeout=1.0", seed=1)
    m = pk.model("openai:slow", base_url=sandbox.openai_base_url, api_key="k", timeout=0.3)
    outcomes = Runner(policy=RetryPolicy(retries=1, base_delay=0.01)).run_sync(calls(m, 2))
    assert all(isinstance(o.error, pk.ProviderTimeoutError) and o.attempts == 2 for o in outcomes)


def test_cancel_stops_issuing_calls_and_keeps_finished_ones():
    from protokit.sandbox import Sandbox

    with Sandbox(port=0, latency=0.2) as sandbox:
        _cancel_drill(sandbox)


def _cancel_drill(sandbox):
    pk.cache.configure(mode="off")
    m = pk.model("openai:slowish", base_url=sandbox.openai_base_url, api_key="k")
    runner = Runner(concurrency=4)
    results = {}

    def go():
        results["out"] = runner.run_sync(calls(m, 200))

    t = threading.Thread(target=go)
    t.start()
    # Cancel once a few calls have finished (not after a fixed sleep: a loaded machine starts slower).
    deadline = time.perf_counter() + 10
    while runner.progress.done < 4 and time.perf_counter() < deadline:
        time.sleep(0.01)
    cancelled_at = time.perf_counter()
    runner.cancel()
    t.join(5)
    assert time.perf_counter() - cancelled_at < 1.0
    outs = results["out"]
    assert len(outs) == 200
    done = [o for o in outs if o.ok]
    assert 4 <= len(done) < 40
    assert all(isinstance(o.error, pk.Cancelled) for o in outs if not o.ok)
    requests = sandbox.stats()["requests"]
    time.sleep(0.4)
    assert sandbox.stats()["requests"] == requests  # nothing issued after cancel


def test_budget_stops_issuing_calls(sandbox):
    pk.set_price("openai:priced", input=100_000.0, output=100_000.0)  # about $0.5-1 a call
    m = pk.model("openai:priced", base_url=sandbox.openai_base_url, api_key="k", max_tokens=4)
    outcomes = Runner(concurrency=1, budget_usd=2.0).run_sync(calls(m, 20))
    ran = [o for o in outcomes if o.ok]
    assert 1 <= len(ran) < 20
    assert all(isinstance(o.error, pk.BudgetExceeded) for o in outcomes if not o.ok)
    assert sandbox.stats()["requests"] == len(ran)
