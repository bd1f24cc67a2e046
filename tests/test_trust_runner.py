"""The runner's promises under pressure: the budget is a ceiling, timeouts bound one attempt,
fallback tries each member once, replayed answers are priced, one model can run under two names."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pandas as pd
import pytest

import protokit as pk
from protokit.models import prices
from protokit.runner import Budget, Call, RetryPolicy, Runner
from protokit.sandbox import Sandbox

FAST = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02)
# A price high enough that a few calls cross a small budget: $0.01 per token.
EXPENSIVE = {"input": 10_000.0, "output": 10_000.0}


@pytest.fixture
def slow() -> Iterator[Sandbox]:
    """A sandbox of its own whose answers take 50 ms, so many calls are in flight at once."""
    with Sandbox(port=0, latency=0.05) as sb:
        yield sb


def _cases(n: int) -> pd.DataFrame:
    return pd.DataFrame({"case": [f"c{i:03d}" for i in range(n)], "text": [f"ticket {i} " * 3 for i in range(n)]})


# -- the budget is a ceiling ------------------------------------------------------------------

@pytest.mark.parametrize("concurrency", [1, 8, 32])
def test_spend_never_passes_the_budget_by_more_than_one_call(slow: Sandbox, concurrency: int) -> None:
    m = pk.model("openai:echo", base_url=slow.openai_base_url, api_key="k", price=EXPENSIVE, max_tokens=20)
    budget = 0.5
    res = pk.compare([m], "{text}", _cases(100), budget_usd=budget, concurrency=concurrency).results
    ran = res[res["error"].isna()]
    spent = ran["cost_usd"].sum()
    assert 0 < len(ran) < 100
    assert spent <= budget + ran["cost_usd"].max(), (spent, len(ran))
    # Calls wait for those in flight to settle rather than give up, so the budget is used, not left idle.
    assert spent >= budget / 2, spent
    # What was not sent says why, and the server saw exactly the calls that ran.
    assert (res.loc[res["error"].notna(), "error"] == "not_run_budget").all()
    assert slow.stats()["requests"] == len(ran)


def test_a_budget_too_small_for_the_first_call_says_to_bound_answers(sandbox: Sandbox) -> None:
    m = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k", price=EXPENSIVE)
    res = pk.compare([m], "{text}", _cases(2), budget_usd=0.5).results
    assert (res["error"] == "not_run_budget").all()
    assert "set max_tokens=" in res["error_message"].iloc[0]
    assert sandbox.stats()["requests"] == 0


def test_calls_in_flight_hold_their_reservation() -> None:
    m = pk.model("openai:any", price={"input": 1_000_000.0, "output": 1_000_000.0})
    b = Budget(10.0)
    need = b.estimate(m, m.request("x" * 8, max_tokens=3))  # 2 input + 3 output tokens, $1 each
    assert need == pytest.approx(5.0)
    assert b.reserve(need) and not b.reserve(need + 0.01)
    assert b.exhausted is False and b.reserved_usd == pytest.approx(5.0)
    b.settle(need, m, None)  # the call failed: nothing spent, the reservation is released
    assert b.reserved_usd == 0 and b.spent_usd == 0


def test_unknown_price_under_a_budget_is_refused_before_any_call(sandbox: Sandbox) -> None:
    m = pk.model("openai:no-price-here", base_url=sandbox.openai_base_url, api_key="k")
    with pytest.raises(pk.ConfigError, match=r"no price is known for openai:no-price-here.*pk\.set_price"):
        pk.compare([m], "{text}", _cases(3), budget_usd=1.0)
    assert sandbox.stats()["requests"] == 0
    # Without a budget the same model runs (its cost is reported as unknown).
    res = pk.compare([m], "{text}", _cases(3)).results
    assert res["error"].isna().all() and res["cost_usd"].isna().all()


def test_judge_calls_spend_from_the_same_budget(slow: Sandbox) -> None:
    m = pk.model("openai:echo", base_url=slow.openai_base_url, api_key="k", price=EXPENSIVE, max_tokens=20)
    # A grader that bills like a provider: 5 output tokens a verdict at $0.01 each (input is free), so
    # a verdict reserves what it costs, $0.05, and fits between the answers' larger reservations.
    judge_model = pk.model(lambda prompt: {"text": "SCORE: 4", "input_tokens": 20, "output_tokens": 5},
                           name="grader", price={"input": 0.0, "output": 10_000.0}, max_tokens=5)
    judge = pk.scorers.judge(judge_model, "The answer repeats the ticket.", scale=(1, 5))
    budget = 2.0
    res = pk.compare([m], "{text}", _cases(40), scorers=[judge], budget_usd=budget, concurrency=16).results
    spent = res["cost_usd"].fillna(0).sum() + res["judge_cost_usd"].fillna(0).sum()
    one_call = max(res["cost_usd"].max(), res["judge_cost_usd"].max())
    assert res["judge_cost_usd"].notna().any()
    assert spent <= budget + one_call, spent


def test_an_unpriced_judge_is_refused_under_a_budget(sandbox: Sandbox) -> None:
    m = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k", price=EXPENSIVE)
    judge = pk.scorers.judge(pk.model("openai:unpriced-judge", base_url=sandbox.openai_base_url, api_key="k"),
                             "Fine.", scale=(1, 5))
    with pytest.raises(pk.ConfigError, match="unpriced-judge"):
        pk.compare([m], "{text}", _cases(2), scorers=[judge], budget_usd=1.0)
    assert sandbox.stats()["requests"] == 0


def test_replayed_answers_cost_nothing_and_are_not_refused(sandbox: Sandbox) -> None:
    m = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k", price=EXPENSIVE)
    first = pk.compare([m], "{text}", _cases(5)).results
    assert first["error"].isna().all()
    # A budget too small for one new call still lets every recorded answer replay.
    again = pk.compare([m], "{text}", _cases(5), budget_usd=0.001).results
    assert again["error"].isna().all() and again["cached"].all()


# -- a model's own price stays with it ----------------------------------------------------------

def test_a_price_given_to_one_model_does_not_change_the_table(sandbox: Sandbox) -> None:
    a = pk.model("openai:gpt-4.1-mini", base_url=sandbox.openai_base_url, api_key="k", price={"input": 1, "output": 1})
    assert a.price_entry() == {"input": 1.0, "output": 1.0}
    assert prices.get_price("openai:gpt-4.1-mini") == {"input": 0.4, "cached_input": 0.1, "output": 1.6}
    r = a.complete("price me")
    assert r.cost_usd == pytest.approx((r.input_tokens + r.output_tokens) / 1e6)
    assert r.price_date == "model"


# -- timeouts bound one attempt -------------------------------------------------------------------

def test_a_hung_attempt_times_out_and_is_retried() -> None:
    # Every request hangs 2 s; the per-attempt timeout is 0.2 s and one retry is allowed.
    with Sandbox(port=0, faults="timeout=1.0", seed=0, timeout_hold=2.0) as sb:
        m = pk.model("openai:hang", base_url=sb.openai_base_url, api_key="k")
        outcomes = Runner(policy=FAST, timeout=0.2).run_sync(
            [Call(m, m.request(f"q{i}"), tag=i) for i in range(3)])
        assert all(isinstance(o.error, pk.ProviderTimeoutError) for o in outcomes)
        assert [o.attempts for o in outcomes] == [2, 2, 2]
        assert "one attempt" in str(outcomes[0].error)
        assert sb.stats()["requests"] == 6


def test_timeout_is_per_attempt_so_a_retry_after_a_hang_succeeds() -> None:
    # The first draws of this seed hang and later ones answer: a per-run timeout would give up.
    with Sandbox(port=0, faults="timeout=0.5", seed=3, timeout_hold=3.0) as sb:
        m = pk.model("openai:echo", base_url=sb.openai_base_url, api_key="k")
        res = pk.compare([m], "{text}", _cases(20), timeout=0.3,
                         retries=RetryPolicy(retries=8, base_delay=0.01, max_delay=0.02), concurrency=20).results
        assert res["error"].isna().all(), res["error_message"].dropna().tolist()
        assert (res["attempts"] > 1).any()
        assert sb.stats()["by_status"].get("timeout", 0) > 0


# -- fallback -------------------------------------------------------------------------------------

def test_fallback_tries_each_member_once_with_the_runs_policy() -> None:
    with Sandbox(port=0, faults="500=1.0", seed=0) as sb:
        a = pk.model("openai:a", base_url=sb.openai_base_url, api_key="k")
        b = pk.model("anthropic:b", base_url=sb.anthropic_base_url, api_key="k")
        res = pk.compare([pk.fallback(a, b)], "{text}", _cases(1), retries=FAST).results
        row = res.iloc[0]
        # retries=1: two attempts for each member, and the chain is not retried as a whole.
        assert sb.stats()["requests"] == 4
        assert row["attempts"] == 4
        assert row["error"] == "server"
        assert "openai:a: server" in row["error_message"] and "anthropic:b: server" in row["error_message"]


def test_fallback_rows_say_which_member_answered(sandbox: Sandbox) -> None:
    dead = pk.model("openai:dead", base_url="http://127.0.0.1:9/v1", api_key="k")
    alive = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k")
    res = pk.compare([pk.fallback(dead, alive), alive], "{text}", _cases(4), retries=FAST).results
    fb = res[res["model"].str.startswith("fallback:")]
    assert (fb["served_by"] == "openai:echo").all() and fb["error"].isna().all()
    assert (res.loc[res["model"] == "openai:echo", "served_by"] == "openai:echo").all()


def test_concurrent_fallback_calls_share_no_error_state(sandbox: Sandbox) -> None:
    dead = pk.model("openai:dead", base_url="http://127.0.0.1:9/v1", api_key="k")
    alive = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k")
    fb = pk.fallback(dead, alive)

    async def many() -> list[pk.Response]:
        return await asyncio.gather(*(fb.acomplete(f"q{i}") for i in range(20)))

    out = asyncio.run(many())
    assert [r.text for r in out] == [f"q{i}" for i in range(20)]
    assert not hasattr(fb, "errors")


# -- costs on replay --------------------------------------------------------------------------------

def test_an_answer_recorded_without_a_price_is_priced_on_replay(sandbox: Sandbox) -> None:
    m = pk.model("openai:gpt-4.1-mini", base_url=sandbox.openai_base_url, api_key="k")
    request = m.request("priced later")
    key = pk.cache.request_key(request.key_dict())
    # As an older protokit (or an unpriced model) recorded it: tokens, no cost, no price date.
    pk.cache.get_cache().put(key, request.key_dict(), {"text": "ok", "input_tokens": 1000, "output_tokens": 500,
                                                     "cost_usd": None, "latency_s": 0.1})
    r = m.complete("priced later")
    assert r.cached and r.text == "ok"
    assert r.cost_usd == pytest.approx((1000 * 0.4 + 500 * 1.6) / 1e6)
    assert r.price_date == prices.price_table_date()
    assert sandbox.stats()["requests"] == 0


def test_a_recorded_cost_keeps_its_recorded_price_date(sandbox: Sandbox) -> None:
    m = pk.model("openai:gpt-4.1-mini", base_url=sandbox.openai_base_url, api_key="k")
    live = m.complete("dated")
    replay = m.complete("dated")
    assert replay.cached and replay.cost_usd == live.cost_usd
    assert live.price_date == replay.price_date == prices.price_table_date()


# -- two settings of one model --------------------------------------------------------------------------

def test_one_model_at_two_temperatures_in_one_run(sandbox: Sandbox) -> None:
    cold = pk.model("openai:echo", name="echo-cold", base_url=sandbox.openai_base_url, api_key="k", temperature=0)
    hot = pk.model("openai:echo", name="echo-hot", base_url=sandbox.openai_base_url, api_key="k", temperature=1)
    assert (cold.id, hot.id) == ("echo-cold", "echo-hot")
    assert cold.spec == hot.spec == "openai:echo"
    assert repr(hot) == "pk.model('openai:echo', name='echo-hot', temperature=1)"
    res = pk.compare([cold, hot], "{text}", _cases(3)).results
    assert sorted(res["model"].unique()) == ["echo-cold", "echo-hot"]
    assert res["error"].isna().all()
    # Two settings are two requests: each recorded under its own key.
    assert pk.cache.get_cache().stats()["entries"] == 6


def test_same_name_twice_is_refused_with_advice_that_works(sandbox: Sandbox) -> None:
    a = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k")
    b = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k", temperature=1)
    with pytest.raises(pk.ConfigError, match="name=") as info:
        pk.compare([a, b], "{text}", _cases(1))
    assert "\n" not in str(info.value)
    renamed = pk.model("openai:echo", name="echo-t1", base_url=sandbox.openai_base_url, api_key="k", temperature=1)
    assert pk.compare([a, renamed], "{text}", _cases(1)).results["error"].isna().all()


@pytest.mark.parametrize("bad", ["", "   ", 3])
def test_a_bad_name_is_one_clear_error(bad: object) -> None:
    with pytest.raises(pk.ConfigError, match="name="):
        pk.model("openai:echo", name=bad)


# -- pk.call_context: the run's settings for single calls ------------------------------------------------

def test_call_context_sets_retries_and_timeout_for_complete() -> None:
    with Sandbox(port=0, faults="500=1.0", seed=0) as sb:
        m = pk.model("openai:x", base_url=sb.openai_base_url, api_key="k")
        with pk.call_context(retries=RetryPolicy(retries=2, base_delay=0.01)), pytest.raises(pk.ServerError):
            m.complete("fails three times")
        assert sb.stats()["requests"] == 3
        # Outside the block the default policy (4 retries) applies again.
        sb.reset_stats()
        with pk.call_context(retries=0), pytest.raises(pk.ServerError):
            m.complete("fails once")
        assert sb.stats()["requests"] == 1


def test_call_context_budget_holds_for_streams_too(sandbox: Sandbox) -> None:
    m = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k", price=EXPENSIVE, max_tokens=3)
    with pk.call_context(budget_usd=0.1):  # one call reserves about $0.05
        assert "".join(m.stream("a b c")) == "a b c"
        with pytest.raises(pk.BudgetExceeded, match="budget"):
            m.complete("d e f")
    assert sandbox.stats()["requests"] == 1


@pytest.mark.parametrize("kwargs", [{"retries": -1}, {"timeout": 0}, {"timeout": "5"}, {"budget_usd": -2}])
def test_call_context_refuses_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(pk.ConfigError), pk.call_context(**kwargs):  # type: ignore[arg-type]
        pass
