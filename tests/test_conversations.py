"""Conversations as cases: a case's `messages` (multi-turn, tool messages too) and `turns` played against each
candidate turn by turn, through both SDKs against the sandbox, each turn a row, scored and cached."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import protokit as pk

KEY = "sandbox-key"
BOTH = pytest.mark.parametrize("provider", ["openai", "anthropic"])


def model(sb, provider: str, name: str = "echo", **kw):
    url = sb.openai_base_url if provider == "openai" else sb.anthropic_base_url
    return pk.model(f"{provider}:{name}", base_url=url, api_key=KEY, **kw)


def words(text: str) -> int:
    return len(text.split())


HISTORY = [
    {"role": "system", "content": "You answer in one word."},
    {"role": "user", "content": "What colour is the sky?"},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "And the grass?"},
]


# -- a case's messages are its prompt ---------------------------------------------------------------------------------


@BOTH
def test_a_cases_messages_are_its_prompt(sandbox, provider):
    cases = [{"id": "sky", "messages": HISTORY},
             {"id": "json", "messages": json.dumps([{"role": "user", "content": "from a CSV cell"}])}]
    cmp = pk.compare([model(sandbox, provider)], None, cases)
    r = cmp.results.set_index("case")
    assert r.loc["sky", "output"] == "And the grass?" and r.loc["json", "output"] == "from a CSV cell"
    assert "turn" not in cmp.results
    # The sandbox saw the whole conversation: its token count is one per message plus the words of each.
    assert r.loc["sky", "input_tokens"] == sum(1 + words(m["content"]) for m in HISTORY) - 1  # system: no role token


TOOL_TALK = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 degrees and sunny"},
]
WEATHER = {"name": "get_weather", "description": "Current weather.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@BOTH
def test_tool_messages_in_a_case_go_through_each_providers_tool_api(sandbox, provider):
    cmp = pk.compare([model(sandbox, provider)], None, [{"messages": TOOL_TALK}], tools=[WEATHER])
    row = cmp.results.iloc[0]
    assert row["error"] is None and row["output"] == "18 degrees and sunny"  # echo says the tool's result


def test_a_tool_message_must_answer_an_earlier_call():
    stray = [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "nope", "content": "x"}]
    with pytest.raises(pk.ConfigError, match="case 'c': message 1 is a tool result for tool call 'nope'"):
        pk.compare(["openai:x"], None, [{"id": "c", "messages": stray}])


def test_a_fallback_passes_tool_messages_to_its_members(sandbox):
    """The members' requests are rebuilt through the one message check, which takes tool messages."""
    down = pk.model("openai:primary", base_url="http://127.0.0.1:9/v1", api_key="k")
    chain = pk.fallback(down, model(sandbox, "anthropic"))
    with pk.call_context(retries=0):
        assert chain.complete(TOOL_TALK, tools=[WEATHER]).text == "18 degrees and sunny"


def test_a_fallback_runs_a_tool_loop(sandbox):
    def get_weather(city: str) -> str:
        """Current weather."""
        return f"rainy in {city}"

    down = pk.model("openai:primary", base_url="http://127.0.0.1:9/v1", api_key="k")
    chain = pk.fallback(down, model(sandbox, "openai"))
    with pk.call_context(retries=0):
        r = chain.complete('tool:get_weather {"city": "Oslo"}', tools=[get_weather], run_tools=True, max_steps=3)
    assert r.text == "rainy in Oslo" and r.tool_calls == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]


# -- turns are played one at a time, each answer fed back ------------------------------------------------------------


TALKS = [{"id": "greet", "turns": ["hello there", "how are you today", "bye"]},
         {"id": "short", "turns": ["one question"]}]


def _long(out: str, case: dict) -> float:
    return float(len(out.split()) > 1)


@BOTH
def test_turns_are_played_and_each_turn_is_a_scored_row(sandbox, provider):
    seen: list[int] = []

    def turn_seen(out: str, case: dict) -> bool:
        seen.append(case["turn"])
        return out == case["turns"][case["turn"]]

    cmp = pk.compare([model(sandbox, provider), model(sandbox, provider, "sim")], None, TALKS,
                     scorers=[pk.scorers.custom(_long, name="long"), pk.scorers.custom(turn_seen, name="echoed")])
    r = cmp.results
    assert len(r) == 2 * (3 + 1) and list(r.columns[:6]) == ["case", "id", "turns", "model", "sample", "turn"]
    echo = r[r["model"] == f"{provider}:echo"]
    assert list(zip(echo["case"], echo["turn"], echo["output"], strict=True)) == [
        ("greet", 0, "hello there"), ("greet", 1, "how are you today"), ("greet", 2, "bye"),
        ("short", 0, "one question")]
    assert sorted(seen) == [0, 0, 0, 0, 1, 1, 2, 2]
    assert r["error"].isna().all() and r["score_echoed"][r["model"] == f"{provider}:echo"].all()
    # Each answer went back into the conversation: turn k's prompt holds every earlier turn and answer.
    sim = r[(r["model"] == f"{provider}:sim") & (r["case"] == "greet")].sort_values("turn")
    expected = 0
    for said, answer, tokens in zip(TALKS[0]["turns"], sim["output"], sim["input_tokens"], strict=True):
        expected += 1 + words(said)
        assert tokens == expected
        expected += 1 + words(answer)
    stored = [e["request"]["messages"] for e in pk.cache.get_cache().entries()
              if e["request"]["model"] == "sim" and len(e["request"]["messages"]) == 5]
    assert stored == [[
        {"role": "user", "content": "hello there"}, {"role": "assistant", "content": sim["output"].iloc[0]},
        {"role": "user", "content": "how are you today"}, {"role": "assistant", "content": sim["output"].iloc[1]},
        {"role": "user", "content": "bye"}]]


def _lookup(city: str) -> str:
    """Look up the weather."""
    return f"sunny in {city}"


@BOTH
def test_a_turn_answered_only_with_tool_calls_goes_back_as_its_calls(sandbox, provider):
    """The model's calls, not an empty message (which Anthropic's API refuses), and the next turn is asked."""
    talk = [{"id": "tools", "turns": ['tool:_lookup {"city": "Zürich"}', "and tomorrow?"]}]
    r = pk.compare([model(sandbox, provider)], None, talk, tools=[_lookup]).results
    assert r["error"].isna().all(), r["error_message"].tolist()
    assert r["tool_calls"].iloc[0] == [{"name": "_lookup", "arguments": {"city": "Zürich"}}]
    last = [e["request"]["messages"] for e in pk.cache.get_cache().entries() if len(e["request"]["messages"]) == 3]
    assert last[0][1] == {"role": "assistant", "content": '_lookup({"city": "Zürich"})'}
    # The estimate follows the conversation the same way: every turn is recorded now.
    est = pk.estimate([model(sandbox, provider)], None, talk, tools=[_lookup])
    assert (est.calls, est.cached) == (2, 2), est


EMPTY_TURN = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""},
              {"role": "user", "content": "again"}]


def test_the_sandbox_refuses_an_empty_message_as_anthropic_does(sandbox):
    import anthropic

    client = anthropic.Anthropic(base_url=sandbox.anthropic_base_url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="non-empty content"):
        client.messages.create(model="echo", max_tokens=10, messages=EMPTY_TURN)  # type: ignore[arg-type]
    assert client.messages.create(model="echo", max_tokens=10, messages=[  # a final assistant prefill may be empty
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]).content is not None


def test_protokit_says_which_message_is_empty_before_anthropic_refuses_it(sandbox):
    before = sandbox.stats()["requests"]
    with pytest.raises(pk.ConfigError, match=r"message 1 \(assistant\) is empty"):
        model(sandbox, "anthropic").complete(EMPTY_TURN)
    r = pk.compare([model(sandbox, "anthropic")], "{q}", [{"q": ""}, {"q": "fine"}]).results
    assert r["error"].tolist()[0] == "config" and "message 0 (user) is empty" in r["error_message"].tolist()[0]
    assert pd.isna(r["error"].tolist()[1])
    assert sandbox.stats()["requests"] == before + 1  # only the case that was not empty was sent


def test_statistics_take_each_cases_mean_over_its_turns(sandbox):
    cmp = pk.compare([model(sandbox, "openai")], None, TALKS, scorers=[pk.scorers.custom(_long, name="long")])
    # greet: "hello there" 1, "how are you today" 1, "bye" 0 -> 2/3; short: "one question" -> 1.
    assert cmp.per_case("openai:echo", "long").to_dict() == {"greet": pytest.approx(2 / 3), "short": 1.0}
    s = cmp.summary.iloc[0]
    assert s["score_long"] == pytest.approx((2 / 3 + 1) / 2)  # cases weigh alike, not turns
    assert s["n"] == 4 and s["cases"] == 2
    assert s["cost_per_case"] != s["cost_per_case"] or s["cost_per_case"] >= 0  # NaN without a price
    per_turn = cmp.samples_summary
    assert list(per_turn.columns[:3]) == ["case", "model", "turn"] and len(per_turn) == 4


def test_samples_and_a_system_prompt_with_turns(sandbox):
    cmp = pk.compare([model(sandbox, "anthropic")], None, TALKS, samples=2, system="Be brief.")
    assert len(cmp.results) == 2 * 4 and set(cmp.results["sample"]) == {0, 1}
    systems = {e["request"]["messages"][0]["content"] for e in pk.cache.get_cache().entries()}
    assert systems == {"Be brief."}


def test_a_history_comes_before_the_turns(sandbox):
    cases = [{"messages": HISTORY[:3], "turns": ["Why?"]}]
    cmp = pk.compare([model(sandbox, "openai")], None, cases)
    assert cmp.results["output"].tolist() == ["Why?"]
    [entry] = pk.cache.get_cache().entries()
    assert entry["request"]["messages"] == [*HISTORY[:3], {"role": "user", "content": "Why?"}]


def test_a_failed_turn_ends_the_conversation(sandbox):
    def flaky(prompt: str) -> str:
        if prompt == "how are you today":
            raise RuntimeError("down")
        return prompt.upper()

    cmp = pk.compare([pk.model(flaky)], None, TALKS, retries=0)
    r = cmp.results.set_index(["case", "turn"])
    assert r.loc[("greet", 0), "output"] == "HELLO THERE"
    assert r.loc[("greet", 1), "error"] == "server"
    assert r.loc[("greet", 2), "error"] == "not_run_turn" and "earlier turn" in r.loc[("greet", 2), "error_message"]
    assert r.loc[("short", 0), "output"] == "ONE QUESTION"


def test_turns_replay_from_the_cache_and_the_estimate_follows_them(sandbox):
    first = pk.compare([model(sandbox, "openai", "sim")], None, TALKS, stream=True)
    assert first.results["ttft_s"].notna().all()
    est = pk.estimate([model(sandbox, "openai", "sim")], None, TALKS)
    assert (est.calls, est.cached) == (4, 4)
    requests = sandbox.stats()["requests"]
    again = pk.compare([model(sandbox, "openai", "sim")], None, TALKS)
    assert again.results["cached"].all() and sandbox.stats()["requests"] == requests
    assert again.results["output"].tolist() == first.results["output"].tolist()
    fresh = pk.estimate([model(sandbox, "openai", "sim", max_tokens=10)], None,
                        [{"turns": ["a new one", "and another"]}])
    assert (fresh.calls, fresh.cached) == (2, 0)
    assert fresh.input_tokens >= 10  # the second turn carries a stand-in answer of max_tokens


def test_on_result_and_progress_count_every_turn(sandbox):
    seen: list[tuple[int, int]] = []
    pk.compare([model(sandbox, "openai")], None, TALKS, on_result=lambda row, p: seen.append((p.done, p.total)))
    assert seen == [(i, 4) for i in range(1, 5)]


def test_a_rating_names_its_turn(sandbox):
    cmp = pk.compare([model(sandbox, "openai")], None, TALKS)
    cmp.add_rating("greet", "openai:echo", 1, turn=2)
    rated = cmp.results[cmp.results["rating"].notna()]
    assert rated[["case", "turn"]].values.tolist() == [["greet", 2]]


@pytest.mark.parametrize("cases,needle", [
    ([{"q": "a"}], "prompt=None takes each case's prompt from its 'messages' column"),
    ([{"turns": []}], "has no turns"),
    ([{"turns": ["ok", 3]}], "each turn must be a non-empty string"),
    ([{"turns": "not a list"}], "must hold a list"),
    ([{"turns": ["a"], "turn": 1}], "clashes with the results column that numbers each turn"),
    ([{"id": "x", "messages": [{"role": "robot", "content": "beep"}]}], "case 'x': message 0 has role 'robot'"),
])
def test_conversation_mistakes_are_one_line_config_errors(sandbox, cases, needle):
    with pytest.raises(pk.ConfigError, match=needle) as info:
        pk.compare([model(sandbox, "openai")], None, cases)
    assert "\n" not in str(info.value) and sandbox.stats()["requests"] == 0


def test_turns_need_prompt_none():
    with pytest.raises(pk.ConfigError, match="played with prompt=None"):
        pk.compare(["openai:x"], "{q}", pd.DataFrame({"q": ["a"], "turns": [["hi"]]}))


def test_turns_cannot_go_through_provider_batches():
    with pytest.raises(pk.ConfigError, match="batch=True cannot play turns"):
        pk.compare(["openai:x"], None, TALKS, batch=True)


def test_the_widget_shows_each_turn_in_its_cell(sandbox):
    from protokit.widgets import Compare

    w = Compare([model(sandbox, "openai")], None, [{"id": "g", "turns": ["hello", "again <b>"]}], run=True)
    assert w.state == "done", w.status
    shown = [c.value for c in w._grid.cells[("g", "openai:echo")].children]
    assert len(shown) == 2 and "turn 0: hello" in shown[0] and "turn 1: again &lt;b&gt;" in shown[1]
    assert "<b>" not in "".join(shown)
